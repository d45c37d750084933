"""Write a report PDF: through LaTeX when a TeX toolchain is installed, else with matplotlib.

Both paths draw the same :class:`~kdseg.report.tables.Table` objects (numbers, bold/underline
marks, captions, footnotes), one table per page.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from kdseg.errors import KdsegError
from kdseg.io import atomic_open, write_bytes
from kdseg.report.tables import Table

Engine = Literal["auto", "latex", "matplotlib"]
LOG_TAIL_LINES = 40
LATEX_TIMEOUT_S = 180


class LatexError(KdsegError, RuntimeError):
    """pdflatex/latexmk failed; the message carries the tail of the LaTeX log."""


def tex_command() -> list[str] | None:
    """The TeX command line to use (``latexmk`` preferred, then ``pdflatex``), or ``None``."""
    opts = ["-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", *opts]
    if shutil.which("pdflatex"):
        return ["pdflatex", *opts]
    return None


def compile_latex(tex_source: str, out_pdf: str | Path) -> None:
    """Compile ``tex_source`` in a temporary folder and write the PDF atomically to ``out_pdf``."""
    cmd = tex_command()
    if cmd is None:
        raise LatexError("no TeX toolchain: neither latexmk nor pdflatex is on PATH")
    with tempfile.TemporaryDirectory(prefix="kdseg-latex-") as tmp:
        work = Path(tmp)
        (work / "report.tex").write_text(tex_source, encoding="utf-8")
        try:
            proc = subprocess.run(
                [*cmd, "report.tex"],
                cwd=work,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=LATEX_TIMEOUT_S,
                check=False,
            )
            failed = proc.returncode != 0
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            failed, output = True, f"timed out after {LATEX_TIMEOUT_S} s"
        pdf = work / "report.pdf"
        if failed or not pdf.exists():
            log_file = work / "report.log"
            text = log_file.read_text(errors="replace") if log_file.exists() else output
            tail = "\n".join(text.splitlines()[-LOG_TAIL_LINES:])
            raise LatexError(f"{cmd[0]} failed for {out_pdf}; tail of the LaTeX log:\n{tail}")
        write_bytes(out_pdf, pdf.read_bytes())


# --- matplotlib path -----------------------------------------------------------------------------

FONT = 9.0  # pt, table body
SMALL = 6.5  # pt, std and superscripts
CAPTION = 8.5  # pt
PAD = 0.12  # inch, horizontal cell padding
ROW_H = 0.24  # inch
MARGIN = 0.4  # inch
RULE_THICK, RULE_THIN = 1.0, 0.5  # pt, booktabs top/bottom and mid rules


class _Layout:
    """Measures text with an Agg renderer; positions are inches from the top-left corner."""

    def __init__(self) -> None:
        self.fig = Figure(figsize=(8, 8), dpi=100)
        self.renderer = FigureCanvasAgg(self.fig).get_renderer()

    def width(self, text: str, size: float, bold: bool = False, italic: bool = False) -> float:
        t = self.fig.text(
            0, 0, text, fontsize=size, fontweight="bold" if bold else "normal",
            fontstyle="italic" if italic else "normal",
        )  # fmt: skip
        w = t.get_window_extent(self.renderer).width / self.fig.dpi
        t.remove()
        return w


def _cell_parts(table: Table, r: int, c: int) -> tuple[str, str]:
    cell = table.rows[r].cells[c]
    mean, std = cell.text(table.show_std)
    sup = ",".join(x for x in (f"n={cell.n}" if cell.partial else "", cell.note or "") if x)
    return mean, (f"± {std}" if std else "") + (f" {sup}" if sup else "")


def _draw_table(table: Table, lay: _Layout, number: int) -> Figure:
    """One page: "Table N:" caption, booktabs-style rules, header, rows, footnotes."""
    caption = f"Table {number}: {table.caption}"
    n = len(table.columns)
    label_w = max(
        lay.width(r.label + (f" {r.note}" if r.note else ""), FONT, italic=r.reported)
        for r in table.rows
    )
    label_w = max(label_w, lay.width("Method", FONT)) + 2 * PAD
    head_w = [lay.width(c, FONT) for c in table.columns]
    col_w = []
    for c in range(n):
        widths = []
        for r in range(len(table.rows)):
            mean, tail = _cell_parts(table, r, c)
            widths.append(lay.width(mean, FONT, bold=True) + lay.width(" " + tail, SMALL))
        col_w.append(max([*widths, FONT / 72 if table.rotate_headers else head_w[c]]) + 2 * PAD)
    table_w = label_w + sum(col_w)
    page_w = max(table_w, 6.0) + 2 * MARGIN
    char_w = lay.width(caption, CAPTION) / len(caption)
    cap_lines = textwrap.wrap(caption, max(40, int((page_w - 2 * MARGIN) / char_w)))
    cap_h = len(cap_lines) * CAPTION / 72 * 1.35
    head_h = (max(head_w) + 2 * PAD) if table.rotate_headers else ROW_H
    group_h = ROW_H if table.group or table.groups else 0.0
    n_reported = sum(r.reported for r in table.rows)
    body_h = ROW_H * len(table.rows) + (0.06 if n_reported else 0.0)
    foot_h = len(table.footnotes) * SMALL / 72 * 1.6 + (0.1 if table.footnotes else 0.0)
    page_h = 2 * MARGIN + cap_h + 0.15 + group_h + head_h + body_h + 0.1 + foot_h

    fig = Figure(figsize=(page_w, page_h))
    x0 = MARGIN + (page_w - 2 * MARGIN - table_w) / 2

    def fx(x: float) -> float:
        return x / page_w

    def fy(y: float) -> float:
        return 1 - y / page_h

    def rule(y: float, lw: float, left: float = x0, right: float = x0 + table_w) -> None:
        fig.add_artist(Line2D([fx(left), fx(right)], [fy(y), fy(y)], lw=lw, color="black"))

    def text(x: float, y: float, s: str, **kw: object) -> None:
        fig.text(fx(x), fy(y), s, fontsize=kw.pop("size", FONT), **kw)  # type: ignore[arg-type]

    y = MARGIN
    for line in cap_lines:
        y += CAPTION / 72 * 1.35
        text(MARGIN, y, line, size=CAPTION, va="baseline")
    y += 0.15
    rule(y, RULE_THICK)
    centers = [x0 + label_w + sum(col_w[:c]) + col_w[c] / 2 for c in range(n)]
    if table.groups:
        first = 0
        for label, width in table.groups:
            left = x0 + label_w + sum(col_w[:first])
            right = left + sum(col_w[first : first + width])
            text((left + right) / 2, y + ROW_H / 2, label, ha="center", va="center")
            rule(y + ROW_H - 0.03, RULE_THIN, left + PAD / 2, right - PAD / 2)
            first += width
        y += ROW_H
    elif table.group:
        text(
            (x0 + label_w + x0 + table_w) / 2, y + ROW_H / 2, table.group, ha="center", va="center"
        )
        y += ROW_H
        rule(y - 0.03, RULE_THIN, x0 + label_w + PAD / 2, x0 + table_w - PAD / 2)
    text(x0 + PAD, y + head_h - ROW_H / 2, "Method", va="center")
    for c, name in enumerate(table.columns):
        if table.rotate_headers:
            text(centers[c], y + head_h - PAD, name, rotation=90, ha="center", va="bottom")
        else:
            text(centers[c], y + head_h / 2, name, ha="center", va="center")
    y += head_h
    rule(y, RULE_THIN)
    previous_reported = False
    for r, row in enumerate(table.rows):
        if row.reported and not previous_reported:
            y += 0.06
            rule(y - 0.03, RULE_THIN)
        previous_reported = row.reported
        style = "italic" if row.reported else "normal"
        base = y + ROW_H / 2
        text(x0 + PAD, base, row.label, fontstyle=style, va="center")
        if row.note:
            lw = lay.width(row.label + " ", FONT, italic=row.reported)
            text(x0 + PAD + lw, base - 0.05, row.note, size=SMALL, va="center")
        for c, cell in enumerate(row.cells):
            mean, tail = _cell_parts(table, r, c)
            bold = cell.mark == "best"
            mw = lay.width(mean, FONT, bold=bold, italic=row.reported)
            tw = lay.width(" " + tail, SMALL) if tail else 0.0
            left = centers[c] - (mw + tw) / 2
            weight = "bold" if bold else "normal"
            text(left, base, mean, fontweight=weight, fontstyle=style, va="center")
            if tail:
                text(left + mw + 0.03, base + 0.01, tail, size=SMALL, va="center")
            if cell.mark == "second":
                rule(base + FONT / 72 * 0.55, 0.6, left, left + mw)
        y += ROW_H
    rule(y, RULE_THICK)
    y += 0.1
    for marker, src in table.footnotes:
        y += SMALL / 72 * 1.6
        text(x0, y, f"{marker}  {src}", size=SMALL, va="baseline")
    return fig


def render_pdf_matplotlib(tables: Sequence[Table], out_pdf: str | Path) -> None:
    """Draw each table on its own PDF page (TrueType fonts, searchable text); atomic write."""
    with mpl.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}):
        lay = _Layout()
        figs = [_draw_table(t, lay, i + 1) for i, t in enumerate(tables)]
        with atomic_open(out_pdf, "wb") as fh, PdfPages(fh) as pdf:
            for fig in figs:
                pdf.savefig(fig)


def write_pdf(
    tables: Sequence[Table], tex_source: str, out_pdf: str | Path, engine: Engine = "auto"
) -> str:
    """Write the report PDF; returns the engine used (``"latex"`` or ``"matplotlib"``).

    ``auto`` uses LaTeX when :func:`tex_command` finds a toolchain (a LaTeX error is then raised,
    not hidden by a fallback), else matplotlib.
    """
    if engine not in ("auto", "latex", "matplotlib"):
        raise ValueError(f"engine must be 'auto', 'latex' or 'matplotlib', got {engine!r}")
    if engine == "latex" or (engine == "auto" and tex_command() is not None):
        compile_latex(tex_source, out_pdf)
        return "latex"
    render_pdf_matplotlib(tables, out_pdf)
    return "matplotlib"
