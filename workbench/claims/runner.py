"""``python -m workbench claims``: run every cell the claims need, resumable and parallel-safe,
then write the report and the figures.

    python -m workbench claims --scale demo                 # the whole grid (resumes where it stopped)
    python -m workbench claims --scale demo --only T3-pitch F4-latent
    python -m workbench claims --scale demo --dry-run       # the cells, their state, the ETA
    python -m workbench claims --scale demo --report-only   # claims.md/.json + figures from results/ alone
    python -m workbench claims --scale paper --device cuda devices=4

Cells run in the grid's order (headline claims first, their first seeds before later seeds,
then the MSA comparisons, then the ablations). A cell whose result file exists with the
same config hash is skipped; a changed hash is said and the cell recomputed; a cell locked
by a live runner is left to it, so several runners (or ``devices=N``: N worker processes,
one per GPU with ``--device cuda``, each running whole cells on its own device, so every
cell's batch is what the grid says; on the CPU each worker gets ``cores // N`` threads)
share one grid. Killing a runner loses at most the
cell in flight (its training run resumes from the last checkpoint next time). SIGTERM (what
``kill``, a batch scheduler or a closing session sends) stops the runner there too: the
cell is released, not recorded as failed, and the exit status is 130. A failing cell is
recorded and the grid goes on; the exit status is 1 if any cell failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import cells as C
from . import store
from .registry import CLAIM_IDS, Cell, Grid, build_grid

__all__ = ["CellState", "Runner", "Stopped", "plan_states", "estimate_units", "main", "worker_env"]

#: Cost model (docs/claims.md): a cell costs ``steps × rows / ROW_STEPS_PER_UNIT`` units for its
#: training (a COLA row weighs ``COLA_ROW_WEIGHT`` SampleCNN rows: EfficientNet-B0 on log-mel) plus
#: fixed units per evaluation; seconds per unit are measured from finished cells. Relative weights
#: from the demo cells measured in docs/claims.md.
ROW_STEPS_PER_UNIT = 1000
COLA_ROW_WEIGHT = 8.0
PROBE_TASK_UNITS = 10.0
ROBUSTNESS_SEVERITY_UNITS = 2.0
LATENT_UNITS = 6.0
#: Wall seconds per unit on one worker before any cell finished (2-core CPU, docs/claims.md).
DEFAULT_SECONDS_PER_UNIT = 3.0
#: The ETA's rate comes from this many most recently finished cells: the machine and its load as
#: they are now (the grid runs over sessions on machines of other speeds and loads; quiet cells
#: of one session ran twice as fast as the loaded cells of the one before).
RECENT_CELLS = 10
FAILURES_DIR = "failures"


class Stopped(BaseException):
    """SIGTERM reached the runner: stop after releasing the cell in flight. A BaseException, so
    that neither a cell's ``except Exception`` nor Lightning's interrupt handling swallows it."""


@contextlib.contextmanager
def _stop_on_sigterm(flag: dict):
    """Turn SIGTERM into :class:`Stopped` while the runner works (main thread only; the
    previous handler comes back afterwards). Lightning, which bypasses SIGTERM during ``fit``,
    calls the handler it found, this one. ``flag["stopped"]`` also marks an error a dying
    loader worker raises before the signal reaches the main thread as part of the stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        flag["stopped"] = True
        raise Stopped(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

Executor = Callable[..., dict]


@dataclass
class CellState:
    cell: Cell
    state: str  # "done", "todo", "changed" (hash changed), "locked", "not_runnable"
    spec: dict | None = None
    spec_hash: str | None = None
    hash: str | None = None
    data: dict = field(default_factory=dict)
    message: str = ""
    units: float = 0.0


def estimate_units(cell: Cell, config) -> float:
    """Cost units of a cell (the ETA's model)."""
    if cell.recipe.trainer == "pretrain":
        rows = config.steps * config.batch_size * config.n_views
    elif cell.recipe.trainer == "cola":
        rows = 0 if cell.recipe.steps == "init" else config.steps * config.batch_size * 2 * COLA_ROW_WEIGHT
    else:
        rows = config.max_steps * config.batch_size
    units = rows / ROW_STEPS_PER_UNIT + PROBE_TASK_UNITS * len(cell.probe_tasks)
    if cell.robustness:
        units += ROBUSTNESS_SEVERITY_UNITS * len(cell.robustness["severities"])
    if cell.latent:
        units += LATENT_UNITS
    return float(units)


def plan_states(grid: Grid, cells: Sequence[Cell], results: Path, *, with_data: bool = True,
                identity: Callable[[list], dict] | None = None) -> list[CellState]:
    """Each cell's state against the stored results. ``with_data=False`` checks the spec hash
    only (no data is resolved; nothing is rendered). ``identity(tasks)`` gives the data
    identity (default :func:`workbench.claims.cells.data_identity`)."""
    identity = identity or C.data_identity
    probe_seeds = grid.plan["probe_seeds"]
    out = []
    for cell in cells:
        try:
            config = C.resolve(cell.recipe, grid.scale, cell.seed)
        except C.NotRunnable as err:
            out.append(CellState(cell, "not_runnable", message=str(err)))
            continue
        spec = C.spec_of(cell, grid.scale, probe_seeds)
        st = CellState(cell, "todo", spec, C.spec_hash(spec), units=estimate_units(cell, config))
        if with_data:
            st.data = identity(C.datasets_of(cell, config))
            st.hash = C.config_hash(spec, st.data)
        stored = store.read_result(results, cell.id)
        if stored is not None and stored.get("status") == "ok":
            same = stored.get("hash") in C.accepted_hashes(spec, st.data) if with_data else \
                stored.get("spec_hash") == st.spec_hash
            if same:
                st.state = "done"
            else:
                st.state = "changed"
                st.message = f"config hash changed ({stored.get('hash')} -> {st.hash})" if with_data else \
                    f"spec hash changed ({stored.get('spec_hash')} -> {st.spec_hash})"
        if st.state != "done":
            owner = store.held_by_other(results, cell.id)
            if owner is not None:
                st.state, st.message = "locked", f"in flight: pid {owner.get('pid')} on {owner.get('host')}"
        out.append(st)
    return out


def grid_rate(grid: Grid, results: Path, key: str = "wall_s", states: Sequence[CellState] | None = None) -> float:
    """Measured seconds per cost unit over the :data:`RECENT_CELLS` most recently finished cells
    of the whole grid (what an ETA of a few selected cells, ``--only`` / ``--cells``, should use
    too). ``states``: the whole grid's :func:`plan_states` (``with_data=False``) when the caller
    already has them."""
    if states is None:
        states = plan_states(grid, list(grid.cells.values()), results, with_data=False)
    return _seconds_per_unit(states, results, key)


def _seconds_per_unit(states: Sequence[CellState], results: Path, key: str = "wall_s",
                      recent: int = RECENT_CELLS) -> float:
    """Measured seconds (``wall_s`` or ``cpu_s``) per cost unit over the ``recent`` most recently
    finished cells (by their ``finished`` time; ISO UTC strings sort in time order)."""
    measured = []
    for st in states:
        if st.state == "done":
            stored = store.read_result(results, st.cell.id) or {}
            if stored.get(key) and st.units:
                measured.append((str(stored.get("finished", "")), float(stored[key]), st.units))
    newest = sorted(measured, key=lambda m: m[0], reverse=True)[:recent]
    units = sum(m[2] for m in newest)
    return sum(m[1] for m in newest) / units if units else DEFAULT_SECONDS_PER_UNIT


def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Runner:
    """Runs the cells of a grid. ``executor(cell, scale, probe_seeds, device=, results_dir=, run_key=)``
    returns a cell's payload (default :func:`workbench.claims.cells.run_cell`); tests inject a
    fake one."""

    def __init__(self, grid: Grid, results: Path, *, executor: Executor | None = None, device: str = "cpu",
                 log: Callable[[str], None] | None = None, identity: Callable[[list], dict] | None = None):
        self.grid, self.results, self.device = grid, Path(results), device
        self.executor = executor or C.run_cell
        self.identity = identity
        self.log = log or (lambda s: print(s, flush=True))

    def run(self, cells: Sequence[Cell]) -> dict:
        """Run every unfinished cell; returns counts and the failures. ``summary["stopped"]``
        names the cell SIGTERM stopped (released, not failed; its training resumes next time)."""
        flag = {"stopped": False}
        summary = {"ran": [], "skipped": [], "locked": [], "not_runnable": [], "failed": [], "stopped": None}
        with _stop_on_sigterm(flag):
            try:
                self._run(cells, summary, flag)
            except Stopped:
                pass
        return summary

    def _run(self, cells: Sequence[Cell], summary: dict, flag: dict) -> None:
        states = plan_states(self.grid, cells, self.results, identity=self.identity)
        rate = grid_rate(self.grid, self.results)
        done = sum(st.state == "done" for st in states)
        left = [st for st in states if st.state in ("todo", "changed", "locked")]
        self.log(f"claims grid {self.grid.scale}: {len(states)} cells, {done} done, {len(left)} left, "
                 f"{sum(st.state == 'not_runnable' for st in states)} not runnable; "
                 f"ETA {_fmt_s(rate * sum(st.units for st in left))} at {rate:.2f} s/unit")
        for st in states:
            if st.state == "done":
                summary["skipped"].append(st.cell.id)
                continue
            if st.state == "not_runnable":
                summary["not_runnable"].append((st.cell.id, st.message))
                continue
            if st.state == "changed":
                self.log(f"  {st.cell.id}: {st.message}; recomputing")
            try:
                lock = store.CellLock(self.results, st.cell.id).acquire()
            except store.LockHeld as err:
                summary["locked"].append(st.cell.id)
                self.log(f"  {st.cell.id}: skipped, {err}")
                left = [s for s in left if s is not st]
                continue
            try:
                if lock.took_over:
                    self.log(f"  {st.cell.id}: took over a stale lock of pid {lock.took_over.get('pid')}")
                again = store.read_result(self.results, st.cell.id)  # another runner may have finished it
                if again and again.get("status") == "ok" and again.get("hash") in C.accepted_hashes(st.spec, st.data):
                    summary["skipped"].append(st.cell.id)
                    left = [s for s in left if s is not st]
                    continue
                self.log(f"  {st.cell.id}: running ({', '.join(st.cell.claims)})")
                t0 = time.perf_counter()
                try:
                    payload = self.executor(st.cell, self.grid.scale, self.grid.plan["probe_seeds"],
                                            device=self.device, results_dir=self.results, run_key=st.hash)
                except BaseException as err:
                    # a signal, or an error the same SIGTERM caused (a killed loader worker): a stop
                    if isinstance(err, (Stopped, KeyboardInterrupt, SystemExit)) or flag["stopped"]:
                        summary["stopped"] = st.cell.id
                        self.log(f"  {st.cell.id}: stopped by a signal ({type(err).__name__}); released, it "
                                 "resumes from its last checkpoint next time")
                        raise Stopped(st.cell.id) from None
                    if not isinstance(err, Exception):
                        raise
                    # one failing cell must not stop the grid
                    self._record_failure(st.cell, err)
                    summary["failed"].append((st.cell.id, f"{type(err).__name__}: {err}"))
                    self.log(f"  {st.cell.id}: FAILED {type(err).__name__}: {str(err).splitlines()[0][:200]}")
                    left = [s for s in left if s is not st]
                    continue
                wall = time.perf_counter() - t0
                payload.setdefault("wall_s", wall)
                store.write_result(self.results, st.cell.id, {
                    **payload, "status": "ok", "cell": st.cell.id, "scale": self.grid.scale,
                    "claims": list(st.cell.claims), "seed": st.cell.seed, "hash": st.hash,
                    "spec_hash": st.spec_hash, "spec": st.spec, "data": st.data, "code": C.code_version(),
                    "host": socket.gethostname(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
                (self.results / FAILURES_DIR / f"{st.cell.id}.txt").unlink(missing_ok=True)  # an earlier failure
                summary["ran"].append(st.cell.id)
                left = [s for s in left if s is not st]
                done += 1
                if st.units and payload.get("wall_s"):
                    rate = _update_rate(rate, payload["wall_s"], st.units, len(summary["ran"]))
                self.log(f"  {st.cell.id}: done in {_fmt_s(payload['wall_s'])} (cpu {_fmt_s(payload.get('cpu_s', 0))})"
                         f" — {done}/{len(states)} done, {len(left)} left, ETA "
                         f"{_fmt_s(rate * sum(s.units for s in left))}")
            finally:
                lock.release()

    def _record_failure(self, cell: Cell, err: BaseException) -> None:
        folder = self.results / FAILURES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{cell.id}.txt").write_text("".join(traceback.format_exception(err)))


def _update_rate(rate: float, wall: float, units: float, n: int) -> float:
    """Running mean of seconds per unit, starting from the prior estimate."""
    return (rate * max(n - 1, 1) + wall / units) / (max(n - 1, 1) + 1)


# --------------------------------------------------------------------------- CLI
def _select(grid: Grid, only: Sequence[str] | None, cell_ids: Sequence[str] | None = None) -> list[Cell]:
    chosen = list(grid.cells.values())
    if only:
        for claim_id in only:
            grid.claim(claim_id)  # unknown ids fail with a did-you-mean
        chosen = grid.cells_for(only)
    if cell_ids:
        import difflib

        for cid in cell_ids:
            if cid not in grid.cells:
                close = difflib.get_close_matches(cid, list(grid.cells), n=2)
                hint = f" (did you mean {' or '.join(close)}?)" if close else ""
                raise KeyError(f"unknown cell {cid!r}{hint}; list them with --dry-run")
        chosen = [c for c in chosen if c.id in set(cell_ids)]
    return chosen


def _parser() -> argparse.ArgumentParser:
    from ..params import SCALES

    ap = argparse.ArgumentParser(prog="python -m workbench claims", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="demo", choices=SCALES)
    ap.add_argument("--only", nargs="+", metavar="ID", help=f"claim ids: {', '.join(CLAIM_IDS)}")
    ap.add_argument("--cells", nargs="+", metavar="CELL", help="run only these cells (ids as --dry-run lists them)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (probes, training)")
    ap.add_argument("--dry-run", action="store_true", help="list the cells, their state and the ETA; run nothing")
    ap.add_argument("--report-only", action="store_true", help="write the report and figures from results/ alone")
    ap.add_argument("--results", default=store.DEFAULT_RESULTS_DIR, help="folder of per-cell results")
    ap.add_argument("--figures", default="figures", help="folder of the report and the figures")
    ap.add_argument("--no-report", action="store_true", help="run cells only; write no report")
    ap.add_argument("overrides", nargs="*", help="devices=N: N worker processes (one per GPU with --device cuda)")
    return ap


def _devices(ap, overrides: Sequence[str]) -> int:
    n = 1
    for item in overrides:
        key, _, value = item.partition("=")
        if key != "devices" or not value.isdigit() or int(value) < 1:
            ap.error(f"unknown override {item!r}: the claims runner takes devices=N (N >= 1) only; the cells' "
                     "configurations are fixed by the registry (workbench/claims/registry.py)")
        n = int(value)
    return n


def _write_outputs(scale: str, results: Path, figures: str) -> None:
    from . import figures as F
    from . import report

    paths = report.write_report(scale, results, figures)
    print(f"report: {paths['md']} and {paths['json']}")
    for record in F.draw_all(scale, results, figures):
        print(f"  figure {record['name']}: {record['path'] or record['note']}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    n_devices = _devices(ap, args.overrides)
    results = store.results_dir(args.scale, args.results)
    if args.report_only:
        _write_outputs(args.scale, results, args.figures)
        return 0
    grid = build_grid(args.scale)
    try:
        chosen = _select(grid, args.only, args.cells)
    except KeyError as err:
        ap.error(str(err.args[0]))
    if args.dry_run:
        states = plan_states(grid, chosen, results)
        whole = plan_states(grid, list(grid.cells.values()), results, with_data=False)  # planned once, two rates
        rate = grid_rate(grid, results, states=whole)
        for st in states:
            extra = f" — {st.message}" if st.message else ""
            print(f"{st.state:12s} {st.cell.id:45s} ~{_fmt_s(rate * st.units):>8s} {','.join(st.cell.claims)}{extra}")
        left = [st for st in states if st.state in ("todo", "changed", "locked")]
        cpu_rate = grid_rate(grid, results, "cpu_s", states=whole)
        print("\nper claim (each cell counted once, under the first claim that needs it):")
        by_claim: dict[str, list[CellState]] = {}
        for st in states:
            by_claim.setdefault(st.cell.claims[0], []).append(st)
        for claim_id, group in by_claim.items():
            todo = [st for st in group if st.state in ("todo", "changed", "locked")]
            units = sum(st.units for st in todo)
            print(f"  {claim_id:12s} {len(group):4d} cells, {len(todo):4d} left: ~{_fmt_s(rate * units)} wall, "
                  f"~{_fmt_s(cpu_rate * units)} CPU")
        print(f"{len(states)} cells: {sum(s.state == 'done' for s in states)} done, {len(left)} left "
              f"(ETA {_fmt_s(rate * sum(s.units for s in left))} at {rate:.2f} s/unit on one worker; CPU "
              f"~{_fmt_s(cpu_rate * sum(s.units for s in left))} at {cpu_rate:.2f} CPU s/unit), "
              f"{sum(s.state == 'not_runnable' for s in states)} not runnable")
        return 0
    if n_devices > 1:
        return _spawn(args, n_devices, results)
    summary = Runner(grid, results, device=args.device).run(chosen)
    print(f"ran {len(summary['ran'])}, skipped {len(summary['skipped'])} finished, {len(summary['locked'])} in "
          f"flight elsewhere, {len(summary['not_runnable'])} not runnable, {len(summary['failed'])} failed")
    for cell_id, message in summary["not_runnable"]:
        print(f"  not runnable yet: {cell_id}: {message}")
    for cell_id, message in summary["failed"]:
        print(f"  FAILED {cell_id}: {message[:300]} (traceback: {results / FAILURES_DIR / (cell_id + '.txt')})")
    if summary["stopped"]:
        print(f"stopped during {summary['stopped']}: run the same command again to resume", file=sys.stderr)
        from ..cli import INTERRUPTED_STATUS

        return INTERRUPTED_STATUS
    if not args.no_report:
        _write_outputs(args.scale, results, args.figures)
    return 1 if summary["failed"] else 0


def worker_env(env, k: int, n: int, device: str, cores: int | None = None) -> dict:
    """The environment of worker ``k`` of ``n``: its GPU (``CUDA_VISIBLE_DEVICES=k``) with
    ``--device cuda``; on the CPU an equal share of the cores as a fixed thread count
    (``WORKBENCH_THREADS = cores // n``, at least 1; a count the user set is kept). Two
    one-thread trainings side by side give 1.42x the throughput of one two-thread training on
    a 2-core CPU (``benchmarks/contention.py``, ``pair``)."""
    from ..threads import ENV_THREADS, cores_share

    out = dict(env)
    if device.startswith("cuda"):
        out["CUDA_VISIBLE_DEVICES"] = str(k)
    elif out.get(ENV_THREADS, "").strip() in ("", "0"):
        out[ENV_THREADS] = str(cores_share(n, cores))
    return out


def _spawn(args, n: int, results: Path) -> int:
    """N worker runners on one grid (the locks keep them apart); then the report."""
    base = [sys.executable, "-m", "workbench", "claims", "--scale", args.scale, "--device", args.device,
            "--results", args.results, "--figures", args.figures, "--no-report"]
    if args.only:
        base += ["--only", *args.only]
    if args.cells:
        base += ["--cells", *args.cells]
    procs = []
    for k in range(n):
        procs.append(subprocess.Popen(base, env=worker_env(os.environ, k, n, args.device)))
        time.sleep(1.0)  # stagger: the first worker takes the first cell
    codes = [p.wait() for p in procs]
    if not args.no_report:
        _write_outputs(args.scale, results, args.figures)
    return max(codes)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
