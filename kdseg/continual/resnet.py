"""ResNet body of MiB / PLOP / LGKD (``models/resnet.py`` of their code) and weight loading.

Layout and module names follow the official code, so its ImageNet checkpoint
(``pretrained/resnet101_iabn_sync.pth.tar``) loads by name: ``mod1`` (7x7 conv stride 2, norm,
3x3 max-pool stride 2), then ``mod2``..``mod5`` made of ``block1``, ``block2``, ... Output
stride 16 keeps ``mod5`` at stride 1 with dilation 2 in *every* block (dilations
``[1, 1, 1, 2]``); output stride 8 also dilates ``mod4`` (``[1, 1, 2, 4]``). torchvision's
``replace_stride_with_dilation`` leaves the first block of a dilated stage at the previous
dilation, so a torchvision network with the same weights differs from this one in ``mod5``'s
first block only (tested).

No weights are downloaded: :func:`load_backbone_weights` reads a user-supplied file, either the
official in-place-ABN checkpoint (``{"state_dict": {...}}``, keys ``mod1.conv1.weight``, ...,
optionally prefixed ``module.``; ``classifier.fc.*`` dropped) or a torchvision ResNet state dict
(``conv1.weight``, ``layer1.0.conv1.weight``, ...; ``fc.*`` dropped). The default is PyTorch's
own initialisation, as the official code has when run with ``--no_pretrained``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from kdseg.continual.blocks import NormAct, ResidualBlock, Stage, check_activation
from kdseg.errors import ConfigError

RESNET_STRUCTURES: dict[str, tuple[int, int, int, int]] = {
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
    "resnet152": (3, 8, 36, 3),
}
"""Blocks per stage (bottleneck blocks), as in the official ``_NETS``."""

OUTPUT_STRIDE_DILATIONS: dict[int, tuple[int, int, int, int]] = {16: (1, 1, 1, 2), 8: (1, 1, 2, 4)}
"""Dilation of ``mod2``..``mod5`` per output stride; a stage with dilation 1 (except ``mod2``)
starts with a stride-2 block."""


class ResNetBody(nn.Module):
    """ResNet without classifier: ``(B, 3, H, W) -> (out, stages)``.

    ``out``: ``(B, out_channels, H/os, W/os)``, output of ``mod5`` after its activation (MiB's
    ``body`` feature, which ILT distils). ``stages``: the pre-activation outputs of the last block
    of ``mod2``..``mod5`` (PLOP's ``attentions``), at strides 4, 8, 16 (or 8), 16 (or 8) with
    ``width * 4 * (1, 2, 4, 8)`` channels (bottleneck) or ``width * (1, 2, 4, 8)`` (basic).

    Args:
        structure: blocks per stage (4 values).
        bottleneck: bottleneck (1x1-3x3-1x1, expansion 4) or basic (3x3-3x3) blocks.
        output_stride: 16 or 8.
        activation: ``"leaky_relu"`` (official, slope 0.01) or ``"relu"``.
        width: channels of ``mod1`` and of the first stage's inner convolutions (64 for the
            standard ResNets; tests use narrower ones).
        in_channels: input channels (3 for RGB).
    """

    def __init__(
        self,
        structure: tuple[int, ...] = RESNET_STRUCTURES["resnet101"],
        bottleneck: bool = True,
        output_stride: int = 16,
        activation: str = "leaky_relu",
        width: int = 64,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(structure) != 4 or min(structure) < 1:
            raise ConfigError("structure", f"need 4 positive block counts, got {structure}")
        if output_stride not in OUTPUT_STRIDE_DILATIONS:
            raise ConfigError("output_stride", f"must be 16 or 8, got {output_stride}")
        check_activation(activation)
        dilations = OUTPUT_STRIDE_DILATIONS[output_stride]
        self.structure = tuple(structure)
        self.output_stride = output_stride
        self.in_channels = in_channels
        self.mod1 = nn.Sequential()
        self.mod1.add_module("conv1", nn.Conv2d(in_channels, width, 7, 2, 3, bias=False))
        self.mod1.add_module("bn1", NormAct(width, activation))
        self.mod1.add_module("pool1", nn.MaxPool2d(3, stride=2, padding=1))
        channels = (width, width, width * 4) if bottleneck else (width, width)
        cin = width
        stage_channels = []
        for s, (num, dil) in enumerate(zip(structure, dilations, strict=True)):
            blocks = []
            for b in range(num):
                stride = 2 if (dil == 1 and b == 0 and s > 0) else 1
                blocks.append(ResidualBlock(cin, channels, stride, dil, activation))
                cin = channels[-1]
            self.add_module(f"mod{s + 2}", Stage(blocks))
            stage_channels.append(cin)
            channels = tuple(c * 2 for c in channels)
        self.stage_channels: tuple[int, ...] = tuple(stage_channels)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.mod1(x)
        stages = []
        for name in ("mod2", "mod3", "mod4", "mod5"):
            x, pre = getattr(self, name)(x)
            stages.append(pre)
        return x, stages


def resnet_body(name: str, **kwargs: object) -> ResNetBody:
    """``ResNetBody`` for ``resnet50`` / ``resnet101`` / ``resnet152`` (bottleneck blocks)."""
    if name not in RESNET_STRUCTURES:
        known = sorted(RESNET_STRUCTURES)
        raise ConfigError("backbone", f"unknown ResNet {name!r}; known: {known}")
    return ResNetBody(RESNET_STRUCTURES[name], True, **kwargs)  # type: ignore[arg-type]


_TV_LAYER = re.compile(r"^layer(\d)\.(\d+)\.(.+)$")


def _from_torchvision(key: str) -> str | None:
    """Official name of a torchvision ResNet key (``None`` for the ``fc`` classifier)."""
    if key.startswith("fc."):
        return None
    if key.startswith(("conv1.", "bn1.")):
        return "mod1." + key
    m = _TV_LAYER.match(key)
    if m is None:
        return key
    stage, block, rest = int(m.group(1)), int(m.group(2)), m.group(3)
    rest = rest.replace("downsample.0.", "proj_conv.").replace("downsample.1.", "proj_bn.")
    if not rest.startswith("proj_"):
        rest = "convs." + rest
    return f"mod{stage + 1}.block{block + 1}.{rest}"


def _read_state(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(source, Mapping):
        obj: object = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError("pretrained", f"weight file {path} does not exist")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unreadable file is the same user error
            raise ConfigError("pretrained", f"cannot read {path}: {exc}") from exc
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError("pretrained", f"{source}: not a state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in obj.items()}


def load_backbone_weights(
    body: ResNetBody, source: str | Path | Mapping[str, torch.Tensor]
) -> list[str]:
    """Load ImageNet weights into ``body`` from a file or a state dict; returns the model keys
    left at their initial values (only ``num_batches_tracked`` counters, which neither format
    needs).

    Formats: the official in-place-ABN checkpoint (see the module docstring) or a torchvision
    ResNet state dict of the same depth. Every tensor of ``body`` must be found with the right
    shape, and every tensor of the file must be used (classifier excepted).

    Raises:
        ConfigError('pretrained'): unreadable file, unknown or missing keys, shape mismatch.
    """
    state = _read_state(source)
    torchvision_format = "conv1.weight" in state
    target = body.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unused = []
    for key, value in state.items():
        name = _from_torchvision(key) if torchvision_format else key
        if name is None or name.startswith("classifier.fc."):
            continue
        if name.endswith("num_batches_tracked"):
            continue
        if name not in target:
            # in-place ABN stores the BN tensors on the norm module itself: insert the "bn" level
            head, _, leaf = name.rpartition(".")
            name = f"{head}.bn.{leaf}"
        if name not in target:
            unused.append(key)
            continue
        if tuple(target[name].shape) != tuple(value.shape):
            raise ConfigError(
                "pretrained",
                f"{key}: shape {tuple(value.shape)} does not fit "
                f"{name} {tuple(target[name].shape)}",
            )
        mapped[name] = value
    missing = [k for k in target if k not in mapped and not k.endswith("num_batches_tracked")]
    if unused or missing:
        raise ConfigError(
            "pretrained",
            f"weights do not match the network: {len(unused)} unknown keys (e.g. {unused[:3]}), "
            f"{len(missing)} missing (e.g. {missing[:3]})",
        )
    body.load_state_dict(mapped, strict=False)
    return [k for k in target if k not in mapped]
