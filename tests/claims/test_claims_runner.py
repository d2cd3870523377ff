"""The claims runner: resume and skip, config-hash change, the per-cell lock, the report's
schema (fake cell executor); one real smoke-scale cell end to end."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest

from workbench.claims import cells as C
from workbench.claims import report, store
from workbench.claims.registry import HEADLINE, PLANS, Claim, Condition, Part, build_grid, semi, ssl
from workbench.claims.runner import Runner
from workbench.data.embedded import DATASET_VERSIONS

AUC = ("metric", "mtat_top50", "roc_auc")
#: The value the fake executor reports for each recipe: SemiSupCon clearly above SSL.
FAKE = {"ssl": [0.80, 0.81, 0.79], "semi-mtat_top50-p1-bs0.5": [0.90, 0.91, 0.92]}


def _grid(seeds=(0, 1, 2)):
    base, sup = ssl(), semi("mtat_top50")
    claim = Claim("T3-tags", "Table 3", "MTAT support lifts MTAT tagging", {"ssl": 88.4, "support": 89.3},
                  "table3", HEADLINE,
                  [Part("mtat_top50 roc_auc", "greater", (Condition("SSL", (base,), AUC, seeds),
                                                          Condition("support", (sup,), AUC, seeds)))])
    return build_grid("smoke", claims=[claim], plan={**PLANS["smoke"], "headline_seeds": seeds})


class FakeExecutor:
    def __init__(self):
        self.calls = []

    def __call__(self, cell, scale, probe_seeds, *, device="cpu", results_dir=None, **_):
        self.calls.append(cell.id)
        value = FAKE[cell.recipe.slug][cell.seed]
        return {"metrics": {"mtat_top50": {"roc_auc": value}}, "probe_values": {"mtat_top50": {"roc_auc": [value]}},
                "wall_s": 1.0, "cpu_s": 1.0, "synthetic": True}


#: The version of the data the fake cells read (the MTAT stand-in's).
MTAT_V = DATASET_VERSIONS["mtat"]


def _identity(version):
    return lambda tasks: {"mtat": {"synthetic": True, "dataset_version": version}}


def test_resume_skips_finished_cells_and_a_changed_hash_recomputes(tmp_path):
    grid = _grid()
    cells = list(grid.cells.values())
    assert [c.id for c in cells] == ["ssl-s0", "semi-mtat_top50-p1-bs0.5-s0", "ssl-s1",
                                     "semi-mtat_top50-p1-bs0.5-s1", "ssl-s2", "semi-mtat_top50-p1-bs0.5-s2"]
    fake = FakeExecutor()
    logs = []
    runner = Runner(grid, tmp_path, executor=fake, identity=_identity(MTAT_V), log=logs.append)
    # a runner killed after two cells: only those two are on disk
    first = runner.run(cells[:2])
    assert first["ran"] == [c.id for c in cells[:2]]
    stored = json.loads((tmp_path / "ssl-s0.json").read_text())
    for key in ("hash", "spec_hash", "spec", "data", "code", "wall_s", "cpu_s", "metrics", "seed"):
        assert key in stored
    assert stored["data"] == {"mtat": {"synthetic": True, "dataset_version": MTAT_V}}
    # the next run skips them and runs the rest
    second = runner.run(cells)
    assert second["skipped"] == [c.id for c in cells[:2]] and second["ran"] == [c.id for c in cells[2:]]
    assert fake.calls == [c.id for c in cells]
    assert Runner(grid, tmp_path, executor=fake, identity=_identity(MTAT_V)).run(cells)["ran"] == []
    # new data (another version of the data set): every cell's hash changes, each is recomputed and the log says so
    logs.clear()
    third = Runner(grid, tmp_path, executor=fake, identity=_identity(MTAT_V + "-next"), log=logs.append).run(cells)
    assert third["ran"] == [c.id for c in cells]
    assert any("config hash changed" in line and "recomputing" in line for line in logs)


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path):
    grid = _grid()
    fake = FakeExecutor()

    def flaky(cell, *a, **kw):
        if cell.id == "ssl-s1":
            raise RuntimeError("out of memory")
        return fake(cell, *a, **kw)

    out = Runner(grid, tmp_path, executor=flaky, identity=_identity(MTAT_V), log=lambda s: None).run(
        list(grid.cells.values()))
    assert [c for c, _ in out["failed"]] == ["ssl-s1"] and len(out["ran"]) == 5
    assert "out of memory" in (tmp_path / "failures" / "ssl-s1.txt").read_text()
    assert not (tmp_path / "ssl-s1.json").exists()
    # run again and succeeding, the cell's failure record goes: failures/ lists what still fails
    again = Runner(grid, tmp_path, executor=fake, identity=_identity(MTAT_V), log=lambda s: None).run(
        list(grid.cells.values()))
    assert again["ran"] == ["ssl-s1"] and not (tmp_path / "failures" / "ssl-s1.txt").exists()


def test_two_runners_never_share_a_cell_and_can_share_a_grid(tmp_path):
    grid = _grid()
    cells = list(grid.cells.values())
    seen = {}
    fake = FakeExecutor()

    def executor_a(cell, *a, **kw):
        if cell.id == "ssl-s0":  # while A holds ssl-s0, B works the same grid
            other = Runner(grid, tmp_path, executor=fake, identity=_identity(MTAT_V), log=lambda s: None)
            seen["b"] = other.run(cells[:2])
        return fake(cell, *a, **kw)

    a = Runner(grid, tmp_path, executor=executor_a, identity=_identity(MTAT_V), log=lambda s: None).run(cells[:2])
    assert seen["b"]["locked"] == ["ssl-s0"] and seen["b"]["ran"] == ["semi-mtat_top50-p1-bs0.5-s0"]
    assert a["ran"] == ["ssl-s0"] and a["skipped"] == ["semi-mtat_top50-p1-bs0.5-s0"]  # B finished it
    assert fake.calls.count("ssl-s0") == 1 and fake.calls.count("semi-mtat_top50-p1-bs0.5-s0") == 1
    assert not list(tmp_path.glob("*.lock"))


def test_a_stale_lock_is_taken_over_and_a_live_one_is_respected(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = {"pid": sleeper.pid, "host": store.socket.gethostname(), "start": store._start_time(sleeper.pid),
                "token": "x", "since": 0}
        (tmp_path / "c1.lock").write_text(json.dumps(info))
        with pytest.raises(store.LockHeld, match=f"pid {sleeper.pid}"):
            store.CellLock(tmp_path, "c1").acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    lock = store.CellLock(tmp_path, "c1").acquire()  # its owner is dead: stale
    assert lock.took_over["pid"] == sleeper.pid
    assert json.loads((tmp_path / "c1.lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / "c1.lock").exists()
    # a lock from another host is never broken
    (tmp_path / "c2.lock").write_text(json.dumps({**info, "host": "elsewhere"}))
    with pytest.raises(store.LockHeld):
        store.CellLock(tmp_path, "c2").acquire()


def test_report_schema_verdicts_and_pending(tmp_path):
    grid = _grid()
    cells = list(grid.cells.values())
    Runner(grid, tmp_path, executor=FakeExecutor(), identity=_identity(MTAT_V), log=lambda s: None).run(cells[:4])
    payload, missing = report.build_report("smoke", tmp_path, grid)
    assert set(payload) == {"scale", "synthetic", "rule", "claims"} and payload["synthetic"] is True
    claim = payload["claims"][0]
    assert set(claim) == {"id", "source", "statement", "paper", "figure", "verdict", "parts"}
    part = claim["parts"][0]
    assert set(part) == {"metric", "expect", "conditions", "test", "statistic", "p_value", "verdict"}
    assert all(set(c) == {"label", "x", "values"} for c in part["conditions"])
    assert claim["verdict"] == "pending" and any("ssl-s2" in m for m in missing["T3-tags"])
    Runner(grid, tmp_path, executor=FakeExecutor(), identity=_identity(MTAT_V), log=lambda s: None).run(cells)
    payload, missing = report.build_report("smoke", tmp_path, grid)
    part = payload["claims"][0]["parts"][0]
    assert [c["values"] for c in part["conditions"]] == [FAKE["ssl"], FAKE["semi-mtat_top50-p1-bs0.5"]]
    from workbench.claims.verdict import welch

    assert part["p_value"] == pytest.approx(welch(FAKE["ssl"], FAKE["semi-mtat_top50-p1-bs0.5"])[1])
    assert part["verdict"] == payload["claims"][0]["verdict"] == "holds" and not missing["T3-tags"]
    # written from results alone, readable JSON, one table row per claim in the markdown
    paths = report.write_report("smoke", tmp_path, tmp_path / "fig", grid)
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(payload, default=str))
    assert paths["md"].read_text().count("| `T3-tags` |") == 1


def test_report_counts_each_claims_cells_and_cuts_long_paper_text(tmp_path):
    grid = _grid()
    cells = list(grid.cells.values())
    Runner(grid, tmp_path, executor=FakeExecutor(), identity=_identity(MTAT_V), log=lambda s: None).run(cells[:4])
    progress: dict = {}
    payload, _ = report.build_report("smoke", tmp_path, grid, progress=progress)
    done_ids = {c.id for c in cells[:4]}
    for claim in grid.claims:
        read = {grid.cell_of(r, s).id for part in claim.parts for cond in part.conditions
                for r in cond.recipes for s in cond.seeds}
        assert progress[claim.id] == (len(read & done_ids), len(read)), claim.id
    md = report.write_report("smoke", tmp_path, tmp_path / "fig", grid)["md"].read_text()
    for c in payload["claims"]:
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| `{c['id']}` |"))
        if c["verdict"] == "pending":
            assert "({} of {} cells)".format(*progress[c["id"]]) in row
        full = report._paper_text(c["paper"])
        if len(full) > report.PAPER_CELL_CHARS:
            assert full not in row and "(in full below)" in row and f"- paper: {full}" in md
        else:
            assert full in row
    # the cost section: every finished cell once, with the CPU seconds it recorded
    rows = report.cost_rows("smoke", tmp_path, grid)
    assert [r["cell"] for r in rows] == [c.id for c in cells[:4]]
    for r in rows:
        stored = json.loads((tmp_path / f"{r['cell']}.json").read_text())
        assert r["cpu_s"] == pytest.approx(stored.get("cpu_s") or 0.0)
        assert f"| `{r['cell']}` |" in md.split("## Cost of the finished cells")[1]
    total = sum(r["cpu_s"] for r in rows) / 3600
    assert f"4 of {len(cells)} cells finished: **{total:.2f} CPU hours**" in md
    # a resumed cell's CPU seconds are its last attempt's only: marked as a lower bound
    first = tmp_path / f"{cells[0].id}.json"
    stored = json.loads(first.read_text())
    first.write_text(json.dumps({**stored, "cpu_s": 123.0, "train": {**(stored.get("train") or {}), "how": "resumed"}}))
    md = report.write_report("smoke", tmp_path, tmp_path / "fig", grid)["md"].read_text()
    assert f"| `{cells[0].id}` | {cells[0].recipe.trainer} | 123 * |" in md and "lower bound" in md
    # one seed shows no spread
    assert report._pct([0.5]) == "50.0 (n=1)" and report._pct([0.5, 0.7]) == "60.0 ± 14.1 (n=2)"


def test_registry_lists_every_claim_and_shares_cells():
    from workbench.claims.registry import CLAIM_IDS

    grid = build_grid("demo")
    assert [c.id for c in grid.claims] == list(CLAIM_IDS)  # the order
    ssl0 = grid.cells["ssl-s0"]
    assert {"T2-semi", "T3-pitch", "F3-robust", "F4-latent"} <= set(ssl0.claims)  # one cell, many claims
    assert ssl0.robustness and ssl0.latent and "nsynth_pitch" in ssl0.probe_tasks
    for claim in grid.claims:  # headline claims: >= 3 pretraining seeds; ablations: >= 2 at a quarter of the steps
        for part in claim.parts:
            for cond in part.conditions:
                assert len(cond.seeds) >= (3 if claim.group != "ablation" else 2), claim.id
                if claim.group == "ablation":
                    assert all(r.steps == "quarter" for r in cond.recipes), claim.id
    order = [c.id for c in grid.cells.values()]  # headline first seeds, then their later seeds, then ablations
    assert order.index("semi-nsynth_pitch-p1-bs0.5-s0") < order.index("ssl-s1") < order.index("ssl-s2")
    assert order.index("ssl-s2") < order.index("cola-msa-s0") < order.index("views-ssl-n2-q-s0")


def test_msa_budget_multiplies_steps_and_milestones_and_nothing_else():
    """MSA-budget: the multi-source model at N = 4 (one per source kind) times the scale's steps,
    its learning-rate milestones multiplied alike; every other field is MSA-learns' model's, the
    untrained reference is the same cell, and a malformed steps kind is refused."""
    import dataclasses

    from workbench.claims.registry import MSA_BUDGET_FACTOR, cola, cola_random_init
    from workbench.train.cola import resolve_cola_config

    assert MSA_BUDGET_FACTOR == 4  # bass, drums, accompaniment, vocals
    grid = build_grid("demo")
    base = C.resolve(cola("msa"), "demo", 0)
    long = C.resolve(cola("msa", MSA_BUDGET_FACTOR), "demo", 0)
    own = resolve_cola_config("demo", seed=0)
    assert (base.steps, base.lr_milestones) == (own.steps, own.lr_milestones)
    assert long.steps == 4 * own.steps and long.lr_milestones == [4 * m for m in own.lr_milestones]
    rest = {k: v for k, v in dataclasses.asdict(long).items() if k not in ("steps", "lr_milestones")}
    assert rest == {k: v for k, v in dataclasses.asdict(base).items() if k not in ("steps", "lr_milestones")}
    cell = grid.cell_of(cola("msa", MSA_BUDGET_FACTOR), 0)
    assert cell.id == "cola-msa-x4-s0" and cell.claims == ["MSA-budget"]
    assert cell is not grid.cell_of(cola("msa"), 0)
    assert set(grid.cell_of(cola_random_init(), 0).claims) == {"MSA-learns", "MSA-budget"}
    assert C.steps_factor("scale") == 1 and C.steps_factor("scale*3") == 3
    for bad in ("scale*", "scale*0", "scale*x"):
        with pytest.raises(ValueError, match="scale\\*N"):
            C.steps_factor(bad)


def test_one_real_smoke_cell_end_to_end(tmp_path, monkeypatch):
    """A real cell at the smoke scale on the tiny benchmark: the SSL baseline (at smoke the
    paper's chain is the scale's own, so both T3-pitch parts read this one cell) — trained,
    probed on two tasks, corrupted (Figure 3), mapped (Figure 4), written; a second run skips
    it; the report reads it."""
    from workbench.claims.registry import PAPER_CHAIN

    grid = build_grid("smoke")
    cell = grid.cell_of(ssl(**PAPER_CHAIN), 0)
    assert cell is grid.cell_of(ssl(), 0) and cell.robustness and cell.latent
    executor = functools.partial(C.run_cell, runs_root=tmp_path / "runs")
    results = tmp_path / "results"
    out = Runner(grid, results, executor=executor, log=lambda s: None).run([cell])
    assert out["ran"] == [cell.id], out
    stored = json.loads((results / f"{cell.id}.json").read_text())
    acc = stored["metrics"]["nsynth_pitch"]["accuracy"]
    assert 0.0 <= acc <= 1.0 and stored["synthetic"] is True
    assert stored["data"]["nsynth"]["synthetic"] is True and stored["data"]["nsynth"]["scale"] == "tiny"
    assert stored["cpu_s"] > 0 and stored["wall_s"] > 0 and stored["train"]["how"] == "trained"
    assert stored["train"]["precision"] == "32-true"  # GRID_PRECISION on the CPU, recorded
    assert stored["spec"]["config"]["augment_exclude"] == [] and stored["spec"]["config"]["steps"] == 4
    assert set(stored["robustness"]["severities"]) == {"0", "1"}
    assert 0.0 <= stored["latent"]["knn_map"] <= 1.0 and (results / stored["latent"]["map_file"]).is_file()
    again = Runner(grid, results, executor=executor, log=lambda s: None).run([cell])
    assert again["skipped"] == [cell.id] and again["ran"] == []
    payload, _ = report.build_report("smoke", results, grid)
    t3 = next(c for c in payload["claims"] if c["id"] == "T3-pitch")
    assert t3["parts"][0]["conditions"][0]["values"] == [pytest.approx(acc)]  # seed 0 only: pending
    assert t3["verdict"] == "pending"


@pytest.mark.parametrize("native_bf16", [True, False])
def test_grid_cells_train_fp32_on_any_cpu(monkeypatch, native_bf16):
    """GRID_PRECISION: where ``precision=auto`` alone would pick bf16-mixed (a CPU with native
    bf16) or fp32 (one without), a grid cell trains in fp32 on both, so that one claim's cells
    from different machines differ by seed, not by numerics; the spec (and so the hash) keeps
    ``auto``; a recipe that names its precision and the GPU path are left alone."""
    import torch

    from workbench.claims.registry import Cell, Recipe, cola
    from workbench.train.run import precision

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native_bf16)
    grid = build_grid("smoke")
    for cell in (grid.cell_of(ssl(), 0), grid.cell_of(cola("msa"), 0)):
        plain = C.resolve(cell.recipe, "smoke", 0, accelerator="cpu")
        assert plain.precision == "auto" and precision(plain) == ("bf16-mixed" if native_bf16 else "32-true")
        ruled = C.resolve(cell.recipe, "smoke", 0, accelerator="cpu", **C.grid_precision(cell, "cpu"))
        assert precision(ruled) == "32-true"
        assert C.spec_of(cell, "smoke", [0])["config"]["precision"] == "auto"
        assert C.grid_precision(cell, "cuda:0") == {}
    named = Cell("ssl-bf16-s0", Recipe("pretrain", "ssl", {"precision": "bf16-mixed"}), 0)
    assert C.grid_precision(named, "cpu") == {}


def test_msa_and_its_random_init_reference_as_real_smoke_cells(tmp_path):
    """MSA-learns: the trained MSA cell stores its pretext curve; the random-init cell is the same
    config untrained (its own cell and hash, no training step, BatchNorm calibrated) and is probed
    the same way."""
    import torch

    from workbench.claims.registry import cola, cola_random_init
    from workbench.train.cola import COLAModule

    grid = build_grid("smoke")
    trained, untrained = grid.cell_of(cola("msa"), 0), grid.cell_of(cola_random_init(), 0)
    assert trained is not untrained and "MSA-learns" in trained.claims
    assert set(untrained.claims) == {"MSA-learns", "MSA-budget"}
    probe_seeds = grid.plan["probe_seeds"]
    assert C.spec_hash(C.spec_of(trained, "smoke", probe_seeds)) != C.spec_hash(C.spec_of(untrained, "smoke",
                                                                                          probe_seeds))
    executor = functools.partial(C.run_cell, runs_root=tmp_path / "runs")
    results = tmp_path / "results"
    out = Runner(grid, results, executor=executor, log=lambda s: None).run([trained, untrained])
    assert sorted(out["ran"]) == sorted([trained.id, untrained.id]), out
    got = {c.id: json.loads((results / f"{c.id}.json").read_text()) for c in (trained, untrained)}
    config = C.resolve(trained.recipe, "smoke", 0)
    curve = got[trained.id]["train"]["pair_accuracy"]
    assert [row[0] for row in curve] == list(range(config.steps))  # smoke logs every step
    assert all(0.0 <= acc <= 1.0 and chance == pytest.approx(1 / config.batch_size) for _, acc, chance in curve)
    ref = got[untrained.id]
    assert ref["train"]["how"] == "untrained" and ref["train"]["steps"] == 0 and "pair_accuracy" not in ref["train"]
    assert set(ref["metrics"]) == set(got[trained.id]["metrics"]) == set(untrained.probe_tasks)
    # the untrained weights are the seeded init of the config (only BatchNorm statistics are set from data)
    state = torch.load(os.path.join(ref["train"]["run_dir"], "checkpoints", "last.ckpt"), weights_only=True)["state_dict"]
    torch.manual_seed(0)
    fresh = COLAModule(config.to_dict()).state_dict()
    weights = [k for k in fresh if k.endswith("weight") and fresh[k].dim() > 1]
    assert weights and all(torch.equal(state[k], fresh[k]) for k in weights)
    assert any(not torch.equal(state[k], fresh[k]) for k in state if k.endswith("running_var"))


def test_cli_dry_run_lists_cells_and_refuses_bad_input(tmp_path, capsys):
    from workbench.claims.runner import main

    assert main(["--scale", "smoke", "--only", "T3-tags", "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "todo" in out and "ssl-s0" in out and "semi-mtat_top50-p1-bs0.5-s0" in out and "ETA" in out
    with pytest.raises(SystemExit):
        main(["--scale", "smoke", "--only", "T3-tag", "--dry-run"])
    assert "did you mean T3-tags" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--scale", "smoke", "--dry-run", "steps=5"])
    assert "devices=N" in capsys.readouterr().err


def test_the_report_ignores_results_of_an_older_benchmark(tmp_path):
    grid = _grid()
    cells = list(grid.cells.values())
    old = lambda tasks: {"mtat": {"synthetic": True, "dataset_version": "0-old"}}  # noqa: E731
    Runner(grid, tmp_path, executor=FakeExecutor(), identity=old, log=lambda s: None).run(cells)
    payload, missing = report.build_report("smoke", tmp_path, grid)
    assert payload["claims"][0]["verdict"] == "pending"
    assert any(f"mtat v0-old, now v{DATASET_VERSIONS['mtat']}" in m for m in missing["T3-tags"])
    now = lambda tasks: {"mtat": {"synthetic": True, "dataset_version": DATASET_VERSIONS["mtat"]}}  # noqa: E731
    Runner(grid, tmp_path, executor=FakeExecutor(), identity=now, log=lambda s: None).run(cells)
    assert report.build_report("smoke", tmp_path, grid)[0]["claims"][0]["verdict"] == "holds"


# --------------------------------------------------------------------------- per-data-set versions
NSYNTH_ACC = ("metric", "nsynth_pitch", "accuracy")


def _two_data_grid(seeds=(0, 1)):
    """T3-tags (SSL and SemiSupCon cells: they read mtat and the fma_medium pool) and a claim
    whose end-to-end cells read nsynth only."""
    from workbench.claims.registry import supervised

    sup = supervised("nsynth_pitch")
    pitch = Claim("T4-sup", "Table 4", "end-to-end pitch", {}, "table4", HEADLINE,
                  [Part("nsynth_pitch accuracy", "greater", (Condition("a", (sup,), NSYNTH_ACC, seeds),
                                                             Condition("b", (sup,), NSYNTH_ACC, seeds)))])
    tags = _grid(seeds).claims[0]
    return build_grid("smoke", claims=[tags, pitch], plan={**PLANS["smoke"], "headline_seeds": seeds})


def _any_executor(cell, scale, probe_seeds, **_):
    if cell.recipe.trainer == "supervised":
        return {"metrics": {"nsynth_pitch": {"accuracy": 0.5}}, "wall_s": 1.0, "synthetic": True}
    return FakeExecutor()(cell, scale, probe_seeds)


def _fake_tree(monkeypatch, tmp_path, versions: dict | None, generator_version: str) -> None:
    """An embedded tree whose SYNTHETIC.json says ``versions`` (None: a tree rendered before
    per-data-set versions); the claims' data identity is read from it for real."""
    from workbench.data import roots

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WORKBENCH_EMBEDDED_SCALE", "tiny")
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    monkeypatch.setattr(C, "_IDENTITY_CACHE", {})
    tree = roots.embedded_path("tiny", 0)
    tree.mkdir(parents=True, exist_ok=True)
    meta = {"generator_version": generator_version, "scale": "tiny", "seed": 0}
    if versions is not None:
        meta["dataset_versions"] = versions
    (tree / "SYNTHETIC.json").write_text(json.dumps(meta))


