"""The trainers' command line and logging (issue 14, "Logging and configs as Lightning users
expect"): --help lists every field with its default, --print-config, --config re-runs a saved
config into a new run directory, one runs folder for the CLI and notebooks, logger choice,
learning rate and gradient norm logged."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from workbench.config import COLAConfig, ConfigError, PretrainConfig, resolve_cola_config, resolve_config
from workbench.train import cola as C
from workbench.train import pretrain as P


@pytest.fixture(scope="module")
def embedded():
    from workbench.data.roots import embedded_dir

    return embedded_dir("tiny", 0)


@pytest.mark.parametrize("main,cls", [(P.main, PretrainConfig), (C.main, COLAConfig)])
def test_help_lists_every_field_with_its_default(main, cls, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert f"  {f.name} (" in out and f"= {default!r}" in out, f.name


@pytest.mark.parametrize("main,trainer", [(P.main, "pretrain"), (C.main, "cola")])
def test_help_shows_each_scale_preset_beside_the_built_in_default(main, trainer, capsys):
    """The built-in default of `steps` is not what a run at a scale uses: --help says both."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    steps_line = next(ln for ln in out.splitlines() if ln.startswith("  steps ("))
    resolve = resolve_config if trainer == "pretrain" else resolve_cola_config
    for scale in ("smoke", "demo", "paper"):
        assert f"{scale}: {resolve(scale).steps!r}" in steps_line, (scale, steps_line)
    # a field no scale sets shows no preset list
    name_line = next(ln for ln in out.splitlines() if ln.startswith("  name ("))
    assert "[" not in name_line


def test_print_config_shows_the_resolved_config(capsys):
    assert P.main(["--scale", "smoke", "--method", "simclr", "--print-config", "lr=1e-3", "steps=3"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown == resolve_config("smoke", "simclr", lr=1e-3, steps=3).to_dict()


def test_config_reruns_a_saved_config_into_a_new_run_in_the_project_runs_folder(tmp_path, embedded, monkeypatch,
                                                                                 capsys):
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    monkeypatch.chdir(project / "notebooks")  # as a notebook opened from notebooks/ would be
    first = P.pretrain(resolve_config("smoke", "simclr", steps=2, num_workers=0, precision="32-true",
                                      logger="csv"), progress=False)
    assert first.parent == project / "runs"  # relative runs_dir: the project's runs/, from any folder
    assert not (first / "tensorboard").exists()
    csv = pd.read_csv(first / "metrics.csv")
    assert {"learning_rate", "grad_norm", "torch_threads"} <= set(csv.columns)
    from workbench.threads import threads_for

    # the policy's count while training (no loader workers; the governor is off in tests)
    assert (csv["torch_threads"].dropna() == threads_for(0)).all()
    assert np.allclose(csv["learning_rate"].dropna(), 1e-4)
    assert (np.isfinite(csv["grad_norm"].dropna()) & (csv["grad_norm"].dropna() > 0)).all()
    before = (first / "config.yaml").read_text()
    assert P.main(["--config", str(first / "config.yaml"), "steps=3", "logger=tensorboard", "--no-progress"]) == 0
    second = next(p for p in (project / "runs").iterdir() if p != first)
    assert yaml.safe_load((second / "config.yaml").read_text())["steps"] == 3
    assert (second / "tensorboard").is_dir() and (first / "config.yaml").read_text() == before
    assert f"run directory: {second}" in capsys.readouterr().out


@pytest.mark.parametrize("logger", ["wandb", "mlflow"])
def test_optional_loggers_need_their_package(logger):
    if importlib.util.find_spec(logger) is not None:
        assert resolve_config("smoke", "simclr", logger=logger).logger == logger
    else:
        with pytest.raises(ConfigError, match=rf"logger='{logger}': needs the {logger} package"):
            resolve_config("smoke", "simclr", logger=logger)


def test_wandb_offline_and_mlflow_file_store(tmp_path, embedded):
    available = [k for k in ("wandb", "mlflow") if importlib.util.find_spec(k) is not None]
    if not available:
        pytest.skip("neither wandb nor mlflow is installed (optional extras)")
    for kind in available:
        run = P.pretrain(resolve_config("smoke", "simclr", steps=1, num_workers=0, logger=kind,
                                        runs_dir=str(tmp_path / kind)), progress=False)
        assert (run / ("wandb" if kind == "wandb" else "mlruns")).is_dir()
