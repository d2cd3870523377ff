"""The demo job behind ``make demo``: the paper's headline claim on the embedded benchmark.

1. render (or find) the embedded benchmark and print a per-task summary;
2. pretrain two demo-scale models on the unlabelled pool ``fma_medium``: a
   self-supervised one (``ssl``, b_s = 0) and SemiSupCon with ``support=nsynth_pitch``;
3. probe both frozen encoders on nsynth_pitch, nsynth_instrument, giantsteps_key and
   mtat_top50 with several seeds, print the table, write ``runs/demo/summary.json``
   and a bar chart in ``figures/demo/``.

Finished pretraining runs with an identical configuration are reused, and an unfinished one
(stopped or killed) is resumed from its ``last.ckpt`` (``--fresh`` forces new ones);
embeddings are cached, so a second ``make demo`` is quick.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import yaml

from . import runs
from .config import PretrainConfig, load_config, resolve_config

__all__ = ["DEMO_MODELS", "DEMO_TASKS", "DEMO_SEEDS", "PRETRAIN_MODES", "demo_configs", "run_demo", "main",
           "side_by_side_workers"]

DEMO_TASKS = ("nsynth_pitch", "nsynth_instrument", "giantsteps_key", "mtat_top50")
DEMO_SEEDS = (0, 1, 2)
#: model label → (method, overrides); both use the demo scale and the fma_medium pool.
DEMO_MODELS = {
    "ssl": ("simclr", {}),
    "semisupcon": ("semisupcon", {"support": "nsynth_pitch", "b_s": 0.5, "p": 1.0}),
}
#: Probing reads at most this many chunks per track (even spread): bounded demo cost.
DEMO_MAX_CHUNKS = 4
#: Early-stopping patience (epochs) of the demo probes, as CLMR's linear evaluation.
DEMO_PROBE_PATIENCE = 5
#: Probe threads: None = the thread policy (workbench.threads: all cores available, as probes
#: train alone after pretraining).
DEMO_PROBE_THREADS = None
#: How the probes are trained: "batched" (all seeds and tasks of a model in one batched run,
#: workbench.batched_probe; the same probes) or "sequential" (one probe_task per task, one
#: probe per seed: the recipe before the batched trainer, kept for benchmarks/demo.py).
PROBE_MODES = ("batched", "sequential")
#: How the models are pretrained on the CPU: "side-by-side" (one process per model, an equal
#: share of the cores each: side_by_side_workers) or "sequential" (one after the other with all
#: cores: the recipe before, kept for benchmarks/demo.py). A GPU always trains them in turn.
PRETRAIN_MODES = ("side-by-side", "sequential")
#: Seconds between two progress lines while models train side by side.
SIDE_BY_SIDE_REPORT_S = 60.0


def demo_configs(out: Path, scale: str = "demo", **overrides) -> dict[str, PretrainConfig]:
    cfgs = {}
    for label, (method, extra) in DEMO_MODELS.items():
        cfgs[label] = resolve_config(scale, method, name=f"demo-{label}", runs_dir=str(out / "pretrain"),
                                     **{**extra, **overrides})
    return cfgs


def _reusable_run(cfg: PretrainConfig) -> tuple[Path, bool] | None:
    """The newest run of exactly this configuration that has a ``last.ckpt``, and whether it
    finished: a finished one is reused, an unfinished one (stopped, killed) resumed."""

    def same(run: Path) -> bool:
        try:
            return load_config(run / "config.yaml") == cfg
        except (ValueError, TypeError):
            return False

    return runs.latest_run(cfg.runs_dir, same)


def run_demo(out: str | Path = "runs/demo", *, scale: str = "demo", seeds=DEMO_SEEDS, tasks=DEMO_TASKS,
             fresh: bool = False, progress: bool = True, figures_dir: str | Path = "figures/demo",
             probe_mode: str = "batched", pretrain_mode: str = "side-by-side", **overrides) -> dict:
    from . import data
    from .data.summary import format_summary, summarize
    from .figures import demo_bar_chart
    from .probe import probe_task, probe_tasks
    from .results import aggregate, results_table, write_results

    t_start = time.perf_counter()
    out = Path(out)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print("== 1/3 data: the embedded benchmark", flush=True)
    t0 = time.perf_counter()
    summary = summarize((*tasks, "fma_medium"))
    print(format_summary(summary), flush=True)
    configs = demo_configs(out, scale, **overrides)
    # decode the pretraining pools once into the memory-mapped cache (fast random crops)
    from .train.run import prepare_caches

    for cfg in configs.values():
        prepare_caches("semisupcon", cfg, progress=progress)
    timings = {"data_s": time.perf_counter() - t0}

    print("\n== 2/3 pretraining", flush=True)
    if pretrain_mode not in PRETRAIN_MODES:
        raise ValueError(f"pretrain_mode must be one of {PRETRAIN_MODES}, got {pretrain_mode!r}.")
    runs_of: dict[str, Path] = {}
    todo: dict[str, tuple[PretrainConfig, Path | None]] = {}  # label -> (config, unfinished run to resume)
    for label, cfg in configs.items():
        found = None if fresh else _reusable_run(cfg)
        if found is not None and found[1]:
            print(f"[{label}] reusing finished run {found[0]}", flush=True)
            runs_of[label] = found[0]
            timings[f"pretrain_{label}_s"] = 0.0
            continue
        resume = found[0] if found is not None else None
        if resume is not None:
            from .train.run import checkpoint_step

            print(f"[{label}] resuming unfinished run {resume} from step "
                  f"{checkpoint_step(resume / 'checkpoints' / 'last.ckpt')} of {cfg.steps}", flush=True)
        else:
            print(f"[{label}] pretraining {cfg.method} (support={cfg.support}, b_s={cfg.b_s}, p={cfg.p}, "
                  f"{cfg.steps} steps × {cfg.batch_size} clips × {cfg.n_views} views)", flush=True)
        todo[label] = (cfg, resume)
    workers = side_by_side_workers(len(todo), device, pretrain_mode)
    t_pre = time.perf_counter()
    if workers > 1:
        runs_of.update(_pretrain_side_by_side(todo, workers, timings))
    else:
        for label, (cfg, resume) in todo.items():
            t0 = time.perf_counter()
            runs_of[label] = _pretrain(cfg, resume, progress)
            timings[f"pretrain_{label}_s"] = time.perf_counter() - t0
            print(f"[{label}] run directory: {runs_of[label]}", flush=True)
    timings["pretrain_s"] = time.perf_counter() - t_pre
    checkpoints = {label: (runs_of[label] / "checkpoints" / "last.ckpt", cfg) for label, cfg in configs.items()}

    print("\n== 3/3 probing frozen encoders", flush=True)
    t0 = time.perf_counter()
    if probe_mode not in PROBE_MODES:
        raise ValueError(f"probe_mode must be one of {PROBE_MODES}, got {probe_mode!r}.")
    records = []
    common = dict(seeds=seeds, device=device, extract_kwargs={"max_chunks": DEMO_MAX_CHUNKS}, progress=progress)
    for label, (ckpt, cfg) in checkpoints.items():
        if probe_mode == "batched":
            print(f"[{label}] probing {', '.join(tasks)} ({len(seeds)} seeds, trained together)", flush=True)
            records += probe_tasks(str(ckpt), tasks, model=label, support=cfg.support,
                                   probe_kwargs={"threads": DEMO_PROBE_THREADS, "patience": DEMO_PROBE_PATIENCE},
                                   **common)
            continue
        for name in tasks:
            print(f"[{label}] probing {name} ({len(seeds)} seeds)", flush=True)
            # an on_epoch callback keeps probe_task on its one-probe-per-seed path
            records += probe_task(str(ckpt), name, model=label, support=cfg.support,
                                  probe_kwargs={"threads": DEMO_PROBE_THREADS, "patience": DEMO_PROBE_PATIENCE,
                                                "on_epoch": _no_op}, **common)
    timings["probe_s"] = time.perf_counter() - t0
    rows = aggregate(records)
    result_dir = runs.new_run_dir(out / "results", "demo")
    write_results(rows, result_dir / "results.json", result_dir / "results.csv")
    data_info = {name: data.data_root(name).to_dict() for name in (*tasks, "fma_medium")}
    timings["total_s"] = time.perf_counter() - t_start
    summary_json = {
        "results": [{k: r[k] for k in ("model", "support", "task", "metric", "mean", "std", "seeds")} | {
            "n_seeds": r["n_seeds"], "values": r["values"], "aggregation": r["aggregation"],
            "checkpoint": r["checkpoint"], "synthetic": r["synthetic"]} for r in rows],
        "data": data_info,
        "runs": {label: str(ckpt.parents[1]) for label, (ckpt, _) in checkpoints.items()},
        "timings_s": timings,
        "device": device,
    }
    runs.write_json(result_dir / "summary.json", summary_json)
    runs.write_json(out / "summary.json", summary_json)
    figure = demo_bar_chart(rows, Path(figures_dir) / "summary.png")
    print("\n" + results_table(rows).to_string(), flush=True)
    print(f"\nsummary: {out / 'summary.json'} (also {result_dir})\nfigure:  {figure}\n"
          f"wall time: {timings['total_s'] / 60:.1f} min", flush=True)
    return summary_json


def side_by_side_workers(n_models: int, device: str, mode: str = "side-by-side", cores: int | None = None) -> int:
    """How many models to pretrain at once: on the CPU with ``mode="side-by-side"``, one
    process per model up to one per core (two one-thread trainings give 1.42x the throughput of
    one two-thread training on 2 cores: ``benchmarks/contention.py``, ``pair``); 1 otherwise
    (a GPU trains one model at a time, and ``sequential`` is the recipe before)."""
    from .threads import available_cores

    if mode == "sequential" or device != "cpu" or n_models < 2:
        return 1
    return max(1, min(n_models, available_cores() if cores is None else int(cores)))


def _pretrain(cfg: PretrainConfig, resume: Path | None, progress: bool) -> Path:
    """Pretrain ``cfg`` anew, or resume its unfinished run ``resume``."""
    from .train.pretrain import pretrain

    return pretrain(cfg, progress=progress) if resume is None else pretrain(resume=resume, progress=progress)


def _train_one(cfg: PretrainConfig, threads: int, resume: Path | None = None) -> str:
    """Pretrain (or resume) one model in a worker process with a fixed share of the cores."""
    import os

    from .threads import ENV_THREADS

    os.environ[ENV_THREADS] = str(threads)  # read by the thread policy when training starts
    return str(_pretrain(cfg, resume, False))


def _latest_step(cfg: PretrainConfig, since: float, resumed: Path | None = None) -> int | None:
    """The last logged step of the run ``resumed`` or, for a new run, of the newest run of ``cfg``
    started after ``since`` (epoch seconds)."""
    base = Path(cfg.runs_dir)
    if resumed is not None:
        newest = [Path(resumed)]
    else:
        newest = [r for r in base.glob(f"*-{cfg.name}") if r.stat().st_mtime >= since] if base.is_dir() else []
    for run in sorted(newest, reverse=True)[:1]:
        logs = sorted(run.glob("logs/attempt*/metrics.csv"))
        if logs:
            lines = logs[-1].read_text().strip().splitlines()
            header = lines[0].split(",") if lines else []
            if len(lines) > 1 and "step" in header:
                try:
                    return int(float(lines[-1].split(",")[header.index("step")]))
                except (ValueError, IndexError):  # a line being written
                    return None
    return None


def _pretrain_side_by_side(todo: dict[str, tuple[PretrainConfig, Path | None]], workers: int,
                           timings: dict) -> dict[str, Path]:
    """Pretrain ``todo`` in ``workers`` spawned processes, ``cores // workers`` threads each,
    printing every model's logged step every ``SIDE_BY_SIDE_REPORT_S`` seconds."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from .threads import cores_share

    threads = cores_share(workers)
    print(f"pretraining {len(todo)} models side by side: {workers} processes × {threads} thread(s)", flush=True)
    since, t0 = time.time() - 1.0, time.perf_counter()
    out: dict[str, Path] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_train_one, cfg, threads, resume): label for label, (cfg, resume) in todo.items()}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=SIDE_BY_SIDE_REPORT_S, return_when=FIRST_COMPLETED)
            for fut in done:
                label = futures[fut]
                out[label] = Path(fut.result())  # a worker's error is raised here, with its message
                timings[f"pretrain_{label}_s"] = time.perf_counter() - t0
                print(f"[{label}] run directory: {out[label]}", flush=True)
            if pending:
                status = []
                for f in pending:
                    cfg, resume = todo[futures[f]]
                    status.append(f"[{futures[f]}] step {_latest_step(cfg, since, resume) or 0}/{cfg.steps}")
                print(f"  {time.perf_counter() - t0:6.0f} s  " + "  ".join(status), flush=True)
    return out


def _no_op(*_args) -> None:
    """An on_epoch callback that does nothing (selects probe_task's sequential path)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="workbench demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/demo")
    ap.add_argument("--figures-dir", default="figures/demo", help="where the bar chart goes")
    ap.add_argument("--scale", default="demo", choices=("smoke", "demo", "paper"))
    ap.add_argument("--seeds", type=int, default=len(DEMO_SEEDS), help="number of probe seeds")
    ap.add_argument("--fresh", action="store_true", help="pretrain anew even if identical finished runs exist")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--probe-mode", default="batched", choices=PROBE_MODES,
                    help="train the probes together (default) or one by one (same results, slower)")
    ap.add_argument("--pretrain-mode", default="side-by-side", choices=PRETRAIN_MODES,
                    help="on the CPU: pretrain the models in parallel processes (default) or one after the other")
    ap.add_argument("overrides", nargs="*", help="pretraining overrides key=value, e.g. steps=300")
    args = ap.parse_args(argv)
    over = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    run_demo(args.out, scale=args.scale, seeds=tuple(range(args.seeds)), fresh=args.fresh,
             progress=not args.no_progress, figures_dir=args.figures_dir, probe_mode=args.probe_mode,
             pretrain_mode=args.pretrain_mode, **over)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
