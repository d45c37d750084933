"""Label budgets: sizes, disjointness, determinism by seed, nesting, round trip, errors."""

from __future__ import annotations

import json

import pytest

from kdseg.budgets import STANDARD_BUDGETS, make_split, parse_budget, read_split, write_split
from kdseg.errors import ConfigError, DataFormatError

FRAMES = [(f"{s:02d}", i) for s in (0, 1, 2, 3, 4) for i in range(40)]  # 200 frames


@pytest.mark.parametrize(
    ("budget", "n_lab"),
    [
        ("scans-1", 2),
        ("scans-10", 20),
        ("scans-20", 40),
        ("scans-50", 100),
        ("full", 200),
        ("scribbles", 200),
    ],
)
def test_sizes_and_disjointness(budget, n_lab):
    split = make_split("street", FRAMES, budget, seed=0)
    assert len(split.labelled) == n_lab
    assert len(split.unlabelled) == 200 - n_lab
    assert not set(split.labelled) & set(split.unlabelled)
    assert set(split.labelled) | set(split.unlabelled) == set(FRAMES)
    assert split.supervision == ("scribbles" if budget == "scribbles" else "labels")


def test_at_least_one_labelled_scan():
    assert len(make_split("d", FRAMES[:20], "scans-1", seed=3).labelled) == 1


def test_deterministic_by_seed_and_order_independent():
    a = make_split("street", FRAMES, "scans-10", seed=1)
    b = make_split("street", list(reversed(FRAMES)), "scans-10", seed=1)
    c = make_split("street", FRAMES, "scans-10", seed=2)
    assert a == b
    assert a.labelled != c.labelled


def test_uniform_over_sequences():
    # 50 % of 200 scans over 5 sequences: every sequence gets some labelled scans
    split = make_split("street", FRAMES, "scans-50", seed=0)
    per_seq = {s: sum(1 for f in split.labelled if f[0] == s) for s in {f[0] for f in FRAMES}}
    assert all(10 <= n <= 30 for n in per_seq.values()), per_seq


def test_nested_for_one_seed():
    small = set(make_split("street", FRAMES, "scans-1", seed=5).labelled)
    mid = set(make_split("street", FRAMES, "scans-10", seed=5).labelled)
    big = set(make_split("street", FRAMES, "scans-50", seed=5).labelled)
    assert small <= mid <= big


def test_round_trip(tmp_path):
    split = make_split("street", FRAMES, "scans-20", seed=7)
    path = tmp_path / "splits" / "street" / "scans-20" / "seed7.json"
    write_split(path, split)
    assert read_split(path) == split
    assert json.loads(path.read_text())["counts"] == {"labelled": 40, "unlabelled": 160}


@pytest.mark.parametrize("name", ["scans-0", "scans-101", "half", "scans-", "Full"])
def test_bad_budget_names(name):
    with pytest.raises(ConfigError, match="budget"):
        parse_budget(name)


@pytest.mark.parametrize(("name", "right"), [("scans-07", "scans-7"), ("scans-10.0", "scans-10")])
def test_budgets_have_one_spelling(name, right):
    with pytest.raises(ConfigError, match=f"is written '{right}'"):
        parse_budget(name)


def test_custom_budget_is_drawn_and_recorded(tmp_path):
    split = make_split("street", FRAMES, "scans-7", seed=0, fingerprint="abc")
    assert split.custom_budget and len(split.labelled) == 14
    path = tmp_path / "s.json"
    write_split(path, split)
    obj = json.loads(path.read_text())
    assert obj["custom_budget"] is True and obj["train_fingerprint"] == "abc"
    assert read_split(path) == split
    obj["custom_budget"] = False  # a file that hides its budget is not read
    path.write_text(json.dumps(obj))
    with pytest.raises(DataFormatError, match="custom_budget is False for budget 'scans-7'"):
        read_split(path)
    assert not make_split("street", FRAMES, "scans-10", seed=0).custom_budget


def test_old_split_format_is_refused_with_the_command_that_regenerates_it(tmp_path):
    path = tmp_path / "seed0.json"
    write_split(path, make_split("street", FRAMES, "scans-10", seed=0))
    obj = json.loads(path.read_text())
    obj["format_version"] = 1
    del obj["train_fingerprint"], obj["custom_budget"]
    path.write_text(json.dumps(obj))
    with pytest.raises(DataFormatError) as err:
        read_split(path)
    assert "split format 1 is not the supported 2" in str(err.value)
    assert (
        f"kdseg split --data DATA_ROOT --dataset street --budget scans-10 --seed 0 --out {path}"
        in str(err.value)
    )


def test_split_whose_counts_do_not_match_its_budget(tmp_path):
    path = tmp_path / "s.json"
    write_split(path, make_split("street", FRAMES, "scans-10", seed=0))
    obj = json.loads(path.read_text())
    obj["labelled"].append(obj["unlabelled"].pop())  # 21 labelled scans under scans-10
    path.write_text(json.dumps(obj))
    with pytest.raises(DataFormatError, match="21 labelled scans, but budget 'scans-10' of 200"):
        read_split(path)


def test_split_seed_must_fit_numpy():
    with pytest.raises(ConfigError, match="'seed': must be in"):
        make_split("street", FRAMES, "scans-10", seed=-1)


def test_standard_budgets_parse():
    assert [parse_budget(b).kind for b in STANDARD_BUDGETS] == ["scribbles"] + ["scans"] * 4 + [
        "full"
    ]


def test_bad_split_files(tmp_path):
    path = tmp_path / "s.json"
    with pytest.raises(DataFormatError, match="does not exist"):
        read_split(path)
    path.write_text("{not json")
    with pytest.raises(DataFormatError, match="malformed split file"):
        read_split(path)
    write_split(path, make_split("d", FRAMES, "scans-10", seed=0))
    obj = json.loads(path.read_text())
    obj["unlabelled"].append(obj["labelled"][0])
    path.write_text(json.dumps(obj))
    with pytest.raises(DataFormatError, match="overlap"):
        read_split(path)


def test_scribble_budget_on_synthetic_data(tmp_path):
    """The `scribbles` budget labels about 8 % of the points of the synthetic street data."""
    import numpy as np

    from kdseg.datasets.semantickitti import SemanticKITTI
    from kdseg.datasets.splits import split_frames
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    root = generate(tmp_path / "street", StreetConfig.for_scale("smoke"))
    split = make_split("street", split_frames(root, "train"), "scribbles", seed=0)
    assert split.supervision == "scribbles" and not split.unlabelled
    ds = SemanticKITTI(root)
    labelled = total = 0
    for seq, idx in split.labelled:
        frame = ds.frame(seq, idx, supervision="scribbles")
        labelled += int(frame.labelled.sum())
        total += frame.num_points
        # scribbled points carry the dense label of their point
        scrib = ds.scribble_labels(seq, idx, frame.num_points)
        assert np.array_equal(scrib[frame.labelled], frame.labels[frame.labelled])
    assert 0.04 < labelled / total < 0.13, labelled / total
