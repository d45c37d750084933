# MLflow, fed from files: one tracking job per study logs the study's finished runs (their
# metrics.json, train_log.jsonl and run_config.json) to the experiment kdseg/<scale>/<study>,
# once per run (idempotent: a rerun job skips runs whose files did not change). The training
# jobs never talk to MLflow, so a tracking server that is down loses nothing: the next tracking
# job (or `kdseg track`) logs what was missed. docs/tracking.md.


rule mlflow_init:
    output:
        ready=path(jobs.MLFLOW_READY),
    log:
        f"{LOGS}/mlflow_init.log",
    localrule: True
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
        uri=MLFLOW_URI,
        experiments=[experiment_name(s) for s in STUDIES + CONTINUAL_STUDIES],
    shell:
        "{params.kdseg} mlflow-init --uri {params.uri:q} --out {output.ready} "
        "{params.experiments:q} > {log} 2>&1"


rule track:
    input:
        metrics=study_metrics,
        store=path(jobs.MLFLOW_READY),
    output:
        marker=pattern(jobs.TRACK_MARKER),
    log:
        f"{LOGS}/track/{{study}}.log",
    localrule: True
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
        uri=MLFLOW_URI,
        experiment=lambda wc: experiment_name(wc.study),
        jobs=track_jobs_json,
    shell:
        "{params.kdseg} track --uri {params.uri:q} --experiment {params.experiment:q} "
        "--jobs-json {params.jobs:q} --out {output.marker} > {log} 2>&1"
