"""Bad configuration values (issue 15, items 6 and 7): wrong types convert safely or fail with
one message naming the field and what it expects, never a raw TypeError; non-finite or
negative values that trained nothing before are refused; a labelled ``folder`` is a support set."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import yaml

from workbench.config import (COLAConfig, ConfigError, PretrainConfig, SupervisedConfig, load_config,
                              resolve_cola_config, resolve_config)
from workbench.params import ParameterError, validate


class _Opaque:
    """A value of no field's type."""

    def __repr__(self) -> str:
        return "<opaque>"


@pytest.mark.parametrize("cls", [PretrainConfig, COLAConfig, SupervisedConfig])
def test_every_field_refuses_a_value_of_no_type_with_its_name(cls):
    base = {"task": "nsynth_pitch"} if cls is SupervisedConfig else {}
    for f in dataclasses.fields(cls):
        cfg = cls(**{**base, f.name: _Opaque()})
        with pytest.raises(ConfigError) as err:
            cfg.validate()
        assert f"invalid {f.name}=<opaque>" in str(err.value) and "expected" in str(err.value), f.name


@pytest.mark.parametrize("overrides,expected", [
    (dict(lr="1e-3"), ("lr", 1e-3)),  # what YAML makes of 1e-3
    (dict(steps="10"), ("steps", 10)),
    (dict(steps=10.0), ("steps", 10)),
    (dict(batch_size="8"), ("batch_size", 8)),
    (dict(temperature="0.5"), ("temperature", 0.5)),
    (dict(criterion="2", support="nsynth_pitch", b_s=0.5), ("criterion", 2)),
    (dict(grad_clip="none"), ("grad_clip", None)),
    (dict(sync_batchnorm="true"), ("sync_batchnorm", True)),
    (dict(min_view_db=-50), ("min_view_db", -50.0)),
])
def test_strings_and_numbers_convert_safely(overrides, expected):
    cfg = resolve_config("smoke", "semisupcon", **overrides)
    name, value = expected
    got = getattr(cfg, name)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("overrides,match", [
    (dict(lr="fast"), r"invalid lr='fast': expected a number"),
    (dict(steps=2.5), r"invalid steps=2.5: expected an integer"),
    (dict(steps="many"), r"invalid steps='many': expected an integer"),
    (dict(batch_size=[8]), r"invalid batch_size=\[8\]: expected an integer"),
    (dict(n_views=True), r"invalid n_views=True: expected an integer"),
    (dict(encoder="samplecnn"), r"invalid encoder='samplecnn'.*'name'"),
    (dict(augment_exclude="pitch_shift"), r"invalid augment_exclude='pitch_shift': expected a list"),
    (dict(sync_batchnorm="maybe"), r"invalid sync_batchnorm='maybe': expected true or false"),
    (dict(temperature=float("inf")), r"invalid temperature=inf: expected a finite number"),
    (dict(temperature=float("nan")), r"invalid temperature=nan: expected a finite number, got NaN"),
    (dict(temperature=-0.1), r"invalid temperature=-0.1: out of range"),
    (dict(lr=float("inf")), r"invalid lr=inf"),
    (dict(grad_clip=-1), r"invalid grad_clip=-1: out of range: allowed \(0, inf\]"),
    (dict(grad_clip=0), r"invalid grad_clip=0"),
    (dict(weight_decay=-1e-4), r"invalid weight_decay"),
    (dict(num_workers=-1), r"invalid num_workers"),
    (dict(precision="bf17"), r"invalid precision='bf17'.*did you mean"),
])
def test_wrong_values_name_the_field_and_what_it_expects(overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config("smoke", "semisupcon", **overrides)


@pytest.mark.parametrize("overrides,match", [
    (dict(temperature=float("inf")), r"temperature=inf"),
    (dict(grad_clip=-1), r"grad_clip=-1"),
    (dict(lr="1e-3x"), r"lr='1e-3x': expected a number"),
    (dict(batch_size="4"), None),
])
def test_cola_config_uses_the_same_checks(overrides, match):
    if match is None:
        assert resolve_cola_config("smoke", **overrides).batch_size == 4
        return
    with pytest.raises(ConfigError, match=match):
        resolve_cola_config("smoke", **overrides)


def test_supervised_config_is_validated():
    with pytest.raises(ConfigError, match=r"lr=0"):
        SupervisedConfig.for_scale("smoke", lr=0)
    with pytest.raises(ConfigError, match=r"task='fma_medium'.*unlabeled"):
        SupervisedConfig.for_scale("smoke", task="fma_medium")
    with pytest.raises(ConfigError, match=r"max_step \(did you mean max_steps\?\)"):
        SupervisedConfig.for_scale("smoke", max_step=3)
    assert SupervisedConfig.for_scale("smoke", max_steps="7").max_steps == 7


def test_a_saved_config_with_yaml_strings_loads(tmp_path):
    cfg = resolve_config("smoke", "semisupcon")
    data = cfg.to_dict()
    path = tmp_path / "config.yaml"
    del data["lr"]
    path.write_text(yaml.safe_dump(data, sort_keys=False) + "lr: 1e-3\n")
    assert yaml.safe_load(path.read_text())["lr"] == "1e-3"  # PyYAML reads 1e-3 as a string
    assert load_config(path).lr == 1e-3
    data["lr"] = "quick"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"config.yaml: invalid lr='quick': expected a number"):
        load_config(path)


def test_notebook_parameters_defer_to_the_config():
    assert validate(lr="1e-3").lr == 1e-3
    with pytest.raises(ParameterError, match=r"parameter temperature=inf: expected a finite number"):
        validate(temperature=float("inf"))
    with pytest.raises(ParameterError, match=r"parameter b_s=2: out of range: allowed \[0, 1\]"):
        validate(b_s=2)


def _labelled_folder(root, labels: bool):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        path = root / f"clip{i:02d}.wav"
        sf.write(path, (0.1 * rng.standard_normal(4000)).astype(np.float32), 16000)
        rows.append(f"{path.name},{'ab'[i % 2]},{'train' if i < 8 else 'test'}")
    if labels:
        (root / "labels.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    return root


def test_a_labelled_folder_is_a_support_set_and_an_unlabelled_one_is_refused(tmp_path):
    from workbench.data.batches import build_pool

    (tmp_path / "lab").mkdir()
    labelled = _labelled_folder(tmp_path / "lab", True)
    cfg = resolve_config("smoke", "semisupcon", support="folder", support_root=str(labelled), b_s=0.5,
                         unlabeled=None)
    pool = build_pool(cfg.support, cfg.unlabeled, p=cfg.p, b_s=cfg.b_s, seed=0, support_root=cfg.support_root)
    assert pool.n_labeled == 8 and pool.classes == ["a", "b"] and pool.labels.sum() == 8
    (tmp_path / "unl").mkdir()
    unlabelled = _labelled_folder(tmp_path / "unl", False)
    with pytest.raises(ValueError, match=r"support task folder under .*unl is unlabeled: a support set needs labels"):
        build_pool("folder", None, p=1.0, b_s=0.5, seed=0, support_root=str(unlabelled))
