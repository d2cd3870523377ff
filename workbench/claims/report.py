"""The claims report from stored results alone: ``figures/claims.md`` and ``figures/claims.json``.

``claims.json`` follows the claims issue's schema exactly::

    {"scale", "synthetic", "rule", "claims": [{"id", "source", "statement", "paper": {...}, "figure",
      "verdict", "parts": [{"metric", "expect", "conditions": [{"label", "x", "values": [...]}],
                            "test", "statistic", "p_value", "verdict"}]}]}

``values`` holds one value per pretraining seed (each the mean over the cell's probe
seeds), in seed order; a claim with unfinished cells is ``pending`` and ``claims.md`` says
which cells are missing (or why they cannot run yet). A result whose *spec hash* differs
from the registry's (the experiment changed since it ran) is not used. No model, run folder
or data set is read: only ``results/<scale>/*.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from . import cells as C
from . import store
from .registry import Claim, Condition, Grid, build_grid
from .verdict import RULE, claim_verdict, part_verdict

__all__ = ["build_report", "write_report", "report_paths", "measure_value", "figure_path", "cost_rows", "cell_cpu", "PERCENT"]

PERCENT = 100.0
#: The summary table's paper column is cut at this many characters (the part list has it all).
PAPER_CELL_CHARS = 240
FIGURE_FILES = {"table2": "figure2_table2.png", "table3": "table3.png", "table4": "table4.png",
                "table6": "table6.png", "table7": "table7.png", "figure3": "figure3.png", "figure4": "figure4.png",
                "msa": "msa.png", "msa-pair-accuracy": "msa_pair_accuracy.png"}


def figure_path(scale: str, name: str, figures: str | Path = "figures") -> Path:
    """Where figure ``name`` of ``scale`` is drawn (``figures/claims/<scale>/…``)."""
    return Path(figures) / "claims" / scale / FIGURE_FILES[name]


def report_paths(scale: str, figures: str | Path = "figures") -> dict:
    """``figures/claims.{md,json}`` for the demo scale, ``figures/claims-<scale>.{md,json}`` otherwise."""
    stem = "claims" if scale == "demo" else f"claims-{scale}"
    return {"md": Path(figures) / f"{stem}.md", "json": Path(figures) / f"{stem}.json"}


def measure_value(result: dict, measure: tuple) -> float | None:
    """The value of ``measure`` in one cell result, or None where the result lacks it."""
    kind = measure[0]
    if kind == "metric":
        return (result.get("metrics", {}).get(measure[1]) or {}).get(measure[2])
    if kind == "drop":
        _, task, metric, corruption = measure
        rob = result.get("robustness") or {}
        if rob.get("task") != task or rob.get("corruption") != corruption:
            return None
        sev = {float(k): v.get(metric) for k, v in rob.get("severities", {}).items()}
        if 0.0 not in sev or len(sev) < 2 or any(v is None for v in sev.values()):
            return None
        return float(sev[0.0] - np.mean([v for s, v in sev.items() if s > 0]))
    if kind == "knn":
        lat = result.get("latent") or {}
        return lat.get(f"knn_{measure[2]}") if lat.get("task") == measure[1] else None
    raise ValueError(f"unknown measure {measure!r}")


class _Results:
    """Stored results matched to the grid by cell id and spec hash."""

    def __init__(self, grid: Grid, results: Path):
        self.grid, self.results = grid, Path(results)
        self.by_id: dict[str, dict | None] = {}
        self.why: dict[str, str] = {}
        self.synthetic: set = set()

    @classmethod
    def of(cls, grid: Grid, results: Path | None, scale: str) -> "_Results":
        """The results folder given, or the scale's default (``results/<scale>``)."""
        return cls(grid, results if results is not None else store.results_dir(scale))

    def get(self, cell) -> dict | None:
        if cell.id in self.by_id:
            return self.by_id[cell.id]
        stored = store.read_result(self.results, cell.id)
        value = None
        try:
            spec = C.spec_of(cell, self.grid.scale, self.grid.plan["probe_seeds"])
            expected = C.spec_hash(spec)
        except C.NotRunnable as err:
            self.why[cell.id] = f"not runnable yet: {err}"
            expected = None
        if expected is not None:
            if stored is None or stored.get("status") != "ok":
                self.why[cell.id] = "not run yet"
            elif stored.get("spec_hash") != expected:
                self.why[cell.id] = "stale (the experiment changed since it ran; rerun)"
            elif _old_render(stored):
                self.why[cell.id] = f"stale (rendered by an older embedded benchmark: {_old_render(stored)}; rerun)"
            else:
                value = stored
                if "synthetic" in stored:
                    self.synthetic.add(bool(stored["synthetic"]))
        self.by_id[cell.id] = value
        return value


