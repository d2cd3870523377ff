"""Looking inside the latent space: t-SNE / UMAP maps of frozen embeddings (SemiSupCon 5.5,
Figure 4), an interactive explorer for JupyterLab, and the similarity-vs-target matrices of
one training batch.

    frame = embedding_frame("runs/x/checkpoints/last.ckpt", "nsynth_pitch", reducer="tsne")
    fig = scatter_figure(frame, color_by="pitch_class")      # plotly; hover shows the clip id
    save_html(fig, "figures/latent.html")                    # self-contained (plotly.js inlined)
    save_png(frame, "figures/latent.png", color_by="octave") # static, matplotlib
    explorer({"semisupcon": ckpt}, ["nsynth_pitch"])         # ipywidgets; click a point to play it

Every map is deterministic for a given ``seed``. Colourings: ``label`` (the task's class,
or the first tag), ``pitch_class`` and ``octave`` (from a MIDI pitch column, or from the key
for key tasks), ``instrument`` (the instrument family, if the manifest has one).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["REDUCERS", "EXPLORER_TASKS", "COLOR_BY", "reduce", "clip_table", "embedding_frame", "scatter_figure",
           "save_html",
           "save_png", "Explorer", "explorer", "batch_similarity", "PITCH_CLASSES"]

REDUCERS = ("tsne", "umap", "pca")
#: Tasks the explorer offers besides the chosen one (the embedded benchmark's probe tasks).
EXPLORER_TASKS = ("nsynth_pitch", "nsynth_instrument", "giantsteps_key", "mtat_top50")
COLOR_BY = ("label", "pitch_class", "octave", "instrument")
PITCH_CLASSES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
SEMITONES_PER_OCTAVE = 12
#: MIDI note 12 is C0: octave = pitch // 12 - 1.
MIDI_OCTAVE_OFFSET = 1
#: t-SNE perplexity and UMAP neighbours, capped for small sets.
DEFAULT_PERPLEXITY = 30.0
DEFAULT_NEIGHBORS = 15
DEFAULT_MAX_POINTS = 2000
MARKER_SIZE = 6
TITLE_WIDTH = 80  # characters per line of a PNG title


# --------------------------------------------------------------------------- reductions

def reduce(X: np.ndarray, method: str = "tsne", seed: int = 0, n_components: int = 2, **kwargs: Any) -> np.ndarray:
    """Reduce ``X`` ``[n, d]`` to ``[n, n_components]`` with t-SNE, UMAP or PCA.

    Deterministic for a given ``seed``. Small sets are handled: the t-SNE perplexity is
    capped below ``(n - 1) / 3`` and the UMAP neighbourhood below ``n``. ``kwargs`` go to
    the reducer (e.g. ``perplexity=``, ``n_neighbors=``).
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"reduce: X must be [n, d], got shape {X.shape}")
    n = len(X)
    if method not in REDUCERS:
        raise ValueError(f"reduce: method must be one of {', '.join(REDUCERS)}, got {method!r}")
    if n < 3:
        raise ValueError(f"reduce: need at least 3 points to draw a map, got {n}")
    if method == "pca":
        from sklearn.decomposition import PCA

        k = min(n_components, X.shape[1], n)
        out = PCA(n_components=k, random_state=seed).fit_transform(X)
        if k < n_components:
            out = np.pad(out, ((0, 0), (0, n_components - k)))
        return out.astype(np.float32)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = kwargs.pop("perplexity", DEFAULT_PERPLEXITY)
        perplexity = float(min(perplexity, max(1.0, (n - 1) / 3.0 - 1e-3)))
        tsne = TSNE(n_components=n_components, perplexity=perplexity, init="pca", random_state=seed,
                    learning_rate="auto", **kwargs)
        return tsne.fit_transform(X).astype(np.float32)
    import warnings

    import umap

    neighbors = int(min(kwargs.pop("n_neighbors", DEFAULT_NEIGHBORS), n - 1))
    with warnings.catch_warnings():  # "n_jobs overridden by setting random_state" is what we ask for
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(n_components=n_components, n_neighbors=max(2, neighbors), random_state=seed,
                            init="spectral" if n > n_components + 1 else "random", **kwargs)
        return reducer.fit_transform(X).astype(np.float32)


