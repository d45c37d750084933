"""The ``kdseg`` command line: data generation, budget splits, data statistics and pictures.

Each sub-command is a thin wrapper over a library function, so the Snakemake rules and the
tests call the same code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _cmd_generate(args: argparse.Namespace) -> int:
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    cfg = StreetConfig.for_scale(args.scale, seed=args.seed)
    out = generate(Path(args.out), cfg, workers=args.workers)
    print(f"synthetic street dataset ({args.scale}, seed {args.seed}) ready at {out}")
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    from kdseg.budgets import make_split, write_split
    from kdseg.datasets.splits import split_frames

    frames = split_frames(args.data, "train")
    split = make_split(args.dataset, frames, args.budget, args.seed)
    write_split(args.out, split)
    print(f"{args.out}: {len(split.labelled)} labelled / {len(split.unlabelled)} unlabelled scans")
    return 0


def _parse_options(items: Sequence[str] | None) -> dict[str, object]:
    import yaml

    out: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--option expects KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from kdseg.budgets import make_split, read_split
    from kdseg.datasets.splits import split_frames
    from kdseg.run import train_run

    if args.split:
        split = read_split(args.split)
    else:
        if not args.budget:
            raise SystemExit("kdseg train: give --split FILE or --budget B")
        name = args.dataset or Path(args.data).name
        split = make_split(name, split_frames(args.data, "train"), args.budget, args.seed)
    result = train_run(
        args.data,
        split,
        args.method,
        args.out,
        scale=args.scale,
        seed=args.seed,
        options=_parse_options(args.option),
        variant=args.variant,
    )
    print(
        f"{args.method} / {split.budget} / seed {args.seed}: mIoU {100 * result['miou']:.2f} "
        f"in {result['wall_time_s']:.1f} s -> {args.out}/metrics.json"
    )
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"image size must look like 1241x376, got {text!r}"
        ) from None
    return w, h


def _cmd_stats(args: argparse.Namespace) -> int:
    from kdseg.io import write_text
    from kdseg.realism import dataset_stats, realism_table

    columns = {}
    for item in args.data:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--data expects NAME=PATH, got {item!r}")
        columns[name] = dataset_stats(path, image_size=args.image_size)
    table = realism_table(columns)
    print(table)
    if args.out:
        write_text(args.out, table + "\n")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from kdseg.datasets.semantickitti import SemanticKITTI
    from kdseg.viz import bev_image, camera_overlay, save_png, with_legend

    ds = SemanticKITTI(args.data)
    has_image = ds.path(args.sequence, "image_2", args.frame).is_file()
    frame = ds.frame(args.sequence, args.frame, with_image=has_image)
    out = Path(args.out)
    stem = f"{args.prefix}{args.sequence}_{args.frame:06d}"
    save_png(out / f"{stem}_bev.png", with_legend(bev_image(frame.points, frame.labels)))
    written = [out / f"{stem}_bev.png"]
    if has_image:
        save_png(out / f"{stem}_camera.png", with_legend(camera_overlay(frame, frame.labels)))
        save_png(out / f"{stem}_image.png", frame.image)
        written += [out / f"{stem}_camera.png", out / f"{stem}_image.png"]
    print("\n".join(str(p) for p in written))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kdseg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate the embedded synthetic street dataset")
    g.add_argument("--scale", default="default", help="smoke | default")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="dataset root (gets dataset/sequences/...)")
    g.add_argument("--workers", type=int, default=1, help="processes (one sequence each)")
    g.set_defaults(func=_cmd_generate)

    s = sub.add_parser("split", help="write the label-budget split file of a dataset")
    s.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    s.add_argument("--dataset", required=True, help="dataset name recorded in the split")
    s.add_argument("--budget", required=True, help="full | scribbles | scans-P")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True, help="split JSON path")
    s.set_defaults(func=_cmd_split)

    t = sub.add_parser("stats", help="side-by-side realism statistics of datasets")
    t.add_argument("--data", action="append", required=True, metavar="NAME=PATH")
    t.add_argument(
        "--image-size",
        type=_parse_size,
        default=None,
        help="WxH of image_2 for datasets that ship no images (KITTI 00: 1241x376)",
    )
    t.add_argument("--out", help="also write the Markdown table here")
    t.set_defaults(func=_cmd_stats)

    tr = sub.add_parser("train", help="train and evaluate one run, writing DIR/metrics.json")
    tr.add_argument("--data", required=True, help="SemanticKITTI-layout dataset root")
    tr.add_argument("--dataset", help="dataset name (default: the root folder's name)")
    tr.add_argument("--split", help="budget split file (from `kdseg split`)")
    tr.add_argument("--budget", help="budget, when no --split is given (split seeded by --seed)")
    tr.add_argument("--method", required=True, help="registered method name")
    tr.add_argument("--variant", help="method variant name recorded in the metrics")
    tr.add_argument("--option", action="append", metavar="KEY=VALUE", help="method option")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--scale", default="default", help="smoke | default | paper")
    tr.add_argument("--out", required=True, help="run folder")
    tr.set_defaults(func=_cmd_train)

    r = sub.add_parser("render", help="BEV and camera pictures of one frame")
    r.add_argument("--data", required=True)
    r.add_argument("--sequence", required=True)
    r.add_argument("--frame", type=int, required=True)
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--prefix", default="", help="file name prefix")
    r.set_defaults(func=_cmd_render)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
