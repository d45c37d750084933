# Continual 2D semantic segmentation (table 3; docs/continual.md). Synthetic VOC data (or real
# VOC / ADE20K under data_root) -> per-step index files of each task -> one training job per step
# of each task chain, whose model is the next step's old model (the old_model input provider
# names it: no rule names a method) -> the task's run folder (every step's metrics and the final
# model) -> MLflow (one tracking job per study) -> the table and the per-step figure.


rule generate_images:
    output:
        meta=f"{config['data_root']}/synthetic/{{preset}}/{{cds}}/meta.json",
    log:
        "logs/data/generate_{preset}_{cds}.log",
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
    shell:
        "{params.kdseg} generate-images --dataset {wildcards.cds} --preset {wildcards.preset} "
        "--out $(dirname {output.meta}) > {log} 2>&1"


rule continual_split:
    input:
        unpack(continual_data),
    output:
        task=cpattern(jobs.CONTINUAL_SPLIT),
    log:
        f"{LOGS}/splits/continual/{{cds}}/{{setting}}/{{task}}.log",
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
        lists=lambda w: str(wc.class_lists(config, w.cds)),
    shell:
        "{params.kdseg} continual-split --class-lists {params.lists:q} --dataset {wildcards.cds} "
        "--task {wildcards.task} --setting {wildcards.setting} "
        "--out $(dirname {output.task}) > {log} 2>&1"


rule train_step:
    input:
        unpack(step_inputs),
    output:
        metrics=update(cpattern(jobs.CONTINUAL_STEP_RECORD)),
        model=update(cpattern(jobs.CONTINUAL_STEP_MODEL)),
    log:
        cpattern(jobs.CONTINUAL_STEP_LOG),
    conda:
        "../envs/kdseg.yaml"
    threads: SETTINGS.get("threads", 1)
    resources:
        mem_mb=SETTINGS.get("resources", {}).get("mem_mb", 4000),
        runtime=SETTINGS.get("resources", {}).get("runtime", 30),
        gpus=SETTINGS.get("resources", {}).get("gpus", 0),
    params:
        kdseg=KDSEG,
        root=lambda w: str(wc.data_root(config, w.cds)),
        method=lambda w: config["variants"][w.variant]["method"],
        options=lambda w: json.dumps(config["variants"][w.variant].get("options") or {}),
        inputs=lambda w: shlex.join(train_input_args(config, cjob(w))),
        scale=SETTINGS["train_scale"],
        schedule=lambda w: config["variants"][w.variant].get("schedule", 1.0),
    shell:
        "{params.kdseg} train-step --data {params.root:q} --split-dir $(dirname {input.split}) "
        "--step {wildcards.step} --method {params.method:q} --variant {wildcards.variant} "
        "--options-json {params.options:q} --seed {wildcards.seed} --scale {params.scale} "
        "--schedule {params.schedule} --threads {threads} {params.inputs} "
        "--out $(dirname {output.metrics}) > {log} 2>&1"


rule continual_summary:
    input:
        steps=lambda w: [f"{d}/metrics.json" for d in chain_dirs(w)],
        models=lambda w: [f"{d}/model.pt" for d in chain_dirs(w)],
    output:
        metrics=cpattern(jobs.CONTINUAL_RECORD),
        model=cpattern(jobs.CONTINUAL_MODEL),
    log:
        f"{LOGS}/continual/{{cds}}/{{setting}}/{{task}}/{{variant}}/seed{{seed}}/summary.log",
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
        steps=lambda w: shlex.join(chain_dirs(w)),
    shell:
        "{params.kdseg} continual-summary --out $(dirname {output.metrics}) {params.steps} "
        "> {log} 2>&1"


rule track_continual:
    input:
        metrics=lambda w: [
            f"{cdir(s)}/metrics.json" for s in wc.study_steps(config, w.cstudy)
        ],
        store=path(jobs.MLFLOW_READY),
    output:
        marker=cpattern(jobs.TRACK_MARKER),
    log:
        f"{LOGS}/track/{{cstudy}}.log",
    localrule: True
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
        uri=MLFLOW_URI,
        experiment=lambda w: experiment_name(w.cstudy),
        jobs=lambda w: json.dumps(wc.track_jobs(config, w.cstudy)),
    shell:
        "{params.kdseg} track --uri {params.uri:q} --experiment {params.experiment:q} "
        "--jobs-json {params.jobs:q} --out {output.marker} > {log} 2>&1"


rule report_continual:
    input:
        metrics=lambda w: wc.run_paths(config, w.cstudy),
        tracked=cpattern(jobs.TRACK_MARKER),
    output:
        tex="reports/{cstudy}.tex",
        markdown="reports/{cstudy}.md",
        pdf=report("reports/{cstudy}.pdf", category="Tables"),
        fig_pdf="reports/figures/{cstudy}_steps.pdf",
        fig_png=report("reports/figures/{cstudy}_steps.png", category="Figures"),
    log:
        f"{LOGS}/report/{{cstudy}}.log",
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
        study=lambda w: json.dumps(wc.study_definition(config, w.cstudy)),
        reported=reported_csv,
    shell:
        "{params.kdseg} continual-report --study-json {params.study:q} "
        "--reported {params.reported:q} --tex {output.tex} --pdf {output.pdf} "
        "--markdown {output.markdown} --figure-pdf {output.fig_pdf} "
        "--figure-png {output.fig_png} {input.metrics} > {log} 2>&1"
