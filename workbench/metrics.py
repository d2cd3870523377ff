"""Downstream metrics, computed once over the whole test set (GUIDE 2.5).

Every function takes the complete set of ground truths and predictions of a split,
never a batch: macro ROC-AUC averaged over batches is not macro ROC-AUC.

Array conventions (what :func:`workbench.embed.target_array` produces):

- multilabel: ``y_true`` multi-hot ``[N, C]`` (0/1), ``scores`` ``[N, C]`` (any monotone
  score: probabilities or logits give the same ranking metrics);
- multiclass: ``y_true`` class indices ``[N]``, ``scores`` ``[N, C]`` (argmax is the
  prediction) or predicted indices ``[N]``;
- regression: ``y_true`` and ``scores`` ``[N, K]`` (EmoMusic: K = 2, arousal then valence).

:func:`compute` dispatches on a task's ordered metric list (its first metric selects
models) through :data:`METRICS`, a dict from metric name to function.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "METRICS", "MetricWarning", "warn_once", "accuracy", "average_precision_macro", "chroma_accuracy", "compute",
    "key_weighted_score", "mir_eval_key", "pitch_midi", "r2", "r2_arousal", "r2_valence",
    "roc_auc_macro",
]

NSYNTH_MIDI_OFFSET = 9  # nsynth_pitch class index 0 is MIDI 9
PITCH_CLASSES = 12
AROUSAL_COLUMN = 0  # EmoMusic targets are [arousal, valence]
VALENCE_COLUMN = 1
_MIR_EVAL_MODES = ("major", "minor")


class MetricWarning(UserWarning):
    """A metric had to leave something out (e.g. a tag with no positive test example).

    Each message is shown once per process (:func:`warn_once`): probing several seeds,
    epochs or checkpoints on one test set would otherwise repeat it for every score, since
    every ``warnings.catch_warnings`` block in the libraries resets Python's own dedupe."""


_WARNED: set[str] = set()


def warn_once(message: str, stacklevel: int = 2) -> bool:
    """Emit ``message`` as a :class:`MetricWarning` the first time only; True if emitted."""
    if message in _WARNED:
        return False
    _WARNED.add(message)
    warnings.warn(message, MetricWarning, stacklevel=stacklevel + 1)
    return True


# ---------------------------------------------------------------- helpers