# --------------------------------------------------------------------------- clip descriptions

def _pitch_of(row: pd.Series) -> int | None:
    value = row.get("pitch")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return int(value)


def clip_table(task: str, split: str = "test", root: str | Path | None = None) -> pd.DataFrame:
    """One row per clip of ``task``'s ``split``: ``id``, ``path``, ``label`` (class name, or
    the first tag), ``labels`` (all names), ``pitch_class``, ``octave``, ``instrument``
    (None where the task cannot tell)."""
    from . import data

    spec = data.task(task, root)
    df = data.manifest(task, root)
    df = df[df["split"] == split].reset_index(drop=True)
    classes = list(spec.classes)
    out = []
    for _, row in df.iterrows():
        target = row["target"]
        if spec.kind == "multiclass" and target is not None:
            names = [classes[int(target)] if classes else str(target)]
        elif spec.kind == "multilabel" and target is not None:
            names = [classes[int(t)] if classes else str(t) for t in target]
        elif spec.kind == "regression" and target is not None:
            names = [", ".join(f"{v:.2f}" for v in np.atleast_1d(target))]
        else:
            names = []
        pitch = _pitch_of(row)
        pitch_class = octave = None
        if pitch is not None:
            pitch_class = PITCH_CLASSES[pitch % SEMITONES_PER_OCTAVE]
            octave = str(pitch // SEMITONES_PER_OCTAVE - MIDI_OCTAVE_OFFSET)
        elif "key" in row and isinstance(row.get("key"), str):
            pitch_class = row["key"].split()[0]
        instrument = None
        family = row.get("instrument_family")
        if family is not None and not pd.isna(family):
            from .data.tasks import NSYNTH_FAMILIES

            fam = int(family)
            instrument = NSYNTH_FAMILIES[fam] if 0 <= fam < len(NSYNTH_FAMILIES) else str(fam)
        elif "instrument" in row and isinstance(row.get("instrument"), str):
            instrument = row["instrument"]
        out.append({"id": str(row["id"]), "path": str(row["path"]), "label": names[0] if names else None,
                    "labels": ", ".join(names[:6]) + (" …" if len(names) > 6 else ""),
                    "pitch_class": pitch_class, "octave": octave, "instrument": instrument})
    return pd.DataFrame(out, columns=["id", "path", "label", "labels", "pitch_class", "octave", "instrument"])


def embedding_frame(checkpoint, task: str, *, split: str = "test", reducer: str = "tsne", seed: int = 0,
                    root: str | Path | None = None, max_points: int | None = DEFAULT_MAX_POINTS,
                    extract_kwargs: Mapping[str, Any] | None = None, progress: bool = False) -> pd.DataFrame:
    """Track-level frozen embeddings of ``task``/``split`` (mean over each track's chunks,
    as the probes see them) reduced to 2-d: :func:`clip_table` plus columns ``x``, ``y``.

    max_points: keep a seeded random subset of at most this many clips (t-SNE is O(n²)).
    """
    from .embed import extract

    emb = extract(checkpoint, task, split, root=root, progress=progress, **dict(extract_kwargs or {}))
    X = emb.track_mean()
    clips = clip_table(task, split, root).set_index("id").loc[emb.ids].reset_index()
    if max_points is not None and len(clips) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(clips), max_points, replace=False))
        X, clips = X[keep], clips.iloc[keep].reset_index(drop=True)
    xy = reduce(X, reducer, seed=seed)
    clips["x"], clips["y"] = xy[:, 0], xy[:, 1]
    clips.attrs.update({"task": task, "split": split, "reducer": reducer, "seed": seed,
                        "synthetic": bool(emb.meta.get("synthetic", False)),
                        "checkpoint": str(checkpoint) if isinstance(checkpoint, (str, Path)) else None})
    return clips


