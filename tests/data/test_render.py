"""The embedded benchmark generator (``workbench.data.embedded``) at the ``tiny`` scale.

Labels are checked by independent analysis written here (a YIN f0 estimate for NSynth
pitches, a Krumhansl-Schmuckler key estimate for GiantSteps keys, high-frequency
transient energy for MTAT's drums tag), the layouts against the real files' formats,
and determinism by hashing two renders of one seed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench.data import embedded, render
from workbench.data.embedded import nsynth as nsynth_stand_in
from workbench.data.embedded import runner
from workbench.data.tasks import KEY_CLASSES, NSYNTH_FAMILIES

SR = 16000
NSYNTH_FIELDS = {"note", "note_str", "pitch", "velocity", "instrument", "instrument_str", "instrument_family",
                 "instrument_family_str", "instrument_source", "instrument_source_str", "sample_rate", "qualities",
                 "qualities_str"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    """The tiny benchmark, rendered once per test session (shared by pytest-xdist workers through
    ensure_rendered's lock; the folder name carries a hash of the generator's source)."""
    source = b"".join(p.read_bytes() for p in sorted(Path(embedded.__file__).parent.glob("*.py")))
    name = f"render-tiny-seed0-{hashlib.sha1(source).hexdigest()[:12]}"
    out = embedded.ensure_rendered(tmp_path_factory.getbasetemp().parent / name, "tiny", 0)
    return out, json.loads((out / embedded.MARKER).read_text())


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != embedded.MARKER}


# --------------------------------------------------------------------------- independent analysis
def _yin_f0(x: np.ndarray, sr: int, fmin: float = 40.0, fmax: float = 1000.0, threshold: float = 0.15) -> float:
    """YIN (de Cheveigné & Kawahara 2002) on one frame: cumulative mean normalised difference."""
    max_lag, min_lag = int(sr / fmin), int(sr / fmax)
    w = len(x) - max_lag
    d = np.array([np.sum((x[:w] - x[lag:lag + w]) ** 2) for lag in range(max_lag + 1)])
    cmnd = np.ones_like(d)
    cmnd[1:] = d[1:] * np.arange(1, len(d)) / np.maximum(np.cumsum(d[1:]), 1e-12)
    below = np.flatnonzero(cmnd[min_lag:] < threshold)
    if below.size:
        lag = min_lag + below[0]
        while lag + 1 < len(cmnd) and cmnd[lag + 1] < cmnd[lag]:
            lag += 1
    else:
        lag = min_lag + int(np.argmin(cmnd[min_lag:]))
    if 1 <= lag < len(cmnd) - 1:  # parabolic interpolation
        a, b, c = cmnd[lag - 1], cmnd[lag], cmnd[lag + 1]
        lag = lag + 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else lag
    return sr / lag


# Krumhansl-Kessler key profiles (Krumhansl 1990), C major / C minor.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
FLATS = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
SHARP_TO_FLAT = {"C#": "Db", "D#": "Eb", "F#": "Gb", "G#": "Ab", "A#": "Bb"}


def _chroma(x: np.ndarray, sr: int, n_fft: int = 4096) -> np.ndarray:
    hop = n_fft // 2
    frames = np.array([x[i:i + n_fft] * np.hanning(n_fft) for i in range(0, len(x) - n_fft, hop)])
    mag = np.abs(np.fft.rfft(frames, axis=1)).sum(axis=0)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    band = (freqs > 55) & (freqs < 2000)
    pcs = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % 12
    chroma = np.zeros(12)
    np.add.at(chroma, pcs, mag[band])
    return chroma


def _ks_key(x: np.ndarray, sr: int) -> str:
    c = _chroma(x, sr)
    scores = {f"{FLATS[t]} {mode}": np.corrcoef(c, np.roll(profile, t))[0, 1]
              for t in range(12) for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR))}
    return max(scores, key=scores.get)


def _fold(label: str) -> str:
    tonic, mode = label.split()
    return f"{SHARP_TO_FLAT.get(tonic, tonic)} {mode}"


# --------------------------------------------------------------------------- layout
def test_nsynth_layout_and_fields(tiny):
    out, meta = tiny
    sc = embedded.SCALES["tiny"]
    seen: set[str] = set()
    for split in ("train", "valid", "test"):
        folder = out / "nsynth" / f"nsynth-{split}"
        examples = json.loads((folder / "examples.json").read_text())
        assert examples, split
        assert not seen & set(examples), "note_str ids must be unique across splits, as in NSynth"
        seen |= set(examples)
        wavs = sorted(p.stem for p in (folder / "audio").glob("*.wav"))
        assert wavs == sorted(examples), f"{split}: examples.json and audio/ disagree"
        for note_str, ex in examples.items():
            assert set(ex) == NSYNTH_FIELDS
            assert ex["note_str"] == note_str == f"{ex['instrument_str']}-{ex['pitch']:03d}-{ex['velocity']:03d}"
            assert ex["instrument_str"].startswith(f"{ex['instrument_family_str']}_{ex['instrument_source_str']}_")
            assert NSYNTH_FAMILIES[ex["instrument_family"]] == ex["instrument_family_str"]
            assert sc.nsynth_lowest_pitch <= ex["pitch"] < sc.nsynth_lowest_pitch + sc.nsynth_pitches
            assert ex["sample_rate"] == SR
        info = sf.info(str(folder / "audio" / f"{wavs[0]}.wav"))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, 4 * SR, "PCM_16")
    # tiny: 10 pitches x 3 programs x 1 velocity; train in both training SoundFonts
    assert meta["counts"]["nsynth"]["train"] == 2 * meta["counts"]["nsynth"]["valid"] == 60


def test_giantsteps_layout_and_awkward_rows(tiny):
    out, _ = tiny
    root = out / "giantsteps"
    lines = (root / "giantsteps-mtg-key-dataset" / "annotations" / "annotations.txt").read_text().splitlines()
    assert lines[0] == "ID\tMANUAL KEY\tC"
    rows = [line.split("\t") for line in lines[1:]]
    sc = embedded.SCALES["tiny"]
    assert len(rows) == sc.key_train_valid + sc.key_awkward
    labels = [r[1] for r in rows]
    assert any("/" in lab for lab in labels) and "-" in labels, "ambiguous and missing keys expected"
    assert any(int(r[2]) < 2 for r in rows), "a low-confidence row expected"
    for track, _, _ in rows:
        assert (root / "giantsteps-mtg-key-dataset" / "audio" / f"{track}.LOFI.mp3").stat().st_size > 0
    key_files = sorted((root / "giantsteps-key-dataset" / "annotations" / "key").glob("*.LOFI.key"))
    assert len(key_files) == sc.key_test
    for kf in key_files:
        assert _fold(kf.read_text().strip()) in KEY_CLASSES
        assert (root / "giantsteps-key-dataset" / "audio" / kf.name.replace(".key", ".mp3")).exists()
    confident = [_fold(r[1]) for r in rows if r[2] == "2" and "/" not in r[1] and r[1] != "-"]
    assert len(set(confident)) == len(KEY_CLASSES), "train/valid covers all 24 keys"


def test_mtat_csv_quoting_and_files(tiny):
    out, _ = tiny
    path = out / "mtat" / "annotations_final.csv"
    raw = path.read_text().splitlines()
    quoted = re.compile(r'^"[^"\t]*"$')
    for line in raw:  # every field double-quoted, tab-separated, like the real file
        assert all(quoted.match(f) for f in line.split("\t")), line[:80]
    with path.open(newline="") as fh:
        table = list(csv.reader(fh, delimiter="\t"))
    header, body = table[0], table[1:]
    assert header[0] == "clip_id" and header[-1] == "mp3_path" and 0 < len(header) - 2 <= 50
    assert len(body) == embedded.SCALES["tiny"].mtat_clips
    folders = set()
    for row in body:
        assert set(row[1:-1]) <= {"0", "1"}
        folder, name = row[-1].split("/")
        folders.add(folder)
        assert (out / "mtat" / folder / name).stat().st_size > 0
    assert folders == set("0123456789abcdef")


def test_fma_layout_and_stems_sum_to_mix(tiny):
    out, _ = tiny
    mixes = sorted((out / "fma_medium").glob("*/*.mp3"))
    assert len(mixes) == embedded.SCALES["tiny"].fma_pieces
    for mix_path in mixes:
        assert re.fullmatch(r"\d{6}", mix_path.stem) and mix_path.parent.name == mix_path.stem[:3]
        stems = {s: mix_path.with_suffix(".stems") / f"{s}.mp3" for s in ("bass", "drums", "melody", "accompaniment")}
        mix, sr = sf.read(str(mix_path), dtype="float32")
        parts = [sf.read(str(p), dtype="float32")[0] for p in stems.values()]
        n = min(len(mix), *(len(p) for p in parts))
        assert sr == SR and n > 4 * SR
        assert all(np.sqrt(np.mean(p[:n] ** 2)) > 1e-3 for p in parts), "every stem sounds"
        total = np.sum([p[:n] for p in parts], axis=0)
        corr = np.corrcoef(total, mix[:n])[0, 1]
        gain = np.dot(total, mix[:n]) / np.dot(total, total)
        assert corr > 0.98 and abs(gain - 1) < 0.05, (mix_path, corr, gain)


#: FMA medium's sixteen top genres (genres.csv, top level), and the one each style of the pool is.
FMA_TOP_GENRES = {"Blues", "Classical", "Country", "Easy Listening", "Electronic", "Experimental", "Folk", "Hip-Hop",
                  "Instrumental", "International", "Jazz", "Old-Time / Historic", "Pop", "Rock", "Soul-RnB", "Spoken"}
STYLE_GENRE = {"classical": "Classical", "rock": "Rock", "electronic": "Electronic", "ambient": "Instrumental",
               "jazz": "Jazz", "country": "Country", "indian": "International", "pop": "Pop"}


def test_fma_genre_is_each_pieces_planned_style(tiny):
    """``fma_genre`` on the tiny render: the FMA loader reads tracks.csv, each piece's top genre
    is the style it was arranged in, FMA's header rows, every split non-empty."""
    from workbench import data
    from workbench.data.embedded import fma_medium as fma_stand_in

    out, meta = tiny
    rows = (out / "fma_medium" / "fma_metadata" / "tracks.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["", "set", "set"] and rows[2].startswith("track_id,")
    planned = {it.params["track"]: it.params["style"] for it in fma_stand_in.plan(embedded.SCALES["tiny"], 0)}
    root = out / "fma_medium"
    spec = data.task("fma_genre", root)
    df = data.manifest("fma_genre", root)
    assert sorted(df["id"]) == sorted(planned)
    assert dict(zip(df["id"], df["genre"])) == {t: STYLE_GENRE[s] for t, s in planned.items()}
    assert set(spec.classes) <= FMA_TOP_GENRES and list(spec.classes) == sorted(set(df["genre"]))
    assert [spec.classes[t] for t in df["target"]] == list(df["genre"])
    assert set(df["split"]) == {"train", "valid", "test"}
    assert meta["dataset_versions"] == embedded.DATASET_VERSIONS
    counts = meta["statistics"]["fma_medium"]["genre_top"]
    assert sum(n for by_genre in counts.values() for n in by_genre.values()) == len(planned)
    # the pool reads the same splits as the genre task
    pool = data.manifest("fma_medium", root)
    assert dict(zip(pool["id"], pool["split"])) == dict(zip(df["id"], df["split"]))


def test_fma_splits_are_stratified_by_genre_at_the_demo_scale():
    from collections import Counter

    from workbench.data.embedded import fma_medium as fma_stand_in

    items = fma_stand_in.plan(embedded.SCALES["demo"], 0)
    assert fma_stand_in.plan(embedded.SCALES["demo"], 0) == items  # deterministic
    per_genre = Counter(it.params["genre_top"] for it in items)
    assert set(per_genre) == set(STYLE_GENRE.values())
    for (genre, split), n in Counter((it.params["genre_top"], it.params["split"]) for it in items).items():
        share = {"training": 0.8, "validation": 0.1, "test": 0.1}[split]
        assert abs(n - share * per_genre[genre]) <= 1.5, (genre, split, n, per_genre[genre])
    assert Counter(it.params["split"] for it in items) == {"training": 160, "validation": 20, "test": 20}


# --------------------------------------------------------------------------- labels by analysis
def test_nsynth_pitch_agrees_with_f0(tiny):
    out, _ = tiny
    checked = agree = 0
    for split in ("train", "test"):
        folder = out / "nsynth" / f"nsynth-{split}"
        for note_str, ex in json.loads((folder / "examples.json").read_text()).items():
            x, sr = sf.read(str(folder / "audio" / f"{note_str}.wav"), dtype="float64")
            f0 = _yin_f0(x[int(0.3 * sr):int(0.5 * sr)], sr)
            midi = 69 + 12 * np.log2(f0 / 440.0)
            checked += 1
            agree += abs(midi - ex["pitch"]) < 0.5
    assert checked >= 60 and agree / checked > 0.85, f"{agree}/{checked} notes at their labelled pitch"


def test_nsynth_notes_are_not_silent(tiny):
    out, _ = tiny
    for wav in (out / "nsynth").rglob("*.wav"):
        x, _ = sf.read(str(wav), dtype="float64")
        assert 20 * np.log10(np.sqrt(np.mean(x ** 2))) > -60.0, wav.name


def test_silent_render_is_dropped(tmp_path):
    class SilentSynth:
        def note(self, *args, **kwargs):
            return np.zeros(int(4 * SR), np.float32)

    item = embedded.Item("nsynth", 0, "train", "FluidR3_GM", "nsynth/nsynth-train/audio/x.wav",
                       {"program": 0, "pitch": 60, "velocity": 100})
    result = nsynth_stand_in.render_item(SilentSynth(), item, tmp_path, {"FluidR3_GM": "unused"}, 0)
    assert result["kept"] is False and "silent" in result["reason"]
    assert not (tmp_path / item.path).exists()


def test_giantsteps_keys_agree_with_key_profile_estimate(tiny):
    out, _ = tiny
    root = out / "giantsteps"
    pairs = []
    for kf in (root / "giantsteps-key-dataset" / "annotations" / "key").glob("*.LOFI.key"):
        pairs.append((root / "giantsteps-key-dataset" / "audio" / kf.name.replace(".key", ".mp3"),
                      _fold(kf.read_text().strip())))
    for line in (root / "giantsteps-mtg-key-dataset" / "annotations" / "annotations.txt").read_text().splitlines()[1:]:
        track, label, confidence = line.split("\t")
        if confidence == "2" and "/" not in label and label != "-":
            pairs.append((root / "giantsteps-mtg-key-dataset" / "audio" / f"{track}.LOFI.mp3", _fold(label)))
    hits = sum(_ks_key(*sf.read(str(p), dtype="float64")) == label for p, label in pairs)
    assert len(pairs) == 36
    assert hits / len(pairs) > 0.3, f"key estimate agrees on {hits}/{len(pairs)} (chance 1/24)"


def _mtat_rows(out: Path, name: str) -> list[dict]:
    with (out / "mtat" / name).open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_mtat_facts_consistent_with_construction(tiny):
    """facts_final.csv holds every true fact: exclusive pairs are exclusive, drums are audible."""
    out, _ = tiny
    with (out / "mtat" / "facts_final.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    styles = ("classical", "choral", "rock", "electronic", "ambient", "jazz", "country", "indian", "pop")
    flux = {"1": [], "0": []}
    for r in rows:
        on = lambda t: r[t] == "1"  # noqa: E731
        assert on("drums") != on("no drums") and on("vocal") != on("no vocals") and on("major") != on("minor")
        assert on("triple meter") != on("quadruple meter")
        assert sum(on(s) for s in styles) == 1
        assert not (on("fast") and on("slow")) and not (on("loud") and on("soft"))
        assert not (on("solo") and on("drums"))
        assert not (on("choir") or on("voice")) or on("vocal")
        x, sr = sf.read(str(out / "mtat" / r["mp3_path"]), dtype="float64")
        n = 1024
        frames = np.array([x[i:i + n] * np.hanning(n) for i in range(0, len(x) - n, n // 2)])
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        high = np.sqrt(power[:, np.fft.rfftfreq(n, 1 / sr) > 4000].sum(axis=1))
        flux[r["drums"]].append(np.maximum(np.diff(high), 0).sum() / np.sqrt(power.sum()))
    drums, none = np.array(flux["1"]), np.array(flux["0"])
    assert len(drums) and len(none)
    auc = np.mean(drums[:, None] > none[None, :])
    assert auc > 0.75, f"high-frequency transients separate drums from no drums with AUC {auc:.2f}"


def _tag_lists(rows: list[dict]) -> list[list[str]]:
    return [[t for t, v in r.items() if v == "1" and t not in ("clip_id", "mp3_path")] for r in rows]


def test_mtat_annotations_are_sparse_like_people_make_them(tiny):
    """The annotator's tags on the tiny render: MTAT-like statistics (issue 12), mostly true facts."""
    from workbench.data.embedded import annotator, music

    out, meta = tiny
    tags, facts = _tag_lists(_mtat_rows(out, "annotations_final.csv")), _tag_lists(_mtat_rows(out, "facts_final.csv"))
    st = annotator.tag_statistics(tags, music.MTAT_TAGS)
    assert st["clips"] == embedded.SCALES["tiny"].mtat_clips
    assert 2.0 <= st["tags_per_clip"] <= 4.0, st["tags_per_clip"]
    assert st["top_tag_share"] <= 0.2, (st["top_tag"], st["top_tag_share"])
    assert any(not t for t in tags), "some clips carry no tag, as in MTAT"
    named = sum(len(t) for t in tags)
    true = sum(len(set(t) & set(f)) for t, f in zip(tags, facts))
    assert true / named >= 0.9, "a few tags are wrong, most are facts"
    assert all(len(f) >= 6 for f in facts), "the facts themselves are complete"
    pairs = st["positive_pair_share"]
    assert pairs[1] > pairs[2] > pairs[4] and pairs[1] < 0.5
    assert meta["statistics"]["mtat"]["all"]["tags"]["tags_per_clip"] == pytest.approx(st["tags_per_clip"], abs=1e-6)


def test_annotator_statistics_over_the_demo_plan():
    """The annotator's population statistics on the 400 clips the demo scale plans (composed, not rendered)."""
    from workbench.data.embedded import annotator, music, mtat
    from workbench.data.embedded.items import item_rng

    sc = embedded.SCALES["demo"]
    items = mtat.plan(sc, 0)
    pieces = [mtat.compose(it, 0, sc) for it in items]
    tags = [annotator.annotate(p, item_rng(0, "mtat", it.index, mtat.ANNOTATION_STREAM)) for p, it in zip(pieces, items)]
    st = annotator.tag_statistics(tags, music.MTAT_TAGS)
    facts = annotator.tag_statistics([p.tags() for p in pieces], music.MTAT_TAGS)
    assert 2.0 <= st["tags_per_clip"] <= 4.0 and facts["tags_per_clip"] > 7
    assert st["top_tag_share"] <= 0.2 < facts["top_tag_share"]
    assert 0.05 <= st["no_tag_share"] <= 0.3
    assert 0.4 <= st["zipf_exponent"] <= 1.5  # frequency falls with rank like a power law
    freq = np.array(list(st["frequency"].values()))
    assert freq[0] / freq[len(freq) // 2] >= 2, "a head and a tail"
    assert st["positive_pair_share"][1] < 0.4 < facts["positive_pair_share"][1]


def test_annotator_is_a_function_of_its_rng():
    from workbench.data.embedded import annotator, music

    piece = music.arrange(np.random.default_rng(3), "rock", 8.0)
    a = [annotator.annotate(piece, np.random.default_rng(s)) for s in range(50)]
    assert a == [annotator.annotate(piece, np.random.default_rng(s)) for s in range(50)]
    assert len({tuple(t) for t in a}) > 10, "different players name different facts"
    assert all(set(t) <= set(music.MTAT_TAGS) for t in a)


def test_tag_statistics_hand_computed():
    from workbench.data.embedded import annotator

    vocab = ("a", "b", "c", "d")
    st = annotator.tag_statistics([["a", "b"], ["a"], [], ["a", "b", "c"]], vocab, criteria=(1, 2, 3))
    assert st["clips"] == 4 and st["tags_per_clip"] == pytest.approx(6 / 4) and st["no_tag_share"] == 0.25
    assert st["top_tag"] == "a" and st["top_tag_share"] == 0.75 and st["tags_in_use"] == 3
    assert list(st["frequency"]) == ["a", "b", "c", "d"] and st["frequency"]["d"] == 0.0
    # 6 pairs; shared tags: (0,1)=1 (0,2)=0 (0,3)=2 (1,2)=0 (1,3)=1 (2,3)=0
    assert st["positive_pair_share"] == {1: pytest.approx(3 / 6), 2: pytest.approx(1 / 6), 3: 0.0}
    # counts 3, 2, 1 over ranks 1, 2, 3: least-squares slope of log count on log rank
    x, y = np.log([1, 2, 3]), np.log([3, 2, 1])
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    assert st["zipf_exponent"] == pytest.approx(-slope)


def test_test_soundfont_is_held_out(tiny):
    out, meta = tiny
    fonts = meta["soundfonts"]
    by_split = meta["soundfonts_by_split"]
    for dataset, splits in by_split.items():
        if dataset == "medleydb":  # the loader splits MedleyDB by a hash of track names: no font can be held out
            assert splits["test"] == splits["train"]
            continue
        train = set(splits.get("train", [])) | set(splits.get("valid", [])) | set(splits.get("unlabeled", []))
        assert not train & set(splits.get("test", [])), dataset
    test_fonts = set(by_split["nsynth"]["test"])
    train_fonts = set(by_split["nsynth"]["train"])
    assert {fonts[n]["sha256"] for n in test_fonts}.isdisjoint({fonts[n]["sha256"] for n in train_fonts})
    assert len({fonts[n]["sha256"] for n in fonts}) == 3
    assert json.loads((out / embedded.MARKER).read_text())["soundfonts"] == fonts
    # the instrument numbers of test notes come from the test SoundFont (index 2), train from 0/1
    test_ex = json.loads((out / "nsynth" / "nsynth-test" / "examples.json").read_text())
    train_ex = json.loads((out / "nsynth" / "nsynth-train" / "examples.json").read_text())
    assert {e["instrument"] // 128 for e in test_ex.values()} == {2}
    assert {e["instrument"] // 128 for e in train_ex.values()} == {0, 1}


# --------------------------------------------------------------------------- determinism and safety
def test_same_seed_gives_identical_files_and_other_seed_differs(tiny, tmp_path):
    out, meta = tiny
    again = tmp_path / "tiny-b"
    embedded.render(again, "tiny", seed=0, progress=False)
    a, b = _hashes(out), _hashes(again)
    assert a.keys() == b.keys()
    differing = [k for k in a if a[k] != b[k]]
    assert not differing, f"not byte-identical: {differing[:5]}"
    other = tmp_path / "tiny-seed1"
    meta1 = embedded.render(other, "tiny", seed=1, progress=False)
    c = _hashes(other)
    assert meta1["seed"] == 1
    for name in ("mtat/annotations_final.csv", "giantsteps/giantsteps-mtg-key-dataset/annotations/annotations.txt"):
        assert a[name] != c[name], name
    common = [k for k in a.keys() & c.keys() if k.endswith(".mp3")]
    assert common and sum(a[k] != c[k] for k in common) / len(common) > 0.9


def test_render_refuses_a_foreign_folder(tmp_path):
    precious = tmp_path / "mine" / "notes.txt"
    precious.parent.mkdir()
    precious.write_text("keep me")
    with pytest.raises(FileExistsError, match="not an embedded benchmark"):
        embedded.render(precious.parent, "tiny", seed=0, progress=False)
    assert precious.read_text() == "keep me"


def test_interrupted_render_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_run", boom)
    out = tmp_path / "bench"
    with pytest.raises(KeyboardInterrupt):
        embedded.render(out, "tiny", seed=0, progress=False)
    assert not out.exists()
    assert not list(tmp_path.glob(".bench.partial-*"))


def test_bad_arguments_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown scale"):
        embedded.render(tmp_path / "x", "huge", seed=0)
    with pytest.raises(ValueError, match="seed"):
        embedded.render(tmp_path / "x", "tiny", seed=-1)


def test_missing_soundfont_names_the_fix(tmp_path, monkeypatch):
    from workbench.data.embedded import synth

    monkeypatch.setattr(synth, "_search_dirs", lambda: [tmp_path])
    with pytest.raises(synth.SoundFontError, match="apt-get install fluid-soundfont-gm minuet-data"):
        synth.find_soundfont("FluidR3_GM")


def test_soundfont_env_override(tmp_path, monkeypatch):
    from workbench.data.embedded import synth

    fake = tmp_path / "TimGM6mb.sf2"
    fake.write_bytes(b"RIFF")
    monkeypatch.setenv(synth.SOUNDFONT_ENV, str(tmp_path))
    assert synth.find_soundfont("TimGM6mb") == fake.resolve()


def test_ensure_rendered_renders_once_across_concurrent_callers(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_render(out, scale, seed, names, progress):
        calls.append((scale, seed))
        time.sleep(0.3)
        out.mkdir(parents=True)
        (out / embedded.MARKER).write_text("{}")  # no "datasets": a tree holding them all
        return {}

    monkeypatch.setattr(runner, "_add_locked", fake_render)
    out = tmp_path / "cache" / "tiny-seed0-v1"
    threads = [threading.Thread(target=embedded.ensure_rendered, args=(out, "tiny", 0)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [("tiny", 0)]
    assert embedded.ensure_rendered(out, "tiny", 0) == out.absolute()
    assert capsys.readouterr().out.count("rendering the embedded benchmark") == 1


def test_roots_render_only_the_data_set_asked_for_with_the_same_bytes(tiny, tmp_path, monkeypatch):
    """Resolving one data set renders it alone (byte-identical to its part of a full render);
    the next data set is added beside it; asking for all fills in the rest once."""
    from workbench import data
    from workbench.data import roots

    out, meta = tiny
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_EMBEDDED_SCALE", "tiny")
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    tree = roots.embedded_path("tiny", 0)
    full = _hashes(out)
    part = lambda name: {k: v for k, v in full.items() if k.startswith(f"{name}/")}  # noqa: E731
    assert data.data_root("gtzan_genre").path == (tree / "gtzan").resolve()
    assert sorted(p.name for p in tree.iterdir()) == [embedded.MARKER, "gtzan"]
    assert embedded.rendered_datasets(tree) == {"gtzan"} and _hashes(tree) == part("gtzan")
    first = json.loads((tree / embedded.MARKER).read_text())
    assert first["datasets"] == ["gtzan"] and first["tasks"] == ["gtzan_genre"]
    assert first["dataset_versions"] == {"gtzan": embedded.DATASET_VERSIONS["gtzan"]}
    assert first["counts"] == {"gtzan": meta["counts"]["gtzan"]}
    before = (tree / "gtzan" / "genres" / "blues").stat().st_mtime_ns
    data.data_root("fma_genre")  # another data set: added beside, the first left alone
    assert embedded.rendered_datasets(tree) == {"gtzan", "fma_medium"}
    assert _hashes(tree) == {**part("gtzan"), **part("fma_medium")}
    assert (tree / "gtzan" / "genres" / "blues").stat().st_mtime_ns == before
    genres = lambda root=None: sorted(data.manifest("fma_genre", root)["genre"])  # noqa: E731
    assert genres() == genres(out / "fma_medium")
    roots.embedded_dir("tiny", 0)  # all: the rest
    after = json.loads((tree / embedded.MARKER).read_text())
    assert _hashes(tree) == full and after["datasets"] == list(embedded.EMBEDDED_DATASETS)
    for key in ("counts", "seconds", "summary", "tasks", "statistics", "dataset_versions"):
        assert after[key] == meta[key], key
    assert not list(tmp_path.glob("embedded/.*partial*"))
    with pytest.raises(ValueError, match="unknown embedded data set"):
        embedded.ensure_rendered(tree, "tiny", 0, datasets=["mtta"])


def test_a_data_set_folder_left_unlisted_by_a_killed_render_is_rendered_again(tmp_path, monkeypatch):
    tree = tmp_path / "bench"
    tree.mkdir()
    (tree / embedded.MARKER).write_text(json.dumps({"datasets": [], "scale": "tiny", "seed": 0}))
    (tree / "emomusic").mkdir()
    (tree / "emomusic" / "half-written.mp3").write_bytes(b"x")  # renamed in, killed before the marker
    embedded.ensure_rendered(tree, "tiny", 0, datasets=["emomusic"])
    assert not (tree / "emomusic" / "half-written.mp3").exists()
    assert embedded.rendered_datasets(tree) == {"emomusic"}
    assert (tree / "emomusic" / "annotations" / "static_annotations.csv").is_file()


def test_cli_default_out_is_the_embedded_cache(tiny, tmp_path, monkeypatch, capsys):
    from workbench.data import roots

    out, _ = tiny
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    target = render.default_out("tiny", 0)
    assert target == tmp_path / "embedded" / f"tiny-seed0-v{render.GENERATOR_VERSION}"
    shutil.copytree(out, target)
    assert render.main(["--scale", "tiny", "--seed", "0", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "already rendered" in printed and "giantsteps" in printed and "TimGM6mb" in printed
    assert roots.embedded_dir("tiny", 0) == target


def _synth_checks() -> dict:
    """Runs in a spawned process (a synthesiser must never exist in a process that may fork)."""
    from workbench.data.embedded import music, synth

    font = str(synth.find_soundfont("FluidR3_GM"))
    organ = music.Track("accompaniment", 19, (music.Note(0.0, 10.0, 60, 100),))  # held past the end
    beat = tuple(music.Note(i * 0.25, 0.2, p, 100) for i, p in enumerate([36, 42, 38, 42] * 4))
    with synth.Synthesiser(SR) as s:
        held = s.tracks(font, [organ], SR)
        after = s.tracks(font, [], SR)
        kit = s.tracks(font, [music.Track("drums", 0, beat, drums=True)], 4 * SR)
        piano = s.tracks(font, [music.Track("melody", 0, beat)], 4 * SR)
    spectrum = lambda x: np.abs(np.fft.rfft(x))  # noqa: E731
    return {"held_rms": float(np.sqrt(np.mean(held ** 2))), "after_peak": float(np.abs(after).max()),
            "kit_rms": float(np.sqrt(np.mean(kit ** 2))),
            "kit_vs_piano": float(np.corrcoef(spectrum(kit), spectrum(piano))[0, 1])}


def test_synth_resets_between_items_and_plays_drums_from_bank_128():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        r = pool.submit(_synth_checks).result(timeout=120)
    assert r["held_rms"] > 1e-3
    assert r["after_peak"] == 0.0, "a note held at the end of one item must not ring into the next"
    assert r["kit_rms"] > 1e-3 and r["kit_vs_piano"] < 0.5, r


# --------------------------------------------------------------------------- layout of the generator
def test_generator_never_imports_root_resolution():
    """The render <-> roots cycle is gone: the embedded package imports only the task tables above it."""
    import ast

    allowed = {2: {"tasks"},  # workbench.data.<module> the generator may read
               3: {"progress"}}  # workbench.<module>: leaf utilities that import nothing of the data layer
    for path in sorted(Path(embedded.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:  # from ..x import / from .. import x
                names = [node.module] if node.module else [a.name for a in node.names]
                assert set(n.split(".")[0] for n in names) <= allowed.get(node.level, set()), (path.name, names)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.startswith("workbench") for m in mods), (path.name, mods)


def test_old_module_names_still_work():
    from workbench.data import music, roots, synth

    assert music is embedded.music and synth is embedded.synth
    for name in ("GENERATOR_VERSION", "SCALES", "MARKER", "RENDER_SAMPLE_RATE", "render", "ensure_rendered",
                 "format_summary", "Item", "Scale"):
        assert getattr(render, name) is getattr(embedded, name), name
    assert roots.EMBEDDED_DATASETS == embedded.EMBEDDED_DATASETS
    assert {"nsynth", "giantsteps", "mtat", "fma_medium"} <= set(embedded.EMBEDDED_DATASETS)
    assert callable(render.main) and callable(render.default_out)


_WINDOW_READS = """
import sys
import numpy as np
import soundfile as sf

for path in sys.argv[1:]:
    with sf.SoundFile(path) as f:
        for start in np.linspace(0, max(f.frames - 6561, 0), 40).astype(int):
            f.seek(int(start))
            assert len(f.read(6561, dtype="float32")) > 0
print("ok")
"""


def test_windowed_mp3_reads_print_nothing(tiny):
    """libmpg123 writes straight to fd 2 when a seek lands on a frame whose bit reservoir it cannot
    fill ("part2_3_length too large"); the render's encoder settings keep every windowed read silent."""
    import subprocess
    import sys

    out, _ = tiny
    paths = (sorted((out / "giantsteps").rglob("*.mp3"))[:6] + sorted((out / "mtat").rglob("*.mp3"))[:6]
             + sorted((out / "fma_medium").rglob("*.mp3"))[:6])
    assert len(paths) == 18
    r = subprocess.run([sys.executable, "-c", _WINDOW_READS, *map(str, paths)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    assert r.stderr == "", r.stderr[:500]


def test_the_default_encoder_setting_is_what_made_reads_noisy(tmp_path):
    """The check above can fail: libsndfile's default MP3 bitrate makes the same reads print."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    t = np.arange(8 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(len(t)))
    sf.write(tmp_path / "default.mp3", x.astype(np.float32), SR, format="MP3")
    from workbench.data.embedded.items import write_mp3

    write_mp3(tmp_path / "rendered.mp3", x.astype(np.float32))
    runs = {name: subprocess.run([sys.executable, "-c", _WINDOW_READS, str(tmp_path / f"{name}.mp3")],
                                 capture_output=True, text=True, timeout=120) for name in ("default", "rendered")}
    assert "part2_3_length" in runs["default"].stderr
    assert runs["rendered"].stderr == ""


# --------------------------------------------------------------------------- the rest of Table 3's columns
def test_every_embedded_task_is_the_default_and_read_by_its_loader(tiny, tmp_path, monkeypatch):
    """Root resolution finds every stand-in (old and new) in the embedded cache; the existing loaders read them."""
    import warnings

    from workbench import data
    from workbench.data import summary

    out, meta = tiny
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_EMBEDDED_SCALE", "tiny")
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    shutil.copytree(out, render.default_out("tiny", 0))
    assert set(summary.EMBEDDED_TASKS) == set(meta["tasks"]) >= {
        "gtzan_genre", "medleydb_instrument", "emomusic", "mtg_top50", "mtg_genre", "mtg_mood", "mtg_instrument"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the awkward GiantSteps rows warn, as the real file does
        for name in summary.EMBEDDED_TASKS:
            where = data.data_root(name)
            assert where.source == "embedded" and where.synthetic, name
            assert where.path == (render.default_out("tiny", 0) / data.TASKS[name].dataset).resolve()
            df = data.manifest(name)
            if name != "fma_medium":
                assert {"train", "valid", "test"} <= set(df.split), name
        table = summary.summarize(summary.EMBEDDED_TASKS)
    assert set(table.task) == set(summary.EMBEDDED_TASKS)
    test_fonts = table[(table.split == "test") & table.task.isin(["gtzan_genre", "emomusic", "mtg_top50"])]
    assert set(test_fonts.soundfonts) == {"TimGM6mb"}


def test_gtzan_ids_come_from_the_fault_filtered_lists(tiny):
    from workbench.data.loaders import gtzan as loader

    out, _ = tiny
    lists = loader.load_splits()
    wavs = sorted((out / "gtzan" / "genres").glob("*/*.wav"))
    sc = embedded.SCALES["tiny"]
    assert len(wavs) == 10 * sum(sc.gtzan_clips)
    for wav in wavs:
        assert wav.stem.split(".")[0] == wav.parent.name  # blues/blues.00012.wav
        assert sum(wav.stem in ids for ids in lists.values()) == 1


def test_emomusic_arousal_follows_loudness(tiny):
    """Arousal is made of tempo, dynamics and drums: louder renders are rated more aroused."""
    out, meta = tiny
    with (out / "emomusic" / "annotations" / "static_annotations.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == embedded.SCALES["tiny"].emomusic_songs
    arousal, loud = [], []
    for r in rows:
        assert 1.0 <= float(r["mean_arousal"]) <= 9.0 and 1.0 <= float(r["mean_valence"]) <= 9.0
        x, _ = sf.read(str(out / "emomusic" / "clips_45seconds" / f"{r['song_id']}.mp3"), dtype="float64")
        arousal.append(float(r["mean_arousal"]))
        loud.append(np.log(np.sqrt(np.mean(x ** 2))))
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(arousal), rank(loud))[0, 1] > 0.3
    assert 0.5 < meta["statistics"]["emomusic"]["arousal_std"] < 3.0


def test_medleydb_stems_carry_their_instrument(tiny):
    import yaml

    out, _ = tiny
    metas = sorted((out / "medleydb").glob("*/*_METADATA.yaml"))
    assert len(metas) == embedded.SCALES["tiny"].medleydb_tracks
    flux = {True: [], False: []}
    for m in metas:
        meta = yaml.safe_load(m.read_text())
        for stem in meta["stems"].values():
            x, sr = sf.read(str(m.parent / meta["stem_dir"] / stem["filename"]), dtype="float64")
            assert np.sqrt(np.mean(x ** 2)) > 1e-4, stem
            n = 1024
            frames = np.array([x[i:i + n] * np.hanning(n) for i in range(0, len(x) - n, n // 2)])
            power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
            high = np.sqrt(power[:, np.fft.rfftfreq(n, 1 / sr) > 4000].sum(axis=1))
            flux[stem["instrument"] == "drum set"].append(np.maximum(np.diff(high), 0).sum() / np.sqrt(power.sum()))
    drums, other = np.array(flux[True]), np.array(flux[False])
    assert len(drums) and len(other)
    assert np.mean(drums[:, None] > other[None, :]) > 0.8, "drum-set stems are the percussive ones"


def test_mtg_jamendo_files_hold_their_category(tiny):
    from workbench.data.loaders import mtg_jamendo as loader

    out, _ = tiny
    folder = out / "mtg_jamendo" / "splits" / "split-0"
    prefixes = {"genre": ("genre---",), "moodtheme": ("mood/theme---",), "instrument": ("instrument---",),
                "top50tags": ("genre---", "mood/theme---", "instrument---")}
    for stem, allowed in prefixes.items():
        for split in ("train", "validation", "test"):
            rows = loader.read_tsv(folder / f"autotagging_{stem}-{split}.tsv")
            assert rows, (stem, split)
            for r in rows:
                assert r["tags"] and all(t.startswith(allowed) for t in r["tags"]), r
                assert (out / "mtg_jamendo" / r["rel"]).stat().st_size > 0
                if stem == "genre":
                    assert len(r["tags"]) == 1  # one style, one genre
