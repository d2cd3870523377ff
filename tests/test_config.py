"""Configuration: scale/method resolution, validation messages, YAML round trip, run dirs."""

from __future__ import annotations

import pytest

from workbench import runs
from workbench.config import ConfigError, load_config, resolve_config


def test_resolution_order_and_methods():
    cfg = resolve_config("demo", "semisupcon", support="nsynth_pitch", b_s=0.5)
    assert (cfg.temperature, cfg.view_strategy, cfg.proj_dim, cfg.b_s) == (0.1, "adjacent", 128, 0.5)
    clmr = resolve_config("paper", "clmr")
    assert (clmr.temperature, clmr.lr, clmr.clip_samples, clmr.proj_dim, clmr.view_strategy) == \
        (0.5, 3e-4, 3**10, 64, "random")
    paper = resolve_config("paper", "semisupcon")
    assert (paper.lr, paper.clip_samples, paper.sample_rate, paper.batch_size) == (1e-4, 59535, 22050, 96)
    sup = resolve_config("demo", "supcon", support="mtat_top50")
    assert (sup.b_s, sup.p, sup.unlabeled) == (1.0, 1.0, None)
    assert resolve_config("demo", "simclr").b_s == 0.0


@pytest.mark.parametrize("overrides,match", [
    (dict(p=0.0), r"p=0.0.*\(0, 1\]"),
    (dict(b_s=1.5, support="nsynth_pitch"), r"b_s=1.5"),
    (dict(b_s=0.5), r"needs a labelled support task"),
    (dict(support="nsynth_pich", b_s=0.5), r"did you mean nsynth_pitch"),
    (dict(criterion=0), r"criterion"),
    (dict(criterion="soft"), r"criterion"),
    (dict(view_strategy="overlap"), r"view_strategy"),
    (dict(temperature=0), r"temperature"),
    (dict(n_views=1), r"n_views"),
    (dict(batch_sze=3), r"did you mean batch_size"),
    (dict(preset="nope"), r"preset"),
    (dict(support="emomusic", b_s=0.5), r"classification or tagging"),
    (dict(augment_exclude=["pitch_shfit"]), r"augment_exclude.*pitch_shift"),
    (dict(labeled_augment_exclude="pitch_shift"), r"labeled_augment_exclude"),
    (dict(preset="clmr", augment_exclude=["colored_noise"]), r"preset 'clmr'"),
    (dict(min_view_db=3.0), r"min_view_db=3.0.*dBFS"),
])
def test_invalid_values_are_named(overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config("demo", "semisupcon", **overrides)


def test_yaml_round_trip_and_run_dirs(tmp_path):
    cfg = resolve_config("smoke", "semisupcon", support="nsynth_pitch", b_s=0.5, criterion="weighted")
    a = runs.new_run_dir(tmp_path, cfg.name)
    b = runs.new_run_dir(tmp_path, cfg.name)
    assert a != b and (a / "checkpoints").is_dir() and (a / "splits").is_dir()
    cfg.save(a / "config.yaml")
    assert load_config(a / "config.yaml") == cfg
    runs.mark_finished(a)
    assert runs.is_finished(a) and not runs.is_finished(b)
    env = runs.environment()
    assert env["packages"]["torch"].startswith("2.9.1")
