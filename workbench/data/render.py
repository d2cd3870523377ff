"""``python -m workbench data render``: render the embedded benchmark (:mod:`workbench.data.embedded`).

The generator itself lives in :mod:`workbench.data.embedded` (one module per stand-in data
set, a runner); this module is the CLI verb and keeps the names it always exported
(``render``, ``ensure_rendered``, ``default_out``, ``GENERATOR_VERSION``, ``SCALES``, …).

CLI: ``python -m workbench data render --out DIR --scale tiny|demo|full --seed N``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .embedded import (GENERATOR_VERSION, MARKER, RENDER_SAMPLE_RATE, SCALES, TEST_SOUNDFONTS, TRAIN_SOUNDFONTS,
                       Item, Scale, ensure_rendered, format_summary, render)
from .roots import embedded_path

__all__ = ["GENERATOR_VERSION", "MARKER", "RENDER_SAMPLE_RATE", "SCALES", "Scale", "TRAIN_SOUNDFONTS",
           "TEST_SOUNDFONTS", "Item", "default_out", "ensure_rendered", "format_summary", "main", "render"]


def default_out(scale: str, seed: int) -> Path:
    """Where the embedded benchmark of ``scale``/``seed`` is cached (as :func:`roots.embedded_dir` reads it)."""
    return embedded_path(scale, seed)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m workbench data render --out DIR --scale tiny|demo|full --seed N``."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench data render",
        description="Render the embedded music benchmark (NSynth, GiantSteps key, MagnaTagATune and FMA "
                    "layouts) from MIDI with FluidSynth and General MIDI SoundFonts.")
    parser.add_argument("--scale", choices=list(SCALES), default="demo", help="size preset (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of all musical material (default: 0)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the embedded cache, $WORKBENCH_CACHE/embedded/"
                             "<scale>-seed<seed>-v<version>, which the data API reads)")
    parser.add_argument("--force", action="store_true", help="render again even if --out is already rendered")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    out = (args.out or default_out(args.scale, args.seed)).expanduser().absolute()
    if (out / MARKER).exists() and not args.force:
        meta = json.loads((out / MARKER).read_text())
        print(f"already rendered: {out} (use --force to render again)")
        print(format_summary(meta))
        return 0
    print(f"rendering the embedded benchmark (scale {args.scale}, seed {args.seed}) into {out}", flush=True)
    t0 = time.perf_counter()
    meta = render(out, args.scale, args.seed, progress=not args.no_progress)
    print(format_summary(meta))
    print(f"wall time {time.perf_counter() - t0:.1f} s; SoundFonts: "
          + "; ".join(f"{n} ({meta['soundfonts'][n]['splits']})" for n in meta["soundfonts"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
