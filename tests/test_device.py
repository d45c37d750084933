"""The ``auto`` device of the paper scales: CUDA when the job has a GPU, else the CPU."""

from __future__ import annotations

import pytest
import torch

from kdseg.continual.scales import get_continual_scale
from kdseg.scales import get_scale
from kdseg.trainer_config import TrainerConfig


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_resolves_once_to_the_available_device(monkeypatch, cuda: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cfg = TrainerConfig(iterations=1, device="auto")
    assert cfg.device == ("cuda" if cuda else "cpu")
    assert TrainerConfig.from_dict(cfg.to_dict()).device == cfg.device


def test_paper_scales_use_the_gpu_when_there_is_one_and_cpu_scales_never() -> None:
    assert get_scale("paper").trainer["device"] == "auto"
    assert get_continual_scale("paper").trainer["device"] == "auto"
    for name in ("smoke", "default"):
        assert get_scale(name).trainer.get("device", "cpu") == "cpu"
        assert get_continual_scale(name).trainer["device"] == "cpu"
