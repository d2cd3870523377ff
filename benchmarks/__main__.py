"""``python -m benchmarks`` (``make bench``): run every benchmark, one process each, and
write ``benchmarks/results.json`` with each one's JSON line (both sides' timings and the
ratio, measured side by side in the same process) plus the machine it ran on."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

#: Benchmarks in the order they run; each prints one JSON line as its last stdout line.
#: ``demo`` (the whole ``make demo`` twice from empty caches, ~20 min) runs last.
BENCHMARKS = ("augment", "encoder", "data_cache", "probe", "loader", "contention", "demo")
RESULTS = Path(__file__).resolve().parent / "results.json"


def run_one(name: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"name": name, "error": (proc.stderr or proc.stdout).strip()[-2000:]}
    return json.loads(lines[-1])


def _previous() -> list[dict]:
    try:
        return list(json.loads(RESULTS.read_text()).get("results", []))
    except (OSError, ValueError):
        return []


def merge_results(previous: list[dict], latest: list[dict]) -> list[dict]:
    """Running some benchmarks replaces only their entries; the others keep their last run
    (each entry says when it was measured), in the order of :data:`BENCHMARKS`."""
    by_name = {r.get("name"): r for r in previous}
    by_name.update({r.get("name"): r for r in latest})
    order = {n: i for i, n in enumerate(BENCHMARKS)}
    return sorted(by_name.values(), key=lambda r: order.get(r.get("name"), len(order)))


def main() -> int:
    import os

    only = sys.argv[1:] or BENCHMARKS
    results = []
    for name in only:
        if not (Path(__file__).parent / f"{name}.py").exists():
            print(f"skipping unknown benchmark {name}", file=sys.stderr)
            continue
        print(f"== benchmarks.{name}", flush=True)
        res = run_one(name)
        results.append(res)
        print(json.dumps({k: res.get(k) for k in ("name", "baseline_s", "fast_s", "ratio", "new_fraction",
                                                   "quiet_ratio", "time_fraction", "error") if k in res}),
              flush=True)
    now = datetime.now(timezone.utc).isoformat()
    for res in results:
        res["measured_at"] = now
    out = {"time": now, "machine": platform.platform(), "cpu_count": os.cpu_count(),
           "results": merge_results(_previous(), results)}
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
