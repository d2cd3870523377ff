"""Projection head (contrastive training) and classifier heads (probes, supervised baseline)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .samplecnn import EMBEDDING_DIM

__all__ = [
    "ProjectionHead",
    "ClassifierHead",
    "PROJECTION_DIM",
    "CLMR_PROJECTION_DIM",
    "HIDDEN_DIM",
    "HEAD_PRESETS",
]

#: SemiSupCon projection output (GUIDE 2.2).
PROJECTION_DIM = 128
#: CLMR projection output.
CLMR_PROJECTION_DIM = 64
#: Hidden width of the projection head and of MLP probes.
HIDDEN_DIM = 512

#: Named projection-head configurations.
HEAD_PRESETS: dict[str, dict[str, int | bool]] = {
    "semisupcon": dict(in_dim=EMBEDDING_DIM, hidden_dim=HIDDEN_DIM, out_dim=PROJECTION_DIM, bias=False),
    "clmr": dict(in_dim=EMBEDDING_DIM, hidden_dim=HIDDEN_DIM, out_dim=CLMR_PROJECTION_DIM, bias=False),
}


class ProjectionHead(nn.Sequential):
    """``Linear(in, hidden, bias) -> ReLU -> Linear(hidden, out, bias)`` (bias off by default).

    The contrastive loss is computed on its output; probes discard it and use the encoder
    output.  ``ProjectionHead.preset("clmr", in_dim=...)`` gives the CLMR 64-d variant.
    """

    def __init__(
        self,
        in_dim: int = EMBEDDING_DIM,
        hidden_dim: int = HIDDEN_DIM,
        out_dim: int = PROJECTION_DIM,
        bias: bool = False,
    ) -> None:
        if min(in_dim, hidden_dim, out_dim) < 1:
            raise ValueError(f"ProjectionHead: dims must be >= 1; got {in_dim}, {hidden_dim}, {out_dim}.")
        super().__init__(
            nn.Linear(in_dim, hidden_dim, bias=bias),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim, bias=bias),
        )
        self.in_dim, self.hidden_dim, self.out_dim, self.bias = in_dim, hidden_dim, out_dim, bias

    @classmethod
    def preset(cls, name: str, **overrides: int | bool) -> "ProjectionHead":
        """Build a head from :data:`HEAD_PRESETS` (``"semisupcon"`` or ``"clmr"``)."""
        if name not in HEAD_PRESETS:
            raise ValueError(f"ProjectionHead: unknown preset {name!r}; choose from {sorted(HEAD_PRESETS)}.")
        kw = dict(HEAD_PRESETS[name])
        kw.update(overrides)
        return cls(**kw)  # type: ignore[arg-type]


class ClassifierHead(nn.Module):
    """Probe / supervised head on frozen (or trained) embeddings.

    ``hidden=None``: ``Dropout -> Linear(in_dim, n_out)`` (linear probe).
    ``hidden=h``:    ``Linear(in_dim, h) -> ReLU -> Dropout -> Linear(h, n_out)`` (2-layer MLP).
    Outputs logits (or regression values); the task loss is applied outside.
    """

    def __init__(
        self, in_dim: int, n_out: int, hidden: int | None = HIDDEN_DIM, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if in_dim < 1 or n_out < 1 or (hidden is not None and hidden < 1):
            raise ValueError(f"ClassifierHead: dims must be >= 1; got in_dim={in_dim}, n_out={n_out}, hidden={hidden}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ClassifierHead: dropout must be in [0, 1); got {dropout}.")
        self.in_dim, self.n_out, self.hidden, self.dropout = in_dim, n_out, hidden, dropout
        if hidden is None:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, n_out))
        else:
            self.net = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, n_out)
            )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, in_dim] -> [B, n_out]``."""
        return self.net(h)
