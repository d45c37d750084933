"""The continual sections of the workflow config: validation naming the key, the jobs of a
study (task chains, the shared step 0, joint training once per seed), the old model's rule
inputs, and the CLI's one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from kdseg import workflow_continual as wc
from kdseg.errors import ConfigError
from kdseg.jobs import ContinualJob
from kdseg.workflow import train_input_args, train_inputs, validate_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_shipped_continual_config_is_valid(config):
    validate_config(copy.deepcopy(config), SCHEMA)
    assert wc.active_studies(config) == ["table3"]  # the ADE study: smoke and paper scales only
    smoke = {**config, "scale": "smoke"}
    assert wc.active_studies(smoke) == ["table3", "table3_ade"]


def _set(cfg: dict, path: str, value: object) -> dict:
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    return cfg


@pytest.mark.parametrize(
    ("path", "value", "key", "problem"),
    [
        ("continual_studies.table3.setting", "both", "continual_studies.table3.setting",
         "is not one of"),
        ("continual_studies.table3.tasks", ["15-7"], "continual_studies.table3.tasks[0]",
         "unknown voc task '15-7'"),
        ("continual_studies.table3.rows", ["ft", "sup_only"], "continual_studies.table3.rows[1]",
         "'sup_only' is not a continual method"),
        ("continual_studies.table3.dataset", "street", "continual_studies.table3.dataset",
         "unknown continual dataset 'street'"),
        ("continual_studies.table3.figure_task", "10-1", "continual_studies.table3.figure_task",
         "'10-1' is not a task"),
        ("variants.mib.inputs", {"old_model": {"base_variant": "nope"}},
         "variants.mib.inputs.old_model.base_variant", "unknown variant 'nope'"),
        ("variants.mib.inputs", {"old_model": {"base_variant": "joint"}},
         "variants.mib.inputs.old_model.base_variant", "not a variant of a continual method"),
        ("variants.mib.inputs", {"old_model": {"step0": "ft"}},
         "variants.mib.inputs.old_model.step0", "unknown old_model setting"),
        ("studies.sanity.rows", ["sup_only", "mib"], "studies.sanity.rows[1]",
         "'mib' is a continual method"),
        ("continual_datasets.voc.format", "coco", "continual_datasets.voc.format",
         "is not one of"),
    ],
)  # fmt: skip
def test_bad_continual_config_names_the_key(config, path, value, key, problem):
    cfg = _set(copy.deepcopy(config), path, value)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    assert err.value.key == key and problem in err.value.problem, str(err.value)


def test_study_jobs_share_step0_and_train_joint_once(config):
    """table3 at the default scale: 7 continual rows x 3 tasks x 3 seeds + joint once per seed;
    step 0 trained once per seed and step-0 class set (15-5 and 15-1 share {0..15})."""
    runs = wc.study_runs(config, "table3")
    assert len(runs) == 7 * 3 * 3 + 3
    steps = wc.study_steps(config, "table3")
    step0 = sorted({(s.task, s.variant) for s in steps if s.step == 0})
    assert step0 == [("15-1", "ft"), ("19-1", "ft"), ("offline", "joint")]
    assert len(steps) == 3 * 3 + 7 * 3 * (1 + 5 + 1)  # bases + joint, then every later step
    mib = ContinualJob("voc", "overlap", "15-5", "mib", 1)
    chain = [s.key for s in wc.chain(config, mib)]
    assert chain == ["voc/overlap/15-1/ft/seed1/step0", "voc/overlap/15-5/mib/seed1/step1"]
    jobs = wc.track_jobs(config, "table3")
    assert {j["job_key"] for j in jobs} == {s.key for s in steps}


def test_old_model_input_is_the_previous_step(config):
    """The step job's extra inputs come from its method's providers: the previous step's run
    (its record and model), the shared base run at step 1, none at step 0."""
    job = ContinualJob("voc", "overlap", "15-1", "plop", 0, step=3)
    files = train_inputs(config, job)["old_model"]
    assert files == {
        "record": "results/default/continual/voc/overlap/15-1/plop/seed0/step2/metrics.json",
        "model": "results/default/continual/voc/overlap/15-1/plop/seed0/step2/model.pt",
    }
    assert train_input_args(config, job) == [
        "--input", "old_model=results/default/continual/voc/overlap/15-1/plop/seed0/step2"
    ]  # fmt: skip
    first = train_inputs(config, ContinualJob("voc", "overlap", "15-5", "plop", 0, step=1))
    assert first["old_model"]["model"].endswith("15-1/ft/seed0/step0/model.pt")
    assert train_inputs(config, ContinualJob("voc", "overlap", "15-5", "ft", 0, step=0)) == {
        "old_model": {}
    }
    assert train_input_args(config, ContinualJob("voc", "overlap", "15-5", "ft", 0, 0)) == []


def test_data_roots_and_study_definition(config):
    assert wc.data_root(config, "voc") == Path("data/synthetic/default/voc")
    assert wc.class_lists(config, "voc") == Path("data/synthetic/default/voc/cl_metadata")
    real = {**config, "data": "real", "data_root": "/datasets"}
    assert wc.data_root(real, "ade20k") == Path("/datasets/ade20k")
    assert wc.class_lists(real, "voc") == Path("/datasets/voc/cl_metadata")
    study = wc.study_definition({**config, "scale": "smoke"}, "table3")
    assert study["seeds"] == [0] and study["scale"] == "smoke"
    assert study["rows"][-1] == ["joint", "Joint"] and study["figure_task"] == "15-1"


def test_train_step_errors_are_one_line(tmp_path, capsys):
    from kdseg.cli import main

    args = ["train-step", "--data", str(tmp_path), "--split-dir", str(tmp_path), "--step", "0"]
    assert main([*args, "--method", "sup_only", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "'sup_only' is a method of the 'lidar' family, not 'image_continual'" in err
    assert main([*args, "--method", "mib", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("task.json: missing: the split was never completed"), err
    assert len(err.splitlines()) == 1
    assert main([*args, "--method", "mib", "--augment", "crop_size=big", "--out", "x"]) == 2
    assert "config key 'augment.crop_size'" in capsys.readouterr().err
