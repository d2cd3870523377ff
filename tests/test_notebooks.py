"""Every notebook runs headlessly through papermill at the smoke scale; sources and
committed notebooks agree; parameters are declared, readable and validated first."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

from workbench import experiments as E
from workbench.params import RULES, ParameterError, validate

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
#: Per-cell limit: a hung kernel fails the test instead of stalling CI.
EXECUTION_TIMEOUT_S = 300
KERNEL = "python3"
SMOKE_TASKS = "nsynth_pitch,mtat_top50"


def test_all_ten_notebooks_are_there():
    assert [n[:2] for n in NAMES] == [f"{i:02d}" for i in range(1, 11)]


# --------------------------------------------------------------------------- sources and notebooks agree

def _cells(nb) -> list[tuple]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_matches_its_jupytext_source_and_has_no_outputs(name):
    source = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    committed = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    assert _cells(committed) == _cells(source), (
        f"notebooks/{name}.ipynb differs from notebooks/{name}.py: regenerate it with "
        f"`jupytext --to ipynb notebooks/{name}.py` (or `make notebooks-sync`)")
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}.ipynb is committed with outputs"
    assert committed.metadata["kernelspec"]["name"] == KERNEL


# --------------------------------------------------------------------------- parameters

def _validate_call_keywords(nb) -> set[str]:
    for cell in nb.cells:
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "validate":
                return {k.arg for k in node.keywords}
        return set()  # the first code cell after the parameters must validate them
    return set()


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_declared_readable_and_validated_first(name):
    ipynb = NOTEBOOK_DIR / f"{name}.ipynb"
    declared = E.notebook_parameters(ipynb)  # raises if papermill cannot read a line
    assert {"scale", "out_dir"} <= set(declared)
    assert set(declared) <= set(RULES), f"parameters without a validation rule: {set(declared) - set(RULES)}"
    nb = nbformat.read(ipynb, as_version=4)
    assert "parameters" in nb.cells[1].metadata.get("tags", []), "the parameters cell follows the title"
    assert _validate_call_keywords(nb) == set(declared), "the next code cell must validate every parameter"
    defaults = {k: ast.literal_eval(v) for k, v in declared.items()}
    assert defaults["scale"] == "demo"
    validate(**{k: v for k, v in defaults.items() if k not in ("checkpoints", "checkpoint")})


def test_the_documented_pretrain_call_is_a_sensible_demo_run():
    """`papermill notebooks/02_pretrain.ipynb out.ipynb -p support nsynth_pitch`: the defaults
    with only `support` given validate into a demo-scale SemiSupCon run."""
    declared = E.notebook_parameters(NOTEBOOK_DIR / "02_pretrain.ipynb")
    params = {k: ast.literal_eval(v) for k, v in declared.items()} | {"support": "nsynth_pitch"}
    config = E.pretrain_config(validate(**params))
    assert (config.scale, config.method, config.support, config.unlabeled) == (
        "demo", "semisupcon", "nsynth_pitch", "fma_medium")
    from workbench.config import SCALES

    assert 0 < config.b_s < 1 and config.steps == SCALES["demo"]["steps"]
    assert config.encoder["name"] == "samplecnn_demo"


# --------------------------------------------------------------------------- execution

@pytest.fixture(scope="session")
def smoke_checkpoint(tmp_path_factory) -> Path:
    from workbench.config import resolve_config
    from workbench.train.pretrain import pretrain

    runs = tmp_path_factory.mktemp("nb-checkpoint")
    run = pretrain(resolve_config("smoke", "semisupcon", support="nsynth_pitch", b_s=0.5, steps=2,
                                  runs_dir=str(runs)), progress=False)
    return run / "checkpoints" / "last.ckpt"


def _stored_results(root: Path) -> Path:
    """A collected Table 6 result set, as the experiment runner writes it."""
    rows = [{"model": "m", "task": "mtat_top50", "metric": m, "mean": v, "std": 0.01, "synthetic": True,
             "p": 1.0, "b_s": b, "seed": 0} for b, v in ((0.25, 0.6), (0.5, 0.7))
            for m in ("roc_auc", "average_precision")]
    table = root / "table6_p_bs" / "demo" / "results.json"
    table.parent.mkdir(parents=True)
    table.write_text(json.dumps({"results": rows}))
    return root


def _parameters(name: str, tmp: Path, checkpoint: Path) -> dict:
    declared = E.notebook_parameters(NOTEBOOK_DIR / f"{name}.ipynb")
    params = {"scale": "smoke", "out_dir": str(tmp / "out")}
    if "runs_dir" in declared:
        params["runs_dir"] = str(tmp / "runs")
    for key, value in (("steps", 2), ("probe_seeds", "0"), ("tasks", SMOKE_TASKS), ("data_tasks", SMOKE_TASKS),
                       ("checkpoints", str(checkpoint)), ("severities", "0,1"), ("max_points", 20),
                       ("examples", 2)):
        if key in declared:
            params[key] = value
    if name.startswith("10"):
        params.update(results_dir=str(_stored_results(tmp / "results")), figures_dir=str(tmp / "figures"),
                      experiments_dir=str(ROOT / "experiments"))
    return params


def _execute(name: str, tmp: Path, params: dict):
    kwargs = dict(parameters=params, kernel_name=KERNEL, progress_bar=False, cwd=str(tmp),
                  execution_timeout=EXECUTION_TIMEOUT_S)
    try:
        return papermill.execute_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"), str(tmp / f"{name}.ipynb"), **kwargs)
    except (RuntimeError, TimeoutError) as err:  # a dead or hung kernel (not a notebook error): retry once
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        if not isinstance(err, (CellTimeoutError, DeadKernelError)):
            raise
        return papermill.execute_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"), str(tmp / f"{name}.ipynb"), **kwargs)


def _check(name: str, tmp: Path, result: dict) -> None:
    out = tmp / "out"
    rows = result["results"]
    if name.startswith("01"):
        assert {r["task"] for r in result["summary"]} == set(SMOKE_TASKS.split(","))
        assert all(Path(p).is_file() for p in result["spectrograms"].values())
    elif name.startswith("02"):
        assert math.isfinite(result["final_loss"]) and result["steps"] == 2
        assert Path(result["checkpoint"]).is_file() and (Path(result["run_dir"]) / "FINISHED").is_file()
    elif name.startswith("03"):
        assert {r["task"] for r in rows} == set(SMOKE_TASKS.split(",")) and (out / "results.csv").is_file()
    elif name[:2] in ("04", "05", "06", "07"):
        assert rows and all(0.0 <= r["mean"] <= 1.0 for r in rows)
        assert all(r["steps"] == 2 and r["synthetic"] for r in rows)
        if name.startswith("04"):
            assert {(r["p"], r["b_s"]) for r in rows} == {(1.0, 0.5)}
        if name.startswith("05"):
            assert {r["n_views"] * r["batch_size"] for r in rows} == {16}  # the smoke scale's 8 clips × 2
    elif name.startswith("08"):
        assert {r["severity"] for r in rows} == {0.0, 1.0} and (out / "robustness.png").is_file()
    elif name.startswith("09"):
        files = [Path(f) for f in result["files"]]
        assert {f.suffix for f in files} == {".html", ".png"} and all(f.is_file() for f in files)
        assert len(files) == 4  # t-SNE and UMAP, each as HTML and PNG
    elif name.startswith("10"):
        drawn = [r for r in result["figures"] if r["figure"]]
        assert [(r["experiment"], r["scale"]) for r in drawn] == [("table6_p_bs", "demo")]
        assert Path(drawn[0]["figure"]).is_file()
        assert len(result["figures"]) == len(list((ROOT / "experiments").glob("*.yaml")))


PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: Executed notebooks exported with nbconvert to HTML, and the figures each must show there.
SHARED_AS_HTML = {"02_pretrain": 2, "03_probe": 1, "09_latent_space": 2}
#: Notebooks whose only widgets would be progress bars (which must be text under papermill).
TEXT_PROGRESS = ("02_pretrain", "03_probe")


def _check_shareable(name: str, executed: Path, n_figures: int | None = None) -> None:
    """Outside JupyterLab every figure shows: each plotly output carries a PNG, and the
    nbconvert HTML export has an image for every figure; progress is text ending at 100 %."""
    nb = nbformat.read(executed, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    shown = [o for o in outputs if o.get("output_type") in ("display_data", "execute_result")]
    plotly = [o for o in shown if PLOTLY_MIME in o.get("data", {})]
    assert all("image/png" in o["data"] for o in plotly), f"{name}: a plotly figure without a static image"
    images = [o for o in shown if {"image/png", "image/svg+xml"} & set(o.get("data", {}))]
    if name in TEXT_PROGRESS:
        assert not any(WIDGET_MIME in o.get("data", {}) for o in shown), f"{name}: a widget progress bar"
        text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        assert "100%" in text, f"{name}: no text progress bar reached 100 %"
    if name in SHARED_AS_HTML:
        from nbconvert import HTMLExporter

        html, _ = HTMLExporter().from_notebook_node(nb)
        assert len(images) >= (n_figures or SHARED_AS_HTML[name]) and len(plotly) >= 1
        assert html.count("<img") >= len(images) and html.count("data:image/png;base64") >= len(images)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_headlessly_at_smoke_scale(name, tmp_path, smoke_checkpoint):
    _execute(name, tmp_path, _parameters(name, tmp_path, smoke_checkpoint))
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "ok" and result["notebook"] == name
    assert result["params"]["scale"] == "smoke"
    _check(name, tmp_path, result)
    _check_shareable(name, tmp_path / f"{name}.ipynb")


def test_a_misspelt_task_stops_the_notebook_in_its_validation_cell(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _execute("02_pretrain", tmp_path, {"scale": "smoke", "support": "nsynth_pich",
                                           "out_dir": str(tmp_path / "out"), "runs_dir": str(tmp_path / "runs")})
    assert err.value.ename == ParameterError.__name__
    assert "support='nsynth_pich'" in err.value.evalue and "did you mean nsynth_pitch" in err.value.evalue
    assert "validate(" in err.value.source  # stopped before any work
    assert not (tmp_path / "runs").exists()


def test_latent_notebook_maps_a_folder_of_ones_own_audio(tmp_path, smoke_checkpoint):
    """09 on a folder without labels: split all, chunk level, coloured by sub-folder."""
    import numpy as np
    import soundfile as sf

    music = tmp_path / "my music"
    sr = 48000
    for k, rel in enumerate(["album a/one.wav", "album a/two.flac", "album b/trois é.ogg"]):
        (music / rel).parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(0.4 * sr)) / sr
        sf.write(music / rel, np.stack([np.sin(2 * np.pi * 220 * (k + 1) * t)] * 2, 1).astype(np.float32), sr)
    params = {"scale": "smoke", "out_dir": str(tmp_path / "out"), "checkpoints": str(smoke_checkpoint),
              "task": "folder", "data_root": str(music), "split": "all", "level": "chunk", "reducers": "pca",
              "interactive": False}
    _execute("09_latent_space", tmp_path, params)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    files = [Path(f) for f in result["files"]]
    assert result["status"] == "ok" and len(files) == 2 and all(f.is_file() for f in files)
    assert all(f.stem.endswith("-pca-folder") for f in files)  # no labels: coloured by sub-folder
    html = files[0].read_text()
    assert any(name in html for name in ("trois é.ogg", "trois \\u00e9.ogg")) and "album b" in html  # base names
    _check_shareable("09_latent_space", tmp_path / "09_latent_space.ipynb", n_figures=1)
