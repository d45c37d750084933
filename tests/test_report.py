"""kdseg.report: aggregation, marks, missing cells, reported rows, LaTeX, PDF and figures."""

from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from kdseg.datasets.semantickitti_labels import CLASS_NAMES
from kdseg.errors import DataFormatError
from kdseg.report import pdf as pdf_mod
from kdseg.report.cli import load_study, render_study
from kdseg.report.collect import collect_runs, load_metrics
from kdseg.report.figures import curve_data
from kdseg.report.latex import escape_latex, render_document
from kdseg.report.pdf import LatexError, compile_latex, tex_command
from kdseg.report.reported import csv_budget_name, load_reported, match_reported
from kdseg.report.study import ReportedMap, StudyDef
from kdseg.report.tables import build_main_table, build_per_class_table, mark_best

SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "specs" / "reported_numbers.csv"

# mIoU (fractions) per (variant, budget) and seed; absent seeds/cells are missing runs.
MIOU = {
    ("sup", "scribbles"): [0.30, 0.30, 0.33],  # 31.0 ± 1.7
    ("sup", "scans-10"): [0.50, 0.52, 0.54],  # 52.0 ± 2.0
    ("sup", "full"): [0.65, 0.65, 0.65],  # 65.0 ± 0.0 (second)
    ("mt", "scribbles"): [0.40, 0.44],  # seed 2 missing: 42.0 ± 2.8, n=2 (best)
    ("mt", "scans-10"): [0.55, 0.56, 0.57],  # 56.0 ± 1.0 (second)
    ("mt", "full"): [0.70, 0.70, 0.70],  # tie for best
    ("lm", "scans-10"): [0.60, 0.61, 0.62],  # 61.0 ± 1.0 (best); scribbles: no run at all
    ("lm", "full"): [0.70, 0.70, 0.70],  # tie for best
}
ROWS = [("sup", "Sup-only"), ("mt", "Mean_Teacher & EMA"), ("lm", "LaserMix")]
COLUMNS = [("scribbles", None), ("scans-10", None), ("full", None)]


def write_run(root: Path, variant: str, budget: str, seed: int, miou: float, **cfg: object) -> Path:
    """One fake metrics.json; class k has IoU miou + (k - 9) / 100 (mean = miou)."""
    per_class = {c: miou + (k - 9) / 100 for k, c in enumerate(CLASS_NAMES)}
    config = {"method": variant, "variant": variant, "dataset": "street", "budget": budget}
    config |= {"seed": seed, "scale": "default", **cfg}
    path = root / variant / budget / str(seed) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"miou": miou, "per_class_iou": per_class, "config": config}))
    return path


@pytest.fixture()
def files(tmp_path: Path) -> list[Path]:
    out = []
    for (variant, budget), values in MIOU.items():
        for seed, v in enumerate(values):
            out.append(write_run(tmp_path / "runs", variant, budget, seed, v))
    return out


def make_study(**kw: object) -> StudyDef:
    base: dict = {
        "name": "toy",
        "title": "Toy study",
        "dataset": "street",
        "rows": ROWS,
        "columns": COLUMNS,
        "reported": ReportedMap(
            dataset="semantickitti",
            methods={"lm": [("LaserMix", "Cylinder3D")], "sup": [("Sup-only", "Cylinder3D")]},
        ),
    }
    return StudyDef(**(base | kw))  # type: ignore[arg-type]


def write_csv(path: Path) -> Path:
    path.write_text(
        "setting,dataset,budget_or_task,backbone,method,metric,value,source\n"
        "semi,semantickitti,scans 10%,Cylinder3D,LaserMix,mIoU,99.9,Paper A\n"
        "semi,semantickitti,scans 100%,Cylinder3D,LaserMix,mIoU,99.5,Paper A\n"
        "semi,semantickitti,scans 10%,Cylinder3D,Sup-only,mIoU,98.0,Repo B\n"
        "semi,nuscenes,scans 10%,Cylinder3D,LaserMix,mIoU,11.1,Paper C\n"
        "semi,semantickitti,scans 10%,FIDNet,LaserMix,mIoU,22.2,Paper D\n"
    )
    return path


