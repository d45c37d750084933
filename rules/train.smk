# One job per dataset x method variant x budget x seed; every run is logged to MLflow.
# Variants whose method requires 2D features (IGNet) also wait for the dataset's feature cache.
# The run folder belongs to the job: its outputs are update()-flagged, so a rerun keeps the
# previous metrics.json and model.pt until `kdseg train` replaces them atomically at the end
# (Snakemake restores them if the job fails); a checkpoint of another configuration is
# discarded and a finished run's checkpoint is gone, so every rerun trains to completion.


rule mlflow_init:
    output:
        ready=f"{RESULTS}/mlflow_experiments.json",
    log:
        f"{LOGS}/mlflow_init.log",
    localrule: True
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=KDSEG,
        uri=MLFLOW_URI,
        experiments=[experiment_name(s) for s in STUDIES],
    shell:
        "{params.kdseg} mlflow-init --uri {params.uri:q} --out {output.ready} "
        "{params.experiments:q} > {log} 2>&1"


rule train:
    input:
        unpack(feature_inputs),
        split=split_file,
        ready=f"{RESULTS}/data/{{dataset}}.json",
        mlflow=f"{RESULTS}/mlflow_experiments.json",
    output:
        metrics=update(
            f"{RESULTS}/runs/{{dataset}}/{{variant}}/{{budget}}/seed{{seed}}/metrics.json"
        ),
        model=update(
            f"{RESULTS}/runs/{{dataset}}/{{variant}}/{{budget}}/seed{{seed}}/model.pt"
        ),
    log:
        f"{LOGS}/train/{{dataset}}/{{variant}}/{{budget}}/seed{{seed}}.log",
    conda:
        "../envs/kdseg.yaml"
    threads: SETTINGS.get("threads", 1)
    resources:
        mem_mb=SETTINGS.get("resources", {}).get("mem_mb", 4000),
        runtime=SETTINGS.get("resources", {}).get("runtime", 30),
        gpus=SETTINGS.get("resources", {}).get("gpus", 0),
    params:
        kdseg=KDSEG,
        root=lambda wc: data_root(wc.dataset),
        method=lambda wc: config["variants"][wc.variant]["method"],
        options=lambda wc: json.dumps(
            config["variants"][wc.variant].get("options") or {}
        ),
        fingerprint=lambda wc: variant_fingerprint(config, wc.variant),
        experiment=lambda wc: experiment_name(home_study(config, job_of(wc))),
        job_key=lambda wc: job_of(wc).key,
        scale=SETTINGS["train_scale"],
        schedule=lambda wc: config["variants"][wc.variant].get("schedule", 1.0),
        uri=MLFLOW_URI,
        features=features_arg,
    shell:
        "{params.kdseg} train --data {params.root:q} --dataset {wildcards.dataset} "
        "--split {input.split} --method {params.method} "
        "--variant {wildcards.variant} --options-json {params.options:q} "
        "--seed {wildcards.seed} --scale {params.scale} --schedule {params.schedule} "
        "--threads {threads} {params.features} "
        "--out $(dirname {output.metrics}) --mlflow-uri {params.uri:q} "
        "--mlflow-experiment {params.experiment:q} --job-key {params.job_key:q} "
        "--tag rule=train --tag variant_fingerprint={params.fingerprint} "
        "> {log} 2>&1"
