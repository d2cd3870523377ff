"""Byte-identity check of the embedded benchmark generator across a refactoring.

Renders one scale with a fixed seed and writes (``--write``) or compares (``--check``) the
sha256 of every file of the tree (``SYNTHETIC.json`` aside: it holds timestamps)::

    python -m tests.render_identity --write /tmp/before.json    # on the old code
    python -m tests.render_identity --check /tmp/before.json    # on the new code: exit 1 on any difference

A fingerprint is only comparable on one machine (the MP3 encoder and FluidSynth versions
are part of the bytes), so it is not committed; the tests check determinism instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

MARKER = "SYNTHETIC.json"


def fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path (the timestamped marker left out)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MARKER}


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable lines for every file missing, added or changed between two fingerprints."""
    lines = [f"missing: {k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"added:   {k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"changed: {k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return lines


def render_fingerprint(scale: str, seed: int) -> dict[str, str]:
    from workbench.data import render

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench"
        render.render(out, scale, seed=seed, progress=False)
        return fingerprint(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.render_identity", description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, help="write the fingerprint of a fresh render here")
    mode.add_argument("--check", type=Path, help="compare a fresh render with this fingerprint")
    args = ap.parse_args(argv)
    fp = render_fingerprint(args.scale, args.seed)
    if args.write:
        args.write.write_text(json.dumps({"scale": args.scale, "seed": args.seed, "files": fp}, indent=1) + "\n")
        print(f"{len(fp)} files fingerprinted -> {args.write}")
        return 0
    ref = json.loads(args.check.read_text())
    if (ref["scale"], ref["seed"]) != (args.scale, args.seed):
        print(f"fingerprint is of scale {ref['scale']} seed {ref['seed']}; pass --scale/--seed to match")
        return 2
    diff = differences(ref["files"], fp)
    if diff:
        print(f"{len(diff)} of {len(ref['files'])} files differ:\n" + "\n".join(diff[:40]))
        return 1
    print(f"byte-identical: all {len(fp)} files")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
