# Datasets: generate the embedded synthetic data, or check the real data under data_root;
# then write the label-budget split files.

from kdseg.datasets.synthetic_street import StreetConfig


rule generate_street:
    output:
        meta=f"{config['data_root']}/synthetic/{{gscale}}/{{dataset}}/meta.json",
    log:
        "logs/data/generate_{gscale}_{dataset}.log",
    wildcard_constraints:
        gscale="smoke|default|full",
    conda:
        "../envs/kdseg.yaml"
    threads: 2
    params:
        kdseg=KDSEG,
        generator=lambda wc: StreetConfig.for_scale(wc.gscale).fingerprint(),  # reruns on change
    shell:
        "{params.kdseg} generate --scale {wildcards.gscale} --workers {threads} "
        "--out $(dirname {output.meta}) > {log} 2>&1"


rule check_dataset:
    input:
        dataset_inputs,
    output:
        ready=pattern(jobs.DATA_RECORD),
    log:
        f"{LOGS}/data/check_{{dataset}}.log",
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=kdseg_for,
        root=lambda wc: data_root(wc.dataset),
    shell:
        "{params.kdseg} check-data --data {params.root:q} --out {output.ready} > {log} 2>&1"


rule split:
    input:
        ready=pattern(jobs.DATA_RECORD),
    output:
        split=pattern(jobs.SPLIT_FILE),
    log:
        f"{LOGS}/splits/{{dataset}}/{{budget}}/seed{{seed}}.log",
    conda:
        "../envs/kdseg.yaml"
    params:
        kdseg=kdseg_for,
        root=lambda wc: data_root(wc.dataset),
    shell:
        "{params.kdseg} split --data {params.root:q} --dataset {wildcards.dataset} "
        "--budget {wildcards.budget} --seed {wildcards.seed} --out {output.split} > {log} 2>&1"
