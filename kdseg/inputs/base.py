"""Input providers: what a method may need beyond the labelled and unlabelled clouds.

A method names its inputs in ``Method.requires`` (e.g. ``{"features_2d", "mix_partners"}``).
Each name is an :class:`InputProvider` in :data:`kdseg.inputs.PROVIDERS`, which knows the three
places an input passes through:

1. the workflow: :meth:`InputProvider.rule_inputs` names the rule outputs a training job needs
   (e.g. the 2D feature cache's ``manifest.json``, another run's ``model.pt``), so
   ``rules/common.smk`` adds them to the job's inputs without knowing the method;
2. the command line: :meth:`InputProvider.cli_value` turns those paths into the value of
   ``kdseg train --input NAME=VALUE``;
3. the run: :meth:`InputProvider.bind` opens the value once per run (checking it, naming the
   file on a problem) as a :class:`BoundInput`, which attaches per-cloud ``extras`` to every
   :class:`~kdseg.lidar_data.Cloud` (:meth:`BoundInput.cloud_extras`, once per drawn scan) or to
   a whole batch (:meth:`BoundInput.batch_extras`, after the batch's clouds are drawn), records
   itself in the run's configuration (:meth:`BoundInput.record`) and may hand a network to a
   frozen teacher (``load_network``).

A new input is one provider class in ``kdseg/inputs/`` registered with
``@PROVIDERS.register("name")``; ``tests/test_inputs.py`` and ``tests/test_methods.py`` are
parametrized over the registry and use :meth:`InputProvider.example` to smoke-test it.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kdseg.errors import ConfigError
from kdseg.jobs import Job

if TYPE_CHECKING:
    import numpy as np

    from kdseg.budgets import FrameId, Split
    from kdseg.lidar_data import Cloud, LidarBatch


@dataclass(frozen=True)
class NoSettings:
    """A provider without per-variant settings."""


@dataclass(frozen=True)
class JobContext:
    """A training job as the workflow sees it (for :meth:`InputProvider.rule_inputs`).

    Attributes:
        config: the whole workflow configuration (``config/config.yaml``).
        scale: the active scale (its results live under ``results/<scale>``).
        job: the training job.
        settings: the provider's settings of the job's variant (``variants.<v>.inputs.<name>``).
    """

    config: Mapping[str, Any]
    scale: str
    job: Job
    settings: Any


@dataclass(frozen=True)
class RunContext:
    """A run as :meth:`InputProvider.bind` sees it."""

    method: str
    data_root: Path
    split: Split


@dataclass(frozen=True)
class ExampleContext:
    """What :meth:`InputProvider.example` gets in tests: a scratch folder, the number of
    classes and a factory of a network like the method's student (a frozen teacher's stand-in)."""

    tmp: Path
    num_classes: int
    make_network: Callable[[], Any]


class BatchSampler(Protocol):
    """What :meth:`BoundInput.batch_extras` may draw from (a :class:`~kdseg.lidar_data.
    LidarBatches`): the split's pools and a cloud of a frame drawn with the batch's generator."""

    @property
    def labelled_pool(self) -> Sequence[FrameId]: ...

    @property
    def unlabelled_pool(self) -> Sequence[FrameId]: ...

    def draw(self, pool: Sequence[FrameId], rng: np.random.Generator, hide: bool) -> Cloud: ...


class BoundInput:
    """An input opened for one run (no-op hooks; a provider overrides what it uses).

    Attributes:
        name: the provider name.
        point_keys: the keys of :meth:`cloud_extras` that are per-point tensors (first dimension
            the cloud's ``N``); they follow the points through mixing augmentations.
    """

    point_keys: tuple[str, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name

    def record(self) -> dict[str, Any]:
        """What the run configuration (``config.inputs.<name>``) keeps of this input."""
        return {}

    def cloud_extras(self, frame: FrameId, points: np.ndarray) -> dict[str, Any]:
        """Extras of a cloud of ``frame`` whose raw points are ``points (N, 4)``."""
        return {}

    def batch_extras(
        self, batch: LidarBatch, sampler: BatchSampler, rng: np.random.Generator
    ) -> None:
        """Attach extras to the clouds of ``batch`` after they were drawn (may draw more)."""


class InputProvider(abc.ABC):
    """One kind of input (module docstring). Class attributes:

    * ``name``: the registry name (set by registration);
    * ``help``: one line for ``kdseg methods`` and the docs;
    * ``value_help``: what ``--input NAME=VALUE`` takes (empty: no value);
    * ``Settings``: the dataclass of the variant's ``inputs.<name>`` config block.
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    value_help: ClassVar[str] = ""
    Settings: ClassVar[type] = NoSettings

    def settings(self, values: Mapping[str, Any] | None, where: str) -> Any:
        """The provider's settings from a config block (``ConfigError`` naming ``where.key``)."""
        from kdseg.options import build

        return build(self.Settings, values or {}, prefix=f"{where}.", what=f"{self.name} setting")

    def rule_inputs(self, ctx: JobContext) -> dict[str, str]:
        """``{key: path}`` of the rule outputs a training job needs (none by default)."""
        return {}

    def cli_value(self, paths: Mapping[str, str]) -> str | None:
        """The ``--input NAME=VALUE`` value made of :meth:`rule_inputs`' paths (``None``: the
        flag is not needed)."""
        return None

    @abc.abstractmethod
    def bind(self, value: str | None, ctx: RunContext) -> BoundInput:
        """Open the input for a run; ``value`` is what ``--input NAME=VALUE`` gave."""

    @abc.abstractmethod
    def example(self, ctx: ExampleContext) -> BoundInput:
        """A bound input on synthetic data, for the registry-parametrized tests."""

    def example_job(self) -> Any:
        """A training job this provider serves (the registry-parametrized workflow tests):
        a LiDAR :class:`~kdseg.jobs.Job` unless the provider is for another task family."""
        return Job("street", "v", "scans-10", 1)

    def need_value(self, value: str | None) -> str:
        """``value``, or a ``ConfigError`` saying how to give it."""
        if not value:
            raise ConfigError(
                f"inputs.{self.name}",
                f"needs a value ({self.value_help}): kdseg train --input {self.name}=VALUE",
            )
        return value


def settings_doc(provider: InputProvider) -> list[str]:
    """``key (default): help`` of the provider's settings."""
    rows = []
    for f in dataclasses.fields(provider.Settings):
        default = "required" if f.default is dataclasses.MISSING else repr(f.default)
        rows.append(f"{f.name} ({default}): {f.metadata.get('help', '')}")
    return rows
