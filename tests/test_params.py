"""Notebook parameter validation: normalisation and the messages that stop a bad run."""

from __future__ import annotations

import pytest

from workbench.params import RULES, ParameterError, project_dir, resolve_path, task_list, validate


def test_values_are_normalised():
    args = validate(scale="smoke", tasks="nsynth_pitch, mtat_top50", support="none", unlabeled="fma_medium",
                    criterion="weighted", probe_seeds="0,1,2", severities="0,0.5,2", p=1, n_views=4.0,
                    steps=None, interactive="false")
    assert args.tasks == ["nsynth_pitch", "mtat_top50"]
    assert args.support is None and args.unlabeled == "fma_medium"
    assert args.criterion == "weighted"
    assert args.probe_seeds == [0, 1, 2] and all(type(s) is int for s in args.probe_seeds)
    assert args.severities == [0.0, 0.5, 2.0]
    assert args.p == 1.0 and args.n_views == 4 and type(args.n_views) is int
    assert args.steps is None and args.interactive is False
    assert validate(criterion=2.0).criterion == 2
    assert validate(tasks=["giantsteps_key"]).tasks == ["giantsteps_key"]
    assert validate(probe_seeds=3).probe_seeds == [3]


def test_misspelt_task_names_a_suggestion():
    with pytest.raises(ParameterError) as err:
        validate(support="nsynth_pich")
    msg = str(err.value)
    assert msg.startswith("parameter support='nsynth_pich'")
    assert "did you mean nsynth_pitch" in msg and "known tasks:" in msg
    with pytest.raises(ParameterError, match=r"parameter tasks=.*'mtat_top5'.*did you mean mtat_top50"):
        validate(tasks="nsynth_pitch,mtat_top5")


def test_task_kind_is_checked():
    with pytest.raises(ParameterError, match=r"support='fma_medium'.*unlabeled.*multiclass or multilabel"):
        validate(support="fma_medium")
    with pytest.raises(ParameterError, match=r"task='fma_medium'.*unlabeled"):
        validate(task="fma_medium")
    assert validate(task="folder").task == "folder"  # its kind comes from its data root (labels.csv or none)
    assert validate(task="emomusic").task == "emomusic"  # regression tasks can be probed


@pytest.mark.parametrize("name, value, allowed", [
    ("p", 0, r"\(0, 1\]"), ("p", 1.5, r"\(0, 1\]"), ("b_s", -0.1, r"\[0, 1\]"), ("b_s", 1.01, r"\[0, 1\]"),
    ("n_views", 0, r"\[1, inf\]"), ("steps", 2.5, "integer"), ("temperature", 0, r"\(0, inf\]"),
    ("seed", -1, r"\[0, inf\]"), ("fraction", 0.0, r"\(0, 1\]"), ("severities", "0,-1", r"\[0, inf\]"),
    ("examples", 51, r"\[0, 50\]"), ("p", "half", "number"), ("p", float("nan"), "NaN"),
])
def test_out_of_range_values_name_the_parameter_and_the_range(name, value, allowed):
    with pytest.raises(ParameterError) as err:
        validate(**{name: value})
    msg = str(err.value)
    assert msg.startswith(f"parameter {name}=")
    assert __import__("re").search(allowed, msg), msg


def test_choices_and_criterion():
    with pytest.raises(ParameterError, match=r"scale='dmeo'.*smoke, demo, paper.*did you mean demo"):
        validate(scale="dmeo")
    with pytest.raises(ParameterError, match=r"criterion=0.*integer >= 1.*'weighted'"):
        validate(criterion=0)
    with pytest.raises(ParameterError, match=r"criterion='weighed'"):
        validate(criterion="weighed")
    with pytest.raises(ParameterError, match=r"method='simclr2'.*did you mean simclr"):
        validate(method="simclr2")
    assert validate(method="supervised").method == "supervised"
    with pytest.raises(ParameterError, match=r"corruptions=.*'reverbb'.*did you mean reverb"):
        validate(corruptions="chain,reverbb")
    with pytest.raises(ParameterError, match="True or False"):
        validate(interactive="maybe")


def test_unknown_parameter_names_are_refused_with_a_hint():
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) supprt \(did you mean support\?\)"):
        validate(supprt="nsynth_pitch")


def test_paths_are_taken_from_the_project_folder(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # JupyterLab's working directory
    assert project_dir() == tmp_path.resolve()
    assert validate(out_dir="runs/a").out_dir == tmp_path.resolve() / "runs" / "a"
    monkeypatch.chdir(tmp_path)  # papermill from the repository root
    assert resolve_path("runs/a") == tmp_path.resolve() / "runs" / "a"
    assert resolve_path(tmp_path / "abs") == tmp_path / "abs"
    with pytest.raises(ParameterError, match=r"checkpoints=.*does not exist"):
        validate(checkpoints="missing.ckpt")
    (tmp_path / "a.ckpt").write_bytes(b"x")
    assert validate(checkpoints="a.ckpt", checkpoint="None").checkpoints == [tmp_path.resolve() / "a.ckpt"]
    assert validate(checkpoints="").checkpoints == []


def test_task_list_parsing():
    assert task_list("a, b c,,") == ["a", "b", "c"]
    assert task_list(None) == [] and task_list("none") == []
    with pytest.raises(TypeError):
        task_list(3)


def test_every_rule_is_documented():
    assert all(rule.doc for rule in RULES.values())