def _color_values(frame: pd.DataFrame, color_by: str) -> pd.Series:
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {', '.join(COLOR_BY)}, got {color_by!r}")
    if color_by not in frame.columns:
        raise ValueError(f"the frame has no {color_by!r} column; build it with embedding_frame()")
    values = frame[color_by]
    if values.isna().all():
        raise ValueError(f"task {frame.attrs.get('task', '?')} has no {color_by} information; "
                         f"colour by label instead")
    return values.fillna("unknown").astype(str)


def _category_order(values: pd.Series, color_by: str) -> list[str]:
    cats = list(dict.fromkeys(values))
    if color_by == "pitch_class":
        return sorted(cats, key=lambda c: PITCH_CLASSES.index(c) if c in PITCH_CLASSES else 99)
    if color_by == "octave":
        return sorted(cats, key=lambda c: int(c) if c.lstrip("-").isdigit() else 99)
    return sorted(cats)


def _title(frame: pd.DataFrame, color_by: str) -> str:
    a = frame.attrs
    data = "synthetic data" if a.get("synthetic") else "real data"
    return f"{a.get('reducer', '?')} of {a.get('task', '?')} ({a.get('split', '?')}, {data}) coloured by {color_by}"


def scatter_figure(frame: pd.DataFrame, color_by: str = "label", title: str | None = None):
    """Plotly scatter of a 2-d map, one trace per colour category; hovering shows the clip
    id, its labels, pitch class, octave and instrument. Each point's ``customdata`` is
    ``[id, path]`` (what :class:`Explorer` plays on click)."""
    import plotly.graph_objects as go

    values = _color_values(frame, color_by)
    fig = go.Figure()
    for cat in _category_order(values, color_by):
        part = frame[values == cat]
        hover = ("%{customdata[0]}<br>labels: %{customdata[2]}<br>pitch class: %{customdata[3]}, "
                 "octave: %{customdata[4]}<br>instrument: %{customdata[5]}<extra></extra>")
        custom = part[["id", "path", "labels", "pitch_class", "octave", "instrument"]].astype(object)
        fig.add_trace(go.Scattergl(x=part["x"], y=part["y"], mode="markers", name=cat,
                                   marker=dict(size=MARKER_SIZE), customdata=custom.where(custom.notna(), "–")
                                   .to_numpy(), hovertemplate=hover))
    fig.update_layout(title=title or _title(frame, color_by), height=560, legend_title_text=color_by,
                      xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False))
    return fig


