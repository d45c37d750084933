"""Continual tasks: definitions, filter rules, label masking, the §8.2 count oracles, MiB's
shipped index files and the persisted per-step index files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kdseg.datasets.continual import (
    TASKS,
    Task,
    filter_images,
    get_task,
    select_test_images,
    select_val_images,
)
from kdseg.datasets.continual_lists import (
    ClassLists,
    format_class_lists,
    read_class_lists,
    write_class_lists,
)
from kdseg.datasets.continual_partition import mib_partition
from kdseg.datasets.continual_split import (
    build_task_split,
    load_step,
    load_task_split,
    main,
    write_task_split,
)
from kdseg.errors import ConfigError, DataFormatError
from tests.conftest import realdata_path

# shared/specs/datasets.md §8.2: images per step (overlap train, disjoint train, test)
ORACLE = {
    ("voc", "19-1"): ([10410, 548], [10034, 548], [1421, 1449]),
    ("voc", "15-5"): ([9568, 2145], [8437, 2145], [1240, 1449]),
    ("voc", "15-1"): (
        [9568, 487, 299, 491, 500, 548],
        [8437, 378, 299, 420, 500, 548],
        [1240, 1277, 1329, 1353, 1421, 1449],
    ),
    ("voc", "10-1"): (
        [6139, 528, 1177, 444, 482, 3898, 487, 299, 491, 500, 548],
        [3706, 188, 868, 227, 201, 3247, 378, 299, 420, 500, 548],
        [869, 893, 1005, 1081, 1140, 1240, 1277, 1329, 1353, 1421, 1449],
    ),
    ("voc", "5-3"): (
        [2836, 2331, 1542, 2095, 4484, 1468],
        [1753, 1517, 624, 1296, 3924, 1468],
        [433, 699, 893, 1140, 1329, 1449],
    ),
    ("ade20k", "100-50"): ([20192, 9390], [10806, 9390], [2000, 2000]),
    ("ade20k", "100-10"): (
        [20192, 1710, 2294, 2747, 4279, 2844],
        [10806, 861, 1009, 1445, 3231, 2844],
        [2000] * 6,
    ),
    ("ade20k", "50-50"): ([20177, 13186, 9390], [4838, 5968, 9390], [1997, 2000, 2000]),
}
K = {"voc": 21, "ade20k": 151}


@pytest.fixture(scope="module")
def lists() -> dict[tuple[str, str], ClassLists]:
    out = {}
    for ds in ("voc", "ade20k"):
        for part in ("train", "val"):
            path = realdata_path(ds, "cl_metadata", f"{part}_cls.txt")
            out[ds, part] = read_class_lists(path, K[ds])
    return out


# ------------------------------------------------------------------------------ definitions
def test_task_definitions():
    assert get_task("voc", "15-5s") is get_task("voc", "15-1")
    assert get_task("ade20k", "50") is get_task("ade20k", "50-50")
    t = get_task("voc", "15-1")
    assert t.num_steps == 6 and t.steps[0] == tuple(range(16)) and t.steps[5] == (20,)
    assert get_task("voc", "10-1").steps[1:] == tuple((c,) for c in range(11, 21))
    assert get_task("voc", "5-3").steps[2] == (9, 10, 11)
    assert get_task("ade20k", "100-10").steps[3] == tuple(range(121, 131))
    assert [len(s) for s in get_task("ade20k", "50-50").steps] == [51, 50, 50]
    for task in TASKS.values():  # steps partition the label ids
        assert sorted(c for s in task.steps for c in s) == list(range(task.num_classes))
    with pytest.raises(ConfigError, match="unknown voc task"):
        get_task("voc", "15-2")
    with pytest.raises(ConfigError, match="partition"):
        Task("voc", "bad", ((0, 1), (1, 2)))


def test_class_sets_per_step():
    t = get_task("voc", "15-1")
    assert t.new_classes(0) == tuple(range(1, 16))
    assert t.old_classes(2) == (*range(16), 16)
    assert t.seen_classes(2) == tuple(range(18)) and t.future_classes(2) == (18, 19, 20)
    with pytest.raises(ConfigError, match=r"steps 0\.\.5"):
        t.classes(6)


def test_training_and_eval_label_maps():
    t = get_task("voc", "15-1")
    mask = np.array([[0, 5, 16, 17], [18, 20, 255, 3]], np.uint8)
    assert (t.train_lut(2)[mask] == [[0, 0, 0, 17], [0, 0, 255, 0]]).all()  # old+future -> 0
    assert (t.eval_lut(2)[mask] == [[0, 5, 16, 17], [0, 0, 255, 3]]).all()  # unseen -> 0
    assert (t.train_lut(0)[mask] == [[0, 5, 0, 0], [0, 0, 255, 3]]).all()
    # a custom class order: labels become channels in task order
    custom = Task("voc", "order", ((0, *range(5, 21)), (3, 1), (2, 4)))
    assert custom.seen_classes(1)[-2:] == (3, 1)
    lut = custom.train_lut(1)
    assert (lut[[0, 1, 2, 3, 5, 255]] == [0, 18, 0, 17, 0, 255]).all()
    assert (custom.eval_lut(2)[[2, 4, 20]] == [19, 20, 16]).all()


def test_filter_rules_on_hand_made_lists():
    t = Task("voc", "toy", ((0, *range(1, 11)), tuple(range(11, 16)), tuple(range(16, 21))))
    presence = np.zeros((6, 21), bool)
    for r, cls in enumerate([[1], [1, 12], [12], [12, 17], [17], []]):
        presence[r, cls] = True
    lists = ClassLists(tuple(f"im{r}" for r in range(6)), presence, "toy")
    assert filter_images(lists, t, 0, "overlap").tolist() == [0, 1]
    assert filter_images(lists, t, 0, "disjoint").tolist() == [0]  # row 1 has future 12
    assert filter_images(lists, t, 1, "overlap").tolist() == [1, 2, 3]
    assert filter_images(lists, t, 1, "disjoint").tolist() == [1, 2]  # old 1 is fine
    assert filter_images(lists, t, 2, "disjoint").tolist() == [3, 4]
    assert select_test_images(lists, t, 1).tolist() == [0, 1, 2, 3]  # row 5 has no class
    assert select_val_images(lists, t, 2).tolist() == [3, 4]
    with pytest.raises(ConfigError, match="setting"):
        filter_images(lists, t, 0, "both")
    with pytest.raises(ConfigError, match="151"):
        filter_images(lists, get_task("ade20k", "100-50"), 0, "overlap")


# ------------------------------------------------------------------------------ oracles
@pytest.mark.parametrize("key", sorted(ORACLE), ids=lambda k: f"{k[0]}-{k[1]}")
def test_counts_equal_spec_oracle(lists, key):
    dataset, name = key
    task = get_task(dataset, name)
    train, val = lists[dataset, "train"], lists[dataset, "val"]
    steps = range(task.num_steps)
    overlap, disjoint, test = ORACLE[key]
    assert [len(filter_images(train, task, s, "overlap")) for s in steps] == overlap
    assert [len(filter_images(train, task, s, "disjoint")) for s in steps] == disjoint
    assert [len(select_test_images(val, task, s)) for s in steps] == test


MIB_VOC = [(d, name) for d in ("15-5", "15-5s", "19-1") for name in (d, d + "-ov")]


@pytest.mark.parametrize(("task_name", "folder"), MIB_VOC)
def test_mib_voc_index_files_equal_filter_images(lists, task_name, folder):
    task = get_task("voc", task_name)
    setting = "overlap" if folder.endswith("-ov") else "disjoint"
    for step in range(task.num_steps):
        shipped = np.load(
            realdata_path("voc", "cl_metadata", "mib_splits", folder, f"train-{step}.npy")
        )
        ours = filter_images(lists["voc", "train"], task, step, setting)
        assert np.array_equal(shipped, ours), (folder, step)


@pytest.mark.parametrize(
    ("task_name", "folder"), [("100-50", "100-50"), ("100-10", "100-10"), ("50-50", "50")]
)
def test_mib_ade_partition_reproduces_shipped_files(lists, task_name, folder):
    task = get_task("ade20k", task_name)
    parts = mib_partition(lists["ade20k", "train"], task)
    assert len(parts) == task.num_steps
    for step, rows in enumerate(parts):
        path = realdata_path("ade20k", "cl_metadata", "mib_splits", folder, f"train-{step}.npy")
        assert np.array_equal(np.sort(np.load(path)), rows), (folder, step)
    union = np.concatenate(parts)
    assert len(np.unique(union)) == len(union) == 20196  # disjoint; the 14 empty images left out


# ------------------------------------------------------------------------------ the ADE option
def test_ade_train_selection_option_both_choices(tmp_path):
    folder = realdata_path("ade20k", "cl_metadata")
    fi = json.loads(
        write_task_split(folder, "ade20k", "100-50", "overlap", tmp_path / "a").read_text()
    )
    mp = json.loads(
        write_task_split(
            folder, "ade20k", "100-50", "disjoint", tmp_path / "b", "mib_partition"
        ).read_text()
    )
    assert fi["train_selection"] == "filter_images" and fi["counts"]["train"] == [20192, 9390]
    assert mp["train_selection"] == "mib_partition" and mp["counts"]["train"] == [13452, 6744]
    assert fi["counts"]["test"] == mp["counts"]["test"] == [2000, 2000]
    with pytest.raises(ConfigError, match="disjoint"):
        write_task_split(folder, "ade20k", "100-50", "overlap", tmp_path / "c", "mib_partition")
    with pytest.raises(ConfigError, match="ADE20K only"):
        write_task_split(
            realdata_path("voc", "cl_metadata"),
            "voc",
            "15-5",
            "disjoint",
            tmp_path / "d",
            "mib_partition",
        )
    assert not (tmp_path / "c" / "task.json").exists()


# ------------------------------------------------------------------------------ files
def test_split_files_round_trip(tmp_path, lists, capsys):
    out = tmp_path / "voc-15-1"
    assert main(["--class-lists", str(realdata_path("voc", "cl_metadata")), "--dataset", "voc",
                 "--task", "15-5s", "--setting", "overlap", "--out", str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0] == "train: 9568, 487, 299, 491, 500, 548"
    summary = json.loads((out / "task.json").read_text())
    assert summary["task"]["name"] == "15-1" and summary["counts"]["test"][0] == 1240
    steps = load_task_split(out)
    assert [s.step for s in steps] == list(range(6))
    s2 = steps[2]
    assert s2.classes == (17,) and s2.channels == tuple(range(18))
    assert s2.train == tuple(lists["voc", "train"].ids[r] for r in s2.train_rows)
    assert len(s2.val) == len(select_val_images(lists["voc", "val"], s2.task, 2))
    assert (s2.train_lut()[[16, 17, 18]] == [0, 17, 0]).all()
    shipped = realdata_path("voc", "cl_metadata", "mib_splits", "15-5s-ov", "train-2.npy")
    assert s2.train_rows == tuple(np.load(shipped).tolist())
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_build_task_split_without_files():
    presence = np.zeros((4, 21), bool)
    presence[[0, 1, 2, 3], [1, 16, 20, 5]] = True
    lists = ClassLists(("a", "b", "c", "d"), presence)
    steps = build_task_split(lists, lists, get_task("voc", "15-5"), "overlap")
    assert [s.train for s in steps] == [("a", "d"), ("b", "c")]
    assert [s.test for s in steps] == [("a", "d"), ("a", "b", "c", "d")]


def test_bad_step_files(tmp_path):
    path = tmp_path / "step-0.json"
    with pytest.raises(DataFormatError, match="does not exist"):
        load_step(path)
    path.write_text("{")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_step(path)
    path.write_text('{"format": "other"}')
    with pytest.raises(DataFormatError, match=r"not a kdseg\.continual-step"):
        load_step(path)
    with pytest.raises(DataFormatError, match="never completed"):
        load_task_split(tmp_path)


def test_class_list_files(tmp_path):
    path = tmp_path / "train_cls.txt"
    path.write_text("b 0 14\na\nc 19\n")
    lists = read_class_lists(path, 21)
    assert lists.ids == ("a", "b", "c") and lists.classes_of(1) == [1, 15]
    assert format_class_lists(lists) == "a\nb 0 14\nc 19\n"
    write_class_lists(tmp_path / "copy.txt", lists)
    assert np.array_equal(read_class_lists(tmp_path / "copy.txt", 21).presence, lists.presence)
    for text, match in [
        ("a 20\n", "outside 0..19"),
        ("a x\n", "integers"),
        ("a 1\na 2\n", "twice"),
        ("", "empty"),
    ]:
        path.write_text(text)
        with pytest.raises(DataFormatError, match=match) as err:
            read_class_lists(path, 21)
        assert err.value.path == path
    with pytest.raises(DataFormatError, match="does not exist"):
        read_class_lists(tmp_path / "none.txt", 21)


def test_real_class_lists(lists):
    voc, ade = lists["voc", "train"], lists["ade20k", "train"]
    assert voc.num_images == 10582 and lists["voc", "val"].num_images == 1449
    assert ade.num_images == 20210 and lists["ade20k", "val"].num_images == 2000
    assert voc.images_per_class()[15] == 3898  # person: 10-1 step 5 keeps exactly these
    assert int((~ade.presence.any(axis=1)).sum()) == 14