def _bump(monkeypatch, tmp_path, dataset: str, version: str) -> None:
    """What a change to one stand-in does: its VERSION (and so the code's table) and its render."""
    from workbench.data import embedded

    monkeypatch.setitem(embedded.DATASET_VERSIONS, dataset, version)
    _fake_tree(monkeypatch, tmp_path, dict(embedded.DATASET_VERSIONS), version)


def test_bumping_one_data_set_invalidates_only_the_cells_reading_it(tmp_path, monkeypatch):
    from workbench.claims.runner import plan_states
    grid = _two_data_grid()
    cells = list(grid.cells.values())
    reads = {c.id: set(C.data_identity(C.datasets_of(c, C.resolve(c.recipe, "smoke", c.seed)))) for c in cells}
    nsynth_cells = sorted(c for c, ds in reads.items() if "nsynth" in ds)
    mtat_cells = sorted(c for c, ds in reads.items() if "mtat" in ds)
    assert nsynth_cells and mtat_cells and not set(nsynth_cells) & set(mtat_cells)
    assert all(reads[c] == {"mtat", "fma_medium"} for c in mtat_cells)

    results = tmp_path / "results"
    _fake_tree(monkeypatch, tmp_path, dict(DATASET_VERSIONS), "5")
    assert Runner(grid, results, executor=_any_executor, log=lambda s: None).run(cells)["ran"] == [c.id for c in cells]
    stored = json.loads((results / f"{nsynth_cells[0]}.json").read_text())
    assert stored["data"] == {"nsynth": {"synthetic": True, "dataset_version": DATASET_VERSIONS["nsynth"],
                                         "scale": "tiny", "seed": 0}}
    assert {st.state for st in plan_states(grid, cells, results)} == {"done"}

    _bump(monkeypatch, tmp_path, "nsynth", "99")  # a new NSynth stand-in (and so a new tree)
    states = {st.cell.id: st.state for st in plan_states(grid, cells, results)}
    assert sorted(c for c, s in states.items() if s == "changed") == nsynth_cells
    payload, missing = report.build_report("smoke", results, grid)
    verdicts = {c["id"]: c["verdict"] for c in payload["claims"]}
    assert verdicts == {"T3-tags": "holds", "T4-sup": "pending"}
    assert all("nsynth v5, now v99" in m for m in missing["T4-sup"]) and not missing["T3-tags"]
    second = Runner(grid, results, executor=_any_executor, log=lambda s: None).run(cells)
    assert sorted(second["ran"]) == nsynth_cells and sorted(second["skipped"]) == mtat_cells

    _bump(monkeypatch, tmp_path, "fma_medium", "100")  # the pool every pretraining cell reads
    states = {st.cell.id: st.state for st in plan_states(grid, cells, results)}
    assert sorted(c for c, s in states.items() if s == "changed") == mtat_cells


