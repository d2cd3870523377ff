"""The experiment runner: grid expansion, experiment-file validation against the notebooks'
parameters cells, and a small grid through papermill (one run forced to fail) with resume,
failure reporting and the collected table."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from workbench import experiments as E

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT_FILES = sorted((ROOT / "experiments").glob("*.yaml"))


# --------------------------------------------------------------------------- grids

def test_expand_grid_products_zips_and_unions():
    assert E.expand_grid({"a": [1, 2], "b": "x"}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert E.expand_grid([{"a": [1, 2]}, {"zip": {"p": [0.1, 0.5], "b": [1, 2]}}]) == [
        {"a": 1}, {"a": 2}, {"p": 0.1, "b": 1}, {"p": 0.5, "b": 2}]
    assert E.expand_grid(None) == [{}] and E.expand_grid([]) == [{}]
    assert len(E.expand_grid({"a": [1, 2, 3], "b": [4, 5]})) == 6
    with pytest.raises(E.ExperimentError, match="differ in length"):
        E.expand_grid([{"zip": {"p": [1, 2], "b": [1]}}])
    with pytest.raises(E.ExperimentError, match="only key"):
        E.expand_grid([{"zip": {"p": [1]}, "b": 2}])
    with pytest.raises(E.ExperimentError, match="empty list"):
        E.expand_grid({"a": []})
    with pytest.raises(E.ExperimentError, match="mapping"):
        E.expand_grid(["a"])


# --------------------------------------------------------------------------- shipped experiment files

@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("scale", ["smoke", "demo", "paper"])
def test_shipped_experiments_validate_against_their_notebooks(path, scale):
    exp = E.load_experiment(path, scale)
    runs = exp.runs()
    assert runs and len({r.name for r in runs}) == len(runs)
    assert all(r.params["scale"] == scale for r in runs)
    assert exp.figure in __import__("workbench.figures", fromlist=["FIGURES"]).FIGURES
    if scale == "smoke":
        assert len(runs) <= 2  # CI-sized


def test_the_paper_grids_are_the_papers():
    t6 = E.load_experiment(ROOT / "experiments" / "table6_p_bs.yaml", "paper")
    points = {(r.params["p"], r.params["b_s"]) for r in t6.runs()}
    values = (0.05, 0.1, 0.25, 0.5, 0.75)
    assert {(1.0, b) for b in values} | {(p, 0.5) for p in values} <= points
    assert t6.params["steps"] == 50000
    t7 = E.load_experiment(ROOT / "experiments" / "table7_views.yaml", "paper")
    assert {r.params["n_views"] for r in t7.runs()} == {2, 4, 8, 16, 32}
    assert all(192 % n == 0 for n in (2, 4, 8, 16, 32)) and t7.params["rows_per_batch"] == 192
    t4 = E.load_experiment(ROOT / "experiments" / "table4_criterion.yaml", "paper")
    assert {r.params["criterion"] for r in t4.runs()} == {1, 2, 4, 6, "weighted"}


# --------------------------------------------------------------------------- validation errors

def _fake_notebook(path: Path) -> Path:
    """A tiny notebook: fails for x = 2 while the flag file exists, else writes result.json."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('x = 0  # a number\n'
                                       'fail_flag = ""  # a file; the second run fails while it exists\n'
                                       'seed = 0\nscale = "demo"\nout_dir = "out"\n')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import os, sys\nfrom pathlib import Path\nfrom workbench.experiments import write_result\n"
        "os.write(2, b'native stderr of the kernel\\n')\n"
        "if fail_flag and Path(fail_flag).exists() and x == 2:\n"
        "    raise RuntimeError(f'forced failure for x={x}')\n"
        "rows = [{'model': 'fake', 'task': 'nsynth_pitch', 'metric': 'accuracy', 'mean': x / 10, 'std': 0.0,"
        " 'synthetic': True}]\n"
        "write_result(out_dir, 'fake', {'x': x, 'seed': seed, 'scale': scale}, rows, python=sys.executable,"
        " cache=os.environ.get('WORKBENCH_CACHE'))\n")
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _experiment(tmp_path: Path, **over) -> Path:
    spec = {"name": "fake", "notebook": str(_fake_notebook(tmp_path / "fake.ipynb")),
            "params": {"fail_flag": str(tmp_path / "break")}, "grid": {"x": [1, 2]}, "seeds": [0],
            "scales": {"smoke": {}, "demo": {"grid": {"x": [5]}}}}
    spec.update(over)
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("over, message", [
    ({"gird": {"x": [1]}}, r"unknown key\(s\) \['gird'\]"),
    ({"grid": {"y": [1]}}, r"parameter\(s\) y not declared in the parameters cell of fake.ipynb"),
    ({"params": {"fail_flg": "a"}}, r"fail_flg \(did you mean fail_flag\?\)"),
    ({"params": {"seed": 3}}, r"\['seed'\] are set by the runner"),
    ({"notebook": "nowhere.ipynb"}, r"notebook .*nowhere.ipynb not found"),
    ({"figure": "table99"}, r"figure 'table99' is not one of"),
    ({"scales": {"demo": {}}}, r"no 'smoke' variant"),
    ({"scales": {"smoke": {"gird": 1}}}, r"unknown key\(s\) \['gird'\] under scales.smoke"),
    ({"seeds": [-1]}, r"seeds must be a list of integers >= 0"),
])
def test_invalid_experiment_files_are_explained(tmp_path, over, message):
    with pytest.raises(E.ExperimentError, match=message):
        E.load_experiment(_experiment(tmp_path, **over), "smoke")


