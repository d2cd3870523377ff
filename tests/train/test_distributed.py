"""Global-batch loss across 2 CPU processes (gloo) equals one process on the whole batch.

Convention (see ``workbench.distributed``): every rank computes the same loss on the
gathered batch and ``GatherLayer.backward`` sums the gradients over ranks, so a rank's
local input gradient is ``world_size`` x the single-process gradient of its rows; DDP's
gradient *averaging* over ranks then gives exactly the single-process parameter gradient
(mimicked here with an explicit all-reduce / world_size).
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from workbench.distributed import gather, global_sample_ids
from workbench.losses import semisupcon_loss, target_matrix

WORLD = 2
LOCAL_CLIPS = 3
N_VIEWS = 2
IN_DIM, OUT_DIM = 6, 4
N_CLASSES = 3
TAU = 0.2


def _batch():
    """A fixed global batch: per rank LOCAL_CLIPS clips x N_VIEWS views, some labeled."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(WORLD, LOCAL_CLIPS * N_VIEWS, IN_DIM, generator=g)
    # labels per clip (multi-hot); clip 2 of each rank unlabeled
    y = torch.tensor([[[1, 0, 0], [0, 1, 1], [0, 0, 0]], [[1, 1, 0], [0, 0, 1], [0, 0, 0]]], dtype=torch.float32)
    local_ids = torch.arange(LOCAL_CLIPS).repeat_interleave(N_VIEWS)  # batch positions, same on each rank
    labels = y.repeat_interleave(N_VIEWS, dim=1)
    return x, local_ids, labels


def _model():
    torch.manual_seed(1)
    return torch.nn.Linear(IN_DIM, OUT_DIM)


def _worker(rank: int, port: int, out_path: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        x, local_ids, labels = _batch()
        model = _model()
        xr = x[rank].clone().requires_grad_()
        z = model(xr)
        z_all = gather(z)
        ids_all = gather(global_sample_ids(local_ids))
        labels_all = gather(labels[rank])
        loss = semisupcon_loss(z_all, target_matrix(ids_all, labels_all), temperature=TAU)
        loss.backward()
        # DDP semantics: average parameter gradients over ranks
        wgrad = model.weight.grad.clone()
        dist.all_reduce(wgrad)
        wgrad /= WORLD
        torch.save({"loss": loss.detach(), "xgrad": xr.grad, "wgrad": wgrad, "ids": ids_all}, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_process_gather_matches_single_process(tmp_path):
    out = str(tmp_path / "rank")
    mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    results = [torch.load(f"{out}.{r}", weights_only=True) for r in range(WORLD)]

    # single process on the concatenated batch
    x, local_ids, labels = _batch()
    model = _model()
    xs = x.reshape(WORLD * LOCAL_CLIPS * N_VIEWS, IN_DIM).clone().requires_grad_()
    ids = torch.cat([global_sample_ids(local_ids, r, WORLD) for r in range(WORLD)])
    loss = semisupcon_loss(model(xs), target_matrix(ids, labels.reshape(-1, N_CLASSES)), temperature=TAU)
    loss.backward()

    # two different clips on two ranks never share an id; views of one clip do
    assert len(set(ids.tolist())) == WORLD * LOCAL_CLIPS
    assert torch.equal(results[0]["ids"], ids)
    per_rank_grad = xs.grad.reshape(WORLD, LOCAL_CLIPS * N_VIEWS, IN_DIM)
    for r, res in enumerate(results):
        torch.testing.assert_close(res["loss"], loss.detach(), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(res["xgrad"] / WORLD, per_rank_grad[r], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(res["wgrad"], model.weight.grad, rtol=1e-5, atol=1e-7)
    # the gradient is not trivially zero
    assert per_rank_grad.abs().max() > 1e-3


def test_gather_is_identity_without_process_group():
    t = torch.randn(3, 2, requires_grad=True)
    assert gather(t) is t
    assert torch.equal(global_sample_ids(torch.tensor([0, 0, 1])), torch.tensor([0, 0, 1]))


def test_global_sample_ids_unique_across_ranks():
    local = torch.arange(5).repeat_interleave(2)
    ids = torch.cat([global_sample_ids(local, r, 4) for r in range(4)])
    assert len(set(ids.tolist())) == 20  # 5 clips x 4 ranks, views share ids
    with pytest.raises(ValueError, match="rank"):
        global_sample_ids(local, 4, 4)
    with pytest.raises(ValueError, match="non-negative"):
        global_sample_ids(torch.tensor([-1]), 0, 2)
