"""The numbers the SemiSupCon paper reports, as data, for drawing beside ours.

Source: Guinot et al., "Semi-supervised Contrastive Learning of Musical Representations"
(``shared/papers/000_dfaac39ac53b6743.txt``, the text extraction of the preprint). Only
numbers that can be read unambiguously from that text are here; where the extraction lost
a symbol (a column header, a row's parameter value) the note of each table says how the
row was identified. All values are percentages, as printed, on the paper's *real* data
sets (``SYNTHETIC = False``); our embedded benchmark is synthetic, so the two are drawn side
by side, never mixed into one mean.

Tables:

- :data:`TABLE2`: MTAT tagging with p = b_s varied together (SampleCNN and TUNe+), 200 k
  steps. Figure 2 of the paper plots these numbers (AUROC and AP against p).
- :data:`TABLE3`: support data set (rows) × downstream task (columns), 50 k steps,
  one semi-supervised model per support data set (the extraction lost the values of p and b_s).
- :data:`TABLE4`: multilabel positive-mining strategy (class criterion n, or Dice weighing).
- :data:`TABLE6`: p and b_s varied one at a time (appendix 8.3.1), with matrix sparsities.
- :data:`TABLE7`: number of views N × batch B with N·B = 192 (appendix 8.3.2).
- :data:`FIGURE3`: robustness to in-domain corruption; the paper gives the curves only as a
  figure, so there are no numbers, only its qualitative finding.
"""

from __future__ import annotations

__all__ = ["SOURCE", "SYNTHETIC", "TABLE2", "TABLE3", "TABLE3_COLUMNS", "TABLE3_METRIC", "TABLE4", "TABLE6",
           "TABLE7", "FIGURE3", "table3_value", "paper_table", "TABLE2_LITERATURE", "MSA_SOURCE", "MSA_POSTER"]

SOURCE = "Guinot et al., Semi-supervised Contrastive Learning of Musical Representations (SemiSupCon), preprint"
#: The paper's numbers come from the real data sets.
SYNTHETIC = False

# --------------------------------------------------------------------------- Table 2
#: MTAT top-50 tagging, ``p = b_s`` varied together; ``encoder`` SampleCNN or TUNe+.
#: Keys: (label, b_s, p) → {"samplecnn": (AUROC, AP), "tunep": (AUROC, AP)}. The row printed
#: "0.5/1" is b_s = 0.5, p = 1: the text explains its drop by "100k steps of supervised data
#: versus 150k" (200 k steps × b_s).
TABLE2 = {
    "note": "MTAT top 50, 200k pretraining steps; rows vary p and b_s together (b_s = p) except '0.5/1'.",
    "metrics": ("roc_auc", "average_precision"),
    "rows": [
        {"label": "self-supervised", "b_s": 0.0, "p": 0.0, "samplecnn": (88.8, 41.6), "tunep": (88.9, 41.6)},
        {"label": "semi-supervised", "b_s": 0.05, "p": 0.05, "samplecnn": (89.4, 42.5), "tunep": (89.4, 42.1)},
        {"label": "semi-supervised", "b_s": 0.1, "p": 0.1, "samplecnn": (89.5, 42.2), "tunep": (89.4, 42.2)},
        {"label": "semi-supervised", "b_s": 0.25, "p": 0.25, "samplecnn": (89.5, 42.5), "tunep": (89.4, 42.8)},
        {"label": "semi-supervised", "b_s": 0.5, "p": 0.5, "samplecnn": (89.7, 42.9), "tunep": (89.5, 43.3)},
        {"label": "semi-supervised", "b_s": 0.75, "p": 0.75, "samplecnn": (89.9, 43.3), "tunep": (89.8, 43.5)},
        {"label": "semi-supervised", "b_s": 0.5, "p": 1.0, "samplecnn": (89.8, 43.1), "tunep": (89.8, 43.0)},
        {"label": "supervised", "b_s": 1.0, "p": 1.0, "samplecnn": (90.3, 44.3), "tunep": (90.1, 44.6)},
    ],
}

