"""The ``kdseg`` command line (argument parsing; the commands live in :mod:`kdseg.commands`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kdseg import commands


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"image size must look like 1241x376, not {text!r}"
        ) from None
    return w, h


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="generate the embedded synthetic street dataset")
    g.add_argument("--scale", default="default", help="smoke | default")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="dataset root (gets dataset/sequences/...)")
    g.add_argument("--workers", type=int, default=1, help="processes (one sequence each)")
    g.set_defaults(func=commands.generate)

    c = sub.add_parser("check-data", help="check a SemanticKITTI-layout root and record it")
    c.add_argument("--data", required=True, help="dataset root (holds dataset/sequences)")
    c.add_argument("--out", required=True, help="JSON record of the checked dataset")
    c.set_defaults(func=commands.check_data)

    s = sub.add_parser("split", help="write the label-budget split file of a dataset")
    s.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    s.add_argument("--dataset", required=True, help="dataset name recorded in the split")
    s.add_argument("--budget", required=True, help="full | scribbles | scans-P")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True, help="split JSON path")
    s.set_defaults(func=commands.split)

    t = sub.add_parser("stats", help="side-by-side realism statistics of datasets")
    t.add_argument("--data", action="append", required=True, metavar="NAME=PATH")
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
    r.add_argument("--data", required=True)
    r.add_argument("--sequence", required=True)
    r.add_argument("--frame", type=int, required=True)
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--prefix", default="", help="file name prefix")
    r.set_defaults(func=commands.render)


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser("train", help="train and evaluate one run, writing DIR/metrics.json")
    tr.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    tr.add_argument("--dataset", help="dataset name (default: the root folder's name)")
    tr.add_argument("--split", help="budget split file (from `kdseg split`)")
    tr.add_argument("--budget", help="budget, when no --split is given (split seeded by --seed)")
    tr.add_argument("--method", required=True, help="registered method name")
    tr.add_argument("--variant", help="method variant name recorded in the metrics")
    tr.add_argument("--option", action="append", metavar="KEY=VALUE", help="method option")
    tr.add_argument("--options-json", help="method options as one JSON object")
    tr.add_argument(
        "--trainer", action="append", metavar="KEY=VALUE", help="override a trainer setting"
    )
    tr.add_argument(
        "--augment", action="append", metavar="KEY=VALUE", help="override an augmentation"
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--scale", default="default", help="smoke | default | paper")
    tr.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    tr.add_argument("--out", required=True, help="run folder")
    tr.add_argument(
        "--features", help="2D feature cache folder (from `kdseg features`) for IGNet-type methods"
    )
    tr.add_argument("--mlflow-experiment", help="log the run to this MLflow experiment")
    tr.add_argument("--mlflow-uri", help="tracking URI (default: $MLFLOW_TRACKING_URI or sqlite)")
    tr.add_argument("--job-key", help="stable job identifier (MLflow tag kdseg.job_key)")
    tr.add_argument("--tag", action="append", metavar="KEY=VALUE", help="MLflow run tag")
    tr.set_defaults(func=commands.train)

    m = sub.add_parser("mlflow-init", help="create the MLflow store and experiments once")
    m.add_argument("--uri", required=True, help="tracking URI")
    m.add_argument("--out", required=True, help="JSON record: experiment name -> id")
    m.add_argument("experiments", nargs="+", help="experiment names")
    m.set_defaults(func=commands.mlflow_init)


def _add_teacher_commands(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("teacher", help="train (or adopt) the 2D teacher: DIR/teacher.pt + metrics")
    t.add_argument("--data", required=True, help="SemanticKITTI-layout root (target camera)")
    t.add_argument("--source", help="root whose source/ images train the teacher (default: --data)")
    t.add_argument("--out", required=True, help="folder for teacher.pt and metrics.json")
    t.add_argument("--scale", default="default", help="smoke | default | paper")
    t.add_argument("--option", action="append", metavar="KEY=VALUE", help="teacher option")
    t.add_argument("--options-json", help="teacher options as one JSON object")
    t.add_argument("--checkpoint", help="adopt this teacher checkpoint instead of training")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    t.set_defaults(func=commands.teacher)

    f = sub.add_parser("features", help="cache the 2D teacher's per-point features")
    f.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    f.add_argument("--teacher", required=True, help="teacher checkpoint (teacher.pt)")
    f.add_argument("--out", required=True, help="cache folder (gets manifest.json last)")
    f.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    f.set_defaults(func=commands.features)

    g = sub.add_parser("ignet-figure", help="camera + BEV picture of Sup-only vs IGNet on a frame")
    g.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    g.add_argument("--teacher", required=True, help="2D teacher checkpoint (teacher.pt)")
    g.add_argument("--sup-only", required=True, help="run folder of Sup-only (model.pt)")
    g.add_argument("--ignet", required=True, help="run folder of IGNet (model.pt)")
    g.add_argument("--val-frame", type=int, default=0, help="index among the validation frames")
    g.add_argument("--png", required=True, help="output PNG")
    g.add_argument("--pdf", required=True, help="output PDF")
    g.set_defaults(func=commands.ignet_figure)


def _add_report_commands(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="render a study's tables (LaTeX, PDF) and budget curve")
    r.add_argument("--study-json", required=True, help="study definition (JSON object)")
    r.add_argument("--reported", help="reported_numbers.csv to print beside ours, or 'none'")
    r.add_argument("--tex", required=True)
    r.add_argument("--pdf", required=True)
    r.add_argument("--curve-pdf", required=True)
    r.add_argument("--curve-png", required=True)
    r.add_argument("--engine", choices=["auto", "latex", "matplotlib"], default="auto")
    r.add_argument("--markdown", help="also write the tables as Markdown here")
    r.add_argument("metrics", nargs="*", help="metrics.json files of the study's runs")
    r.set_defaults(func=commands.report)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kdseg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    _add_train_commands(sub)
    _add_teacher_commands(sub)
    _add_report_commands(sub)
    from kdseg.fetch.cli import add_fetch_commands  # real datasets: fetch, prepare

    add_fetch_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
