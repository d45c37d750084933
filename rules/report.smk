# Paper-style tables and figures, built from the metrics.json files the DAG tracks.


rule report_study:
    input:
        metrics=study_metrics,
    output:
        tex="reports/{study}.tex",
        markdown="reports/{study}.md",
        pdf=report("reports/{study}.pdf", category="Tables"),
        curve_pdf="reports/figures/{study}_budget_curve.pdf",
        curve_png=report("reports/figures/{study}_budget_curve.png", category="Figures"),
    log:
        f"{LOGS}/report/{{study}}.log",
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
        study=study_json,
        reported=reported_csv,
    shell:
        "{params.kdseg} report --study-json {params.study:q} "
        "--reported {params.reported:q} --tex {output.tex} --pdf {output.pdf} "
        "--markdown {output.markdown} "
        "--curve-pdf {output.curve_pdf} --curve-png {output.curve_png} "
        "{input.metrics} > {log} 2>&1"
