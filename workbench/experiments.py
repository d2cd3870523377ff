"""Experiments: a grid of parameterised notebook runs, executed with papermill, resumable.

An experiment file (``experiments/*.yaml``) names a notebook, the parameters every run
shares, a grid of parameters that vary, the pretraining seeds and the figure to draw, plus
per-scale variants that override them::

    name: table6_p_bs
    notebook: notebooks/04_ablation_p_bs.ipynb
    figure: table6_p_bs                 # a key of workbench.figures.FIGURES (optional)
    params: {support: mtat_top50, tasks: mtat_top50}
    grid:                               # a list of blocks; runs = the union of the blocks
      - {p: 1.0, b_s: [0.05, 0.25]}     # a block is the product of its lists ...
      - zip: {p: [0.1, 0.5], b_s: [0.1, 0.5]}   # ... or, under ``zip:``, their pairs
    seeds: [0]
    scales:
      smoke: {params: {steps: 2}, grid: [{p: 1.0, b_s: 0.5}]}
      demo:  {params: {steps: 300}}
      paper: {params: {steps: 50000}}

``python -m workbench experiments run FILE [--scale demo]`` runs every grid point × seed
into ``runs/experiments/<name>/<scale>/<run>/`` (the executed notebook ``notebook.ipynb``,
the notebook's ``result.json``, the runner's ``run.json`` and the kernel's stderr), skips runs already
complete with the same parameters (so an interrupted experiment resumes), goes on past a
failed run and lists the failures at the end (exit status 1), collects every run's rows
into ``runs/experiments/<name>/<scale>/results.{json,csv}`` and draws the experiment's
figure into ``figures/<name>-<scale>.png``.

The runner passes ``scale``, ``seed``, ``out_dir`` (the run folder) and ``runs_dir`` (its
``pretrain/`` subfolder) to every notebook that declares them. A notebook run reports
through ``<out_dir>/result.json`` written by :func:`write_result`: ``{"status": "ok",
"notebook": …, "params": …, "results": [rows]}``.

This module also holds the steps the experiment notebooks share (build the pretraining
config from notebook parameters, pretrain, probe, write the result), so that the notebooks
stay a sequence of calls a test can reach.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import json
import re
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .probe import PROBE_SETTINGS, probe_checkpoint, probe_settings  # noqa: F401 (they moved to probe.py)
from .suggest import name_hints

__all__ = [
    "ExperimentError", "Experiment", "RunSpec", "RunOutcome", "ExperimentReport", "RESULT_FILE", "RUN_FILE",
    "load_experiment", "expand_grid", "run_experiment", "collect", "notebook_parameters", "pretrain_config",
    "probe_settings", "probe_checkpoint", "pretrain_and_probe", "pretrain_probe_write", "write_result", "read_result",
    "latest_checkpoint", "regenerate_figures", "mean_positive_fraction", "pretrain_settings", "pretrain_summary",
    "main",
]

#: The file a notebook run writes into its ``out_dir``.
RESULT_FILE = "result.json"
#: The file the runner writes into a run folder once the notebook finished (the completion marker).
RUN_FILE = "run.json"
#: The executed copy of the notebook inside a run folder.
NOTEBOOK_FILE = "notebook.ipynb"
ERROR_FILE = "error.txt"
#: The kernel's stderr during a run.
KERNEL_LOG = "kernel-stderr.log"
DEFAULT_OUT_ROOT = "runs/experiments"
DEFAULT_FIGURES_DIR = "figures"
DEFAULT_SCALE = "demo"
#: Parameters the runner sets itself (when the notebook declares them).
RUNNER_PARAMS = ("scale", "seed", "out_dir", "runs_dir")
TOP_LEVEL_KEYS = ("name", "description", "notebook", "figure", "params", "grid", "seeds", "scales")
SCALE_KEYS = ("params", "grid", "seeds", "figure")
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")

class ExperimentError(ValueError):
    """An invalid experiment file; the message names the file, the key and the fix."""


# =========================================================================== notebook steps

def pretrain_config(args: Any, method: str | None = None, **fixed: Any):
    """A validated :class:`~workbench.config.PretrainConfig` from notebook parameters.

    ``args``: the namespace :func:`workbench.params.validate` returned (or a dict); ``method``
    overrides ``args.method`` (default semisupcon). Values that are None take the scale's /
    method's defaults. Self-supervised methods (simclr, clmr) ignore support, p and b_s;
    supcon ignores the unlabelled pool, p and b_s (it is b_s = p = 1 by definition);
    semisupcon with ``support=None`` becomes simclr. ``fixed`` overrides anything (e.g.
    ``batch_size`` derived from N·B in the views ablation).
    """
    from .config import method_fixed, method_for, resolve_config

    values = dict(vars(args)) if not isinstance(args, dict) else dict(args)
    method = method or values.get("method") or "semisupcon"
    if method == "supervised":
        raise ValueError("parameter method='supervised' is the end-to-end baseline, not a pretraining method: "
                         "use notebooks/08_robustness or `python -m workbench supervised --task …`")
    if "support" in values:
        method = method_for(method, values["support"])
    fields = ("support", "unlabeled", "p", "b_s", "n_views", "criterion", "preset", "steps", "batch_size",
              "temperature", "lr", "seed")
    overrides = {k: values[k] for k in fields if k in values and values[k] is not None}
    for optional in ("support", "unlabeled"):  # an explicit "none" means no such data
        if optional in values and values[optional] is None:
            overrides[optional] = None
    if values.get("encoder"):
        overrides["encoder"] = {"name": values["encoder"]}
    if values.get("runs_dir") is not None:
        overrides["runs_dir"] = str(values["runs_dir"])
    for k in method_fixed(method):  # the method defines these (config.METHODS)
        overrides.pop(k, None)
    overrides.update(fixed)
    return resolve_config(values.get("scale") or DEFAULT_SCALE, method, **overrides)


def pretrain_summary(run_dir: str | Path) -> dict:
    """What a finished pretraining run reports: ``run_dir``, ``checkpoint``, ``final_loss``,
    ``steps``, ``examples_per_s``, ``wall_s`` and the mean ``positive_fraction``."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.json"
    summary = json.loads(metrics.read_text()) if metrics.is_file() else {}
    final = summary.get("final", {})
    return {"run_dir": str(run_dir), "checkpoint": str(run_dir / "checkpoints" / "last.ckpt"),
            "final_loss": float(final["loss"]) if "loss" in final else None, "steps": summary.get("steps"),
            "examples_per_s": summary.get("examples_per_s"), "wall_s": summary.get("wall_s"),
            "positive_fraction": mean_positive_fraction(run_dir)}


