"""Targets and contrastive losses (GUIDE 2.2): special cases, hand-computed values, stability."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from reference_losses import nt_xent, supcon_loss
from workbench.losses import (
    LOSSES,
    bilinear_contrastive_loss,
    semisupcon_loss,
    semisupcon_loss_parts,
    target_matrix,
)

TEMPERATURES = (0.05, 0.1, 0.5, 1.0)


def _reference_loss(z: np.ndarray, w: np.ndarray, tau: float) -> float:
    """The GUIDE 2.2 formula, term by term, in float64 with plain Python math."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    w = np.asarray(w, dtype=np.float64)
    m = len(z)
    total = 0.0
    for i in range(m):
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(m) if k != i)
        n_pos = sum(w[i, j] for j in range(m) if j != i)
        if n_pos == 0:
            continue
        num = sum(w[i, j] * math.log(math.exp(float(z[i] @ z[j]) / tau) / denom) for j in range(m) if j != i)
        total += -num / n_pos
    return total / m


# --------------------------------------------------------------------------- target matrix
def test_same_clip_targets_exact():
    w = target_matrix(torch.tensor([0, 0, 1, 1, 2, 2]))
    expected = torch.tensor(
        [
            [0, 1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1, 0],
        ],
        dtype=torch.float32,
    )
    assert w.dtype == torch.float32
    assert torch.equal(w, expected)


def test_multilabel_criterion_counts_shared_labels():
    # rows: clip ids and multi-hot labels over 4 classes
    ids = torch.tensor([0, 1, 2, 3, 4])
    y = torch.tensor(
        [
            [1, 1, 0, 0],  # a
            [1, 1, 1, 0],  # b: shares 2 with a
            [1, 0, 0, 1],  # c: shares 1 with a, 1 with b
            [0, 0, 0, 0],  # unlabeled
            [0, 0, 1, 1],  # e: shares 1 with b, 1 with c
        ]
    )
    w1 = target_matrix(ids, y, criterion=1)
    w2 = target_matrix(ids, y, criterion=2)
    w3 = target_matrix(ids, y, criterion=3)
    exp1 = torch.tensor(
        [[0, 1, 1, 0, 0], [1, 0, 1, 0, 1], [1, 1, 0, 0, 1], [0, 0, 0, 0, 0], [0, 1, 1, 0, 0]], dtype=torch.float32
    )
    exp2 = torch.zeros(5, 5)
    exp2[0, 1] = exp2[1, 0] = 1
    assert torch.equal(w1, exp1)
    assert torch.equal(w2, exp2)
    assert torch.equal(w3, torch.zeros(5, 5))


def test_binary_mode_ors_same_clip_with_labels():
    # two views each of three clips; clip 2 is unlabeled; clips 0 and 1 share no label
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    y = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]])
    assert torch.equal(target_matrix(ids, y, criterion=1), target_matrix(ids))
    # same clip stays positive even when the criterion cannot be met by the labels
    w = target_matrix(ids, y, criterion=2)
    assert torch.equal(w, target_matrix(ids))
    y[2:4, 0] = 1  # clip 1 now also has class 0 -> label positives with clip 0
    w = target_matrix(ids, y, criterion=1)
    assert w[0, 2] == w[1, 3] == w[3, 0] == 1 and w[4, 0] == 0 and w[4, 5] == 1


def test_weighted_dice_exact_entries():
    ids = torch.tensor([0, 0, 1, 2, 3])
    y = torch.tensor(
        [
            [1, 1, 0, 0],  # |y| = 2
            [1, 1, 0, 0],  # same clip as row 0
            [0, 1, 1, 1],  # |y| = 3, shares 1 with rows 0/1
            [0, 0, 0, 0],  # unlabeled
            [0, 0, 1, 1],  # |y| = 2, shares 2 with row 2, 0 with rows 0/1
        ]
    )
    w = target_matrix(ids, y, criterion="weighted")
    expected = torch.tensor(
        [
            [0, 1, 2 * 1 / 5, 0, 0],
            [1, 0, 2 * 1 / 5, 0, 0],
            [2 / 5, 2 / 5, 0, 0, 2 * 2 / 5],
            [0, 0, 0, 0, 0],  # 0/0 := 0 for the unlabeled row
            [0, 0, 4 / 5, 0, 0],
        ]
    )
    torch.testing.assert_close(w, expected)