# --------------------------------------------------------------------------- Table 3
#: Downstream columns of Table 3 in the paper's order, as our task names. ``emomusic`` is
#: printed as "arousal/valence" R² (two numbers per cell).
TABLE3_COLUMNS = ("mtat_top50", "mtat_all", "mtg_top50", "mtg_genre", "mtg_mood", "mtg_instrument", "nsynth_pitch",
                  "nsynth_instrument", "giantsteps_key", "gtzan_genre", "vocalset_technique", "vocalset_singer",
                  "medleydb_instrument", "emomusic")
#: The metric of each Table 3 column (tagging AUROC, accuracy, key weighted score, R²).
TABLE3_METRIC = {
    "mtat_top50": "roc_auc", "mtat_all": "roc_auc", "mtg_top50": "roc_auc", "mtg_genre": "roc_auc",
    "mtg_mood": "roc_auc", "mtg_instrument": "roc_auc", "nsynth_pitch": "accuracy",
    "nsynth_instrument": "accuracy", "giantsteps_key": "weighted_score", "gtzan_genre": "accuracy",
    "vocalset_technique": "accuracy", "vocalset_singer": "accuracy", "medleydb_instrument": "accuracy",
    "emomusic": "r2_arousal/r2_valence",
}
_T3 = TABLE3_COLUMNS
#: Rows: support task (``None`` = the self-supervised FMA baseline) → one value per column
#: (emomusic: (arousal, valence)). The "SOTA" row is the literature's best per column. The
#: "CLMR" row of the extraction has 13 values for 14 columns, so it is left out.
TABLE3 = {
    "note": "FMA medium unlabeled + one support data set per row, 50k steps, MLP probes; percent.",
    "columns": _T3,
    "rows": {support: dict(zip(_T3, values)) for support, values in (
        (None, (88.4, 86.2, 80.1, 83.3, 74.0, 71.6, 36.8, 51.7, 13.5, 65.5, 53.8, 71.1, 56.5, (46.7, 71.5))),
        ("mtat_top50", (89.3, 86.8, 80.0, 83.4, 73.8, 73.3, 34.5, 46.9, 11.3, 65.5, 53.2, 70.0, 67.3, (44.3, 65.9))),
        ("mtat_all", (89.1, 87.5, 80.3, 83.2, 74.1, 73.0, 34.0, 51.0, 14.9, 68.2, 52.4, 72.9, 72.8, (41.6, 76.2))),
        ("mtg_top50", (88.6, 86.6, 81.5, 83.4, 74.6, 72.5, 33.8, 50.0, 14.7, 74.1, 52.1, 71.7, 62.0, (50.1, 77.9))),
        ("mtg_genre", (88.6, 86.3, 80.5, 84.0, 74.6, 71.5, 33.4, 50.2, 14.6, 72.8, 52.0, 74.6, 66.3, (48.2, 70.3))),
        ("mtg_mood", (88.3, 86.6, 81.0, 83.0, 74.7, 72.3, 38.2, 47.7, 14.9, 71.3, 53.5, 71.4, 60.9, (48.0, 73.0))),
        ("mtg_instrument",
         (88.4, 86.3, 80.8, 83.1, 74.0, 71.6, 37.2, 52.5, 14.9, 69.3, 54.5, 67.9, 63.0, (52.4, 70.6))),
        ("nsynth_pitch", (88.3, 86.3, 79.7, 82.6, 73.5, 72.0, 79.0, 48.6, 20.1, 65.5, 56.9, 75.6, 64.1, (37.5, 66.6))),
        ("nsynth_instrument",
         (88.6, 85.7, 79.6, 82.7, 73.3, 71.7, 26.6, 59.6, 16.0, 67.2, 57.3, 72.3, 66.3, (40.3, 75.0))),
        ("giantsteps_key",
         (87.7, 85.0, 79.0, 82.1, 73.0, 70.5, 50.8, 51.3, 22.3, 69.3, 54.1, 71.4, 61.2, (39.6, 63.6))),
        ("gtzan_genre", (88.8, 86.8, 80.9, 83.9, 74.1, 71.5, 38.6, 46.9, 16.3, 74.0, 53.4, 71.7, 66.3, (28.7, 56.4))),
        ("vocalset_technique",
         (88.7, 86.7, 79.6, 82.5, 73.3, 71.0, 46.0, 53.5, 12.1, 63.5, 63.0, 77.8, 67.3, (41.5, 70.1))),
        ("vocalset_singer",
         (88.9, 86.2, 80.1, 82.6, 73.6, 72.8, 45.2, 52.4, 15.3, 67.2, 54.0, 87.1, 69.6, (54.3, 74.6))),
        ("medleydb_instrument",
         (88.6, 87.0, 80.2, 82.6, 73.6, 73.8, 32.0, 48.8, 13.2, 62.1, 58.6, 74.3, 62.0, (41.6, 74.8))),
    )},
    "sota": dict(zip(_T3, (92.7, 95.4, 84.3, 88.0, 78.6, 78.8, 94.4, 78.2, 74.3, 86.9, 76.9, 87.5, None,
                           (61.7, 76.3)))),
}


