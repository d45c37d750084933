"""The ``kdseg`` command line: argument parsing and the one error handler.

The commands themselves live in :mod:`kdseg.commands`. Errors on bad input (``ConfigError``,
``DataFormatError``, the other :class:`~kdseg.errors.KdsegError`, ``OSError`` such as a full
disk or a read-only folder) print one line naming the file or key and exit with status 2;
anything else is a bug and keeps its traceback; ``--debug`` (or ``KDSEG_DEBUG=1``) shows the
traceback always. SIGINT and SIGTERM save the training checkpoint and exit with 130 / 143.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from kdseg import __version__, commands
from kdseg.interrupts import SIGNAL_EXIT_BASE, handle_signals, signal_of

DESCRIPTION = """\
Benchmarks of knowledge distillation for label-efficient LiDAR semantic segmentation.

Each command is one step of the benchmark; the Snakemake workflow
(`snakemake --cores all reports/table1.pdf`) runs them in order, and any step can be run by hand
to inspect or repeat it. `kdseg COMMAND --help` describes a command."""

EPILOG = """\
typical order:
  generate, check-data   make the embedded synthetic data, or check a real SemanticKITTI root
  split                  draw the label-budget split file of a dataset
  train                  train and evaluate one run (registered methods: `kdseg methods`)
  teacher, features      IGNet's 2D teacher and its per-point feature cache
  report, ignet-figure   tables, budget curves and figures from finished runs