def test_results_written_before_per_data_set_versions_stay_valid_until_their_data_set_changes(tmp_path, monkeypatch):
    """A result of the old format carries the whole generator's version 5 for every data set
    it read; it counts as run on version 5 of each (every data set was at 5 then)."""
    from workbench.claims.runner import plan_states
    grid = _two_data_grid(seeds=(0,))
    cells = list(grid.cells.values())
    results = tmp_path / "results"
    _fake_tree(monkeypatch, tmp_path, None, "5")  # a tree of the old generator: no dataset_versions
    assert C.data_identity(["mtat_top50"]) == {"mtat": {"synthetic": True, "dataset_version": "5", "scale": "tiny",
                                                        "seed": 0}}

    def legacy(tasks):  # what the old data_identity recorded
        return {ds: {"synthetic": True, "generator_version": "5", "scale": "tiny", "seed": 0}
                for ds in C.data_identity(tasks)}

    Runner(grid, results, executor=_any_executor, identity=legacy, log=lambda s: None).run(cells)
    for ds in DATASET_VERSIONS:  # the code with every data set still at 5
        monkeypatch.setitem(DATASET_VERSIONS, ds, "5")
    _fake_tree(monkeypatch, tmp_path, dict(DATASET_VERSIONS), "5")
    assert {st.state for st in plan_states(grid, cells, results)} == {"done"}
    assert Runner(grid, results, executor=_any_executor, log=lambda s: None).run(cells)["ran"] == []
    assert not any(report.build_report("smoke", results, grid)[1].values())

    _bump(monkeypatch, tmp_path, "mtat", "6")
    states = {st.cell.id: st.state for st in plan_states(grid, cells, results)}
    assert {c for c, s in states.items() if s == "changed"} == {c.id for c in cells if c.recipe.trainer == "pretrain"}
    assert any("mtat v5, now v6" in m for m in report.build_report("smoke", results, grid)[1]["T3-tags"])


