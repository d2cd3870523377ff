"""Configuration of every trainer: typed dataclasses, one validator, YAML round trip.

Each trainer has one dataclass (:class:`PretrainConfig` for the SemiSupCon family,
:class:`COLAConfig` for COLA-MSA, :class:`SupervisedConfig` for the end-to-end
baseline).  A field's metadata (:func:`option`) carries its help text, allowed choices,
range and task kinds; :func:`check_fields` is the one validator that reads it: values of
the wrong type are converted where that is safe (``"1e-3"`` → ``0.001``, ``"4"`` → ``4``,
``"none"`` → ``None``) and refused otherwise, with one message naming the field and what
it expects; each class adds only the rules that join several fields (``_rules``).

A *scale* (``smoke``, ``demo``, ``paper``; defaults in :mod:`workbench.scales`) and a
*method* (:data:`METHODS`: ``semisupcon``, ``clmr``, ``simclr``, ``supcon``) are only sets
of defaults; every field can be overridden.  Resolution order: dataclass defaults <
scale < method < explicit overrides.

>>> cfg = resolve_config(scale="demo", method="semisupcon", support="nsynth_pitch")
>>> cfg.b_s, cfg.temperature
(0.5, 0.1)
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .data.msa import (DEFAULT_MASK_BANDS, DEFAULT_MASK_FRAMES, DEFAULT_MIN_SHIFT_S, DEFAULT_SILENCE_DB,
                       DEFAULT_STEM_TRIES, PAIRS, SILENCE_MODES, STEM_SAMPLING)
from .scales import (CLMR_CLIP_SAMPLES, COLA_CLIP_SAMPLES, COLA_LR_GAMMA, COLA_MAX_SHIFT_S, COLA_PAPER_LR,
                     COLA_SAMPLE_RATE, DEMO_CLIP_SAMPLES, DEMO_MIN_VIEW_DB, DEMO_SAMPLE_RATE, DEMO_STEPS,
                     PAPER_LR_BY_METHOD, PAPER_SAMPLE_RATE, SCALE_NAMES, SEMISUPCON_CLIP_SAMPLES,
                     SMOKE_CLIP_SAMPLES, scale_defaults)
from .suggest import did_you_mean, name_hints

__all__ = ["PretrainConfig", "COLAConfig", "SupervisedConfig", "SCALES", "METHODS", "ConfigError", "option",
           "check_fields", "check_value", "field_help", "resolve_config", "load_config", "resolve_cola_config",
           "load_cola_config", "read_yaml_mapping", "method_for", "method_fixed", "LABELED_KINDS", "HEADS", "LOGGERS",
           # scale constants, kept importable from here
           "PAPER_SAMPLE_RATE", "SEMISUPCON_CLIP_SAMPLES", "CLMR_CLIP_SAMPLES", "DEMO_SAMPLE_RATE",
           "DEMO_CLIP_SAMPLES", "SMOKE_CLIP_SAMPLES", "DEMO_STEPS", "DEMO_MIN_VIEW_DB"]


class ConfigError(ValueError):
    """An invalid configuration value, with the field name and the allowed range.

    ``field`` and ``why`` (when set) hold the field's name and the reason alone, so that
    callers (notebook parameters, experiment files) can word the message their own way."""

    def __init__(self, message: str, field: str | None = None, why: str | None = None):
        super().__init__(message)
        self.field, self.why = field, why


#: Task kinds that can be a support set (labelled); a ``folder`` task qualifies when it has labels.
LABELED_KINDS = ("multiclass", "multilabel")
#: Heads between the COLA encoder output and the bilinear similarity (:func:`workbench.train.cola.projection_head`).
HEADS = ("cola", "msa", "linear")
#: COLA uses no temperature (the bilinear scores are used as logits): the original COLA recipe is
#: head="cola", normalize=False, bilinear_init_std=BILINEAR_INIT_STD, temperature=COLA_TEMPERATURE.
COLA_TEMPERATURE = 1.0
#: MSA default on L2-normalised projections with W = identity at init: NT-Xent's cosine scale
#: (the poster gives no temperature; docs/method.md, departures).
MSA_TEMPERATURE = 0.1
#: COLA's bilinear weight initialiser: Keras ``random_normal`` (mean 0, std 0.05).
BILINEAR_INIT_STD = 0.05
#: Lightning precisions a run accepts (``auto``: see :func:`workbench.train.run.precision`).
PRECISIONS = ("auto", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "bf16-true", "16-true",
              "64-true", "64")
#: Experiment loggers besides the per-step ``metrics.csv`` that every run writes.
LOGGERS = ("tensorboard", "csv", "wandb", "mlflow")


# =========================================================================== field metadata
def option(default: Any = dataclasses.MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None,
           choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None, low: float | None = None,
           high: float | None = None, low_open: bool = False, high_open: bool = False,
           task: Sequence[str] | None = None, finite: bool = True, valid: Callable[[Any], bool] | None = None,
           why: str | None = None) -> Any:
    """A dataclass field whose metadata the validator reads.

    choices: allowed values (or a function returning them, read at validation time);
    low/high (+ ``*_open``): numeric range; task: the value is a task name of one of these
    kinds (``()``: any kind); finite: floats must be finite; valid: a predicate the
    (converted) value must satisfy; why: the message shown
    instead of the generated one when the range or choice fails.
    """
    meta = {"doc": doc, "choices": choices, "low": low, "high": high, "low_open": low_open,
            "high_open": high_open, "task": task, "finite": finite, "valid": valid,
            "why": why}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


_NONE_WORDS = ("none", "null", "~")


def _bad(name: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"invalid {name}={value!r}: {why}", field=name, why=why)


def _type_name(tp: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             dict: "a mapping", list: "a list", type(None): "null"}
    args = typing.get_args(tp)
    if args:
        return " or ".join(_type_name(a) for a in args)
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce_one(tp: Any, value: Any) -> Any:
    """``value`` as type ``tp``, or raise ``TypeError``/``ValueError``."""
    if tp is type(None):
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            return None
        raise TypeError
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        raise TypeError
    if isinstance(value, bool):  # True is not the number 1 here
        raise TypeError
    if tp is int:
        if isinstance(value, int):
            return value
        number = float(value) if isinstance(value, (float, str)) else None
        if number is None or not math.isfinite(number) or number != int(number):
            raise TypeError
        return int(number)
    if tp is float:
        if isinstance(value, float):
            return value
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):
            return float(value)
        raise TypeError
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (Path, int, float)):
            return str(value)
        raise TypeError
    if tp is list:
        if isinstance(value, (list, tuple)):
            return list(value)
        raise TypeError
    if tp is dict:
        if isinstance(value, dict):
            return dict(value)
        raise TypeError
    return value


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """``value`` as the field type ``tp`` (a union is tried null first, then bool, int, float,
    the rest): ``"4"`` is 4 for ``int | str``, ``"weighted"`` stays a word."""
    options = typing.get_args(tp) or (tp,)
    for t in sorted(options, key=lambda t: {type(None): 0, bool: 1, int: 2, float: 3}.get(t, 4)):
        try:
            return _coerce_one(t, value)
        except (TypeError, ValueError):
            continue
    raise _bad(name, value, f"expected {_type_name(tp)}")


def _choices(meta: dict) -> list | None:
    choices = meta.get("choices")
    if choices is None:
        return None
    return list(choices() if callable(choices) else choices)


def _check_task(name: str, value: str, kinds: Sequence[str], why: str | None = None) -> None:
    from .data.tasks import TASKS, UnknownTaskError, get_spec

    try:
        spec = get_spec(value)
    except UnknownTaskError:
        raise _bad(name, value, f"unknown task{did_you_mean(value, TASKS)}; known tasks: {', '.join(sorted(TASKS))}") \
            from None
    if kinds and spec.kind not in kinds and not (spec.dataset == "folder" and set(kinds) & set(LABELED_KINDS)):
        fitting = sorted(t for t, s in TASKS.items() if s.kind in kinds)
        if why:
            raise _bad(name, value, f"task {value} is {spec.kind}; {why}: {', '.join(fitting)}")
        what = ("a classification or tagging task" if tuple(kinds) == LABELED_KINDS
                else f"a {' or '.join(kinds)} task")
        raise _bad(name, value, f"task {value} is {spec.kind}; {name} must be {what} "
                                f"({' or '.join(kinds)}), e.g. {', '.join(fitting[:6])}")


def check_value(cls: type, name: str, value: Any) -> Any:
    """One field of ``cls`` checked and normalised on its own (the notebook parameters use it)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ConfigError(f"unknown {cls.__name__} field {name}{did_you_mean(name, fields, n=1)}")
    return _check_field(name, value, typing.get_type_hints(cls)[name], fields[name].metadata)


