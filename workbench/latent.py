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
for key tasks), ``instrument`` (the instrument family, if the manifest has one), ``file`` and
``folder`` (the clip's file and sub-folder: what one's own audio has when it has no labels;
:func:`resolve_color_by` falls back to them). ``level="chunk"`` maps every chunk, with its
time in the track on hover; hover names files by their base name, never by absolute path.

Your own audio: ``embedding_frame(ckpt, "folder", split="all", root="my music/", level="chunk")``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

# Colourings, reducers and levels (a point per track, its chunks' mean as the probes see it,
# or a point per chunk) are also notebook parameters' choices: one list each, in params.
from .params import COLOR_BY, LEVELS, REDUCERS

__all__ = ["REDUCERS", "EXPLORER_TASKS", "COLOR_BY", "LEVELS", "reduce", "clip_table", "embedding_frame",
           "scatter_figure", "save_html", "save_png", "Explorer", "explorer", "batch_similarity", "PITCH_CLASSES",
           "category_colors", "pitch_class_colors", "resolve_color_by", "format_time", "save_maps", "explorer_tasks"]

#: Tasks the explorer offers besides the chosen one (the embedded benchmark's probe tasks).
EXPLORER_TASKS = ("nsynth_pitch", "nsynth_instrument", "giantsteps_key", "mtat_top50")
#: The ``folder`` value of clips at the top of the data root.
TOP_FOLDER = "(top)"
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
    """One row per clip of ``task``'s ``split`` (``"all"``: every clip): ``id``, ``path``,
    ``label`` (class name, or the first tag), ``labels`` (all names), ``pitch_class``,
    ``octave``, ``instrument`` (None where the task cannot tell), ``name`` (the file's base
    name), ``file`` (the id) and ``folder`` (the id's folder, :data:`TOP_FOLDER` at the top)."""
    from . import data

    spec = data.task(task, root)
    df = data.select_split(data.manifest(task, root), split)
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
                    "pitch_class": pitch_class, "octave": octave, "instrument": instrument,
                    **_file_columns(str(row["id"]), str(row["path"]))})
    return pd.DataFrame(out, columns=["id", "path", "label", "labels", "pitch_class", "octave", "instrument", "name",
                                      "file", "folder"])


def _file_columns(clip_id: str, path: str) -> dict[str, str]:
    """``name``, ``file`` and ``folder`` of a clip, from its id (a relative path for folders);
    an absolute id is shortened to its last folder and base name."""
    rel = PurePosixPath(clip_id)
    if rel.is_absolute():
        rel = PurePosixPath(Path(path).parent.name, Path(path).name)
    folder = rel.parent.as_posix()
    return {"name": rel.name, "file": rel.as_posix(), "folder": TOP_FOLDER if folder in ("", ".") else folder}


