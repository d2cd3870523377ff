"""SampleCNN (Lee et al. 2018, as used by CLMR and SemiSupCon): one parameterised family.

Architecture (paper member, 59 049 samples at 22.05 kHz)::

    stem   Conv1d(1 -> c0, k3, stride 3) + BN + ReLU                  (19 683 frames)
    blocks 9 x [Conv1d(c_{i-1} -> c_i, k3, pad 1) + BN + ReLU + MaxPool(3)]
           c = 128, 128, 256, 256, 256, 256, 256, 256, 512            (-> 1 frame)
    final  Conv1d(c_last -> 512, k3, pad 1) + BN + ReLU
    pool   mean over the remaining frames (length 1 for 3^10 = 59 049 and for 59 535)

Output ``[B, out_dim]``.  The minimum input is ``first_stride * pool**n_blocks`` samples
(for ``kernel == first_stride``); longer inputs work (frames are floored by the poolings,
the global mean absorbs the rest).

Two implementations share the *same parameters and state dict* (``impl`` can be switched
at any time, e.g. ``model.impl = "eager"``):

* ``"eager"``: the plain ``nn.Conv1d`` / ``BatchNorm1d`` / ``MaxPool1d`` network (the
  reference, identical to CLMR's module order).
* ``"fast"`` (default): the same weights run as ``conv2d`` on ``[B, C, 1, T]`` tensors in
  NHWC (``channels_last``) memory, where oneDNN's pooling and BatchNorm kernels are
  vectorised over channels (NCHW max-pool with a (1, 3) window is ~10x slower on CPU);
  the stem becomes a 1x1 convolution over the k taps of each frame (oneDNN's strided
  1-input-channel convolution backward is >10x slower); max-pool runs *before* the ReLU
  (``max(relu(x)) == relu(max(x))``, so the ReLU touches a third of the data, gradients
  identical); in-place ReLUs.  NHWC is also what cuDNN tensor cores want under bf16/fp16.
  On the CPU in float32, block convolutions over >= ``GEMM_BACKWARD_MIN_FRAMES`` frames
  (the paper config's first blocks) take their backward as GEMMs (:class:`_FrameConv`):
  oneDNN's NHWC weight gradient at 19 683 frames took 13x its forward and a third of the
  paper step (torch.profiler; ``benchmarks/encoder.py`` times the step).

Numerics: in float64 both paths agree to 1e-10 (``tests/models/test_models.py``).  In float32
the fast path's round-off is ~2e-5 relative (the eager one's ~2e-6; the NHWC BatchNorm
kernel sums less accurately).  As in any max-pool network, a window whose two largest
values differ by less than the round-off may select another argmax, which moves the
gradient of the layers below by up to a few percent for that step; both paths are equally
valid floating-point evaluations of the same function.

``benchmarks/encoder.py`` times both on the demo and paper configurations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "SampleCNN",
    "PAPER_SAMPLE_RATE",
    "PAPER_CHANNELS",
    "PAPER_CLIP_SAMPLES",
    "SEMISUPCON_CLIP_SAMPLES",
    "DEMO_SAMPLE_RATE",
    "DEMO_CHANNELS",
    "DEMO_CLIP_SAMPLES",
    "EMBEDDING_DIM",
    "IMPLS",
]

#: CLMR / SemiSupCon sample rate.
PAPER_SAMPLE_RATE = 22050
#: Channels of the nine SampleCNN blocks (CLMR).
PAPER_CHANNELS: tuple[int, ...] = (128, 128, 256, 256, 256, 256, 256, 256, 512)
#: CLMR input length, 3^10 samples (2.68 s at 22.05 kHz).
PAPER_CLIP_SAMPLES = 3**10
#: SemiSupCon input length, int(2.7 * 22050).
SEMISUPCON_CLIP_SAMPLES = int(2.7 * PAPER_SAMPLE_RATE)
#: Demo member: 16 kHz, seven narrower blocks, 3^8 = 6 561 samples (~0.41 s).
DEMO_SAMPLE_RATE = 16000
DEMO_CHANNELS: tuple[int, ...] = (32, 32, 64, 64, 64, 128, 128)
DEMO_CLIP_SAMPLES = 3**8
#: Encoder output dimension (paper and demo).
EMBEDDING_DIM = 512
#: Available implementations.
IMPLS = ("fast", "eager")
DEFAULT_KERNEL = 3
DEFAULT_POOL = 3
DEFAULT_FIRST_STRIDE = 3
#: From this many frames on, the fast path's block convolutions on the CPU (float32/64, no
#: autocast) compute their backward as GEMMs (:class:`_FrameConv`): oneDNN's NHWC
#: backward-weights kernel at the paper's 19 683 frames took 13x its forward.
GEMM_BACKWARD_MIN_FRAMES = 4096


def _batch_norm(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """Apply ``bn`` (its parameters, buffers and momentum rules) to an N-D input.

    Mirrors ``torch.nn.modules.batchnorm._BatchNorm.forward`` so that running statistics
    and ``num_batches_tracked`` evolve exactly as with the module itself, but accepts the
    4-D ``[B, C, 1, T]`` tensors of the fast path.  In eval mode the running statistics
    are used and never updated.  Subclasses (e.g. ``nn.SyncBatchNorm`` after
    ``convert_sync_batchnorm``) are called as modules so that their own logic (cross-device
    statistics) applies.
    """
    if type(bn) is not nn.BatchNorm1d:
        return bn(x)
    if bn.momentum is None:
        eaf = 0.0
    else:
        eaf = bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            eaf = 1.0 / float(bn.num_batches_tracked)
    bn_training = bn.training or (bn.running_mean is None and bn.running_var is None)
    use_running = not bn.training or bn.track_running_stats
    return F.batch_norm(
        x,
        bn.running_mean if use_running else None,
        bn.running_var if use_running else None,
        bn.weight,
        bn.bias,
        bn_training,
        eaf,
        bn.eps,
    )


class _FrameConv(torch.autograd.Function):
    """``conv2d(x, w, b, padding=(0, k // 2))`` on ``[B, C, 1, T]`` channels-last tensors
    (stride 1), forward by oneDNN, backward as plain GEMMs:

    * weight: for each tap j, ``grad_w[:, :, j] = sum_b g_b^T @ x_pad[b, j:j+T]`` (a batched
      GEMM over NHWC views, no im2col copy);
    * input: the same convolution of ``g`` with the kernel flipped and its channels swapped
      (oneDNN's forward kernel);
    * bias: ``g`` summed over batch and frames.

    Same function, other summation order: float64 agrees with the eager path to 1e-10.
    """

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return F.conv2d(x, w, b, padding=(0, w.shape[-1] // 2))

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        k = w.shape[-1]
        pad = k // 2
        grad_x = grad_w = grad_b = None
        g = g.contiguous(memory_format=torch.channels_last)
        bsz, c_out, _, t = g.shape
        g_btc = g.permute(0, 2, 3, 1).reshape(bsz, t, c_out)  # a view of the NHWC memory
        if ctx.needs_input_grad[0]:
            w_flip = w.transpose(0, 1).flip(-1).contiguous(memory_format=torch.channels_last)
            grad_x = F.conv2d(g, w_flip, None, padding=(0, pad))
        if ctx.needs_input_grad[1]:
            x_btc = F.pad(x.permute(0, 2, 3, 1).reshape(bsz, t, -1), (0, 0, pad, pad))  # [B, T + 2p, C_in]
            g_cbt = g_btc.transpose(1, 2)  # [B, C_out, T]
            taps = [torch.bmm(g_cbt, x_btc[:, j:j + t]).sum(0) for j in range(k)]  # k x [C_out, C_in]
            grad_w = torch.stack(taps, -1).unsqueeze(2)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g_btc.sum((0, 1))
        return grad_x, grad_w, grad_b


def _use_gemm_backward(h: torch.Tensor) -> bool:
    return (h.device.type == "cpu" and h.dtype in (torch.float32, torch.float64) and torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu") and h.shape[-1] >= GEMM_BACKWARD_MIN_FRAMES)


class SampleCNN(nn.Module):
    """SampleCNN encoder ``[B, 1, T] -> [B, out_dim]`` (see the module docstring).

    Args:
        sample_rate: sample rate the encoder is trained at (metadata for data pipelines).
        n_blocks: number of conv + pool blocks; must equal ``len(channels)``.
        channels: output channels of the blocks (the stem outputs ``channels[0]``).
        first_stride: stride (and kernel) of the stem convolution.
        kernel: kernel size of the convolutions.
        pool: max-pool size (and stride) of each block.
        out_dim: output dimension (channels of the final convolution).
        dropout: dropout on the output embedding (0 = none).
        clip_samples: recommended input length (default: the minimum, ``min_samples``).
        impl: ``"fast"`` or ``"eager"`` (same parameters, see the module docstring).
    """

    name = "samplecnn"

    def __init__(
        self,
        sample_rate: int = PAPER_SAMPLE_RATE,
        n_blocks: int | None = None,
        channels: Sequence[int] = PAPER_CHANNELS,
        first_stride: int = DEFAULT_FIRST_STRIDE,
        kernel: int = DEFAULT_KERNEL,
        pool: int = DEFAULT_POOL,
        out_dim: int = EMBEDDING_DIM,
        dropout: float = 0.0,
        clip_samples: int | None = None,
        impl: str = "fast",
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if n_blocks is None:
            n_blocks = len(channels)
        if n_blocks < 1 or len(channels) != n_blocks:
            raise ValueError(
                f"SampleCNN: n_blocks={n_blocks} must be >= 1 and equal len(channels)={len(channels)}; "
                "pass a channel list with one entry per block."
            )
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"SampleCNN: kernel must be odd and >= 1 (same padding); got {kernel}.")
        if pool < 1 or first_stride < 1 or out_dim < 1 or min(channels) < 1:
            raise ValueError("SampleCNN: pool, first_stride, out_dim and channels must be >= 1.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"SampleCNN: dropout must be in [0, 1); got {dropout}.")
        self.sample_rate = int(sample_rate)
        self.n_blocks = n_blocks
        self.channels = channels
        self.first_stride = first_stride
        self.kernel = kernel
        self.pool = pool
        self.out_dim = out_dim
        self.dropout_p = float(dropout)
        self.impl = impl
        #: fast path memory format: NHWC (fast pooling on CPU, tensor-core friendly on GPU).
        self.channels_last = True

        self.stem = nn.Conv1d(1, channels[0], kernel_size=kernel, stride=first_stride)
        self.stem_bn = nn.BatchNorm1d(channels[0])
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        c_in = channels[0]
        for c_out in channels:
            self.convs.append(nn.Conv1d(c_in, c_out, kernel_size=kernel, padding=kernel // 2))
            self.bns.append(nn.BatchNorm1d(c_out))
            c_in = c_out
        self.final = nn.Conv1d(c_in, out_dim, kernel_size=kernel, padding=kernel // 2)
        self.final_bn = nn.BatchNorm1d(out_dim)
        self.dropout = nn.Dropout(dropout)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):  # He initialisation (CLMR)
                nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")

        self.clip_samples = self.min_samples if clip_samples is None else int(clip_samples)
        if self.clip_samples < self.min_samples:
            raise ValueError(
                f"SampleCNN: clip_samples={self.clip_samples} is below the minimum input "
                f"{self.min_samples} (= first_stride * pool**n_blocks + kernel - first_stride)."
            )

    # ------------------------------------------------------------------ configuration
    @property
    def impl(self) -> str:
        """Implementation used by ``forward``: ``"fast"`` or ``"eager"``."""
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in IMPLS:
            raise ValueError(f"SampleCNN: impl must be one of {IMPLS}; got {value!r}.")
        self._impl = value

    @property
    def min_samples(self) -> int:
        """Smallest input length that leaves one frame after the last pooling."""
        return self.first_stride * self.pool**self.n_blocks + self.kernel - self.first_stride

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that rebuild this encoder."""
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "n_blocks": self.n_blocks,
            "channels": list(self.channels),
            "first_stride": self.first_stride,
            "kernel": self.kernel,
            "pool": self.pool,
            "out_dim": self.out_dim,
            "dropout": self.dropout_p,
            "clip_samples": self.clip_samples,
            "impl": self.impl,
        }

    @classmethod
    def demo(cls, **overrides: Any) -> "SampleCNN":
        """The demo member: 16 kHz, 7 blocks of 32 -> 128 channels, 6 561 samples."""
        kw: dict[str, Any] = dict(
            sample_rate=DEMO_SAMPLE_RATE,
            channels=DEMO_CHANNELS,
            out_dim=EMBEDDING_DIM,
            clip_samples=DEMO_CLIP_SAMPLES,
        )
        kw.update(overrides)
        return cls(**kw)

    # ------------------------------------------------------------------ analysis
    def layer_shapes(self, num_samples: int | None = None) -> list[dict[str, int]]:
        """Per convolution: ``c_in, c_out, kernel, frames_out`` for an input length."""
        t = self.clip_samples if num_samples is None else int(num_samples)
        frames = (t - self.kernel) // self.first_stride + 1
        shapes = [dict(c_in=1, c_out=self.channels[0], kernel=self.kernel, frames=frames)]
        c_in = self.channels[0]
        for c_out in self.channels:
            shapes.append(dict(c_in=c_in, c_out=c_out, kernel=self.kernel, frames=frames))
            frames //= self.pool
            c_in = c_out
        shapes.append(dict(c_in=c_in, c_out=self.out_dim, kernel=self.kernel, frames=frames))
        return shapes

    def forward_flops(self, num_samples: int | None = None) -> int:
        """Convolution FLOPs (2 per multiply-add) of one forward pass of ONE example."""
        return sum(2 * s["c_in"] * s["c_out"] * s["kernel"] * s["frames"] for s in self.layer_shapes(num_samples))

    def training_flops(self, batch: int, num_samples: int | None = None) -> int:
        """Convolution FLOPs of forward + backward for a batch.

        Backward = gradient w.r.t. the weights (same cost as forward) for every
        convolution plus the gradient w.r.t. the input for all but the stem (its input is
        the waveform, which needs no gradient).  BN/ReLU/pool/Adam are O(elements) and
        not counted.
        """
        shapes = self.layer_shapes(num_samples)
        per = [2 * s["c_in"] * s["c_out"] * s["kernel"] * s["frames"] for s in shapes]
        return batch * (sum(per) * 2 + sum(per[1:]))

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(
                f"SampleCNN: expected a mono waveform batch [B, 1, T] (or [B, T]); got {tuple(x.shape)}."
            )
        if x.shape[-1] < self.min_samples:
            raise ValueError(
                f"SampleCNN: input has {x.shape[-1]} samples, fewer than the minimum "
                f"{self.min_samples} for this configuration (recommended {self.clip_samples})."
            )
        return x

    def _forward_eager(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem_bn(self.stem(x)))
        for conv, bn in zip(self.convs, self.bns):
            h = F.max_pool1d(F.relu(bn(conv(h))), self.pool)
        h = F.relu(self.final_bn(self.final(h)))
        return h.mean(dim=-1)

    def _forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        # Stem: the k taps of each (strided) frame become k input channels of a 1x1
        # convolution.  [B, L, k] frames are already the NHWC memory of [B, k, 1, L].
        # (oneDNN's 1-input-channel strided convolution backward is >10x slower.)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        frames = x[:, 0].unfold(-1, self.kernel, self.first_stride)  # [B, L, k]
        frames = frames.permute(0, 2, 1).unsqueeze(2).contiguous(memory_format=memory_format)
        stem_w = self.stem.weight.view(self.stem.out_channels, self.kernel, 1, 1)
        h = F.conv2d(frames, stem_w, self.stem.bias)  # [B, C, 1, L]
        pad = (0, self.kernel // 2)
        h = F.relu_(_batch_norm(self.stem_bn, h))
        for conv, bn in zip(self.convs, self.bns):
            if _use_gemm_backward(h):
                h = _FrameConv.apply(h, conv.weight.unsqueeze(2), conv.bias)
            else:
                h = F.conv2d(h, conv.weight.unsqueeze(2), conv.bias, padding=pad)
            h = F.relu_(F.max_pool2d(_batch_norm(bn, h), (1, self.pool)))
        h = F.conv2d(h, self.final.weight.unsqueeze(2), self.final.bias, padding=pad)
        h = F.relu_(_batch_norm(self.final_bn, h))
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a waveform batch ``[B, 1, T]`` into ``[B, out_dim]``."""
        x = self._check_input(x)
        h = self._forward_fast(x) if self._impl == "fast" else self._forward_eager(x)
        return self.dropout(h)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, clip_samples={self.clip_samples}, "
            f"receptive_min={self.min_samples}, impl={self.impl!r}"
        )

