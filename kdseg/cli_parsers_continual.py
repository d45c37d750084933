"""The ``kdseg`` sub-command parsers of the continual 2D family (the commands live in
:mod:`kdseg.commands_continual`): ``generate-images``, ``continual-split``, ``train-step``,
``continual-summary`` and ``continual-report``."""

from __future__ import annotations

import argparse

from kdseg import commands_continual
from kdseg.cli_parsers import _count, _seed, _threads


def add_continual_commands(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "generate-images",
        help="generate the embedded synthetic VOC data (or its ADE20K-layout stand-in)",
        description="Write the synthetic VOC images (Pascal VOC layout, class lists in "
        "cl_metadata/), or with --dataset ade20k the same scenes in the ADEChallengeData2016 "
        "layout with the 20 classes spread over ADE20K's ids (a smoke-scale stand-in for the "
        "ADE20K protocols). meta.json is written last.",
    )
    g.add_argument("--dataset", choices=("voc", "ade20k"), default="voc", help="layout")
    g.add_argument("--preset", default="default", help="smoke | default | paper")
    g.add_argument("--seed", type=_seed, default=0, help="generator seed (default 0)")
    g.add_argument("--workers", type=_count, default=1, help="processes (VOC layout only)")
    g.add_argument("--out", required=True, help="dataset root to create")
    g.set_defaults(func=commands_continual.generate_images)

    s = sub.add_parser(
        "continual-split",
        help="write the per-step index files of a continual task",
        description="Apply the task's rules (filter_images overlap/disjoint, test sets on the "
        "classes seen so far) to the per-image class lists and write step-<t>.json per step, "
        "then task.json (last).",
    )
    s.add_argument("--class-lists", required=True, help="folder with train_cls.txt, val_cls.txt")
    s.add_argument("--dataset", required=True, choices=("voc", "ade20k"))
    s.add_argument("--task", required=True, help="15-5, 15-1, 19-1, 10-1, 100-50, offline, ...")
    s.add_argument("--setting", default="overlap", choices=("overlap", "disjoint"))
    s.add_argument(
        "--train-selection",
        default="filter_images",
        choices=("filter_images", "mib_partition"),
        help="filter_images (default) or MiB's shipped ADE20K partition (disjoint only)",
    )
    s.add_argument("--out", required=True, help="folder of the index files")
    s.set_defaults(func=commands_continual.continual_split)

    t = sub.add_parser(
        "train-step",
        help="train and evaluate one step of a continual task (DIR/metrics.json, model.pt)",
        description="Train one continual 2D method on step T of a task (its index files from "
        "`kdseg continual-split`) and evaluate it on the step's test set (every class seen so "
        "far). From step 1 on, --input old_model=DIR names the previous step's run: its model "
        "is the starting point and the frozen teacher. An interrupted run resumes.",
    )
    t.add_argument("--data", required=True, help="dataset root (VOC or ADE20K layout)")
    t.add_argument("--split-dir", required=True, help="the task's index files (task.json)")
    t.add_argument("--step", type=_count, required=True, help="the step to train")
    t.add_argument("--method", required=True, help="continual method (`kdseg methods`)")
    t.add_argument("--variant", help="variant name recorded in the metrics (default: method)")
    t.add_argument("--option", action="append", metavar="KEY=VALUE", help="method option")
    t.add_argument("--options-json", metavar="JSON", help="method options as one JSON object")
    t.add_argument("--trainer", action="append", metavar="KEY=VALUE", help="trainer setting")
    t.add_argument("--augment", action="append", metavar="KEY=VALUE", help="image augmentation")
    t.add_argument("--seed", type=_seed, default=0, help="run seed: initial weights, batches")
    t.add_argument("--scale", default="default", help="smoke | default | paper")
    t.add_argument("--schedule", type=float, default=1.0, help="multiply the step's epochs")
    t.add_argument(
        "--input", action="append", metavar="NAME=VALUE", help="an input (old_model=RUN_DIR)"
    )
    _threads(t)
    t.add_argument("--out", required=True, help="run folder of the step")
    t.set_defaults(func=commands_continual.train_step)

    m = sub.add_parser(
        "continual-summary",
        help="write a continual task's run folder from its steps (metrics.json, model.pt)",
    )
    m.add_argument("--out", required=True, help="the task's run folder")
    m.add_argument("steps", nargs="+", metavar="STEP_DIR", help="step folders, step 0 first")
    m.set_defaults(func=commands_continual.continual_summary)

    r = sub.add_parser(
        "continual-report",
        help="render a continual study's table (LaTeX, PDF, Markdown) and its step figure",
    )
    r.add_argument("--study-json", required=True, help="study definition (JSON object)")
    r.add_argument("--reported", help="reported_numbers.csv to print beside ours, or 'none'")
    r.add_argument("--tex", required=True, help="LaTeX table to write")
    r.add_argument("--pdf", required=True, help="PDF table to write")
    r.add_argument("--markdown", required=True, help="Markdown table to write")
    r.add_argument("--figure-pdf", required=True, help="per-step mIoU figure, PDF")
    r.add_argument("--figure-png", required=True, help="per-step mIoU figure, PNG")
    r.add_argument("--engine", choices=["auto", "latex", "matplotlib"], default="auto")
    r.add_argument("metrics", nargs="*", help="task records (run folders' metrics.json)")
    r.set_defaults(func=commands_continual.continual_report)