def format_time(seconds: float) -> str:
    """``m:ss.s`` (``h:mm:ss`` past an hour)."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    minutes, sec = divmod(float(seconds), 60.0)
    if minutes >= 60:
        hours, minutes = divmod(int(minutes), 60)
        return f"{hours}:{minutes:02d}:{int(sec):02d}"
    return f"{int(minutes)}:{sec:04.1f}"


def _chunk_times(emb, paths: Sequence[str]) -> np.ndarray:
    """Centre (seconds) of each chunk of ``emb`` in its track (:func:`workbench.embed.chunk_centres`
    of the track's length at the encoder's rate, read from the file's header)."""
    from .audio import info
    from .embed import chunk_centres

    sr, clip, hop, max_chunks = (emb.meta.get(k) for k in ("sample_rate", "clip_samples", "hop", "max_chunks"))
    times = np.zeros(emb.n_chunks, dtype=np.float64)
    for t, path in enumerate(paths):
        rows = np.flatnonzero(emb.track_index == t)
        meta = info(path)
        n = int(np.ceil(meta.frames * sr / meta.sample_rate))
        times[rows] = chunk_centres(n, clip, hop, max_chunks)[:len(rows)] / sr
    return times


def embedding_frame(checkpoint, task: str, *, split: str = "test", reducer: str = "tsne", seed: int = 0,
                    root: str | Path | None = None, max_points: int | None = DEFAULT_MAX_POINTS,
                    extract_kwargs: Mapping[str, Any] | None = None, progress: bool = False,
                    level: str = "track") -> pd.DataFrame:
    """Frozen embeddings of ``task``/``split`` reduced to 2-d: :func:`clip_table` plus
    columns ``x``, ``y`` and ``time`` (a chunk's centre in its track, seconds; NaN for tracks).

    level: ``track`` (one point per track, the mean of its chunks, as the probes see it) or
        ``chunk`` (one point per chunk).
    split: train, valid, test or ``"all"`` (every clip: a folder of one's own audio).
    max_points: keep a seeded random subset of at most this many points (t-SNE is O(n²)).
    """
    from .embed import extract

    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    emb = extract(checkpoint, task, split, root=root, progress=progress, **dict(extract_kwargs or {}))
    clips = clip_table(task, split, root).set_index("id").loc[emb.ids].reset_index()
    if level == "track":
        X = emb.track_mean()
        clips["time"] = np.nan
    else:
        X = emb.X
        times = _chunk_times(emb, clips["path"].tolist())
        clips = clips.iloc[emb.track_index].reset_index(drop=True)
        clips["time"] = times
    if max_points is not None and len(clips) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(clips), max_points, replace=False))
        X, clips = X[keep], clips.iloc[keep].reset_index(drop=True)
    xy = reduce(X, reducer, seed=seed)
    clips["x"], clips["y"] = xy[:, 0], xy[:, 1]
    clips.attrs.update({"task": task, "split": split, "reducer": reducer, "seed": seed, "level": level,
                        "synthetic": bool(emb.meta.get("synthetic", False)),
                        "checkpoint": str(checkpoint) if isinstance(checkpoint, (str, Path)) else None})
    return clips


def _has_values(frame: pd.DataFrame, color_by: str) -> bool:
    return color_by in frame.columns and not frame[color_by].isna().all()


def _color_values(frame: pd.DataFrame, color_by: str) -> pd.Series:
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {', '.join(COLOR_BY)}, got {color_by!r}")
    if color_by not in frame.columns:
        raise ValueError(f"the frame has no {color_by!r} column; build it with embedding_frame()")
    values = frame[color_by]
    if values.isna().all():
        instead = "label" if _has_values(frame, "label") else "file or folder"
        raise ValueError(f"task {frame.attrs.get('task', '?')} has no {color_by} information; "
                         f"colour by {instead} instead")
    return values.fillna("unknown").astype(str)


def resolve_color_by(frame: pd.DataFrame, color_by: str) -> str:
    """``color_by`` if the frame has that information, else ``label``, else ``folder`` (when
    the clips lie in several sub-folders), else ``file``: audio without labels is coloured
    by where it comes from."""
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {', '.join(COLOR_BY)}, got {color_by!r}")
    for choice in (color_by, "label"):
        if _has_values(frame, choice):
            return choice
    if "folder" in frame.columns and frame["folder"].nunique() > 1:
        return "folder"
    return "file"


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
    what = "chunks" if a.get("level") == "chunk" else a.get("split", "?")
    return f"{a.get('reducer', '?')} of {a.get('task', '?')} ({what}, {data}) coloured by {color_by}"


#: Columns of each point's ``customdata`` (the explorer plays ``path`` on click).
CUSTOM_COLUMNS = ("id", "path", "labels", "pitch_class", "octave", "instrument", "name", "folder", "at", "time")
#: Seconds played before a clicked chunk's centre.
CLICK_LEAD_S = 1.0