def _old_render(stored: dict) -> str | None:
    """Which embedded data set a result read at a version other than the code's own (the
    report cannot resolve data, but it knows the version each data set renders at: its
    stand-in's, :data:`workbench.data.embedded.DATASET_VERSIONS`)."""
    try:
        from ..data.embedded import DATASET_VERSIONS, GENERATOR_VERSION
    except ImportError:  # pragma: no cover - an older layout
        return None
    for dataset, ident in (stored.get("data") or {}).items():
        if not (isinstance(ident, dict) and ident.get("synthetic")):
            continue
        used, now = C.data_version(ident), DATASET_VERSIONS.get(dataset, GENERATOR_VERSION)
        if used is not None and used != now:
            return f"{dataset} v{used}, now v{now}"
    return None


def _condition_values(res: _Results, cond: Condition, missing: list) -> tuple[str, list[float]]:
    """(label, per-seed values) of a condition; records what is missing. Seeds still missing
    are left out of the values (the part is then pending)."""
    def seed_values(recipe) -> dict[int, float]:
        out = {}
        for seed in cond.seeds:
            cell = res.grid.cell_of(recipe, seed)
            result = res.get(cell)
            if result is None:
                missing.append(f"{cell.id} ({res.why.get(cell.id, 'missing')})")
                continue
            v = measure_value(result, cond.measure)
            if v is None:
                why = (result.get("unavailable") or {}).get(cond.measure[1])
                missing.append(f"{cell.id}: no {' '.join(map(str, cond.measure[1:]))}"
                               + (f" (data unavailable: {why.splitlines()[0][:160]})" if why else ""))
                continue
            out[seed] = float(v)
        return out

    per_recipe = [seed_values(r) for r in cond.recipes]
    if cond.select == "min_mean":
        if any(len(v) < len(cond.seeds) for v in per_recipe):
            return cond.label, []
        k = int(np.argmin([np.mean(list(v.values())) for v in per_recipe]))
        return f"{cond.recipes[k].slug} ({cond.label})", [per_recipe[k][s] for s in cond.seeds]
    seeds = [s for s in cond.seeds if all(s in v for v in per_recipe)]
    return cond.label, [float(np.mean([v[s] for v in per_recipe])) for s in seeds]


def _claim_entry(res: _Results, claim: Claim, scale: str) -> tuple[dict, list[str]]:
    parts, missing = [], []
    for part in claim.parts:
        conds = []
        part_missing: list[str] = []
        for cond in part.conditions:
            label, values = _condition_values(res, cond, part_missing)
            conds.append({"label": label, "x": cond.x, "values": values})
        missing += part_missing
        test = part_verdict(part.expect, conds, side=part.side) if not part_missing else \
            {"test": None, "statistic": None, "p_value": None, "verdict": "pending"}
        parts.append({"metric": part.metric, "expect": part.expect, "conditions": conds, "test": test["test"],
                      "statistic": _num(test["statistic"]), "p_value": _num(test["p_value"]),
                      "verdict": test["verdict"]})
    entry = {"id": claim.id, "source": claim.source, "statement": claim.statement, "paper": claim.paper,
             "figure": str(figure_path(scale, claim.figure)), "verdict": claim_verdict([p["verdict"] for p in parts]),
             "parts": parts}
    return entry, sorted(dict.fromkeys(missing))


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _claim_cells(res: _Results, claim: Claim) -> tuple[int, int]:
    """(cells with a usable result, cells the claim reads), each cell counted once."""
    cells = {cell.id: cell for cell in (res.grid.cell_of(recipe, seed) for part in claim.parts
                                        for cond in part.conditions for recipe in cond.recipes for seed in cond.seeds)}
    return sum(res.get(cell) is not None for cell in cells.values()), len(cells)


#: How a cell's training ran (``train.how``) when its ``cpu_s`` covers only its last attempt.
PARTIAL_CPU = ("resumed", "reused")


