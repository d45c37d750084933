"""Loss functions: the Lovász-softmax against its per-class definition and a hand computation."""

from __future__ import annotations

import pytest
import torch

from kdseg import IGNORE_INDEX
from kdseg.losses import cross_entropy, lovasz_softmax


def lovasz_per_class(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Berman et al.'s Algorithm 1, one present class at a time (the reference)."""
    losses = []
    for c in torch.unique(labels).tolist():
        fg = (labels == c).double()
        errors = (fg - probs[:, c]).abs()
        order = torch.argsort(errors, descending=True)
        e, f = errors[order], fg[order]
        p = f.sum()
        jac = [1.0 - (p - f[: i + 1].sum()) / (p + (1 - f[: i + 1]).sum()) for i in range(len(f))]
        grad = [jac[0]] + [jac[i] - jac[i - 1] for i in range(1, len(jac))]
        losses.append(sum(e[i] * grad[i] for i in range(len(f))))
    return torch.stack(losses).mean()


def test_lovasz_hand_computed() -> None:
    # two classes, three points; probabilities given directly through log-probabilities
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    # class 0: fg = 1,1,0; errors 0.1, 0.6, 0.2 -> sorted 0.6 (fg), 0.2 (bg), 0.1 (fg)
    #   jaccard after each: 1-1/2, 1-1/3, 1-0/3 -> 0.5, 2/3, 1 ; grads 0.5, 1/6, 1/3
    #   loss0 = 0.6*0.5 + 0.2/6 + 0.1/3 = 0.36667
    # class 1: fg = 0,0,1; errors 0.1, 0.6, 0.2 -> sorted 0.6 (bg), 0.2 (fg), 0.1 (bg)
    #   jaccard: 1-1/2, 1-0/2, 1-0/3 -> 0.5, 1, 1 ; grads 0.5, 0.5, 0 -> loss1 = 0.3 + 0.1 = 0.4
    expected = (0.6 * 0.5 + 0.2 / 6 + 0.1 / 3 + 0.4) / 2
    got = lovasz_softmax(probs.log(), labels)
    assert abs(float(got) - expected) < 1e-12


def test_lovasz_matches_per_class_definition_and_ignores_255() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (200,), generator=g)  # classes 4, 5 absent: not averaged
    labels[::7] = IGNORE_INDEX
    keep = labels != IGNORE_INDEX
    want = lovasz_per_class(logits[keep].softmax(dim=1), labels[keep])
    torch.testing.assert_close(lovasz_softmax(logits, labels), want)


def test_lovasz_gradient_flows_and_empty_labels_give_zero() -> None:
    logits = torch.randn(50, 3, requires_grad=True)
    labels = torch.randint(0, 3, (50,))
    lovasz_softmax(logits, labels).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    none = torch.full((50,), IGNORE_INDEX)
    assert float(lovasz_softmax(logits, none).detach()) == 0.0
    assert float(cross_entropy(logits, none).detach()) == 0.0


def test_class_weights_by_hand():
    import numpy as np

    from kdseg.losses import class_weights

    f = np.array([0.5, 0.3, 0.2, 0.0])
    enet = 1.0 / np.log(1.02 + f[:3])
    np.testing.assert_allclose(class_weights(f, "enet_log")[:3], enet / enet.mean(), rtol=1e-6)
    inv = 1.0 / (f[:3] + 0.001)
    np.testing.assert_allclose(class_weights(f, "inverse")[:3], inv / inv.mean(), rtol=1e-6)
    assert class_weights(f, "enet_log")[3] == pytest.approx(1.0 / np.log(1.02) / enet.mean())
    assert (class_weights(f, "none") == 1).all()
    with pytest.raises(ValueError, match="class weighting"):
        class_weights(f, "median")


def test_weighted_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 255])
    w = torch.tensor([1.0, 3.0])
    ce0 = -torch.log_softmax(logits[0], 0)[0]
    ce1 = -torch.log_softmax(logits[1], 0)[1]
    expected = (1.0 * ce0 + 3.0 * ce1) / 4.0
    assert float(cross_entropy(logits, labels, w)) == pytest.approx(float(expected))
