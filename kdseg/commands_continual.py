"""Implementations of the continual 2D sub-commands (parsers: :mod:`kdseg.cli_parsers_continual`).

Thin wrappers over library functions, so the Snakemake rules (``rules/continual.smk``) and the
tests call the same code; heavy imports happen inside the commands. Bad input raises
``ConfigError``/``DataFormatError``, which :func:`kdseg.cli.main` prints as one line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kdseg.commands import parse_json_object, parse_key_values
from kdseg.errors import ConfigError


def input_values(items: list[str] | None) -> dict[str, str | None]:
    """``--input NAME=VALUE`` items (``NAME`` alone: no value)."""
    values: dict[str, str | None] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not name.strip():
            raise ConfigError("--input", f"expects NAME=VALUE or NAME, got {item!r}")
        values[name.strip()] = value if sep else None
    return values


def generate_images(args: argparse.Namespace) -> int:
    """The synthetic VOC data, or its ADE20K-layout stand-in (``--dataset ade20k``)."""
    from kdseg.datasets.synthetic_voc import SyntheticVOCConfig, generate

    cfg = SyntheticVOCConfig.for_preset(args.preset, seed=args.seed)
    if args.dataset == "ade20k":
        from kdseg.datasets.synthetic_voc.ade import generate_ade

        out = generate_ade(args.out, cfg)
    else:
        out = generate(args.out, cfg, workers=max(1, args.workers))
    print(f"synthetic {args.dataset} ({args.preset}, seed {args.seed}): "
          f"{cfg.train_images} + {cfg.val_images} images at {out}")  # fmt: skip
    return 0


def continual_split(args: argparse.Namespace) -> int:
    """The per-step index files of a task (:func:`kdseg.datasets.continual_split.
    write_task_split`)."""
    from kdseg.datasets.continual_split import write_task_split

    path = write_task_split(
        args.class_lists, args.dataset, args.task, args.setting, args.out, args.train_selection
    )
    counts = json.loads(path.read_text())["counts"]
    for part in ("train", "val", "test"):
        print(f"{part}: {', '.join(str(n) for n in counts[part])}")
    return 0


def train_step(args: argparse.Namespace) -> int:
    """Check the options, then train and evaluate one step (:func:`kdseg.run_continual.
    train_step`)."""
    import torch

    from kdseg.continual.data import augment_from_dict
    from kdseg.continual.scales import get_continual_scale
    from kdseg.continual.step import FAMILY
    from kdseg.inputs import PROVIDERS
    from kdseg.methods.base import method_class
    from kdseg.run_continual import train_step as run_step

    if args.threads:
        torch.set_num_threads(args.threads)
    get_continual_scale(args.scale)
    method_class(args.method, family=FAMILY)
    options = parse_json_object(args.options_json, "--options-json")
    options.update(parse_key_values(args.option, "--option"))
    augment = parse_key_values(args.augment, "--augment")
    augment_from_dict(augment)  # refused before training, not after
    inputs = input_values(args.input)
    for name in inputs:
        PROVIDERS.get(name)
    result = run_step(
        args.data,
        args.split_dir,
        args.step,
        args.method,
        args.out,
        scale=args.scale,
        seed=args.seed,
        options=options,
        trainer_overrides=parse_key_values(args.trainer, "--trainer"),
        augment_overrides=augment,
        variant=args.variant,
        inputs=inputs,
        schedule=args.schedule,
    )
    scores = result["continual"]["scores"]
    shown = ", ".join(f"{k} {100 * v:.2f}" for k, v in scores.items() if v is not None)
    print(f"{args.variant or args.method} / {result['config']['task']} step {args.step} / seed "
          f"{args.seed}: {shown} in {result['wall_time_s']:.1f} s -> {args.out}")  # fmt: skip
    return 0


def continual_summary(args: argparse.Namespace) -> int:
    """The task's run folder from its step folders (:func:`kdseg.continual_record.
    summarise_task`)."""
    from kdseg.continual_record import summarise_task

    record = summarise_task(args.steps, args.out)
    cont = record["continual"]
    mean = cont["miou_mean_over_steps"]
    shown = "n/a" if mean is None else f"{100 * mean:.2f}"
    print(f"{args.out}: {len(cont['steps'])} steps, final mIoU {100 * record['miou']:.2f}, "
          f"mean over steps {shown}")  # fmt: skip
    return 0


def continual_report(args: argparse.Namespace) -> int:
    """Render a continual study (:func:`kdseg.report.continual.render_continual`)."""
    from kdseg.report.continual import ContinualStudy, render_continual

    study = ContinualStudy.from_dict(json.loads(args.study_json))
    reported = None if args.reported in (None, "none") else Path(args.reported)
    result: Any = render_continual(
        study,
        args.metrics,
        tex=args.tex,
        pdf=args.pdf,
        markdown=args.markdown,
        figure_pdf=args.figure_pdf,
        figure_png=args.figure_png,
        reported_csv=reported,
        engine=args.engine,
    )
    for item in result.missing:
        print(f"missing run: {item}")
    print(f"{study.name}: PDF via {result.engine}; " + ", ".join(map(str, result.outputs)))
    return 0
