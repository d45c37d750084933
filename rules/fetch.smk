# Real datasets: one rule per catalog entry (kdseg/fetch/catalog.py). Each downloads what may be
# downloaded (resumable), verifies checksums, extracts safely, checks the layout with the readers
# and writes the done record <data_root>/<dataset>/.kdseg-fetched.json (docs/data_real.md).
# Licence-gated sets (KITTI scans, nuScenes, ScanNet) fail with the steps to obtain them in the
# log, until their archives (or an unpacked copy) are in place.
#   snakemake --cores 1 fetch_ade20k --config data_root=/datasets
# Local rules: on a cluster they run where the workflow runs (login nodes reach the internet).

from kdseg.fetch.catalog import CATALOG

FETCH_ROOT = config["data_root"]


for _dataset in CATALOG:

    rule:
        name:
            f"fetch_{_dataset.replace('-', '_')}"
        output:
            record=f"{FETCH_ROOT}/{_dataset}/.kdseg-fetched.json",
        log:
            f"logs/fetch/{_dataset}.log",
        localrule: True
        conda:
            "../envs/kdseg.yaml"
        params:
            kdseg=KDSEG,
            root=lambda wildcards, output: Path(output.record).parent.parent,
            dataset=_dataset,
        shell:
            "{params.kdseg} fetch {params.dataset} --root {params.root:q} > {log} 2>&1"
