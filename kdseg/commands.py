"""Implementations of the ``kdseg`` sub-commands (the parser lives in :mod:`kdseg.cli`).

Each command is a thin wrapper over library functions, so the Snakemake rules and the tests
call the same code. Heavy imports happen inside the commands to keep ``kdseg --help`` fast.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


def parse_key_values(items: Sequence[str] | None, flag: str) -> dict[str, object]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as YAML scalars)."""
    import yaml

    out: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def generate(args: argparse.Namespace) -> int:
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    cfg = StreetConfig.for_scale(args.scale, seed=args.seed)
    out = generate(Path(args.out), cfg, workers=args.workers)
    print(f"synthetic street dataset ({args.scale}, seed {args.seed}) ready at {out}")
    return 0


def check_data(args: argparse.Namespace) -> int:
    """Check a SemanticKITTI-layout root (splits, one frame per sequence) and record it."""
    from kdseg.datasets.semantickitti import SemanticKITTI
    from kdseg.datasets.splits import sequence_split
    from kdseg.io import write_json

    ds = SemanticKITTI(args.data)
    parts = sequence_split(args.data)
    frames = {}
    for seqs in parts.values():
        for seq in seqs:
            ids = ds.frame_ids(seq)
            if not ids:
                raise SystemExit(f"{ds.seq_dir(seq)}: no scans in velodyne/")
            ds.frame(seq, ids[0])  # reads scan, labels, calib and poses: fails loudly if broken
            frames[seq] = len(ids)
    info = {"root": str(Path(args.data).resolve()), "split": parts, "frames": frames}
    write_json(args.out, info)
    print(json.dumps(info))
    return 0


def split(args: argparse.Namespace) -> int:
    from kdseg.budgets import make_split, write_split
    from kdseg.datasets.splits import split_frames

    result = make_split(args.dataset, split_frames(args.data, "train"), args.budget, args.seed)
    write_split(args.out, result)
    print(f"{args.out}: {len(result.labelled)} labelled / {len(result.unlabelled)} unlabelled")
    return 0


def train(args: argparse.Namespace) -> int:
    import torch

    from kdseg.budgets import make_split, read_split
    from kdseg.datasets.splits import split_frames
    from kdseg.run import train_run

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.split:
        budget_split = read_split(args.split)
    elif args.budget:
        name = args.dataset or Path(args.data).name
        budget_split = make_split(name, split_frames(args.data, "train"), args.budget, args.seed)
    else:
        raise SystemExit("kdseg train: give --split FILE or --budget B")
    options = json.loads(args.options_json) if args.options_json else {}
    options.update(parse_key_values(args.option, "--option"))
    run = {
        "data_root": args.data,
        "split": budget_split,
        "method": args.method,
        "out_dir": args.out,
        "scale": args.scale,
        "seed": args.seed,
        "options": options,
        "variant": args.variant,
        "trainer_overrides": parse_key_values(args.trainer, "--trainer"),
        "augment_overrides": parse_key_values(args.augment, "--augment"),
        "features_dir": args.features,
    }
    if args.mlflow_experiment:
        from kdseg.mlflow_tracking import log_run_outputs, tracker_for_job

        tags = {k: str(v) for k, v in parse_key_values(args.tag, "--tag").items()}
        variant = args.variant or args.method
        job_key = args.job_key or (
            f"{budget_split.dataset}/{variant}/{budget_split.budget}/seed{args.seed}"
        )
        with tracker_for_job(args.mlflow_experiment, job_key, tags, args.mlflow_uri) as tracker:
            result = train_run(**run, tracker=tracker)
            log_run_outputs(tracker, args.out)
    else:
        result = train_run(**run)
    print(
        f"{args.variant or args.method} / {budget_split.budget} / seed {args.seed}: "
        f"mIoU {100 * result['miou']:.2f} in {result['wall_time_s']:.1f} s -> {args.out}"
    )
    return 0