def _check_field(name: str, raw: Any, tp: Any, meta: Any) -> Any:
    value = _coerce(name, raw, tp)
    if value is None:
        return None
    why = meta.get("why")
    if isinstance(value, float) and meta.get("finite", True) and not math.isfinite(value):
        raise _bad(name, raw, f"expected a finite number, got {'NaN' if math.isnan(value) else value}")
    if meta.get("valid") is not None and not meta["valid"](value):
        raise _bad(name, raw, why or "invalid value")
    choices = _choices(meta)
    if choices is not None and value not in choices:
        raise _bad(name, raw, why or f"choose one of {sorted(map(str, choices))}{did_you_mean(value, choices)}")
    low, high = meta.get("low"), meta.get("high")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (low is not None or high is not None):
        too_low = low is not None and (value <= low if meta.get("low_open") else value < low)
        too_high = high is not None and (value >= high if meta.get("high_open") else value > high)
        if too_low or too_high:
            span = (f"{'(' if meta.get('low_open') else '['}{'-inf' if low is None else f'{low:g}'}, "
                    f"{'inf' if high is None else f'{high:g}'}{')' if meta.get('high_open') else ']'}")
            raise _bad(name, raw, f"out of range: allowed {span}" + (f" ({why})" if why else ""))
    if meta.get("task") is not None:
        _check_task(name, value, meta["task"], why)
    return value