def test_the_tree_version_is_the_highest_data_set_version():
    from workbench.data import embedded

    assert set(embedded.DATASET_VERSIONS) == set(embedded.EMBEDDED_DATASETS)
    assert {m.NAME: m.VERSION for m in embedded.STAND_INS} == embedded.DATASET_VERSIONS
    assert embedded.GENERATOR_VERSION == str(max(int(v) for v in embedded.DATASET_VERSIONS.values()))


def test_workers_get_their_gpu_or_an_equal_share_of_the_cores():
    from workbench.claims.runner import worker_env

    base = {"PATH": "/bin"}
    assert worker_env(base, 1, 4, "cuda")["CUDA_VISIBLE_DEVICES"] == "1"
    assert "WORKBENCH_THREADS" not in worker_env(base, 1, 4, "cuda")
    assert [worker_env(base, k, 2, "cpu", cores=2)["WORKBENCH_THREADS"] for k in range(2)] == ["1", "1"]
    assert worker_env(base, 0, 3, "cpu", cores=16)["WORKBENCH_THREADS"] == "5"  # floor(16 / 3)
    assert worker_env(base, 0, 4, "cpu", cores=2)["WORKBENCH_THREADS"] == "1"  # never zero
    assert worker_env({**base, "WORKBENCH_THREADS": "3"}, 0, 2, "cpu", cores=2)["WORKBENCH_THREADS"] == "3"
    assert base == {"PATH": "/bin"}  # the caller's environment is not modified


