# Continual 2D segmentation: the configuration's continual sections, wildcards and path helpers
# of rules/continual.smk (validated with the rest by kdseg.workflow.validate_config in
# rules/common.smk). Paths come from kdseg.jobs; the wildcard {cds} is the continual dataset.
from kdseg import workflow_continual as wc
from kdseg.jobs import ContinualJob

CONTINUAL_DATASETS = list(config.get("continual_datasets") or {})
CONTINUAL_ALL = list(config.get("continual_studies") or {})
CONTINUAL_STUDIES = wc.active_studies(config)
NEVER = "(?!x)x"  # a wildcard constraint that matches nothing (no continual section)


wildcard_constraints:
    cds="|".join(CONTINUAL_DATASETS) or NEVER,
    setting=jobs.SETTING_PATTERN,
    task=jobs.TASK_PATTERN,
    step="[0-9]+",
    preset="smoke|default|paper",
    cstudy="|".join(CONTINUAL_ALL) or NEVER,


def cpattern(template):
    """A continual kdseg.jobs template as a wildcard pattern ({dataset} is {cds} here)."""
    return pattern(
        template.replace("{dataset}", "{cds}").replace("{study}", "{cstudy}")
    )


def cjob(w, step=True):
    return ContinualJob(
        w.cds, w.setting, w.task, w.variant, int(w.seed), int(w.step) if step else None
    )


def cdir(job):
    return jobs.continual_dir(SCALE, job)


def continual_data(w):
    """The data a continual job reads: the generated data, or the real class lists."""
    if config["data"] == "real":
        lists = wc.class_lists(config, w.cds)
        return {
            "train_lists": f"{lists}/train_cls.txt",
            "val_lists": f"{lists}/val_cls.txt",
        }
    return {"meta": f"{wc.data_root(config, w.cds)}/meta.json"}


def step_inputs(w):
    """Data, the task's index files and what the method's input providers name (old_model:
    the previous step's run)."""
    job = cjob(w)
    files = train_inputs(config, job)
    named = {f"{n}_{k}": p for n, keys in files.items() for k, p in keys.items()}
    split = f"{wc.split_dir(config, job)}/task.json"
    return {**continual_data(w), "split": split, **named}


def chain_dirs(w):
    return [cdir(step) for step in wc.chain(config, cjob(w, step=False))]