def pretrain_and_probe(config, tasks: Sequence[str], *, probe_seeds: Sequence[int] = (0,),
                       model: str | None = None, progress: bool = True) -> dict:
    """Pretrain ``config`` and probe the frozen encoder on ``tasks``.

    Returns :func:`pretrain_summary` plus ``"results"`` (rows); every row also
    carries the pretraining settings that the ablations vary (method, p, b_s, n_views,
    batch_size, criterion, steps, pretrain seed).
    """
    from .train.pretrain import pretrain

    run_dir = pretrain(config, progress=progress)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    rows = probe_checkpoint(checkpoint, tasks, scale=config.scale, seeds=probe_seeds,
                            model=model or config.method, support=config.support, progress=progress)
    summary = pretrain_summary(run_dir)
    settings = {**pretrain_settings(config), "positive_fraction": summary["positive_fraction"]}
    return {**summary, "results": [{**row, **settings} for row in rows]}


def pretrain_probe_write(args: Any, notebook: str, config, *, model: str, progress: bool = True) -> dict:
    """The shared last step of the experiment notebooks 04-07: pretrain ``config``, probe it on
    ``args.tasks`` with ``args.probe_seeds`` (:func:`pretrain_and_probe`), print the final loss and
    the share of positive pairs, and write ``<args.out_dir>/result.json`` (:func:`write_result`).
    Returns the result (``out["results"]`` are the rows)."""
    out = pretrain_and_probe(config, args.tasks, probe_seeds=args.probe_seeds, model=model, progress=progress)
    loss, share = out.get("final_loss"), out.get("positive_fraction")
    print(f"final loss {loss if loss is None else f'{loss:.3f}'}; share of positive pairs "
          f"{share if share is None else f'{share:.3f}'}")
    print(write_result(args.out_dir, notebook, args, **out))
    return out


