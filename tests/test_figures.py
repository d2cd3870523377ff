"""Paper figures: each writes a PNG and a CSV of ours beside the paper's numbers, and the
paper's numbers are the ones printed in the paper's text."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench import figures, paper_numbers
from workbench.figures import FIGURES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(task, metric, mean, std=0.0, **extra):
    return {"model": extra.pop("model", "m"), "task": task, "metric": metric, "mean": mean, "std": std,
            "synthetic": True, **extra}


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def _pb_rows():
    rows = []
    for p, b_s, seed, auc in [(1.0, 0.25, 0, 0.6), (1.0, 0.25, 1, 0.8), (1.0, 0.5, 0, 0.7), (0.25, 0.5, 0, 0.65),
                              (0.25, 0.25, 0, 0.62)]:
        for metric, value in (("roc_auc", auc), ("average_precision", auc / 2)):
            rows.append(_row("mtat_top50", metric, value, 0.01, p=p, b_s=b_s, seed=seed))
    return rows


def test_table6_p_bs_averages_seeds_and_puts_the_paper_beside(tmp_path):
    path = figures.table6_p_bs(_pb_rows(), tmp_path / "t6.png")
    assert _is_png(path)
    table = pd.read_csv(tmp_path / "t6.csv")
    ours = table[(table.source == "ours") & (table.metric == "roc_auc") & (table.block == "b_s varied, p = 1")]
    at = ours[np.isclose(ours.b_s, 0.25)].iloc[0]
    assert at.value == pytest.approx(70.0)  # mean of 60 and 80 over two pretraining seeds
    assert at["std"] == pytest.approx(math.sqrt(((60 - 70) ** 2 + (80 - 70) ** 2) / 1))  # ddof = 1
    paper = table[(table.source == "paper") & (table.metric == "roc_auc")]
    # Table 6 first block, b_s = 0.05 at p = 1: AUROC 88.4; second block p = 0.25: 89.0
    assert paper[(paper.block == "b_s varied, p = 1") & np.isclose(paper.b_s, 0.05)].value.item() == 88.4
    assert paper[(paper.block == "p varied, b_s = 0.5") & np.isclose(paper.p, 0.25)].value.item() == 89.0
    # Figure 2 (Table 2, SampleCNN): p = b_s = 0.75 gives AP 43.3
    fig2 = table[(table.source == "paper") & (table.block == "p = b_s (Figure 2)")]
    assert fig2[(fig2.metric == "average_precision") & np.isclose(fig2.p, 0.75)].value.item() == 43.3
    diag = table[(table.source == "ours") & (table.block == "p = b_s (Figure 2)") & (table.metric == "roc_auc")]
    assert diag.value.round(6).tolist() == [62.0]


def test_table3_support_grid_cells(tmp_path):
    rows = []
    for support, pitch, key in ((None, 0.2, 0.1), ("nsynth_pitch", 0.5, 0.3), ("giantsteps_key", 0.3, 0.4)):
        rows.append(_row("nsynth_pitch", "accuracy", pitch, support=support))
        rows.append(_row("nsynth_pitch", "chroma_accuracy", 0.9, support=support))
        rows.append(_row("giantsteps_key", "weighted_score", key, support=support))
        rows.append(_row("giantsteps_key", "accuracy", 0.01, support=support))
    path = FIGURES["table3_support_grid"](rows, tmp_path / "t3.png")
    assert _is_png(path)
    table = pd.read_csv(tmp_path / "t3.csv").set_index(["support", "task"])
    assert table.loc[("nsynth_pitch", "nsynth_pitch"), "ours"] == pytest.approx(50.0)
    assert table.loc[("nsynth_pitch", "nsynth_pitch"), "metric"] == "accuracy"  # the primary metric
    assert table.loc[("giantsteps_key", "giantsteps_key"), "metric"] == "weighted_score"
    assert table.loc[("nsynth_pitch", "nsynth_pitch"), "paper"] == 79.0
    assert table.loc[("none (self-supervised)", "giantsteps_key"), "paper"] == 13.5
    assert table.loc[("giantsteps_key", "nsynth_pitch"), "paper"] == 50.8
    assert len(table) == 6


def test_table4_criterion(tmp_path):
    rows = [_row("mtat_top50", m, v, method=method, criterion=c)
            for method in ("supcon", "semisupcon") for c, v in ((1, 0.7), (2, 0.65), ("weighted", 0.72))
            for m in ("roc_auc", "average_precision")]
    path = FIGURES["table4_criterion"](rows, tmp_path / "t4.png")
    assert _is_png(path)
    table = pd.read_csv(tmp_path / "t4.csv", dtype={"criterion": str})
    paper = table[table.source == "paper"].set_index(["metric", "method", "criterion"])["value"]
    assert paper[("roc_auc", "supervised", "weighted")] == 90.6
    assert paper[("average_precision", "semi_supervised", "2")] == 41.6
    assert paper[("roc_auc", "supervised", "6")] == 88.9
    ours = table[table.source == "ours"].set_index(["metric", "method", "criterion"])["value"]
    assert ours[("roc_auc", "supcon", "weighted")] == pytest.approx(72.0)


def test_table7_views(tmp_path):
    rows = [_row("mtat_top50", m, 0.5 + n / 100, method=method, n_views=n, batch_size=96 // n)
            for method in ("simclr", "semisupcon") for n in (2, 4, 8) for m in ("roc_auc", "average_precision")]
    path = FIGURES["table7_views"](rows, tmp_path / "t7.png")
    assert _is_png(path)
    table = pd.read_csv(tmp_path / "t7.csv")
    paper = table[table.source == "paper"].set_index(["metric", "method", "n_views"])["value"]
    assert paper[("average_precision", "semi", 8)] == 41.9
    assert paper[("roc_auc", "sl", 4)] == 90.4
    assert table[(table.source == "ours") & (table.n_views == 8)].value.round(6).unique().tolist() == [58.0]


def test_figure3_robustness(tmp_path):
    rows = [_row("mtat_top50", "roc_auc", 0.8 - 0.1 * s, corruption=c, severity=s, method=m)
            for m in ("semisupcon", "supervised") for c in ("chain", "reverb") for s in (0, 1, 2)]
    path = FIGURES["figure3_robustness"](rows, tmp_path / "f3.png")
    assert _is_png(path)
    table = pd.read_csv(tmp_path / "f3.csv")
    assert set(table.corruption) == {"chain", "reverb"} and len(table) == 12
    assert table[(table.severity == 2)].value.round(6).unique().tolist() == [60.0]
    with pytest.raises(ValueError, match="corruption"):
        figures.figure3_robustness([_row("mtat_top50", "roc_auc", 0.5)], tmp_path / "bad.png")


def test_empty_rows_are_refused(tmp_path):
    for fn in FIGURES.values():
        with pytest.raises(ValueError, match="no result rows"):
            fn([], tmp_path / "x.png")


def test_demo_bar_chart_still_draws(tmp_path):
    rows = [{"model": "ssl", "task": "nsynth_pitch", "metric": "accuracy", "mean": 0.3, "std": 0.01,
             "synthetic": True}]
    assert _is_png(figures.demo_bar_chart(rows, tmp_path / "demo.png"))


def test_notebook_figures(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,loss,loss_ssl,loss_label,positive_fraction\n"
                                          "0,5.0,4.0,,0.1\n1,4.0,3.5,2.0,0.12\n")
    fig = figures.loss_curves(tmp_path)
    assert [t.name for t in fig.data] == ["loss", "self-supervised part", "label part", "positives"]
    assert list(fig.data[2].y) == [2.0]  # NaN rows of a part are dropped
    with pytest.raises(FileNotFoundError, match="metrics.csv"):
        figures.loss_curves(tmp_path / "nowhere")
    sim = figures.similarity_heatmaps(np.eye(4), np.zeros((4, 4)), np.array([1, 1, 0, 0], bool))
    assert len(sim.data) == 2
    with pytest.raises(ValueError, match="same M×M shape"):
        figures.similarity_heatmaps(np.eye(4), np.zeros((3, 3)))
    bars = figures.probe_bar_chart([_row("nsynth_pitch", "chroma_accuracy", 0.9, model="a"),
                                    _row("nsynth_pitch", "accuracy", 0.4, model="a")])
    assert list(bars.data[0].y) == [0.4]  # the task's primary metric


def test_paper_numbers_read_from_the_text():
    t3 = paper_numbers.TABLE3
    assert all(len(cells) == len(t3["columns"]) == 14 for cells in t3["rows"].values())
    assert len(t3["rows"]) == 14  # the self-supervised baseline and 13 support sets
    assert paper_numbers.table3_value("mtg_mood", "emomusic", "r2_valence") == 73.0
    assert paper_numbers.table3_value("mtg_mood", "emomusic") == 48.0
    assert paper_numbers.table3_value("nowhere", "mtat_top50") is None
    assert [r["samplecnn"][0] for r in paper_numbers.TABLE2["rows"]] == [88.8, 89.4, 89.5, 89.5, 89.7, 89.9,
                                                                         89.8, 90.3]
    assert paper_numbers.TABLE7["rows"][-1]["sparsity_b"] is None  # printed "73.1.4": unreadable
    for name in ("table2", "table3", "table4", "table6", "table7"):
        df = paper_numbers.paper_table(name)
        assert not df.empty and (df["synthetic"] == False).all()  # noqa: E712
    with pytest.raises(ValueError, match="unknown paper table"):
        paper_numbers.paper_table("table9")
