"""The claims registry: every claim of the SemiSupCon paper (and the MSA poster) that the
workbench tests, the experiments (*cells*) each one needs, and the paper's numbers.

A **recipe** is one way to train a model (trainer, method, config overrides, steps). A
**cell** is a recipe at one pretraining seed plus the evaluations every claim asks of it
(probe tasks, robustness, a latent map) → one small result file. Cells are shared: the
self-supervised baseline at seed 0 is one cell, whichever claims read it; its evaluations are
the union of theirs, so the cell (and its config hash) is the same with or without ``--only``.

A claim has parts (:mod:`workbench.claims.verdict`); a part has a metric, an expectation
and conditions; a condition reads one *measure* of one or more recipes at each seed:

- ``("metric", task, metric)``: the probe's test metric (mean over probe seeds); for the
  end-to-end supervised baseline its own head's test metric;
- ``("drop", task, metric, corruption)``: clean metric minus the mean over severities > 0;
- ``("knn", task, space)``: k-NN pitch-class accuracy in the t-SNE map (``map``) or the
  embedding space (``embedding``).

Grids depend on the scale (:data:`PLANS`): headline claims (Tables 2, 3, Figures 3, 4 and
the MSA comparisons) use 3 pretraining seeds at the scale's steps, ablations (Tables 4, 6,
7) 2 seeds at a quarter of them, as in the paper (50 k vs 200 k; the paper's Table 3 and
Figure 4 models were trained 50 k steps, so at the ``paper`` scale they use the quarter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import paper_numbers as PN

__all__ = ["MSA_VARIANTS", "MSA_SOURCES", "PLANS", "Recipe", "Condition", "Part", "Claim", "Cell", "Grid",
           "CLAIM_IDS", "build_grid", "HEADLINE", "ABLATION", "MSA"]

HEADLINE, MSA, ABLATION = "headline", "msa", "ablation"

# --------------------------------------------------------------------------- MSA variants
#: COLA/MSA variants as overrides of :func:`workbench.train.cola.resolve_cola_config`, read from
#: ``workbench/claims/msa_claims.yaml`` (its ``conditions``): the ONE place to adjust them. A variant
#: whose overrides the config rejects is reported as "not runnable yet" with the config's message.
MSA_CLAIMS_FILE = Path(__file__).resolve().parent / "msa_claims.yaml"


def load_msa_variants(path: Path = MSA_CLAIMS_FILE) -> dict[str, dict[str, Any]]:
    """``conditions`` of the MSA claims file: variant name -> COLA config overrides."""
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"MSA claim conditions: {path} not found; it ships with the repository "
                                "(workbench/claims/msa_claims.yaml).")
    conditions = (yaml.safe_load(path.read_text()) or {}).get("conditions")
    if not isinstance(conditions, dict) or not all(isinstance(v, dict) for v in conditions.values()):
        raise ValueError(f"{path}: 'conditions' must map each variant name to a dict of COLA config overrides.")
    return {str(k): dict(v) for k, v in conditions.items()}


MSA_VARIANTS: dict[str, dict[str, Any]] = load_msa_variants()
#: Source-targeted variants in the poster's row order, with the poster's row names.
MSA_SOURCES = (("msa_bass", "Bass"), ("msa_drums", "Drums"), ("msa_accompaniment", "Accomp."),
               ("msa_vocals", "Vocals"))
#: The poster's downstream tasks as our task names.
MSA_TASKS = ("mtat_top50", "fma_genre", "nsynth_instrument")
#: MSA-budget: the multi-source model's steps as a multiple of the scale's (one per source kind)
MSA_BUDGET_FACTOR = len(MSA_SOURCES)

# --------------------------------------------------------------------------- scale plans
_T3_ALL = tuple(PN.TABLE3_COLUMNS)
_NO_VOCALSET = tuple(t for t in _T3_ALL if not t.startswith("vocalset"))
#: What each scale runs. ``table3_tasks``: the probed columns (VocalSet has no credible
#: rendering in the embedded benchmark, so the demo leaves it out; docs/claims.md);
#: ``table3_supports``: the support rows; ``views``: N at fixed N·B = ``rows_per_batch``.
PLANS: dict[str, dict[str, Any]] = {
    "smoke": dict(headline_seeds=(0, 1), ablation_seeds=(0, 1), probe_seeds=(0,),
                  table3_tasks=("nsynth_pitch", "mtat_top50"), table3_supports=("nsynth_pitch", "mtat_top50"),
                  p_values=(0.25, 0.5), criteria=(1, 2, "weighted"), views=(2, 4), rows_per_batch=16,
                  severities=(0.0, 1.0), latent_task="nsynth_pitch", msa_tasks=("mtat_top50",)),
    "demo": dict(headline_seeds=(0, 1, 2), ablation_seeds=(0, 1), probe_seeds=(0, 1, 2),
                 table3_tasks=_NO_VOCALSET,
                 table3_supports=tuple(t for t in _NO_VOCALSET if t != "emomusic"),
                 p_values=(0.05, 0.1, 0.25, 0.5, 0.75), criteria=(1, 2, 4, 6, "weighted"),
                 views=(2, 4, 8, 16, 32), rows_per_batch=96, severities=(0.0, 1.0, 2.0, 3.0),
                 latent_task="nsynth_pitch", msa_tasks=MSA_TASKS),
    "paper": dict(headline_seeds=(0, 1, 2), ablation_seeds=(0, 1), probe_seeds=(0, 1, 2),
                  table3_tasks=_T3_ALL, table3_supports=tuple(t for t in _T3_ALL if t != "emomusic"),
                  p_values=(0.05, 0.1, 0.25, 0.5, 0.75), criteria=(1, 2, 4, 6, "weighted"),
                  views=(2, 4, 8, 16, 32), rows_per_batch=192, severities=(0.0, 0.5, 1.0, 2.0, 3.0),
                  latent_task="nsynth_pitch", msa_tasks=MSA_TASKS),
}
#: The robustness corruption of Figure 3 (the training chain at severity s).
F3_CORRUPTION = "chain"
#: k-NN neighbours for the latent-map measure of Figure 4.
KNN_NEIGHBORS = 5
#: Pitch-free recipe of the demo scale vs the paper's chain (T3-pitch runs both).
PAPER_CHAIN = {"augment_exclude": [], "min_view_db": None}


# --------------------------------------------------------------------------- data types
def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Recipe:
    """One way to train a model: ``trainer`` (pretrain, supervised, cola), ``method``
    (pretrain: a :data:`workbench.config.METHODS` key; supervised: the task), config
    ``overrides`` and ``steps`` (``main``, ``quarter``, ``scale``: the config's own, or
    ``init``: no training at all, the untrained model with its BatchNorm statistics
    calibrated on the training data: the random-init reference of the probes; COLA only)."""

    trainer: str
    method: str | None
    overrides: dict = field(default_factory=dict, compare=False, hash=False)
    steps: str = "main"
    slug: str = field(default="", compare=False, hash=False)
    _key: str = field(default="", repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_key", _canon([self.trainer, self.method, self.overrides, self.steps]))


@dataclass(frozen=True)
class Condition:
    """One condition of a part: each seed's value is the mean of ``measure`` over ``recipes``
    (``select="min_mean"``: the one recipe with the lowest mean over seeds, T3-noharm)."""

    label: str
    recipes: tuple
    measure: tuple
    seeds: tuple
    x: Any = None
    select: str | None = None


@dataclass(frozen=True)
class Part:
    metric: str
    expect: str
    conditions: tuple
    side: str | None = None  # expect "none" with two conditions: test only this direction (verdict.part_verdict)


@dataclass
class Claim:
    id: str
    source: str
    statement: str
    paper: dict
    figure: str  # a key of workbench.claims.figures.FIGURES
    group: str
    parts: list[Part]
    note: str = ""

    @property
    def recipes(self) -> list[Recipe]:
        out = {}
        for part in self.parts:
            for cond in part.conditions:
                for r in cond.recipes:
                    out.setdefault(r._key, r)
        return list(out.values())


@dataclass
class Cell:
    """A recipe at one pretraining seed with the evaluations its claims need."""

    id: str
    recipe: Recipe
    seed: int
    probe_tasks: list[str] = field(default_factory=list)
    robustness: dict | None = None  # {"task", "corruption", "severities"}
    latent: dict | None = None  # {"task", "reducer", "k"}
    claims: list[str] = field(default_factory=list)
    order: tuple = ()

    def evaluations(self) -> dict:
        return {"probe_tasks": sorted(self.probe_tasks), "robustness": self.robustness, "latent": self.latent}


@dataclass
class Grid:
    scale: str
    claims: list[Claim]
    cells: dict[str, Cell]  # in run order
    plan: dict
    index: dict = field(default_factory=dict)  # (recipe key, seed) -> cell id

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        import difflib

        close = difflib.get_close_matches(claim_id, CLAIM_IDS, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise KeyError(f"unknown claim id {claim_id!r}{hint}; known: {', '.join(CLAIM_IDS)}")

    def cell_of(self, recipe: Recipe, seed: int) -> Cell:
        return self.cells[self.index[(recipe._key, seed)]]

    def cells_for(self, claim_ids) -> list[Cell]:
        wanted = set(claim_ids)
        return [c for c in self.cells.values() if wanted & set(c.claims)]


CLAIM_IDS = ("T2-semi", "T2-supcon", "T3-pitch", "T3-key", "T3-tags", "T3-noharm", "T4-sup", "T4-semi", "T6-bs",
             "T6-p", "T7-views", "F3-robust", "F4-latent", "MSA-cola", "MSA-mask", "MSA-shift", "MSA-sources",
             "MSA-learns", "MSA-budget")


# --------------------------------------------------------------------------- recipes
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "+".join(_fmt(x) for x in v) or "none"
    return str(v)


def _pretrain(method: str, steps: str, slug: str, **overrides) -> Recipe:
    return Recipe("pretrain", method, dict(overrides), steps, slug)


def ssl(steps: str = "main", **extra) -> Recipe:
    tag = "-paperchain" if extra == PAPER_CHAIN else ""
    return _pretrain("simclr", steps, f"ssl{tag}", **extra)


def semi(support: str, p: float = 1.0, b_s: float = 0.5, steps: str = "main", **extra) -> Recipe:
    if extra.get("criterion") == 1:  # the default: same cell as without it
        extra.pop("criterion")
    slug = f"semi-{support}-p{_fmt(p)}-bs{_fmt(b_s)}"
    slug += "".join(f"-{k.replace('_', '')}{_fmt(v)}" for k, v in sorted(extra.items()) if extra != PAPER_CHAIN)
    slug += "-paperchain" if extra == PAPER_CHAIN else ""
    return _pretrain("semisupcon", steps, slug, support=support, p=p, b_s=b_s, **extra)


def supcon(support: str = "mtat_top50", steps: str = "main", **extra) -> Recipe:
    if extra.get("criterion") == 1:  # the default: same cell as without it
        extra.pop("criterion")
    slug = f"supcon-{support}" + "".join(f"-{k.replace('_', '')}{_fmt(v)}" for k, v in sorted(extra.items()))
    return _pretrain("supcon", steps, slug, support=support, **extra)


def supervised(task: str = "mtat_top50") -> Recipe:
    return Recipe("supervised", task, {}, "main", f"e2e-{task}")


def cola(variant: str, factor: int = 1) -> Recipe:
    """COLA/MSA ``variant`` at the scale's steps, or ``factor`` times them (milestones alike)."""
    slug = f"cola-{variant.replace('_', '-')}" + (f"-x{factor}" if factor != 1 else "")
    return Recipe("cola", None, dict(MSA_VARIANTS[variant]), "scale" if factor == 1 else f"scale*{factor}", slug)


