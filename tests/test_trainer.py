"""The Trainer with a toy method: determinism, exact resume, EMA teacher, schedules, errors."""

from __future__ import annotations

import math
import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdseg.checkpoint import checkpoint_path, load_checkpoint
from kdseg.ema import EmaTeacher, ema_momentum
from kdseg.errors import ConfigError
from kdseg.evaluator import ConfusionMatrix
from kdseg.optim import lr_factor
from kdseg.teachers import TeacherSpec
from kdseg.tracking import JsonlTracker, read_jsonl
from kdseg.trainer import NonFiniteLossError, Trainer, TrainerConfig

pytestmark = pytest.mark.usefixtures("single_thread")


NUM_CLASSES = 4


class ToyMethod(nn.Module):
    """An MLP classifying random 3D points into quadrants; uses all three global RNGs
    (dropout: torch, input jitter: numpy, a random regulariser weight: python)."""

    def __init__(
        self,
        init_seed: int = 0,
        nan_at: int | None = None,
        interrupt_at: int | None = None,
        ema: dict | None = None,
    ) -> None:
        super().__init__()
        self.ema = ema  # options of an EMA teacher of `net`, or None (no teacher)
        torch.manual_seed(init_seed)
        self.net = nn.Sequential(
            nn.Linear(3, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 4)
        )
        self.teacher: nn.Module | None = None
        self.nan_at, self.interrupt_at = nan_at, interrupt_at
        self.teacher_seen: list[bool] = []

    def teacher_spec(self) -> TeacherSpec | None:
        return None if self.ema is None else TeacherSpec("ema", {"source": "net", **self.ema})

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], step: int):
        x, y = batch
        jitter = np.random.standard_normal(x.shape).astype(np.float32)  # noqa: NPY002
        x = x + 0.01 * torch.from_numpy(jitter)
        logits = self.net(x)
        losses = {"ce": F.cross_entropy(logits, y)}
        self.teacher_seen.append(self.teacher is not None)
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(x).softmax(-1)
            kl = F.kl_div(logits.log_softmax(-1), target, reduction="batchmean")
            losses["kd"] = 0.5 * kl
        decay = sum(p.square().sum() for p in self.net.parameters())
        losses["reg"] = 1e-4 * random.random() * decay
        if step == self.interrupt_at:  # after all three RNGs were used in this step
            raise KeyboardInterrupt
        if step == self.nan_at:
            losses["ce"] = losses["ce"] * float("nan")
        return losses

    def inference_network(self) -> nn.Module:
        return self.net


