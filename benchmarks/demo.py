"""Benchmark: the whole ``make demo`` from an empty cache, today's recipe vs the current one,
side by side in one run.

Each recipe runs ``python -m workbench demo --fresh`` in its own process with its own
empty ``WORKBENCH_CACHE`` (so each renders the embedded benchmark, decodes the pools,
pretrains both models, extracts embeddings and probes from scratch) and its own output
folder under ``--workdir``:

* ``baseline``: the recipe before the performance pass of issue 16: models pretrained one
  after the other (``--pretrain-mode sequential``), probes one by one (``--probe-mode sequential``), the OpenMP runtime's own waiting
  (``WORKBENCH_WAIT_POLICY=default``) and no thread governor (``WORKBENCH_GOVERNOR=0``);
  threads as torch's default (one per core), which the thread policy also gives on a quiet
  machine with the demo's cached-data workers;
* ``current``: what ``make demo`` runs now (on the CPU both models pretrained side by side in
  two processes with an equal share of the cores, probes of all seeds and tasks of a model
  trained together, the runtime's waiting, the thread governor).

Pretraining settings (steps, lr, batch) are the same in both: the headline is checked, not
assumed: ``pitch_gain`` (SemiSupCon − ssl, nsynth_pitch accuracy; target >= 0.15 at the demo
scale) and every other task's gain (``worst_other_gain``, target > -0.05) for each recipe.
The recipes run one after the other (baseline first); the ratio is current / baseline wall
time (target <= 0.5), with the demo's own phase timings for each.

Prints ONE JSON line: {"name": "demo", "baseline_s", "fast_s", "ratio", "baseline": {...},
"current": {...}}.

    python -m benchmarks.demo                       # demo scale: ~20 min on a quiet 2-core CPU
    python -m benchmarks.demo --scale smoke         # the tiny benchmark, smoke pretraining: minutes
    python -m benchmarks.demo --recipes current     # one recipe only (no ratio)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = {
    "baseline": {"args": ["--probe-mode", "sequential", "--pretrain-mode", "sequential"],
                 "env": {"WORKBENCH_WAIT_POLICY": "default",
                                                                 "WORKBENCH_GOVERNOR": "0"}},
    "current": {"args": ["--probe-mode", "batched", "--pretrain-mode", "side-by-side"], "env": {}},
}
#: embedded-benchmark size per demo scale (smoke: the tiny benchmark the tests use)
RENDER_SCALE = {"smoke": "tiny", "demo": "demo"}
TIMEOUT_S = 3 * 3600


def _headline(summary: dict) -> dict:
    score = {(r["model"], r["task"], r["metric"]): r["mean"] for r in summary["results"]}
    gains = {f"{task}/{metric}": round(score[("semisupcon", task, metric)] - value, 4)
             for (model, task, metric), value in score.items()
             if model == "ssl" and ("semisupcon", task, metric) in score}
    pitch = gains.get("nsynth_pitch/accuracy")
    others = [v for k, v in gains.items() if not k.startswith("nsynth_pitch/")]
    return {"gains": gains, "pitch_gain": pitch, "worst_other_gain": min(others) if others else None}


def run_recipe(name: str, scale: str, workdir: Path, seeds: int) -> dict:
    recipe = RECIPES[name]
    base = workdir / name
    cache = base / "cache"
    if cache.exists() and any(cache.iterdir()):
        raise SystemExit(f"{cache} is not empty: the benchmark measures from an empty cache; pass a new --workdir.")
    cache.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME",
                                                            "GOMP_SPINCOUNT", "WORKBENCH_DATA", "WORKBENCH_THREADS",
                                                            "WORKBENCH_GOVERNOR", "WORKBENCH_WAIT_POLICY")}
    env.update({"WORKBENCH_CACHE": str(cache), "WORKBENCH_EMBEDDED_SCALE": RENDER_SCALE[scale], **recipe["env"]})
    cmd = [sys.executable, "-m", "workbench", "demo", "--out", str(base / "runs"), "--figures-dir",
           str(base / "figures"), "--scale", scale, "--seeds", str(seeds), "--fresh", "--no-progress", *recipe["args"]]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    wall = time.perf_counter() - t0
    (base / "log.txt").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"recipe {name} failed (log {base / 'log.txt'}):\n{proc.stderr[-2000:]}")
    summary = json.loads((base / "runs" / "summary.json").read_text())
    return {"wall_s": round(wall, 1), "timings_s": {k: round(v, 1) for k, v in summary["timings_s"].items()},
            **_headline(summary), "command": " ".join(cmd[1:]), "env": recipe["env"]}


def run(scale: str = "demo", recipes=tuple(RECIPES), workdir: str | None = None, seeds: int = 3) -> dict:
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bench-demo-"))
    out = {"name": "demo", "scale": scale, "workdir": str(root), "cpu_count": os.cpu_count()}
    for name in recipes:
        out[name] = run_recipe(name, scale, root, seeds)
    if "baseline" in out and "current" in out:
        out["baseline_s"], out["fast_s"] = out["baseline"]["wall_s"], out["current"]["wall_s"]
        out["ratio"] = round(out["baseline_s"] / out["fast_s"], 3)  # speed-up, as the other benchmarks
        out["time_fraction"] = round(out["fast_s"] / out["baseline_s"], 3)  # target <= 0.5
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="demo", choices=tuple(RENDER_SCALE))
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--workdir", default=None, help="where each recipe's cache and runs go (default: a new temp dir)")
    ap.add_argument("--seeds", type=int, default=3, help="probe seeds")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.scale, args.recipes, args.workdir, args.seeds)))


if __name__ == "__main__":
    main()
