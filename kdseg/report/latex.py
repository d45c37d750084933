"""Render :class:`~kdseg.report.tables.Table` objects as booktabs LaTeX.

The document needs only ``booktabs``, ``graphicx``, ``geometry`` and Times (``mathptmx``, T1
encoding, so that ``_``, ``<`` and ``|`` are real glyphs that ``pdftotext`` reads back); Debian's
``texlive-latex-base texlive-latex-extra texlive-fonts-recommended`` provide them all, and the
file compiles with plain ``pdflatex``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kdseg.report.tables import Cell, Row, Table

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\~{}",
    "^": r"\^{}",
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
    "±": r"$\pm$",
    "×": r"$\times$",
    "–": "--",
    "—": "---",
}


def escape_latex(text: str) -> str:
    """Escape LaTeX special characters (and ``±``, ``×``, en/em dashes) in plain text."""
    return "".join(_SPECIAL.get(ch, ch) for ch in text)


def _sup(text: str) -> str:
    return rf"\textsuperscript{{{escape_latex(text)}}}"


def render_cell(cell: Cell, show_std: bool, italic: bool = False) -> str:
    """One cell: mean (bold = best, underlined = second), small ``± std``, superscript notes."""
    mean, std = cell.text(show_std)
    if cell.mean is None:
        return "--"
    body = mean
    if cell.mark == "best":
        body = rf"\textbf{{{body}}}"
    elif cell.mark == "second":
        body = rf"\underline{{{body}}}"
    if italic:
        body = rf"\textit{{{body}}}"
    if std:
        body += rf"{{\scriptsize\,$\pm$\,{std}}}"
    if cell.partial:
        body += _sup(f"n={cell.n}")
    if cell.note:
        body += _sup(cell.note)
    return body


def _row_label(row: Row) -> str:
    label = escape_latex(row.label)
    if row.reported:
        label = rf"\textit{{{label}}}"
    if row.note:
        label += _sup(row.note)
    return label


def _header(table: Table) -> list[str]:
    cols = [escape_latex(c) for c in table.columns]
    if table.rotate_headers:
        cols = [rf"\rotatebox{{90}}{{{c}}}" for c in cols]
    lines = []
    n = len(cols)
    if table.groups:
        spans, rules, first = [], [], 2
        for label, width in table.groups:
            spans.append(rf"\multicolumn{{{width}}}{{c}}{{{escape_latex(label)}}}")
            rules.append(rf"\cmidrule(lr){{{first}-{first + width - 1}}}")
            first += width
        lines.append(" & " + " & ".join(spans) + r" \\")
        lines.append("".join(rules))
    elif table.group:
        lines.append(rf" & \multicolumn{{{n}}}{{c}}{{{escape_latex(table.group)}}} \\")
        lines.append(rf"\cmidrule(lr){{2-{n + 1}}}")
    lines.append("Method & " + " & ".join(cols) + r" \\")
    return lines


def render_table(table: Table, resize: bool = False) -> str:
    """A ``table`` float: caption above, booktabs tabular, source footnotes below."""
    n = len(table.columns)
    spec = "l" + "c" * n
    lines = [
        r"\begin{table}[!ht]",
        r"\centering",
        rf"\caption{{{escape_latex(table.caption)}}}",
        rf"\label{{tab:{re.sub(r'[^A-Za-z0-9:.-]', '-', table.key)}}}",
        r"\setlength{\tabcolsep}{4pt}" if table.rotate_headers else r"\setlength{\tabcolsep}{6pt}",
    ]
    if resize:
        lines.append(r"\resizebox{\textwidth}{!}{%")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", *_header(table), r"\midrule"]
    previous_reported = False
    for row in table.rows:
        if row.reported and not previous_reported:
            lines.append(r"\midrule")
        previous_reported = row.reported
        cells = [render_cell(c, table.show_std, italic=row.reported) for c in row.cells]
        lines.append(_row_label(row) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if resize:
        lines.append("}")
    if table.footnotes:
        lines.append(r"\par\smallskip\begin{minipage}{0.95\linewidth}\footnotesize")
        lines += [
            rf"\textsuperscript{{{m}}}\,{escape_latex(src)}\par" for m, src in table.footnotes
        ]
        lines.append(r"\end{minipage}")
    lines.append(r"\end{table}")
    return "\n".join(lines)


def render_document(tables: Sequence[Table]) -> str:
    """A standalone-compilable article (A4 landscape), one table per page."""
    parts = [
        r"\documentclass[10pt]{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{mathptmx}",
        r"\usepackage[a4paper,landscape,margin=1.8cm]{geometry}",
        r"\usepackage{booktabs}",
        r"\usepackage{graphicx}",
        r"\pagestyle{empty}",
        r"\begin{document}",
    ]
    for i, table in enumerate(tables):
        if i:
            parts.append(r"\clearpage")
        parts.append(render_table(table, resize=table.rotate_headers))
    parts.append(r"\end{document}")
    return "\n".join(parts) + "\n"