def test_cell_cpu_completes_resumed_and_reused_cells_from_the_training_clock():
    trained = {"cpu_s": 50.0, "train": {"how": "trained", "cpu_s": 40.0, "cpu_s_attempt": 40.0}}
    assert report.cell_cpu(trained) == (50.0, True)
    # resumed: the last attempt's 15 s of training are replaced by the whole training's 40 s
    resumed = {"cpu_s": 25.0, "train": {"how": "resumed", "cpu_s": 40.0, "cpu_s_attempt": 15.0,
                                        "cpu_s_complete": True}}
    assert report.cell_cpu(resumed) == (50.0, True)
    # reused: the cell ran probes only; the finished run's training is added
    reused = {"cpu_s": 10.0, "train": {"how": "reused", "cpu_s": 40.0, "cpu_s_attempt": 40.0,
                                       "cpu_s_complete": True}}
    assert report.cell_cpu(reused) == (50.0, True)
    # a training that resumed a checkpoint without the clock's state, or an old result: a lower bound
    assert report.cell_cpu({**resumed, "train": {**resumed["train"], "cpu_s_complete": False}}) == (25.0, False)
    assert report.cell_cpu({"cpu_s": 25.0, "train": {"how": "resumed"}}) == (25.0, False)


def test_grid_rate_uses_every_finished_cell_not_only_the_selected_ones(tmp_path):
    from workbench.claims.runner import estimate_units, grid_rate

    grid = _grid()
    cells = list(grid.cells.values())
    Runner(grid, tmp_path, executor=FakeExecutor(), identity=_identity(MTAT_V), log=lambda s: None).run(cells[:3])
    for i, cell in enumerate(cells[:3]):  # known wall times
        path = tmp_path / f"{cell.id}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "wall_s": 100.0 * (i + 1)}))
    units = [estimate_units(c, C.resolve(c.recipe, grid.scale, c.seed)) for c in cells[:3]]
    assert grid_rate(grid, tmp_path) == pytest.approx(600.0 / sum(units))
    # a run of one unfinished cell logs the grid's rate in its ETA, not the 3 s/unit default
    lines = []
    Runner(grid, tmp_path, executor=FakeExecutor(), identity=_identity(MTAT_V), log=lines.append).run(cells[3:4])
    assert f"at {600.0 / sum(units):.2f} s/unit" in lines[0]