def check_fields(cfg: Any) -> None:
    """The one validator: every field of the dataclass ``cfg`` against its type and metadata
    (values converted in place where that is safe)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        setattr(cfg, f.name, _check_field(f.name, getattr(cfg, f.name), hints[f.name], f.metadata))


def field_help(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, doc)`` of every field of ``cls`` (``--help`` prints them)."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        doc = f.metadata.get("doc", "")
        choices = _choices(f.metadata) if f.metadata.get("choices") is not None else None
        if choices is not None and not callable(f.metadata["choices"]):
            doc = f"{doc} [{', '.join(map(str, choices))}]".strip()
        rows.append((f.name, _type_name(hints[f.name]), default, doc))
    return rows


def _known_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _refuse_unknown(cls: type, keys, what: str) -> None:
    unknown = sorted(set(keys) - set(_known_fields(cls)))
    if unknown:
        raise ConfigError(f"unknown {what} field(s): {name_hints(unknown, _known_fields(cls))}")


class _Config:
    """Behaviour shared by the trainers' configs."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def validate(self):
        """Check every field (:func:`check_fields`), then the rules joining fields; returns self."""
        check_fields(self)
        self._rules()
        return self

    def _rules(self) -> None:
        pass

    def _bad(self, name: str, why: str) -> ConfigError:
        return _bad(name, getattr(self, name), why)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config"):
        """A validated config from a mapping (unknown keys are an error)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of config fields, got {type(data).__name__}")
        _refuse_unknown(cls, data, f"{cls.__name__} ({where})")
        return cls(**data).validate()


def read_yaml_mapping(path: str | Path, allowed, *, expected: str, unknown: str,
                      error: type[Exception] = ConfigError) -> dict:
    """A YAML file that must be a mapping with keys among ``allowed``, read without running code.

    Errors name the file: ``"{path}: expected " + expected`` for a non-mapping and
    ``"{path}: " + unknown.format(keys=...)`` for unknown keys, raised as ``error``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected {expected}")
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise error(f"{path}: " + unknown.format(keys=extra))
    return data


def _load(cls: type, path: str | Path):
    path = Path(path)
    data = read_yaml_mapping(path, _known_fields(cls), expected="a mapping of config fields",
                             unknown="unknown config field(s) {keys}; was it written by another version?")
    try:
        return cls(**data).validate()
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _encoder_names() -> list[str]:
    from .models import ENCODER_PRESETS, ENCODERS

    return sorted(set(ENCODERS) | set(ENCODER_PRESETS))


def _presets() -> list[str]:
    from .augment import PRESETS

    return sorted(PRESETS)


def _methods() -> list[str]:
    return sorted(METHODS)


