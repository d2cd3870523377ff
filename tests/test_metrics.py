"""Metrics against hand-computed values and against mir_eval's key rules."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import metrics
from workbench.data.tasks import KEY_CLASSES, NSYNTH_PITCHES, TASKS

# Two tags, four clips; worked by hand:
#   tag 0: y = 0 0 1 1, s = .1 .4 .35 .8 -> pairs (pos > neg): .35>.1, .8>.1, .8>.4 = 3/4 -> AUC .75
#          ranked: .8(+) .4(-) .35(+) .1(-) -> AP = .5*1 + .5*(2/3) = 5/6
#   tag 1: y = 1 0 0 1, s = .9 .2 .3 .1 -> .9 beats both negatives, .1 beats none = 2/4 -> AUC .5
#          ranked: .9(+) .3(-) .2(-) .1(+) -> AP = .5*1 + .5*(2/4) = .75
Y_TAGS = np.array([[0, 1], [0, 0], [1, 0], [1, 1]])
S_TAGS = np.array([[.1, .9], [.4, .2], [.35, .3], [.8, .1]])


def test_roc_auc_macro_hand_example():
    assert metrics.roc_auc_macro(Y_TAGS, S_TAGS) == pytest.approx((0.75 + 0.5) / 2)


def test_average_precision_macro_hand_example():
    assert metrics.average_precision_macro(Y_TAGS, S_TAGS) == pytest.approx((5 / 6 + 0.75) / 2)


def test_classes_without_positives_or_negatives_are_skipped_with_a_warning():
    y = np.concatenate([Y_TAGS, np.zeros((4, 1), int), np.ones((4, 1), int)], axis=1)
    s = np.concatenate([S_TAGS, np.random.default_rng(0).random((4, 2))], axis=1)
    with pytest.warns(metrics.MetricWarning, match=r"skipped 2 of 4 classes.*\bnone\b.*\ball\b"):
        auc = metrics.roc_auc_macro(y, s, classes=["a", "b", "none", "all"])
    assert auc == pytest.approx(0.625)
    with pytest.warns(metrics.MetricWarning):
        assert metrics.average_precision_macro(y, s) == pytest.approx((5 / 6 + 0.75) / 2)


def test_the_same_metric_warning_is_shown_once(recwarn):
    import warnings

    y = np.concatenate([Y_TAGS, np.zeros((4, 1), int)], axis=1)
    s = np.concatenate([S_TAGS, np.full((4, 1), 0.5)], axis=1)
    warnings.simplefilter("always")  # what a catch_warnings block in a library leaves behind
    for _ in range(12):  # e.g. three probe seeds × four evaluations of one test set
        metrics.roc_auc_macro(y, s, classes=["a", "b", "once only"])
    shown = [w for w in recwarn if issubclass(w.category, metrics.MetricWarning)]
    assert len(shown) == 1 and "once only" in str(shown[0].message)
    metrics.roc_auc_macro(y, s, classes=["a", "b", "another"])  # another message is shown
    assert sum(issubclass(w.category, metrics.MetricWarning) for w in recwarn) == 2


def test_ranking_metrics_are_invariant_to_monotone_score_transforms():
    logits = np.log(S_TAGS / (1 - S_TAGS))
    assert metrics.roc_auc_macro(Y_TAGS, logits) == pytest.approx(metrics.roc_auc_macro(Y_TAGS, S_TAGS))
    assert metrics.average_precision_macro(Y_TAGS, logits) == pytest.approx(
        metrics.average_precision_macro(Y_TAGS, S_TAGS))


def test_accuracy_from_scores_and_from_indices():
    y = np.array([0, 2, 1, 1])
    scores = np.array([[.9, .1, 0], [.2, .3, .5], [.6, .4, 0], [0, 1, 0]])  # argmax 0 2 0 1
    assert metrics.accuracy(y, scores) == pytest.approx(0.75)
    assert metrics.accuracy(y, np.array([0, 0, 0, 0])) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="rows"):
        metrics.accuracy(y, np.array([0, 1]))


def idx(midi: int) -> int:
    return NSYNTH_PITCHES.index(str(midi))


def test_chroma_accuracy_counts_octave_errors_as_correct():
    y = np.array([idx(60), idx(60), idx(60), idx(69)])
    pred = np.array([idx(60), idx(72), idx(61), idx(45)])  # exact, octave up, semitone, two octaves down
    assert metrics.accuracy(y, pred) == pytest.approx(0.25)
    assert metrics.chroma_accuracy(y, pred, NSYNTH_PITCHES) == pytest.approx(0.75)
    # without class names the nsynth convention applies: index + 9 = MIDI
    assert metrics.pitch_midi([0, 51]).tolist() == [9, 60]
    assert metrics.chroma_accuracy(y, pred) == pytest.approx(0.75)
    # class index 3 and 15 are an octave apart whatever the offset; 3 and 4 are not
    assert metrics.chroma_accuracy([3, 3], [15, 4]) == pytest.approx(0.5)


def K(name: str) -> int:
    return KEY_CLASSES.index(name)


@pytest.mark.parametrize("ref, est, expected", [
    ("C major", "C major", 1.0),
    ("C major", "G major", 0.5),    # estimate a fifth above
    ("C major", "F major", 0.0),    # a fifth below is not rewarded
    ("C major", "A minor", 0.3),    # relative minor
    ("Eb minor", "Gb major", 0.3),  # relative major
    ("C major", "C minor", 0.2),    # parallel
    ("Eb minor", "Bb minor", 0.5),
    ("C major", "D major", 0.0),
])
def test_key_weighted_score_known_pairs(ref, est, expected):
    assert metrics.key_weighted_score([K(ref)], [K(est)], KEY_CLASSES) == pytest.approx(expected)


def _mirex(ref: str, est: str) -> float:
    """The MIREX rules written out independently, on our flat-spelled class names."""
    tonics = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
    (rt, rm), (et, em) = ref.split(), est.split()
    r, e = tonics.index(rt), tonics.index(et)
    if (r, rm) == (e, em):
        return 1.0
    if rm == em and (e - r) % 12 == 7:
        return 0.5
    if rm == "major" and em == "minor" and (e - r) % 12 == 9:
        return 0.3
    if rm == "minor" and em == "major" and (e - r) % 12 == 3:
        return 0.3
    if rm != em and r == e:
        return 0.2
    return 0.0


def test_key_weighted_score_matches_mirex_rules_on_all_pairs_and_averages_over_tracks():
    n = len(KEY_CLASSES)
    ref = np.repeat(np.arange(n), n)
    est = np.tile(np.arange(n), n)
    expected = np.mean([_mirex(KEY_CLASSES[r], KEY_CLASSES[e]) for r, e in zip(ref, est)])
    # 24 tracks score 1, 24 score .5, 24 score .3, 24 score .2 -> (24*2)/576
    assert expected == pytest.approx(48 / 576)
    assert metrics.key_weighted_score(ref, est, KEY_CLASSES) == pytest.approx(expected)
    # scores [N, C] are reduced with argmax
    onehot = np.eye(n)[est]
    assert metrics.key_weighted_score(ref, onehot, KEY_CLASSES) == pytest.approx(expected)


def test_mir_eval_key_names():
    assert metrics.mir_eval_key("Eb minor") == "Eb minor"
    assert metrics.mir_eval_key("c# Major") == "C# major"
    with pytest.raises(ValueError, match="major\\|minor"):
        metrics.mir_eval_key("C dorian")
    with pytest.raises(ValueError):
        metrics.mir_eval_key("H major")


def test_r2_overall_arousal_valence():
    # arousal: y 1 2 3 4, p 1 2 3 5 -> SS_res 1, SS_tot 5 -> 0.8
    # valence: y 0 0 1 1, p 0 1 1 1 -> SS_res 1, SS_tot 1 -> 0.0
    y = np.array([[1, 0], [2, 0], [3, 1], [4, 1]], float)
    p = np.array([[1, 0], [2, 1], [3, 1], [5, 1]], float)
    assert metrics.r2_arousal(y, p) == pytest.approx(0.8)
    assert metrics.r2_valence(y, p) == pytest.approx(0.0)
    assert metrics.r2(y, p) == pytest.approx(0.4)


def test_compute_dispatches_on_the_task_metric_list_in_order():
    tag_task = TASKS["mtat_top50"].with_classes(["a", "b"])
    out = metrics.compute(tag_task, Y_TAGS, S_TAGS)
    assert list(out) == ["roc_auc", "average_precision"]
    assert out["roc_auc"] == pytest.approx(0.625)

    pitch = metrics.compute(TASKS["nsynth_pitch"], np.array([idx(60), idx(60)]),
                            np.eye(len(NSYNTH_PITCHES))[[idx(60), idx(48)]])
    assert pitch == pytest.approx({"accuracy": 0.5, "chroma_accuracy": 1.0})

    key = metrics.compute(TASKS["giantsteps_key"], np.array([K("C major"), K("C major")]),
                          np.array([K("G major"), K("C major")]))
    assert key == pytest.approx({"weighted_score": 0.75, "accuracy": 0.5})

    y = np.array([[1, 0], [2, 0], [3, 1], [4, 1]], float)
    p = np.array([[1, 0], [2, 1], [3, 1], [5, 1]], float)
    assert metrics.compute(TASKS["emomusic"], y, p) == pytest.approx(
        {"r2": 0.4, "r2_arousal": 0.8, "r2_valence": 0.0})

    with pytest.raises(ValueError, match="unknown metric"):
        metrics.compute(TASKS["nsynth_pitch"], [0], [0], metrics=["f1"])