def cell_cpu(result: dict) -> tuple[float, bool]:
    """(CPU seconds of a finished cell over all its attempts, complete?). The cell's ``cpu_s`` is
    its last process's (training of that attempt + probes). A training run that records its
    CPU over every attempt (``train.cpu_s``, :class:`workbench.train.run.CPUClock`) makes a
    resumed cell complete (its last attempt's training is swapped for the whole training's) and
    a cell that reused a finished run complete (the run's training is added)."""
    cpu = float(result.get("cpu_s") or 0.0)
    train = result.get("train") or {}
    how = train.get("how")
    if how not in PARTIAL_CPU:
        return cpu, True
    if "cpu_s" not in train or not train.get("cpu_s_complete", False):
        return cpu, False
    if how == "resumed":
        return cpu - float(train.get("cpu_s_attempt") or 0.0) + float(train["cpu_s"]), True
    return cpu + float(train["cpu_s"]), True


def cost_rows(scale: str, results: Path | None = None, grid: Grid | None = None) -> list[dict]:
    """One row per finished cell of the grid, in grid order: cell, trainer, claims, CPU seconds
    over its attempts (:func:`cell_cpu`), its wall seconds, how it trained, and whether the CPU
    is complete (else a lower bound: a cell resumed from, or reusing, a training run that did
    not count its CPU over attempts)."""
    grid = grid or build_grid(scale)
    return _cost_rows(_Results.of(grid, results, scale))


def _cost_rows(res: _Results) -> list[dict]:
    rows = []
    for cell in res.grid.cells.values():
        result = res.get(cell)
        if result is None:
            continue
        cpu, complete = cell_cpu(result)
        rows.append({"cell": cell.id, "trainer": cell.recipe.trainer, "claims": list(cell.claims),
                     "cpu_s": cpu, "wall_s": float(result.get("wall_s") or 0.0),
                     "how": (result.get("train") or {}).get("how"), "cpu_complete": complete})
    return rows


def _cost_md(rows: list[dict], n_cells: int) -> list[str]:
    if not rows:
        return []
    cpu, wall = sum(r["cpu_s"] for r in rows), sum(r["wall_s"] for r in rows)
    partial = [r for r in rows if not r["cpu_complete"]]
    lines = ["## Cost of the finished cells", "",
             f"{len(rows)} of {n_cells} cells finished: **{cpu / 3600:.2f} CPU hours** ({wall / 3600:.2f} h of wall "
             "time, each cell's own; cells ran side by side on a shared CPU, so wall time is not the grid's)."
             + (f" {len(partial)} cell(s) resumed a killed attempt or reused a finished training run whose "
                "CPU over attempts was not recorded; their CPU seconds cover the last attempt only (a lower bound, "
                "marked *)." if partial else ""), "",
             "| cell | trainer | CPU s | wall s | training |", "|---|---|---|---|---|"]
    for r in rows:
        mark = "" if r["cpu_complete"] else " *"
        lines.append(f"| `{r['cell']}` | {r['trainer']} | {r['cpu_s']:.0f}{mark} | {r['wall_s']:.0f} | {r['how'] or '—'} |")
    return lines + [""]


def build_report(scale: str, results: Path | None = None, grid: Grid | None = None,
                 progress: dict | None = None) -> tuple[dict, dict]:
    """(claims.json payload, {claim id: what is missing}). ``progress``, if a dict, receives
    {claim id: (cells done, cells read)} for the markdown's verdict column."""
    grid = grid or build_grid(scale)
    return _build(_Results.of(grid, results, scale), scale, progress)


def _build(res: _Results, scale: str, progress: dict | None) -> tuple[dict, dict]:
    entries, missing = [], {}
    for claim in res.grid.claims:
        entry, miss = _claim_entry(res, claim, scale)
        entries.append(entry)
        missing[claim.id] = miss
        if progress is not None:
            progress[claim.id] = _claim_cells(res, claim)
    synthetic = None if not res.synthetic else (True if res.synthetic == {True} else
                                                 False if res.synthetic == {False} else "mixed")
    return {"scale": scale, "synthetic": synthetic, "rule": RULE, "claims": entries}, missing


def _pct(values) -> str:
    if not values:
        return "—"
    arr = PERCENT * np.asarray(values, dtype=float)
    if len(arr) == 1:  # one seed has no spread to show
        return f"{arr[0]:.1f} (n=1)"
    return f"{arr.mean():.1f} ± {float(arr.std(ddof=1)):.1f} (n={len(arr)})"


def _paper_text(paper: dict) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items() if x is not None) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return f"{v:g}" if isinstance(v, float) else str(v)
    skip = ("table", "figure", "unit", "finding", "numbers")
    text = "; ".join(f"{k}: {fmt(v)}" for k, v in paper.items() if k not in skip and v is not None)
    if paper.get("finding"):
        text = (text + "; " if text else "") + f"“{paper['finding']}”"
    return text.replace("|", "/")