def mean_positive_fraction(run_dir: str | Path) -> float | None:
    """Mean share of positive pairs in the target matrices logged during a run (the
    complement of the paper's contrastive-matrix sparsity, Tables 6 and 7)."""
    import pandas as pd

    csv = Path(run_dir) / "metrics.csv"
    if not csv.is_file():
        return None
    df = pd.read_csv(csv)
    if "positive_fraction" not in df.columns or df["positive_fraction"].isna().all():
        return None
    return float(df["positive_fraction"].mean())


def pretrain_settings(config) -> dict:
    """The pretraining settings recorded beside every result row."""
    return {"method": config.method, "p": config.p, "b_s": config.b_s, "n_views": config.n_views,
            "batch_size": config.batch_size, "criterion": config.criterion, "steps": config.steps,
            "pretrain_seed": config.seed, "unlabeled": config.unlabeled}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def write_result(out_dir: str | Path, notebook: str, params: Any, results: Sequence[dict] = (), **info: Any) -> Path:
    """Write ``<out_dir>/result.json``: ``{"status": "ok", "notebook", "params", "results", **info}``."""
    from . import runs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    values = dict(vars(params)) if not isinstance(params, dict) else dict(params)
    payload = {"status": "ok", "notebook": notebook, "params": _jsonable(values), "results": _jsonable(list(results)),
               **_jsonable(info)}
    return runs.write_json(out / RESULT_FILE, payload)


def read_result(out_dir: str | Path) -> dict:
    """The ``result.json`` a notebook run wrote into ``out_dir``."""
    path = Path(out_dir) / RESULT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the notebook run did not finish (see its notebook.ipynb).")
    return json.loads(path.read_text())


def latest_checkpoint(runs_dir: str | Path) -> Path:
    """``checkpoints/last.ckpt`` of the newest finished pretraining run under ``runs_dir``
    (searched recursively)."""
    from . import runs

    base = Path(runs_dir)
    found = sorted((p.parent for p in base.rglob(runs.FINISHED_MARKER)
                    if (p.parent / "checkpoints" / "last.ckpt").is_file()),
                   key=lambda d: (d / runs.FINISHED_MARKER).stat().st_mtime) if base.exists() else []
    if not found:
        raise FileNotFoundError(f"no finished pretraining run with checkpoints/last.ckpt under {base}. Run "
                                "notebooks/02_pretrain first, or pass the checkpoint parameter explicitly.")
    return found[-1] / "checkpoints" / "last.ckpt"


# =========================================================================== experiment files

@dataclass
class RunSpec:
    """One notebook run of an experiment: its folder name and its parameters."""

    name: str
    params: dict[str, Any]
    grid_params: dict[str, Any]
    seed: int


@dataclass
class Experiment:
    name: str
    path: Path
    notebook: Path
    scale: str
    params: dict[str, Any] = field(default_factory=dict)
    grid: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    figure: str | None = None
    description: str = ""
    notebook_params: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> list[RunSpec]:
        """Every grid point × seed, in file order, duplicates removed."""
        out, seen = [], set()
        for point in expand_grid(self.grid, where=str(self.path)):
            for seed in self.seeds:
                name = _run_name(point, seed)
                if name in seen:
                    continue
                seen.add(name)
                params = {**self.params, **point}
                if "seed" in self.notebook_params:
                    params["seed"] = seed
                if "scale" in self.notebook_params:
                    params["scale"] = self.scale
                out.append(RunSpec(name, params, dict(point), seed))
        return out


def _run_name(point: dict, seed: int) -> str:
    parts = [f"{k}={_fmt(v)}" for k, v in point.items()] + [f"seed={seed}"]
    return _SAFE.sub("_", "_".join(parts)).strip("_")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "+".join(_fmt(v) for v in value)
    return str(value)