def _check_encoder(cfg: Any) -> None:
    if not isinstance(cfg.encoder, dict) or "name" not in cfg.encoder:
        raise cfg._bad("encoder", "a dict with at least a 'name' (see workbench.models.ENCODERS)")
    if cfg.encoder["name"] not in _encoder_names():
        raise cfg._bad("encoder", f"unknown encoder name{did_you_mean(cfg.encoder['name'], _encoder_names())}; "
                                  f"choose from {_encoder_names()}")


#: The package each optional logger needs (``pip install 'workbench[<logger>]'``).
LOGGER_PACKAGES = {"wandb": "wandb", "mlflow": "mlflow"}


def _check_logger(cfg: Any) -> None:
    import importlib.util

    package = LOGGER_PACKAGES.get(cfg.logger)
    if package and importlib.util.find_spec(package) is None:
        raise cfg._bad("logger", f"needs the {package} package (pip install 'workbench[{package}]'), or use "
                                 "logger=tensorboard or logger=csv")


# =========================================================================== pretraining
@dataclass
class PretrainConfig(_Config):
    name: str = option("pretrain", "run name (the run folder is <timestamp>-<name>)")
    method: str = option("semisupcon", "method preset (workbench.config.METHODS)", choices=_methods)
    scale: str = option("demo", "scale preset (workbench.scales)", choices=SCALE_NAMES)
    # data
    support: str | None = option(None, "labelled support task (a classification or tagging task), or null",
                                 task=LABELED_KINDS)
    unlabeled: str | None = option("fma_medium", "unlabelled pool task, or null", task=())
    support_root: str | None = option(None, "data root of the support task (null: resolved per data set)")
    unlabeled_root: str | None = option(None, "data root of the unlabelled pool (null: resolved per data set)")
    p: float = option(1.0, "fraction of the labelled training set ever seen (applied once)", low=0.0, high=1.0,
                      low_open=True)
    b_s: float = option(0.0, "fraction of each batch drawn from the labelled set", low=0.0, high=1.0)
    n_views: int = option(2, "views N per clip", low=1)
    view_strategy: str = option("adjacent", "adjacent chunks (SemiSupCon) or random crops (CLMR)",
                                choices=("adjacent", "random"),
                                why="choose 'adjacent' (SemiSupCon) or 'random' (CLMR)")
    criterion: int | str = option(1, "shared labels needed for a label positive (an integer >= 1), or 'weighted'",
                                  valid=lambda v: v == "weighted" or (isinstance(v, int) and v >= 1),
                                  why="an integer >= 1 (shared labels needed for a positive) or 'weighted'")
    sample_rate: int = option(DEMO_SAMPLE_RATE, "audio sample rate (Hz)", low=1)
    clip_samples: int = option(DEMO_CLIP_SAMPLES, "samples per view", low=1)
    # model
    encoder: dict = option(doc="encoder: {name, **kwargs} (workbench.models.ENCODERS)",
                           factory=lambda: {"name": "samplecnn_demo"})
    proj_hidden: int = option(512, "projection head hidden size", low=1)
    proj_dim: int = option(128, "projection size", low=1)
    # augmentation
    preset: str = option("semisupcon", "augmentation preset (workbench.augment.PRESETS)", choices=_presets)
    severity: float = option(1.0, "augmentation severity s (1: the training chain)", low=0.0)
    augment_exclude: list = option(doc="transforms left out of the chain, e.g. [pitch_shift]", factory=list)
    labeled_augment_exclude: list = option(doc="... and left out for labelled rows only", factory=list)
    min_view_db: float | None = option(None, "redraw crops whose quietest view is below this level (dBFS)",
                                       low=-200, high=0, low_open=True, high_open=True,
                                       why="a level in dBFS between -200 and 0 (e.g. -50), or null to keep "
                                           "every crop")
    # optimisation
    batch_size: int = option(48, "clips per device per step; rows = batch_size * n_views", low=1)
    steps: int = option(600, "training steps", low=1)
    lr: float = option(1e-4, "Adam learning rate", low=0.0, low_open=True)
    weight_decay: float = option(0.0, "Adam weight decay", low=0.0)
    temperature: float = option(0.1, "loss temperature τ", low=0.0, low_open=True)
    grad_clip: float | None = option(None, "gradient norm clip, or null", low=0.0, low_open=True,
                                     why="null for no clipping")
    precision: str = option("auto", "auto: bf16-mixed where the device has native bf16, 16-mixed on older GPUs, "
                                    "else 32", choices=PRECISIONS)
    # hardware
    accelerator: str = option("auto", "Lightning accelerator (auto, cpu, gpu, …)")
    devices: int | str | list = option(1, "devices per node (an integer, 'auto', or a list of device indices)")
    num_nodes: int = option(1, "nodes", low=1)
    strategy: str = option("auto", "Lightning strategy (auto: ddp with more than one device)")
    sync_batchnorm: bool = option(False, "SyncBatchNorm across devices")
    num_workers: int = option(2, "data loader workers", low=0)
    compile: bool = option(False, "torch.compile the encoder")
    # bookkeeping
    seed: int = option(0, "seed of the p-subset, batches, crops and weights", low=0)
    log_every: int = option(10, "log every this many steps", low=1)
    checkpoint_every: int = option(200, "checkpoint every this many steps", low=1)
    runs_dir: str = option("runs", "folder the run directory is created in (relative: to the project folder)")
    logger: str = option("tensorboard", "experiment logger besides metrics.csv (wandb: offline; mlflow: a local "
                                        "file store in the run directory)", choices=LOGGERS)

    @property
    def supervised(self) -> bool:
        return self.b_s > 0

    def _rules(self) -> None:
        from .augment import preset_transforms
        from .data.batches import labeled_per_batch

        if self.b_s > 0 and self.support is None:
            raise self._bad("b_s", "b_s > 0 needs a labelled support task (support=...)")
        if self.b_s < 1 and self.unlabeled is None and self.support is None:
            raise self._bad("unlabeled", "self-supervised rows need an unlabeled pool or a support task")
        if self.support is not None and self.b_s > 0 and labeled_per_batch(self.batch_size, self.b_s) == 0:
            raise self._bad("b_s", f"floor(batch_size*b_s) = 0 labelled clips per batch of {self.batch_size}")
        if self.n_views == 1 and self.b_s < 1:
            raise self._bad("n_views", "self-supervised positives need at least 2 views per clip")
        names = preset_transforms(self.preset)
        for key in ("augment_exclude", "labeled_augment_exclude"):
            if not set(getattr(self, key)) <= set(names):
                raise self._bad(key, f"a list of transform names of preset {self.preset!r}: {names}")
        _check_encoder(self)
        _check_logger(self)


