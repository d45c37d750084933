"""The step a continual 2D run trains (what the run hands its method) and the family name."""

from __future__ import annotations

from dataclasses import dataclass

from kdseg.datasets.continual import Task

FAMILY = "image_continual"
"""``Method.family`` of the continual 2D methods (:mod:`kdseg.run_continual` trains them)."""


@dataclass(frozen=True)
class StepContext:
    """The step a run trains: ``task`` (:class:`~kdseg.datasets.continual.Task`) and ``step``."""

    task: Task
    step: int

    @property
    def dataset(self) -> str:
        return self.task.dataset

    @property
    def classes_per_step(self) -> list[int]:
        """Output channels per step up to this one (step 0 with background)."""
        return [len(s) for s in self.task.steps[: self.step + 1]]
