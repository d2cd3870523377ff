"""Every claim gets a verdict and every figure is drawn from stored results alone (a fake
executor fills the whole smoke grid with plausible numbers; no model is trained)."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from workbench.claims import figures as F
from workbench.claims import report
from workbench.claims.registry import CLAIM_IDS, build_grid
from workbench.claims.runner import Runner
from workbench.data.tasks import TASKS
from workbench.latent import PITCH_CLASSES


def _fake(cell, scale, probe_seeds, *, device="cpu", results_dir=None, **_):
    rng = np.random.default_rng(zlib.crc32(cell.id.encode()))
    lift = 0.1 if cell.recipe.trainer != "supervised" and "semi" in cell.id else 0.0
    tasks = [cell.recipe.method] if cell.recipe.trainer == "supervised" else cell.probe_tasks
    metrics, per_probe = {}, {}
    for task in tasks:
        metrics[task], per_probe[task] = {}, {}
        for metric in TASKS[task].metrics:
            values = [float(0.5 + lift + rng.normal(0, 0.001)) for _ in probe_seeds]
            per_probe[task][metric] = values
            metrics[task][metric] = float(np.mean(values))
    out = {"metrics": metrics, "probe_values": per_probe, "wall_s": 2.0, "cpu_s": 3.0, "synthetic": True,
           "train": {"how": "fake"}}
    if cell.recipe.trainer == "cola" and cell.recipe.steps != "init":
        out["train"]["pair_accuracy"] = [[step, 0.03 + 0.002 * step, 1 / 32] for step in range(0, 40, 10)]
    if cell.robustness:
        sev = cell.robustness["severities"]
        slope = 0.05 if cell.recipe.trainer == "supervised" else 0.01
        out["robustness"] = {"task": cell.robustness["task"], "corruption": cell.robustness["corruption"],
                             "scored_with": "fake", "severities": {
                                 f"{s:g}": {"roc_auc": 0.8 - slope * s, "average_precision": 0.4 - slope * s}
                                 for s in sev}}
    if cell.latent:
        n = 48
        frame = pd.DataFrame({"id": [str(i) for i in range(n)], "pitch_class": [PITCH_CLASSES[i % 12] for i in range(n)],
                              "octave": ["4"] * n, "instrument": ["keyboard"] * n,
                              "x": rng.normal(size=n), "y": rng.normal(size=n)})
        frame.to_csv(results_dir / f"{cell.id}.map.csv", index=False)
        out["latent"] = {"task": cell.latent["task"], "reducer": "tsne", "k": 5, "n": n, "map_file": f"{cell.id}.map.csv",
                         "knn_map": 0.3 + lift + rng.normal(0, 0.001), "knn_embedding": 0.4 + lift + rng.normal(0, 0.001)}
    return out


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    grid = build_grid("smoke")
    results = tmp_path_factory.mktemp("claims-results")
    from workbench.data.embedded import GENERATOR_VERSION

    identity = lambda tasks: {"fake": {"synthetic": True, "generator_version": GENERATOR_VERSION}}  # noqa: E731
    out = Runner(grid, results, executor=_fake, identity=identity, log=lambda s: None).run(list(grid.cells.values()))
    assert not out["failed"], out["failed"]
    return grid, results, out


def test_every_claim_has_a_verdict_from_the_rule(filled):
    grid, results, out = filled
    payload, missing = report.build_report("smoke", results, grid)
    verdicts = {c["id"]: c["verdict"] for c in payload["claims"]}
    assert list(verdicts) == list(CLAIM_IDS)
    for claim_id, verdict in verdicts.items():
        if missing[claim_id]:
            assert verdict == "pending"
            assert all("not runnable" in m for m in missing[claim_id]), missing[claim_id]
        else:
            assert verdict in ("holds", "fails", "inconclusive"), claim_id
    # the fake numbers: SemiSupCon lifted above SSL, the end-to-end model degrading fastest
    assert verdicts["T3-tags"] == "holds" and verdicts["F3-robust"] == "holds"
    assert verdicts["F4-latent"] == "holds"
    # MSA cells whose overrides the COLA config rejects are reported, never crash the grid
    for cell_id, message in out["not_runnable"]:
        assert cell_id.startswith("cola-") and "config rejected" in message


def test_every_figure_is_drawn_from_results_alone(filled, tmp_path):
    grid, results, out = filled
    records = F.draw_all("smoke", results, tmp_path, grid)
    assert [r["name"] for r in records] == list(F.FIGURES)
    by_name = {r["name"]: r for r in records}
    cola_ran = any(c.startswith("cola-") for c in out["ran"])
    for name, rec in by_name.items():
        if name in ("msa", "msa-pair-accuracy") and not cola_ran:
            assert rec["path"] is None
            continue
        assert rec["path"] and (tmp_path / "claims" / "smoke").exists(), rec
        png = tmp_path / "claims" / "smoke" / report.FIGURE_FILES[name]
        assert png.is_file() and png.with_suffix(".csv").is_file()
    if cola_ran:  # the MSA pretext curve: every logged step of every trained COLA/MSA cell, chance beside it
        curve = pd.read_csv(tmp_path / "claims" / "smoke" / "msa_pair_accuracy.csv")
        trained = [c for c in out["ran"] if c.rsplit("-s", 1)[0] in ("cola-msa", "cola-cola", "cola-random-mask",
                                                                     "cola-msa-no-shift", "cola-msa-x4")]
        assert len(curve) == 4 * len(trained) and set(curve["chance"]) == {1 / 32}
        assert "random init" not in set(curve["model"])
    t2 = pd.read_csv(tmp_path / "claims" / "smoke" / "figure2_table2.csv")
    assert {"ours", "paper"} == set(t2["source"])
    paths = report.write_report("smoke", results, tmp_path, grid)
    md = paths["md"].read_text()
    assert "synthetic" in md and all(f"`{c}`" in md for c in CLAIM_IDS)
    assert json.loads(paths["json"].read_text())["synthetic"] is True
