"""Validation of notebook parameters: the first thing every notebook does after its
``parameters`` cell.

A parameter name means the same thing in every notebook, so the rules are keyed by name
(:data:`RULES`). :func:`validate` checks each given parameter against its rule, normalises
it (``"a,b"`` → ``["a", "b"]``, ``"none"`` → ``None``, ``"2"`` → ``2`` …) and returns the
values as attributes; anything wrong stops the notebook with a :class:`ParameterError`
(a ``ValueError``) naming the parameter, what is allowed and, for a misspelt task name,
the closest known names::

    >>> args = validate(scale="demo", support="nsynth_pich")
    Traceback (most recent call last):
    ParameterError: parameter support='nsynth_pich': unknown task (did you mean nsynth_pitch?) …

Relative paths (``out_dir``, ``runs_dir`` …) are resolved against the project folder
(:func:`project_dir`), so a notebook opened in JupyterLab from ``notebooks/`` and one run
by papermill from the repository root write to the same places.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .scales import SCALE_NAMES
from .suggest import did_you_mean, name_hints

__all__ = ["ParameterError", "Rule", "RULES", "PATH_PARAMS", "SCALES", "NONE_WORDS", "validate", "project_dir", "resolve_path",
           "task_list", "Params"]

#: The scales every notebook knows (GUIDE 1): a scale is only a set of defaults (workbench.scales).
SCALES = SCALE_NAMES
#: Strings that mean "no value" for optional parameters passed on papermill's command line.
NONE_WORDS = ("", "none", "null", "None")
#: Files whose presence marks the project folder.
PROJECT_MARKERS = ("pyproject.toml", "notebooks")


class ParameterError(ValueError):
    """A notebook parameter with an invalid value; the message names it and the fix."""


Params = SimpleNamespace


def _fail(name: str, value: Any, why: str) -> ParameterError:
    return ParameterError(f"parameter {name}={value!r}: {why}")


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in NONE_WORDS)


@dataclass(frozen=True)
class Rule:
    """How one parameter is checked and normalised.

    check: ``f(name, value) -> normalised value``; raises :class:`ParameterError`.
    doc: one line shown in ``docs/notebooks.md`` and in error messages.
    """

    check: Callable[[str, Any], Any]
    doc: str


# --------------------------------------------------------------------------- checks

def _choice(values: Sequence[Any] | Callable[[], Sequence[Any]], optional: bool = False):
    def check(name: str, value: Any) -> Any:
        allowed = list(values() if callable(values) else values)
        if optional and _is_none(value):
            return None
        if value in allowed:
            return value
        hint = did_you_mean(value, allowed, n=2, sep=" or ")
        raise _fail(name, value, f"choose one of {', '.join(map(str, allowed))}{hint}")
    return check


def _number(low: float | None = None, high: float | None = None, *, integer: bool = False,
            low_open: bool = False, high_open: bool = False, optional: bool = False):
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    span = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"

    def check(name: str, value: Any) -> Any:
        if optional and _is_none(value):
            return None
        if isinstance(value, bool):
            raise _fail(name, value, f"expected a number in {span}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _fail(name, value, f"expected {'an integer' if integer else 'a number'} in {span}") from None
        if math.isnan(number):
            raise _fail(name, value, f"expected a number in {span}, got NaN")
        if integer:
            if number != int(number):
                raise _fail(name, value, f"expected an integer in {span}")
            number = int(number)
        too_low = low is not None and (number <= low if low_open else number < low)
        too_high = high is not None and (number >= high if high_open else number > high)
        if too_low or too_high:
            raise _fail(name, value, f"out of range: allowed {span}")
        return number
    return check


def _config_field(optional: bool = False, field: str | None = None):
    """A parameter that is a :class:`~workbench.config.PretrainConfig` field: its notebook string
    is converted and checked by the config's own rule (one place for each range)."""
    def check(name: str, value: Any) -> Any:
        from .config import ConfigError, PretrainConfig, check_value

        if optional and _is_none(value):
            return None
        try:
            return check_value(PretrainConfig, field or name, value)
        except ConfigError as err:
            raise _fail(name, value, err.why or str(err)) from None
    return check


def _known_tasks() -> list[str]:
    from .data.tasks import TASKS

    return sorted(TASKS)


def _task_name(name: str, value: Any, kinds: Sequence[str] | None) -> str:
    from .data.tasks import TASKS

    if not isinstance(value, str) or value not in TASKS:
        raise _fail(name, value, f"unknown task{did_you_mean(value, TASKS)}; known tasks: {', '.join(sorted(TASKS))}")
    if kinds is not None and TASKS[value].kind not in kinds and TASKS[value].dataset != "folder":
        # (a folder's kind is decided by its data root: unlabelled, or labelled by its CSV)
        fitting = sorted(t for t, spec in TASKS.items() if spec.kind in kinds)
        raise _fail(name, value, f"task {value} is {TASKS[value].kind}; this parameter needs a "
                                 f"{' or '.join(kinds)} task, e.g. {', '.join(fitting[:6])}")
    return value