#: Method defaults: the loss is always SemiSupCon's; methods differ in targets and recipe.
#: The data fields a method sets (:data:`METHOD_DATA_FIELDS`) define it: notebook values for
#: them are ignored (:func:`method_fixed`).
METHODS: dict[str, dict[str, Any]] = {
    "semisupcon": dict(temperature=0.1, view_strategy="adjacent", preset="semisupcon", proj_dim=128),
    "simclr": dict(temperature=0.1, view_strategy="adjacent", preset="semisupcon", proj_dim=128, b_s=0.0,
                   support=None, p=1.0),
    "clmr": dict(temperature=0.5, view_strategy="random", preset="clmr", proj_dim=64, b_s=0.0, support=None,
                 p=1.0, clip_samples_paper=CLMR_CLIP_SAMPLES),
    "supcon": dict(temperature=0.1, view_strategy="adjacent", preset="semisupcon", proj_dim=128, b_s=1.0,
                   p=1.0, unlabeled=None),
}
#: The data fields that define a method when its preset sets them.
METHOD_DATA_FIELDS = ("support", "unlabeled", "p", "b_s")
#: A method without a support task is another method (SemiSupCon without labels is SimCLR).
METHOD_WITHOUT_SUPPORT = {"semisupcon": "simclr"}
_METHOD_LR_PAPER = PAPER_LR_BY_METHOD
#: Pretraining scale defaults (``workbench.scales``, trainer ``pretrain``), by scale name.
SCALES: dict[str, dict[str, Any]] = {s: scale_defaults(s, "pretrain") for s in SCALE_NAMES}


def method_fixed(method: str) -> set[str]:
    """The data fields ``method`` fixes by definition (simclr: support, p, b_s; supcon: unlabeled, p, b_s)."""
    return {k for k in METHOD_DATA_FIELDS if k in METHODS[method]}


def method_for(method: str, support: str | None) -> str:
    """The method a run really is: ``semisupcon`` without a support task is ``simclr``."""
    return METHOD_WITHOUT_SUPPORT.get(method, method) if support is None else method


