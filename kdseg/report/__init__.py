"""Paper-style tables and figures rendered from metrics.json files.

Modules: :mod:`~kdseg.report.collect` (metrics.json -> tidy DataFrame), :mod:`~kdseg.report.study`
(:class:`StudyDef`), :mod:`~kdseg.report.tables` (mean ± std, best/second marks, missing cells),
:mod:`~kdseg.report.reported` (published numbers), :mod:`~kdseg.report.latex` (booktabs),
:mod:`~kdseg.report.pdf` (pdflatex or matplotlib), :mod:`~kdseg.report.figures` (budget curve),
:mod:`~kdseg.report.run_figures` (figures of one run: the confusion matrix the tracking job
attaches), :mod:`~kdseg.report.cli` (:func:`render_study`, ``python -m kdseg.report.cli``).
The report reads run records (:mod:`kdseg.record`) and never imports training code or MLflow.
See ``docs/reports.md``.
"""
