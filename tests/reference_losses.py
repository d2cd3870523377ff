"""Independent reference losses for ``tests/test_losses.py`` (lightly style).

``nt_xent`` is SimCLR's NT-Xent written the SimCLR/CLMR way, ``supcon_loss`` SupCon's
``L_out`` written the Khosla et al. (SupContrast) way.  Production trains every method with
:func:`workbench.losses.semisupcon_loss` and a :func:`~workbench.losses.target_matrix`; the
tests check it against these on the special cases where they must agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.losses import DEFAULT_TEMPERATURE, SIMCLR_TEMPERATURE


def _check_temperature(temperature: float, name: str) -> None:
    if not temperature > 0:
        raise ValueError(f"{name}: temperature must be > 0; got {temperature!r}.")


def nt_xent(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = SIMCLR_TEMPERATURE
) -> torch.Tensor:
    """SimCLR NT-Xent, written the SimCLR/CLMR way (independent reference).

    ``z = cat(z1, z2)`` (2N rows, normalised); the positive of row i sits at offset
    ``+N`` / ``-N``; the other 2N - 2 off-diagonal rows are negatives; cross-entropy with
    the positive in column 0, averaged over the 2N anchors.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(
            f"nt_xent: z1 and z2 must both be [N, D] with equal shapes; got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}."
        )
    _check_temperature(temperature, "nt_xent")
    n = z1.shape[0]
    with torch.autocast(device_type=z1.device.type, enabled=False):
        z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)
        sim = z @ z.T / temperature
        sim_i_j = torch.diag(sim, n)
        sim_j_i = torch.diag(sim, -n)
        positives = torch.cat([sim_i_j, sim_j_i]).reshape(2 * n, 1)
        mask = torch.ones(2 * n, 2 * n, dtype=torch.bool, device=z.device)
        mask.fill_diagonal_(False)
        idx = torch.arange(n, device=z.device)
        mask[idx, idx + n] = False
        mask[idx + n, idx] = False
        negatives = sim[mask].reshape(2 * n, -1)
        logits = torch.cat([positives, negatives], dim=1)
        labels = torch.zeros(2 * n, dtype=torch.long, device=z.device)
        return F.cross_entropy(logits, labels, reduction="sum") / (2 * n)


def supcon_loss(
    features: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    base_temperature: float | None = None,
) -> torch.Tensor:
    """Supervised contrastive loss ``L_out``, written the Khosla et al. (SupContrast) way.

    Args:
        features: ``[bsz, n_views, dim]``; normalised here along ``dim``.
        labels: ``[bsz]`` class ids, or ``None`` for SimCLR (positives = other views).
        temperature: tau.
        base_temperature: the SupContrast rescaling ``tau / base_tau`` (default ``tau``,
            i.e. no rescaling).

    ``contrast_mode="all"``: every view is an anchor; loss averaged over all anchors.
    """
    if features.dim() != 3:
        raise ValueError(
            f"supcon_loss: features must be [bsz, n_views, dim]; got {tuple(features.shape)}."
        )
    _check_temperature(temperature, "supcon_loss")
    base_temperature = temperature if base_temperature is None else base_temperature
    device = features.device
    bsz, n_views = features.shape[0], features.shape[1]
    with torch.autocast(device_type=device.type, enabled=False):
        features = F.normalize(features.float(), dim=2)
        if labels is None:
            mask = torch.eye(bsz, dtype=torch.float32, device=device)
        else:
            labels = labels.contiguous().view(-1, 1).to(device)
            if labels.shape[0] != bsz:
                raise ValueError("supcon_loss: number of labels does not match features.")
            mask = torch.eq(labels, labels.T).float()
        contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
        anchor_feature = contrast_feature
        anchor_count = n_views
        anchor_dot_contrast = anchor_feature @ contrast_feature.T / temperature
        logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
        logits = anchor_dot_contrast - logits_max.detach()
        mask = mask.repeat(anchor_count, n_views)
        logits_mask = torch.ones_like(mask)
        idx = torch.arange(bsz * anchor_count, device=device)
        logits_mask[idx, idx] = 0
        mask = mask * logits_mask
        exp_logits = torch.exp(logits) * logits_mask
        log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
        mask_pos_pairs = mask.sum(1)
        mask_pos_pairs = torch.where(mask_pos_pairs < 1e-6, 1, mask_pos_pairs)
        mean_log_prob_pos = (mask * log_prob).sum(1) / mask_pos_pairs
        loss = -(temperature / base_temperature) * mean_log_prob_pos
        return loss.view(anchor_count, bsz).mean()