def table3_value(support: str | None, task: str, metric: str | None = None) -> float | None:
    """The paper's Table 3 cell for ``support`` × ``task`` (percent), or None if it has none.

    For ``emomusic`` pass ``metric="r2_arousal"`` or ``"r2_valence"`` (default arousal).
    """
    row = TABLE3["rows"].get(support)
    if row is None or task not in row:
        return None
    value = row[task]
    if isinstance(value, tuple):
        return value[1] if metric == "r2_valence" else value[0]
    return value


# --------------------------------------------------------------------------- Table 4
#: MTAT top 50, supervised (b_s = p = 1) and semi-supervised models. The extraction lost the
#: criterion of the four numeric rows; they are printed in increasing order of n and, per
#: GUIDE 2.6 / the text ("as the criterion increases, performance deteriorates"), are
#: n = 1, 2, 4, 6. Values: (AUROC, AP).
TABLE4 = {
    "note": "MTAT top 50; class criterion n (rows 1-4, n taken from GUIDE 2.6 as the text lost it) or weighing.",
    "metrics": ("roc_auc", "average_precision"),
    "rows": [
        {"criterion": 1, "supervised": (90.1, 44.2), "semi_supervised": (89.3, 41.3)},
        {"criterion": 2, "supervised": (90.1, 43.9), "semi_supervised": (89.0, 41.6)},
        {"criterion": 4, "supervised": (89.3, 42.8), "semi_supervised": (89.0, 41.3)},
        {"criterion": 6, "supervised": (88.9, 42.3), "semi_supervised": (89.0, 41.5)},
        {"criterion": "weighted", "supervised": (90.6, 45.3), "semi_supervised": (88.9, 41.6)},
    ],
}

# --------------------------------------------------------------------------- Table 6
#: Appendix 8.3.1: p = 1 with b_s varied, then b_s = 0.5 with p varied (SampleCNN, MTAT
#: support and downstream, FMA unlabeled). ``sparsity_semi`` / ``sparsity_sup`` are the two
#: contrastive-matrix sparsity columns (%), in the order the text defines them
#: ("semi-supervised and supervised"); the headers themselves were lost.
TABLE6 = {
    "note": "MTAT top 50; first block p = 1 and b_s varied, second block b_s = 0.5 and p varied.",
    "metrics": ("roc_auc", "average_precision"),
    "rows": [dict(zip(("p", "b_s", "sparsity_semi", "sparsity_sup", "roc_auc", "average_precision"), row))
             for row in (
                 (1.0, 0.05, 87.5, 99.5, 88.4, 40.6),
                 (1.0, 0.1, 77.1, 99.3, 88.4, 40.2),
                 (1.0, 0.25, 61.5, 97.2, 88.2, 40.4),
                 (1.0, 0.5, 74.7, 93.4, 89.0, 41.4),
                 (1.0, 0.75, 77.3, 87.1, 89.3, 42.0),
                 (0.05, 0.5, 69.7, 92.2, 88.4, 40.4),
                 (0.1, 0.5, 73.3, 93.1, 88.2, 40.2),
                 (0.25, 0.5, 74.4, 93.3, 89.0, 41.0),
                 (0.5, 0.5, 65.5, 91.2, 88.4, 40.6),
                 (0.75, 0.5, 77.1, 94.0, 88.6, 40.9),
             )],
}