def test_weighted_caps_same_clip_at_one():
    ids = torch.tensor([0, 0, 1, 1])
    y = torch.tensor([[1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]])
    w = target_matrix(ids, y, criterion="weighted")
    assert w[0, 1] == 1 and w[2, 3] == 1  # identical labels + same clip: max, not sum
    assert torch.isclose(w[0, 2], torch.tensor(2 * 1 / 3))


def test_integer_labels_match_one_hot():
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    classes = torch.tensor([3, 3, 1, 1, -1, -1, 3, 3])
    onehot = torch.zeros(8, 4)
    for i, c in enumerate(classes.tolist()):
        if c >= 0:
            onehot[i, c] = 1
    assert torch.equal(target_matrix(ids, classes), target_matrix(ids, onehot))
    w = target_matrix(ids, classes)
    assert w[0, 6] == 1 and w[4, 5] == 1 and w[4, 0] == 0


@pytest.mark.parametrize("criterion", [1, 2, "weighted"])
def test_targets_symmetric_zero_diagonal(criterion):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 10, (40,), generator=g)
    y = (torch.rand(40, 6, generator=g) < 0.4).float()
    y[torch.rand(40, generator=g) < 0.3] = 0
    w = target_matrix(ids, y, criterion)
    assert torch.equal(w, w.T)
    assert torch.all(w.diagonal() == 0)
    assert torch.all((w >= 0) & (w <= 1))


class _MaxNumel(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.max_numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.max_numel = max(self.max_numel, t.numel())
        return out


@pytest.mark.parametrize("criterion", [1, 3, "weighted"])
def test_targets_never_materialise_m_m_c(criterion):
    m, c = 24, 50
    y = (torch.rand(m, c) < 0.2).float()
    with _MaxNumel() as mode:
        target_matrix(torch.arange(m), y, criterion)
    assert mode.max_numel <= max(m * m, m * c)  # an M x M x C tensor would be 28 800


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sample_ids=torch.zeros(2, 2, dtype=torch.long)), "1-D"),
        (dict(sample_ids=torch.tensor([0.0, 1.0])), "integers"),
        (dict(sample_ids=torch.arange(3), labels=torch.zeros(2, 4)), "rows"),
        (dict(sample_ids=torch.arange(3), labels=torch.zeros(3, 4, 2)), "multi-hot"),
        (dict(sample_ids=torch.arange(3), labels=torch.full((3, 2), 0.5)), "0 and 1"),
        (dict(sample_ids=torch.arange(3), labels=torch.tensor([0, -2, 1])), ">= 0"),
        (dict(sample_ids=torch.arange(3), labels=torch.tensor([0.0, 1.0, 2.0])), "integer class"),
        (dict(sample_ids=torch.arange(3), criterion=0), "criterion"),
        (dict(sample_ids=torch.arange(3), criterion="dice"), "criterion"),
        (dict(sample_ids=torch.arange(3), criterion=True), "criterion"),
        (dict(sample_ids=torch.arange(3), criterion=1.5), "criterion"),
    ],
)
def test_target_matrix_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        target_matrix(**kwargs)


# --------------------------------------------------------------------------- special cases
@pytest.mark.parametrize("tau", TEMPERATURES)
def test_unlabeled_two_views_equals_simclr_nt_xent(tau):
    g = torch.Generator().manual_seed(0)
    n, d = 12, 16
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    ids = torch.arange(n).repeat(2)  # rows = cat(z1, z2)
    ours = semisupcon_loss(torch.cat([z1, z2]), target_matrix(ids), temperature=tau)
    ref = nt_xent(z1, z2, temperature=tau)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tau", TEMPERATURES)