def scatter_figure(frame: pd.DataFrame, color_by: str = "label", title: str | None = None):
    """Plotly scatter of a 2-d map, one trace per colour category (colours from
    :func:`category_colors`); hovering shows the clip's base name and folder, its time in
    the track (chunk maps), labels, pitch class, octave and instrument. Each point's
    ``customdata`` holds :data:`CUSTOM_COLUMNS` (``[id, path, …]``: what :class:`Explorer`
    plays on click)."""
    import plotly.graph_objects as go

    values = _color_values(frame, color_by)
    frame = frame.copy()
    for col, default in (("name", None), ("folder", TOP_FOLDER), ("time", np.nan)):
        if col not in frame.columns:
            frame[col] = frame["id"].map(lambda i: PurePosixPath(str(i)).name) if col == "name" else default
    frame["at"] = frame["time"].map(format_time)
    chunks = frame["time"].notna().any()
    hover = ("<b>%{customdata[6]}</b>" + (" at %{customdata[8]}" if chunks else "")
             + "<br>folder: %{customdata[7]}<br>labels: %{customdata[2]}<br>pitch class: %{customdata[3]}, "
             "octave: %{customdata[4]}<br>instrument: %{customdata[5]}<extra></extra>")
    cats = _category_order(values, color_by)
    fig = go.Figure()
    for cat, color in zip(cats, category_colors(color_by, cats)):
        part = frame[values == cat]
        custom = part[list(CUSTOM_COLUMNS)].astype(object)
        fig.add_trace(go.Scattergl(x=part["x"], y=part["y"], mode="markers", name=cat,
                                   marker=dict(size=MARKER_SIZE, color=color),
                                   customdata=custom.where(custom.notna(), "–").to_numpy(), hovertemplate=hover))
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


# --------------------------------------------------------------------------- one palette (plotly and PNG)

#: Pitch classes sit on a hue circle in OKLCH (Ottosson 2020), perceptually even: one
#: lightness for all 12 (no class stands out), B next to C, each class its own colour, and
#: the largest chroma that keeps all 12 hues inside sRGB (relative luminance ≈ 0.3 on white).
PITCH_CLASS_LIGHTNESS = 0.65
PITCH_CLASS_CHROMA = 0.105
PITCH_CLASS_HUE0 = 25.0  # degrees: the hue of C
#: Octaves (sequential): this part of viridis (its last yellows are too pale on white).
SEQUENTIAL_MAP, SEQUENTIAL_RANGE = "viridis", (0.0, 0.85)
#: Other colourings: tab10 up to 10 categories, else an OKLCH hue circle alternating two lightnesses.
QUALITATIVE_MAP, QUALITATIVE_LIGHTNESS, QUALITATIVE_CHROMA = "tab10", (0.55, 0.72), 0.1
_OKLAB_TO_LMS = np.array([[1.0, 0.3963377774, 0.2158037573], [1.0, -0.1055613458, -0.0638541728],
                          [1.0, -0.0894841775, -1.2914855480]])
_LMS_TO_LINEAR_SRGB = np.array([[4.0767416621, -3.3077115913, 0.2309699292],
                                [-1.2684380046, 2.6097574011, -0.3413193965],
                                [-0.0041960863, -0.7034186147, 1.7076147010]])


def oklch_hex(lightness: float, chroma: float, hue_deg: float) -> str:
    """``#rrggbb`` of an OKLCH colour (clipped to sRGB)."""
    h = np.deg2rad(hue_deg)
    lab = np.array([lightness, chroma * np.cos(h), chroma * np.sin(h)])
    linear = np.clip(_LMS_TO_LINEAR_SRGB @ (_OKLAB_TO_LMS @ lab) ** 3, 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in np.clip(srgb, 0.0, 1.0))


def pitch_class_colors() -> dict[str, str]:
    """Pitch class -> colour: a cyclic palette, C next to B."""
    step = 360.0 / len(PITCH_CLASSES)
    return {pc: oklch_hex(PITCH_CLASS_LIGHTNESS, PITCH_CLASS_CHROMA, PITCH_CLASS_HUE0 + k * step)
            for k, pc in enumerate(PITCH_CLASSES)}


