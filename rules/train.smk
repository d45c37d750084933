# One job per dataset x method variant x budget x seed. A job's extra inputs (the 2D feature
# cache, another run's model, ...) come from its method's input providers (kdseg.inputs).
# The training process writes only files (its local log, run_config.json, and at the end
# metrics.json + model.pt): MLflow is fed by the study's `track` job (rules/track.smk).
# The run folder belongs to the job: its outputs are update()-flagged, so a rerun keeps the
# previous metrics.json and model.pt until `kdseg train` replaces them atomically at the end
# (Snakemake restores them if the job fails); a checkpoint of another configuration is
# discarded and a finished run's checkpoint is gone, so every rerun trains to completion.


rule train:
    input:
        unpack(method_inputs),
        split=split_file,
        ready=pattern(jobs.DATA_RECORD),
    output:
        metrics=update(pattern(jobs.RUN_RECORD)),
        model=update(pattern(jobs.RUN_MODEL)),
    log:
        pattern(jobs.TRAIN_LOG),
    conda:
        "../envs/kdseg.yaml"
    threads: SETTINGS.get("threads", 1)
    resources:
        **GPU_RESOURCES,
    params:
        kdseg=kdseg_for,
        root=lambda wc: data_root(wc.dataset),
        method=lambda wc: config["variants"][wc.variant]["method"],
        options=lambda wc: json.dumps(
            config["variants"][wc.variant].get("options") or {}
        ),
        inputs=input_args,
        scale=SETTINGS["train_scale"],
        schedule=lambda wc: config["variants"][wc.variant].get("schedule", 1.0),
    shell:
        "{params.kdseg} train --data {params.root:q} --dataset {wildcards.dataset} "
        "--split {input.split} --method {params.method:q} "
        "--variant {wildcards.variant} --options-json {params.options:q} "
        "--seed {wildcards.seed} --scale {params.scale} --schedule {params.schedule} "
        "--threads {threads} {params.inputs} "
        "--out $(dirname {output.metrics}) > {log} 2>&1"
