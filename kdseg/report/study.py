"""What one report shows: :class:`StudyDef` (rows, columns, seeds, reported-number mapping)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kdseg.budgets import parse_budget
from kdseg.errors import ConfigError

#: Default display names of the standard budgets (column headers, as in the LaserMix tables).
BUDGET_DISPLAY: dict[str, str] = {
    "scribbles": "Scribbles",
    "scans-1": "1%",
    "scans-10": "10%",
    "scans-20": "20%",
    "scans-50": "50%",
    "full": "Full",
}

#: Share of labelled points of the ScribbleKITTI scribbles (ScribbleKITTI paper), in %.
SCRIBBLE_POINT_SHARE = 8.06


@dataclass(frozen=True)
class ReportedMap:
    """How the rows of a study map onto ``reported_numbers.csv``.

    Attributes:
        dataset: the CSV ``dataset`` value (e.g. ``"semantickitti"``, ``"scribblekitti"``).
        methods: variant -> list of (CSV ``method``, CSV ``backbone``); each pair becomes one
            reported row beneath the measured rows.
        budgets: budget -> CSV ``budget_or_task`` overrides; budgets not listed use
            :func:`kdseg.report.reported.csv_budget_name`.
        metric: the CSV ``metric`` value that is compared with our mIoU.
    """

    dataset: str
    methods: Mapping[str, Sequence[tuple[str, str]]]
    budgets: Mapping[str, str] = field(default_factory=dict)
    metric: str = "mIoU"


@dataclass(frozen=True)
class StudyDef:
    """One study: a table of method variants (rows) against label budgets (columns).

    Attributes:
        name: file stem of the outputs (``reports/<name>.tex``).
        title: human title, first words of the caption.
        dataset: the ``config.dataset`` value of the runs (e.g. ``"street"``).
        rows: (variant, display name), in table order.
        columns: (budget, display name), in table order; ``None`` display -> :data:`BUDGET_DISPLAY`.
        seeds: the seeds every cell should have; absent runs are reported as missing.
        scale: the ``config.scale`` value of the runs.
        reported: mapping onto published numbers, or ``None`` (no reported rows possible).
        per_class_budget: column of the per-class table (default ``"full"`` when it is a column,
            else the last column).
        dataset_display: the dataset as written in captions (default: ``dataset``).
    """

    name: str
    title: str
    dataset: str
    rows: Sequence[tuple[str, str]]
    columns: Sequence[tuple[str, str | None]]
    seeds: Sequence[int] = (0, 1, 2)
    scale: str = "default"
    reported: ReportedMap | None = None
    per_class_budget: str | None = None
    dataset_display: str | None = None

    def __post_init__(self) -> None:
        if not self.rows:
            raise ConfigError("rows", f"study {self.name!r} has no rows")
        if not self.columns:
            raise ConfigError("columns", f"study {self.name!r} has no columns")
        variants = [v for v, _ in self.rows]
        budgets = [b for b, _ in self.columns]
        for key, names in (("rows", variants), ("columns", budgets)):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ConfigError(key, f"study {self.name!r} lists {dup} more than once")
        for b in budgets:
            parse_budget(b)
        if not self.seeds:
            raise ConfigError("seeds", f"study {self.name!r} has no seeds")
        if self.per_class_budget is not None and self.per_class_budget not in budgets:
            raise ConfigError(
                "per_class_budget",
                f"{self.per_class_budget!r} is not a column of study {self.name!r} ({budgets})",
            )

    @property
    def variants(self) -> list[str]:
        """Variant names in row order."""
        return [v for v, _ in self.rows]

    @property
    def budgets(self) -> list[str]:
        """Budget names in column order."""
        return [b for b, _ in self.columns]

    def row_display(self, variant: str) -> str:
        """Display name of a variant."""
        return dict(self.rows)[variant]

    def column_display(self, budget: str) -> str:
        """Display name of a budget column."""
        shown = dict(self.columns)[budget]
        return shown if shown is not None else BUDGET_DISPLAY.get(budget, budget)

    @property
    def class_budget(self) -> str:
        """The budget whose per-class IoU table is rendered."""
        if self.per_class_budget is not None:
            return self.per_class_budget
        return "full" if "full" in self.budgets else self.budgets[-1]

    @property
    def dataset_name(self) -> str:
        """The dataset as written in captions."""
        return self.dataset_display or self.dataset

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StudyDef:
        """Build a study from plain data (a YAML mapping).

        ``rows`` and ``columns`` are lists of ``[name, display]`` pairs or of bare names;
        ``reported`` is ``{dataset, methods: {variant: [[method, backbone], ...]}, budgets}``.
        """
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError("study", f"unknown keys {unknown}; known: {sorted(known)}")
        for key in ("name", "title", "dataset", "rows", "columns"):
            if key not in d:
                raise ConfigError(key, "missing from the study definition")

        def pairs(key: str, default_display: Mapping[str, str]) -> list[tuple[str, Any]]:
            out = []
            for item in d[key]:
                if isinstance(item, str):
                    out.append((item, default_display.get(item, item)))
                elif isinstance(item, Sequence) and len(item) == 2:
                    out.append((str(item[0]), item[1]))
                else:
                    raise ConfigError(key, f"{item!r} is neither a name nor a [name, display] pair")
            return out

        rep = d.get("reported")
        reported = None
        if rep is not None:
            reported = ReportedMap(
                dataset=str(rep["dataset"]),
                methods={
                    str(v): [(str(m), str(b)) for m, b in items]
                    for v, items in dict(rep.get("methods", {})).items()
                },
                budgets={str(k): str(v) for k, v in dict(rep.get("budgets", {})).items()},
                metric=str(rep.get("metric", "mIoU")),
            )
        return cls(
            name=str(d["name"]),
            title=str(d["title"]),
            dataset=str(d["dataset"]),
            rows=pairs("rows", {}),
            columns=pairs("columns", BUDGET_DISPLAY),
            seeds=tuple(int(s) for s in d.get("seeds", (0, 1, 2))),
            scale=str(d.get("scale", "default")),
            reported=reported,
            per_class_budget=d.get("per_class_budget"),
            dataset_display=d.get("dataset_display"),
        )