def test_mean_std_and_seed_counts(files: list[Path]) -> None:
    table = build_main_table(make_study(), collect_runs(files))
    assert table.columns == ["Scribbles", "10%", "Full"]
    sup, mt, lm = table.rows
    assert sup.cells[0].text() == ("31.0", "1.7")
    assert sup.cells[1].mean == pytest.approx(52.0) and sup.cells[1].std == pytest.approx(2.0)
    assert (sup.cells[1].n, sup.cells[1].partial) == (3, False)
    assert mt.cells[0].text() == ("42.0", "2.8") and (mt.cells[0].n, mt.cells[0].partial) == (
        2,
        True,
    )
    assert lm.cells[1].text() == ("61.0", "1.0")
    assert sup.cells[2].text() == ("65.0", "0.0")


def test_best_second_marks_with_ties(files: list[Path]) -> None:
    table = build_main_table(make_study(), collect_runs(files))
    marks = [[c.mark for c in r.cells] for r in table.rows]
    assert marks == [
        ["second", None, "second"],  # sup
        ["best", "second", "best"],  # mt (tie for best on Full)
        [None, "best", "best"],  # lm (missing scribbles: no mark)
    ]
    assert mark_best([3.0, 2.0, 2.04, 3.01, 1.0, None]) == [
        "best", "second", "second", "best", None, None,
    ]  # fmt: skip
    tex = render_document([table])
    assert r"\textbf{70.0}{\scriptsize\,$\pm$\,0.0}" in tex
    assert tex.count(r"\textbf{") == 4 and tex.count(r"\underline{") == 3


def test_missing_cells_are_dashes_and_listed(files: list[Path]) -> None:
    table = build_main_table(make_study(), collect_runs(files))
    lm_scribbles = table.rows[2].cells[0]
    assert lm_scribbles.mean is None and lm_scribbles.text() == ("–", "")
    assert "LaserMix Scribbles (seed 0, 1, 2)" in table.caption
    assert "Mean_Teacher & EMA Scribbles (seed 2)" in table.caption
    tex = render_document([table])
    lm_line = next(line for line in tex.splitlines() if line.startswith("LaserMix &"))
    assert lm_line.split(" & ")[1] == "--"
    assert r"\textsuperscript{n=2}" in tex


def test_single_seed_shows_mean_alone(files: list[Path]) -> None:
    table = build_main_table(make_study(seeds=(0,)), collect_runs(files))
    assert not table.show_std
    assert "single run (seed 0)" in table.caption and "no standard deviation" in table.caption
    assert table.rows[0].cells[1].text(table.show_std) == ("50.0", "")
    body = render_document([table]).split(r"\midrule", 1)[1]
    assert r"\pm" not in body


def test_latex_escapes_and_document(files: list[Path]) -> None:
    assert escape_latex("a_b & 100% #1 {x} $y") == r"a\_b \& 100\% \#1 \{x\} \$y"
    assert escape_latex("~^\\") == r"\~{}\^{}\textbackslash{}"
    runs = collect_runs(files)
    tex = render_document(
        [build_main_table(make_study(), runs), build_per_class_table(make_study(), runs)]
    )
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert r"\usepackage{booktabs}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"Mean\_Teacher \& EMA" in tex and "Mean_Teacher & EMA" not in tex
    assert r"\rotatebox{90}{traffic-sign}" in tex and r"10\%" in tex
    assert tex.count(r"\caption{") == 2 and "street (default scale)" in tex


def test_per_class_table(files: list[Path], tmp_path: Path) -> None:
    nan_run = write_run(tmp_path / "x", "sup", "scans-50", 0, 0.5)
    data = json.loads(nan_run.read_text())
    data["per_class_iou"]["bicycle"] = float("nan")
    nan_run.write_text(json.dumps(data))
    study = make_study(columns=[*COLUMNS, ("scans-50", None)], per_class_budget="scans-50")
    table = build_per_class_table(study, collect_runs([*files, nan_run]))
    assert table.columns == [*CLASS_NAMES, "mIoU"] and table.rotate_headers
    sup = table.rows[0]
    assert sup.label == "Sup-only (n=1)"
    assert sup.cells[0].text(False) == ("41.0", "") and sup.cells[1].mean is None
    assert table.rows[1].cells[0].mean is None  # no mt run at scans-50
    full = build_per_class_table(make_study(), collect_runs(files))  # default: "full"
    assert "label budget Full" in full.caption
    assert full.rows[2].cells[-1].text(False) == ("70.0", "")


