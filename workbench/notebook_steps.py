"""The steps the notebooks share, so that each notebook stays a sequence of calls a test can
reach: build the pretraining config from notebook parameters, pretrain, probe, and write the
notebook's ``result.json`` (the one file an experiment run reports through; the papermill
runner, :mod:`workbench.experiments`, reads it back with :func:`read_result`).

    args = SimpleNamespace(scale="demo", support="mtat_top50", b_s=0.5, p=1.0, ...)
    row = pretrain_probe_write(args, "04_ablation_p_bs", pretrain_config(args), model="semisupcon")
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .probe import PROBE_SETTINGS, probe_checkpoint, probe_settings  # noqa: F401 (the probe budgets live in probe.py)

__all__ = ["RESULT_FILE", "DEFAULT_SCALE", "jsonable", "pretrain_config", "pretrain_summary", "pretrain_and_probe", "pretrain_probe_write",
           "mean_positive_fraction", "pretrain_settings", "write_result", "read_result", "latest_checkpoint",
           "probe_settings", "probe_checkpoint"]

#: The file a notebook run writes into its ``out_dir``.
RESULT_FILE = "result.json"
#: The scale of a notebook (and an experiment) that names none.
DEFAULT_SCALE = "demo"


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


def jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def write_result(out_dir: str | Path, notebook: str, params: Any, results: Sequence[dict] = (), **info: Any) -> Path:
    """Write ``<out_dir>/result.json``: ``{"status": "ok", "notebook", "params", "results", **info}``."""
    from . import runs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    values = dict(vars(params)) if not isinstance(params, dict) else dict(params)
    payload = {"status": "ok", "notebook": notebook, "params": jsonable(values), "results": jsonable(list(results)),
               **jsonable(info)}
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