def _task(kinds: Sequence[str] | None = None, optional: bool = False):
    def check(name: str, value: Any) -> Any:
        if optional and _is_none(value):
            return None
        return _task_name(name, value, kinds)
    return check


def task_list(value: Any) -> list[str]:
    """A list of names from a list or a comma/space separated string (papermill ``-p``)."""
    if _is_none(value):
        return []
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise TypeError(f"expected a list or a comma-separated string, got {type(value).__name__}")


def _tasks(kinds: Sequence[str] | None = None, allow_empty: bool = False):
    def check(name: str, value: Any) -> list[str]:
        names = _free_names(name, value)
        if not names and not allow_empty:
            raise _fail(name, value, "name at least one task, e.g. nsynth_pitch,mtat_top50")
        return [_task_name(name, n, kinds) for n in names]
    return check


def _numbers(low: float | None = None, high: float | None = None, *, integer: bool = False,
             allow_empty: bool = False):
    item = _number(low, high, integer=integer)

    def check(name: str, value: Any) -> list:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [value]
        else:
            values = _free_names(name, value)
        if not values and not allow_empty:
            raise _fail(name, value, "give at least one value, e.g. 0,1,2")
        return [item(name, v) for v in values]
    return check


def _names(choices: Callable[[], Sequence[str]]):
    choose = _choice(choices)

    def check(name: str, value: Any) -> list[str]:
        names = _free_names(name, value)
        if not names:
            raise _fail(name, value, f"name at least one of {', '.join(choices())}")
        return [choose(name, n) for n in names]
    return check


def _free_names(name: str, value: Any) -> list[str]:
    """``value`` as a list of strings (a list, or "a,b" / "a b"); the field's error otherwise."""
    try:
        return task_list(value)
    except TypeError as err:
        raise _fail(name, value, str(err)) from None


def _path(must_exist: bool = False, optional: bool = False):
    def check(name: str, value: Any) -> Path | None:
        if optional and _is_none(value):
            return None
        if not isinstance(value, (str, Path)) or str(value).strip() == "":
            raise _fail(name, value, "expected a folder or file path")
        path = resolve_path(value)
        if must_exist and not path.exists():
            raise _fail(name, value, f"{path} does not exist")
        return path
    return check


def _paths(optional: bool = True):
    def check(name: str, value: Any) -> list[Path]:
        items = _free_names(name, value)
        if not items and not optional:
            raise _fail(name, value, "give at least one path")
        out = []
        for item in items:
            path = resolve_path(item)
            if not path.exists():
                raise _fail(name, value, f"{path} does not exist")
            out.append(path)
        return out
    return check


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise _fail(name, value, "expected True or False")


def _methods() -> list[str]:
    from .config import _methods as methods

    return methods()


def _encoders() -> list[str]:
    from .config import _encoder_names

    return _encoder_names()


def _splits() -> list[str]:
    from .data import SPLIT_CHOICES

    return list(SPLIT_CHOICES)


def _corruptions() -> list[str]:
    from .robustness import DEFAULT_CORRUPTIONS

    return list(DEFAULT_CORRUPTIONS)


LABELED = ("multiclass", "multilabel")
PROBED = ("multiclass", "multilabel", "regression")
#: Colourings of the latent-space plots (:data:`workbench.latent.COLOR_BY`).
COLOR_BY = ("label", "pitch_class", "octave", "instrument", "file", "folder")
#: Points of a latent map (:data:`workbench.latent.LEVELS`).
LEVELS = ("track", "chunk")
REDUCERS = ("tsne", "umap", "pca")
AGGREGATIONS = ("embedding", "logits", "probabilities")

#: Parameters that name files or folders (checked when the notebook runs, not in experiment files).
PATH_PARAMS = ("checkpoint", "checkpoints", "out_dir", "runs_dir", "results_dir", "figures_dir", "experiments_dir",
               "data_root")