def make_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(32, 3, generator=g)
    return x, (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()


def evaluate(net: nn.Module) -> dict[str, float]:
    x, y = make_batch(-1)
    cm = ConfusionMatrix(NUM_CLASSES).update(net(x).argmax(1), y)
    return {"miou": cm.compute().miou, "training_flag": float(net.training)}


BASE = TrainerConfig(iterations=20, lr=0.05, log_every=1, checkpoint_every=5, progress=False)
FULL = replace(
    BASE,
    optimizer="sgd",
    nesterov=True,
    schedule="onecycle",
    warmup_iters=4,
    grad_clip=0.5,
)
EMA = {"momentum": 0.9, "warmup": True}  # the teacher of FULL runs


def toy(cfg: TrainerConfig, **kwargs) -> ToyMethod:
    """The toy method of a config: with an EMA teacher for FULL."""
    return ToyMethod(ema=EMA if cfg is FULL else None, **kwargs)


def run(tmp: Path, cfg: TrainerConfig, batches=make_batch, method=None, resume=True):
    method = method if method is not None else toy(cfg)
    trainer = Trainer(method, batches, cfg, tmp, JsonlTracker(tmp / "log.jsonl"), evaluate)
    return trainer, trainer.fit(resume=resume)


def losses_by_step(path: Path) -> dict[int, dict[str, float]]:
    out = {}
    for rec in read_jsonl(path):
        if rec["event"] == "metrics" and "loss/total" in rec["metrics"]:
            out[rec["step"]] = {k: v for k, v in rec["metrics"].items() if k.startswith("loss/")}
    return out


def assert_same_state(a: Trainer, b: Trainer) -> None:
    pairs = [(a.method.state_dict(), b.method.state_dict())]
    if a.teacher is not None:
        pairs.append((a.teacher.network.state_dict(), b.teacher.network.state_dict()))
    for sa, sb in pairs:
        assert sa.keys() == sb.keys()
        for name, value in sa.items():
            assert torch.equal(value, sb[name]), name


@pytest.mark.parametrize("cfg", [BASE, FULL], ids=["adamw-constant", "sgd-onecycle-ema"])
def test_same_seed_gives_bit_identical_runs(tmp_path: Path, cfg: TrainerConfig) -> None:
    a, ma = run(tmp_path / "a", cfg)
    b, mb = run(tmp_path / "b", cfg)
    assert_same_state(a, b)
    assert losses_by_step(tmp_path / "a/log.jsonl") == losses_by_step(tmp_path / "b/log.jsonl")
    assert ma["miou"] == mb["miou"]
    c, _ = run(tmp_path / "c", replace(cfg, seed=1))
    assert not torch.equal(c.method.net[0].weight, a.method.net[0].weight)


class InterruptingTracker(JsonlTracker):
    """Raises KeyboardInterrupt once, after logging the 12th completed step."""

    raised = False

    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics(metrics, step)
        if step == 12 and not InterruptingTracker.raised:
            InterruptingTracker.raised = True
            raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["batches", "training_step", "tracker"])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path, where: str) -> None:
    ref, ref_metrics = run(tmp_path / "ref", FULL)
    out = tmp_path / "cut"
    state = {"raised": False}

    def flaky(step: int):
        if step == 11:  # the step-10 checkpoint exists now: keep a copy of it
            shutil.copy(checkpoint_path(out), tmp_path / "step10.pt")
        if where == "batches" and step == 12 and not state["raised"]:
            state["raised"] = True
            raise KeyboardInterrupt
        return make_batch(step)

    interrupted = toy(FULL, interrupt_at=12 if where == "training_step" else None)
    InterruptingTracker.raised = where != "tracker"
    tracker = InterruptingTracker(out / "log.jsonl")
    with pytest.raises(KeyboardInterrupt):
        Trainer(interrupted, flaky, FULL, out, tracker, evaluate).fit()
    saved = torch.load(checkpoint_path(out), weights_only=True)  # plain contents only
    assert saved["step"] == 12 and saved["ema"]["num_updates"] == 12

    resumed, metrics = run(out, FULL, method=toy(FULL, init_seed=99))  # weights come from disk
    assert_same_state(ref, resumed)
    assert metrics["miou"] == ref_metrics["miou"]
    ref_losses = losses_by_step(tmp_path / "ref/log.jsonl")
    cut_losses = losses_by_step(out / "log.jsonl")  # steps 1..12 then 13..20 after resuming
    assert cut_losses == ref_losses

    # resuming from the periodic step-10 checkpoint is exact as well
    shutil.rmtree(out)
    out.mkdir()
    shutil.copy(tmp_path / "step10.pt", checkpoint_path(out))
    from_ten, _ = run(out, FULL, method=toy(FULL, init_seed=7))
    assert_same_state(ref, from_ten)


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError):  # an interrupted run: its checkpoint is kept
        run(tmp_path, BASE, method=ToyMethod(nan_at=3))
    with pytest.raises(ConfigError, match=r"'lr'.*0\.05"):
        run(tmp_path, replace(BASE, lr=0.1))
    _, metrics = run(tmp_path, replace(BASE, log_every=7))  # operational keys may change
    assert "miou" in metrics


def test_a_finished_run_is_not_a_resume_point(tmp_path: Path) -> None:
    """A finished run removes its checkpoint, so fitting again trains from scratch; so does a
    final checkpoint that an older kdseg (format 1) left behind."""
    first, m1 = run(tmp_path, BASE)
    assert not checkpoint_path(tmp_path).exists()
    second, m2 = run(tmp_path, BASE)
    assert_same_state(first, second)  # trained again, from the same start
    assert m1["miou"] == m2["miou"]
    steps = [
        r["step"]
        for r in read_jsonl(tmp_path / "log.jsonl")
        if r["event"] == "metrics" and "loss/total" in r["metrics"]
    ]
    assert steps == list(range(1, 21)) * 2

    second.save()  # as format 1 left it: the final step, kept after the run finished
    state = load_checkpoint(checkpoint_path(tmp_path))
    state.update(format=1, elapsed_s=1000.0)
    torch.save(state, checkpoint_path(tmp_path))
    third, m3 = run(tmp_path, BASE, method=ToyMethod(init_seed=5))
    assert m3["wall_time_s"] < 1000.0  # one training, not the old one's time plus this one's
    assert not torch.equal(third.method.net[0].weight, second.method.net[0].weight)


