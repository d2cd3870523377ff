"""Notebooks that can be shared: every plotly figure carries a static PNG of itself
(``figures.show`` / ``figures.static_png``), progress bars are text unless a Jupyter front end
is attached (``workbench.progress``), and the maps' one palette is distinct and visible on white.
(The executed notebooks themselves are checked in ``test_notebooks.py``.)"""

from __future__ import annotations

import base64
import io

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from workbench import figures, latent, progress

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pixels(png: bytes) -> np.ndarray:
    assert png[:8] == PNG_MAGIC
    return matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]


def _has_colour(img: np.ndarray, hex_colour: str, tol: float = 3 / 255) -> bool:
    rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return bool((np.abs(img - rgb).max(-1) <= tol).any())


# --------------------------------------------------------------------------- static images of plotly figures

def test_static_png_draws_the_figures_own_data():
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("left", "right"))
    fig.add_trace(go.Scatter(x=np.arange(5), y=np.arange(5.0), mode="lines", name="up",
                             line=dict(color="#d62728")), 1, 1)
    fig.add_trace(go.Heatmap(z=np.array([[0.0, 1.0], [1.0, 0.0]]), zmin=0, zmax=1, colorscale="Greys"), 1, 2)
    img = _pixels(figures.static_png(fig))
    assert _has_colour(img, "#d62728")  # the line, in its own colour
    h, w = img.shape[:2]
    right = img[:, w // 2:]
    assert (right.max(-1) < 0.05).mean() > 0.05 and (right.min(-1) > 0.95).mean() > 0.3  # black and white cells
    # plotly 6 stores numpy arrays as typed base64 arrays in the figure's dict: decoded as numbers
    np.testing.assert_array_equal(figures._array(fig.to_dict()["data"][1]["z"]), [[0.0, 1.0], [1.0, 0.0]])


def test_every_notebook_figure_has_a_static_image(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame({"step": [0, 10, 20], "loss": [5.0, 4.0, 3.5], "loss_ssl": [4.0, 3.5, 3.0],
                  "loss_label": [1.0, 0.5, 0.5], "positive_fraction": [0.1, 0.1, 0.1]}).to_csv(run / "metrics.csv")
    rng = np.random.default_rng(0)
    rows = [{"model": m, "task": "nsynth_pitch", "metric": "accuracy", "mean": v, "std": 0.01}
            for m, v in (("ssl", 0.4), ("semi", 0.6))]
    frame = pd.DataFrame({"id": [f"a/{i}.wav" for i in range(12)], "path": [f"/x/a/{i}.wav" for i in range(12)],
                          "label": None, "labels": "", "pitch_class": list(latent.PITCH_CLASSES), "octave": None,
                          "instrument": None, "x": rng.normal(size=12), "y": rng.normal(size=12)})
    made = [figures.loss_curves(run), figures.similarity_heatmaps(rng.uniform(-1, 1, (4, 4)), np.eye(4)),
            figures.probe_bar_chart(rows), latent.scatter_figure(frame, "pitch_class")]
    for fig in made:
        img = _pixels(figures.static_png(fig))
        assert (img.max(-1) < 0.9).mean() > 0.005, "the static image is blank"
        for trace in fig.data:  # every trace colour the figure sets is in the image
            colour = getattr(getattr(trace, "marker", None), "color", None)
            if isinstance(colour, str) and colour.startswith("#"):
                assert _has_colour(img, colour), colour


def test_show_puts_the_png_beside_the_plotly_figure(monkeypatch):
    import IPython.display
    import plotly.graph_objects as go

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout=dict(title="bars"))
    figures.show(fig)
    (bundle, raw), = shown
    assert raw and {"application/vnd.plotly.v1+json", "image/png", "text/plain"} <= set(bundle)
    assert "text/html" not in bundle  # nbconvert would prefer it over the image
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["type"] == "bar"
    assert base64.b64decode(bundle["image/png"])[:8] == PNG_MAGIC
    figures.show(fig, static=PNG_MAGIC + b"given")
    assert base64.b64decode(shown[-1][0]["image/png"]) == PNG_MAGIC + b"given"


# --------------------------------------------------------------------------- one palette

def _luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance."""
    c = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(lin @ [0.2126, 0.7152, 0.0722])


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def test_pitch_class_palette_is_cyclic_distinct_and_visible_on_white():
    cats = list(latent.PITCH_CLASSES)
    colours = latent.category_colors("pitch_class", cats)
    assert len(set(colours)) == 12
    assert all(_luminance(c) < 0.8 for c in colours)
    assert all((1.05) / (_luminance(c) + 0.05) >= 2.5 for c in colours)  # contrast ratio against white
    d = np.array([[np.linalg.norm(_rgb(a) - _rgb(b)) for b in colours] for a in colours])
    neighbours = [d[k, (k + 1) % 12] for k in range(12)]  # B -> C included: the palette is a circle
    tritones = [d[k, (k + 6) % 12] for k in range(12)]
    assert min(neighbours) > 8  # neighbours still differ
    assert max(neighbours) < min(tritones)
    assert colours[cats.index("C")] != colours[cats.index("Bb")]
    # plotly traces and PNG markers get these colours
    frame = pd.DataFrame({"id": cats, "path": cats, "label": cats, "labels": cats, "pitch_class": cats[::-1],
                          "octave": None, "instrument": None, "x": np.arange(12.0), "y": np.arange(12.0) % 3})
    fig = latent.scatter_figure(frame, "pitch_class")
    assert [t.name for t in fig.data] == cats and [t.marker.color for t in fig.data] == colours


@pytest.mark.parametrize("color_by, n", [("octave", 9), ("file", 7), ("file", 16), ("folder", 40)])
def test_other_palettes_are_distinct_and_visible_on_white(color_by, n):
    colours = latent.category_colors(color_by, [str(k) for k in range(n)])
    assert len(set(colours)) == n and all(_luminance(c) < 0.8 for c in colours)


def test_png_map_uses_the_same_colours(tmp_path):
    cats = list(latent.PITCH_CLASSES)
    frame = pd.DataFrame({"id": cats, "path": cats, "label": cats, "labels": cats, "pitch_class": cats,
                          "octave": None, "instrument": None, "x": np.arange(12.0), "y": np.zeros(12)})
    frame.attrs.update(task="t", reducer="pca", split="test")
    png = latent.save_png(frame, tmp_path / "m.png", "pitch_class").read_bytes()
    img = _pixels(png)
    assert all(_has_colour(img, c) for c in latent.category_colors("pitch_class", cats))


# --------------------------------------------------------------------------- progress

def test_progress_rule(monkeypatch):
    from tqdm.notebook import tqdm as widget_tqdm
    from tqdm.std import tqdm as text_tqdm

    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.delenv(progress.FRONTEND_ENV, raising=False)
    assert not progress.in_kernel() and not progress.interactive()  # pytest: no kernel
    monkeypatch.setattr(progress, "in_kernel", lambda: True)
    assert not progress.interactive()  # a kernel without a front end: papermill, nbclient
    log = io.StringIO()
    bar = progress.tqdm(range(3), file=log)
    assert isinstance(bar, text_tqdm) and not isinstance(bar, widget_tqdm)
    assert bar.mininterval == progress.TEXT_MININTERVAL_S and bar.leave
    list(bar)
    assert log.getvalue().rstrip().split("\r")[-1].startswith("100%")  # the text ends at 100 %
    monkeypatch.setenv(progress.FRONTEND_ENV, "notebooks/09_latent_space.ipynb")  # what jupyter_server sets
    assert progress.interactive()
    assert isinstance(progress.tqdm(range(3), disable=True), widget_tqdm)
    monkeypatch.setenv(progress.PROGRESS_ENV, "text")
    assert not progress.interactive()
    monkeypatch.setenv(progress.PROGRESS_ENV, "fancy")
    with pytest.raises(ValueError, match="text, widget"):
        progress.interactive()


def test_lightning_bars_are_text_without_a_front_end(monkeypatch):
    from lightning.pytorch.callbacks import TQDMProgressBar
    from tqdm.notebook import tqdm as widget_tqdm
    from tqdm.std import tqdm as text_tqdm

    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.setattr(progress, "in_kernel", lambda: True)
    callback = progress.lightning_progress_bar(refresh_rate=2)
    assert isinstance(callback, TQDMProgressBar) and callback.refresh_rate == 2
    monkeypatch.setattr(type(callback), "is_disabled", property(lambda self: True))
    for make in (callback.init_train_tqdm, callback.init_predict_tqdm, callback.init_sanity_tqdm):
        bar = make()
        assert isinstance(bar, text_tqdm) and not isinstance(bar, widget_tqdm)
        bar.close()
