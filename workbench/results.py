"""Result rows: one row per (model, task, metric, setting) with the mean ± std over seeds.

Row schema (:data:`RESULT_FIELDS`)::

    model, checkpoint, support, task, metric, mean, std, seeds (list of ints), n_seeds,
    values (per seed, in the order of ``seeds``), aggregation, fraction, data_root, synthetic

``std`` is the sample standard deviation over seeds (ddof = 1; 0 for a single seed).

Per-seed records, as :func:`workbench.probe.probe_task` (and the supervised baseline)
return them, carry ``seed`` and a ``metrics`` dict (or a single ``metric`` / ``value``)
plus the descriptive fields; :func:`aggregate` groups them into rows. :func:`write_results`
/ :func:`load_results` round-trip rows through JSON (``{"results": rows, …}``) and CSV, and
:func:`results_table` pivots them into a printable model × task table of "mean ± std".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["GROUP_FIELDS", "RESULT_FIELDS", "aggregate", "load_results", "results_table", "write_results"]

GROUP_FIELDS = ("model", "checkpoint", "support", "task", "aggregation", "fraction", "data_root", "synthetic")
RESULT_FIELDS = ("model", "checkpoint", "support", "task", "metric", "mean", "std", "seeds", "n_seeds",
                 "values", "aggregation", "fraction", "data_root", "synthetic")
_DEFAULTS = {"checkpoint": None, "support": None, "aggregation": None, "fraction": 1.0, "data_root": None,
             "synthetic": False}
_LIST_FIELDS = ("seeds", "values")
DEFAULT_PRECISION = 3


def _metric_items(record: dict) -> list[tuple[str, float]]:
    if "metrics" in record:
        return [(str(k), float(v)) for k, v in record["metrics"].items()]
    if "metric" in record and "value" in record:
        return [(str(record["metric"]), float(record["value"]))]
    raise ValueError(f"record {record!r} has neither a 'metrics' dict nor 'metric' and 'value'.")


def aggregate(records: Iterable[dict]) -> list[dict]:
    """Group per-seed records by :data:`GROUP_FIELDS` and metric into mean ± std rows.

    Rows keep the order in which groups and metrics first appear; within a row, seeds are
    sorted. A seed that appears twice in one group is an error (it would be counted twice).
    """
    groups: dict[tuple, dict[str, dict[int, float]]] = {}
    for rec in records:
        for f in ("model", "task", "seed"):
            if f not in rec:
                raise ValueError(f"per-seed record lacks {f!r}: {rec!r}")
        key = tuple(_canon(rec.get(f, _DEFAULTS.get(f))) for f in GROUP_FIELDS)
        by_metric = groups.setdefault(key, {})
        for metric, value in _metric_items(rec):
            seeds = by_metric.setdefault(metric, {})
            seed = int(rec["seed"])
            if seed in seeds:
                raise ValueError(f"seed {seed} appears twice for {dict(zip(GROUP_FIELDS, key))} / {metric}; "
                                 "pass each seed's record once.")
            seeds[seed] = value
    rows = []
    for key, by_metric in groups.items():
        desc = dict(zip(GROUP_FIELDS, key))
        for metric, per_seed in by_metric.items():
            seeds = sorted(per_seed)
            values = [per_seed[s] for s in seeds]
            arr = np.asarray(values, dtype=np.float64)
            std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
            row = {**desc, "metric": metric, "mean": float(arr.mean()), "std": std, "seeds": seeds,
                   "n_seeds": len(seeds), "values": values}
            rows.append({f: row[f] for f in RESULT_FIELDS})
    return rows


#: numpy scalars and paths, as the plain Python values results hold.
_PLAIN = ((np.integer, int), (np.floating, float), (Path, str))


def _canon(v):
    for kind, plain in _PLAIN:
        if isinstance(v, kind):
            return plain(v)
    return v


def _check_rows(rows: Sequence[dict]) -> None:
    for r in rows:
        missing = [f for f in RESULT_FIELDS if f not in r]
        if missing:
            raise ValueError(f"result row lacks {missing}; build rows with workbench.results.aggregate. Row: {r!r}")


def write_results(rows: Sequence[dict], path_json: str | Path, path_csv: str | Path | None = None,
                  extra: dict | None = None) -> Path:
    """Write ``{"results": rows, **extra}`` as JSON (and the rows as CSV when asked)."""
    rows = list(rows)
    _check_rows(rows)
    path_json = Path(path_json)
    path_json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"results": rows, **(extra or {})}
    path_json.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    if path_csv is not None:
        path_csv = Path(path_csv)
        path_csv.parent.mkdir(parents=True, exist_ok=True)
        df = pd.DataFrame(rows, columns=list(RESULT_FIELDS))
        for f in _LIST_FIELDS:
            df[f] = df[f].map(json.dumps)
        df.to_csv(path_csv, index=False)
    return path_json


def _json_default(v):
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, tuple(kind for kind, _ in _PLAIN)):
        return _canon(v)
    raise TypeError(f"cannot write {type(v).__name__} to JSON")


def load_results(path: str | Path) -> list[dict]:
    """Rows from a file written by :func:`write_results` (.json or .csv)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} not found.")
    if path.suffix == ".json":
        payload = json.loads(path.read_text())
        rows = payload["results"] if isinstance(payload, dict) else payload
        _check_rows(rows)
        return rows
    if path.suffix == ".csv":
        df = pd.read_csv(path, dtype={"model": str, "task": str, "metric": str}, float_precision="round_trip")
        rows = []
        for rec in df.to_dict("records"):
            for f in _LIST_FIELDS:
                rec[f] = json.loads(rec[f])
            for f, v in rec.items():
                if isinstance(v, float) and math.isnan(v) and f not in ("mean", "std"):
                    rec[f] = None
            rec["synthetic"] = bool(rec["synthetic"]) if rec["synthetic"] is not None else False
            rec["n_seeds"] = int(rec["n_seeds"])
            rows.append(rec)
        _check_rows(rows)
        return rows
    raise ValueError(f"{path}: results files are .json or .csv.")