def test_grid_rate_follows_the_most_recently_finished_cells(tmp_path):
    """RECENT_CELLS: the ETA's rate is the machine as it runs now, so cells finished earlier (on a
    slower or busier machine) stop counting once enough newer ones exist."""
    import dataclasses

    from workbench.claims.runner import RECENT_CELLS, estimate_units, grid_rate

    grid = _grid(seeds=tuple(range(RECENT_CELLS // 2 + 1)))  # two cells a seed
    cells = list(grid.cells.values())
    assert len(cells) == RECENT_CELLS + 2
    fake = FakeExecutor()
    Runner(grid, tmp_path, executor=lambda cell, *a, **k: fake(dataclasses.replace(cell, seed=cell.seed % 3), *a, **k),
           identity=_identity(MTAT_V), log=lambda s: None).run(cells)
    units = {c.id: estimate_units(c, C.resolve(c.recipe, grid.scale, c.seed)) for c in cells}
    for i, cell in enumerate(cells):  # the two oldest ran at 50 s/unit, the newer ones at 2 s/unit
        path = tmp_path / f"{cell.id}.json"
        slow = i < 2
        path.write_text(json.dumps({**json.loads(path.read_text()), "finished": f"2026-12-0{1 + (not slow)}T{i:02d}:00:00Z",
                                    "wall_s": units[cell.id] * (50.0 if slow else 2.0)}))
    assert grid_rate(grid, tmp_path) == pytest.approx(2.0)
    path = tmp_path / f"{cells[0].id}.json"  # the slow cell, finished again last: it counts, the oldest fast one not
    path.write_text(json.dumps({**json.loads(path.read_text()), "finished": "2026-12-03T00:00:00Z"}))
    newest = [cells[0]] + cells[3:]
    expect = (50.0 * units[cells[0].id] + 2.0 * sum(units[c.id] for c in cells[3:])) / sum(units[c.id] for c in newest)
    assert grid_rate(grid, tmp_path) == pytest.approx(expect)


def test_sigterm_stops_the_runner_and_releases_the_cell_without_calling_it_failed(tmp_path):
    import signal

    grid = _grid()
    cells = list(grid.cells.values())
    fake = FakeExecutor()

    def killed(cell, *a, **kw):
        if cell.id == "ssl-s1":
            os.kill(os.getpid(), signal.SIGTERM)  # kill, a scheduler or a closing session
            raise AssertionError("the signal must stop the cell before this line")
        return fake(cell, *a, **kw)

    before = signal.getsignal(signal.SIGTERM)
    out = Runner(grid, tmp_path, executor=killed, identity=_identity(MTAT_V), log=lambda s: None).run(cells)
    assert out["stopped"] == "ssl-s1" and out["failed"] == []
    assert out["ran"] == [c.id for c in cells[:2]] and fake.calls == [c.id for c in cells[:2]]  # nothing after it
    assert not (tmp_path / "failures").exists() and not (tmp_path / "ssl-s1.json").exists()
    assert not list(tmp_path.glob("*.lock"))
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back
    # the next run resumes with the stopped cell
    again = Runner(grid, tmp_path, executor=fake, identity=_identity(MTAT_V), log=lambda s: None).run(cells)
    assert again["ran"] == [c.id for c in cells[2:]] and again["stopped"] is None


def test_an_error_raised_by_the_same_sigterm_is_a_stop_not_a_failure(tmp_path):
    """A DataLoader worker killed by the group's SIGTERM makes the trainer raise RuntimeError;
    here the executor swallows the stop and raises that error instead."""
    import signal

    grid = _grid()
    cells = list(grid.cells.values())

    def loader_died(cell, *a, **kw):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except BaseException:  # noqa: BLE001 - as a library's cleanup might
            pass
        raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated.")

    out = Runner(grid, tmp_path, executor=loader_died, identity=_identity(MTAT_V), log=lambda s: None).run(cells)
    assert out["stopped"] == "ssl-s0" and out["failed"] == [] and out["ran"] == []
    assert not (tmp_path / "failures").exists() and not list(tmp_path.glob("*.lock"))


def test_a_runner_process_killed_with_sigterm_exits_130_and_leaves_no_lock(tmp_path):
    import signal

    script = f"""
import sys, time
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_claims_runner import _grid, _identity, MTAT_V
from workbench.claims.runner import Runner
def slow(cell, *a, **kw):
    print("started", cell.id, flush=True)
    time.sleep(60)
out = Runner(_grid(), {str(tmp_path)!r}, executor=slow, identity=_identity(MTAT_V), log=print).run(
    list(_grid().cells.values()))
print("summary", out["stopped"], out["failed"], flush=True)
sys.exit(130 if out["stopped"] else 0)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        while line and not line.startswith("started"):
            line = proc.stdout.readline()
        assert line.startswith("started ssl-s0")
        assert (tmp_path / "ssl-s0.lock").exists()
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "summary ssl-s0 []" in rest and "stopped by a signal" in rest
    assert not list(tmp_path.glob("*.lock")) and not (tmp_path / "failures").exists()
