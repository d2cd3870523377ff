"""The paper's figures and tables from the stored claim results alone (no model, no run folder).

:func:`draw_all` draws, into ``figures/claims/<scale>/``: Figure 2 / Table 2, Table 3 (the
full support × task grid), Table 4, Table 6, Table 7, Figure 3, Figure 4 (the t-SNE pair,
from the stored 2-D maps) and the MSA poster's tables, each with the paper's numbers beside
ours and a CSV of the same numbers. Ours are labelled synthetic when they come from the
embedded benchmark; the paper's are real; the two are never averaged together. Tables 3, 4,
6, 7 and Figure 3 reuse :mod:`workbench.figures`; Figure 2, Figure 4 and the MSA tables are
drawn here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from .. import figures as WF
from .. import paper_numbers as PN
from . import store
from .registry import Grid, build_grid
from .report import figure_path

__all__ = ["claim_rows", "robustness_rows", "draw_all", "figure2_table2", "figure4_latent", "msa_tables",
           "FIGURES"]

SETTINGS = ("method", "support", "p", "b_s", "n_views", "batch_size", "criterion", "steps")


def _results(grid: Grid, results: Path, claim_ids) -> list[tuple]:
    """(cell, stored result) of every finished cell of ``claim_ids`` (spec hash checked)."""
    from . import cells as C

    out = []
    for cell in grid.cells_for(claim_ids):
        stored = store.read_result(results, cell.id)
        if not stored or stored.get("status") != "ok":
            continue
        try:
            if stored.get("spec_hash") != C.spec_hash(C.spec_of(cell, grid.scale, grid.plan["probe_seeds"])):
                continue
        except C.NotRunnable:
            continue
        out.append((cell, stored))
    return out


def _settings(cell, stored: dict) -> dict:
    config = (stored.get("spec") or {}).get("config", {})
    out = {k: config.get(k) for k in SETTINGS if k in config}
    if cell.recipe.trainer == "supervised":
        out["method"] = "supervised"
    elif cell.recipe.trainer == "cola":
        out["method"] = cell.recipe.slug
    if out.get("method") in ("simclr", "clmr"):
        out["support"] = None
    out["criterion"] = str(out.get("criterion")) if out.get("criterion") is not None else None
    return out


def claim_rows(grid: Grid, results: Path, claim_ids, recipes=None) -> list[dict]:
    """Result rows (one per cell, task and metric; ``mean``/``std`` over probe seeds) in the
    layout of :mod:`workbench.figures`, for the cells of ``claim_ids`` (optionally only the
    given recipes' cells)."""
    keys = None if recipes is None else {r._key for r in recipes}
    rows = []
    for cell, stored in _results(grid, results, claim_ids):
        if keys is not None and not any(grid.index.get((k, cell.seed)) == cell.id for k in keys):
            continue
        base = {**_settings(cell, stored), "pretrain_seed": cell.seed, "cell": cell.id,
                "synthetic": bool(stored.get("synthetic", True)), "model": cell.recipe.slug}
        for task, metrics in (stored.get("metrics") or {}).items():
            for metric, value in metrics.items():
                per_probe = (stored.get("probe_values") or {}).get(task, {}).get(metric, [value])
                std = float(np.std(per_probe, ddof=1)) if len(per_probe) > 1 else 0.0
                rows.append({**base, "task": task, "metric": metric, "mean": float(value), "std": std})
    return rows


def robustness_rows(grid: Grid, results: Path) -> list[dict]:
    rows = []
    for cell, stored in _results(grid, results, ["F3-robust"]):
        rob = stored.get("robustness")
        if not rob:
            continue
        base = {**_settings(cell, stored), "pretrain_seed": cell.seed, "synthetic": bool(stored.get("synthetic", True)),
                "task": rob["task"], "corruption": rob["corruption"], "model": cell.recipe.slug}
        for severity, metrics in rob["severities"].items():
            for metric, value in metrics.items():
                rows.append({**base, "severity": float(severity), "metric": metric, "mean": float(value), "std": 0.0})
    return rows


def _plt():
    import matplotlib.pyplot as plt

    return plt


def figure2_table2(rows: list[dict], path: Path) -> Path:
    """Figure 2 / Table 2: MTAT AUROC and AP against p = b_s (ours: mean ± std over
    pretraining seeds; paper: SampleCNN and TUNe+), with SupCon (p = b_s = 1) and the
    end-to-end baseline as reference marks."""
    plt = _plt()
    df = WF._frame(rows)
    df = df[df["task"] == "mtat_top50"]
    metrics = [m for m in ("roc_auc", "average_precision") if m in set(df["metric"])] or ["roc_auc"]
    fig, axes = plt.subplots(len(metrics), 2, figsize=(10.0, 3.2 * len(metrics)), squeeze=False)
    table = []
    for i, metric in enumerate(metrics):
        ax, pax = axes[i]
        sub = df[df["metric"] == metric].copy()
        semi = sub[sub["method"].isin(["semisupcon", "simclr"])].copy()
        semi["x"] = semi.apply(lambda r: 0.0 if r["method"] == "simclr" else float(r["p"]), axis=1)
        semi = semi[semi["method"].eq("simclr") | np.isclose(semi["p"].astype(float), semi["b_s"].astype(float))]
        ours = WF._over_seeds(semi, ["x"]) if not semi.empty else semi
        if len(ours):
            ax.errorbar(ours["x"], WF.PERCENT * ours["mean"], yerr=WF.PERCENT * ours["std"], fmt="o-",
                        color=WF.OURS_COLOR, capsize=3, label="ours, SemiSupCon (p = b_s)")
            table += [{"metric": metric, "model": "semi", "p=b_s": r["x"], "source": "ours",
                       "value": WF.PERCENT * r["mean"], "std": WF.PERCENT * r["std"], "n": r["n"]}
                      for _, r in ours.iterrows()]
        for method, style, label in (("supcon", "s", "ours, SupCon (p = b_s = 1)"),
                                     ("supervised", "x", "ours, end-to-end supervised")):
            part = sub[sub["method"] == method]
            if len(part):
                m, s = WF.PERCENT * part["mean"].mean(), WF.PERCENT * (part["mean"].std(ddof=1) if len(part) > 1 else 0)
                ax.errorbar([1.0], [m], yerr=[s], fmt=style, color=WF.METHOD_COLORS.get(method), capsize=3, label=label)
                table.append({"metric": metric, "model": method, "p=b_s": 1.0, "source": "ours", "value": m, "std": s,
                              "n": len(part)})
        k = PN.TABLE2["metrics"].index(metric) if metric in PN.TABLE2["metrics"] else None
        if k is not None:
            pts = [r for r in PN.TABLE2["rows"] if r["p"] == r["b_s"]]
            for enc, style in (("samplecnn", "o--"), ("tunep", "^:")):
                pax.plot([r["p"] for r in pts], [r[enc][k] for r in pts], style, label=f"paper, {enc}",
                         color=WF.PAPER_COLOR if enc == "samplecnn" else "tab:purple")
                table += [{"metric": metric, "model": enc, "p=b_s": r["p"], "source": "paper", "value": r[enc][k],
                           "std": None, "n": None} for r in pts]
            e2e = PN.TABLE2_LITERATURE["samplecnn_end_to_end"][k]
            pax.axhline(e2e, color=WF.METHOD_COLORS["supervised"], ls="--", lw=1, label="paper, end-to-end SampleCNN")
            table.append({"metric": metric, "model": "supervised", "p=b_s": None, "source": "paper", "value": e2e,
                          "std": None, "n": None})
        for a, who in ((ax, WF._data_label(df) if len(df) else "ours"), (pax, "paper (MTAT, real data)")):
            a.set_xlabel("p = b_s")
            a.set_ylabel(f"{WF._metric_label(metric)} %", fontsize=8)
            a.set_title(who, fontsize=9)
            a.legend(fontsize=7)
    fig.suptitle("Figure 2 / Table 2 — MTAT tagging against the labelled proportion p = b_s", fontsize=10)
    fig.tight_layout()
    return WF._save(fig, path, pd.DataFrame(table))


def figure4_latent(maps: dict, knn: dict, path: Path, synthetic: bool = True) -> Path:
    """Figure 4: the t-SNE maps of the NSynth test set for the pitch-support model (a) and
    the SSL model (b), coloured by pitch class; titles give the k-NN pitch-class accuracy in
    the map and in the embedding space (mean over pretraining seeds)."""
    from ..latent import PITCH_CLASSES

    plt = _plt()
    fig, axes = plt.subplots(1, len(maps), figsize=(5.2 * len(maps), 5.0), squeeze=False)
    cmap = plt.get_cmap("hsv")
    table = []
    for ax, (name, frame) in zip(axes[0], maps.items()):
        for k, pc in enumerate(PITCH_CLASSES):
            sel = frame["pitch_class"].astype(str) == pc
            ax.scatter(frame.loc[sel, "x"], frame.loc[sel, "y"], s=5, color=cmap(k / len(PITCH_CLASSES)), label=pc)
        acc = knn.get(name, {})
        ax.set_title(textwrap.fill(f"{name}: k-NN pitch-class accuracy, map {WF.PERCENT * acc.get('map', np.nan):.1f} %, "
                                   f"embedding {WF.PERCENT * acc.get('embedding', np.nan):.1f} %", 60), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        table.append({"model": name, "knn_map": acc.get("map"), "knn_embedding": acc.get("embedding"),
                      "n_points": len(frame)})
    axes[0][0].legend(fontsize=6, markerscale=2, ncol=2, title="pitch class", title_fontsize=7)
    data = "synthetic data (embedded benchmark)" if synthetic else "real data"
    fig.suptitle(textwrap.fill(f"Figure 4 — t-SNE of NSynth test embeddings, ours: {data}. Paper (real data): the "
                               "pitch-support map is highly organised by pitch, the SSL map much less", 100), fontsize=9)
    fig.tight_layout()
    return WF._save(fig, path, pd.DataFrame(table))


#: COLA/MSA cell slugs → the names the poster's tables give them (its numbers are looked up by name).
MSA_MODEL_NAMES = {"cola-cola": "COLA", "cola-msa": "COLA + MSA", "cola-random-mask": "COLA + Random Mask",
                   "cola-msa-no-shift": "MSA, no time shift", "cola-msa-bass": "Bass", "cola-msa-drums": "Drums",
                   "cola-msa-accompaniment": "Accomp.", "cola-msa-vocals": "Vocals",
                   "cola-random-init": "random init", "cola-msa-x4": "COLA + MSA, 4x steps"}
#: The poster's comparison models, whose pretext curves the report draws.
PRETEXT_CURVE_MODELS = ("cola-msa", "cola-cola", "cola-random-mask", "cola-msa-no-shift", "cola-msa-x4")


def msa_tables(rows: list[dict], path: Path) -> Path:
    """The MSA poster's comparison and source-targeted tables: ours (mean ± std over seeds)
    beside the poster's, per task."""
    plt = _plt()
    df = WF._frame(rows)
    names = MSA_MODEL_NAMES
    cols = {"mtat_top50": ("roc_auc", "mtat_roc_auc"), "fma_genre": ("accuracy", "fma_wa"),
            "nsynth_instrument": ("accuracy", "nsynth_wa")}
    tasks = [t for t in cols if t in set(df["task"])]
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(4.6 * max(1, len(tasks)), 3.8), squeeze=False)
    table = []
    poster = {**PN.MSA_POSTER["rows"], **PN.MSA_POSTER["sources"]}
    for ax, task in zip(axes[0], tasks):
        metric, pcol = cols[task]
        sub = df[(df["task"] == task) & (df["metric"] == metric)]
        ours = WF._over_seeds(sub, ["model"])
        labels = [names.get(m, m) for m in ours["model"]]
        y = np.arange(len(labels))
        ax.barh(y - 0.2, WF.PERCENT * ours["mean"], 0.4, xerr=WF.PERCENT * ours["std"], color=WF.OURS_COLOR,
                label="ours")
        pv = []
        for lab in labels:
            v = (poster.get(lab) or {}).get(pcol)
            pv.append(np.nan if v is None else (v * WF.PERCENT if v <= 1 else v))
        ax.barh(y + 0.2, pv, 0.4, color=WF.PAPER_COLOR, label="poster (MTAT pretraining, real)")
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_xlabel(f"{task} {WF._metric_label(metric)} %", fontsize=8)
        finite = [v for v in [*(WF.PERCENT * ours["mean"]).tolist(), *pv] if np.isfinite(v)]
        if finite:
            ax.set_xlim(max(0.0, min(finite) - 10), min(WF.PERCENT, max(finite) + 5))
        ax.legend(fontsize=6)
        table += [{"task": task, "metric": metric, "model": lab, "ours": WF.PERCENT * m, "std": WF.PERCENT * s,
                   "n": n, "poster": p} for lab, m, s, n, p in zip(labels, ours["mean"], ours["std"], ours["n"], pv)]
    fig.suptitle(f"MSA poster tables — {WF._data_label(df)}; poster: MTAT with open-unmix stems (real)", fontsize=9)
    fig.tight_layout()
    return WF._save(fig, path, pd.DataFrame(table))


#: Pretext-accuracy curves: the solid line is the running mean over this many logged steps (each
#: logged value is one training batch, so single points are noisy); raw values are drawn faint.
CURVE_SMOOTHING = 10


def pair_accuracy_curves(curves: dict[str, list[list[list[float]]]], path: Path, synthetic: bool = True) -> Path:
    """Training pair accuracy per logged step of the COLA/MSA models: per seed, the raw values
    (faint) and their running mean over :data:`CURVE_SMOOTHING` logged steps,
    the chance level (1 / candidates) dashed. ``curves``: label → per seed ``[[step, acc, chance], ...]``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    table, chance = [], None
    for k, (label, seeds) in enumerate(curves.items()):
        for j, curve in enumerate(seeds):
            arr = np.asarray(curve, dtype=float)
            if not len(arr):
                continue
            ax.plot(arr[:, 0], arr[:, 1], color=f"C{k}", alpha=0.2, lw=0.8)
            smooth = pd.Series(arr[:, 1]).rolling(CURVE_SMOOTHING, min_periods=1).mean()
            ax.plot(arr[:, 0], smooth, color=f"C{k}", lw=1.5, label=label if j == 0 else None)
            chance = arr[:, 2][np.isfinite(arr[:, 2])][:1].tolist() or chance
            table += [{"model": label, "seed_index": j, "step": int(r[0]), "pair_accuracy": r[1], "chance": r[2]}
                      for r in arr.tolist()]
    if chance:
        ax.axhline(chance[0], color="grey", ls="--", lw=1, label=f"chance ({chance[0]:.3f})")
    ax.set_xlabel("training step")
    ax.set_ylabel("training pair accuracy")
    ax.legend(fontsize=7)
    ax.set_title(f"COLA / MSA pretext accuracy — {'synthetic' if synthetic else 'real'} data", fontsize=9)
    fig.tight_layout()
    return WF._save(fig, path, pd.DataFrame(table))


def _pair_curves(grid: Grid, results: Path, path: Path):
    labels = {slug: MSA_MODEL_NAMES[slug] for slug in PRETEXT_CURVE_MODELS}
    curves: dict[str, list] = {}
    synthetic = True
    for cell in grid.cells.values():
        base = cell.id.rsplit("-s", 1)[0]
        if base not in labels:
            continue
        stored = store.read_result(results, cell.id) or {}
        curve = (stored.get("train") or {}).get("pair_accuracy")
        if curve:
            synthetic = bool(stored.get("synthetic", True))
            curves.setdefault(labels[base], []).append(curve)
    return pair_accuracy_curves(curves, path, synthetic) if curves else None


def _draw(name: str, grid: Grid, results: Path, path: Path):
    if name == "table2":
        rows = claim_rows(grid, results, ["T2-semi", "T2-supcon"])
        rows = [r for r in rows if r.get("steps") is None or r["method"] == "supervised" or
                r["steps"] == max(x.get("steps") or 0 for x in rows)]
        return figure2_table2(rows, path) if rows else None
    if name == "table3":
        recipes = [r for cid in ("T3-pitch", "T3-key", "T3-tags", "T3-noharm") for r in grid.claim(cid).recipes
                   if r.overrides.get("augment_exclude") != []]
        rows = claim_rows(grid, results, ["T3-pitch", "T3-key", "T3-tags", "T3-noharm"], recipes)
        return WF.table3_support_grid(rows, path) if rows else None
    if name == "table4":
        rows = claim_rows(grid, results, ["T4-sup", "T4-semi"])
        return WF.table4_criterion(rows, path) if rows else None
    if name == "table6":
        rows = claim_rows(grid, results, ["T6-bs", "T6-p"])
        return WF.table6_p_bs(rows, path) if rows else None
    if name == "table7":
        rows = claim_rows(grid, results, ["T7-views"])
        return WF.table7_views(rows, path) if rows else None
    if name == "figure3":
        rows = robustness_rows(grid, results)
        return WF.figure3_robustness(rows, path) if rows else None
    if name == "figure4":
        return _figure4(grid, results, path)
    if name == "msa":
        rows = claim_rows(grid, results, ["MSA-cola", "MSA-mask", "MSA-shift", "MSA-sources", "MSA-learns",
                                             "MSA-budget"])
        return msa_tables(rows, path) if rows else None
    if name == "msa-pair-accuracy":
        return _pair_curves(grid, results, path)
    raise KeyError(name)


def _figure4(grid: Grid, results: Path, path: Path):
    claim = grid.claim("F4-latent")
    part = claim.parts[0]
    maps, knn, synthetic = {}, {}, True
    for cond in part.conditions:
        recipe = cond.recipes[0]
        accs = {"map": [], "embedding": []}
        for seed in cond.seeds:
            cell = grid.cell_of(recipe, seed)
            stored = store.read_result(results, cell.id)
            lat = (stored or {}).get("latent")
            if not lat:
                continue
            synthetic = bool(stored.get("synthetic", True))
            accs["map"].append(lat["knn_map"])
            accs["embedding"].append(lat["knn_embedding"])
            map_file = Path(results) / lat.get("map_file", f"{cell.id}.map.csv")
            if cond.label not in maps and map_file.is_file():
                maps[cond.label] = pd.read_csv(map_file)
        if accs["map"]:
            knn[cond.label] = {k: float(np.mean(v)) for k, v in accs.items()}
    if not maps:
        return None
    order = sorted(maps, key=lambda k: k == "SSL")  # (a) the pitch-support model, (b) SSL, as in the paper
    return figure4_latent({k: maps[k] for k in order}, knn, path, synthetic)


#: Figure name → what it shows (``draw_all`` draws each into figures/claims/<scale>/).
FIGURES = {"table2": "Figure 2 / Table 2", "table3": "Table 3", "table4": "Table 4", "table6": "Table 6",
           "table7": "Table 7", "figure3": "Figure 3", "figure4": "Figure 4", "msa": "MSA poster tables",
           "msa-pair-accuracy": "MSA pretext accuracy"}


def draw_all(scale: str, results: Path | None = None, figures: str | Path = "figures",
             grid: Grid | None = None) -> list[dict]:
    """Draw every figure that has results; one record per figure: ``{"name", "path", "note"}``."""
    from ..params import resolve_path

    grid = grid or build_grid(scale)
    results = Path(results) if results is not None else store.results_dir(scale)
    records = []
    for name, title in FIGURES.items():
        path = resolve_path(figure_path(scale, name, figures))
        try:
            drawn = _draw(name, grid, results, path)
        except Exception as err:  # noqa: BLE001 - one broken figure must not stop the others
            records.append({"name": name, "title": title, "path": None, "note": f"failed: {type(err).__name__}: {err}"})
            continue
        records.append({"name": name, "title": title, "path": str(drawn) if drawn else None,
                        "note": "" if drawn else "no finished cell yet"})
    return records