Bad input stops a command with one line naming the file or key (exit status 2); --debug shows
the traceback. SIGINT and SIGTERM save a training checkpoint first (exit status 130 / 143); the
same command then resumes. Documentation: README.md, docs/workflow.md, docs/training.md."""

EXIT_BAD_INPUT = 2


class KdsegParser(argparse.ArgumentParser):
    """``ArgumentParser`` with no abbreviated options, one-line errors and a lazy epilog.

    ``epilog_fn`` builds the epilog when help is printed (the train command lists the trainer
    keys, which needs ``torch``; plain ``kdseg --help`` stays fast).
    """

    def __init__(
        self, *args: Any, epilog_fn: Callable[[], str] | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self._epilog_fn = epilog_fn

    def format_help(self) -> str:
        if self._epilog_fn is not None:
            self.epilog, self._epilog_fn = self._epilog_fn(), None
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"image size must look like 1241x376, not {text!r}"
        ) from None
    return w, h


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is an integer in [0, 2**32), not {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, not {text!r}")
    return value


def _threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads", type=_count, default=0, help="torch CPU threads (default 0: torch's choice)"
    )


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "generate",
        help="generate the embedded synthetic street dataset",
        description="Write the synthetic street scenes (SemanticKITTI layout, with camera "
        "images, scribbles and 2D labels); meta.json is written last.",
    )
    g.add_argument("--scale", default="default", help="smoke | default | full (default: default)")
    g.add_argument("--seed", type=_seed, default=0, help="generator seed (default 0)")
    g.add_argument("--out", required=True, help="dataset root to create (gets dataset/sequences)")
    g.add_argument("--workers", type=_count, default=1, help="processes, one sequence each")
    g.set_defaults(func=commands.generate)

    c = sub.add_parser(
        "check-data",
        help="check a SemanticKITTI-layout dataset and record it",
        description="Check every training and validation scan (size a multiple of 16 bytes), "
        "its labels and scribbles (4 bytes per point), poses, one whole frame per sequence, and "
        "that a validation sequence exists; write a JSON record of the dataset.",
    )
    c.add_argument("--data", required=True, help="dataset root (holds dataset/sequences)")
    c.add_argument("--out", required=True, help="JSON record of the checked dataset")
    c.set_defaults(func=commands.check_data)

    s = sub.add_parser(
        "split",
        help="draw the label-budget split file of a dataset",
        description="Draw which training scans carry labels under a budget. Documented "
        "budgets: full, scribbles, scans-1, scans-10, scans-20, scans-50; any other scans-P "
        "(0 < P <= 100) is drawn too and recorded as a custom budget.",
    )
    s.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    s.add_argument("--dataset", required=True, help="dataset name recorded in the split")
    s.add_argument("--budget", required=True, help="full | scribbles | scans-P")
    s.add_argument("--seed", type=_seed, required=True, help="split seed (which scans)")
    s.add_argument("--out", required=True, help="split JSON file to write")
    s.set_defaults(func=commands.split)

    t = sub.add_parser("stats", help="side-by-side realism statistics of datasets")
    t.add_argument(
        "--data", action="append", required=True, metavar="NAME=PATH", help="a dataset column"
    )
    t.add_argument(
        "--image-size",
        type=_parse_size,
        default=None,
        help="WxH of image_2 for datasets that ship no images (KITTI 00: 1241x376)",
    )
    t.add_argument(
        "--reference-yaml",
        action="append",
        metavar="NAME=PATH",
        help="add the class shares of a semantic-kitti.yaml `content` block as a column",
    )
    t.add_argument("--out", help="also write the Markdown table here")
    t.set_defaults(func=commands.stats)

    r = sub.add_parser("render", help="BEV and camera pictures of one frame")
    r.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    r.add_argument("--sequence", required=True, help="sequence name, e.g. 08")
    r.add_argument("--frame", type=_count, required=True, help="scan index in the sequence")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--prefix", default="", help="file name prefix")
    r.set_defaults(func=commands.render)


def _train_epilog() -> str:
    """The keys of --trainer and --augment, with their help (imports torch)."""
    import dataclasses

    from kdseg.lidar_data import AugmentConfig
    from kdseg.trainer import TrainerConfig

    def block(title: str, helps: dict[str, str]) -> str:
        width = max(map(len, helps))
        rows = [
            textwrap.fill(
                v, 100, initial_indent=f"  {k:<{width}}  ", subsequent_indent=" " * (width + 4)
            )
            for k, v in helps.items()
        ]
        return title + "\n" + "\n".join(rows)

    augment = {f.name: str(f.metadata.get("help", "")) for f in dataclasses.fields(AugmentConfig)}
    return "\n\n".join(
        [
            block("--trainer keys (defaults come from --scale):", TrainerConfig.help()),
            block("--augment keys:", augment),
            "--option keys: the options of the method, listed with defaults and help by "
            "`kdseg methods METHOD`.\nValues are numbers (1e-3 works), true/false, null, "
            "[lists] or strings.",
        ]
    )


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser(
        "train",
        help="train and evaluate one run, writing DIR/metrics.json and DIR/model.pt",
        description="Train one method variant on a label-budget split and evaluate it on the "
        "validation sequences. The data and the split are checked before training. Rerun on "
        "the same --out: an interrupted run resumes from its checkpoint, a finished one trains "
        "again from scratch; the previous metrics.json and model.pt stay until replaced.",
        epilog_fn=_train_epilog,
    )
    tr.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    tr.add_argument(
        "--dataset",
        help="dataset name; the split must have been made for it (default: the "
        "split's, or the root folder's name with --budget)",
    )
    tr.add_argument("--split", help="budget split file (from `kdseg split`)")
    tr.add_argument("--budget", help="budget when no --split is given (drawn with --seed)")
    tr.add_argument("--method", required=True, help="registered method (`kdseg methods`)")
    tr.add_argument("--variant", help="variant name recorded in the metrics (default: method)")
    tr.add_argument(
        "--option", action="append", metavar="KEY=VALUE", help="method option (repeatable)"
    )
    tr.add_argument("--options-json", metavar="JSON", help="method options as one JSON object")
    tr.add_argument(
        "--trainer", action="append", metavar="KEY=VALUE", help="trainer setting (keys below)"
    )
    tr.add_argument(
        "--augment", action="append", metavar="KEY=VALUE", help="augmentation (keys below)"
    )
    tr.add_argument("--seed", type=_seed, default=0, help="run seed: initial weights, batches")
    tr.add_argument("--scale", default="default", help="smoke | default | paper")
    tr.add_argument(
        "--schedule",
        type=float,
        default=1.0,
        help="multiply the scale's iterations and warm-up by this (convergence studies)",
    )
    _threads(tr)
    tr.add_argument("--out", required=True, help="run folder")
    tr.add_argument(
        "--features", help="2D feature cache folder (from `kdseg features`) for IGNet-type methods"
    )
    tr.add_argument("--mlflow-experiment", help="log the run to this MLflow experiment")
    tr.add_argument("--mlflow-uri", help="tracking URI (default: $MLFLOW_TRACKING_URI or sqlite)")
    tr.add_argument("--job-key", help="stable job identifier (MLflow tag kdseg.job_key)")
    tr.add_argument("--tag", action="append", metavar="KEY=VALUE", help="MLflow run tag")
    tr.set_defaults(func=commands.train)

    m = sub.add_parser(
        "methods",
        help="list the registered methods with their options, defaults and help",
        description="List registered methods (the values of `kdseg train --method`) with the "
        "options `--option KEY=VALUE` accepts, their defaults and help.",
    )
    m.add_argument("names", nargs="*", metavar="METHOD", help="only these methods")
    m.set_defaults(func=commands.methods)

    i = sub.add_parser(
        "mlflow-init",
        help="create the MLflow store and experiments once, before training jobs",
    )
    i.add_argument("--uri", required=True, help="tracking URI, e.g. sqlite:///results/mlflow.db")
    i.add_argument("--out", required=True, help="JSON record: experiment name -> id")
    i.add_argument("experiments", nargs="+", help="experiment names")
    i.set_defaults(func=commands.mlflow_init)


def _add_teacher_commands(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("teacher", help="train (or adopt) the 2D teacher: DIR/teacher.pt + metrics")
    t.add_argument("--data", required=True, help="SemanticKITTI-layout root (target camera)")
    t.add_argument("--source", help="root whose source/ images train the teacher (default: --data)")
    t.add_argument("--out", required=True, help="folder for teacher.pt and metrics.json")
    t.add_argument("--scale", default="default", help="smoke | default | paper")
    t.add_argument("--option", action="append", metavar="KEY=VALUE", help="teacher option")
    t.add_argument("--options-json", metavar="JSON", help="teacher options as one JSON object")
    t.add_argument("--checkpoint", help="adopt this teacher checkpoint instead of training")
    _threads(t)
    t.set_defaults(func=commands.teacher)

    f = sub.add_parser("features", help="cache the 2D teacher's per-point features")
    f.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    f.add_argument("--teacher", required=True, help="teacher checkpoint (teacher.pt)")
    f.add_argument("--out", required=True, help="cache folder (gets manifest.json last)")
    _threads(f)
    f.set_defaults(func=commands.features)

    g = sub.add_parser("ignet-figure", help="camera + BEV picture of Sup-only vs IGNet on a frame")
    g.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    g.add_argument("--teacher", required=True, help="2D teacher checkpoint (teacher.pt)")
    g.add_argument("--sup-only", required=True, help="run folder of Sup-only (model.pt)")
    g.add_argument("--ignet", required=True, help="run folder of IGNet (model.pt)")
    g.add_argument("--val-frame", type=_count, default=0, help="index among the validation frames")
    g.add_argument("--png", required=True, help="output PNG")
    g.add_argument("--pdf", required=True, help="output PDF")
    g.set_defaults(func=commands.ignet_figure)


def _add_report_commands(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="render a study's tables (LaTeX, PDF) and budget curve")
    r.add_argument("--study-json", required=True, help="study definition (JSON object)")
    r.add_argument("--reported", help="reported_numbers.csv to print beside ours, or 'none'")
    r.add_argument("--tex", required=True, help="LaTeX table to write")
    r.add_argument("--pdf", required=True, help="PDF table to write")
    r.add_argument("--curve-pdf", required=True, help="budget curve PDF to write")
    r.add_argument("--curve-png", required=True, help="budget curve PNG to write")
    r.add_argument("--engine", choices=["auto", "latex", "matplotlib"], default="auto")
    r.add_argument("--markdown", help="also write the tables as Markdown here")
    r.add_argument("metrics", nargs="*", help="metrics.json files of the study's runs")
    r.set_defaults(func=commands.report)

    c = sub.add_parser(
        "convergence", help="convergence figure (mIoU against iterations) and its checks"
    )
    c.add_argument("--iterations", type=int, required=True, help="the chosen schedule")
    c.add_argument("--title", default="Convergence of the default schedule", help="figure title")
    c.add_argument("--pdf", required=True, help="figure PDF to write")
    c.add_argument("--png", required=True, help="figure PNG to write")
    c.add_argument("--markdown", help="also write the table and the checks as Markdown here")
    c.add_argument("metrics", nargs="+", help="metrics.json files of the convergence runs")
    c.set_defaults(func=commands.convergence)


def _add_debug_flag(sub: argparse._SubParsersAction) -> None:
    """``--debug`` after the command name too (``kdseg train ... --debug``)."""
    for parser in sub.choices.values():
        parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )


def build_parser() -> argparse.ArgumentParser:
    p = KdsegParser(prog="kdseg", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"kdseg {__version__}")
    p.add_argument("--debug", action="store_true", help="show the full traceback of every error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(sub)
    _add_train_commands(sub)
    _add_teacher_commands(sub)
    _add_report_commands(sub)
    from kdseg.fetch.cli import add_fetch_commands  # real datasets: fetch, prepare

    add_fetch_commands(sub)
    _add_debug_flag(sub)
    return p


def error_message(exc: BaseException) -> str | None:
    """The one line a known error prints, or None for an unexpected one (a bug).

    Known: every :class:`~kdseg.errors.KdsegError` (``ConfigError`` names the key,
    ``DataFormatError`` the file) and ``OSError`` (named file and reason, e.g. "No space left
    on device"), also when a library wrapped it (``torch.save``'s ``RuntimeError``). Notes
    added on the way (the checkpoint that was saved) follow on the same line.
    """
    from kdseg.errors import KdsegError
    from kdseg.io import os_error_of

    os_error = os_error_of(exc) if isinstance(exc, OSError | RuntimeError) else None
    if isinstance(exc, KdsegError):
        text = str(exc)
    elif os_error is not None and os_error.strerror:
        name = os_error.filename
        text = f"{name}: {os_error.strerror}" if name is not None else os_error.strerror
    else:
        return None
    notes = list(getattr(exc, "__notes__", ()))
    return " ".join("; ".join([text, *notes]).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("KDSEG_DEBUG", "") not in (
        "",
        "0",
    )
    where = f"kdseg {args.command}"
    with handle_signals():
        try:
            return int(args.func(args))
        except BrokenPipeError:  # stdout closed early (`kdseg methods | head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except KeyboardInterrupt as exc:
            if debug:
                raise
            signum = signal_of(exc)
            what = "interrupted" if signum == signal.SIGINT else "terminated"
            notes = "".join(f"; {n}" for n in getattr(exc, "__notes__", ()))
            print(f"{where}: {what} by {signal.Signals(signum).name}{notes}", file=sys.stderr)
            return SIGNAL_EXIT_BASE + signum
        except Exception as exc:
            message = error_message(exc)
            if message is None or debug:
                raise
            print(f"{where}: error: {message}", file=sys.stderr)
            return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
