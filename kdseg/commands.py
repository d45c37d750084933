"""Implementations of the ``kdseg`` sub-commands (the parser lives in :mod:`kdseg.cli`).

Each command is a thin wrapper over library functions, so the Snakemake rules and the tests
call the same code. Heavy imports happen inside the commands to keep ``kdseg --help`` fast.
Bad input raises ``ConfigError``/``DataFormatError``; :func:`kdseg.cli.main` prints them.
"""

from __future__ import annotations

import argparse
import json
import sys
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
    from kdseg.options import build

    values = parse_key_values(items, "--augment")
    checked = build(AugmentConfig, values, prefix="augment.", what="augmentation")
    return {k: getattr(checked, k) for k in values}


def input_values(args: argparse.Namespace) -> dict[str, str | None]:
    """``--input NAME=VALUE`` items (``--features DIR`` is ``--input features_2d=DIR``)."""
    values: dict[str, str | None] = {}
    for item in args.input or []:
        name, sep, value = item.partition("=")
        if not name.strip():
            raise ConfigError("--input", f"expects NAME=VALUE or NAME, got {item!r}")
        values[name.strip()] = value if sep else None
    if args.features:
        if values.get("features_2d", args.features) != args.features:
            raise ConfigError("--features", "contradicts --input features_2d=...")
        values["features_2d"] = args.features
    return values


def generate(args: argparse.Namespace) -> int:
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    cfg = StreetConfig.for_scale(args.scale, seed=args.seed)
    out = generate(Path(args.out), cfg, workers=args.workers)
    print(f"synthetic street dataset ({args.scale}, seed {args.seed}) ready at {out}")
    return 0


def data_layout(args: argparse.Namespace) -> tuple[str, str | None]:
    """``(format, version)`` of ``--data``: the command's ``--data-format``/``--data-version``,
    else those given before the command (``kdseg --data-format nuscenes train ...``, how the
    workflow passes a dataset's layout), else SemanticKITTI."""
    main = getattr(args, "main_data_format", None)
    fmt = args.data_format or main or "semantickitti"
    main_version = getattr(args, "main_data_version", None) if fmt == main else None
    return fmt, args.data_version or main_version


def _layout(args: argparse.Namespace) -> Any:
    """The layout of ``--data`` (:func:`data_layout`, :func:`open_layout`)."""
    from kdseg.datasets.lidar_layouts import open_layout

    return open_layout(args.data, *data_layout(args))


def check_data(args: argparse.Namespace) -> int:
    """Check a LiDAR dataset root (every scan and label file, a validation sequence, one whole
    frame per sequence or scene) and record it (:meth:`LidarLayout.check`)."""
    from kdseg.io import write_json

    info = _layout(args).check()
    write_json(args.out, info)
    print(json.dumps(info))
    return 0


def split(args: argparse.Namespace) -> int:
    from kdseg.budgets import STANDARD_BUDGETS, write_split

    result = _layout(args).draw_split(args.dataset, args.budget, args.seed)
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
    """Check the options, the data and the split, then train one run (:func:`train_run`).

    With ``--mlflow-experiment`` the run is then logged to MLflow by the tracking code
    (:func:`kdseg.tracking.sync.track_runs`, as ``kdseg track`` would), also when it is
    interrupted (status ``KILLED``) or fails; the store and experiment are checked first.
    """
    import torch

    from kdseg.budgets import read_split
    from kdseg.inputs import PROVIDERS
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
    inputs = input_values(args)
    for name in inputs:
        PROVIDERS.get(name)  # an unknown input name is refused before training
    layout = _layout(args)
    layout.validation_frames()  # a run must be scorable: refuse before training
    if args.split:
        budget_split = read_split(args.split)
        layout.check_split(budget_split, args.split, dataset=args.dataset)
    elif args.budget:
        name = args.dataset or Path(args.data).name
        budget_split = layout.draw_split(name, args.budget, args.seed)
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
        "inputs": inputs,
        "schedule": args.schedule,
        "data_format": data_layout(args)[0],
        "data_version": data_layout(args)[1],
    }
    if not args.mlflow_experiment:
        result = train_run(**run)
    else:
        from kdseg.commands_tracking import track_after_train
        from kdseg.tracking.store import experiment_id, open_existing_store

        client, uri = open_existing_store(args.mlflow_uri)  # fail before training, not after
        experiment_id(client, args.mlflow_experiment, uri)
        tags = {k: str(v) for k, v in parse_key_values(args.tag, "--tag").items()}
        try:
            result = train_run(**run)
        except BaseException as exc:
            track_after_train(args, uri, tags, exc)
            raise
        track_after_train(args, uri, tags, None)
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
