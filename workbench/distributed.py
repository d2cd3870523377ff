"""Gathering embeddings, ids and labels across devices for a global-batch contrastive loss.

With DDP each rank holds a local batch; the contrastive loss must see the *global*
batch so that negatives come from every device (GUIDE 2.2).  Each rank therefore

1. gathers ``z`` **with gradient** (:class:`GatherLayer`), sample ids (made globally
   unique with :func:`global_sample_ids`) and labels (plain all-gather), and
2. computes the same loss on the same global batch.

Gradient convention (the standard solo-learn / lightly ``GatherLayer``): ``backward``
all-reduces (sums) the incoming gradients of the gathered tensor over ranks and returns
this rank's slice.  Every rank computes the *same* loss ``L`` on the global batch, so the
gradient that reaches a rank's local ``z`` is ``world_size * dL/dz_local``.  DDP then
*averages* parameter gradients over ranks (divides by ``world_size``), which yields exactly
the single-process gradient of ``L`` on the concatenated batch.  Without DDP (e.g. in the
two-process test) divide the local gradients by ``world_size`` to compare.

All ranks must hold the same number of rows (use ``drop_last=True``); :func:`gather`
checks this and raises a clear error otherwise.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["GatherLayer", "gather", "global_sample_ids", "is_distributed", "get_rank", "get_world_size"]


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and initialised with > 1 rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_world_size() -> int:
    """Number of ranks (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class GatherLayer(torch.autograd.Function):
    """``all_gather`` that keeps the autograd graph.

    Forward returns a tuple with one tensor per rank.  Backward sums the gradients of
    all ranks (``all_reduce``) and returns the slice belonging to this rank, so the loss
    computed identically on every rank back-propagates into each rank's local input.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        output = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(output, x.contiguous())
        return tuple(output)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        all_gradients = torch.stack(grads)
        dist.all_reduce(all_gradients)
        return all_gradients[dist.get_rank()]


def _check_equal_rows(t: torch.Tensor) -> None:
    n = torch.tensor([t.shape[0]], device=t.device, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    if len(set(counts)) != 1:
        raise ValueError(
            f"gather: ranks hold different batch sizes {counts}; the global-batch loss needs "
            "equal local batches (use drop_last=True in the data loader)."
        )


def gather(t: torch.Tensor, check_sizes: bool = True) -> torch.Tensor:
    """Concatenate ``t`` from all ranks along dim 0 (rank order); identity if not distributed.

    Tensors that require grad go through :class:`GatherLayer` (gradient flows back to
    each rank's local slice); others (ids, labels) use a plain ``all_gather``.
    """
    if not is_distributed():
        return t
    if check_sizes:
        _check_equal_rows(t)
    if t.requires_grad:
        return torch.cat(GatherLayer.apply(t), dim=0)
    output = [torch.zeros_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(output, t.contiguous())
    return torch.cat(output, dim=0)


def global_sample_ids(
    ids: torch.Tensor, rank: int | None = None, world: int | None = None
) -> torch.Tensor:
    """Make per-rank clip ids globally unique: ``global = ids * world + rank``.

    ``ids`` are non-negative clip ids that are unique within the rank (e.g. the position
    of the clip in the local batch, repeated for its views).  Two different clips on two
    ranks never collide, views of one clip keep one id, and no bound on the ids is needed.
    ``rank``/``world`` default to this process's values (0 / 1 when not distributed, where
    the ids are returned unchanged).
    """
    rank = get_rank() if rank is None else rank
    world = get_world_size() if world is None else world
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"global_sample_ids: need 0 <= rank < world; got rank={rank}, world={world}.")
    ids = torch.as_tensor(ids)
    if ids.is_floating_point():
        raise ValueError(f"global_sample_ids: ids must be integers; got dtype {ids.dtype}.")
    if ids.numel() and bool((ids < 0).any()):
        raise ValueError("global_sample_ids: ids must be non-negative.")
    return ids.long() * world + rank