def cola_random_init(variant: str = "msa") -> Recipe:
    """The untrained encoder of ``variant`` (same config; :func:`workbench.train.cola.random_init_checkpoint`)."""
    return Recipe("cola", None, dict(MSA_VARIANTS[variant]), "init", "cola-random-init")


def _metric(task: str, metric: str) -> tuple:
    return ("metric", task, metric)


def _two(metric: str, expect: str, first: tuple[str, Recipe], second: tuple[str, Recipe], measure: tuple,
         seeds: tuple) -> Part:
    return Part(metric, expect, (Condition(first[0], (first[1],), measure, seeds),
                                 Condition(second[0], (second[1],), measure, seeds)))


# --------------------------------------------------------------------------- claims
def _claims(scale: str, plan: dict) -> list[Claim]:
    H, A = plan["headline_seeds"], plan["ablation_seeds"]
    t3_steps = "quarter" if scale == "paper" else "main"
    T3 = plan["table3_tasks"]
    base, base3 = ssl(), ssl(t3_steps)
    auc = _metric("mtat_top50", "roc_auc")
    claims: list[Claim] = []

    # ---------------- Table 2 / Figure 2
    t2 = {(r["p"], r["b_s"]): r for r in PN.TABLE2["rows"]}
    xs = [0.0, *[p for p in plan["p_values"]]]
    conds = [Condition("SSL (p = b_s = 0)", (base,), auc, H, 0.0)]
    conds += [Condition(f"p = b_s = {_fmt(p)}", (semi("mtat_top50", p, p),), auc, H, p) for p in plan["p_values"]]
    claims.append(Claim(
        "T2-semi", "Table 2, Figure 2",
        "with MTAT support, AUROC on MTAT rises with p = b_s from 0 (SSL) to 0.75",
        {"table": "Table 2", "metric": "roc_auc", "unit": "%", "encoder": "SampleCNN",
         "p=b_s": [r["p"] for r in PN.TABLE2["rows"] if r["p"] == r["b_s"] and r["p"] < 1],
         "roc_auc": [r["samplecnn"][0] for r in PN.TABLE2["rows"] if r["p"] == r["b_s"] and r["p"] < 1],
         "average_precision": [r["samplecnn"][1] for r in PN.TABLE2["rows"] if r["p"] == r["b_s"] and r["p"] < 1]},
        "table2", HEADLINE, [Part("mtat_top50 roc_auc", "increasing", tuple(conds))],
        note=f"x: p = b_s in {xs}"))
    sup = supcon()
    e2e = supervised("mtat_top50")
    claims.append(Claim(
        "T2-supcon", "Table 2",
        "supervised contrastive (p = b_s = 1) beats SSL and the end-to-end supervised SampleCNN on MTAT",
        {"table": "Table 2", "metric": "roc_auc", "unit": "%",
         "ssl": t2[(0.0, 0.0)]["samplecnn"][0], "supcon": t2[(1.0, 1.0)]["samplecnn"][0],
         "end_to_end_samplecnn": PN.TABLE2_LITERATURE["samplecnn_end_to_end"][0]},
        "table2", HEADLINE,
        [_two("mtat_top50 roc_auc", "greater", ("SSL", base), ("SupCon (p = b_s = 1)", sup), auc, H),
         _two("mtat_top50 roc_auc", "greater", ("end-to-end supervised", e2e), ("SupCon (p = b_s = 1)", sup), auc,
              H)],
        note="the end-to-end baseline is scored with its own classifier head"))

    # ---------------- Table 3
    pitch = _metric("nsynth_pitch", "accuracy")
    claims.append(Claim(
        "T3-pitch", "Table 3",
        "NSynth-pitch support lifts pitch probing far above SSL (36.8 → 79.0) — run with the paper's chain and "
        "with the demo recipe, both reported",
        {"table": "Table 3", "metric": "accuracy", "unit": "%", "ssl": PN.table3_value(None, "nsynth_pitch"),
         "nsynth_pitch_support": PN.table3_value("nsynth_pitch", "nsynth_pitch")},
        "table3", HEADLINE,
        [_two("nsynth_pitch accuracy (scale recipe)", "greater", ("SSL", base3),
              ("support nsynth_pitch", semi("nsynth_pitch", steps=t3_steps)), pitch, H),
         _two("nsynth_pitch accuracy (paper's chain: pitch shift on, silent crops kept)", "greater",
              ("SSL, paper's chain", ssl(t3_steps, **PAPER_CHAIN)),
              ("support nsynth_pitch, paper's chain", semi("nsynth_pitch", steps=t3_steps, **PAPER_CHAIN)), pitch,
              H)],
        note="part 1 uses the scale's recipe (demo: no pitch shift, silent crops redrawn), part 2 the paper's "
             "chain"))
    key = semi("giantsteps_key", steps=t3_steps)
    claims.append(Claim(
        "T3-key", "Table 3", "GiantSteps support lifts key (13.5 → 22.3) and pitch (36.8 → 50.8)",
        {"table": "Table 3", "unit": "%",
         "giantsteps_key": {"ssl": PN.table3_value(None, "giantsteps_key"),
                            "giantsteps_key_support": PN.table3_value("giantsteps_key", "giantsteps_key")},
         "nsynth_pitch": {"ssl": PN.table3_value(None, "nsynth_pitch"),
                          "giantsteps_key_support": PN.table3_value("giantsteps_key", "nsynth_pitch")}},
        "table3", HEADLINE,
        [_two("giantsteps_key weighted_score", "greater", ("SSL", base3), ("support giantsteps_key", key),
              _metric("giantsteps_key", "weighted_score"), H),
         _two("nsynth_pitch accuracy", "greater", ("SSL", base3), ("support giantsteps_key", key), pitch, H)]))
    claims.append(Claim(
        "T3-tags", "Table 3", "MTAT support lifts MTAT tagging (88.4 → 89.3)",
        {"table": "Table 3", "metric": "roc_auc", "unit": "%", "ssl": PN.table3_value(None, "mtat_top50"),
         "mtat_top50_support": PN.table3_value("mtat_top50", "mtat_top50")},
        "table3", HEADLINE,
        [_two("mtat_top50 roc_auc", "greater", ("SSL", base3), ("support mtat_top50", semi("mtat_top50",
                                                                                            steps=t3_steps)),
              auc, H)]))
    supports = plan["table3_supports"]
    noharm_parts, noharm_paper = [], {}
    for task in T3:
        metric = _primary_metric(task)
        others = tuple(semi(s, steps=t3_steps) for s in supports if s != task)
        if not others:
            continue
        noharm_parts.append(Part(f"{task} {metric}", "none", (
            Condition("SSL", (base3,), _metric(task, metric), H),
            Condition("largest drop", others, _metric(task, metric), H, select="min_mean")), side="less"))
        noharm_paper[task] = _paper_largest_drop(task, metric, [s for s in supports if s != task])
    claims.append(Claim(
        "T3-noharm", "Table 3", "a support data set costs little on the other tasks (per task: largest drop vs SSL)",
        {"table": "Table 3", "unit": "%", "largest_drop": noharm_paper}, "table3", HEADLINE, noharm_parts,
        note="per task, the support (other than the task itself) with the lowest mean is compared with SSL by a "
             "one-sided Welch test for a drop (expect none: no significant drop)"))

    # ---------------- Figure 3
    drop = ("drop", "mtat_top50", "roc_auc", F3_CORRUPTION)
    f3_models = (("SSL", base), ("SupCon", sup), ("SemiSupCon (MTAT, p = 1, b_s = 0.5)", semi("mtat_top50")))
    claims.append(Claim(
        "F3-robust", "Figure 3",
        "contrastive models lose less than the end-to-end model as corruption severity grows",
        {"figure": "Figure 3", "numbers": PN.FIGURE3["numbers"], "finding": PN.FIGURE3["finding"]},
        "figure3", HEADLINE,
        [_two(f"mtat_top50 roc_auc drop ({F3_CORRUPTION}: clean − mean over severities > 0)", "less",
              ("end-to-end supervised", e2e), (label, r), drop, H) for label, r in f3_models],
        note="the end-to-end model is scored with its own head, contrastive models with clean-trained probes"))

    # ---------------- Figure 4
    lt = plan["latent_task"]
    pitch_model = semi("nsynth_pitch", steps=t3_steps)
    claims.append(Claim(
        "F4-latent", "Figure 4",
        "the pitch-support model's NSynth test map is organised by pitch, the SSL map much less (k-NN pitch-class "
        "accuracy in the 2-D map and in the embedding space)",
        {"figure": "Figure 4", "numbers": None,
         "finding": "When pretrained on NSynth-pitch, the latent space is highly organized; separability by class "
                    "is much clearer than when pretrained on FMA (t-SNE of the NSynth test set)."},
        "figure4", HEADLINE,
        [_two(f"k-NN pitch-class accuracy, t-SNE map (k = {KNN_NEIGHBORS})", "greater", ("SSL", base3),
              ("support nsynth_pitch", pitch_model), ("knn", lt, "map"), H),
         _two(f"k-NN pitch-class accuracy, embedding space (k = {KNN_NEIGHBORS})", "greater", ("SSL", base3),
              ("support nsynth_pitch", pitch_model), ("knn", lt, "embedding"), H)]))

    # ---------------- MSA poster
    mt = plan["msa_tasks"]
    poster = PN.MSA_POSTER["rows"]
    msa_parts = [_two("mtat_top50 roc_auc", "greater", ("COLA", cola("cola")), ("COLA + MSA", cola("msa")), auc, H)]
    if "fma_genre" in mt:
        msa_parts.append(_two("fma_genre accuracy", "greater", ("COLA", cola("cola")), ("COLA + MSA", cola("msa")),
                              _metric("fma_genre", "accuracy"), H))
    claims.append(Claim(
        "MSA-cola", "MSA poster, comparison to baselines",
        "COLA + MSA beats COLA on MTAT tagging and FMA genre (poster: 0.900 vs 0.886 ROC-AUC, 0.510 vs 0.460)",
        {"table": "Comparison to baselines", "cola": poster["COLA"], "msa": poster["COLA + MSA"]},
        "msa", MSA, msa_parts))
    claims.append(Claim(
        "MSA-mask", "MSA poster, comparison to baselines", "MSA beats random soft masking (0.883 ROC-AUC)",
        {"table": "Comparison to baselines", "random_mask": poster["COLA + Random Mask"],
         "msa": poster["COLA + MSA"]},
        "msa", MSA, [_two("mtat_top50 roc_auc", "greater", ("COLA + random soft masking", cola("random_mask")),
                          ("COLA + MSA", cola("msa")), auc, H)]))
    claims.append(Claim(
        "MSA-shift", "MSA poster, ablation study", "time shifting matters: MSA without time shift does worse",
        {"finding": "Time shifting of the source excerpts is critical to the performance.", "numbers": None},
        "msa", MSA, [_two("mtat_top50 roc_auc", "greater", ("MSA without time shift", cola("msa_no_shift")),
                          ("MSA", cola("msa")), auc, H)]))
    src_parts = []
    for task in mt:
        metric = "roc_auc" if task == "mtat_top50" else "accuracy"
        for variant, name in MSA_SOURCES:
            src_parts.append(_two(f"{task} {metric}", "greater", (f"{name}-targeted", cola(variant)),
                                  ("multi-source", cola("msa")), _metric(task, metric), H))
    claims.append(Claim(
        "MSA-sources", "MSA poster, source-targeted models",
        "the source-targeted table (bass, drums, …) on the same tasks: the multi-source model beats every "
        "targeted one",
        {"table": "Source-targeted models", "rows": PN.MSA_POSTER["sources"]}, "msa", MSA, src_parts))
    learn_parts = [_two(f"{task} {'roc_auc' if task == 'mtat_top50' else 'accuracy'}", "greater",
                        ("random init", cola_random_init()), ("COLA + MSA", cola("msa")),
                        _metric(task, "roc_auc" if task == "mtat_top50" else "accuracy"), H) for task in mt]
    claims.append(Claim(
        "MSA-learns", "issue 13 (not a poster claim)",
        "the MSA model's frozen probes beat the same encoder untrained (BatchNorm calibrated) on every MSA task",
        {"finding": "the poster reports no random-init reference; this checks the model learns at all",
         "numbers": None}, "msa", MSA, learn_parts,
        note="training pair accuracy per logged step is stored with each cell (train.pair_accuracy) and plotted "
             "in figures/claims/<scale>/msa_pair_accuracy.png"))
    # the multi-source model sees each source in a quarter of its (homogeneous) batches: given
    # MSA_BUDGET_FACTOR times the steps, each source gets the steps of a source-targeted model
    budget = cola("msa", MSA_BUDGET_FACTOR)
    budget_parts = [_two(f"{task} {'roc_auc' if task == 'mtat_top50' else 'accuracy'}", "greater",
                         ("random init", cola_random_init()), (f"COLA + MSA, {MSA_BUDGET_FACTOR}x steps", budget),
                         _metric(task, "roc_auc" if task == "mtat_top50" else "accuracy"), H) for task in mt]
    claims.append(Claim(
        "MSA-budget", "issue 13 (not a poster claim)",
        f"given {MSA_BUDGET_FACTOR}x the steps (each source a source-targeted model's steps), the MSA model's "
        "frozen probes beat the same encoder untrained on every MSA task",
        {"finding": "MSA-learns at the scale's steps beats the untrained encoder on MTAT only; this tests "
                    "whether the multi-source model lacks steps", "numbers": None}, "msa", MSA, budget_parts,
        note="same config as MSA-learns' model but steps and learning-rate milestones multiplied by "
             f"{MSA_BUDGET_FACTOR} (steps kind scale*{MSA_BUDGET_FACTOR})"))

    # ---------------- Table 4
    crit_values = plan["criteria"]
    numeric = [c for c in crit_values if c != "weighted"]
    t4 = {str(r["criterion"]): r for r in PN.TABLE4["rows"]}
    sup_q = {c: supcon(steps="quarter", criterion=c) for c in crit_values}
    semi_q = {c: semi("mtat_top50", steps="quarter", criterion=c) for c in (1, "weighted")}
    claims.append(Claim(
        "T4-sup", "Table 4", "supervised: Dice weighting beats criterion 1, and a higher criterion does worse",
        {"table": "Table 4", "metric": "roc_auc", "unit": "%", "criterion": [str(c) for c in crit_values],
         "roc_auc": [t4[str(c)]["supervised"][0] for c in crit_values if str(c) in t4]},
        "table4", ABLATION,
        [_two("mtat_top50 roc_auc", "greater", ("criterion 1", sup_q[1]), ("weighted (Dice)", sup_q["weighted"]),
              auc, A),
         Part("mtat_top50 roc_auc", "decreasing",
              tuple(Condition(f"criterion {c}", (sup_q[c],), auc, A, c) for c in numeric))]))
    claims.append(Claim(
        "T4-semi", "Table 4", "semi-supervised: criterion 1 beats Dice weighting",
        {"table": "Table 4", "metric": "roc_auc", "unit": "%", "criterion_1": t4["1"]["semi_supervised"][0],
         "weighted": t4["weighted"]["semi_supervised"][0]},
        "table4", ABLATION,
        [_two("mtat_top50 roc_auc", "greater", ("weighted (Dice)", semi_q["weighted"]), ("criterion 1", semi_q[1]),
              auc, A)], note="semi-supervised: MTAT support, p = 1, b_s = 0.5"))

    # ---------------- Table 6
    t6 = PN.TABLE6["rows"]
    claims.append(Claim(
        "T6-bs", "Table 6", "at p = 1, AUROC rises with b_s",
        {"table": "Table 6", "metric": "roc_auc", "unit": "%", "b_s": [r["b_s"] for r in t6 if r["p"] == 1.0],
         "roc_auc": [r["roc_auc"] for r in t6 if r["p"] == 1.0]},
        "table6", ABLATION,
        [Part("mtat_top50 roc_auc", "increasing",
              tuple(Condition(f"b_s = {_fmt(b)}", (semi("mtat_top50", 1.0, b, "quarter"),), auc, A, b)
                    for b in plan["p_values"]))]))
    claims.append(Claim(
        "T6-p", "Table 6", "at b_s = 0.5, p shows no consistent trend",
        {"table": "Table 6", "metric": "roc_auc", "unit": "%", "p": [r["p"] for r in t6 if r["b_s"] == 0.5],
         "roc_auc": [r["roc_auc"] for r in t6 if r["b_s"] == 0.5]},
        "table6", ABLATION,
        [Part("mtat_top50 roc_auc", "none",
              tuple(Condition(f"p = {_fmt(p)}", (semi("mtat_top50", p, 0.5, "quarter"),), auc, A, p)
                    for p in plan["p_values"]))]))

    # ---------------- Table 7
    nb = plan["rows_per_batch"]
    views = plan["views"]
    moderate = [n for n in views if n in (4, 8)]
    largest = max(views)
    t7_parts = []
    families = (("SSL", lambda **kw: _pretrain("simclr", "quarter", "views-ssl-n{n_views}", **kw)),
                ("SL", lambda **kw: _pretrain("supcon", "quarter", "views-supcon-n{n_views}", support="mtat_top50",
                                              **kw)),
                ("Semi-SL", lambda **kw: _pretrain("semisupcon", "quarter", "views-semi-n{n_views}",
                                                   support="mtat_top50", p=1.0, b_s=0.5, **kw)))

    def view_recipe(make, n):
        r = make(n_views=n, batch_size=nb // n)
        return Recipe(r.trainer, r.method, r.overrides, r.steps, r.slug.format(n_views=n))

    for name, make in families:
        mod = Condition(f"{name}, N = {'–'.join(map(str, moderate))}", tuple(view_recipe(make, n) for n in moderate),
                        auc, A, list(moderate))
        if 2 in views and 2 not in moderate:
            t7_parts.append(Part(f"mtat_top50 roc_auc ({name})", "greater",
                                 (Condition(f"{name}, N = 2", (view_recipe(make, 2),), auc, A, 2), mod)))
        if largest not in moderate and largest != 2:
            t7_parts.append(Part(f"mtat_top50 roc_auc ({name})", "greater",
                                 (Condition(f"{name}, N = {largest}", (view_recipe(make, largest),), auc, A, largest),
                                  mod)))
    claims.append(Claim(
        "T7-views", "Table 7", "at fixed N·B, a moderate N (4–8) beats N = 2 and the largest N",
        {"table": "Table 7", "metric": "roc_auc", "unit": "%", "rows_per_batch": PN.TABLE7["rows_per_batch"],
         "n_views": [r["n_views"] for r in PN.TABLE7["rows"]],
         **{fam: [r[fam][0] for r in PN.TABLE7["rows"]] for fam in ("ssl", "sl", "semi")}},
        "table7", ABLATION, t7_parts,
        note=f"N·B = {nb} rows; the moderate condition's per-seed value is the mean over N in {moderate}"))
    return claims


def _primary_metric(task: str) -> str:
    """The task's model-selection metric (Table 3's column metric; EmoMusic: overall R²)."""
    from ..data.tasks import TASKS

    return TASKS[task].metrics[0]


def _paper_largest_drop(task: str, metric: str, supports) -> dict | None:
    ssl_v = PN.table3_value(None, task)
    vals = {s: PN.table3_value(s, task) for s in supports}
    vals = {s: v for s, v in vals.items() if v is not None}
    if ssl_v is None or not vals:
        return None
    worst = min(vals, key=vals.get)
    return {"support": worst, "ssl": ssl_v, "value": vals[worst], "drop": round(ssl_v - vals[worst], 2)}


# --------------------------------------------------------------------------- the grid
_GROUP_ORDER = {HEADLINE: 0, MSA: 1, ABLATION: 2}


def build_grid(scale: str, claims: list[Claim] | None = None, plan: dict | None = None) -> Grid:
    """Every claim of ``scale``'s plan and the cells they need, in run order: headline claims
    first, seed-major (every headline claim's first seed before any second seed), then the
    MSA comparisons, then the ablations. ``claims``/``plan`` replace the registry's (tests)."""
    if scale not in PLANS:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(PLANS)}")
    from .cells import canonical_key

    plan = plan or PLANS[scale]
    claims = claims if claims is not None else _claims(scale, plan)
    cells: dict[tuple, Cell] = {}
    slugs: dict[tuple, str] = {}
    canon: dict[str, str] = {}
    index: dict[tuple, tuple] = {}
    for rank, claim in enumerate(claims):
        for part in claim.parts:
            for cond in part.conditions:
                for recipe in cond.recipes:
                    if recipe._key not in canon:
                        canon[recipe._key] = canonical_key(recipe, scale)
                    ckey = canon[recipe._key]
                    if slugs.setdefault((recipe.slug, recipe.steps), ckey) != ckey:
                        raise RuntimeError(f"registry: two recipes share the slug {recipe.slug!r}")
                    for k, seed in enumerate(cond.seeds):
                        key = (ckey, seed)
                        index[(recipe._key, seed)] = key
                        cell = cells.get(key)
                        order = (_GROUP_ORDER[claim.group], k, rank)
                        if cell is None:
                            cell = cells[key] = Cell(f"{recipe.slug}{'-q' if recipe.steps == 'quarter' else ''}"
                                                     f"-s{seed}", recipe, seed, order=order)
                        cell.order = min(cell.order, order)
                        if claim.id not in cell.claims:
                            cell.claims.append(claim.id)
                        _add_evaluation(cell, cond.measure, plan)
    ordered = sorted(cells.values(), key=lambda c: c.order)
    ids = [c.id for c in ordered]
    if len(set(ids)) != len(ids):
        raise RuntimeError("registry: duplicate cell ids")
    ids_of = {k: c.id for k, c in cells.items()}
    claims = sorted(claims, key=lambda c: CLAIM_IDS.index(c.id) if c.id in CLAIM_IDS else len(CLAIM_IDS))
    return Grid(scale, claims, {c.id: c for c in ordered}, plan, {k: ids_of[v] for k, v in index.items()})


def _add_evaluation(cell: Cell, measure: tuple, plan: dict) -> None:
    kind = measure[0]
    if kind == "metric":
        task = measure[1]
        if cell.recipe.trainer == "supervised":
            if task != cell.recipe.method:
                raise RuntimeError(f"registry: the end-to-end model of {cell.recipe.method} cannot score {task}")
            return
        if task not in cell.probe_tasks:
            cell.probe_tasks.append(task)
    elif kind == "drop":
        _, task, _metric_name, corruption = measure
        cell.robustness = {"task": task, "corruption": corruption, "severities": list(plan["severities"])}
        if cell.recipe.trainer != "supervised" and task not in cell.probe_tasks:
            cell.probe_tasks.append(task)
    elif kind == "knn":
        cell.latent = {"task": measure[1], "reducer": "tsne", "k": KNN_NEIGHBORS}
    else:
        raise RuntimeError(f"registry: unknown measure {measure!r}")
