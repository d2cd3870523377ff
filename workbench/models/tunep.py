"""TUNe+ (Tailed U-Net with skip links into the tail; Vasquez & Burgoyne, ISMIR 2022).

SemiSupCon's second encoder.  A waveform U-Net whose decoder output is followed by a
*tail* of downsampling blocks; in TUNe+ every tail level is also fed (concatenated) by
the U-Net feature map of the same resolution (the decoder outputs, and the bottleneck at
the deepest level).  All blocks are SampleCNN-style ``Conv1d(k3, pad 1) + BN + ReLU``;
downsampling is ``MaxPool1d(3)`` and upsampling ``ConvTranspose1d(k3, stride 3)``.

With ``b = base_channels`` and ``D = depth`` (paper: b = 11, D = 4, 5 extra tail blocks,
~2.2 M parameters, 59 049 samples)::

    encoder   e_0 = Block(1 -> b) at full length;  e_i = Block(pool(e_{i-1}): b2^{i-1} -> b2^i), i = 1..D
    decoder   d_D = e_D;  d_i = Block(cat(up(d_{i+1}), e_i): 2 b2^i -> b2^i), i = D-1..0
    tail      t_0 = d_0;  t_j = Block(cat(pool(t_{j-1}), d_j): b2^{j-1} + b2^j -> b2^j), j = 1..D
    extra     E blocks, each after a pool: b2^D -> tail_channels -> ... -> out_dim
    output    mean over the remaining frames -> [B, out_dim]

Every level's frames are the floored chain ``T // 3^j``; up-sampled maps are cropped or
zero-padded to their skip partner so any input of at least ``3^(D + E)`` samples works.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .samplecnn import EMBEDDING_DIM, PAPER_CLIP_SAMPLES, PAPER_SAMPLE_RATE

__all__ = ["TUNePlus", "ConvBlock", "TUNEP_BASE_CHANNELS", "TUNEP_DEPTH", "TUNEP_TAIL_BLOCKS"]

#: Paper configuration (Marcel-Velez/TUNe ``TunePlus(in_channels=11)``).
TUNEP_BASE_CHANNELS = 11
TUNEP_DEPTH = 4
TUNEP_TAIL_BLOCKS = 5
#: Tail width relative to the base: 32 b in the paper.
TUNEP_TAIL_WIDTH_FACTOR = 32
RESAMPLE_FACTOR = 3
KERNEL = 3


class ConvBlock(nn.Sequential):
    """``Conv1d(k3, pad 1) + BatchNorm1d + ReLU`` (He-initialised)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = KERNEL) -> None:
        conv = nn.Conv1d(c_in, c_out, kernel_size=kernel, padding=kernel // 2)
        nn.init.kaiming_uniform_(conv.weight, mode="fan_in", nonlinearity="relu")
        super().__init__(conv, nn.BatchNorm1d(c_out), nn.ReLU(inplace=True))


def _match_length(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Crop or right-pad (zeros) the time axis of ``x`` to ``frames``."""
    diff = frames - x.shape[-1]
    if diff > 0:
        return F.pad(x, (0, diff))
    if diff < 0:
        return x[..., :frames]
    return x


class TUNePlus(nn.Module):
    """TUNe+ encoder ``[B, 1, T] -> [B, out_dim]`` (see the module docstring).

    Args:
        sample_rate: training sample rate (metadata).
        base_channels: ``b``, channels of the full-resolution level.
        depth: ``D``, number of U-Net down/up-sampling levels.
        tail_blocks: ``E``, extra tail blocks after the skip-fed tail (>= 1; the last
            one maps to ``out_dim``).
        tail_channels: width of the extra tail blocks (default ``32 b``).
        out_dim: output dimension.
        clip_samples: recommended input length (default 3^10 = 59 049).
    """

    name = "tunep"

    def __init__(
        self,
        sample_rate: int = PAPER_SAMPLE_RATE,
        base_channels: int = TUNEP_BASE_CHANNELS,
        depth: int = TUNEP_DEPTH,
        tail_blocks: int = TUNEP_TAIL_BLOCKS,
        tail_channels: int | None = None,
        out_dim: int = EMBEDDING_DIM,
        clip_samples: int | None = PAPER_CLIP_SAMPLES,
    ) -> None:
        super().__init__()
        if base_channels < 1 or depth < 1 or tail_blocks < 1 or out_dim < 1:
            raise ValueError(
                "TUNePlus: base_channels, depth, tail_blocks and out_dim must all be >= 1; got "
                f"{base_channels}, {depth}, {tail_blocks}, {out_dim}."
            )
        b = base_channels
        self.sample_rate = int(sample_rate)
        self.base_channels = b
        self.depth = depth
        self.tail_blocks = tail_blocks
        self.tail_channels = int(tail_channels) if tail_channels is not None else TUNEP_TAIL_WIDTH_FACTOR * b
        self.out_dim = out_dim
        width = [b * 2**i for i in range(depth + 1)]

        self.encoder = nn.ModuleList([ConvBlock(1, width[0])])
        self.encoder.extend(ConvBlock(width[i - 1], width[i]) for i in range(1, depth + 1))
        # decoder level i (i = D-1 .. 0), stored in that order
        self.upsample = nn.ModuleList(
            nn.ConvTranspose1d(width[i + 1], width[i], kernel_size=RESAMPLE_FACTOR, stride=RESAMPLE_FACTOR)
            for i in reversed(range(depth))
        )
        self.decoder = nn.ModuleList(ConvBlock(2 * width[i], width[i]) for i in reversed(range(depth)))
        # skip-fed tail, level j = 1 .. D
        self.tail = nn.ModuleList(ConvBlock(width[j - 1] + width[j], width[j]) for j in range(1, depth + 1))
        extra_in = [width[depth]] + [self.tail_channels] * (tail_blocks - 1)
        extra_out = [self.tail_channels] * (tail_blocks - 1) + [out_dim]
        self.extra = nn.ModuleList(ConvBlock(i, o) for i, o in zip(extra_in, extra_out))
        self.clip_samples = self.min_samples if clip_samples is None else int(clip_samples)
        if self.clip_samples < self.min_samples:
            raise ValueError(
                f"TUNePlus: clip_samples={self.clip_samples} is below the minimum input "
                f"{self.min_samples} = 3^(depth + tail_blocks)."
            )

    @property
    def min_samples(self) -> int:
        """Smallest input that leaves one frame after the last tail pooling."""
        return RESAMPLE_FACTOR ** (self.depth + self.tail_blocks)

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that rebuild this encoder."""
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "base_channels": self.base_channels,
            "depth": self.depth,
            "tail_blocks": self.tail_blocks,
            "tail_channels": self.tail_channels,
            "out_dim": self.out_dim,
            "clip_samples": self.clip_samples,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a waveform batch ``[B, 1, T]`` into ``[B, out_dim]``."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"TUNePlus: expected [B, 1, T] (or [B, T]); got {tuple(x.shape)}.")
        if x.shape[-1] < self.min_samples:
            raise ValueError(
                f"TUNePlus: input has {x.shape[-1]} samples, fewer than the minimum {self.min_samples}."
            )
        pool = RESAMPLE_FACTOR
        skips = [self.encoder[0](x)]
        for block in self.encoder[1:]:
            skips.append(block(F.max_pool1d(skips[-1], pool)))
        levels = [skips[-1]]  # decoder outputs by level, deepest first (d_D = e_D)
        h = skips[-1]
        for k, (up, block) in enumerate(zip(self.upsample, self.decoder)):
            i = self.depth - 1 - k
            u = _match_length(up(h), skips[i].shape[-1])
            h = block(torch.cat([u, skips[i]], dim=1))
            levels.append(h)
        decoded = levels[::-1]  # decoded[j] = d_j, j = 0 .. D
        t = decoded[0]
        for j, block in enumerate(self.tail, start=1):
            p = F.max_pool1d(t, pool)
            t = block(torch.cat([p, _match_length(decoded[j], p.shape[-1])], dim=1))
        for block in self.extra:
            t = block(F.max_pool1d(t, pool))
        return t.mean(dim=-1)
