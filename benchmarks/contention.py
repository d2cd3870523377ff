"""Benchmark: demo pretraining steps/s alone and beside a competing CPU-bound process,
torch's defaults ("old") vs the thread policy of ``workbench.threads`` ("new").

Each measurement is a fresh child process (OpenMP settings are fixed when torch loads)
running demo-scale SemiSupCon training steps on synthetic waveforms: the demo encoder
(``samplecnn_demo``), projection head, augmentation chain, SemiSupCon loss and Adam, at
the demo's batch (48 clips × 2 views) and precision (bf16 autocast where the CPU has it),
fed by a DataLoader with the demo's 2 workers. The competitor, started by this benchmark,
is a 2-thread torch matmul loop in its own process (torch defaults: spinning OpenMP).

* ``old``: torch's default threads (one per core) and the OpenMP runtime's own waiting
  (``WORKBENCH_WAIT_POLICY=default``): the recipe before the policy;
* ``new``: the policy (threads = cores available minus busy loader workers; the demo's
  workers read the decoded cache and count as idle; the OpenMP runtime's own waiting; the
  thread governor lowering the threads to the cores other processes leave idle, every 2 s).
* ``--extra`` variants for the record: ``passive`` (``OMP_WAIT_POLICY=PASSIVE``, the policy
  of the previous round), ``bounded:N`` (``GOMP_SPINCOUNT=N``), ``default@1`` (one thread).

Rounds alternate old/new, quiet/loaded; the median of the rounds is reported. Prints ONE
JSON line: {"name": "contention", "old_quiet_steps_s", "old_loaded_steps_s",
"old_fraction", "new_quiet_steps_s", "new_loaded_steps_s", "new_fraction" (loaded/quiet,
target >= 0.40; a fair share is 0.5), "quiet_ratio" (new quiet / old quiet, target >= 1),
"ratio" (= new_fraction / old_fraction), "pair" (two trainings at once vs one alone:
"throughput_vs_alone", the pair's total steps/s over one process's), ...}.

    python -m benchmarks.contention [--steps 30] [--rounds 3] [--extra passive bounded:100000 ...]
    python -m benchmarks.contention --steps 1 --rounds 1 --warmup 0   # smoke: plumbing only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

STEPS = 30
WARMUP = 5
ROUNDS = 3
COMPETITOR_THREADS = 2
COMPETITOR_SIZE = 1024
WORKERS = 2
CHILD_TIMEOUT_S = 600


def variant_env(policy: str) -> dict[str, str]:
    """Environment of a measured variant: ``old`` (torch's defaults), ``new`` (the policy as
    shipped: the runtime's waiting and the thread governor), or a wait policy of the thread
    policy (``passive``, ``default``, ``bounded:N`` with N spins), optionally ``@T`` for T
    torch threads (``default@1``) and ``+governor`` for the governor (off otherwise)."""
    if policy == "old":
        return {"WORKBENCH_WAIT_POLICY": "default", "WORKBENCH_GOVERNOR": "0"}
    if policy == "new":
        return {}
    policy, governor, _ = policy.partition("+governor")
    policy, _, n_threads = policy.partition("@")
    wait, _, spins = policy.partition(":")
    env = {"WORKBENCH_WAIT_POLICY": wait}
    if not governor:
        env["WORKBENCH_GOVERNOR"] = "0"
    if spins:
        env["WORKBENCH_SPINCOUNT"] = spins
    if n_threads:
        env["WORKBENCH_THREADS"] = n_threads
    return env


def _child(policy: str, steps: int, warmup: int = WARMUP) -> None:
    """Run in a fresh process: time ``steps`` demo training steps, print {"steps_s": ...}."""
    os.environ.update(variant_env(policy))
    import workbench  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
    import torch

    from workbench import threads
    from workbench.augment import build_chain
    from workbench.config import resolve_config
    from workbench.losses import semisupcon_loss, target_matrix
    from workbench.models import build_encoder
    from workbench.models.heads import ProjectionHead

    cfg = resolve_config("demo", "semisupcon", support="nsynth_pitch", b_s=0.5)
    n_threads = torch.get_num_threads() if policy == "old" else threads.threads_for(
        threads.busy_workers(cfg.num_workers, reads_decoded_cache=True))
    torch.set_num_threads(n_threads)
    torch.manual_seed(0)
    enc_kw = dict(cfg.encoder)
    encoder = build_encoder(enc_kw.pop("name"), **enc_kw)
    head = ProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_dim)
    chain = build_chain(cfg.preset, sample_rate=cfg.sample_rate, severity=cfg.severity, exclude=cfg.augment_exclude)
    params = [*encoder.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    bf16 = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    b, n, t = cfg.batch_size, cfg.n_views, cfg.clip_samples

    class Views(torch.utils.data.Dataset):
        def __len__(self):
            return 1 << 20

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return torch.randn(n, t, generator=g) * 0.1, torch.tensor(i % 40)

    loader = iter(torch.utils.data.DataLoader(Views(), batch_size=b, num_workers=WORKERS, shuffle=False))
    ids = torch.arange(b).repeat_interleave(n)

    def step() -> None:
        views, labels = next(loader)
        x = chain(views.reshape(b * n, 1, t))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            z = head(encoder(x))
        lab = torch.nn.functional.one_hot(labels, 40).repeat_interleave(n, 0)
        lab[: b * n // 2] = 0  # half the batch unlabelled, as b_s = 0.5
        loss = semisupcon_loss(z.float(), target_matrix(ids, lab), temperature=cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with threads.governed(n_threads) as governor:  # a no-op governor where disabled (old, fixed threads)
        for _ in range(warmup):
            threads.tick()
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            threads.tick()
            step()
        dt = time.perf_counter() - t0
    print(json.dumps({"steps_s": steps / dt, "threads": n_threads, "bf16": bf16,
                      "governor": governor.enabled, "governed_threads": [h[2] for h in governor.history],
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                      "gomp_spincount": os.environ.get("GOMP_SPINCOUNT")}))


def _competitor() -> None:
    """A CPU-bound 2-thread torch process (matmuls forever, torch's defaults)."""
    import torch

    torch.set_num_threads(COMPETITOR_THREADS)
    a = torch.randn(COMPETITOR_SIZE, COMPETITOR_SIZE)
    while True:
        a = torch.tanh(a @ a)


#: Variables the parent's environment must not pass on (each child sets its own).
CHILD_UNSET = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT", "WORKBENCH_WAIT_POLICY",
               "WORKBENCH_SPINCOUNT", "WORKBENCH_THREADS")


def _start(policy: str, steps: int, warmup: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in CHILD_UNSET}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.contention", "--child", policy, "--steps", str(steps),
                             "--warmup", str(warmup)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _result(proc: subprocess.Popen, policy: str) -> dict:
    out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"contention child ({policy}) failed:\n{err[-2000:]}")
    return json.loads(lines[-1])


