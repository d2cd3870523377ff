"""COLA encoder (Saeed et al. 2021) as used by the music source association (MSA) paper.

EfficientNet-B0 (torchvision, random init, stem adapted to one input channel) on a
64-band log-mel spectrogram (25 ms window, 10 ms hop) computed inside the module from the
waveform, global max-pool over frequency and time, and a linear layer to 512-d.
:class:`BilinearSimilarity` is COLA's learned similarity ``s(a, p) = a^T W p``, consumed
by :func:`workbench.losses.bilinear_contrastive_loss`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torchaudio
import torchvision

from .samplecnn import EMBEDDING_DIM

__all__ = ["COLAEncoder", "BilinearSimilarity", "COLA_SAMPLE_RATE", "COLA_N_MELS"]

#: COLA works on 16 kHz audio.
COLA_SAMPLE_RATE = 16000
COLA_N_MELS = 64
COLA_WINDOW_S = 0.025
COLA_HOP_S = 0.010
COLA_F_MIN = 60.0
COLA_F_MAX = 7800.0
#: Training segments are 1 s long (MSA paper).
COLA_CLIP_SECONDS = 1.0
#: Added to the mel power before the log.
LOG_OFFSET = 1e-6
#: Channels of EfficientNet-B0's stem convolution.
_STEM_CHANNELS = 32


class COLAEncoder(nn.Module):
    """Log-mel + EfficientNet-B0 encoder ``[B, 1, T] -> [B, out_dim]``.

    Args:
        sample_rate: input sample rate (16 kHz in COLA/MSA).
        n_mels: mel bands (64).
        window_s / hop_s: STFT window and hop in seconds (25 ms / 10 ms).
        f_min / f_max: mel range in Hz (``f_max`` capped at Nyquist).
        out_dim: embedding size (512).
        clip_samples: recommended input length (default 1 s).
    """

    name = "cola"

    def __init__(
        self,
        sample_rate: int = COLA_SAMPLE_RATE,
        n_mels: int = COLA_N_MELS,
        window_s: float = COLA_WINDOW_S,
        hop_s: float = COLA_HOP_S,
        f_min: float = COLA_F_MIN,
        f_max: float = COLA_F_MAX,
        out_dim: int = EMBEDDING_DIM,
        clip_samples: int | None = None,
    ) -> None:
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.n_mels = n_mels
        self.window_s = window_s
        self.hop_s = hop_s
        self.f_min = f_min
        self.f_max = min(f_max, sample_rate / 2)
        self.out_dim = out_dim
        win = int(round(window_s * sample_rate))
        hop = int(round(hop_s * sample_rate))
        if win < 2 or hop < 1:
            raise ValueError(f"COLAEncoder: window ({win}) and hop ({hop}) in samples are too small.")
        self.win_length = win
        self.hop_length = hop
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=win,
            win_length=win,
            hop_length=hop,
            f_min=f_min,
            f_max=self.f_max,
            n_mels=n_mels,
            power=2.0,
        )
        net = torchvision.models.efficientnet_b0(weights=None)
        stem = net.features[0][0]
        net.features[0][0] = nn.Conv2d(
            1, _STEM_CHANNELS, kernel_size=stem.kernel_size, stride=stem.stride, padding=stem.padding, bias=False
        )
        nn.init.kaiming_normal_(net.features[0][0].weight, mode="fan_out")
        self.features = net.features
        self.feature_dim = net.classifier[-1].in_features  # 1280
        self.proj = nn.Linear(self.feature_dim, out_dim)
        self.clip_samples = int(COLA_CLIP_SECONDS * sample_rate) if clip_samples is None else int(clip_samples)
        if self.clip_samples < self.min_samples:
            raise ValueError(f"COLAEncoder: clip_samples must be >= {self.min_samples}.")

    @property
    def min_samples(self) -> int:
        """One STFT window."""
        return self.win_length

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that rebuild this encoder."""
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "out_dim": self.out_dim,
            "clip_samples": self.clip_samples,
        }

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T]`` waveform -> ``[B, 1, n_mels, frames]`` log-mel (float32)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return torch.log(self.melspec(x.float()) + LOG_OFFSET)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a waveform batch ``[B, 1, T]`` into ``[B, out_dim]``."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"COLAEncoder: expected [B, 1, T] (or [B, T]); got {tuple(x.shape)}.")
        if x.shape[-1] < self.min_samples:
            raise ValueError(f"COLAEncoder: input needs at least {self.min_samples} samples; got {x.shape[-1]}.")
        h = self.features(self.log_mel(x))  # [B, 1280, F', T']
        return self.proj(h.amax(dim=(2, 3)))


class BilinearSimilarity(nn.Module):
    """COLA's learned bilinear similarity ``S = A W P^T`` (``W`` initialised to identity)."""

    def __init__(self, dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(dim))

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """``[B, D] x [B', D] -> [B, B']`` similarities."""
        return anchor @ self.weight @ positive.T