def resolve_config(scale: str = "demo", method: str = "semisupcon", **overrides: Any) -> PretrainConfig:
    """Defaults < scale < method < overrides, then validated."""
    if scale not in SCALE_NAMES:
        raise _bad("scale", scale, f"choose one of {sorted(SCALE_NAMES)}{did_you_mean(scale, SCALE_NAMES)}")
    if method not in METHODS:
        raise _bad("method", method, f"choose one of {sorted(METHODS)}{did_you_mean(method, METHODS)}")
    _refuse_unknown(PretrainConfig, overrides, "config")
    values: dict[str, Any] = scale_defaults(scale, "pretrain")
    method_defaults = dict(METHODS[method])
    clmr_clip = method_defaults.pop("clip_samples_paper", None)
    values.update(method_defaults)
    if scale == "paper":
        values["lr"] = PAPER_LR_BY_METHOD[method]
        if clmr_clip is not None:
            values["clip_samples"] = clmr_clip
    values.update(overrides)
    values["scale"], values["method"] = scale, method
    # the encoder records the rate and length it is trained at (read back by load_encoder)
    encoder = values["encoder"]
    if not isinstance(encoder, dict) or "name" not in encoder:
        raise _bad("encoder", encoder, "a dict with at least a 'name' (see workbench.models.ENCODERS)")
    values["encoder"] = {**encoder, "sample_rate": values.get("sample_rate", DEMO_SAMPLE_RATE),
                         "clip_samples": values.get("clip_samples", DEMO_CLIP_SAMPLES)}
    if "name" not in overrides:
        values["name"] = method if values.get("support") is None else f"{method}-{values['support']}"
    return PretrainConfig(**values).validate()


def load_config(path: str | Path) -> PretrainConfig:
    """Read a saved ``config.yaml`` back (unknown keys are an error)."""
    return _load(PretrainConfig, path)


# =========================================================================== COLA-MSA
def _stem_sampling() -> Sequence[str]:
    return STEM_SAMPLING


def _pairs() -> Sequence[str]:
    return PAIRS


def _silence_modes() -> Sequence[str]:
    return SILENCE_MODES