def save_html(fig, path: str | Path, play_on_click: bool = True) -> Path:
    """Write a self-contained HTML file (plotly.js inlined, no network needed). With
    ``play_on_click`` a click on a point plays its audio file (a ``file://`` link to the
    clip, so it plays on the machine holding the data)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    script = None
    if play_on_click:
        script = ("var gd = document.getElementById('{plot_id}'); var player = new Audio();"
                  "gd.on('plotly_click', function(ev) { var p = ev.points[0];"
                  " if (!p || !p.customdata) { return; } player.src = 'file://' + encodeURI(p.customdata[1]);"
                  " player.play().catch(function(e) { console.log(e); }); });")
    fig.write_html(str(path), include_plotlyjs=True, full_html=True, post_script=script)
    return path


def _category_color(color_by: str, k: int, n: int, cat: str = ""):
    """Pitch classes on a cyclic map (C next to B), octaves on a sequential one, others qualitative."""
    import matplotlib.pyplot as plt

    if color_by == "pitch_class" and cat in PITCH_CLASSES:
        return plt.get_cmap("twilight")(PITCH_CLASSES.index(cat) / len(PITCH_CLASSES))
    if color_by == "octave":
        return plt.get_cmap("viridis")(k / max(n - 1, 1))
    cmap = plt.get_cmap("tab20" if n > 10 else "tab10")
    return cmap(k % cmap.N)


def save_png(frame: pd.DataFrame, path: str | Path, color_by: str = "label", title: str | None = None) -> Path:
    """A static PNG of the map with matplotlib (no browser needed)."""
    from . import figures  # noqa: F401  - selects the headless backend outside Jupyter
    import matplotlib.pyplot as plt

    values = _color_values(frame, color_by)
    cats = _category_order(values, color_by)
    fig, ax = plt.subplots(figsize=(7.0, 5.6))
    for k, cat in enumerate(cats):
        part = frame[values == cat]
        ax.scatter(part["x"], part["y"], s=10, color=_category_color(color_by, k, len(cats), cat), label=cat)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(textwrap.fill(title or _title(frame, color_by), TITLE_WIDTH), fontsize=9)
    if len(cats) <= 24:
        ax.legend(fontsize=6, markerscale=1.2, ncol=2 if len(cats) > 12 else 1, loc="center left",
                  bbox_to_anchor=(1.0, 0.5), title=color_by, title_fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- interactive explorer

def _audio_widget(path: str, sample_rate: int):
    from IPython.display import Audio

    from .audio import read

    return Audio(data=read(path, sample_rate), rate=sample_rate, autoplay=True)


def _has_anywidget() -> bool:
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


class Explorer:
    """ipywidgets explorer: pick a checkpoint, task, reducer and colouring; the map is
    recomputed (frames are memoised); hover shows the clip; a click plays it.

    Clicks need plotly's ``FigureWidget``, which needs the ``anywidget`` package; without it
    the map is shown as a plain figure and a clip chooser below it plays the chosen clip.
    ``frame_fn(checkpoint, task, reducer)`` builds the frames (default: :func:`embedding_frame`).
    """

    def __init__(self, checkpoints: Mapping[str, str | Path], tasks: Sequence[str], *,
                 reducers: Sequence[str] = ("tsne", "umap"), color_by: str = "label", seed: int = 0,
                 split: str = "test", sample_rate: int = 16000, max_points: int | None = DEFAULT_MAX_POINTS,
                 frame_fn: Callable[[Any, str, str], pd.DataFrame] | None = None):
        import ipywidgets as W

        if not checkpoints:
            raise ValueError("Explorer needs at least one checkpoint ({label: path})")
        if not tasks:
            raise ValueError("Explorer needs at least one task")
        self.checkpoints = dict(checkpoints)
        self.seed, self.split, self.sample_rate, self.max_points = seed, split, sample_rate, max_points
        self.frame_fn = frame_fn or (lambda ckpt, task, reducer: embedding_frame(
            ckpt, task, split=split, reducer=reducer, seed=seed, max_points=max_points))
        self._frames: dict[tuple, pd.DataFrame] = {}
        self.model_w = W.Dropdown(options=list(self.checkpoints), description="checkpoint")
        self.task_w = W.Dropdown(options=list(tasks), description="task")
        self.reducer_w = W.Dropdown(options=list(reducers), description="reducer")
        self.color_w = W.Dropdown(options=list(COLOR_BY), value=color_by, description="colour by")
        self.status = W.HTML()
        self.audio_out = W.Output()
        self.clip_w = W.Dropdown(options=[], description="clip")
        self.interactive_clicks = _has_anywidget()
        self.figure = None
        self.plot_out = W.Output()
        for w in (self.model_w, self.task_w, self.reducer_w, self.color_w):
            w.observe(lambda change: self.refresh(), names="value")
        self.clip_w.observe(lambda change: change["new"] and self.play(change["new"]), names="value")
        controls = W.HBox([self.model_w, self.task_w, self.reducer_w, self.color_w])
        lower = [self.status, self.audio_out] if self.interactive_clicks else [self.status, self.clip_w, self.audio_out]
        self.widget = W.VBox([controls, self.plot_out, *lower])
        self.refresh()

    def frame(self) -> pd.DataFrame:
        key = (self.model_w.value, self.task_w.value, self.reducer_w.value)
        if key not in self._frames:
            self._frames[key] = self.frame_fn(self.checkpoints[key[0]], key[1], key[2])
        return self._frames[key]

    def refresh(self) -> None:
        from IPython.display import display

        try:
            frame = self.frame()
            fig = scatter_figure(frame, self.color_w.value)
        except (ValueError, FileNotFoundError, KeyError) as err:
            self.status.value = f"<b>{err}</b>"
            return
        self.status.value = (f"{len(frame)} clips. Hover a point for its id; "
                             + ("click it to listen." if self.interactive_clicks else
                                "pick it below to listen (install anywidget to click points)."))
        self.clip_w.options = [("", "")] + [(f"{i} ({lab})", p) for i, lab, p in
                                            zip(frame["id"], frame["label"], frame["path"])]
        if self.interactive_clicks:
            import plotly.graph_objects as go

            self.figure = go.FigureWidget(fig)
            for trace in self.figure.data:
                trace.on_click(self.on_click)
            shown = self.figure
        else:
            self.figure = fig
            shown = fig
        self.plot_out.clear_output(wait=True)
        with self.plot_out:
            display(shown)

    def on_click(self, trace, points, state=None) -> None:
        """Plotly click callback: play the first clicked point's clip."""
        idx = list(getattr(points, "point_inds", []) or [])
        if not idx:
            return
        clip_id, path = trace.customdata[idx[0]][0], trace.customdata[idx[0]][1]
        self.play(path, clip_id)

    def play(self, path: str, clip_id: str | None = None) -> None:
        from IPython.display import display

        self.last_played = path
        self.audio_out.clear_output(wait=True)
        with self.audio_out:
            print(f"playing {clip_id or Path(path).stem}")
            display(_audio_widget(path, self.sample_rate))