@pytest.mark.parametrize("n_views", [2, 3])
def test_all_labeled_single_label_equals_supcon(tau, n_views):
    g = torch.Generator().manual_seed(2)
    bsz, d = 10, 8
    features = torch.randn(bsz, n_views, d, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 3, 3, 0, 2, 4])
    z = torch.cat(torch.unbind(features, dim=1), dim=0)  # SupContrast's view-major order
    ids = torch.arange(bsz).repeat(n_views)
    w = target_matrix(ids, labels.repeat(n_views))
    ours = semisupcon_loss(z, w, temperature=tau)
    ref = supcon_loss(features, labels, temperature=tau)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_nt_xent_reference_is_not_trivially_equal():
    # the two references differ once labels add positives (guards against a vacuous match)
    g = torch.Generator().manual_seed(3)
    features = torch.randn(6, 2, 8, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    simclr = nt_xent(features[:, 0], features[:, 1], temperature=0.1)
    sup = supcon_loss(features, labels, temperature=0.1)
    assert abs(float(simclr) - float(sup)) > 1e-3


# --------------------------------------------------------------------------- hand-computed
def test_hand_computed_m4_two_clips():
    z = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    tau = 0.5
    # explicit: anchor 0 has positive 1; cosines row 0: (0.8, 0, -0.6)
    e = lambda c: math.exp(c / tau)  # noqa: E731
    l0 = -math.log(e(0.8) / (e(0.8) + e(0.0) + e(-0.6)))
    l1 = -math.log(e(0.8) / (e(0.8) + e(0.6) + e(0.0)))  # row 1: (0.8, 0.6, 0.0)
    l2 = -math.log(e(0.8) / (e(0.0) + e(0.6) + e(0.8)))  # row 2: (0, 0.6, 0.8)
    l3 = -math.log(e(0.8) / (e(-0.6) + e(0.0) + e(0.8)))  # row 3: (-0.6, 0.0, 0.8)
    expected = (l0 + l1 + l2 + l3) / 4
    w = target_matrix(torch.tensor([0, 0, 1, 1]))
    got = semisupcon_loss(torch.tensor(z, dtype=torch.float32), w, temperature=tau)
    assert math.isclose(float(got), expected, rel_tol=1e-6)
    assert math.isclose(expected, _reference_loss(z, w.numpy(), tau), rel_tol=1e-12)


def test_hand_computed_multilabel_criterion_two():
    g = np.random.default_rng(4)
    z = g.normal(size=(6, 5))
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    y = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1], [0, 1, 1], [0, 1, 1]])
    w = target_matrix(ids, y, criterion=2)
    # clips 0/1 share 2 labels, clips 1/2 share 2, clips 0/2 share 1
    expected_w = np.array(
        [
            [0, 1, 1, 1, 0, 0],
            [1, 0, 1, 1, 0, 0],
            [1, 1, 0, 1, 1, 1],
            [1, 1, 1, 0, 1, 1],
            [0, 0, 1, 1, 0, 1],
            [0, 0, 1, 1, 1, 0],
        ],
        dtype=float,
    )
    np.testing.assert_array_equal(w.numpy(), expected_w)
    got = semisupcon_loss(torch.tensor(z, dtype=torch.float32), w, temperature=0.2)
    assert math.isclose(float(got), _reference_loss(z, expected_w, 0.2), rel_tol=1e-5)


def test_hand_computed_weighted():
    g = np.random.default_rng(5)
    z = g.normal(size=(5, 4))
    ids = torch.tensor([0, 0, 1, 2, 3])
    y = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 1, 1]])
    w = np.array(
        [
            [0, 1, 0.4, 0, 0],
            [1, 0, 0.4, 0, 0],
            [0.4, 0.4, 0, 0, 0.8],
            [0, 0, 0, 0, 0],
            [0, 0, 0.8, 0, 0],
        ]
    )
    got = semisupcon_loss(torch.tensor(z, dtype=torch.float32), target_matrix(ids, y, "weighted"), temperature=0.1)
    assert math.isclose(float(got), _reference_loss(z, w, 0.1), rel_tol=1e-5)