# --------------------------------------------------------------------------- Table 7
#: Appendix 8.3.2: N views × B clips with N·B = 192, MTAT. ``ssl``, ``sl`` and ``semi``
#: are (AUROC, AP) of the self-supervised, fully supervised and semi-supervised models.
#: The last row's second sparsity is printed "73.1.4" and is left out (None).
TABLE7 = {
    "note": "MTAT top 50, global batch N*B = 192 rows; (AUROC, AP) per model family.",
    "metrics": ("roc_auc", "average_precision"),
    "rows_per_batch": 192,
    "rows": [
        {"n_views": 2, "batch_size": 96, "sparsity_a": 74.7, "sparsity_b": 93.5,
         "ssl": (88.4, 40.1), "sl": (90.1, 44.1), "semi": (89.3, 41.0)},
        {"n_views": 4, "batch_size": 48, "sparsity_a": 69.4, "sparsity_b": 88.3,
         "ssl": (88.5, 40.6), "sl": (90.4, 44.8), "semi": (89.2, 42.0)},
        {"n_views": 8, "batch_size": 24, "sparsity_a": 60.1, "sparsity_b": 82.7,
         "ssl": (88.6, 40.3), "sl": (90.5, 44.9), "semi": (89.6, 41.9)},
        {"n_views": 16, "batch_size": 12, "sparsity_a": 51.0, "sparsity_b": 76.1,
         "ssl": (88.1, 39.5), "sl": (89.3, 41.9), "semi": (88.3, 40.2)},
        {"n_views": 32, "batch_size": 6, "sparsity_a": 40.1, "sparsity_b": None,
         "ssl": (87.4, 38.4), "sl": (88.9, 40.7), "semi": (87.4, 38.4)},
    ],
}

# --------------------------------------------------------------------------- Figure 3
#: Robustness vs severity on MTAT: the paper shows curves only (no numbers in the text).
FIGURE3 = {
    "note": "MTAT; metric vs severity of the augmentation chain at test time (probe trained on clean data).",
    "numbers": None,
    "finding": "Contrastive approaches (self-, semi- and supervised) are more robust to in-domain corruption "
               "than the end-to-end supervised baseline.",
}


def paper_table(name: str):
    """One of the paper's tables as a DataFrame (percent; ``source`` = "paper", real data).

    name: ``"table2"``, ``"table3"``, ``"table4"``, ``"table6"`` or ``"table7"``.
    """
    import pandas as pd

    if name == "table2":
        rows = [{"label": r["label"], "b_s": r["b_s"], "p": r["p"], "encoder": enc, "roc_auc": r[enc][0],
                 "average_precision": r[enc][1]} for r in TABLE2["rows"] for enc in ("samplecnn", "tunep")]
    elif name == "table3":
        rows = []
        for support, cells in TABLE3["rows"].items():
            row = {"support": support or "none (self-supervised)"}
            for task, value in cells.items():
                if isinstance(value, tuple):
                    row["emomusic_arousal"], row["emomusic_valence"] = value
                else:
                    row[task] = value
            rows.append(row)
    elif name == "table4":
        rows = [{"criterion": str(r["criterion"]), "supervised_roc_auc": r["supervised"][0],
                 "supervised_average_precision": r["supervised"][1], "semi_roc_auc": r["semi_supervised"][0],
                 "semi_average_precision": r["semi_supervised"][1]} for r in TABLE4["rows"]]
    elif name == "table6":
        rows = [dict(r) for r in TABLE6["rows"]]
    elif name == "table7":
        rows = [{"n_views": r["n_views"], "batch_size": r["batch_size"], "sparsity_a": r["sparsity_a"],
                 "sparsity_b": r["sparsity_b"], **{f"{k}_{m}": r[k][i] for k in ("ssl", "sl", "semi")
                                                   for i, m in enumerate(TABLE7["metrics"])}}
                for r in TABLE7["rows"]]
    else:
        raise ValueError(f"unknown paper table {name!r}; choose table2, table3, table4, table6 or table7")
    df = pd.DataFrame(rows)
    df["source"] = "paper"
    df["synthetic"] = SYNTHETIC
    return df


