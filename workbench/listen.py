"""Listening to and looking at clips: example picks, audio players and spectrograms
(``notebooks/01_data``).

    ex = examples("nsynth_pitch", n=4)              # id, path, split, label
    players(ex)                                     # ipywidgets: one audio player per clip
    spectrograms(ex, "figures/spectrograms.png")    # log-mel spectrograms, matplotlib
    player("a.wav", start=62.0)                     # one player from 1:02 (the latent maps' click)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["LISTEN_SAMPLE_RATE", "MAX_SECONDS", "examples", "players", "player", "log_mel", "spectrograms"]

#: Rate clips are decoded at for listening and spectrograms (the demo scale's rate).
LISTEN_SAMPLE_RATE = 16000
#: Longest excerpt played or drawn, in seconds.
MAX_SECONDS = 10.0
N_FFT = 1024
HOP = 256
N_MELS = 64
LOG_FLOOR = 1e-6


def examples(task: str, n: int = 4, split: str = "train", seed: int = 0,
             root: str | Path | None = None) -> pd.DataFrame:
    """``n`` clips of ``task``'s ``split`` (a seeded pick, different labels first), with a
    readable ``label`` column (class name, first tags, or "unlabelled")."""
    from . import data

    spec = data.task(task, root)
    df = data.manifest(task, root)
    part = data.select_split(df, split)  # "all": every clip
    if part.empty:
        raise ValueError(f"task {task} has no {split!r} clips (splits: {sorted(set(df['split']))})")
    part = part.sample(frac=1.0, random_state=seed)
    classes = list(spec.classes)

    def name(target) -> str:
        if target is None:
            return "unlabelled"
        if spec.kind == "multiclass":
            return classes[int(target)] if classes else str(target)
        if spec.kind == "multilabel":
            return ", ".join(classes[int(t)] if classes else str(t) for t in list(target)[:4])
        return ", ".join(f"{v:.2f}" for v in np.atleast_1d(target))

    part = part.assign(label=part["target"].map(name))
    first = part.drop_duplicates("label")  # one clip per label first, then the rest
    picked = pd.concat([first, part.drop(first.index)]).head(n)
    return picked[["id", "path", "split", "label"]].reset_index(drop=True)


def _read(path: str, sample_rate: int, start: float = 0.0) -> np.ndarray:
    """At most :data:`MAX_SECONDS` of ``path`` from ``start`` seconds (earlier if the file ends sooner)."""
    from .audio import info, read

    if start <= 0:
        x = read(path, sample_rate)
        return x[: int(MAX_SECONDS * sample_rate)]
    meta = info(path)
    window = min(MAX_SECONDS, meta.duration)
    return read(path, sample_rate, offset=max(0.0, min(start, meta.duration - window)),
                num_samples=max(1, int(window * sample_rate)), pad=True)


def player(path: str, sample_rate: int = LISTEN_SAMPLE_RATE, start: float = 0.0, autoplay: bool = False):
    """An IPython audio player for at most :data:`MAX_SECONDS` of ``path`` from ``start`` s."""
    from IPython.display import Audio

    return Audio(data=_read(path, sample_rate, start), rate=sample_rate, autoplay=autoplay)


def players(clips: pd.DataFrame, sample_rate: int = LISTEN_SAMPLE_RATE):
    """An ipywidgets box with one labelled audio player per clip (for JupyterLab)."""
    import ipywidgets as W
    from IPython.display import Audio, display

    boxes = []
    for _, row in clips.iterrows():
        out = W.Output()
        with out:
            display(Audio(data=_read(row["path"], sample_rate), rate=sample_rate))
        boxes.append(W.VBox([W.HTML(f"<b>{row['id']}</b> — {row['label']}"), out]))
    return W.VBox(boxes)


def log_mel(x: np.ndarray, sample_rate: int = LISTEN_SAMPLE_RATE) -> np.ndarray:
    """Log-mel spectrogram ``[N_MELS, frames]`` (dB) of a mono waveform."""
    import torch
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    spec = mel(torch.as_tensor(np.asarray(x, dtype=np.float32)))
    return (10.0 * torch.log10(spec + LOG_FLOOR)).numpy()


def spectrograms(clips: pd.DataFrame, path: str | Path | None = None, sample_rate: int = LISTEN_SAMPLE_RATE):
    """A matplotlib figure with the log-mel spectrogram of each clip; saved to ``path`` if
    given (then closed and the path returned), else returned for display."""
    from . import figures  # noqa: F401  - selects the headless backend outside Jupyter
    import matplotlib.pyplot as plt

    if clips.empty:
        raise ValueError("no clips to draw")
    n = len(clips)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 2.6), squeeze=False)
    for ax, (_, row) in zip(axes[0], clips.iterrows()):
        S = log_mel(_read(row["path"], sample_rate), sample_rate)
        seconds = S.shape[1] * HOP / sample_rate
        ax.imshow(S, origin="lower", aspect="auto", extent=(0, seconds, 0, N_MELS), cmap="magma")
        ax.set_title(f"{row['id']}\n{row['label']}", fontsize=7)
        ax.set_xlabel("s", fontsize=7)
        ax.set_ylabel("mel band", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    if path is None:
        return fig
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
