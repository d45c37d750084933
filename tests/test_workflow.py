"""Workflow configuration: schema + semantic validation, job enumeration, conda pins."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
import yaml

from kdseg.errors import ConfigError
from kdseg.workflow import (
    Job,
    dataset_root,
    split_seed,
    study_definition,
    study_jobs,
    teacher_args,
    track_jobs,
    train_input_args,
    train_inputs,
    validate_config,
    variant_fingerprint,
    variant_requires,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"


@pytest.fixture
def config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_shipped_config_is_valid(config):
    validate_config(config, SCHEMA)


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (lambda c: c.update(scale="huge"), "scale", "not one of"),
        (lambda c: c.update(data="cloud"), "data", "is not one of"),
        (lambda c: c.update(typo_key=1), "<root>", "typo_key"),
        (
            lambda c: c["variants"]["lasermix"].update(method="laser"),
            "variants.lasermix.method",
            "unknown method 'laser'",
        ),
        (
            lambda c: c["variants"]["lasermix"].update(options={"pseudo_treshold": 0.8}),
            "variants.lasermix.options.pseudo_treshold",
            "unknown option",
        ),
        (
            lambda c: c["variants"]["lasermix"].update(options={"pseudo_threshold": "high"}),
            "variants.lasermix.options.pseudo_threshold",
            "expected float",
        ),
        (
            lambda c: c["studies"]["table1"]["rows"].append("ignet_typo"),
            "studies.table1.rows[4]",
            "unknown variant 'ignet_typo'",
        ),
        (
            lambda c: c["variants"]["ignet"].update(options={"fd_loss": "l1"}),
            "variants.ignet.options.fd_loss",
            "must be one of",
        ),
        (
            lambda c: c["datasets"]["street"].update(teacher_options={"source_itres": 5}),
            "datasets.street.teacher_options.source_itres",
            "unknown 2D teacher option",
        ),
        (
            lambda c: c["datasets"]["street"].update(teacher_checkpoint="/nowhere/teacher.pt"),
            "datasets.street.teacher_checkpoint",
            "does not exist",
        ),
        (
            lambda c: c["ignet_figure"].update(variant="lasermix"),
            "ignet_figure.variant",
            "uses no 2D teacher",
        ),
        (
            lambda c: c["ignet_figure"].update(budget="scans-5"),
            "ignet_figure.baseline",
            "no study trains run street/sup_only/scans-5/seed0",
        ),
        (
            lambda c: c["studies"]["table1"]["budgets"].append("scans-0"),
            "studies.table1.budgets[6]",
            "budget",
        ),
        (
            lambda c: c["studies"]["table1"].update(seeds=[0, "one"]),
            "studies.table1.seeds[1]",
            "not of type 'integer'",
        ),
        (
            lambda c: c["studies"]["table1"].update(per_class_budget="scans-5"),
            "studies.table1.per_class_budget",
            "not among the budgets",
        ),
        (
            lambda c: c["scales"]["smoke"].update(train_scale="tiny"),
            "scales.smoke.train_scale",
            "is not one of",
        ),
        (
            lambda c: c["variants"]["lasermix"].update(inputs={"features_2d": {}}),
            "variants.lasermix.inputs.features_2d",
            "does not require it",
        ),
        (
            lambda c: c["variants"].update(kd={"method": "tests.kd_method:LogitKD"}),
            "variants.kd.inputs.teacher_checkpoint.variant",
            "is required",
        ),
        (
            lambda c: c["variants"].update(
                kd={
                    "method": "tests.kd_method:LogitKD",
                    "inputs": {"teacher_checkpoint": {"variant": "nope"}},
                }
            ),
            "variants.kd.inputs.teacher_checkpoint.variant",
            "unknown variant 'nope'",
        ),
        (
            lambda c: c["variants"].update(
                kd={
                    "method": "tests.kd_method:LogitKD",
                    "inputs": {"teacher_checkpoint": {"variant": "sup_only", "seeds": 3}},
                }
            ),
            "variants.kd.inputs.teacher_checkpoint.seeds",
            "unknown teacher_checkpoint setting",
        ),
        (
            lambda c: c["variants"]["lasermix"].update(method="kdseg.methods.nope:Nope"),
            "variants.lasermix.method",
            "cannot import kdseg.methods.nope",
        ),
    ],
)
def test_bad_config_names_the_key(config, mutate, key, problem):
    bad = copy.deepcopy(config)
    mutate(bad)
    with pytest.raises(ConfigError) as err:
        validate_config(bad, SCHEMA)
    assert err.value.key == key, str(err.value)
    assert problem in err.value.problem, str(err.value)


def test_study_jobs_and_scale_seeds(config):
    jobs = study_jobs(config, "table1")
    assert len(jobs) == 4 * 4 * 3  # the default scale drops 20 % and 50 % (drop_budgets)
    assert {j.budget for j in jobs} == {"scribbles", "scans-1", "scans-10", "full"}
    assert study_definition(config, "table1")["columns"] == [
        "scribbles",
        "scans-1",
        "scans-10",
        "full",
    ]
    config["scale"] = "paper"
    assert len(study_jobs(config, "table1")) == 4 * 6 * 3
    config["scale"] = "default"
    assert len(study_jobs(config, "table_ignet_ablation")) == 4 * 2 * 3
    config["scale"] = "smoke"
    smoke = study_jobs(config, "table1")
    assert len(smoke) == 4 * 6 and {j.seed for j in smoke} == {0}
    tracked = track_jobs(config, "table1")  # what the study's tracking job logs
    assert [t["job_key"] for t in tracked] == [j.key for j in smoke]
    assert tracked[0]["run_dir"] == f"results/smoke/runs/{smoke[0].key}".replace("/seed", "/seed")
    assert tracked[0]["tags"]["variant_fingerprint"] == variant_fingerprint(
        config, smoke[0].variant
    )
    assert Job("street", "lasermix", "scans-10", 0).key == "street/lasermix/scans-10/seed0"


def test_variant_fingerprint_changes_only_with_that_variant(config):
    before = {v: variant_fingerprint(config, v) for v in config["variants"]}
    config["variants"]["lasermix"]["options"] = {"mix_weight": 2.0}
    after = {v: variant_fingerprint(config, v) for v in config["variants"]}
    assert [v for v in before if before[v] != after[v]] == ["lasermix"]


def test_ignet_variants_and_teacher_arguments(config):
    from kdseg.methods.base import method_class

    lidar = [
        v
        for v in config["variants"]
        if method_class(config["variants"][v]["method"]).family == "lidar"
    ]
    assert {v for v in lidar if variant_requires(config, v)} == {
        "ignet_base", "ignet_fd", "ignet_fd_cl", "ignet",
    }  # fmt: skip
    assert variant_requires(config, "ignet") == {"features_2d", "mix_partners"}
    assert teacher_args(config, "street") == ["--scale", "default", "--options-json", "{}"]
    config["scale"] = "smoke"
    config["datasets"]["street"]["teacher_options"] = {"adaptation": "none"}
    assert teacher_args(config, "street")[1::2] == ["smoke", '{"adaptation": "none"}']
    config.update(data="real", data_root="/datasets")  # synthetic source -> real camera
    assert teacher_args(config, "street")[-2:] == ["--source", "/datasets/synthetic/smoke/street"]
    config["datasets"]["street"]["teacher_checkpoint"] = "my/teacher.pt"
    assert teacher_args(config, "street") == ["--checkpoint", "my/teacher.pt"]


def test_training_jobs_get_their_inputs_from_the_providers(config):
    """No rule names a method: the feature cache of IGNet variants, another run's model for a
    frozen-teacher variant, nothing for the others, all from the input providers."""
    config["scale"] = "smoke"
    assert train_inputs(config, Job("street", "sup_only", "full", 0)) == {}
    assert train_inputs(config, Job("street", "ignet", "scans-10", 1)) == {
        "features_2d": {"manifest": "results/smoke/teacher2d/street/features/manifest.json"},
        "mix_partners": {},
    }
    assert train_input_args(config, Job("street", "ignet", "scans-10", 1)) == [
        "--input", "features_2d=results/smoke/teacher2d/street/features",
    ]  # fmt: skip
    teacher = {"teacher_checkpoint": {"variant": "sup_only", "budget": "full"}}
    config["variants"]["kd"] = {"method": "tests.kd_method:LogitKD", "inputs": teacher}
    validate_config(config, SCHEMA)
    job = Job("street", "kd", "scans-10", 2)
    run = "results/smoke/runs/street/sup_only/full/seed2"
    assert train_inputs(config, job) == {
        "teacher_checkpoint": {"record": f"{run}/metrics.json", "model": f"{run}/model.pt"}
    }
    assert train_input_args(config, job) == ["--input", f"teacher_checkpoint={run}"]
    before = variant_fingerprint(config, "kd")
    config["variants"]["kd"]["inputs"]["teacher_checkpoint"]["budget"] = "scans-50"
    assert variant_fingerprint(config, "kd") != before  # a changed teacher reruns the variant


def test_dataset_roots(config):
    assert dataset_root(config, "street") == Path("data/synthetic/default/street")
    config.update(data="real", data_root="/datasets")
    assert dataset_root(config, "street") == Path("/datasets/semantickitti")


def test_conda_env_pins_match_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs" / "kdseg.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == deps


def test_split_policy_fixed_by_default(config):
    """Fixed split (the published protocol): every seed trains on the seed-0 split file;
    per_seed: each seed on its own."""
    assert config["split_policy"] == "fixed"
    assert [split_seed(config, s) for s in (0, 1, 2)] == [0, 0, 0]
    assert [split_seed(config | {"split_policy": "per_seed"}, s) for s in (0, 1, 2)] == [0, 1, 2]
    with pytest.raises(ConfigError, match="split_policy"):
        validate_config(config | {"split_policy": "random"}, SCHEMA)