def test_interrupted_evaluation_resumes_into_evaluation(tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky_evaluate(net: nn.Module) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return evaluate(net)

    trainer = Trainer(ToyMethod(), make_batch, BASE, tmp_path, None, flaky_evaluate)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert load_checkpoint(checkpoint_path(tmp_path))["step"] == BASE.iterations
    resumed = Trainer(ToyMethod(init_seed=3), make_batch, BASE, tmp_path, None, flaky_evaluate)
    resumed.fit()
    assert_same_state(trainer, resumed)  # no training step ran again
    assert not checkpoint_path(tmp_path).exists()


def test_a_signal_waits_for_the_update_to_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the command line's handlers, SIGTERM arriving inside the update is held until the
    step is complete, then checkpointed like SIGINT (and noted on the exception)."""
    import os
    import signal

    from kdseg.interrupts import Terminated, handle_signals

    cfg = replace(BASE, optimizer="sgd")
    trainer = Trainer(ToyMethod(), make_batch, cfg, tmp_path, None, evaluate)
    original, seen = torch.optim.SGD.step, {}

    def step_then_signal(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if trainer.step == 6 and not seen:
            seen["dirty"] = trainer._dirty
            os.kill(os.getpid(), signal.SIGTERM)  # arrives between optimizer and scheduler
        return result

    monkeypatch.setattr(torch.optim.SGD, "step", step_then_signal)
    with handle_signals(), pytest.raises(Terminated) as err:
        trainer.fit()
    assert seen == {"dirty": True}
    assert load_checkpoint(checkpoint_path(tmp_path))["step"] == 7  # the update completed
    assert any("checkpoint of step 7" in note for note in err.value.__notes__)


def test_wall_time_sums_the_sessions_of_a_resumed_run(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError):
        run(tmp_path, BASE, method=ToyMethod(nan_at=3))
    state = load_checkpoint(checkpoint_path(tmp_path))
    assert state["elapsed_s"] > 0
    state["elapsed_s"] = 1000.0  # as if the first session had taken 1000 s
    torch.save(state, checkpoint_path(tmp_path))
    _, metrics = run(tmp_path, BASE)
    assert 1000.0 < metrics["wall_time_s"] < 1000.0 + 60.0


def test_non_finite_loss_names_term_and_step(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match=r"'ce' is nan at step 3"):
        run(tmp_path, BASE, method=ToyMethod(nan_at=3))
    assert load_checkpoint(checkpoint_path(tmp_path))["step"] == 3  # last good step


def test_ema_teacher_is_attached_frozen_and_unregistered(tmp_path: Path) -> None:
    trainer, metrics = run(tmp_path, FULL)
    method = trainer.method
    assert method.teacher_seen == [True] * FULL.iterations
    teacher = method.teacher
    # reference semantics ("own" buffers): the teacher makes its targets in train mode
    assert teacher is trainer.teacher.network and teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not any(k.startswith("teacher") for k in method.state_dict())
    assert metrics["training_flag"] == 0.0 and method.net.training  # eval only while evaluating
    assert "wall_time_s" in metrics


def _moved_student(student: nn.Module) -> None:
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    student.train()(torch.randn(4, 2))  # moves BN running stats and num_batches_tracked


def test_ema_update_formula_and_warmup() -> None:
    """'ema' buffers: every float entry of the state averaged, integers copied; eval mode."""
    assert [ema_momentum(k, 0.99, True) for k in (0, 1, 9, 10_000)] == [0.0, 0.5, 0.9, 0.99]
    assert ema_momentum(0, 0.99, False) == 0.99
    student = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EmaTeacher(student, momentum=0.75, buffers="ema")
    before = {k: v.clone() for k, v in ema.teacher.state_dict().items()}
    _moved_student(student)
    ema.update(student)
    for name, t in ema.teacher.state_dict().items():
        s = student.state_dict()[name]
        expected = s if not t.dtype.is_floating_point else 0.75 * before[name] + 0.25 * s
        torch.testing.assert_close(t, expected, rtol=0, atol=1e-7)
    assert not ema.teacher.training


def test_ema_reference_semantics_average_parameters_only() -> None:
    """'own' buffers (mmdet3d MeanTeacherHook skip_buffer=True): parameters averaged, buffers
    left to the teacher's own forward passes; targets in train mode, so identical weights give
    identical targets whatever the running statistics."""
    student = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EmaTeacher(student, momentum=0.75)
    assert ema.buffers == "own" and ema.teacher.training
    before = {k: v.clone() for k, v in ema.teacher.state_dict().items()}
    _moved_student(student)
    ema.update(student)
    params = dict(student.named_parameters())
    for name, t in ema.teacher.state_dict().items():
        expected = 0.75 * before[name] + 0.25 * params[name] if name in params else before[name]
        torch.testing.assert_close(t, expected.detach(), rtol=0, atol=1e-7)
    twin = EmaTeacher(student, momentum=0.0)  # momentum 0: the teacher copies the student
    twin.update(student)
    x = torch.randn(8, 2)
    with torch.no_grad():
        assert torch.equal(twin.teacher(x), student.train()(x))  # batch statistics on both


@pytest.mark.parametrize("schedule", ["constant", "cosine", "poly", "onecycle"])
def test_logged_lr_follows_schedule(tmp_path: Path, schedule: str) -> None:
    cfg = replace(BASE, schedule=schedule, warmup_iters=4, min_lr=0.005, poly_power=2.0)
    run(tmp_path, cfg)
    lrs = {
        r["step"]: r["metrics"]["lr"]
        for r in read_jsonl(tmp_path / "log.jsonl")
        if r["event"] == "metrics" and "lr" in r["metrics"]
    }
    assert sorted(lrs) == list(range(1, 21))
    for step, lr in lrs.items():  # logged at step k+1 for iteration k
        assert lr == pytest.approx(cfg.lr * lr_factor(step - 1, cfg), rel=1e-12)


def test_schedule_values_by_hand() -> None:
    c = replace(BASE, iterations=110, warmup_iters=10, lr=1.0, min_lr=0.1)
    cos, poly = replace(c, schedule="cosine"), replace(c, schedule="poly", poly_power=2.0)
    assert lr_factor(0, cos) == pytest.approx(0.1) and lr_factor(9, cos) == pytest.approx(1.0)
    assert lr_factor(10, cos) == pytest.approx(1.0)
    assert lr_factor(60, cos) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way: t = 50/100
    assert lr_factor(60, poly) == pytest.approx(0.1 + 0.9 * 0.25)
    assert lr_factor(50, replace(c, schedule="constant")) == 1.0
    one = replace(c, schedule="onecycle", div_factor=20.0, final_div_factor=100.0)
    assert lr_factor(0, one) == pytest.approx(1 / 20)
    assert lr_factor(5, one) == pytest.approx(1 / 20 + (1 - 1 / 20) * 0.5)
    assert lr_factor(10, one) == pytest.approx(1.0)
    end = 1 / 2000
    assert lr_factor(60, one) == pytest.approx(1.0 + (end - 1.0) * 0.5)
    last = end + (1 - end) * 0.5 * (1 + math.cos(math.pi * 0.99))  # t = 99/100
    assert lr_factor(109, one) == pytest.approx(last)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"optimizer": "adam"}, "optimizer"),
        ({"schedule": "step"}, "schedule"),
        ({"iterations": 0}, "iterations"),
        ({"lr": -1.0}, "lr"),
        ({"nesterov": True}, "nesterov"),  # adamw
        ({"warmup_iters": 20}, "warmup_iters"),
        ({"schedule": "onecycle"}, "warmup_iters"),
        ({"min_lr": 1.0}, "min_lr"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"log_every": 0}, "log_every"),
        ({"device": "gpu0"}, "device"),
        ({"iterations": 2.5}, "iterations"),
        ({"progress": 1}, "progress"),
        ({"seed": True}, "seed"),
    ],
)
def test_config_errors_name_the_key(changes: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainerConfig.from_dict({**BASE.to_dict(), **changes})
    assert info.value.key == key


def test_config_from_dict_and_help() -> None:
    with pytest.raises(ConfigError, match="'iters'"):
        TrainerConfig.from_dict({"iters": 3})
    assert TrainerConfig.from_dict(BASE.to_dict()) == BASE
    helps = TrainerConfig.help()
    assert set(helps) == set(BASE.to_dict()) and all(helps.values())


def test_ema_without_source_is_a_config_error(tmp_path: Path) -> None:
    method = ToyMethod(ema={"source": "missing"})
    with pytest.raises(ConfigError, match=r"teacher\.ema\.source"):
        run(tmp_path, FULL, method=method)
    with pytest.raises(ConfigError, match=r"teacher\.ema\.momentum"):
        run(tmp_path, FULL, method=ToyMethod(ema={"momentum": 1.5}))


def test_to_device_handles_dataclass_batches():
    import dataclasses as dc

    from kdseg.trainer import to_device

    @dc.dataclass
    class Item:
        x: torch.Tensor
        name: str

    @dc.dataclass
    class Batch:
        items: list
        extra: dict

    batch = Batch([Item(torch.ones(2), "a")], {"t": torch.zeros(1)})
    moved = to_device(batch, torch.device("meta"))
    assert moved.items[0].x.device.type == "meta" and moved.items[0].name == "a"
    assert moved.extra["t"].device.type == "meta"
    assert batch.items[0].x.device.type == "cpu"  # the original is untouched
