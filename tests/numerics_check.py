"""Numerics check for refactorings: the same seed gives the same numbers and bytes.

Records, for a fixed seed, the per-step losses of smoke pretraining runs (SemiSupCon with
a support task, and SimCLR), the metrics of a probe with a fixed budget on the SemiSupCon
checkpoint, the per-step losses of a COLA-MSA smoke run, and the sha256 of the tiny
embedded benchmark as rendered.  Training and probing read a small data set this script
writes itself (NSynth and FMA layouts, seeded sines and noise), so that they check the
training code alone, whatever the embedded generator renders.  Run it on the code before a refactoring with ``--write``
and after with ``--check``::

    python tests/numerics_check.py --write tests/numerics_reference.json
    python tests/numerics_check.py --check tests/numerics_reference.json

Training runs in one thread, fp32, no loader workers, so the numbers are reproducible on
one machine (another CPU or library build may differ in the last bits: write the
reference and check on the same machine).  The render part is skipped, with a note, when
the embedded generator's ``GENERATOR_VERSION`` differs from the reference's (a changed
generator is meant to change its bytes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path

#: Absolute tolerance on losses and metrics (bitwise equality is expected; this only absorbs
#: the JSON float round trip).
TOLERANCE = 1e-6
SEED = 0
STEPS = 4
PROBE_EPOCHS = 3


def _setup(tmp: Path) -> None:
    os.environ["WORKBENCH_CACHE"] = str(tmp / "cache")  # a fresh render, checked byte for byte
    os.environ["WORKBENCH_EMBEDDED_SCALE"] = "tiny"
    os.environ.pop("WORKBENCH_DATA", None)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["WORKBENCH_THREADS"] = "1"  # workbench.threads: one torch thread inside training and probes too
    import torch

    torch.set_num_threads(1)


def _losses(run_dir: Path, column: str = "loss") -> list[float]:
    import pandas as pd

    df = pd.read_csv(run_dir / "metrics.csv")
    return [float(v) for v in df.sort_values("step")[column].dropna()]


def _generator_version() -> str:
    try:
        from workbench.data.render import GENERATOR_VERSION
    except ImportError:  # the generator moved into workbench.data.embedded
        from workbench.data.embedded import GENERATOR_VERSION  # type: ignore[no-redef]
    return str(GENERATOR_VERSION)


def _tree_sha256(root: Path) -> str:
    """sha256 over every file below ``root`` (relative path + bytes), JSON files excluded
    (they record wall times)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".json"):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _fixture(root: Path) -> tuple[Path, Path]:
    """A seeded NSynth-layout support set (sines at 12 pitches, 3 families) and an FMA-layout
    pool with stems (noise mixes, noise and sine stems); returns their roots."""
    import numpy as np
    import soundfile as sf

    sr = 16000
    rng = np.random.default_rng(SEED)
    t = np.arange(sr) / sr
    nsynth = root / "nsynth"
    for split, n in (("train", 24), ("valid", 8), ("test", 8)):
        folder = nsynth / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True)
        examples = {}
        for i in range(n):
            pitch, family = 60 + i % 12, i % 3
            name = f"inst{family}_{split}_{i:03d}-{pitch:03d}-100"
            x = 0.3 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t) + 0.01 * rng.standard_normal(sr)
            sf.write(folder / "audio" / f"{name}.wav", x.astype(np.float32), sr, subtype="FLOAT")
            examples[name] = {"note_str": name, "pitch": pitch, "velocity": 100, "instrument_family": family,
                              "instrument_str": f"inst{family}"}
        (folder / "examples.json").write_text(json.dumps(examples))
    fma = root / "fma"
    folder = fma / "fma_medium" / "000"
    folder.mkdir(parents=True)
    n = 3 * sr
    for i in range(12):
        track = f"{i + 2:06d}"
        sf.write(folder / f"{track}.mp3", (0.3 * rng.standard_normal(n)).astype(np.float32), sr)
        stems = folder / f"{track}.stems"
        stems.mkdir()
        sf.write(stems / "drums.wav", (0.3 * rng.standard_normal(n)).astype(np.float32), sr, subtype="FLOAT")
        bass = 0.3 * np.sin(2 * np.pi * (55 + 5 * i) * np.arange(n) / sr)
        sf.write(stems / "bass.wav", bass.astype(np.float32), sr, subtype="FLOAT")
    return nsynth, fma