def expand_grid(grid: Any, where: str = "grid") -> list[dict[str, Any]]:
    """Grid points of a grid: a block (dict) or a list of blocks.

    A block's list values are multiplied out (scalars are fixed); under the single key
    ``zip`` its lists are paired instead and must have equal lengths. An empty grid is one
    point with no parameters.
    """
    if grid is None or grid == [] or grid == {}:
        return [{}]
    blocks = grid if isinstance(grid, list) else [grid]
    points: list[dict] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise ExperimentError(f"{where}: grid block {i} must be a mapping of parameter -> value(s), got "
                                  f"{block!r}")
        if set(block) == {"zip"}:
            inner = block["zip"]
            if not isinstance(inner, dict) or not inner:
                raise ExperimentError(f"{where}: grid block {i}: 'zip' needs a mapping of parameter -> list")
            lists = {k: v if isinstance(v, list) else [v] for k, v in inner.items()}
            lengths = {k: len(v) for k, v in lists.items()}
            if len(set(lengths.values())) != 1:
                raise ExperimentError(f"{where}: grid block {i}: 'zip' lists differ in length {lengths}")
            points += [dict(zip(lists, values)) for values in zip(*lists.values())]
        else:
            if "zip" in block:
                raise ExperimentError(f"{where}: grid block {i}: 'zip' must be the block's only key")
            keys = list(block)
            lists = [block[k] if isinstance(block[k], list) else [block[k]] for k in keys]
            empty = [k for k, v in zip(keys, lists) if not v]
            if empty:
                raise ExperimentError(f"{where}: grid block {i}: empty list for {empty}")
            points += [dict(zip(keys, values)) for values in itertools.product(*lists)]
    return points


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """The parameters declared in a notebook's ``parameters`` cell (papermill's inspection):
    name → default (as source text)."""
    import papermill

    path = Path(notebook)
    if not path.is_file():
        raise ExperimentError(f"notebook {path} not found.")
    found = papermill.inspect_notebook(str(path))
    if not found:
        raise ExperimentError(f"notebook {path} has no cell tagged 'parameters'.")
    assigned = _assigned_names(path)
    lost = [name for name in assigned if name not in found]
    if lost:
        raise ExperimentError(f"notebook {path}: papermill cannot read parameter(s) {', '.join(lost)} of the "
                              "parameters cell (keep each on one line as `name = value  # comment`, with no '=' "
                              "inside the comment).")
    return {name: info.get("default") for name, info in found.items()}


def _assigned_names(path: Path) -> list[str]:
    """Names assigned at the top level of a notebook's ``parameters`` cell."""
    import ast

    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)]
    return []


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    from .params import project_dir

    for root in (project_dir(base.parent), base.parent, Path.cwd()):
        if (root / path).exists():
            return (root / path).resolve()
    return (project_dir(base.parent) / path).resolve()


def load_experiment(path: str | Path, scale: str = DEFAULT_SCALE) -> Experiment:
    """Read and validate an experiment file for ``scale``.

    Errors name the file and the offending key: unknown keys, an unknown notebook, a scale
    the file has no variant for, grid or fixed parameters the notebook does not declare
    (compared with its ``parameters`` cell), or parameters the runner sets itself.
    """
    from .config import read_yaml_mapping
    from .figures import FIGURES
    from .params import SCALES

    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"experiment file {path} not found.")
    allowed = ", ".join(TOP_LEVEL_KEYS)
    spec = read_yaml_mapping(path, TOP_LEVEL_KEYS, expected=f"a mapping with keys {allowed}",
                             unknown=f"unknown key(s) {{keys}}; allowed: {allowed}", error=ExperimentError)
    for key in ("name", "notebook"):
        if not spec.get(key):
            raise ExperimentError(f"{path}: missing '{key}'")
    if scale not in SCALES:
        raise ExperimentError(f"scale {scale!r}: choose one of {', '.join(SCALES)}")
    scales = spec.get("scales") or {}
    if not isinstance(scales, dict):
        raise ExperimentError(f"{path}: 'scales' must map scale names to overrides")
    bad_scales = sorted(set(scales) - set(SCALES))
    if bad_scales:
        raise ExperimentError(f"{path}: unknown scale(s) {bad_scales} under 'scales'; allowed: {', '.join(SCALES)}")
    if scales and scale not in scales:
        raise ExperimentError(f"{path}: no '{scale}' variant under 'scales' (it has {', '.join(scales)})")
    variant = scales.get(scale) or {}
    if not isinstance(variant, dict):
        raise ExperimentError(f"{path}: scales.{scale} must be a mapping")
    bad_variant = sorted(set(variant) - set(SCALE_KEYS))
    if bad_variant:
        raise ExperimentError(f"{path}: unknown key(s) {bad_variant} under scales.{scale}; allowed: "
                              f"{', '.join(SCALE_KEYS)}")
    params = dict(spec.get("params") or {})
    params.update(variant.get("params") or {})
    grid = variant["grid"] if "grid" in variant else spec.get("grid")
    seeds = variant["seeds"] if "seeds" in variant else spec.get("seeds", [0])
    seeds = seeds if isinstance(seeds, list) else [seeds]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ExperimentError(f"{path}: seeds must be a list of integers >= 0, got {seeds!r}")
    figure = variant.get("figure", spec.get("figure"))
    if figure is not None and figure not in FIGURES:
        raise ExperimentError(f"{path}: figure {figure!r} is not one of {', '.join(sorted(FIGURES))}")
    notebook = _resolve(path, str(spec["notebook"]))
    declared = notebook_parameters(notebook)
    points = expand_grid(grid, where=str(path))
    used = set(params) | {k for point in points for k in point}
    unknown_params = sorted(used - set(declared))
    if unknown_params:
        raise ExperimentError(f"{path}: parameter(s) {name_hints(unknown_params, declared)} not declared in the "
                              f"parameters cell of {notebook.name}; it declares {', '.join(declared)}")
    reserved = sorted(used & set(RUNNER_PARAMS))
    if reserved:
        raise ExperimentError(f"{path}: {reserved} are set by the runner (scale from --scale, seed from 'seeds', "
                              "out_dir/runs_dir per run); remove them from params/grid")
    _check_values(path, params, points)
    return Experiment(name=str(spec["name"]), path=path, notebook=notebook, scale=scale, params=params,
                      grid=grid if isinstance(grid, list) else ([grid] if grid else []), seeds=list(seeds),
                      figure=figure, description=str(spec.get("description") or ""), notebook_params=declared)