# --------------------------------------------------------------------------- robustness
def test_anchors_without_positives_contribute_zero():
    z = torch.randn(6, 8, requires_grad=True)
    loss = semisupcon_loss(z, target_matrix(torch.arange(6)), temperature=0.1)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(z.grad).all()
    # mixed: rows 4, 5 have no positive -> exactly 0 per anchor, the mean counts them
    w = target_matrix(torch.tensor([0, 0, 1, 1, 2, 3]))
    per = semisupcon_loss(z.detach(), w, reduction="none")
    assert per[4] == 0 and per[5] == 0 and torch.all(per[:4] > 0)
    torch.testing.assert_close(semisupcon_loss(z.detach(), w), per.sum() / 6)
    torch.testing.assert_close(semisupcon_loss(z.detach(), w, reduction="sum"), per.sum())


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e6])
@pytest.mark.parametrize("tau", [1e-3, 0.1])
def test_gradients_finite_for_extreme_inputs(scale, tau):
    g = torch.Generator().manual_seed(6)
    z = (torch.randn(8, 4, generator=g) * scale).requires_grad_()
    w = target_matrix(torch.tensor([0, 0, 1, 1, 2, 2, 3, 4]), torch.tensor([0, 0, 1, 1, 0, 0, -1, -1]))
    loss = semisupcon_loss(z, w, temperature=tau)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_zero_embedding_row_is_finite():
    z = torch.randn(4, 3)
    z[1] = 0
    z.requires_grad_()
    loss = semisupcon_loss(z, target_matrix(torch.tensor([0, 0, 1, 1])))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_tiny_temperature_matches_float64_reference():
    g = np.random.default_rng(7)
    z = g.normal(size=(6, 3))
    w = target_matrix(torch.tensor([0, 0, 1, 1, 2, 2]))
    tau = 0.01  # logits up to 100: exp overflows float32 without the max shift
    zt = torch.tensor(z, dtype=torch.float64)
    zn = zt / zt.norm(dim=1, keepdim=True)
    s = zn @ zn.T / tau
    s.fill_diagonal_(float("-inf"))
    logp = s - torch.logsumexp(s, dim=1, keepdim=True)
    expected = -(w.double() * logp.masked_fill(torch.eye(6, dtype=torch.bool), 0)).sum(1) / w.sum(1)
    got = semisupcon_loss(torch.tensor(z, dtype=torch.float32), w, temperature=tau)
    assert math.isclose(float(got), float(expected.mean()), rel_tol=1e-4)


def test_permutation_scale_and_rotation_invariance():
    g = torch.Generator().manual_seed(8)
    z = torch.randn(8, 5, generator=g)
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    y = torch.tensor([0, 0, 1, 1, 0, 0, -1, -1])
    loss = semisupcon_loss(z, target_matrix(ids, y))
    perm = torch.randperm(8, generator=g)
    permuted = semisupcon_loss(z[perm], target_matrix(ids[perm], y[perm]))
    scaled = semisupcon_loss(z * torch.rand(8, 1, generator=g).add(0.1) * 50, target_matrix(ids, y))
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    rotated = semisupcon_loss(z @ q, target_matrix(ids, y))  # only similarities matter
    torch.testing.assert_close(permuted, loss)
    torch.testing.assert_close(scaled, loss)
    torch.testing.assert_close(rotated, loss)
    # the diagonal of a user-given target matrix is ignored
    w = target_matrix(ids, y)
    torch.testing.assert_close(semisupcon_loss(z, w + torch.eye(8)), loss)


