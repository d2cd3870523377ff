"""VocalSet (Wilkins et al. 2018): ``vocalset_singer`` and ``vocalset_technique``.

Layout: the root holds ``FULL/`` (or is ``FULL/`` itself)::

    FULL/<singer>/<context>/<technique>/<file>.wav    e.g. FULL/female1/arpeggios/belt/f1_arpeggios_belt_a.wav
    test_singers_technique.txt                        (optional, ships with VocalSet 1.1/1.2)

``vocalset_singer``: 20 singers (natural order female1 ... male11); every singer is in
every split: each singer's files are split 80/10/10 by a seeded hash
(:data:`SINGER_SPLIT_FRACTIONS`, :data:`SPLIT_SEED`).
``vocalset_technique``: the technique folder names (17 in VocalSet, e.g. belt, breathy,
vibrato, vocal_fry); singer-disjoint: the test singers are those of VocalSet's own
``test_singers_technique.txt`` (fallback :data:`TECHNIQUE_TEST_SINGERS`, the same five),
and the highest-numbered remaining singer of each gender is the validation set
(female9 and male11 with the full data).  The singer split is in the manifest's ``split``
column and :func:`technique_singer_split`; docs/datasets.md writes it out.
Wav files not under ``<singer>/<context>/<technique>/`` (and macOS ``._*`` files) are
ignored; deeper nesting is fine (the technique is the third folder).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..tasks import Task
from ._common import ensure_rows, hashed_split, layout_error, natural_key, task_root, usable_manifest, warn

__all__ = ["build", "technique_singer_split", "TECHNIQUE_TEST_SINGERS"]

DATASET = "vocalset"
FULL = "FULL"
TEST_SINGERS_FILE = "test_singers_technique.txt"
TECHNIQUE_TEST_SINGERS = ("female2", "female8", "male3", "male5", "male10")
SINGER_SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
SPLIT_SEED = 0
LAYOUT = f"""\
  {FULL}/<singer>/<context>/<technique>/<file>.wav   (singer e.g. female1, context e.g. arpeggios)
  {TEST_SINGERS_FILE}                         (optional: the technique task's test singers, one per line)"""
EXTRAS = ("singer", "context", "technique")
_SINGER = re.compile(r"^(female|male|f|m)\s*0*(\d+)$", re.IGNORECASE)


def canonical_singer(name: str) -> str:
    """``F2`` / ``f2`` / ``Female2`` -> ``female2`` (other names unchanged, lower-cased)."""
    m = _SINGER.match(name.strip())
    if not m:
        return name.strip().lower()
    gender = "female" if m.group(1).lower().startswith("f") else "male"
    return f"{gender}{int(m.group(2))}"


def full_folder(root: Path) -> Path:
    if (root / FULL).is_dir():
        return root / FULL
    if root.name == FULL:
        return root
    raise layout_error(DATASET, root / FULL, LAYOUT)


def _test_singers(root: Path, full: Path) -> tuple[list[str], str]:
    for f in (root / TEST_SINGERS_FILE, full.parent / TEST_SINGERS_FILE):
        if f.exists():
            names = [canonical_singer(t) for t in re.split(r"[\s,]+", f.read_text()) if t.strip()]
            return names, str(f)
    return list(TECHNIQUE_TEST_SINGERS), "built-in list"


def technique_singer_split(singers: list[str], test_singers: list[str]) -> dict[str, str]:
    """Singer -> split for the technique task: given test singers; per gender (the name without
    digits) the highest-numbered remaining singer is valid; the rest train."""
    split = {s: "test" if s in test_singers else "train" for s in singers}
    groups: dict[str, list[str]] = {}
    for s in singers:
        if split[s] == "train":
            groups.setdefault(re.sub(r"\d+", "", s), []).append(s)
    for members in groups.values():
        if len(members) > 1:
            split[max(members, key=natural_key)] = "valid"
    return split


def scan(full: Path) -> list[dict]:
    rows, skipped = [], 0
    for f in sorted(full.rglob("*"), key=lambda p: natural_key(str(p))):
        if f.suffix.lower() != ".wav" or not f.is_file():
            continue
        parts = f.relative_to(full).parts
        if f.name.startswith("._") or len(parts) < 4:
            skipped += 1
            continue
        singer, context, technique = canonical_singer(parts[0]), parts[1], parts[2]
        rows.append({"id": f.relative_to(full).with_suffix("").as_posix(), "path": str(f), "singer": singer,
                     "context": context, "technique": technique})
    if skipped:
        warn(DATASET, f"{skipped} wav file(s) not under {FULL}/<singer>/<context>/<technique>/ ignored.")
    return rows


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``vocalset_singer`` or ``vocalset_technique``."""
    root = task_root(spec, root, DATASET, ("vocalset_singer", "vocalset_technique"))
    full = full_folder(root)
    rows = scan(full)
    if not rows:
        raise layout_error(DATASET, full / "<singer>/<context>/<technique>/<file>.wav", LAYOUT)
    df = usable_manifest([{**r, "split": None, "target": None} for r in rows], DATASET, EXTRAS)
    singers = sorted(df["singer"].unique(), key=natural_key)
    if spec.name == "vocalset_singer":
        classes = singers
        df["split"] = None
        for singer, idx in df.groupby("singer").groups.items():
            df.loc[idx, "split"] = hashed_split(df.loc[idx, "id"].tolist(), SINGER_SPLIT_FRACTIONS, SPLIT_SEED,
                                                salt=f"{DATASET}:{singer}")
        df["target"] = df["singer"].map({s: i for i, s in enumerate(classes)}).astype(int)
    else:
        test, source = _test_singers(root, full)
        unknown = sorted(set(test) - set(singers))
        if unknown:
            warn(DATASET, f"test singer(s) {unknown} from {source} have no audio under {full}.")
        split = technique_singer_split(singers, test)
        df["split"] = df["singer"].map(split)
        classes = sorted(df["technique"].unique(), key=natural_key)
        df["target"] = df["technique"].map({t: i for i, t in enumerate(classes)}).astype(int)
    ensure_rows(df, DATASET, root, LAYOUT)
    return df, list(classes)