def _check_values(path: Path, params: dict, points: list[dict]) -> None:
    """Every value of every grid point, checked by the notebooks' own parameter rules
    (:func:`workbench.params.validate`, which defers to the config's) before anything runs;
    paths are checked by the notebook itself (an earlier run may create them)."""
    from .params import PATH_PARAMS, RULES, ParameterError, validate

    for point in points or [{}]:
        values = {k: v for k, v in {**params, **point}.items() if k in RULES and k not in PATH_PARAMS}
        try:
            validate(**values)
        except ParameterError as err:
            where = f"grid point {point}" if point else "params"
            raise ExperimentError(f"{path}: {where}: {err}") from None


# =========================================================================== running

@dataclass
class RunOutcome:
    name: str
    status: str  # "ok", "skipped" (already complete) or "failed"
    run_dir: Path
    error: str | None = None
    wall_s: float = 0.0


@dataclass
class ExperimentReport:
    experiment: str
    scale: str
    out_dir: Path
    outcomes: list[RunOutcome]
    results_json: Path | None = None
    results_csv: Path | None = None
    figure: Path | None = None
    figure_error: str | None = None

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def summary(self) -> str:
        counts = {s: sum(o.status == s for o in self.outcomes) for s in ("ok", "skipped", "failed")}
        lines = [f"experiment {self.experiment} ({self.scale}): {counts['ok']} run, {counts['skipped']} already "
                 f"complete, {counts['failed']} failed — {self.out_dir}"]
        for o in self.failed:
            lines.append(f"  FAILED {o.name}: {o.error}\n         see {o.run_dir / NOTEBOOK_FILE}")
        if self.results_csv:
            lines.append(f"  results: {self.results_csv} and {self.results_json}")
        if self.figure:
            lines.append(f"  figure:  {self.figure}")
        elif self.figure_error:
            lines.append(f"  figure:  not drawn ({self.figure_error})")
        return "\n".join(lines)


def _is_complete(run_dir: Path, params: dict) -> bool:
    marker = run_dir / RUN_FILE
    if not (marker.is_file() and (run_dir / RESULT_FILE).is_file()):
        return False
    try:
        record = json.loads(marker.read_text())
    except ValueError:
        return False
    return record.get("status") == "ok" and record.get("params") == _jsonable(params)


def _error_text(err: BaseException) -> str:
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(err).__name__}: {err}"