@dataclass
class COLAConfig(_Config):
    """Configuration of a COLA-MSA pretraining run (every field can be overridden)."""

    name: str = option("cola-msa", "run name")
    scale: str = option("demo", "scale preset (workbench.scales)", choices=SCALE_NAMES)
    # data
    pool: str = option("fma_medium", "any unlabelled task whose manifest has stems", task=("unlabeled",),
                       why="MSA pretrains on an unlabelled pool with stems; choose one of")
    pool_root: str | None = option(None, "data root of the pool (null: resolved per data set)")
    pool_splits: list = option(doc="splits of the pool to train on", factory=lambda: ["train"])
    stems: list | None = option(None, "restrict to these stem names (e.g. [drums]); null = all")
    pairs: str = option("source", "positive of a mix crop: source (MSA), mix (COLA: a second mix crop), mask "
                                  "(COLA + random soft masking)", choices=_pairs)
    stem_sampling: str = option("batch", "batch: one stem per batch (poster: intra-batch homogeneity); example: "
                                         "a stem per pair", choices=_stem_sampling)
    sample_rate: int = option(COLA_SAMPLE_RATE, "audio sample rate (Hz)", low=1)
    clip_samples: int = option(COLA_CLIP_SAMPLES, "samples per crop", low=1)
    min_shift_s: float = option(DEFAULT_MIN_SHIFT_S, "least shift of the stem crop (s)")
    max_shift_s: float = option(COLA_MAX_SHIFT_S, "the stem crop starts within ± this of the mix crop (s)")
    time_shift: bool = option(True, "shift the positive crop against the mix crop (false: aligned, the ablation)")
    silence_db: float | None = option(DEFAULT_SILENCE_DB, "stem crops below this RMS (dBFS) are silent; null: "
                                                          "none is",
                                      why="a level in dBFS (e.g. -50) or None to accept silent stem crops")
    silence: str = option("replace", "silent stem crops: replace (zeros, marked: poster), skip (redrawn: "
                                     "non-silent only), keep", choices=_silence_modes)
    stem_tries: int = option(DEFAULT_STEM_TRIES, "redraws of a silent stem crop (silence=skip)", low=1)
    mask_bands: int = option(DEFAULT_MASK_BANDS, "random soft masks (pairs=mask): frequency bands of the grid",
                             low=1)
    mask_frames: int = option(DEFAULT_MASK_FRAMES, "random soft masks (pairs=mask): time cells of the grid", low=1)
    # model
    encoder: dict = option(doc="encoder: {name, **kwargs}", factory=lambda: {"name": "cola"})
    head: str = option("linear", "head between encoder and similarity (linear: the poster's linear "
                                 "projection; cola: COLA's LayerNorm + tanh)", choices=HEADS)
    proj_dim: int | None = option(None, "similarity space size (null: the encoder's out_dim; 'cola' head: null)",
                                  low=1, why="None (the encoder's out_dim) or a positive integer")
    normalize: bool = option(True, "L2-normalise the projections before the bilinear similarity")
    bilinear_init_std: float | None = option(None, "null: W = identity at init; COLA: W ~ N(0, 0.05²)",
                                             low=0.0, low_open=True,
                                             why="None (identity W) or a positive standard deviation")
    temperature: float = option(MSA_TEMPERATURE, "temperature of the bilinear scores (COLA: 1)", low=0.0,
                                low_open=True)
    centroid: bool = option(True, "silent positives enter the loss as their centroid (poster); false: each one")
    # augmentation (none in MSA: the pair itself is the view)
    augment: str | None = option(None, "an augment.PRESETS name applied to mix and stem crops, or null (MSA)",
                                 choices=_presets)
    severity: float = option(1.0, "augmentation severity", low=0.0)
    # optimisation
    batch_size: int = option(64, "pairs per device per step", low=1)
    steps: int = option(600, "training steps", low=1)
    lr: float = option(COLA_PAPER_LR, "Adam learning rate", low=0.0, low_open=True)
    lr_milestones: list = option(doc="steps at which lr is multiplied by lr_gamma", factory=list)
    lr_gamma: float = option(COLA_LR_GAMMA, "learning-rate decay factor", low=0.0, high=1.0, low_open=True)
    weight_decay: float = option(0.0, "Adam weight decay", low=0.0)
    grad_clip: float | None = option(None, "gradient norm clip, or null", low=0.0, low_open=True,
                                     why="null for no clipping")
    precision: str = option("auto", "Lightning precision (auto: as for pretraining)", choices=PRECISIONS)
    # hardware
    accelerator: str = option("auto", "Lightning accelerator")
    devices: int | str | list = option(1, "devices per node")
    num_nodes: int = option(1, "nodes", low=1)
    strategy: str = option("auto", "Lightning strategy")
    sync_batchnorm: bool = option(False, "SyncBatchNorm across devices")
    num_workers: int = option(2, "data loader workers", low=0)
    compile: bool = option(False, "torch.compile the encoder")
    # bookkeeping
    seed: int = option(0, "seed", low=0)
    log_every: int = option(10, "log every this many steps", low=1)
    checkpoint_every: int = option(100, "checkpoint every this many steps", low=1)
    runs_dir: str = option("runs", "folder the run directory is created in (relative: to the project folder)")
    logger: str = option("tensorboard", "experiment logger besides metrics.csv", choices=LOGGERS)

    def _rules(self) -> None:
        _check_logger(self)
        if not self.pool_splits or not set(self.pool_splits) <= {"train", "valid", "test"}:
            raise self._bad("pool_splits", "a non-empty list drawn from ['train', 'valid', 'test']")
        if self.stems is not None and (not self.stems or not all(isinstance(s, str) for s in self.stems)):
            raise self._bad("stems", "None (all stems) or a non-empty list of stem names, e.g. ['drums', 'bass']")
        if self.head == "cola" and self.proj_dim is not None:
            raise self._bad("proj_dim", "the 'cola' head (LayerNorm + tanh) keeps the encoder's out_dim: set "
                                        "proj_dim=None or head='msa' (Linear + LayerNorm + tanh)")
        if self.batch_size < 2:
            raise self._bad("batch_size", "in-batch negatives need at least 2 pairs per batch")
        if self.pairs == "mix" and not self.time_shift:
            raise self._bad("time_shift", "pairs='mix' without a shift makes the two crops identical")
        if self.min_shift_s < 0 or self.max_shift_s < self.min_shift_s:
            raise ConfigError(f"invalid min_shift_s={self.min_shift_s!r}, max_shift_s={self.max_shift_s!r}: "
                              "need 0 <= min_shift_s <= max_shift_s (seconds)")
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.lr_milestones):
            raise self._bad("lr_milestones", "a list of positive step numbers, e.g. [5000]")
        _check_encoder(self)
        for key in ("sample_rate", "clip_samples"):
            if key in self.encoder and int(self.encoder[key]) != int(getattr(self, key)):
                raise ConfigError(f"invalid encoder[{key!r}]={self.encoder[key]!r}: the encoder must run at the "
                                  f"data's {key}={getattr(self, key)}; drop it from encoder= or set {key}=")