#: Every notebook parameter, by name.
RULES: dict[str, Rule] = {
    "scale": Rule(_choice(SCALES), "smoke (seconds, CI), demo (CPU minutes) or paper (GPU, real data)"),
    "method": Rule(_choice(lambda: [*_methods(), "supervised"]),
                   "semisupcon, simclr, clmr, supcon (workbench.config.METHODS); 'supervised' = the end-to-end "
                   "baseline (robustness notebook only)"),
    "support": Rule(_config_field(optional=True), "labelled support task, or none for self-supervision"),
    "unlabeled": Rule(_config_field(optional=True), "unlabelled pool task (default fma_medium), or none"),
    "task": Rule(_task(PROBED), "one downstream task"),
    "tasks": Rule(_tasks(PROBED), "downstream tasks, a list or 'a,b,c'"),
    "data_tasks": Rule(_tasks(None), "tasks to summarise, a list or 'a,b,c'"),
    "p": Rule(_config_field(), "fraction of the labelled training set ever seen, (0, 1]"),
    "b_s": Rule(_config_field(), "fraction of each batch drawn from the labelled set, [0, 1]"),
    "n_views": Rule(_config_field(), "views N per clip, >= 1"),
    "rows_per_batch": Rule(_number(2, None, integer=True, optional=True),
                           "N·B held fixed (Table 7); None: the scale's batch_size × 2"),
    "criterion": Rule(_config_field(), "shared labels n >= 1 for a positive, or 'weighted' (Dice)"),
    "encoder": Rule(_choice(_encoders, optional=True), "encoder name or preset; none: the scale's encoder"),
    "preset": Rule(_config_field(optional=True), "augmentation preset; none: the method's"),
    "steps": Rule(_config_field(optional=True), "training steps; None: the scale's"),
    "batch_size": Rule(_config_field(optional=True), "clips per batch; None: the scale's"),
    "temperature": Rule(_config_field(optional=True), "τ > 0; None: the method's"),
    "lr": Rule(_config_field(optional=True), "learning rate > 0; None: the scale's"),
    "seed": Rule(_config_field(), "pretraining seed, >= 0"),
    "probe_seeds": Rule(_numbers(0, None, integer=True), "probe seeds, e.g. 0,1,2"),
    "fraction": Rule(_number(0, 1, low_open=True), "fraction of labelled probe training tracks, (0, 1]"),
    "aggregation": Rule(_choice(AGGREGATIONS), "track aggregation of chunk outputs"),
    "max_chunks": Rule(_number(1, None, integer=True, optional=True), "chunks per track; None: all"),
    "corruptions": Rule(_names(_corruptions), "corruptions: chain (the training chain) and novel ones"),
    "severities": Rule(_numbers(0, None), "severities s >= 0 (0: clean, 1: the training chain)"),
    "reducer": Rule(_choice(REDUCERS), "tsne, umap or pca"),
    "reducers": Rule(_names(lambda: list(REDUCERS)), "reducers to draw, e.g. tsne,umap"),
    "models": Rule(_free_names, "a name per checkpoint, a list or 'a,b'; empty: the run folder names"),
    "color_by": Rule(_choice(COLOR_BY), "label, pitch_class, octave, instrument, file or folder (audio without "
                                        "labels falls back to folder or file)"),
    "split": Rule(_choice(_splits), "which split to embed; all: every clip (one's own audio)"),
    "level": Rule(_choice(LEVELS), "track: a point per track; chunk: a point per chunk, time in track on hover"),
    "max_points": Rule(_number(10, None, integer=True, optional=True), "at most this many clips; None: all"),
    "examples": Rule(_number(0, 50, integer=True), "audio examples to show per task, 0-50"),
    "interactive": Rule(_bool, "build the ipywidgets explorer (JupyterLab) as well as the saved files"),
    "checkpoint": Rule(_path(must_exist=True, optional=True), "a checkpoint file; none: the newest finished run"),
    "checkpoints": Rule(_paths(), "checkpoint files, a list or 'a.ckpt,b.ckpt'; empty: the newest finished run"),
    "out_dir": Rule(_path(), "folder for this notebook's outputs (result.json, figures)"),
    "runs_dir": Rule(_path(), "folder holding pretraining run directories"),
    "results_dir": Rule(_path(), "folder of experiment results (runs/experiments)"),
    "figures_dir": Rule(_path(), "folder the figures are written to"),
    "experiments_dir": Rule(_path(must_exist=True), "folder of experiment files (experiments/)"),
    "data_root": Rule(_path(must_exist=True, optional=True), "data root for every task; none: resolved per data set"),
}


def validate(**params: Any) -> Params:
    """Check and normalise notebook parameters; returns them as attributes.

    Raises :class:`ParameterError` for the first invalid value, and for a parameter this
    module has no rule for (a notebook must declare its parameters here).
    """
    unknown = [k for k in params if k not in RULES]
    if unknown:
        raise ParameterError(f"unknown parameter(s) {name_hints(unknown, RULES)}; known: {', '.join(sorted(RULES))}")
    out = {name: RULES[name].check(name, value) for name, value in params.items()}
    return Params(**out)


def project_dir(start: str | Path | None = None) -> Path:
    """The repository folder: the nearest of ``start`` (default: the working directory) and
    its parents holding ``pyproject.toml`` and ``notebooks/``; else ``start`` itself."""
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if all((candidate / m).exists() for m in PROJECT_MARKERS):
            return candidate
    return here


def resolve_path(value: str | Path) -> Path:
    """An absolute path: relative ones are taken from :func:`project_dir`."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else project_dir() / path
