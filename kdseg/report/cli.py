"""Entry points the workflow calls: :func:`render_study` and ``python -m kdseg.report.cli``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kdseg.errors import ConfigError, DataFormatError
from kdseg.io import write_text
from kdseg.report.collect import collect_runs
from kdseg.report.figures import save_budget_curve
from kdseg.report.latex import render_document
from kdseg.report.pdf import Engine, write_pdf
from kdseg.report.reported import load_reported, match_reported
from kdseg.report.study import StudyDef
from kdseg.report.tables import Table, build_main_table, build_per_class_table

log = logging.getLogger("kdseg.report.cli")


@dataclass
class RenderResult:
    """What :func:`render_study` produced."""

    main: Table
    per_class: Table
    engine: str
    missing: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)


def render_study(
    study: StudyDef,
    metrics_files: Sequence[str | Path],
    out_tex: str | Path,
    out_pdf: str | Path,
    out_fig_pdf: str | Path,
    out_fig_png: str | Path,
    reported_csv: str | Path | None = None,
    *,
    reported: bool | None = None,
    engine: Engine = "auto",
) -> RenderResult:
    """Build the study's tables and figure from ``metrics_files`` and write all four outputs.

    Args:
        study: rows, columns, seeds, reported-number mapping.
        metrics_files: the runs' ``metrics.json`` files (missing runs become "–" cells).
        out_tex: standalone LaTeX document (main table + per-class table).
        out_pdf: the same tables as PDF (LaTeX if a toolchain exists, else matplotlib).
        out_fig_pdf, out_fig_png: the budget curve.
        reported_csv: ``reported_numbers.csv``.
        reported: add reported rows; ``None`` means "when ``reported_csv`` is given".
        engine: ``"auto"``, ``"latex"`` or ``"matplotlib"`` (see :func:`write_pdf`).
    """
    want_reported = reported_csv is not None if reported is None else reported
    if want_reported and reported_csv is None:
        raise ConfigError("reported", "reported rows asked for but no reported_csv given")
    if want_reported and study.reported is None:
        raise ConfigError("reported", f"study {study.name!r} has no reported-number mapping")
    runs = collect_runs(metrics_files)
    rep_rows = (
        match_reported(study, load_reported(reported_csv))
        if want_reported and reported_csv is not None
        else []
    )
    main = build_main_table(study, runs, rep_rows)
    per_class = build_per_class_table(study, runs)
    tex = render_document([main, per_class])
    write_text(out_tex, tex)
    used = write_pdf([main, per_class], tex, out_pdf, engine=engine)
    save_budget_curve(study, runs, out_fig_pdf, out_fig_png)
    outputs = [Path(p) for p in (out_tex, out_pdf, out_fig_pdf, out_fig_png)]
    log.info("study %s: wrote %s (PDF via %s)", study.name, ", ".join(map(str, outputs)), used)
    return RenderResult(main, per_class, used, main.missing, outputs)


def load_study(path: str | Path) -> StudyDef:
    """Read a study definition from a YAML file (see :meth:`StudyDef.from_dict`)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataFormatError(path, f"cannot read study definition: {exc}") from exc
    if not isinstance(data, dict):
        raise DataFormatError(path, "a study definition must be a mapping")
    try:
        return StudyDef.from_dict(data)
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(path, str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kdseg.report.cli STUDY.yaml METRICS... --out-dir reports [--reported CSV]``."""
    p = argparse.ArgumentParser(prog="python -m kdseg.report.cli", description=main.__doc__)
    p.add_argument("study", type=Path, help="study definition (YAML)")
    p.add_argument("metrics", type=Path, nargs="+", help="metrics.json files of the runs")
    p.add_argument("--out-dir", type=Path, default=Path("reports"))
    p.add_argument("--reported", type=Path, default=None, help="reported_numbers.csv")
    p.add_argument("--engine", choices=["auto", "latex", "matplotlib"], default="auto")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kdseg").setLevel(logging.INFO)
    study = load_study(args.study)
    out = args.out_dir
    result = render_study(
        study,
        args.metrics,
        out / f"{study.name}.tex",
        out / f"{study.name}.pdf",
        out / "figures" / f"{study.name}_budget_curve.pdf",
        out / "figures" / f"{study.name}_budget_curve.png",
        args.reported,
        engine=args.engine,
    )
    for item in result.missing:
        print(f"missing run: {item}")
    for path in result.outputs:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
