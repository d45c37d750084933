"""Markdown rendering of report tables (for docs and closing notes): the same numbers and
marks as the LaTeX/PDF tables, best in **bold**, second in _italics_ (Markdown has no
underline)."""

from __future__ import annotations

from kdseg.report.tables import Cell, Table


def _cell(cell: Cell, show_std: bool) -> str:
    if cell.mean is None:
        return "–"
    text = f"{cell.mean:.1f}"
    if show_std and cell.std is not None:
        text += f" ± {cell.std:.1f}"
    if cell.partial:
        text += f" (n={cell.n})"
    if cell.mark == "best":
        text = f"**{text}**"
    elif cell.mark == "second":
        text = f"_{text}_"
    return text


def table_markdown(table: Table) -> str:
    """One Markdown table: a header row, then one row per table row."""
    columns = list(table.columns)
    if table.groups:  # one header row: "group column"
        labels = [label for label, width in table.groups for _ in range(width)]
        columns = [f"{g} {c}" for g, c in zip(labels, columns, strict=True)]
    lines = [
        "| " + " | ".join(["", *columns]) + " |",
        "|---|" + "---:|" * len(table.columns),
    ]
    for row in table.rows:
        label = f"{row.label} (reported)" if row.reported else row.label
        cells = [_cell(c, table.show_std) for c in row.cells]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)