# --------------------------------------------------------------------------- Table 2, literature rows
#: Table 2's literature block, MTAT top 50 (AUROC, AP). ``samplecnn_end_to_end`` is the paper's
#: own end-to-end supervised SampleCNN (marked *; CLMR's published figure, marked †, in
#: ``samplecnn_end_to_end_clmr``); the others are reported self-supervised models (†).
TABLE2_LITERATURE = {
    "samplecnn_end_to_end": (89.3, 41.2),
    "samplecnn_end_to_end_clmr": (88.6, 34.4),
    "clmr": (86.6, 31.2),
    "tunep": (89.2, 36.6),
    "mert": (91.0, 39.3),
}

# --------------------------------------------------------------------------- the MSA poster
#: Garoufis et al., "Multi-Source Contrastive Learning for Musical Audio" (poster,
#: ``shared/papers/004_ba98c5f381fc9dfd.txt``): pretraining on MTAT with open-unmix stems,
#: linear probes (MTAT, FMA) and a 1-layer MLP (NSynth), mean of 5 runs. Values as printed
#: (ROC-AUC / PR-AUC in [0, 1], weighted accuracy WA in %); ``mtat_star``: the unfiltered MTAT.
MSA_SOURCE = "Garoufis, Zlatintsi, Maragos, Multi-Source Contrastive Learning for Musical Audio (poster)"
_MSA_COLS = ("mtat_roc_auc", "mtat_pr_auc", "mtat_star_roc_auc", "mtat_star_pr_auc", "nsynth_wa", "fma_wa")
MSA_POSTER = {
    "columns": _MSA_COLS,
    "rows": {
        "CLMR": dict(zip(_MSA_COLS, (None, None, 0.887, 0.356, None, 48.4))),
        "COLA": dict(zip(_MSA_COLS, (0.886, 0.396, 0.880, 0.334, 59.3, 46.0))),
        "COLA + MWS": dict(zip(_MSA_COLS, (0.898, 0.425, 0.892, 0.358, 64.5, 49.3))),
        "COLA + Random Mask": dict(zip(_MSA_COLS, (0.883, 0.390, 0.880, 0.337, 63.2, 47.6))),
        "COLA + MSA": dict(zip(_MSA_COLS, (0.900, 0.429, 0.895, 0.361, 62.7, 51.0))),
    },
    "sources": {
        "Bass": dict(zip(_MSA_COLS, (0.885, 0.392, 0.880, 0.332, 62.4, 48.7))),
        "Drums": dict(zip(_MSA_COLS, (0.881, 0.385, 0.876, 0.328, 61.1, 50.3))),
        "Accomp.": dict(zip(_MSA_COLS, (0.892, 0.410, 0.888, 0.348, 63.6, 48.0))),
        "Vocals": dict(zip(_MSA_COLS, (0.896, 0.412, 0.891, 0.348, 63.2, 48.1))),
        "None (COLA)": dict(zip(_MSA_COLS, (0.886, 0.396, 0.880, 0.334, 59.3, 46.0))),
        "Multi-Source": dict(zip(_MSA_COLS, (0.900, 0.429, 0.895, 0.361, 62.7, 51.0))),
    },
}
