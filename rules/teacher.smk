# IGNet's 2D teacher: trained on the synthetic source images and adapted to the target camera
# (or adopted from datasets.<name>.teacher_checkpoint), then its per-point features are cached
# for every train and val frame (docs/teacher2d.md, docs/ignet.md).


rule teacher2d:
    input:
        unpack(teacher_inputs),
    output:
        teacher=pattern(jobs.TEACHER_CHECKPOINT),
        metrics=pattern(jobs.TEACHER_RECORD),
    log:
        f"{LOGS}/teacher2d/{{dataset}}.log",
    wildcard_constraints:
        dataset="|".join(DATASETS),
    conda:
        "../envs/kdseg.yaml"
    threads: SETTINGS.get("threads", 1)
    resources:
        **GPU_RESOURCES,
    params:
        kdseg=KDSEG,
        root=lambda wc: data_root(wc.dataset),
        source=teacher_source,
    shell:
        "{params.kdseg} teacher --data {params.root:q} --out $(dirname {output.teacher}) "
        "--threads {threads} {params.source} > {log} 2>&1"


rule point_features:
    input:
        teacher=pattern(jobs.TEACHER_CHECKPOINT),
        ready=pattern(jobs.DATA_RECORD),
    output:
        manifest=pattern(jobs.FEATURE_MANIFEST),
    log:
        f"{LOGS}/teacher2d/{{dataset}}_features.log",
    wildcard_constraints:
        dataset="|".join(DATASETS),
    conda:
        "../envs/kdseg.yaml"
    threads: SETTINGS.get("threads", 1)
    resources:
        **GPU_RESOURCES,
    params:
        kdseg=KDSEG,
        root=lambda wc: data_root(wc.dataset),
    shell:
        "{params.kdseg} features --data {params.root:q} --teacher {input.teacher} "
        "--out $(dirname {output.manifest}) --threads {threads} > {log} 2>&1"
