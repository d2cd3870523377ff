"""Result rows: aggregation over seeds, JSON/CSV round trips and the printable table."""

from __future__ import annotations

import json

import pytest

from workbench import results as R


def records():
    base = {"checkpoint": "ssl.ckpt", "aggregation": "embedding", "fraction": 1.0, "data_root": "/d",
            "synthetic": True}
    out = [{**base, "model": "ssl", "support": None, "task": "nsynth_pitch", "seed": s,
            "metrics": {"accuracy": a, "chroma_accuracy": c}} for s, a, c in [(2, .4, .5), (0, .2, .3), (1, .3, .4)]]
    out += [{**base, "checkpoint": "ssc.ckpt", "model": "semisupcon", "support": "nsynth_pitch",
             "task": "nsynth_pitch", "seed": s, "metrics": {"accuracy": a, "chroma_accuracy": a}}
            for s, a in [(0, .7), (1, .9)]]
    out += [{**base, "model": "ssl", "support": None, "task": "mtat_top50", "seed": 0, "metric": "roc_auc",
             "value": .8}]
    return out


def test_aggregate_mean_std_over_seeds():
    rows = R.aggregate(records())
    assert [(r["model"], r["task"], r["metric"]) for r in rows] == [
        ("ssl", "nsynth_pitch", "accuracy"), ("ssl", "nsynth_pitch", "chroma_accuracy"),
        ("semisupcon", "nsynth_pitch", "accuracy"), ("semisupcon", "nsynth_pitch", "chroma_accuracy"),
        ("ssl", "mtat_top50", "roc_auc")]
    ssl = rows[0]
    assert list(ssl) == list(R.RESULT_FIELDS)
    assert ssl["seeds"] == [0, 1, 2] and ssl["values"] == [.2, .3, .4] and ssl["n_seeds"] == 3
    assert ssl["mean"] == pytest.approx(0.3)
    assert ssl["std"] == pytest.approx(0.1)  # sample std: sqrt((.01 + 0 + .01) / 2)
    ssc = rows[2]
    assert ssc["mean"] == pytest.approx(0.8) and ssc["std"] == pytest.approx(0.1414213562)
    assert ssc["support"] == "nsynth_pitch" and ssc["checkpoint"] == "ssc.ckpt" and ssc["synthetic"] is True
    assert rows[4]["std"] == 0.0 and rows[4]["n_seeds"] == 1


def test_duplicate_seed_is_an_error():
    recs = records() + [records()[0]]
    with pytest.raises(ValueError, match="seed 2 appears twice"):
        R.aggregate(recs)


def test_write_and_load_round_trip(tmp_path):
    rows = R.aggregate(records())
    R.write_results(rows, tmp_path / "r.json", tmp_path / "r.csv", extra={"data": {"root": "/d"}})
    payload = json.loads((tmp_path / "r.json").read_text())
    assert payload["data"] == {"root": "/d"} and payload["results"] == rows
    assert R.load_results(tmp_path / "r.json") == rows
    assert R.load_results(tmp_path / "r.csv") == rows
    with pytest.raises(ValueError, match="lacks"):
        R.write_results([{"model": "x"}], tmp_path / "bad.json")


def test_results_table_pivots_model_by_task():
    rows = R.aggregate(records())
    table = R.results_table(rows)
    assert list(table.index) == ["ssl", "semisupcon"]
    assert list(table.columns) == ["nsynth_pitch (accuracy)", "mtat_top50 (roc_auc)"]
    assert table.loc["ssl", "nsynth_pitch (accuracy)"] == "0.300 ± 0.100"
    assert table.loc["semisupcon", "nsynth_pitch (accuracy)"] == "0.800 ± 0.141"
    full = R.results_table(rows, metric="all")
    assert "nsynth_pitch (chroma_accuracy)" in full.columns
    chroma = R.results_table(rows, metric="chroma_accuracy", precision=2)
    assert chroma.loc["ssl", "nsynth_pitch"] == "0.40 ± 0.10"
    twice = rows + [dict(rows[0], aggregation="logits")]
    with pytest.raises(ValueError, match="index="):
        R.results_table(twice)
    assert R.results_table(twice, index=("model", "aggregation")).shape == (3, 2)