def test_autocast_bf16_cpu_computes_in_float32():
    g = torch.Generator().manual_seed(9)
    proj = torch.nn.Linear(16, 8)
    x = torch.randn(12, 16, generator=g)
    w = target_matrix(torch.arange(6).repeat(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = proj(x)
        loss = semisupcon_loss(z, w, temperature=0.1)
    assert z.dtype == torch.bfloat16
    assert loss.dtype == torch.float32
    ref = semisupcon_loss(z.detach().float(), w, temperature=0.1)  # same bf16 values, fp32 math
    torch.testing.assert_close(loss.detach(), ref, rtol=1e-5, atol=1e-5)
    loss.backward()
    assert torch.isfinite(proj.weight.grad).all()


def test_loss_validates_inputs():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"\[M, M\]"):
        semisupcon_loss(z, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="temperature"):
        semisupcon_loss(z, torch.zeros(4, 4), temperature=0)
    with pytest.raises(ValueError, match="reduction"):
        semisupcon_loss(z, torch.zeros(4, 4), reduction="avg")
    with pytest.raises(ValueError, match="at least 2"):
        semisupcon_loss(z[:1], torch.zeros(1, 1))
    with pytest.raises(ValueError, match=r"\[M, D\]"):
        semisupcon_loss(z[None], torch.zeros(4, 4))


# --------------------------------------------------------------------------- parts, registry, COLA
def test_parts_split_ssl_and_label_terms():
    g = torch.Generator().manual_seed(10)
    z = torch.randn(8, 6, generator=g, requires_grad=True)
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    y = torch.tensor([[1, 0], [1, 0], [1, 1], [1, 1], [0, 0], [0, 0], [0, 1], [0, 1]])
    parts = semisupcon_loss_parts(z, ids, y, criterion=1, temperature=0.2)
    torch.testing.assert_close(parts["loss"], semisupcon_loss(z, target_matrix(ids, y, 1), 0.2))
    torch.testing.assert_close(parts["ssl"], semisupcon_loss(z.detach(), target_matrix(ids), 0.2))
    torch.testing.assert_close(parts["sl"], semisupcon_loss(z.detach(), target_matrix(torch.arange(8), y, 1), 0.2))
    assert parts["loss"].requires_grad and not parts["ssl"].requires_grad and not parts["sl"].requires_grad
    assert not torch.isclose(parts["ssl"], parts["sl"])
    unlabeled = semisupcon_loss_parts(z, ids, None, temperature=0.2)
    torch.testing.assert_close(unlabeled["loss"], unlabeled["ssl"])
    assert unlabeled["sl"] == 0


def test_registry_holds_the_production_losses_only():
    assert set(LOSSES) == {"semisupcon", "cola", "msa"}  # nt_xent / supcon_loss: tests/reference_losses.py
    assert LOSSES["semisupcon"] is semisupcon_loss and LOSSES["cola"] is bilinear_contrastive_loss


def test_bilinear_contrastive_loss_hand_computed():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    p = np.array([[0.5, 0.5], [1.0, -1.0], [0.0, 1.0]])
    W = np.array([[1.0, 0.5], [0.0, 2.0]])
    expected = 0.0
    for i in range(3):
        s = [float(a[i] @ W @ p[j]) for j in range(3)]
        expected += -(s[i] - math.log(sum(math.exp(v) for v in s)))
    expected /= 3
    got = bilinear_contrastive_loss(torch.tensor(a), torch.tensor(p), torch.tensor(W))
    assert math.isclose(float(got), expected, rel_tol=1e-6)
    got_t = bilinear_contrastive_loss(torch.tensor(a), torch.tensor(p), torch.tensor(W), temperature=0.5)
    assert float(got_t) != pytest.approx(expected)

    from workbench.models.cola import BilinearSimilarity

    sim = BilinearSimilarity(2)
    with torch.no_grad():
        sim.weight.copy_(torch.tensor(W))
    got_m = bilinear_contrastive_loss(torch.tensor(a, dtype=torch.float32), torch.tensor(p, dtype=torch.float32), sim)
    assert math.isclose(float(got_m.detach()), expected, rel_tol=1e-5)
    with pytest.raises(ValueError, match="W must be"):
        bilinear_contrastive_loss(torch.tensor(a), torch.tensor(p), torch.eye(3, dtype=torch.float64))