def category_colors(color_by: str, categories: Sequence[str]) -> list[str]:
    """The colour of each category, as ``#rrggbb``: the one palette of the plotly maps and the
    PNGs. Pitch classes cyclic, octaves sequential, anything else qualitative."""
    import matplotlib
    from matplotlib.colors import to_hex

    n = len(categories)
    if color_by == "pitch_class":
        wheel = pitch_class_colors()
        others = [c for c in categories if c not in wheel]
        rest = dict(zip(others, category_colors("label", others))) if others else {}
        return [wheel.get(c) or rest[c] for c in categories]
    if color_by == "octave":
        cmap, (lo, hi) = matplotlib.colormaps[SEQUENTIAL_MAP], SEQUENTIAL_RANGE
        return [to_hex(cmap(lo + (hi - lo) * k / max(n - 1, 1))) for k in range(n)]
    if n <= matplotlib.colormaps[QUALITATIVE_MAP].N:
        return [to_hex(matplotlib.colormaps[QUALITATIVE_MAP](k)) for k in range(n)]
    return [oklch_hex(QUALITATIVE_LIGHTNESS[k % 2], QUALITATIVE_CHROMA, PITCH_CLASS_HUE0 + 360.0 * k / n)
            for k in range(n)]


def save_png(frame: pd.DataFrame, path: str | Path, color_by: str = "label", title: str | None = None) -> Path:
    """A static PNG of the map with matplotlib (no browser needed)."""
    from . import figures  # noqa: F401  - selects the headless backend outside Jupyter
    import matplotlib.pyplot as plt

    values = _color_values(frame, color_by)
    cats = _category_order(values, color_by)
    fig, ax = plt.subplots(figsize=(7.0, 5.6))
    for cat, color in zip(cats, category_colors(color_by, cats)):
        part = frame[values == cat]
        ax.scatter(part["x"], part["y"], s=10, color=color, label=cat)
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


def save_maps(frame: pd.DataFrame, stem: str | Path, color_by: str, title: str | None = None):
    """The plotly map of ``frame`` and its two files, ``<stem>.html`` (interactive) and
    ``<stem>.png`` (static, the same palette): returns ``(figure, [html, png])``."""
    stem = Path(stem)
    title = title or _title(frame, color_by)
    fig = scatter_figure(frame, color_by, title=title)
    return fig, [save_html(fig, stem.with_name(stem.name + ".html")),
                 save_png(frame, stem.with_name(stem.name + ".png"), color_by, title=title)]


def explorer_tasks(task: str, root: str | Path | None = None) -> list[str]:
    """The tasks the explorer offers: ``task`` first, then the benchmark's probe tasks, or
    ``task`` alone when a data root is given (it is that task's data)."""
    return [task] if root is not None else list(dict.fromkeys([task, *EXPLORER_TASKS]))


# --------------------------------------------------------------------------- interactive explorer

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
        names = frame["name"] if "name" in frame.columns else frame["id"]
        self.clip_w.options = [("", "")] + list(dict.fromkeys(
            (f"{i} ({lab})" if lab is not None else str(i), p) for i, lab, p in zip(names, frame["label"],
                                                                                  frame["path"])))
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
            if self.interactive_clicks:
                display(shown)
            else:
                from .figures import show

                show(shown)  # the plotly figure with its static image

    def on_click(self, trace, points, state=None) -> None:
        """Plotly click callback: play the first clicked point's clip."""
        idx = list(getattr(points, "point_inds", []) or [])
        if not idx:
            return
        row = list(trace.customdata[idx[0]])
        name = row[CUSTOM_COLUMNS.index("name")] if len(row) > CUSTOM_COLUMNS.index("name") else row[0]
        time = row[CUSTOM_COLUMNS.index("time")] if len(row) > CUSTOM_COLUMNS.index("time") else None
        start = float(time) - CLICK_LEAD_S if isinstance(time, (int, float)) and np.isfinite(time) else 0.0
        self.play(row[1], str(name), start=max(0.0, start))

    def play(self, path: str, clip_id: str | None = None, start: float = 0.0) -> None:
        from IPython.display import display

        from .listen import player

        self.last_played = path
        self.audio_out.clear_output(wait=True)
        with self.audio_out:
            where = f" from {format_time(start)}" if start > 0 else ""
            print(f"playing {clip_id or Path(path).name}{where}")
            display(player(path, self.sample_rate, start=start, autoplay=True))


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