def _as_2d(a: np.ndarray | Sequence, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {a.shape}.")
    return a


def _predicted_index(scores: np.ndarray | Sequence) -> np.ndarray:
    """Class indices from ``[N, C]`` scores (argmax) or from ``[N]`` indices."""
    s = np.asarray(scores)
    if s.ndim == 2:
        return s.argmax(axis=1)
    if s.ndim == 1:
        return s.astype(np.int64)
    raise ValueError(f"predictions must be [N] indices or [N, C] scores, got shape {s.shape}.")


def _check_lengths(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} rows but the predictions have {len(y_pred)}.")
    if len(y_true) == 0:
        raise ValueError("no examples to score: the test set is empty.")


def _valid_label_columns(y_true: np.ndarray, classes: Sequence[str] | None, metric: str) -> np.ndarray:
    """Columns with at least one positive and one negative; warn about the others."""
    pos = y_true.sum(axis=0)
    ok = (pos > 0) & (pos < len(y_true))
    if not ok.all():
        skipped = np.flatnonzero(~ok)
        names = [classes[i] if classes is not None and i < len(classes) else str(i) for i in skipped]
        msg = (f"{metric}: skipped {len(skipped)} of {y_true.shape[1]} classes with no positive or no "
               f"negative test example ({', '.join(names[:10])}{' …' if len(names) > 10 else ''}); "
               f"the macro average is over the remaining {int(ok.sum())}.")
        warn_once(msg, stacklevel=3)
    if not ok.any():
        raise ValueError(f"{metric}: no class has both positive and negative test examples; "
                         "the test split is too small to score.")
    return ok


# ---------------------------------------------------------------- tagging

def _tag_arrays(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Tag targets (int64) and scores (float64), both [N, C] of one shape."""
    y = _as_2d(y_true, "y_true").astype(np.int64)
    s = _as_2d(scores, "scores").astype(np.float64)
    _check_lengths(y, s)
    if y.shape != s.shape:
        raise ValueError(f"y_true {y.shape} and scores {s.shape} must have the same shape.")
    return y, s


def roc_auc_macro(y_true, scores, classes: Sequence[str] | None = None) -> float:
    """Macro ROC-AUC over classes with both positives and negatives in ``y_true``."""
    from sklearn.metrics import roc_auc_score

    y, s = _tag_arrays(y_true, scores)
    ok = _valid_label_columns(y, classes, "roc_auc")
    return float(roc_auc_score(y[:, ok], s[:, ok], average="macro"))


def average_precision_macro(y_true, scores, classes: Sequence[str] | None = None) -> float:
    """Macro average precision (PR-AUC) over classes with positives and negatives."""
    from sklearn.metrics import average_precision_score

    y, s = _tag_arrays(y_true, scores)
    ok = _valid_label_columns(y, classes, "average_precision")
    return float(average_precision_score(y[:, ok], s[:, ok], average="macro"))


# ---------------------------------------------------------------- classification

def accuracy(y_true, scores) -> float:
    """Top-1 accuracy; ``scores`` are ``[N, C]`` scores or ``[N]`` predicted indices."""
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = _predicted_index(scores)
    _check_lengths(y, p)
    return float((y == p).mean())


def pitch_midi(indices, classes: Sequence[str] | None = None,
               midi_offset: int = NSYNTH_MIDI_OFFSET) -> np.ndarray:
    """MIDI numbers of pitch class indices: ``int(classes[i])`` when the class names are
    MIDI numbers (as for ``nsynth_pitch``), otherwise ``i + midi_offset``."""
    idx = np.asarray(indices).astype(np.int64)
    if classes:
        try:
            table = np.array([int(c) for c in classes], dtype=np.int64)
        except (TypeError, ValueError):
            table = None
        if table is not None:
            if idx.size and (idx.min() < 0 or idx.max() >= len(table)):
                raise ValueError(f"pitch index out of range 0..{len(table) - 1}.")
            return table[idx]
    return idx + midi_offset


def chroma_accuracy(y_true, scores, classes: Sequence[str] | None = None,
                    midi_offset: int = NSYNTH_MIDI_OFFSET) -> float:
    """Pitch accuracy up to octave errors: correct when the MIDI numbers agree mod 12."""
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = _predicted_index(scores)
    _check_lengths(y, p)
    t = pitch_midi(y, classes, midi_offset) % PITCH_CLASSES
    e = pitch_midi(p, classes, midi_offset) % PITCH_CLASSES
    return float((t == e).mean())


def mir_eval_key(name: str) -> str:
    """Our key class name (e.g. ``"Eb minor"``, ``"C# major"``) as a mir_eval key string."""
    import mir_eval

    parts = str(name).replace(":", " ").split()
    if len(parts) != 2 or parts[1].lower() not in _MIR_EVAL_MODES:
        raise ValueError(f"key class {name!r} is not of the form '<tonic> major|minor' (e.g. 'Eb minor').")
    tonic = parts[0][0].upper() + parts[0][1:].replace("♭", "b").replace("♯", "#")
    key = f"{tonic} {parts[1].lower()}"
    mir_eval.key.validate_key(key)  # raises ValueError naming the bad tonic
    return key


def key_weighted_score(y_true, scores, classes: Sequence[str]) -> float:
    """MIREX weighted key score (``mir_eval.key.weighted_score``) averaged over tracks:
    same key 1, estimate a fifth above 0.5, relative 0.3, parallel 0.2, other 0."""
    import mir_eval

    if not classes:
        raise ValueError("key_weighted_score needs the task's key class names (e.g. KEY_CLASSES).")
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = _predicted_index(scores)
    _check_lengths(y, p)
    names = [mir_eval_key(c) for c in classes]
    return float(np.mean([mir_eval.key.weighted_score(names[t], names[e]) for t, e in zip(y, p)]))


# ---------------------------------------------------------------- regression

def r2(y_true, y_pred) -> float:
    """Coefficient of determination, averaged uniformly over output columns."""
    from sklearn.metrics import r2_score

    y = _as_2d(y_true, "y_true").astype(np.float64)
    p = _as_2d(y_pred, "y_pred").astype(np.float64)
    _check_lengths(y, p)
    if y.shape != p.shape:
        raise ValueError(f"y_true {y.shape} and predictions {p.shape} must have the same shape.")
    return float(r2_score(y, p, multioutput="uniform_average"))


def _column_r2(y_true, y_pred, column: int, what: str) -> float:
    y = _as_2d(y_true, "y_true")
    p = _as_2d(y_pred, "y_pred")
    if y.shape[1] <= column or p.shape[1] <= column:
        raise ValueError(f"r2_{what} needs column {column} ({what}) in targets and predictions; "
                         f"got shapes {y.shape} and {p.shape}.")
    return r2(y[:, column], p[:, column])


def r2_arousal(y_true, y_pred) -> float:
    """R² of the arousal column (column 0)."""
    return _column_r2(y_true, y_pred, AROUSAL_COLUMN, "arousal")


def r2_valence(y_true, y_pred) -> float:
    """R² of the valence column (column 1)."""
    return _column_r2(y_true, y_pred, VALENCE_COLUMN, "valence")


# ---------------------------------------------------------------- dispatch

MetricFn = Callable[[np.ndarray, np.ndarray, Sequence[str]], float]

METRICS: dict[str, MetricFn] = {
    "roc_auc": lambda y, s, c: roc_auc_macro(y, s, c),
    "average_precision": lambda y, s, c: average_precision_macro(y, s, c),
    "accuracy": lambda y, s, c: accuracy(y, s),
    "chroma_accuracy": lambda y, s, c: chroma_accuracy(y, s, c),
    "weighted_score": lambda y, s, c: key_weighted_score(y, s, c),
    "r2": lambda y, s, c: r2(y, s),
    "r2_arousal": lambda y, s, c: r2_arousal(y, s),
    "r2_valence": lambda y, s, c: r2_valence(y, s),
}


def compute(task, y_true, scores, metrics: Sequence[str] | None = None) -> dict[str, float]:
    """Every metric of ``task`` (a :class:`workbench.data.Task`) over the whole split.

    ``metrics`` overrides the task's list. Returns ``{metric name: value}`` in the
    task's order, so the first entry is the model-selection metric.
    """
    names = list(metrics if metrics is not None else task.metrics)
    if not names:
        raise ValueError(f"task {task.name!r} declares no metrics (kind {task.kind!r}); it cannot be probed.")
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown} for task {task.name!r}; known: {sorted(METRICS)}.")
    classes = list(task.classes)
    return {m: METRICS[m](y_true, scores, classes) for m in names}
