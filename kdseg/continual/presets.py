"""Loss weights of the official MiB / PLOP / LGKD recipes, in one place.

Sources (``shared/specs/methods.md`` §4.2-4.3b, checked against the code):
``argparser.py::modify_command_options`` of MiB (1c58983), PLOP (4b4a060) and LGKD (78262c2),
and LGKD's ``scripts/voc/lgkd_*.sh`` / ``scripts/ade/lgkd_ade_*.sh``.

* :data:`METHOD_WEIGHTS`: what ``--method X`` sets (KD, feature distillation, POD factors,
  pseudo-label floor).
* :data:`LGKD_WEIGHTS` / :func:`lgkd_weights`: ``--prev_kd`` / ``--novel_kd`` per setting.
  The VOC 15-1 script (task ``15-5s``) sets ``novel_kd 0``: the label-guided term on novel
  pixels is off and only the previous-class term remains (novel pixels still count in the mean's
  denominator). VOC 10-1 (and 5-3, ADE 100-5) have no LGKD script: :func:`lgkd_weights` refuses
  them unless explicit weights are given.
* :func:`pod_weights`: POD factors per method and dataset. PLOP's own ADE20K scripts pass
  ``--pod_options`` with the logits factor 0.00001, but ``--method PLOP`` overwrites
  ``pod_options`` after parsing, so PLOP runs with the VOC factors on ADE20K too (0.01 / 0.0005);
  ``--method LGKD`` uses 0.001 / 0.00001 on ADE20K.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdseg.errors import ConfigError

LGKD_CLASS_DEFAULTS: tuple[float, float] = (10.0, 1.0)
"""``LabelGuidedKnowledgeDistillationLoss(prev_kd=10, novel_kd=1)`` defaults (never used)."""

LGKD_ARGPARSER_DEFAULTS: tuple[float, float] = (10.0, 2.0)
"""``--prev_kd 10 --novel_kd 2`` argparser defaults (every script overrides them)."""


@dataclass(frozen=True)
class LGKDWeights:
    """LGKD's per-setting weights: ``prev`` on pixels labelled background/old, ``novel`` on
    pixels labelled with a new class; ``source`` the official script."""

    prev: float
    novel: float
    source: str
    note: str = ""


LGKD_WEIGHTS: dict[tuple[str, str], LGKDWeights] = {
    ("voc", "19-1"): LGKDWeights(5.0, 0.5, "scripts/voc/lgkd_19-1.sh"),
    ("voc", "15-5"): LGKDWeights(5.0, 1.0, "scripts/voc/lgkd_15-5.sh"),
    ("voc", "15-1"): LGKDWeights(
        1.0,
        0.0,
        "scripts/voc/lgkd_15-1.sh (TASK=15-5s)",
        "novel_kd 0: the label-guided (transplant) term is off; novel pixels still count in "
        "the denominator of the mean",
    ),
    ("ade20k", "100-50"): LGKDWeights(1.0, 20.0, "scripts/ade/lgkd_ade_100-50.sh"),
    ("ade20k", "100-10"): LGKDWeights(1.0, 1.0, "scripts/ade/lgkd_ade_100-10.sh"),
    ("ade20k", "50-50"): LGKDWeights(2.0, 10.0, "scripts/ade/lgkd_ade_50.sh (TASK=50)"),
}
"""``(dataset, canonical task name)`` -> weights of the official scripts."""


def lgkd_weights(
    dataset: str, task: str, prev: float | None = None, novel: float | None = None
) -> LGKDWeights:
    """The official LGKD weights of ``dataset`` / ``task`` (aliases such as ``15-5s`` and ``50``
    accepted), or the explicit ``prev`` / ``novel`` when both are given (``source="explicit"``).

    Raises:
        ConfigError('lgkd_weights'): a setting without an official script and no explicit
            weights (e.g. VOC 10-1), or only one of ``prev`` / ``novel`` given.
    """
    if (prev is None) != (novel is None):
        raise ConfigError("lgkd_weights", "give both prev and novel weights, or neither")
    if prev is not None and novel is not None:
        return LGKDWeights(float(prev), float(novel), "explicit")
    from kdseg.datasets.continual import ALIASES

    name = ALIASES.get((dataset, task), task)
    weights = LGKD_WEIGHTS.get((dataset, name))
    if weights is None:
        known = ", ".join(f"{d} {t}" for d, t in LGKD_WEIGHTS)
        raise ConfigError(
            "lgkd_weights",
            f"LGKD has no official script for {dataset} {task} (known: {known}); "
            "pass prev and novel explicitly",
        )
    return weights


@dataclass(frozen=True)
class PODWeights:
    """POD factors: ``features`` for every layer but the logits, ``logits`` for the last one."""

    features: float
    logits: float


POD_WEIGHTS: dict[tuple[str, str], PODWeights] = {
    ("plop", "voc"): PODWeights(0.01, 0.0005),
    ("plop", "ade20k"): PODWeights(0.01, 0.0005),
    ("lgkd", "voc"): PODWeights(0.01, 0.0005),
    ("lgkd", "ade20k"): PODWeights(0.001, 0.00001),
}


def pod_weights(method: str, dataset: str) -> PODWeights:
    """POD factors of ``--method`` ``method`` (``plop`` or ``lgkd``) on ``dataset``."""
    weights = POD_WEIGHTS.get((method.lower(), dataset))
    if weights is None:
        raise ConfigError("pod_weights", f"no POD factors for method {method!r} on {dataset!r}")
    return weights


@dataclass(frozen=True)
class MethodWeights:
    """Weights a method's ``--method`` preset sets.

    Attributes:
        classification: ``"ce"`` (plain), ``"unbiased_ce"`` (MiB) or ``"pseudo_ce"`` (CE on
            PLOP's entropy pseudo-labels times the adaptive factor).
        kd: weight of the output distillation (``--loss_kd``); 0 = none.
        kd_kind: ``"kd"`` (LwF/ILT), ``"unbiased_kd"`` (MiB) or ``"lgkd"``.
        feature: weight of ILT's MSE on the encoder output (``--loss_de``).
        pod: whether local POD is on (factors from :func:`pod_weights`).
        pod_source: whose POD factors: ``"plop"`` (``--method PLOP``) or ``"lgkd"``
            (``--method LGKD``, other factors on ADE20K).
        init_balanced: MiB's classifier initialisation for new classes.
    """

    classification: str
    kd: float = 0.0
    kd_kind: str = "kd"
    feature: float = 0.0
    pod: bool = False
    pod_source: str = "plop"
    init_balanced: bool = False


METHOD_WEIGHTS: dict[str, MethodWeights] = {
    "ft": MethodWeights("ce"),
    "lwf": MethodWeights("ce", kd=100.0),
    "ilt": MethodWeights("ce", kd=100.0, feature=100.0),
    "mib": MethodWeights("unbiased_ce", kd=10.0, kd_kind="unbiased_kd", init_balanced=True),
    "plop": MethodWeights("pseudo_ce", pod=True, init_balanced=True),
    "plop_lgkd": MethodWeights(
        "pseudo_ce", kd=1.0, kd_kind="lgkd", pod=True, pod_source="lgkd", init_balanced=True
    ),
    "mib_lgkd": MethodWeights("unbiased_ce", kd=1.0, kd_kind="lgkd", init_balanced=True),
    "joint": MethodWeights("ce"),
}
"""Per method. ``plop_lgkd`` is LGKD's ``--method LGKD``; ``mib_lgkd`` has no official preset
(our composition: MiB's unbiased CE and balanced init with LGKD replacing the unbiased KD at
LGKD's ``loss_kd 1``; LGKD's trainer takes that path with ``--unce --lgkd --init_balanced``)."""
