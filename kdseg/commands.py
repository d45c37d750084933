"""Implementations of the ``kdseg`` sub-commands (the parser lives in :mod:`kdseg.cli`).

Each command is a thin wrapper over library functions, so the Snakemake rules and the tests
call the same code. Heavy imports happen inside the commands to keep ``kdseg --help`` fast.
Bad input raises ``ConfigError``/``DataFormatError``; :func:`kdseg.cli.main` prints them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdseg.errors import ConfigError


def parse_value(text: str) -> object:
    """A ``KEY=VALUE`` value: an int, a float in Python's syntax (``1e-3``, ``.5``), ``None``,
    else YAML (``true``, ``null``, ``[0.9, 1.1]``), else the text itself."""
    import yaml

    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    if text.strip() == "None":  # Python's spelling; YAML's is null (and "none" is a string)
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_key_values(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values: :func:`parse_value`)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(flag, f"expects KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def parse_json_object(text: str | None, flag: str) -> dict[str, Any]:
    """The JSON object of an option like ``--options-json`` (``{}`` when not given)."""
    if text is None:
        return {}
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON ({exc.msg} at character {exc.pos}): {text!r}"
        raise ConfigError(flag, problem) from None
    if not isinstance(obj, dict):
        raise ConfigError(flag, f"must be a JSON object, got {type(obj).__name__} {obj!r}")
    return obj


def augment_overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """``--augment KEY=VALUE`` items checked against ``AugmentConfig``'s fields and types."""
    from kdseg.lidar_data import AugmentConfig

    fields = {f.name: f for f in dataclasses.fields(AugmentConfig)}
    values = parse_key_values(items, "--augment")
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"augment.{key}", f"unknown augmentation; known: {sorted(fields)}")
        values[key] = _like(f"augment.{key}", value, fields[key].default)
    return values


def _like(key: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (int -> float, list -> tuple), or
    ``ConfigError`` naming ``key``."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok, value = number, float(value) if number else value
    elif isinstance(default, tuple):
        items = value if isinstance(value, list | tuple) else None
        ok = items is not None and len(items) == len(default)
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in items)
        value = tuple(float(v) for v in items) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(key, f"expected a value like {default!r}, got {value!r}")
    return value


def generate(args: argparse.Namespace) -> int:
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    cfg = StreetConfig.for_scale(args.scale, seed=args.seed)
    out = generate(Path(args.out), cfg, workers=args.workers)
    print(f"synthetic street dataset ({args.scale}, seed {args.seed}) ready at {out}")
    return 0


def check_data(args: argparse.Namespace) -> int:
    """Check a SemanticKITTI-layout root (every scan and label file, a validation sequence,
    one whole frame per sequence) and record it (:func:`kdseg.datasets.splits.check_dataset`)."""
    from kdseg.datasets.splits import check_dataset
    from kdseg.io import write_json

    info = check_dataset(args.data)
    write_json(args.out, info)
    print(json.dumps(info))
    return 0


def split(args: argparse.Namespace) -> int:
    from kdseg.budgets import STANDARD_BUDGETS, write_split
    from kdseg.datasets.splits import draw_split

    result = draw_split(args.data, args.dataset, args.budget, args.seed)
    write_split(args.out, result)
    if result.custom_budget:
        print(
            f"note: {result.budget} is not one of the documented budgets {list(STANDARD_BUDGETS)}"
            "; drawn and recorded as custom_budget: true",
            file=sys.stderr,
        )
    print(f"{args.out}: {len(result.labelled)} labelled / {len(result.unlabelled)} unlabelled")
    return 0


def train(args: argparse.Namespace) -> int:
    """Check the options, the data and the split, then train one run (:func:`train_run`)."""
    import torch

    from kdseg.budgets import read_split
    from kdseg.datasets.splits import check_split, draw_split, validation_frames
    from kdseg.methods.base import method_class
    from kdseg.run import train_run
    from kdseg.scales import get_scale

    if args.threads:
        torch.set_num_threads(args.threads)
    get_scale(args.scale)
    method_class(args.method)
    options = parse_json_object(args.options_json, "--options-json")
    options.update(parse_key_values(args.option, "--option"))
    trainer = parse_key_values(args.trainer, "--trainer")
    augment = augment_overrides(args.augment)
    validation_frames(args.data)  # a run must be scorable: refuse before training
    if args.split:
        budget_split = read_split(args.split)
        check_split(budget_split, args.split, args.data, dataset=args.dataset)
    elif args.budget:
        name = args.dataset or Path(args.data).name
        budget_split = draw_split(args.data, name, args.budget, args.seed)
    else:
        raise ConfigError("--split", "give --split FILE (from `kdseg split`) or --budget B")
    run = {
        "data_root": args.data,
        "split": budget_split,
        "method": args.method,
        "out_dir": args.out,
        "scale": args.scale,
        "seed": args.seed,
        "options": options,
        "variant": args.variant,
        "trainer_overrides": trainer,
        "augment_overrides": augment,
        "features_dir": args.features,
        "schedule": args.schedule,
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
    overrides = parse_json_object(args.options_json, "--options-json")
    overrides.update(parse_key_values(args.option, "--option"))
    if args.checkpoint:
        if overrides:
            raise ConfigError("--checkpoint", "--option/--options-json do not apply to it")
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


def methods(args: argparse.Namespace) -> int:
    """Print the registered methods with their options, defaults and help."""
    from kdseg.methods.base import list_methods, method_class, options_help

    for k, name in enumerate(args.names or list_methods()):
        cls = method_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        print(("\n" if k else "") + f"{name}: {doc[0] if doc else ''}")
        if cls.requires:
            print(f"  requires: {', '.join(sorted(cls.requires))}")
        helps = options_help(name)
        rows = []
        for f in dataclasses.fields(cls.Options):
            missing = f.default is dataclasses.MISSING
            default = f.default_factory() if missing else f.default  # type: ignore[misc]
            rows.append((f"{f.name}={default!r}", helps.get(f.name, "")))
        width = max((len(a) for a, _ in rows), default=0)
        for left, text in rows:
            head = f"  {left:<{width}}  "
            print(textwrap.fill(text, 100, initial_indent=head, subsequent_indent=" " * len(head)))
    return 0


def mlflow_init(args: argparse.Namespace) -> int:
    from kdseg.io import write_json
    from kdseg.mlflow_store import init_store

    ids = init_store(args.uri, list(args.experiments))
    write_json(args.out, {"tracking_uri": args.uri, "experiments": ids})
    print(json.dumps(ids))
    return 0


def convergence(args: argparse.Namespace) -> int:
    """Render the convergence figure and its checks from the study's runs."""
    from kdseg.report.convergence import render_convergence

    checks = render_convergence(
        args.metrics, args.iterations, args.title, args.pdf, args.png, args.markdown
    )
    print(f"convergence at {args.iterations} iterations: {checks.passed()}")
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
            raise ConfigError("--data", f"expects NAME=PATH, got {item!r}")
        columns[name] = dataset_stats(path, image_size=args.image_size)
    refs = {}
    for item in args.reference_yaml or []:
        name, _, path = item.partition("=")
        if not path:
            raise ConfigError("--reference-yaml", f"expects NAME=PATH, got {item!r}")
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
