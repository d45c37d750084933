"""Fine-tuning: plain cross-entropy on the step's labels (old and future classes are
background), new classes initialised at random; the lower bound."""

from __future__ import annotations

from kdseg.methods.base import register_method

from .base import ContinualMethod


@register_method("ft")
class FineTuning(ContinualMethod):
    """Fine-tuning: CE on the step's labels from the previous step's weights, no distillation.

    ``--method FT`` of MiB/PLOP/LGKD; the lower bound of table 3."""

    preset = "ft"