def measure(tmp: Path) -> dict:
    _setup(tmp)
    from workbench.config import resolve_config
    from workbench.data.roots import embedded_dir
    from workbench.train.cola import resolve_cola_config, train_cola
    from workbench.train.pretrain import pretrain

    bench = embedded_dir("tiny", SEED)
    out: dict = {"generator_version": _generator_version(), "render_sha256": _tree_sha256(bench)}
    nsynth, fma = _fixture(tmp / "data")
    common = dict(steps=STEPS, num_workers=0, precision="32-true", seed=SEED, checkpoint_every=STEPS)
    roots = dict(unlabeled_root=str(fma))
    semi = pretrain(resolve_config("smoke", "semisupcon", support="nsynth_pitch", b_s=0.5, p=0.5,
                                   support_root=str(nsynth), runs_dir=str(tmp / "semi"), **roots, **common),
                    progress=False)
    out["semisupcon_loss"] = _losses(semi)
    simclr = pretrain(resolve_config("smoke", "simclr", runs_dir=str(tmp / "simclr"), **roots, **common),
                      progress=False)
    out["simclr_loss"] = _losses(simclr)

    from workbench.probe import probe_task

    records = probe_task(str(semi / "checkpoints" / "last.ckpt"), "nsynth_pitch", seeds=(SEED,), root=str(nsynth),
                         cache_dir=tmp / "emb", extract_kwargs={"max_chunks": 2},
                         probe_kwargs={"threads": 1, "max_epochs": PROBE_EPOCHS, "patience": PROBE_EPOCHS},
                         probe_dir=tmp / "probes", progress=False)
    out["probe"] = {k: float(v) for r in records for k, v in r["metrics"].items()}
    import torch

    blob = torch.load(tmp / "probes" / "nsynth_pitch-seed0.pt", map_location="cpu", weights_only=True)
    out["probe"]["history_sum"] = float(sum(sum(map(float, h)) for h in blob["history"]))
    out["probe"]["weight_sum"] = float(sum(v.double().sum() for v in blob["state_dict"].values()))
    ckpt = torch.load(semi / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    digest = hashlib.sha256()
    for k, v in ckpt["state_dict"].items():
        if k.startswith("encoder."):
            digest.update(k.encode())
            digest.update(v.detach().cpu().contiguous().numpy().tobytes())
    out["encoder_sha256"] = digest.hexdigest()  # the trained weights, bit for bit

    # the COLA recipe the reference was written with (issue 13 changed the defaults to the poster's)
    cola_v1 = dict(head="cola", normalize=False, bilinear_init_std=0.05, temperature=1.0, silence="skip",
                   stem_sampling="example")
    cola = train_cola(resolve_cola_config("smoke", pool_splits=["train", "valid", "test"], pool_root=str(fma),
                                          runs_dir=str(tmp / "cola"), **cola_v1, **common), progress=False)
    out["cola_loss"] = _losses(cola)
    return out


def compare(ref: dict, now: dict) -> list[str]:
    problems = []
    for key in ("semisupcon_loss", "simclr_loss", "cola_loss"):
        a, b = ref.get(key, []), now.get(key, [])
        if len(a) != len(b) or any(not math.isclose(x, y, rel_tol=0, abs_tol=TOLERANCE) for x, y in zip(a, b)):
            problems.append(f"{key}: reference {a} != now {b}")
    for k, v in ref.get("probe", {}).items():
        w = now.get("probe", {}).get(k)
        if w is None or not math.isclose(v, w, rel_tol=0, abs_tol=TOLERANCE):
            problems.append(f"probe {k}: reference {v} != now {w}")
    if ref.get("encoder_sha256") != now.get("encoder_sha256"):
        problems.append(f"SemiSupCon encoder sha256: reference {ref.get('encoder_sha256')} != now "
                        f"{now.get('encoder_sha256')}")
    if ref.get("generator_version") != now.get("generator_version"):
        print(f"note: render check skipped: GENERATOR_VERSION {now.get('generator_version')} differs from the "
              f"reference's {ref.get('generator_version')} (the embedded generator changed on purpose)")
    elif ref.get("render_sha256") != now.get("render_sha256"):
        problems.append(f"render sha256: reference {ref.get('render_sha256')} != now {now.get('render_sha256')}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="REF.json", help="measure and write the reference")
    group.add_argument("--check", metavar="REF.json", help="measure and compare with the reference")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="numerics-") as tmp:
        now = measure(Path(tmp))
    if args.write:
        Path(args.write).write_text(json.dumps(now, indent=2) + "\n")
        print(f"wrote {args.write}")
        return 0
    problems = compare(json.loads(Path(args.check).read_text()), now)
    for p in problems:
        print(f"DIFFERS {p}")
    print("numerics unchanged" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