def test_reported_rows_only_when_asked_and_never_marked(files: list[Path], tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "reported.csv")
    out = tmp_path / "reports"
    args = [out / "t.tex", out / "t.pdf", out / "f.pdf", out / "f.png"]
    plain = render_study(make_study(), files, *args, engine="matplotlib")
    assert all(not r.reported for r in plain.main.rows) and "reported" not in args[0].read_text()
    res = render_study(make_study(), files, *args, reported_csv=csv, engine="matplotlib")
    rep = [r for r in res.main.rows if r.reported]
    assert [r.label for r in rep] == [
        "Sup-only (reported; Cylinder3D)",
        "LaserMix (reported; Cylinder3D)",
    ]
    assert [c.mean for c in rep[1].cells] == [None, 99.9, 99.5]
    assert all(c.mark is None for r in rep for c in r.cells)
    assert res.main.rows[2].cells[1].mark == "best"  # ours, though a reported 99.9 is higher
    assert res.main.footnotes == [("a", "Repo B"), ("b", "Paper A")]
    tex = args[0].read_text()
    assert r"\textit{LaserMix (reported; Cylinder3D)}\textsuperscript{b}" in tex
    assert r"\textit{99.9}" in tex and "Paper A" in tex
    assert "11.1" not in tex and "22.2" not in tex  # other dataset / backbone
    off = render_study(make_study(), files, *args, reported_csv=csv, reported=False)
    assert not any(r.reported for r in off.main.rows)


def test_reported_csv_matching() -> None:
    assert csv_budget_name("scans-10") == "scans 10%"
    assert csv_budget_name("full") == "scans 100%"
    assert csv_budget_name("scribbles") == "scribbles (8.06% points)"
    if not SHARED_CSV.exists():
        pytest.skip(f"shared reported numbers not found: {SHARED_CSV}")
    study = make_study(
        columns=[("scribbles", None), ("scans-10", None)],
        reported=ReportedMap(dataset="semantickitti", methods={"lm": [("LaserMix", "Cylinder3D")]}),
    )
    (row,) = match_reported(study, load_reported(SHARED_CSV))
    assert row.values["scans-10"][0] == pytest.approx(60.0) and "scribbles" not in row.values
    weak = make_study(
        columns=[("scribbles", None)],
        reported=ReportedMap(
            dataset="scribblekitti",
            methods={"mt": [("SSLSS (released checkpoint)", "Cylinder3D")]},
        ),
    )
    (row,) = match_reported(weak, load_reported(SHARED_CSV))
    assert row.values["scribbles"][0] == pytest.approx(61.25)


