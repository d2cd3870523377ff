"""A simulated TagATune player: the MagnaTagATune stand-in's tags, sparse and noisy as people make them.

Real MTAT tags come from the TagATune game (Law et al. 2009): two players heard a clip and
typed a few words each about what stood out; a tag is in ``annotations_final.csv`` when
enough players used it.  So a clip carries a few salient facts, not every fact: the top-50
tags are on ~3 clips in 100 to ~1 in 5, a clip has a handful of them, and many clips have
none.  The stand-in models that annotator:

1. every true fact of the arrangement (:meth:`music.Piece.tags`) is a candidate;
2. each is named with its **salience** (:data:`SALIENCE`): genre and a solo or melody
   instrument often, accompanying instruments less, the bass line, mode and meter rarely
   (they are not among the real top-50 at all); an instrument's salience is that of the
   most prominent role it plays (:data:`ROLE_SALIENCE`);
3. a clip-level **effort** ``e ~ Gamma(EFFORT_SHAPE, 1 / EFFORT_SHAPE)`` (mean 1) scales
   how much a clip was played and agreed on: a fact is kept with ``1 - (1 - s) ** e``,
   so some clips get many tags and some none;
4. **noise**: each false tag is added with probability :data:`FALSE_TAG_RATE` times its
   salience (players mishear: a harp called a guitar), so a few tags are wrong.

The annotation is drawn from its own random stream (:func:`annotate` takes the rng), so
the audio of a clip does not depend on it.  :func:`tag_statistics` measures what the
issue asks of the result: tags per clip, per-tag frequency, the top tag's share, clips
with no tag, a Zipf exponent, and the share of positive pairs at criterion 1, 2, 4.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from . import music

__all__ = ["SALIENCE", "ROLE_SALIENCE", "EFFORT_SHAPE", "FALSE_TAG_RATE", "salience", "annotate", "tag_statistics",
           "PAIR_CRITERIA"]

#: Probability that a player names a true fact (at effort 1), by tag.  Instrument tags take
#: :data:`ROLE_SALIENCE` of the most prominent role they play instead.
SALIENCE: dict[str, float] = {
    **{style: 0.70 for style in music.STYLES},
    "drums": 0.26, "no drums": 0.06,
    "vocal": 0.70, "no vocals": 0.16,
    "fast": 0.60, "slow": 0.65,
    "loud": 0.45, "soft": 0.40,
    "major": 0.04, "minor": 0.04,
    "triple meter": 0.02, "quadruple meter": 0.02,
    "solo": 0.50,
}
#: Salience of an instrument by the role it plays; a one-instrument (solo) piece's instrument is "solo".
ROLE_SALIENCE: dict[str, float] = {"solo": 0.85, "melody": 0.80, "accompaniment": 0.50, "bass": 0.15}
#: Shape of the Gamma distribution of a clip's effort (mean 1); smaller = more uneven, more clips without tags.
EFFORT_SHAPE = 1.2
#: Rate of false tags, per tag, relative to its salience.
FALSE_TAG_RATE = 0.01
#: The criteria (shared tags) at which :func:`tag_statistics` reports the share of positive pairs (Table 6).
PAIR_CRITERIA = (1, 2, 4)
_INSTRUMENT_TAGS = frozenset(t for p in range(128) for t in music.instrument_tags(p))


def salience(piece: music.Piece) -> dict[str, float]:
    """Salience of every :data:`music.MTAT_TAGS` tag for ``piece`` (true facts; false tags get theirs too)."""
    out: dict[str, float] = {}
    for track in piece.tracks:
        if track.drums or not track.notes:
            continue
        role = "solo" if piece.solo else track.role
        for tag in music.instrument_tags(track.program):
            out[tag] = max(out.get(tag, 0.0), ROLE_SALIENCE[role])
    for tag in music.MTAT_TAGS:
        if tag not in out:
            out[tag] = SALIENCE.get(tag, ROLE_SALIENCE["accompaniment"] if tag in _INSTRUMENT_TAGS else 0.0)
    return out


def annotate(piece: music.Piece, rng: np.random.Generator) -> list[str]:
    """The tags a simulated player gives ``piece`` (in :data:`music.MTAT_TAGS` order)."""
    true = set(piece.tags())
    s = salience(piece)
    effort = rng.gamma(EFFORT_SHAPE, 1.0 / EFFORT_SHAPE)
    draws = rng.random(len(music.MTAT_TAGS))  # one draw per tag, in column order: a fixed stream
    tags = []
    for tag, u in zip(music.MTAT_TAGS, draws):
        p = 1.0 - (1.0 - s[tag]) ** effort if tag in true else FALSE_TAG_RATE * s[tag]
        if u < p:
            tags.append(tag)
    return tags


def tag_statistics(tags: Iterable[Iterable[str]], vocabulary: Sequence[str],
                   criteria: Sequence[int] = PAIR_CRITERIA) -> dict:
    """Statistics of a multi-label annotation: clips, mean tags per clip, share of clips with none,
    per-tag frequency (share of clips, most frequent first), the top tag, a Zipf exponent (minus
    the slope of log frequency on log rank over the tags in use), and the share of clip pairs
    that share at least ``c`` tags for each criterion ``c`` (pairs i < j over all clips)."""
    index = {t: i for i, t in enumerate(vocabulary)}
    rows = [sorted({index[t] for t in clip}) for clip in tags]
    n = len(rows)
    y = np.zeros((n, len(vocabulary)), np.float32)
    for i, r in enumerate(rows):
        y[i, r] = 1.0
    counts = y.sum(axis=0)
    order = np.argsort(-counts, kind="stable")
    freq = {vocabulary[i]: float(counts[i] / n) for i in order} if n else {}
    used = np.sort(counts[counts > 0])[::-1]
    zipf = float(-np.polyfit(np.log(np.arange(1, len(used) + 1)), np.log(used), 1)[0]) if len(used) > 2 else float("nan")
    shared = y @ y.T
    iu = np.triu_indices(n, k=1)
    pairs = shared[iu]
    return {
        "clips": n,
        "tags_per_clip": float(y.sum() / n) if n else 0.0,
        "no_tag_share": float(np.mean(y.sum(axis=1) == 0)) if n else 0.0,
        "top_tag": vocabulary[int(order[0])] if n else None,
        "top_tag_share": float(counts.max() / n) if n else 0.0,
        "tags_in_use": int(len(used)),
        "zipf_exponent": zipf,
        "positive_pair_share": {int(c): float(np.mean(pairs >= c)) if len(pairs) else 0.0 for c in criteria},
        "frequency": freq,
    }