def _primary_metric(task: str, metrics_seen: list[str]) -> str:
    from .data.tasks import TASKS

    declared = TASKS[task].metrics if task in TASKS else []
    for m in declared:
        if m in metrics_seen:
            return m
    return metrics_seen[0]


def results_table(rows: Sequence[dict], metric: str = "primary", index: Sequence[str] = ("model",),
                  precision: int = DEFAULT_PRECISION) -> pd.DataFrame:
    """Pivot rows into ``index`` × task cells of ``"mean ± std"``.

    metric: ``"primary"`` (each task's model-selection metric, the first of its list),
        ``"all"`` (one column per task/metric) or a metric name.
    """
    rows = list(rows)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    if metric == "primary":
        keep = {t: _primary_metric(t, list(dict.fromkeys(g["metric"]))) for t, g in df.groupby("task", sort=False)}
        df = df[df["metric"] == df["task"].map(keep)]
        df = df.assign(column=df["task"] + " (" + df["metric"] + ")")
    elif metric == "all":
        df = df.assign(column=df["task"] + " (" + df["metric"] + ")")
    else:
        df = df[df["metric"] == metric]
        if df.empty:
            raise ValueError(f"no rows with metric {metric!r}.")
        df = df.assign(column=df["task"])
    cell = [f"{m:.{precision}f} ± {s:.{precision}f}" for m, s in zip(df["mean"], df["std"])]
    df = df.assign(cell=cell)
    idx = list(index)
    dup = df.duplicated(idx + ["column"])
    if dup.any():
        raise ValueError(f"several rows per {idx} × task; add fields to index= (e.g. 'aggregation', "
                         "'fraction', 'support') to tell them apart.")
    table = df.pivot(index=idx, columns="column", values="cell")
    order = list(dict.fromkeys(map(tuple, df[idx].itertuples(index=False, name=None))))
    table = table.reindex(index=pd.MultiIndex.from_tuples(order, names=idx) if len(idx) > 1
                          else pd.Index([o[0] for o in order], name=idx[0]),
                          columns=list(dict.fromkeys(df["column"])))
    table.columns.name = None
    return table
