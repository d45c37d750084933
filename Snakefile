# kdseg workflow: data -> budget splits -> training runs -> reports.
#   snakemake --cores all reports/table1.pdf                 (embedded data, default scale)
#   snakemake --cores all reports/table1.pdf --config scale=smoke
#   snakemake --profile profiles/slurm reports/table1.pdf --config data=real data_root=/datasets


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/continual_common.smk"
include: "rules/data.smk"
include: "rules/teacher.smk"
include: "rules/train.smk"
include: "rules/track.smk"
include: "rules/report.smk"
include: "rules/fetch.smk"
include: "rules/continual.smk"


rule all:
    default_target: True
    input:
        expand("reports/{study}.pdf", study=STUDIES),
        expand(pattern(jobs.TRACK_MARKER), study=STUDIES),
        ["reports/figures/ignet_frame.png"] if IGNET_FIGURE else [],
        expand("reports/{cstudy}.pdf", cstudy=CONTINUAL_STUDIES),
        expand(cpattern(jobs.TRACK_MARKER), cstudy=CONTINUAL_STUDIES),