def explorer(checkpoints: Mapping[str, str | Path] | str | Path, tasks: Sequence[str] | str, **kwargs: Any):
    """Build an :class:`Explorer` and return its widget (display it in JupyterLab)."""
    if isinstance(checkpoints, (str, Path)):
        checkpoints = {Path(checkpoints).parents[1].name if len(Path(checkpoints).parents) > 1 else "model":
                       checkpoints}
    if isinstance(tasks, str):
        tasks = [tasks]
    return Explorer(checkpoints, tasks, **kwargs).widget


# --------------------------------------------------------------------------- one batch: similarity vs target

def batch_similarity(run_dir: str | Path, checkpoint: str | Path | None = None, seed: int = 0,
                     max_clips: int | None = None) -> dict[str, np.ndarray]:
    """The cosine similarities of one training batch's projected views and the target
    matrix the SemiSupCon loss pulls them towards (GUIDE 2.2).

    Draws one batch with the run's own data pipeline (same pool, p-subset, b_s and views),
    augments it with the run's chain, projects it with the trained encoder + head and
    returns ``{"similarity", "targets", "sample_ids", "labeled", "loss"}`` (M×M, M = clips
    × views, rows sorted labelled-first so label positives show as blocks).
    """
    import dataclasses

    import torch

    from .config import load_config
    from .train.run import load_checkpoint
    from .train.semisupcon import ContrastiveModule, build_dataloader

    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    ckpt = Path(checkpoint) if checkpoint else run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt} not found: the run saved no checkpoint yet")
    blob = load_checkpoint(ckpt)  # weights_only: a crafted checkpoint cannot run code
    config = dataclasses.replace(config, num_workers=0, steps=1, seed=seed,
                                 batch_size=min(config.batch_size, max_clips or config.batch_size))
    batch = next(iter(build_dataloader(config)))
    module = ContrastiveModule(blob["hyper_parameters"]["config"])
    module.load_state_dict(blob["state_dict"])
    module.eval()
    module.augment.train()
    torch.manual_seed(seed)
    with torch.no_grad():
        z, targets, loss, parts = module.step(batch)
        z = torch.nn.functional.normalize(z, dim=1)
        ids, labels = parts["sample_ids"], parts["labels"]
        labeled = (labels.sum(1) > 0) if labels is not None else torch.zeros(len(ids), dtype=torch.bool)
        loss = float(loss)
        order = torch.argsort((~labeled).int(), stable=True)
        sim = (z @ z.T)[order][:, order]
        targets = targets[order][:, order]
    return {"similarity": sim.numpy(), "targets": targets.numpy(), "sample_ids": ids[order].numpy(),
            "labeled": labeled[order].numpy(), "loss": np.float32(loss)}
