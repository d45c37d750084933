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
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from kdseg import __version__
from kdseg.cli_parsers import (
    add_data_commands,
    add_registry_commands,
    add_report_commands,
    add_teacher_commands,
    add_tracking_commands,
    add_train_commands,
)
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
  train                  train and evaluate one run (registered methods: `kdseg methods`,
                         backbones: `kdseg backbones`, inputs: `kdseg inputs`)
  teacher, features      IGNet's 2D teacher and its per-point feature cache
  track                  log finished runs to MLflow (the workflow's tracking job)
  report, ignet-figure   tables, budget curves and figures from finished runs
  generate-images, continual-split, train-step, continual-summary, continual-report
                         continual 2D segmentation (VOC/ADE20K tasks, table 3)

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
    from kdseg.datasets.lidar_layouts import FORMATS

    # the workflow passes a dataset's layout here, before the command (rules/common.smk)
    p.add_argument(
        "--data-format",
        dest="main_data_format",
        choices=FORMATS,
        help="layout of --data for check-data, split and train (their own --data-format wins)",
    )
    p.add_argument(
        "--data-version",
        dest="main_data_version",
        metavar="VERSION",
        help="its release (nuscenes: v1.0-trainval)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(sub)
    add_train_commands(sub)
    add_registry_commands(sub)
    add_tracking_commands(sub)
    add_teacher_commands(sub)
    add_report_commands(sub)
    from kdseg.cli_parsers_continual import add_continual_commands  # continual 2D (table 3)

    add_continual_commands(sub)
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