def pdf_text(path: Path) -> str:
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    out = subprocess.run([exe, str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(unicodedata.normalize("NFKC", out.stdout).split())


def check_pdf(path: Path, result_rows: list[str]) -> None:
    assert path.read_bytes().startswith(b"%PDF")
    text = pdf_text(path)
    for name in [*result_rows, "Scribbles", "10%", "Full", *CLASS_NAMES, "mIoU", "Method"]:
        assert name in text, name


def test_matplotlib_pdf_contains_every_row_and_column(files: list[Path], tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "reported.csv")
    out = tmp_path / "reports"
    res = render_study(
        make_study(), files, out / "toy.tex", out / "toy.pdf", out / "figures" / "c.pdf",
        out / "figures" / "c.png", csv, engine="matplotlib",
    )  # fmt: skip
    assert res.engine == "matplotlib"
    check_pdf(out / "toy.pdf", [r.label for r in res.main.rows])
    text = pdf_text(out / "toy.pdf")
    assert "Table 1:" in text and "Table 2:" in text and "Paper A" in text
    assert "61.0 ± 1.0" in text and "Missing runs" in text
    assert not list(out.glob(".*.tmp"))  # atomic writes left no temporary files


@pytest.mark.skipif(tex_command() is None, reason="no TeX toolchain (pdflatex/latexmk) on PATH")
def test_latex_pdf_contains_every_row_and_column(files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "reports"
    res = render_study(
        make_study(), files, out / "toy.tex", out / "toy.pdf", out / "c.pdf", out / "c.png",
        write_csv(tmp_path / "r.csv"), engine="latex",
    )  # fmt: skip
    assert res.engine == "latex"
    check_pdf(out / "toy.pdf", [r.label for r in res.main.rows])


@pytest.mark.skipif(tex_command() is None, reason="no TeX toolchain (pdflatex/latexmk) on PATH")
def test_latex_failure_shows_log_tail(tmp_path: Path) -> None:
    bad = "\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n\\end{document}\n"
    with pytest.raises(LatexError, match="Undefined control sequence"):
        compile_latex(bad, tmp_path / "bad.pdf")
    assert not (tmp_path / "bad.pdf").exists()


def test_latex_engine_without_toolchain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pdf_mod.shutil, "which", lambda name: None)
    with pytest.raises(LatexError, match="pdflatex"):
        pdf_mod.write_pdf([], "", tmp_path / "x.pdf", engine="latex")
    assert not (tmp_path / "x.pdf").exists()


def test_budget_curve_files(files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "reports"
    fig_pdf, fig_png = (
        out / "figures" / "toy_budget_curve.pdf",
        out / "figures" / "toy_budget_curve.png",
    )
    render_study(
        make_study(), files, out / "t.tex", out / "t.pdf", fig_pdf, fig_png, engine="matplotlib"
    )
    assert fig_pdf.read_bytes().startswith(b"%PDF")
    assert fig_png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image

    with Image.open(fig_png) as img:
        assert img.width > 500 and img.height > 300
    data = curve_data(make_study(), collect_runs(files)).set_index(["variant", "budget"])
    assert data.loc[("sup", "scans-10"), "std"] == pytest.approx(2.0)
    assert data.loc[("sup", "scribbles"), "x"] == pytest.approx(8.06)
    assert ("lm", "scribbles") not in data.index


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"per_class_iou": {}, "config": {}}', "missing key(s) ['miou']"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_metrics_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "run7" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text(content)
    with pytest.raises(DataFormatError, match="run7") as err:
        collect_runs([bad])
    assert str(bad) in str(err.value) and message in str(err.value)


def test_bad_metrics_fields(tmp_path: Path) -> None:
    good = write_run(tmp_path, "sup", "full", 0, 0.5)
    data = json.loads(good.read_text())
    del data["config"]["seed"]
    good.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"config\.seed"):
        load_metrics(good)
    bad_range = write_run(tmp_path, "sup", "full", 1, 41.0)  # a percentage, not a fraction
    with pytest.raises(DataFormatError, match=r"outside \[0, 1\]"):
        load_metrics(bad_range)
    with pytest.raises(DataFormatError, match="cannot read"):
        load_metrics(tmp_path / "absent.json")


def test_duplicate_and_foreign_runs(files: list[Path], tmp_path: Path) -> None:
    dup = write_run(tmp_path / "again", "sup", "full", 0, 0.6)
    with pytest.raises(DataFormatError, match="same run"):
        collect_runs([*files, dup])
    other = write_run(tmp_path / "other", "sup", "full", 5, 0.6, dataset="semantickitti")
    with pytest.raises(DataFormatError, match="dataset 'semantickitti'"):
        build_main_table(make_study(), collect_runs([*files, other]))
    extra = write_run(tmp_path / "extra", "sup", "full", 9, 0.1)  # seed not in the study
    table = build_main_table(make_study(), collect_runs([*files, extra]))
    assert table.rows[0].cells[2].mean == pytest.approx(65.0)


def test_study_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: s\ntitle: T\ndataset: street\nrows: [[sup, Sup-only], lm]\n"
        "columns: [scans-1, [full, '100%']]\nseeds: [0, 1]\n"
        "reported: {dataset: semantickitti, methods: {lm: [[LaserMix, Cylinder3D]]}}\n"
    )
    study = load_study(path)
    assert study.rows == [("sup", "Sup-only"), ("lm", "lm")]
    assert [study.column_display(b) for b in study.budgets] == ["1%", "100%"]
    assert study.reported is not None and study.reported.methods["lm"] == [
        ("LaserMix", "Cylinder3D")
    ]
    assert study.class_budget == "full"
    path.write_text("name: s\ntitle: T\ndataset: street\nrows: [a]\ncolumns: [scans-7x]\n")
    with pytest.raises(DataFormatError, match=r"study\.yaml"):
        load_study(path)