def test_parameters_papermill_cannot_read_are_reported(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("a = 1\nb = 2  # where b = 2 means two\n")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "n.ipynb")
    with pytest.raises(E.ExperimentError, match=r"cannot read parameter\(s\) b .*no '=' inside the comment"):
        E.notebook_parameters(tmp_path / "n.ipynb")


def test_scale_variants_override_the_grid(tmp_path):
    path = _experiment(tmp_path)
    assert [r.name for r in E.load_experiment(path, "demo").runs()] == ["x=5_seed=0"]
    assert [r.name for r in E.load_experiment(path, "smoke").runs()] == ["x=1_seed=0", "x=2_seed=0"]
    with pytest.raises(E.ExperimentError, match="no 'paper' variant"):
        E.load_experiment(path, "paper")


# --------------------------------------------------------------------------- running

def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_runner_reports_failures_resumes_and_collects(tmp_path):
    path = _experiment(tmp_path)
    flag = tmp_path / "break"
    flag.write_text("")
    out_root = tmp_path / "runs"

    report = E.run_experiment(path, "smoke", out_root=out_root, figures_dir=None, progress=False)
    status = {o.name: o.status for o in report.outcomes}
    assert status == {"x=1_seed=0": "ok", "x=2_seed=0": "failed"}
    failed = report.failed[0]
    assert "RuntimeError" in failed.error and "forced failure for x=2" in failed.error
    assert (failed.run_dir / "notebook.ipynb").is_file() and (failed.run_dir / "error.txt").is_file()
    assert "FAILED x=2_seed=0" in report.summary()
    ok_dir = out_root / "fake" / "smoke" / "x=1_seed=0"
    result = json.loads((ok_dir / "result.json").read_text())
    # the kernel is this interpreter and inherits the test environment
    assert os.path.realpath(result["python"]) == os.path.realpath(sys.executable)
    assert result["cache"] == os.environ["WORKBENCH_CACHE"]
    assert result["params"] == {"x": 1, "seed": 0, "scale": "smoke"}
    assert "native stderr of the kernel" in (ok_dir / "kernel-stderr.log").read_text()
    table = pd.read_csv(report.results_csv)
    assert table[["x", "mean", "run", "seed"]].to_dict("records") == [
        {"x": 1, "mean": 0.1, "run": "x=1_seed=0", "seed": 0}]
    assert json.loads(report.results_json.read_text())["failed"][0]["run"] == "x=2_seed=0"

    stamp = _mtime(ok_dir / "run.json")
    again = E.run_experiment(path, "smoke", out_root=out_root, figures_dir=None, progress=False)
    assert {o.name: o.status for o in again.outcomes} == {"x=1_seed=0": "skipped", "x=2_seed=0": "failed"}

    flag.unlink()  # the cause of the failure is fixed: only the failed run runs again
    fixed = E.run_experiment(path, "smoke", out_root=out_root, figures_dir=None, progress=False)
    assert {o.name: o.status for o in fixed.outcomes} == {"x=1_seed=0": "skipped", "x=2_seed=0": "ok"}
    assert _mtime(ok_dir / "run.json") == stamp
    assert sorted(pd.read_csv(fixed.results_csv)["mean"]) == [0.1, 0.2]
    assert E.main([str(path), "--scale", "smoke", "--out", str(out_root), "--no-progress"]) == 0

    # a changed fixed parameter makes the old results stale: the run is redone
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "grid": {"x": [1]},
                                    "params": {"fail_flag": str(tmp_path / "other")}}))
    redo = E.run_experiment(path, "smoke", out_root=out_root, figures_dir=None, progress=False)
    assert [o.status for o in redo.outcomes] == ["ok"] and _mtime(ok_dir / "run.json") != stamp


def test_cli_exit_codes(tmp_path, capsys):
    bad = _experiment(tmp_path, grid={"nope": [1]})
    assert E.main([str(bad), "--scale", "smoke"]) == 2
    assert "not declared" in capsys.readouterr().err
    good = _experiment(tmp_path)
    (tmp_path / "break").write_text("")
    assert E.main([str(good), "--scale", "smoke", "--out", str(tmp_path / "r"), "--no-progress",
                   "--only", "x=2"]) == 1
    out = capsys.readouterr().out
    assert "0 run, 0 already complete, 1 failed" in out and "FAILED x=2_seed=0" in out
    assert E.main([str(good), "--scale", "smoke", "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    assert "x=1_seed=0" in capsys.readouterr().out


def test_a_real_experiment_at_smoke_scale(tmp_path):
    """Table 6 through the real notebook: one run, the collected table and the figure."""
    report = E.run_experiment(ROOT / "experiments" / "table6_p_bs.yaml", "smoke", out_root=tmp_path / "runs",
                              figures_dir=tmp_path / "figures", only=r"b_s=0\.5", progress=False)
    assert [o.status for o in report.outcomes] == ["ok"], report.summary()
    table = pd.read_csv(report.results_csv)
    assert set(table.metric) == {"roc_auc", "average_precision"} and set(table.task) == {"mtat_top50"}
    assert table.p.tolist() == [1.0, 1.0] and table.b_s.tolist() == [0.5, 0.5]
    assert table.synthetic.all() and table["mean"].between(0, 1).all()
    assert 0 < table.positive_fraction.iloc[0] < 1
    assert report.figure == tmp_path / "figures" / "table6_p_bs-smoke.png" and report.figure.is_file()
    records = E.regenerate_figures(tmp_path / "runs", tmp_path / "again", ROOT / "experiments")
    drawn = [r for r in records if r["figure"]]
    assert [(r["experiment"], r["scale"]) for r in drawn] == [("table6_p_bs", "smoke")]
    assert all(r["note"].startswith("no results") for r in records if not r["figure"])