@contextlib.contextmanager
def _stderr_to(path: Path):
    """Point file descriptor 2 at ``path`` (appending) for the duration: a kernel started
    inside inherits it, so its stderr lands in the run folder instead of the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _execute(experiment: Experiment, spec: RunSpec, run_dir: Path, kernel_name: str | None,
             start_timeout: int) -> RunOutcome:
    import papermill

    from . import runs

    params = dict(spec.params)
    if "out_dir" in experiment.notebook_params:
        params["out_dir"] = str(run_dir)
    if "runs_dir" in experiment.notebook_params:
        params["runs_dir"] = str(run_dir / "pretrain")
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (RUN_FILE, RESULT_FILE, ERROR_FILE):
        (run_dir / stale).unlink(missing_ok=True)
    t0 = time.perf_counter()
    from .params import project_dir

    try:
        with _stderr_to(run_dir / KERNEL_LOG):  # the kernel's own stderr (C libraries' chatter) goes to a file
            papermill.execute_notebook(str(experiment.notebook), str(run_dir / NOTEBOOK_FILE), parameters=params,
                                       kernel_name=kernel_name, progress_bar=False, log_output=False,
                                       start_timeout=start_timeout, cwd=str(project_dir(experiment.notebook.parent)))
        if not (run_dir / RESULT_FILE).is_file():
            raise RuntimeError(f"the notebook finished without writing {RESULT_FILE} into out_dir")
    except Exception as err:  # noqa: BLE001 - any failure of one run is recorded and the grid goes on
        wall = time.perf_counter() - t0
        message = _error_text(err)
        (run_dir / ERROR_FILE).write_text(message + "\n\n" + "".join(traceback.format_exception(err)))
        runs.write_json(run_dir / RUN_FILE, {"status": "failed", "params": _jsonable(spec.params), "error": message,
                                             "wall_s": wall})
        return RunOutcome(spec.name, "failed", run_dir, message.splitlines()[0][:300] if message else "", wall)
    wall = time.perf_counter() - t0
    runs.write_json(run_dir / RUN_FILE, {"status": "ok", "params": _jsonable(spec.params), "wall_s": wall,
                                         "notebook": str(experiment.notebook)})
    return RunOutcome(spec.name, "ok", run_dir, None, wall)


def collect(experiment: Experiment, out_dir: str | Path, specs: Iterable[RunSpec] | None = None) -> list[dict]:
    """Rows of every complete run of ``experiment`` under ``out_dir``, each with its run name,
    its grid parameters and seed added (``results`` of each ``result.json``)."""
    out_dir = Path(out_dir)
    rows = []
    for spec in (specs if specs is not None else experiment.runs()):
        run_dir = out_dir / spec.name
        if not _is_complete(run_dir, spec.params):
            continue
        result = read_result(run_dir)
        for row in result.get("results", []):
            rows.append({**row, **spec.grid_params, "run": spec.name, "seed": spec.seed,
                         "experiment": experiment.name, "scale": experiment.scale})
    return rows


def _write_table(rows: list[dict], path_json: Path, path_csv: Path, extra: dict) -> None:
    import pandas as pd

    from . import runs

    runs.write_json(path_json, {"results": _jsonable(rows), **_jsonable(extra)})
    df = pd.DataFrame(rows)
    for col in df.columns:
        if df[col].map(lambda v: isinstance(v, (list, dict, tuple))).any():
            df[col] = df[col].map(lambda v: json.dumps(_jsonable(v)) if isinstance(v, (list, dict, tuple)) else v)
    df.to_csv(path_csv, index=False)


def run_experiment(path: str | Path, scale: str = DEFAULT_SCALE, *, out_root: str | Path = DEFAULT_OUT_ROOT,
                   figures_dir: str | Path | None = DEFAULT_FIGURES_DIR, kernel_name: str | None = None,
                   only: str | None = None, progress: bool = True, start_timeout: int = 120) -> ExperimentReport:
    """Run (or resume) an experiment; returns what happened to each run.

    only: a regular expression; only runs whose names match it are run (all complete runs
        are still collected).
    figures_dir: None draws no figure.
    """
    from .params import resolve_path
    from .progress import tqdm

    experiment = load_experiment(path, scale)
    out_dir = resolve_path(out_root) / experiment.name / scale
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = experiment.runs()
    chosen = [s for s in specs if only is None or re.search(only, s.name)]
    outcomes: list[RunOutcome] = []
    bar = tqdm(total=len(chosen), desc=f"{experiment.name} [{scale}]", unit="run", disable=not progress,
               file=sys.stderr)
    for spec in chosen:
        run_dir = out_dir / spec.name
        bar.set_postfix_str(spec.name)
        if _is_complete(run_dir, spec.params):
            outcomes.append(RunOutcome(spec.name, "skipped", run_dir))
        else:
            outcome = _execute(experiment, spec, run_dir, kernel_name, start_timeout)
            outcomes.append(outcome)
            if outcome.status == "failed":
                bar.write(f"run {spec.name} failed: {outcome.error}")
        bar.update(1)
    bar.close()
    report = ExperimentReport(experiment.name, scale, out_dir, outcomes)
    rows = collect(experiment, out_dir, specs)
    report.results_json, report.results_csv = out_dir / "results.json", out_dir / "results.csv"
    _write_table(rows, report.results_json, report.results_csv,
                 {"experiment": experiment.name, "scale": scale, "notebook": str(experiment.notebook),
                  "runs": [s.name for s in specs],
                  "failed": [{"run": o.name, "error": o.error} for o in report.failed]})
    if figures_dir is not None and experiment.figure:
        from .figures import FIGURES

        if rows:
            try:
                report.figure = FIGURES[experiment.figure](rows, resolve_path(figures_dir) /
                                                          f"{experiment.name}-{scale}.png")
            except Exception as err:  # noqa: BLE001 - a figure must not lose the collected results
                report.figure_error = _error_text(err)
        else:
            report.figure_error = "no complete run yet"
    return report


def regenerate_figures(results_dir: str | Path = DEFAULT_OUT_ROOT, figures_dir: str | Path = DEFAULT_FIGURES_DIR,
                       experiments_dir: str | Path = "experiments") -> list[dict]:
    """Draw every experiment's figure from its stored ``results.json`` (any scale found).

    Returns one record per experiment file and scale: ``{"experiment", "scale", "figure",
    "note"}``; an experiment without results gets a note instead of a figure.
    """
    from .figures import FIGURES
    from .params import SCALES, resolve_path

    results_dir, figures_dir = resolve_path(results_dir), resolve_path(figures_dir)
    records = []
    files = sorted(resolve_path(experiments_dir).glob("*.yaml"))
    if not files:
        return [{"experiment": None, "scale": None, "figure": None,
                 "note": f"no experiment files in {resolve_path(experiments_dir)}"}]
    for file in files:
        spec = yaml.safe_load(file.read_text()) or {}
        name, figure = spec.get("name", file.stem), spec.get("figure")
        found = False
        for scale in SCALES:
            table = results_dir / name / scale / "results.json"
            if not table.is_file():
                continue
            found = True
            rows = json.loads(table.read_text()).get("results", [])
            record = {"experiment": name, "scale": scale, "figure": None, "note": ""}
            if not figure:
                record["note"] = "the experiment names no figure"
            elif not rows:
                record["note"] = f"{table} holds no complete run yet"
            else:
                try:
                    record["figure"] = str(FIGURES[figure](rows, figures_dir / f"{name}-{scale}.png"))
                except Exception as err:  # noqa: BLE001 - one broken table must not stop the others
                    record["note"] = f"figure failed: {_error_text(err)}"
            records.append(record)
        if not found:
            records.append({"experiment": name, "scale": None, "figure": None,
                            "note": f"no results under {results_dir / name} yet: run "
                                    f"`python -m workbench experiments run {file.relative_to(file.parents[1])}`"})
    return records


# =========================================================================== CLI

def main(argv: list[str] | None = None) -> int:
    """``python -m workbench experiments run FILE [--scale demo] …``."""
    from .params import SCALES

    ap = argparse.ArgumentParser(prog="python -m workbench experiments run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", help="an experiment file, e.g. experiments/table6_p_bs.yaml")
    ap.add_argument("--scale", default=DEFAULT_SCALE, choices=SCALES)
    ap.add_argument("--out", default=DEFAULT_OUT_ROOT, help="root folder of experiment runs")
    ap.add_argument("--figures", default=DEFAULT_FIGURES_DIR, help="folder for the experiment's figure")
    ap.add_argument("--only", default=None, help="run only runs whose name matches this regular expression")
    ap.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's, python3)")
    ap.add_argument("--dry-run", action="store_true", help="list the runs and their state, run nothing")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.dry_run:
            from .params import resolve_path

            exp = load_experiment(args.file, args.scale)
            out_dir = resolve_path(args.out) / exp.name / args.scale
            print(f"experiment {exp.name} ({args.scale}): {exp.notebook}")
            for spec in exp.runs():
                state = "complete" if _is_complete(out_dir / spec.name, spec.params) else "to run"
                print(f"  {spec.name:50s} {state:9s} {json.dumps(_jsonable(spec.params))}")
            return 0
        report = run_experiment(args.file, args.scale, out_root=args.out, figures_dir=args.figures,
                                kernel_name=args.kernel, only=args.only, progress=not args.no_progress)
    except ExperimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