def test_markdown_table_keeps_numbers_and_marks():
    from kdseg.report.markdown import table_markdown
    from kdseg.report.tables import Cell, Row, Table

    table = Table(
        key="t",
        caption="c",
        columns=["1%", "Full"],
        rows=[
            Row("A", [Cell(10.04, 1.0, 3, "best"), Cell(None)]),
            Row("B", [Cell(9.0, 0.5, 2, "second", partial=True), Cell(50.0, 0.0, 3, "best")]),
        ],
    )
    md = table_markdown(table).splitlines()
    assert md[0] == "|  | 1% | Full |"
    assert md[2] == "| A | **10.0 ± 1.0** | – |"
    assert md[3] == "| B | _9.0 ± 0.5 (n=2)_ | **50.0 ± 0.0** |"


def test_parity_footnote_means_over_runs(files: list[Path], tmp_path: Path) -> None:
    parity = {("mt", 0): (1.0, 1.10), ("mt", 1): (1.0, 1.30), ("lm", 0): (1.5, 2.00)}
    for (variant, seed), (params, latency) in parity.items():
        path = tmp_path / "runs" / variant / "scans-10" / str(seed) / "metrics.json"
        data = json.loads(path.read_text())
        data["parity"] = {"parameters_ratio": params, "latency_ratio": latency}
        path.write_text(json.dumps(data))
    table = build_main_table(make_study(), collect_runs(files))
    (note,) = [text for marker, text in table.footnotes if marker == "*"]
    assert "mean over 3 runs, parameters ×1.167, latency ×1.47" in note
    assert "Mean_Teacher & EMA ×1.000 / ×1.20 (n=2); LaserMix ×1.500 / ×2.00 (n=1)." in note
    assert "Sup-only ×" not in note  # no parity measured for it
    tex = render_document([table])
    assert r"\textsuperscript{*}\,Inference parity" in tex and r"$\times$1.167" in tex
    assert not [f for f in build_main_table(make_study(), collect_runs(files[:3])).footnotes]
    bad = tmp_path / "runs" / "lm" / "scans-10" / "0" / "metrics.json"
    data = json.loads(bad.read_text())
    data["parity"] = {"parameters_ratio": "one", "latency_ratio": 1.0}
    bad.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"parity\.parameters_ratio"):
        collect_runs(files)


def test_caption_states_split_protocol_and_deployed_network(tmp_path: Path) -> None:
    """The caption says whether all seeds shared one split per budget, and which network
    (student or teacher) each row reports, as recorded by the runs."""
    study = make_study(reported=None)
    fixed = []
    for (variant, budget), values in MIOU.items():
        for seed, v in enumerate(values):
            fixed.append(write_run(tmp_path / "a", variant, budget, seed, v, split_seed=0))
    caption = build_main_table(study, collect_runs(fixed)).caption
    assert "one fixed split per budget (drawn with seed 0)" in caption
    assert "Sup-only student" in caption
    per_seed = [write_run(tmp_path / "b", "sup", "full", s, 0.5, split_seed=s) for s in (0, 1, 2)]
    caption = build_main_table(study, collect_runs(per_seed)).caption
    assert "a new split per seed" in caption and "fixed split" not in caption
    mixed = [
        write_run(tmp_path / "c", "sup", "full", s, 0.5, split_seed=k)
        for s, k in ((0, 0), (1, 1), (2, 0))
    ]
    assert "mixed" in build_main_table(study, collect_runs(mixed)).caption
