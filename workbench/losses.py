"""Contrastive losses: SemiSupCon (explicit target matrix), SimCLR, SupCon, COLA.

SemiSupCon is "SupCon with an explicit positive-weight matrix" (GUIDE 2.2).  For M
projected embeddings ``z`` (B clips x N views, any row order) and a target matrix
``w`` (M x M, zero diagonal) built by :func:`target_matrix`::

    s_ij = <z_i, z_j> / tau                      (z L2-normalised inside the loss)
    l_i  = - sum_j w_ij * log( exp(s_ij) / sum_{k != i} exp(s_ik) ) / sum_j w_ij
    loss = mean_i l_i                            (anchors with sum_j w_ij = 0 give 0)

Special cases pinned by ``tests/test_losses.py``:

* all rows unlabeled, N = 2  ->  SimCLR NT-Xent (``nt_xent`` in ``tests/reference_losses.py``,
  written the SimCLR way);
* all rows labeled, single label  ->  SupCon ``L_out`` (``supcon_loss`` there, written the
  Khosla et al. way).

``LOSSES`` maps loss names to the production callables (solo-learn style).  Their
signatures differ because the methods consume different inputs:

* ``"semisupcon"``: ``semisupcon_loss(z, targets, temperature=0.1)``, which also trains the
  ``simclr`` and ``supcon`` methods (their ``target_matrix``, identical numbers)
* ``"cola"``:       ``bilinear_contrastive_loss(anchor, positive, W, temperature=1.0)``
* ``"msa"``:        ``msa_contrastive_loss(anchor, positive, W, silent, temperature, centroid=True)``

The SimCLR and SupCon formulas written the papers' way are independent references, so they
live with the tests that compare against them (``tests/reference_losses.py``, lightly style).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_TEMPERATURE",
    "SIMCLR_TEMPERATURE",
    "LOSSES",
    "Criterion",
    "target_matrix",
    "semisupcon_loss",
    "semisupcon_loss_parts",
    "bilinear_contrastive_loss",
    "msa_candidates",
    "msa_contrastive_loss",
]

#: SemiSupCon temperature (paper section 4.3).
DEFAULT_TEMPERATURE = 0.1
#: CLMR / SimCLR temperature.
SIMCLR_TEMPERATURE = 0.5
#: Default class criterion: one shared label makes a positive pair.
DEFAULT_CRITERION = 1
#: Name of the Dice-weighted criterion.
WEIGHTED = "weighted"
#: Value of an unlabeled row in integer class labels.
UNLABELED = -1
#: Reductions accepted by :func:`semisupcon_loss`.
REDUCTIONS = ("mean", "sum", "none")

Criterion = Union[int, str]


# --------------------------------------------------------------------------- targets
def _as_multi_hot(labels: torch.Tensor, m: int) -> torch.Tensor:
    """Validate ``labels`` and return an ``M x C`` float multi-hot matrix."""
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() == 1:
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(
                "target_matrix: 1-D labels must be integer class indices (LongTensor, "
                f"{UNLABELED} = unlabeled); got dtype {labels.dtype}. Pass multi-hot labels "
                "as a 2-D M x C tensor instead."
            )
        if labels.numel() != m:
            raise ValueError(
                f"target_matrix: labels has {labels.numel()} entries but sample_ids has {m}; "
                "give one label per row (view) of the batch."
            )
        labels = labels.long()
        if bool((labels < UNLABELED).any()):
            raise ValueError(
                f"target_matrix: integer labels must be >= 0, or {UNLABELED} for unlabeled rows; "
                f"got min {int(labels.min())}."
            )
        n_classes = int(labels.max().item()) + 1 if m else 0
        onehot = torch.zeros(m, max(n_classes, 1), dtype=torch.float32, device=labels.device)
        labeled = labels >= 0
        onehot[labeled.nonzero(as_tuple=True)[0], labels[labeled]] = 1.0
        return onehot
    if labels.dim() != 2:
        raise ValueError(
            "target_matrix: labels must be an M x C multi-hot matrix (all-zero row = "
            f"unlabeled) or 1-D integer classes; got shape {tuple(labels.shape)}."
        )
    if labels.shape[0] != m:
        raise ValueError(
            f"target_matrix: labels has {labels.shape[0]} rows but sample_ids has {m}; "
            "give one label row per row (view) of the batch."
        )
    y = labels.float()
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(
            "target_matrix: multi-hot labels must contain only 0 and 1 (soft labels are not "
            "supported; use criterion='weighted' for graded similarity)."
        )
    return y


def _check_criterion(criterion: Criterion) -> None:
    if isinstance(criterion, str):
        if criterion != WEIGHTED:
            raise ValueError(
                f"target_matrix: criterion must be an int >= 1 or {WEIGHTED!r}; got {criterion!r}."
            )
        return
    if isinstance(criterion, bool) or not isinstance(criterion, int) or criterion < 1:
        raise ValueError(
            f"target_matrix: criterion must be an int >= 1 (number of shared labels) or "
            f"{WEIGHTED!r}; got {criterion!r}."
        )


def target_matrix(
    sample_ids: torch.Tensor | Sequence[int],
    labels: torch.Tensor | None = None,
    criterion: Criterion = DEFAULT_CRITERION,
) -> torch.Tensor:
    """Contrastive target weights ``w`` (float32, ``M x M``, zero diagonal).

    Args:
        sample_ids: ``[M]`` integer id of the clip each row (view) comes from; rows with
            equal ids are different views of the same clip (self-supervised positives).
        labels: ``None`` (all unlabeled), an ``M x C`` multi-hot matrix (0/1; an all-zero
            row is unlabeled) or, as a convenience, ``[M]`` integer classes with ``-1`` for
            unlabeled rows (converted to one-hot).
        criterion: ``n >= 1``: a labeled pair is positive iff it shares at least ``n``
            labels, combined with same-clip positives by OR.  ``"weighted"``: the Dice
            weight ``2 |y_i & y_j| / (|y_i| + |y_j|)`` (0/0 := 0), combined with the
            same-clip ones by ``max`` (= ``clamp(ssl + sl, max=1)``).

    The pair statistics come from one matrix product ``y @ y.T`` (never an M x M x C
    tensor).
    """
    ids = torch.as_tensor(sample_ids)
    if ids.dim() != 1:
        raise ValueError(
            f"target_matrix: sample_ids must be 1-D (one clip id per row); got shape "
            f"{tuple(ids.shape)}."
        )
    if ids.is_floating_point() or ids.is_complex():
        raise ValueError(f"target_matrix: sample_ids must be integers; got dtype {ids.dtype}.")
    _check_criterion(criterion)
    m = ids.numel()
    same = ids[:, None] == ids[None, :]
    eye = torch.eye(m, dtype=torch.bool, device=ids.device)
    if labels is None:
        return (same & ~eye).float()

    y = _as_multi_hot(labels, m).to(ids.device)
    shared = y @ y.T  # M x M counts of shared labels
    if criterion == WEIGHTED:
        counts = y.sum(dim=1)
        denom = counts[:, None] + counts[None, :]
        dice = torch.where(denom > 0, 2.0 * shared / denom.clamp_min(1.0), torch.zeros_like(shared))
        w = torch.maximum(same.float(), dice)
    else:
        w = (same | (shared >= criterion)).float()
    return w.masked_fill(eye, 0.0)


# --------------------------------------------------------------------------- SemiSupCon
def _check_z(z: torch.Tensor, name: str) -> None:
    if z.dim() != 2:
        raise ValueError(f"{name}: z must be [M, D] embeddings; got shape {tuple(z.shape)}.")
    if z.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 rows to contrast; got M = {z.shape[0]}.")


def _check_temperature(temperature: float, name: str) -> None:
    if not temperature > 0:
        raise ValueError(f"{name}: temperature must be > 0; got {temperature!r}.")


def _off_diagonal_log_softmax(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """``log p_ij = s_ij - logsumexp_{k != i} s_ik`` in float32, 0 on the diagonal.

    Autocast is switched off so that the similarities and the log-softmax are computed
    in float32 even inside a bf16/fp16 autocast region.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        zn = F.normalize(z.float(), dim=1)
        logits = zn @ zn.T / temperature
        m = logits.shape[0]
        eye = torch.eye(m, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(eye, float("-inf"))
        # Stable: subtract the (off-diagonal) row max before exponentiating.
        row_max = logits.max(dim=1, keepdim=True).values.detach()
        shifted = logits - row_max
        log_denom = torch.logsumexp(shifted, dim=1, keepdim=True)
        return (shifted - log_denom).masked_fill(eye, 0.0)


def _weighted_nll(log_prob: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
    """``l_i = -sum_j w_ij log p_ij / sum_j w_ij`` (0 where ``sum_j w_ij = 0``), reduced."""
    w = targets.to(log_prob.dtype)
    w = w.masked_fill(torch.eye(w.shape[0], dtype=torch.bool, device=w.device), 0.0)
    n_pos = w.sum(dim=1)
    num = -(w * log_prob).sum(dim=1)
    per_anchor = torch.where(n_pos > 0, num / n_pos.clamp_min(torch.finfo(w.dtype).tiny), 0.0)
    if reduction == "mean":
        return per_anchor.mean()
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor


def semisupcon_loss(
    z: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    reduction: str = "mean",
) -> torch.Tensor:
    """SemiSupCon loss for embeddings ``z [M, D]`` and target weights ``targets [M, M]``.

    ``z`` is L2-normalised inside; the similarities and log-softmax are computed in
    float32 (also under autocast).  The diagonal of ``targets`` is ignored.  ``reduction``:
    ``"mean"`` over all M anchors (default; anchors without positives count as 0),
    ``"sum"``, or ``"none"`` (per-anchor ``[M]``).
    """
    _check_z(z, "semisupcon_loss")
    _check_temperature(temperature, "semisupcon_loss")
    if reduction not in REDUCTIONS:
        raise ValueError(f"semisupcon_loss: reduction must be one of {REDUCTIONS}; got {reduction!r}.")
    m = z.shape[0]
    if tuple(targets.shape) != (m, m):
        raise ValueError(
            f"semisupcon_loss: targets must be [M, M] = [{m}, {m}] to match z; got "
            f"{tuple(targets.shape)}. Build it with target_matrix(sample_ids, labels)."
        )
    return _weighted_nll(_off_diagonal_log_softmax(z, temperature), targets.to(z.device), reduction)


def semisupcon_loss_parts(
    z: torch.Tensor,
    sample_ids: torch.Tensor,
    labels: torch.Tensor | None = None,
    criterion: Criterion = DEFAULT_CRITERION,
    temperature: float = DEFAULT_TEMPERATURE,
) -> dict[str, torch.Tensor]:
    """The SemiSupCon loss and, for logging, its self-supervised and label-only parts.

    Returns ``{"loss", "ssl", "sl"}``: ``loss`` (with gradient) uses the full target
    matrix; ``ssl`` (no gradient) uses only same-clip targets; ``sl`` (no gradient) only
    label targets (``target_matrix`` with every row its own clip, so views of a labeled
    clip count through their shared labels).  All three are means over all M anchors
    (anchors without positives in that part count as 0; ``sl`` is 0 for an unlabeled
    batch).
    """
    _check_z(z, "semisupcon_loss_parts")
    _check_temperature(temperature, "semisupcon_loss_parts")
    ids = torch.as_tensor(sample_ids, device=z.device)
    log_prob = _off_diagonal_log_softmax(z, temperature)
    loss = _weighted_nll(log_prob, target_matrix(ids, labels, criterion), "mean")
    with torch.no_grad():
        lp = log_prob.detach()
        ssl = _weighted_nll(lp, target_matrix(ids), "mean")
        if labels is None:
            sl = torch.zeros((), device=z.device)
        else:
            own = torch.arange(ids.numel(), device=z.device)
            sl = _weighted_nll(lp, target_matrix(own, labels, criterion), "mean")
    return {"loss": loss, "ssl": ssl, "sl": sl}


# --------------------------------------------------------------------------- COLA / MSA
def bilinear_contrastive_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    W: torch.Tensor | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    temperature: float = 1.0,
) -> torch.Tensor:
    """COLA loss: bilinear similarity ``a_i^T W p_j`` and cross-entropy over the batch.

    Each anchor's positive is the same-index row of ``positive``; the other rows are its
    in-batch negatives.  ``W`` is a ``[D, D]`` matrix or a module mapping ``(anchor,
    positive)`` to the ``[B, B]`` similarity matrix (e.g. ``models.cola.BilinearSimilarity``).
    ``temperature`` divides the similarities (1 in COLA; the MSA variant tunes it).
    """
    _check_pairs(anchor, positive, temperature, "bilinear_contrastive_loss")
    targets = torch.arange(anchor.shape[0], device=anchor.device)
    return _bilinear_cross_entropy(anchor, positive, targets, W, temperature, "bilinear_contrastive_loss")


def _check_pairs(anchor: torch.Tensor, positive: torch.Tensor, temperature: float, name: str) -> None:
    if anchor.dim() != 2 or anchor.shape != positive.shape:
        raise ValueError(
            f"{name}: anchor and positive must both be [B, D]; got "
            f"{tuple(anchor.shape)} and {tuple(positive.shape)}."
        )
    _check_temperature(temperature, name)


def _bilinear_cross_entropy(anchor: torch.Tensor, candidates: torch.Tensor, targets: torch.Tensor,
                            W: torch.Tensor | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                            temperature: float, name: str) -> torch.Tensor:
    """Cross-entropy of each anchor's ``a_i^T W c_j / temperature`` row against its target index."""
    if isinstance(W, torch.Tensor):
        d = anchor.shape[1]
        if tuple(W.shape) != (d, d):
            raise ValueError(f"{name}: W must be [{d}, {d}]; got {tuple(W.shape)}.")
        logits = anchor @ W @ candidates.T
    else:
        logits = W(anchor, candidates)
    return F.cross_entropy(logits.float() / temperature, targets)


def msa_candidates(positive: torch.Tensor, silent: torch.Tensor | None = None,
                   centroid: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate set ``S*`` of the MSA loss and each anchor's target index in it.

    ``positive`` [B, D], ``silent`` [B] bool (None: nothing silent).  With ``centroid`` and
    at least one silent row, ``S*`` is the non-silent positives (in batch order) followed by
    the mean of the silent ones, and every anchor whose positive is silent targets that
    centroid; otherwise ``S*`` is ``positive`` itself and anchor ``i`` targets row ``i``.
    Returns ``(candidates [K, D], targets [B] long)``.
    """
    b = positive.shape[0]
    idx = torch.arange(b, device=positive.device)
    if silent is None or not centroid:
        return positive, idx
    silent = silent.to(device=positive.device, dtype=torch.bool).reshape(-1)
    if silent.shape[0] != b:
        raise ValueError(f"msa_candidates: silent has {silent.shape[0]} rows for {b} positives.")
    if not bool(silent.any()):
        return positive, idx
    keep = ~silent
    candidates = torch.cat([positive[keep], positive[silent].mean(dim=0, keepdim=True)])
    targets = torch.cumsum(keep.long(), 0) - 1  # position among the kept rows
    targets = torch.where(keep, targets, torch.full_like(targets, int(keep.sum())))
    return candidates, targets


def msa_contrastive_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    W: torch.Tensor | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    silent: torch.Tensor | None = None,
    temperature: float = 1.0,
    centroid: bool = True,
) -> torch.Tensor:
    """MSA loss (paper 004), averaged over the anchors ``S`` (the poster sums)::

        L = -1/|S| sum_{y in S} log( exp(s(y, y^)/T) / sum_{z in S*} exp(s(y, z)/T) )

    ``S*`` (:func:`msa_candidates`): the non-silent positives plus the centroid of the silent
    ones; an anchor whose positive is silent has the centroid as ``y^``.  ``s(a, p) = a^T W p``
    (``W`` a ``[D, D]`` matrix or a module mapping ``(anchor, candidates)`` to scores).
    ``centroid=False`` or no silent row: exactly :func:`bilinear_contrastive_loss`.
    """
    _check_pairs(anchor, positive, temperature, "msa_contrastive_loss")
    candidates, targets = msa_candidates(positive, silent, centroid)
    return _bilinear_cross_entropy(anchor, candidates, targets, W, temperature, "msa_contrastive_loss")


#: Loss name -> production loss callable (see the module docstring for the signatures).
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "semisupcon": semisupcon_loss,
    "cola": bilinear_contrastive_loss,
    "msa": msa_contrastive_loss,
}