def _measure(policy: str, steps: int, warmup: int = WARMUP) -> dict:
    return _result(_start(policy, steps, warmup), policy)


def pair(steps: int = STEPS, warmup: int = WARMUP) -> dict:
    """Two demo trainings at once (as two models of ``make demo`` or two claims runners could
    run) vs one alone: each process's steps/s and the pair's total throughput over the single
    process's, for the shipped policy (the governors settle on one thread each) and for one
    fixed thread each."""
    alone = _measure("new", steps, warmup)["steps_s"]
    out = {"alone_steps_s": round(alone, 3)}
    for policy in ("new", "default@1"):
        procs = [_start(policy, steps, warmup) for _ in range(2)]
        rates = [_result(p, policy)["steps_s"] for p in procs]
        out[policy] = {"steps_s": [round(r, 3) for r in rates], "throughput_vs_alone": round(sum(rates) / alone, 3)}
    return out


def run(steps: int = STEPS, rounds: int = ROUNDS, warmup: int = WARMUP, extra: tuple[str, ...] = ()) -> dict:
    rates: dict[tuple[str, str], list[float]] = {}
    info: dict[str, dict] = {}
    variants = ("old", "new", *extra)
    for r in range(rounds):
        policies = variants if r % 2 == 0 else variants[::-1]
        for load in ("quiet", "loaded"):
            competitor = None
            if load == "loaded":
                env = {k: v for k, v in os.environ.items() if k not in CHILD_UNSET}
                competitor = subprocess.Popen([sys.executable, "-m", "benchmarks.contention", "--competitor"],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(2.0)  # let it reach its loop
            try:
                for policy in policies:
                    res = _measure(policy, steps, warmup)
                    rates.setdefault((policy, load), []).append(res["steps_s"])
                    info[policy] = info[(policy, load)] = res
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
    med = {k: statistics.median(v) for k, v in rates.items()}
    out = {"name": "contention", "steps": steps, "rounds": rounds, "cpu_count": os.cpu_count(),
           "competitor": f"{COMPETITOR_THREADS}-thread torch matmul loop"}
    for policy in ("old", "new"):
        q, l = med[(policy, "quiet")], med[(policy, "loaded")]
        out.update({f"{policy}_quiet_steps_s": round(q, 3), f"{policy}_loaded_steps_s": round(l, 3),
                    f"{policy}_fraction": round(l / q, 3), f"{policy}_threads": info[policy]["threads"],
                    f"{policy}_omp_wait_policy": info[policy]["omp_wait_policy"],
                    f"{policy}_all": {load: [round(x, 3) for x in rates[(policy, load)]] for load in ("quiet", "loaded")}})
    out["variants"] = {}
    for policy in variants:
        q, l = statistics.median(rates[(policy, "quiet")]), statistics.median(rates[(policy, "loaded")])
        out["variants"][policy] = {"env": variant_env(policy), "quiet_steps_s": round(q, 3),
                                   "loaded_steps_s": round(l, 3), "fraction": round(l / q, 3),
                                   "quiet_vs_old": round(q / med[("old", "quiet")], 3),
                                   "omp_wait_policy": info[policy]["omp_wait_policy"],
                                   "gomp_spincount": info[policy].get("gomp_spincount"),
                                   "governor": info[policy].get("governor"),
                                   "governed_threads": {ld: info[(policy, ld)].get("governed_threads")
                                                        for ld in ("quiet", "loaded")}}
    out["pair"] = pair(steps, warmup)  # on the quiet machine
    out["quiet_ratio"] = round(out["new_quiet_steps_s"] / out["old_quiet_steps_s"], 3)
    out["ratio"] = round(out["new_fraction"] / out["old_fraction"], 3)
    out["baseline_s"] = round(1 / out["old_loaded_steps_s"], 4)  # seconds per step under load
    out["fast_s"] = round(1 / out["new_loaded_steps_s"], 4)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--warmup", type=int, default=WARMUP, help="untimed steps first (fewer for a smoke run)")
    ap.add_argument("--extra", nargs="*", default=[], metavar="VARIANT",
                    help="more variants to measure beside old/new: passive, bounded, bounded:N (N spins), active")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--competitor", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.competitor:
        _competitor()
    elif args.child:
        _child(args.child, args.steps, args.warmup)
    else:
        print(json.dumps(run(args.steps, args.rounds, args.warmup, tuple(args.extra))))


if __name__ == "__main__":
    main()
