"""ContrastiveModule.step: the public step training, logging and latent.batch_similarity share;
and a smoke test that training lowers the loss."""

from __future__ import annotations

import torch

from workbench.config import resolve_config
from workbench.losses import semisupcon_loss, target_matrix
from workbench.train.semisupcon import ContrastiveModule


def _batch(b=8, n=2, t=729, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(b, classes)
    labels[: b // 2, 0] = 1  # half the clips labelled with class 0
    first = 0.1 * torch.randn(b, 1, t, generator=g)  # the views of a clip: one signal, slightly perturbed
    views = first + 0.01 * torch.randn(b, n, t, generator=g)
    return {"views": views, "labels": labels,
            "labeled": torch.arange(b) < b // 2, "sample_id": torch.arange(b)}


def test_step_returns_the_loss_of_the_target_matrix_it_returns():
    cfg = resolve_config("smoke", "semisupcon", support="nsynth_pitch", b_s=0.5, severity=0.0)
    module = ContrastiveModule(cfg.to_dict())
    torch.manual_seed(0)
    z, targets, loss, parts = module.step(_batch())
    assert z.shape == (16, cfg.proj_dim) and targets.shape == (16, 16)
    ids = torch.arange(8).repeat_interleave(2)
    labels = _batch()["labels"].repeat_interleave(2, dim=0)
    assert torch.equal(targets, target_matrix(ids, labels))  # views of a clip + label-0 block
    assert torch.allclose(loss, semisupcon_loss(z, targets, temperature=cfg.temperature))
    assert {"ssl", "sl", "positive_fraction"} <= set(parts)
    assert torch.isclose(parts["positive_fraction"], (targets > 0).float().mean())


def test_training_lowers_the_loss():
    cfg = resolve_config("smoke", "simclr", severity=0.0, lr=1e-3)  # severity 0: no augmentation
    torch.manual_seed(0)
    module = ContrastiveModule(cfg.to_dict())
    opt = module.configure_optimizers()
    batch = _batch(b=8)
    losses = []
    for _ in range(30):
        _, _, loss, _ = module.step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