def _paper_cell(paper: dict) -> str:
    """The paper's numbers for the summary table: cut at :data:`PAPER_CELL_CHARS` (the part
    list below gives them in full)."""
    text = _paper_text(paper)
    if len(text) <= PAPER_CELL_CHARS:
        return text
    return text[:PAPER_CELL_CHARS].rsplit(" ", 1)[0] + " … (in full below)"


def _md(payload: dict, missing: dict, figures: Path, progress: dict | None = None) -> str:
    syn = payload["synthetic"]
    data = {True: "the embedded **synthetic** benchmark", False: "real data sets", None: "no results yet",
            "mixed": "MIXED synthetic and real results (do not compare)"}[syn]
    lines = [f"# The paper's claims at the `{payload['scale']}` scale",
             "", f"Ours: {data}. Paper: real data sets (SemiSupCon: percent; MSA poster: as printed). "
             "Ours are shown in percent: mean ± std over pretraining seeds (n), each seed the mean over probe seeds. "
             "Regenerate with `python -m workbench claims --report-only`.", "",
             f"**Rule.** {payload['rule']}", "",
             "| id | source | statement | paper | ours | verdict | figure |", "|---|---|---|---|---|---|---|"]
    for c in payload["claims"]:
        first = c["parts"][0] if c["parts"] else None
        ours = "; ".join(f"{cd['label']}: {_pct(cd['values'])}" for cd in first["conditions"]) if first else "—"
        if first and first["p_value"] is not None:
            ours += f"; p = {first['p_value']:.3g}"
        if len(c["parts"]) > 1:
            ours += f" (+{len(c['parts']) - 1} more part{'s' if len(c['parts']) > 2 else ''} below)"
        link = Path(c["figure"])
        link = Path(*link.parts[1:]) if link.parts and link.parts[0] == "figures" else link  # beside the md
        verdict = f"**{c['verdict']}**"
        if progress and c["id"] in progress and c["verdict"] == "pending":
            verdict += " ({} of {} cells)".format(*progress[c["id"]])
        lines.append(f"| `{c['id']}` | {c['source']} | {c['statement'].replace('|', '/')} | "
                     f"{_paper_cell(c['paper'])} | {ours.replace('|', '/')} | {verdict} | "
                     f"[{link.name}]({link.as_posix()}) |")
    lines += ["", "## Parts", ""]
    for c in payload["claims"]:
        lines.append(f"### `{c['id']}` — {c['verdict']}")
        if progress and c["id"] in progress:
            lines.append("- cells: {} of {} done".format(*progress[c["id"]]))
        if _paper_text(c["paper"]) != _paper_cell(c["paper"]):
            lines.append(f"- paper: {_paper_text(c['paper'])}")
        for p in c["parts"]:
            stat = "" if p["p_value"] is None else f", {p['test']}: statistic {p['statistic']:.3g}, p = {p['p_value']:.3g}"
            lines.append(f"- {p['metric']} (expect {p['expect']}): **{p['verdict']}**{stat}")
            for cd in p["conditions"]:
                vals = ", ".join(f"{PERCENT * v:.1f}" for v in cd["values"]) or "—"
                x = "" if cd["x"] is None else f" (x = {cd['x']})"
                lines.append(f"  - {cd['label']}{x}: {_pct(cd['values'])}; per seed: {vals}")
        if missing.get(c["id"]):
            shown = missing[c["id"]][:12]
            more = len(missing[c["id"]]) - len(shown)
            lines.append(f"- missing: {'; '.join(shown)}" + (f"; and {more} more" if more > 0 else ""))
        lines.append("")
    return "\n".join(lines)


def write_report(scale: str, results: Path | None = None, figures: str | Path = "figures",
                 grid: Grid | None = None) -> dict:
    """Write ``claims.md`` (claims, parts, cost of the finished cells) and ``claims.json``
    (:func:`report_paths`); returns their paths."""
    from ..params import resolve_path

    grid = grid or build_grid(scale)
    res = _Results.of(grid, results, scale)  # read once, used twice
    progress: dict = {}
    payload, missing = _build(res, scale, progress)
    paths = {k: resolve_path(v) for k, v in report_paths(scale, figures).items()}
    paths["md"].parent.mkdir(parents=True, exist_ok=True)
    paths["json"].write_text(json.dumps(payload, indent=1, default=str) + "\n")
    cost = _cost_md(_cost_rows(res), len(grid.cells))
    paths["md"].write_text(_md(payload, missing, Path(figures), progress) + "\n" + "\n".join(cost))
    return paths
