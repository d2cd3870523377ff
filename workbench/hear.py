"""The HEAR 2021 API (Turian et al. 2022) for any encoder :func:`workbench.models.load_encoder` reads.

Use the module name ``workbench.hear`` wherever a HEAR module is expected (``hear-validator``,
``hear-eval-kit``)::

    model = load_model("runs/demo/pretrain/checkpoints/last.ckpt")   # or a CLMR/SemiSupCon file
    scene = get_scene_embeddings(audio, model)              # [n_sounds, D] float32
    emb, ts = get_timestamp_embeddings(audio, model)        # [n_sounds, n_frames, D], [n_sounds, n_frames] ms

``audio`` is a ``[n_sounds, n_samples]`` float tensor at ``model.sample_rate`` in [-1, 1]
(any length, including shorter than the encoder's receptive field).

Timestamp embeddings: frame ``k`` is the encoder's embedding of the window of
``model.window_samples`` (the encoder's ``clip_samples``) samples *centred* on sample
``k * hop`` (zero padding beyond the clip edges; for an odd window the centre is its
middle sample), ``k = 0 .. n_samples // hop``: timestamps ``k * hop / sample_rate`` in
milliseconds, regular, from 0 to at most the clip's duration.  The hop is
:data:`DEFAULT_HOP_MS` (50 ms, the largest HEAR accepts) rounded *down* to whole samples
(e.g. 1 102 samples = 49.98 ms at 22.05 kHz); ``load_model(..., hop_ms=...)`` changes it.

Scene embeddings: the workbench track embedding, i.e. the mean of the embeddings of the
non-overlapping windows :func:`workbench.embed.chunk_starts` cuts (a clip shorter than one
window is zero-padded at the end), so HEAR scene tasks see what the workbench probes see.

Deterministic and batch-independent: the encoder stays in eval mode (BatchNorm running
statistics; ``model.train()`` is a no-op), and each sound's windows are embedded in
mini-batches that depend on that sound's length only, so a sound's embeddings do not
depend on the other sounds of the call.  Windows are strided views of the padded audio,
embedded :data:`DEFAULT_BATCH_SAMPLES` samples at a time (a few hundred demo windows per
forward pass; the paper encoder's 2.7 s windows ~35 at a time).
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "HearModel",
    "load_model",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "frame_count",
    "DEFAULT_HOP_MS",
    "DEFAULT_BATCH_SAMPLES",
    "HEAR_SAMPLE_RATES",
]

#: Hop between timestamp embeddings (HEAR asks for <= 50 ms).
DEFAULT_HOP_MS = 50.0
#: Audio samples embedded per forward pass (windows per batch = this // window length).
DEFAULT_BATCH_SAMPLES = 2**21
#: Sample rates the HEAR 2021 validator accepts.
HEAR_SAMPLE_RATES = (16000, 22050, 44100, 48000)
_MS = 1000.0


class HearModel(nn.Module):
    """A frozen workbench encoder with the HEAR model attributes.

    Attributes: ``sample_rate``, ``scene_embedding_size``, ``timestamp_embedding_size``
    (the encoder's ``out_dim``), ``window_samples``, ``hop_samples``, ``batch_windows``,
    ``meta`` (what ``load_encoder`` returned).
    """

    def __init__(self, encoder: nn.Module, meta: dict | None = None, hop_ms: float = DEFAULT_HOP_MS,
                 batch_samples: int = DEFAULT_BATCH_SAMPLES) -> None:
        super().__init__()
        for attr in ("sample_rate", "clip_samples", "out_dim"):
            if getattr(encoder, attr, None) is None:
                raise ValueError(f"HearModel: the encoder has no `{attr}`; use an encoder from workbench.models.")
        if not 0 < hop_ms <= DEFAULT_HOP_MS:
            raise ValueError(f"HearModel: hop_ms must be in (0, {DEFAULT_HOP_MS}] (HEAR's 50 ms tolerance); "
                             f"got {hop_ms}.")
        self.encoder = encoder.eval()
        self.meta = dict(meta or {})
        self.sample_rate = int(encoder.sample_rate)
        self.window_samples = int(encoder.clip_samples)
        self.hop_samples = max(1, int(hop_ms * self.sample_rate / _MS))
        self.batch_windows = max(1, int(batch_samples) // self.window_samples)
        self.scene_embedding_size = int(encoder.out_dim)
        self.timestamp_embedding_size = int(encoder.out_dim)

    def train(self, mode: bool = True) -> "HearModel":
        """No-op: a HEAR model is frozen (BatchNorm keeps its running statistics)."""
        return super().train(False)

    @property
    def hop_ms(self) -> float:
        """Hop between timestamps in milliseconds."""
        return self.hop_samples * _MS / self.sample_rate

    def _device(self) -> torch.device:
        p = next(self.encoder.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """``[n, window_samples]`` (a view is fine) -> ``[n, D]`` float32, in fixed mini-batches."""
        out = []
        for i in range(0, windows.shape[0], self.batch_windows):
            chunk = windows[i:i + self.batch_windows].contiguous().unsqueeze(1)
            out.append(self.encoder(chunk).float())
        return torch.cat(out) if out else windows.new_zeros((0, self.timestamp_embedding_size))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Scene embeddings (the same as :func:`get_scene_embeddings`)."""
        return get_scene_embeddings(audio, self)


def load_model(model_file_path: str = "", hop_ms: float = DEFAULT_HOP_MS,
               batch_samples: int = DEFAULT_BATCH_SAMPLES) -> HearModel:
    """HEAR ``load_model``: any checkpoint :func:`workbench.models.load_encoder` reads."""
    from .models import load_encoder

    if not model_file_path:
        raise ValueError("workbench.hear.load_model: pass a checkpoint path (a workbench run's "
                         "checkpoints/last.ckpt, a save_encoder() .pt/.safetensors file, or an official "
                         "CLMR/SemiSupCon checkpoint); there are no default weights.")
    encoder, meta = load_encoder(os.fspath(model_file_path), map_location="cpu")
    model = HearModel(encoder, meta, hop_ms=hop_ms, batch_samples=batch_samples)
    if model.sample_rate not in HEAR_SAMPLE_RATES:
        raise ValueError(f"workbench.hear.load_model: {model_file_path} is an encoder at {model.sample_rate} Hz; "
                         f"HEAR accepts {HEAR_SAMPLE_RATES}.")
    return model


def _check(audio: torch.Tensor, model: HearModel, fn: str) -> torch.Tensor:
    if not isinstance(model, HearModel):
        raise TypeError(f"workbench.hear.{fn}: model must come from workbench.hear.load_model; "
                        f"got {type(model).__name__}.")
    if not isinstance(audio, torch.Tensor):
        raise TypeError(f"workbench.hear.{fn}: audio must be a torch.Tensor [n_sounds, n_samples]; "
                        f"got {type(audio).__name__}.")
    if audio.dim() != 2:
        raise ValueError(f"workbench.hear.{fn}: audio must be [n_sounds, n_samples] (mono, at "
                         f"{model.sample_rate} Hz); got shape {tuple(audio.shape)}.")
    if not torch.is_floating_point(audio):
        raise ValueError(f"workbench.hear.{fn}: audio must be floating point in [-1, 1]; got {audio.dtype}.")
    if audio.numel() and not bool(torch.isfinite(audio).all()):
        raise ValueError(f"workbench.hear.{fn}: audio holds NaN or infinite samples.")
    return audio.to(device=model._device(), dtype=torch.float32)


def frame_count(n_samples: int, hop_samples: int) -> int:
    """Number of timestamp frames for a clip: centres ``0, hop, ..`` up to ``n_samples``."""
    return n_samples // hop_samples + 1


@torch.no_grad()
def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR ``get_timestamp_embeddings``: ``([n_sounds, n_frames, D], [n_sounds, n_frames] ms)``."""
    x = _check(audio, model, "get_timestamp_embeddings")
    n_sounds, n = x.shape
    w, hop = model.window_samples, model.hop_samples
    n_frames = frame_count(n, hop)
    left = w // 2
    padded = F.pad(x, (left, w - left))  # window k covers original samples [k*hop - w//2, k*hop - w//2 + w)
    emb = torch.empty((n_sounds, n_frames, model.timestamp_embedding_size), dtype=torch.float32, device=x.device)
    for i in range(n_sounds):
        windows = padded[i].unfold(0, w, hop)[:n_frames]  # strided view [n_frames, w]
        emb[i] = model.embed_windows(windows)
    ts = torch.arange(n_frames, dtype=torch.float64) * (hop * _MS / model.sample_rate)
    ts = ts.to(torch.float32).expand(n_sounds, n_frames).contiguous().to(x.device)
    return emb.to(audio.device), ts.to(audio.device)


@torch.no_grad()
def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """HEAR ``get_scene_embeddings``: ``[n_sounds, D]`` float32 (mean of non-overlapping windows)."""
    from .embed import chunk_starts

    x = _check(audio, model, "get_scene_embeddings")
    w = model.window_samples
    if x.shape[1] < w:
        x = F.pad(x, (0, w - x.shape[1]))
    n_windows = len(chunk_starts(x.shape[1], w))  # non-overlapping: starts 0, w, 2w, ...
    out = torch.empty((x.shape[0], model.scene_embedding_size), dtype=torch.float32, device=x.device)
    for i in range(x.shape[0]):
        out[i] = model.embed_windows(x[i].unfold(0, w, w)[:n_windows]).mean(0)
    return out.to(audio.device)