#: COLA scale defaults (``workbench.scales``, trainer ``cola``), by scale name.
COLA_SCALES: dict[str, dict[str, Any]] = {s: scale_defaults(s, "cola") for s in SCALE_NAMES}


def resolve_cola_config(scale: str = "demo", **overrides: Any) -> COLAConfig:
    """Dataclass defaults < scale < overrides, then validated.

    The encoder dict records the sample rate and clip length it is trained at (read back
    by :func:`workbench.models.load_encoder` and :func:`workbench.embed.extract`).
    """
    if scale not in SCALE_NAMES:
        raise _bad("scale", scale, f"choose one of {sorted(SCALE_NAMES)}{did_you_mean(scale, SCALE_NAMES)}")
    _refuse_unknown(COLAConfig, overrides, "COLA config")
    values: dict[str, Any] = {**scale_defaults(scale, "cola"), **overrides, "scale": scale}
    encoder = values.get("encoder", {"name": "cola"})
    if not isinstance(encoder, dict):
        raise _bad("encoder", encoder, "a dict with at least a 'name' (see workbench.models.ENCODERS)")
    values["encoder"] = dict(encoder)
    values["encoder"].setdefault("sample_rate", values.get("sample_rate", COLA_SAMPLE_RATE))
    values["encoder"].setdefault("clip_samples", values.get("clip_samples", COLA_CLIP_SAMPLES))
    if "name" not in overrides:
        targeted = values.get("stems")
        values["name"] = "cola-msa" if not targeted else f"cola-msa-{'+'.join(map(str, targeted))}"
    return COLAConfig(**values).validate()


def load_cola_config(path: str | Path) -> COLAConfig:
    """Read a saved ``config.yaml`` back (unknown keys are an error)."""
    return _load(COLAConfig, path)


# =========================================================================== supervised baseline
@dataclass
class SupervisedConfig(_Config):
    task: str = option("nsynth_pitch", "the downstream task trained end to end",
                       task=("multiclass", "multilabel", "regression"))
    root: str | None = option(None, "data root of the task (null: resolved per data set)")
    scale: str = option("demo", "scale preset (workbench.scales)", choices=SCALE_NAMES)
    name: str | None = option(None, "run name (null: supervised-<task>)")
    encoder: dict = option(doc="encoder: {name, **kwargs}", factory=lambda: {"name": "samplecnn_demo"})
    sample_rate: int = option(DEMO_SAMPLE_RATE, "audio sample rate (Hz)", low=1)
    clip_samples: int = option(DEMO_CLIP_SAMPLES, "samples per crop", low=1)
    hidden: int | None = option(None, "classifier hidden size (null: linear head on the encoder output)", low=1)
    dropout: float = option(0.1, "classifier dropout", low=0.0, high=1.0, high_open=True)
    preset: str | None = option(None, "augmentation during training (null: none, as the paper's baseline)",
                                choices=_presets)
    batch_size: int = option(48, "clips per batch", low=1)
    max_steps: int = option(600, "training steps at most", low=1)
    val_every: int = option(50, "validate every this many steps", low=1)
    patience: int = option(5, "validations without improvement before stopping", low=1)
    lr: float = option(3e-4, "Adam learning rate", low=0.0, low_open=True)
    seed: int = option(0, "seed", low=0)
    num_workers: int = option(2, "data loader workers", low=0)
    runs_dir: str = option("runs", "folder the run directory is created in")

    @classmethod
    def for_scale(cls, scale: str, **overrides) -> "SupervisedConfig":
        if scale not in SCALE_NAMES:
            raise _bad("scale", scale, f"choose one of {sorted(SCALE_NAMES)}{did_you_mean(scale, SCALE_NAMES)}")
        defaults = {"scale": scale, **scale_defaults(scale, "supervised"), **overrides}
        _refuse_unknown(cls, defaults, "supervised config")
        return cls(**defaults).validate()

    def _rules(self) -> None:
        _check_encoder(self)
