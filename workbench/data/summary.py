"""Per-task data summary: clips and seconds per split, classes, provenance (SoundFonts if synthetic)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..audio import AudioError, info
from . import data_root, manifest, task
from .embedded import STAND_INS
from .tasks import TASKS

__all__ = ["summarize", "format_summary", "main", "DEMO_TASKS", "EMBEDDED_TASKS"]

#: The tasks the embedded benchmark provides (and the demo probes / pretrains on).
DEMO_TASKS = ("nsynth_pitch", "nsynth_instrument", "giantsteps_key", "mtat_top50", "fma_medium")
#: Every task the embedded benchmark provides (``data summary`` lists them by default).
EMBEDDED_TASKS = tuple(t for m in STAND_INS for t in m.TASKS)


def _seconds(paths) -> float:
    total = 0.0
    for p in paths:
        try:
            total += info(p).duration
        except AudioError:
            pass
    return total


def summarize(names=DEMO_TASKS, root: str | Path | None = None) -> pd.DataFrame:
    """One row per task and split: clips, seconds, classes present, data root, synthetic, SoundFonts."""
    rows = []
    for name in names:
        spec, df, where = task(name, root), manifest(name, root), data_root(name, root)
        fonts = _soundfonts(where.path)
        for split, part in df.groupby("split", sort=False):
            present = set()
            for t in part["target"]:
                if t is None:
                    continue
                present.update([t] if isinstance(t, int) else ([] if spec.kind == "regression" else list(t)))
            rows.append({
                "task": name, "split": split, "clips": len(part), "seconds": round(_seconds(part["path"]), 1),
                "classes": f"{len(present)}/{len(spec.classes)}" if spec.classes else "-",
                "synthetic": where.synthetic, "soundfonts": ", ".join(fonts.get(split, [])) or "-",
                "root": str(where.path),
            })
    return pd.DataFrame(rows)


def _soundfonts(dataset_dir: Path) -> dict[str, list[str]]:
    """SoundFonts per split of one data set, from the benchmark's SYNTHETIC.json (empty for real data)."""
    dataset_dir = Path(dataset_dir)
    marker = dataset_dir.parent / "SYNTHETIC.json"
    if not marker.exists():
        return {}
    by_split = json.loads(marker.read_text()).get("soundfonts_by_split", {}).get(dataset_dir.name, {})
    if set(by_split) == {"unlabeled"}:  # an unlabelled pool: every split uses the same fonts
        return {split: by_split["unlabeled"] for split in ("train", "valid", "test")}
    return by_split


def format_summary(df: pd.DataFrame) -> str:
    return df.drop(columns=["root"]).to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="workbench data summary", description=__doc__)
    ap.add_argument("tasks", nargs="*", default=list(EMBEDDED_TASKS), help=f"task names (known: {', '.join(TASKS)})")
    ap.add_argument("--root", help="data root (default: $WORKBENCH_DATA or the embedded benchmark)")
    args = ap.parse_args(argv)
    df = summarize(args.tasks, args.root)
    print(format_summary(df))
    return 0