def teacher(args: argparse.Namespace) -> int:
    """Train the 2D teacher at a scale (or adopt ``--checkpoint``): DIR/teacher.pt, metrics.json."""
    import torch

    from kdseg.image2d import TeacherOptions, adopt_teacher, train_teacher

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = json.loads(args.options_json) if args.options_json else {}
    overrides.update(parse_key_values(args.option, "--option"))
    if args.checkpoint:
        if overrides:
            raise SystemExit("kdseg teacher: --option/--options-json do not apply to --checkpoint")
        metrics = adopt_teacher(args.data, args.checkpoint, args.out)
        miou = metrics["miou"]
        shown = "not scored (no labels_2)" if miou is None else f"mIoU {100 * miou:.2f}"
        print(f"adopted {args.checkpoint}: {shown} -> {args.out}")
        return 0
    options = TeacherOptions.for_scale(args.scale, **overrides)
    metrics = train_teacher(args.data, args.out, options, source_root=args.source)
    before, after = metrics["miou_before_adaptation"], metrics["miou_after_adaptation"]
    if not metrics["scored"]:
        shown = "not scored (the validation sequences have no labels_2)"
    else:
        shown = f"mIoU {100 * before:.2f} before, " + (
            "no adaptation" if after is None else f"{100 * after:.2f} after adaptation"
        )
    print(f"2D teacher ({args.scale}): {shown} -> {args.out}")
    return 0


def features(args: argparse.Namespace) -> int:
    """Cache the per-point features of every train and val frame (``cache_features``)."""
    import torch

    from kdseg.image2d import cache_features

    if args.threads:
        torch.set_num_threads(args.threads)
    result = cache_features(args.data, args.teacher, args.out)
    print(f"{result['manifest']}: {result['written']} written, {result['reused']} reused")
    return 0


def ignet_figure(args: argparse.Namespace) -> int:
    """Camera image + teacher prediction and BEVs of ground truth, Sup-only and IGNet."""
    from kdseg.viz import save_ignet_figure

    seq, idx = save_ignet_figure(
        args.data, args.teacher, args.sup_only, args.ignet, args.val_frame, args.png, args.pdf
    )
    print(f"frame {seq}/{idx:06d} -> {args.png}, {args.pdf}")
    return 0


def mlflow_init(args: argparse.Namespace) -> int:
    from kdseg.io import write_json
    from kdseg.mlflow_store import init_store

    ids = init_store(args.uri, list(args.experiments))
    write_json(args.out, {"tracking_uri": args.uri, "experiments": ids})
    print(json.dumps(ids))
    return 0


def report(args: argparse.Namespace) -> int:
    """Render one study's tables and figure from its runs' metrics.json files."""
    from kdseg.report.cli import render_study
    from kdseg.report.study import StudyDef

    study = StudyDef.from_dict(json.loads(args.study_json))
    reported = None if args.reported in (None, "none") else Path(args.reported)
    result = render_study(
        study,
        args.metrics,
        args.tex,
        args.pdf,
        args.curve_pdf,
        args.curve_png,
        reported,
        engine=args.engine,
    )
    if args.markdown:
        from kdseg.io import write_text
        from kdseg.report.markdown import table_markdown

        parts = [
            f"{t.caption}\n\n{table_markdown(t)}\n"
            + "".join(f"\n{mark} {text}\n" for mark, text in t.footnotes)
            for t in (result.main, result.per_class)
        ]
        write_text(args.markdown, "\n".join(parts))
    for item in result.missing:
        print(f"missing run: {item}")
    print(f"{study.name}: PDF via {result.engine}; " + ", ".join(map(str, result.outputs)))
    return 0


def stats(args: argparse.Namespace) -> int:
    from kdseg.io import write_text
    from kdseg.realism import dataset_stats, realism_table, yaml_class_shares

    columns = {}
    for item in args.data:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--data expects NAME=PATH, got {item!r}")
        columns[name] = dataset_stats(path, image_size=args.image_size)
    refs = {}
    for item in args.reference_yaml or []:
        name, _, path = item.partition("=")
        refs[name] = yaml_class_shares(path)
    table = realism_table(columns, refs)
    print(table)
    if args.out:
        write_text(args.out, table + "\n")
    return 0


def render(args: argparse.Namespace) -> int:
    from kdseg.datasets.semantickitti import SemanticKITTI
    from kdseg.viz import bev_image, camera_overlay, save_png, with_legend

    ds = SemanticKITTI(args.data)
    has_image = ds.path(args.sequence, "image_2", args.frame).is_file()
    frame = ds.frame(args.sequence, args.frame, with_image=has_image)
    out = Path(args.out)
    stem = f"{args.prefix}{args.sequence}_{args.frame:06d}"
    written = [out / f"{stem}_bev.png"]
    save_png(written[0], with_legend(bev_image(frame.points, frame.labels)))
    if has_image:
        assert frame.image is not None
        save_png(out / f"{stem}_camera.png", with_legend(camera_overlay(frame, frame.labels)))
        save_png(out / f"{stem}_image.png", frame.image)
        written += [out / f"{stem}_camera.png", out / f"{stem}_image.png"]
    print("\n".join(str(p) for p in written))
    return 0
