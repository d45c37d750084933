# Paper-style tables and figures, built from the metrics.json files the DAG tracks (never from
# MLflow). A table also waits for its study's tracking marker, so that asking for the table
# (`snakemake reports/table1.pdf`) also puts its runs in MLflow; the marker is not read.


rule report_study:
    input:
        metrics=study_metrics,
        tracked=pattern(jobs.TRACK_MARKER),
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


if IGNET_FIGURE:

    rule ignet_figure:
        input:
            teacher=f"{teacher_dir(IGNET_FIGURE['dataset'])}/teacher.pt",
            baseline=f"{figure_run('baseline')}/model.pt",
            variant=f"{figure_run('variant')}/model.pt",
        output:
            png=report("reports/figures/ignet_frame.png", category="Figures"),
            pdf="reports/figures/ignet_frame.pdf",
        log:
            f"{LOGS}/report/ignet_frame.log",
        conda:
            "../envs/kdseg.yaml"
        params:
            kdseg=KDSEG,
            root=data_root(IGNET_FIGURE["dataset"]),
            val_frame=IGNET_FIGURE.get("val_frame", 0),
        shell:
            "{params.kdseg} ignet-figure --data {params.root:q} --teacher {input.teacher} "
            "--sup-only $(dirname {input.baseline}) --ignet $(dirname {input.variant}) "
            "--val-frame {params.val_frame} --png {output.png} --pdf {output.pdf} > {log} 2>&1"


if "convergence" in config["studies"]:

    rule convergence_figure:
        input:
            metrics=metrics_of("convergence"),
        output:
            pdf="reports/figures/convergence.pdf",
            png=report("reports/figures/convergence.png", category="Figures"),
            markdown="reports/convergence_checks.md",
        log:
            f"{LOGS}/report/convergence_figure.log",
        conda:
            "../envs/kdseg.yaml"
        params:
            kdseg=KDSEG,
            iterations=SCHEDULE_ITERATIONS,
            title=lambda wc: config["studies"]["convergence"]["title"],
        shell:
            "{params.kdseg} convergence --iterations {params.iterations} "
            "--title {params.title:q} --pdf {output.pdf} --png {output.png} "
            "--markdown {output.markdown} {input.metrics} > {log} 2>&1"
