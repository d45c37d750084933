"""The ``kdseg`` sub-command parsers (the commands live in :mod:`kdseg.commands`,
:mod:`kdseg.commands_registry` and :mod:`kdseg.commands_tracking`)."""

from __future__ import annotations

import argparse
import textwrap

from kdseg import commands, commands_registry, commands_tracking


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


def _data_layout(p: argparse.ArgumentParser) -> None:
    """``--data-format`` and ``--data-version``: which layout ``--data`` is read in."""
    from kdseg.datasets.lidar_layouts import FORMATS

    p.add_argument(
        "--data-format",
        choices=FORMATS,
        help="layout of --data (default semantickitti; nuscenes: nuScenes-lidarseg)",
    )
    p.add_argument(
        "--data-version",
        metavar="VERSION",
        help="release of a nuscenes root (v1.0-trainval or v1.0-mini)",
    )


def add_data_commands(sub: argparse._SubParsersAction) -> None:
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
        help="check a LiDAR dataset (SemanticKITTI or nuScenes layout) and record it",
        description="Check every training and validation scan (size a multiple of 16 bytes; "
        "nuScenes: 20), its labels and scribbles (4 bytes per point; nuScenes: 1), poses, one "
        "whole frame per sequence (scene), and that a validation sequence (scene) exists; "
        "write a JSON record of the dataset.",
    )
    c.add_argument("--data", required=True, help="dataset root (holds dataset/sequences)")
    _data_layout(c)
    c.add_argument("--out", required=True, help="JSON record of the checked dataset")
    c.set_defaults(func=commands.check_data)

    s = sub.add_parser(
        "split",
        help="draw the label-budget split file of a dataset",
        description="Draw which training scans carry labels under a budget. Documented "
        "budgets: full, scribbles, scans-1, scans-10, scans-20, scans-50; any other scans-P "
        "(0 < P <= 100) is drawn too and recorded as a custom budget.",
    )
    s.add_argument("--data", required=True, help="dataset root (see --data-format)")
    _data_layout(s)
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
    from kdseg.lidar_data import AugmentConfig
    from kdseg.options import helps
    from kdseg.trainer_config import TrainerConfig

    def block(title: str, helps: dict[str, str]) -> str:
        width = max(map(len, helps))
        rows = [
            textwrap.fill(
                v, 100, initial_indent=f"  {k:<{width}}  ", subsequent_indent=" " * (width + 4)
            )
            for k, v in helps.items()
        ]
        return title + "\n" + "\n".join(rows)

    augment = helps(AugmentConfig)
    return "\n\n".join(
        [
            block("--trainer keys (defaults come from --scale):", TrainerConfig.help()),
            block("--augment keys:", augment),
            "--option keys: the options of the method, listed with defaults and help by "
            "`kdseg methods METHOD`; --input names and values: `kdseg inputs`.\nValues are "
            "numbers (1e-3 works), true/false, null, [lists] or strings.",
        ]
    )


def add_train_commands(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser(
        "train",
        help="train and evaluate one run, writing DIR/metrics.json and DIR/model.pt",
        description="Train one method variant on a label-budget split and evaluate it on the "
        "validation sequences. The data and the split are checked before training. Rerun on "
        "the same --out: an interrupted run resumes from its checkpoint, a finished one trains "
        "again from scratch; the previous metrics.json and model.pt stay until replaced.",
        epilog_fn=_train_epilog,
    )
    tr.add_argument("--data", required=True, help="dataset root (see --data-format)")
    _data_layout(tr)
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
        "--input",
        action="append",
        metavar="NAME=VALUE",
        help="an input the method requires (repeatable; names and values: `kdseg inputs`)",
    )
    tr.add_argument(
        "--features", metavar="DIR", help="alias of --input features_2d=DIR (a 2D feature cache)"
    )
    tr.add_argument(
        "--mlflow-experiment",
        help="after the run (also when interrupted), log it to this MLflow experiment as "
        "`kdseg track` does (the workflow's tracking job does this instead)",
    )
    tr.add_argument("--mlflow-uri", help="tracking URI (default: $MLFLOW_TRACKING_URI or sqlite)")
    tr.add_argument("--job-key", help="stable job identifier (MLflow tag kdseg.job_key)")
    tr.add_argument("--tag", action="append", metavar="KEY=VALUE", help="MLflow run tag")
    tr.set_defaults(func=commands.train)


def add_registry_commands(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser(
        "methods",
        help="list the registered methods with their options, defaults and help",
        description="List registered methods (the values of `kdseg train --method`, built-in, "
        "from the kdseg.methods entry-point group, or module:Class) with the inputs they "
        "require and the options `--option KEY=VALUE` accepts, their defaults and help.",
    )
    m.add_argument("names", nargs="*", metavar="METHOD", help="only these methods")
    m.set_defaults(func=commands_registry.methods)

    b = sub.add_parser(
        "backbones",
        help="list the registered backbones with their view, arguments, defaults and help",
        description="List registered backbones (method option `backbone`) with their view "
        "(voxel, range, image) and the arguments of their factories.",
    )
    b.add_argument("names", nargs="*", metavar="BACKBONE", help="only these backbones")
    b.set_defaults(func=commands_registry.backbones)

    n = sub.add_parser(
        "inputs",
        help="list the input providers: what they give a method, their value and settings",
        description="List the registered inputs (a method's `requires`): what `kdseg train "
        "--input NAME=VALUE` takes and the settings of a variant's `inputs.NAME` block.",
    )
    n.add_argument("names", nargs="*", metavar="INPUT", help="only these inputs")
    n.set_defaults(func=commands_registry.inputs)


def add_tracking_commands(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser(
        "mlflow-init",
        help="create the MLflow store and experiments once, before tracking jobs",
    )
    i.add_argument("--uri", required=True, help="tracking URI, e.g. sqlite:///results/mlflow.db")
    i.add_argument("--out", required=True, help="JSON record: experiment name -> id")
    i.add_argument("experiments", nargs="+", help="experiment names")
    i.set_defaults(func=commands_tracking.mlflow_init)

    t = sub.add_parser(
        "track",
        help="log run folders to MLflow (idempotent; what the workflow's tracking job runs)",
        description="Log finished or stopped runs to an MLflow experiment from their folders "
        "(metrics.json, train_log.jsonl, run_config.json): params, loss curves, each final "
        "value once, tags, artifacts and the run's status. A folder already logged with the "
        "same files is skipped; a changed one is logged again and its previous MLflow run "
        "marked superseded.",
    )
    t.add_argument("--experiment", required=True, help="MLflow experiment name")
    t.add_argument("--uri", help="tracking URI (default: $MLFLOW_TRACKING_URI or sqlite)")
    t.add_argument(
        "--jobs-json", metavar="JSON", help="the runs as a JSON list of {run_dir, job_key, tags}"
    )
    t.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag of every run")
    t.add_argument("--models", action="store_true", help="also log model.pt as an artifact")
    t.add_argument("--out", help="JSON record of what was logged (the workflow's marker)")
    t.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run folders")
    t.set_defaults(func=commands_tracking.track)


def add_teacher_commands(sub: argparse._SubParsersAction) -> None:
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


def add_report_commands(sub: argparse._SubParsersAction) -> None:
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
