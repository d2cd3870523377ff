"""GTZAN (Tzanetakis & Cook 2002): ``gtzan_genre`` with the fault-filtered split.

Layout: the root is the folder holding ``genres/`` or ``genres/`` itself
(Kaggle's ``genres_original/`` is accepted too)::

    genres/<genre>/<genre>.000NN.wav     (or .au, the original distribution)

The split is the fault-filtered one of Kereliuk et al. / Pons (443 train, 197 valid,
290 test clips; duplicates, distortions and mislabelings removed), shipped as
``gtzan_splits.json`` beside this module; it was extracted once from torchaudio's GTZAN
module source (``python -m workbench.data.loaders.gtzan --extract <gtzan.py>``).
Files outside the lists are excluded.  The known broken file of the Kaggle copy
(``jazz.00054``, which libsndfile cannot open) is dropped with a warning when unreadable.
10 classes: blues, classical, country, disco, hiphop, jazz, metal, pop, reggae, rock.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..tasks import Task
from ._common import layout_error, task_root, usable_manifest, warn

__all__ = ["GENRES", "SPLITS_FILE", "build", "extract_splits", "load_splits"]

DATASET = "gtzan"
GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
SPLITS_FILE = Path(__file__).with_name("gtzan_splits.json")
GENRE_FOLDERS = ("genres", "genres_original")
EXTENSIONS = (".wav", ".au")
KNOWN_UNREADABLE = ("jazz.00054",)
SOURCE_LISTS = {"train": "filtered_train", "valid": "filtered_valid", "test": "filtered_test"}
LAYOUT = """\
  genres/<genre>/<genre>.000NN.wav   (or .au; the root may also be genres/ itself)
  genres: blues classical country disco hiphop jazz metal pop reggae rock"""
EXTRAS = ("genre",)


@lru_cache(maxsize=1)
def load_splits() -> dict[str, list[str]]:
    """split -> clip ids (``blues.00012``) of the fault-filtered split."""
    d = json.loads(SPLITS_FILE.read_text())
    return {s: list(d[s]) for s in ("train", "valid", "test")}


def extract_splits(source: Path) -> dict[str, list[str]]:
    """Read the ``filtered_*`` lists from torchaudio's ``gtzan.py`` source without importing it."""
    tree = ast.parse(Path(source).read_text())
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            for split, var in SOURCE_LISTS.items():
                if name == var:
                    found[split] = list(ast.literal_eval(node.value))
    missing = [v for s, v in SOURCE_LISTS.items() if s not in found]
    if missing:
        raise ValueError(f"{source} defines no {missing}; is it torchaudio's datasets/gtzan.py?")
    return found


def genres_folder(root: Path) -> Path:
    """The folder holding one sub-folder per genre."""
    for name in GENRE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    if any((root / g).is_dir() for g in GENRES):
        return root
    raise layout_error(DATASET, root / "genres", LAYOUT)


def _readable(path: Path) -> bool:
    import soundfile as sf

    try:
        sf.info(str(path))
        return True
    except Exception:  # soundfile raises several types for corrupt files
        return False


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``gtzan_genre`` (fault-filtered split)."""
    root = task_root(spec, root, DATASET, ("gtzan_genre",))
    folder = genres_folder(root)
    rows, unreadable = [], []
    for split, ids in load_splits().items():
        for clip in ids:
            genre = clip.split(".", 1)[0]
            candidates = [folder / genre / f"{clip}{ext}" for ext in EXTENSIONS]
            path = next((c for c in candidates if c.exists()), candidates[0])
            if clip in KNOWN_UNREADABLE and path.exists() and path.stat().st_size > 0 and not _readable(path):
                unreadable.append(clip)
                continue
            rows.append({"id": clip, "path": str(path), "split": split, "target": GENRES.index(genre),
                         "genre": genre})
    if unreadable:
        warn(DATASET, f"known unreadable file(s) {unreadable} dropped (a broken copy in some GTZAN downloads).")
    df = usable_manifest(rows, DATASET, EXTRAS, root=root, layout=LAYOUT)
    return df, list(GENRES)


def main(argv: list[str] | None = None) -> int:
    """Regenerate ``gtzan_splits.json`` from torchaudio's ``gtzan.py`` (a source file, not imported)."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--extract", type=Path, required=True, help="path of torchaudio/datasets/gtzan.py")
    p.add_argument("--out", type=Path, default=SPLITS_FILE)
    args = p.parse_args(argv)
    splits = extract_splits(args.extract)
    payload = {"source": "torchaudio.datasets.gtzan filtered_{train,valid,test} "
                         "(fault-filtered split of jordipons/sklearn-audio-transfer-learning)",
               **splits}
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
