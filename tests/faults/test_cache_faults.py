"""The decoded-audio cache under faults: changed audio, SIGKILL mid-step and mid-checkpoint, two
runners on one cache, a full disk. Each ends in a cache whose every clip equals a fresh decode."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from faultkit import KILL_AFTER, SR, child_env, noise, run_child, write

from workbench import audio, data
from workbench.data import cache

N_FILES = 7
TOL = 1.5 / cache.INT16_SCALE


@pytest.fixture
def pool(tmp_path):
    root = tmp_path / "pool"
    for i in range(N_FILES):
        write(root / f"f{i}.wav", noise(2000 + 100 * i, seed=i))
    data._build.cache_clear()
    return root


@pytest.fixture
def decodes(monkeypatch):
    """Count the files `prepare` decodes in this process."""
    seen = []
    original = cache._decode

    def counting(job):
        seen.append(job[0])
        return original(job)

    monkeypatch.setattr(cache, "_decode", counting)
    return seen


def assert_complete(directory, root, n=N_FILES):
    c = cache.DecodedCache.open(directory)
    assert len(c) == n and not c.stale
    for i in range(n):
        ref = audio.read(root / f"f{i}.wav", SR)
        got = c.read(str((root / f"f{i}.wav").resolve()))
        assert len(got) == len(ref) and np.abs(got - ref).max() <= TOL


def age(path, seconds=3600):
    t = time.time() - seconds
    os.utime(path, (t, t))


# ---------------------------------------------------------------- changed audio

@pytest.mark.parametrize("racy", [False, True], ids=["old-file", "racy-same-size-same-mtime"])
def test_overwritten_audio_is_never_served_from_the_cache(pool, tmp_path, decodes, racy):
    target = pool / "f3.wav"
    if not racy:
        for p in pool.iterdir():
            age(p)  # an ordinary file: decoded long after it was written, identity by size + mtime
    d = cache.prepare("folder", root=pool, out=tmp_path / "c", progress=False)
    before = os.stat(target)
    write(target, noise(2300, seed=99))  # same length, so the same size: other audio
    if racy:  # the worst case: a rewrite inside the file system's mtime tick; only the hash can tell
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(target).st_size == before.st_size
    with pytest.warns(RuntimeWarning, match="1 source file\\(s\\) changed since they were decoded"):
        stale = cache.DecodedCache.open(d)
    assert not stale.has(str(target.resolve())) and stale.has(str((pool / "f2.wav").resolve()))
    decodes.clear()
    cache.prepare("folder", root=pool, out=tmp_path / "c", progress=False)
    assert decodes == [str(target.resolve())]  # only the changed file is decoded again
    assert_complete(d, pool)


def test_a_failed_file_that_is_fixed_is_decoded_next_time(pool, tmp_path):
    bad = pool / "f6.wav"
    bad.write_text("not audio")
    with pytest.warns(RuntimeWarning, match="could not be decoded"):
        d = cache.prepare("folder", root=pool, out=tmp_path / "c", progress=False)
    assert str(bad.resolve()) in cache.DecodedCache.open(d).meta["failed"]
    write(bad, noise(2600, seed=6))
    cache.prepare("folder", root=pool, out=tmp_path / "c", progress=False)
    assert_complete(d, pool)


# ---------------------------------------------------------------- SIGKILL, then run again

CHILD = KILL_AFTER + """
from workbench.data import cache
cache.CHECKPOINT_EVERY = 2
kill_after(cache, {fn!r}, {n})
cache.prepare("folder", root={root!r}, out={out!r}, progress=False)
print("NOT KILLED")
"""


@pytest.mark.parametrize("fn,n,kept", [
    ("_append_samples", 6, 4),  # mid-step: clip 5 half written after the checkpoint of 4
    ("_write_index", 2, 2),     # mid-checkpoint: header already says 4 clips, index still 2
    ("_write_meta", 2, 4),      # mid-checkpoint: index of 4 written, meta not yet
], ids=["mid-step", "mid-checkpoint-index", "mid-checkpoint-meta"])
def test_sigkill_during_prepare_loses_at_most_one_checkpoint_interval(pool, tmp_path, decodes, fn, n, kept):
    out = tmp_path / "c"
    proc = run_child(CHILD.format(fn=fn, n=n, root=str(pool), out=str(out)))
    assert proc.returncode == -9 and "NOT KILLED" not in proc.stdout, proc.stderr
    cache.prepare("folder", root=pool, out=out, progress=False)
    assert len(decodes) == N_FILES - kept
    assert_complete(out, pool)


def test_two_prepares_at_once_take_turns_and_decode_each_file_once(pool, tmp_path):
    out = tmp_path / "c"
    script = f"""
import sys, time
sys.path.insert(0, {str(os.path.dirname(__file__))!r})
from workbench.data import cache
original = cache._decode
def slow(job):
    time.sleep(0.05)
    print("decoded", job[0], flush=True)
    return original(job)
cache._decode = slow
cache.prepare("folder", root={str(pool)!r}, out={str(out)!r}, progress=True)
"""
    procs = [subprocess.Popen([sys.executable, "-c", script], env=child_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in results]
    decoded = [line for o, _ in results for line in o.splitlines() if line.startswith("decoded")]
    assert len(decoded) == N_FILES  # the second waited for the lock, then found the work done
    assert_complete(out, pool)


# ---------------------------------------------------------------- full disk

def test_full_disk_keeps_the_last_checkpoint_and_says_so(pool, tmp_path, monkeypatch, decodes):
    monkeypatch.setattr(cache, "CHECKPOINT_EVERY", 2)
    original, calls = cache._append_samples, []

    def disk_full_on_sixth(fh, x):
        calls.append(1)
        if len(calls) == 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(fh, x)

    monkeypatch.setattr(cache, "_append_samples", disk_full_on_sixth)
    out = tmp_path / "c"
    with pytest.raises(OSError, match="No space left on device.*The 4 clips of the last checkpoint.*are kept"):
        cache.prepare("folder", root=pool, out=out, progress=False)
    monkeypatch.setattr(cache, "_append_samples", original)
    decodes.clear()
    cache.prepare("folder", root=pool, out=out, progress=False)
    assert len(decodes) == N_FILES - 4
    assert_complete(out, pool)


def test_full_disk_from_the_command_line_is_one_message_without_traceback(pool, tmp_path):
    out = tmp_path / "c"
    limit = 128 + 2 * (2000 + 2100 + 2200) + 64  # room for three clips' samples, not the fourth

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = child_env()
    cmd = [sys.executable, "-m", "workbench", "data", "prepare", "folder", "--root", str(pool), "--out", str(out),
           "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=small_disk, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: decoded cache") and "File too large" in proc.stderr
    assert "run the same `data prepare` again" in proc.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cache.prepare("folder", root=pool, out=out, progress=False)
    assert_complete(out, pool)
