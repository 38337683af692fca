"""Multi-label scores for one set of weights: every class is its own yes/no question.

Semantics (every function here follows them, and every figure equals scikit-learn's on the
same multi-hot predictions; ``tests/test_multilabel_metrics.py`` checks it on random data):

* ``y_true`` is an ``(N, K)`` multi-hot matrix (1 = the image has the label; a row of zeros is
  an image with no label), ``proba`` the ``(N, K)`` sigmoid outputs.
* Label ``k`` is *predicted* at threshold ``t`` when ``proba[:, k] >= t``, compared in the
  probabilities' dtype as :mod:`cnnhub.evaluation.metrics` does.
* Per class and threshold: ``tp, fp, fn, tn, precision, recall, f1`` (0 where undefined, as
  ``precision_recall_fscore_support(zero_division=0)`` on that column) and ``support`` (images
  with the label); ``ap`` is ``average_precision_score`` of the column (threshold-free; 0 for a
  label no validation image has, as scikit-learn scores it).
* Overall at one threshold for every class (``-thresholds.csv``) or at each class's own chosen
  threshold (the summary): micro and macro precision/recall/F1 (``f1_score(average="micro" |
  "macro", zero_division=0)``), ``subset_accuracy`` (``accuracy_score``: the whole label set
  right) and ``hamming_loss``; ``map`` is ``average_precision_score(average="macro")``.
* Each class's threshold is chosen on the grid (:func:`choose_class_thresholds`): the best F1,
  or with ``min_precision`` the lowest threshold whose precision reaches it. Ties go to the
  higher threshold (it predicts the label less often for the same score).

The count tables are vectorised (a sort and ``searchsorted`` per class, not one scikit-learn
call per threshold), so scoring stays a small fraction of an epoch. No TensorFlow here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import average_precision_score

from cnnhub.data.multi_hot import join_labels
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.metrics import (
    _describe,
    _divide,
    validate_class_names,
    validate_proba,
    validate_thresholds,
)

CLASS_COLUMNS = [
    "threshold",
    "class",
    "tp",
    "fp",
    "fn",
    "tn",
    "precision",
    "recall",
    "f1",
    "support",
    "ap",
]
"""Columns of a multi-label ``<stem>-classes.csv``: one row per threshold and class."""

OVERALL_COLUMNS = [
    "threshold",
    "precision_micro",
    "recall_micro",
    "f1_micro",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "subset_accuracy",
    "hamming_loss",
]
"""Columns of a multi-label ``<stem>-thresholds.csv``: the same threshold for every class."""

CHOSEN_COLUMNS = ["class", "threshold", "precision", "recall", "f1", "support", "ap"]
"""Columns of ``<stem>-class_thresholds.csv``: each class at its chosen threshold."""

SUMMARY_COLUMNS = [
    "map",
    "f1_micro",
    "f1_macro",
    "precision_micro",
    "recall_micro",
    "precision_macro",
    "recall_macro",
    "subset_accuracy",
    "hamming_loss",
]
"""The figures of one weights file at its chosen per-class thresholds (analysis report row)."""

PREDICTION_COLUMNS = ["image_path", "actual", "predicted", "correct"]
"""Leading columns of a multi-label ``<stem>.csv``; one ``p_<class>`` column per class follows.
``actual``/``predicted`` are label sets joined by the label separator; ``correct`` is 1 when the
predicted set is exactly the actual one."""


# --------------------------------------------------------------------------- validation


def validate_multi_hot(
    y_true: npt.ArrayLike, num_classes: int, num_images: int | None = None
) -> np.ndarray:
    """Return ``y_true`` as an ``(N, K)`` int64 matrix of 0/1 (a multi-hot label matrix)."""
    array = np.asarray(y_true)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    expected = (num_images, num_classes) if num_images is not None else ("N", num_classes)
    if (
        array.ndim != 2
        or array.shape[1] != num_classes
        or (num_images is not None and array.shape[0] != num_images)
    ):
        raise ValueError(
            f"`y_true` must be a multi-hot matrix of shape {expected}. "
            f"Received: y_true={_describe(array)}"
        )
    if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
        raise ValueError(
            f"`y_true` must hold only 0 and 1 (multi-hot). Received: y_true={_describe(array)}"
        )
    return array.astype(np.int64)


def validate_multilabel_inputs(
    y_true: npt.ArrayLike, proba: npt.ArrayLike, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate the usual three inputs together; return ``(multi_hot, proba, class_names)``."""
    names = validate_class_names(class_names)
    array = validate_proba(proba, num_classes=len(names))
    labels = validate_multi_hot(y_true, len(names), num_images=array.shape[0])
    return labels, array, names


def _check_class_thresholds(class_thresholds: npt.ArrayLike, num_classes: int) -> np.ndarray:
    values = np.asarray(class_thresholds, dtype=np.float64).reshape(-1)
    if values.shape != (num_classes,) or not (
        np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    ):
        raise CnnhubError(
            f"`class_thresholds` must hold one number between 0 and 1 per class ({num_classes}). "
            f"Received: class_thresholds={_describe(values)}"
        )
    return values


# --------------------------------------------------------------------------- counts


def threshold_counts(
    labels: np.ndarray, proba: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tp`` and ``predicted`` per threshold and class, both ``(T, K)``, and ``support`` ``(K,)``.

    One sort per class; ``searchsorted`` then counts the scores ``>= t`` for every ``t`` at once.
    """
    num_images, num_classes = proba.shape
    grid = np.asarray(thresholds).astype(proba.dtype)
    tp = np.empty((len(grid), num_classes), dtype=np.int64)
    predicted = np.empty_like(tp)
    for k in range(num_classes):
        column = proba[:, k]
        everyone = np.sort(column)
        positives = np.sort(column[labels[:, k] == 1])
        predicted[:, k] = num_images - np.searchsorted(everyone, grid, side="left")
        tp[:, k] = len(positives) - np.searchsorted(positives, grid, side="left")
    return tp, predicted, labels.sum(axis=0).astype(np.int64)


def _exact_matches(labels: np.ndarray, proba: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Images whose whole label set is right at each threshold of ``grid`` (one for all)."""
    # Right at t exactly when every positive scores >= t and every negative < t.
    lowest_positive = np.where(labels == 1, proba, np.inf).min(axis=1)
    highest_negative = np.where(labels == 0, proba, -np.inf).max(axis=1)
    t = grid.astype(proba.dtype)[None, :]
    right = (lowest_positive[:, None] >= t) & (highest_negative[:, None] < t)
    return right.sum(axis=0)


def _overall(
    tp: np.ndarray, predicted: np.ndarray, support: np.ndarray, exact: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """Micro/macro precision, recall, F1, subset accuracy and Hamming loss from count tables
    ``(T, K)`` (one row per threshold, or one row of per-class thresholds)."""
    fp = predicted - tp
    fn = support[None, :] - tp
    tp_all, predicted_all, support_all = tp.sum(axis=1), predicted.sum(axis=1), support.sum()
    return {
        "precision_micro": _divide(tp_all, predicted_all),
        "recall_micro": _divide(tp_all, np.full_like(tp_all, support_all)),
        "f1_micro": _divide(2 * tp_all, predicted_all + support_all),
        "precision_macro": _divide(tp, predicted).mean(axis=1),
        "recall_macro": _divide(tp, np.broadcast_to(support, tp.shape)).mean(axis=1),
        "f1_macro": _divide(2 * tp, predicted + support[None, :]).mean(axis=1),
        "subset_accuracy": np.asarray(exact, dtype=np.float64) / n,
        "hamming_loss": (fp + fn).sum(axis=1) / (n * tp.shape[1]),
    }


def average_precisions(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """scikit-learn's ``average_precision_score`` of every class column, ``(K,)``."""
    with warnings.catch_warnings():
        # A label no validation image has: scikit-learn warns and scores it 0, as reported.
        warnings.filterwarnings("ignore", message="No positive class found", category=UserWarning)
        return np.asarray(average_precision_score(labels, proba, average=None), dtype=np.float64)


# --------------------------------------------------------------------------- thresholds


def choose_class_thresholds(
    grid: npt.ArrayLike,
    precision: np.ndarray,
    f1: np.ndarray,
    min_precision: float | None = None,
) -> np.ndarray:
    """Each class's threshold from its ``(T, K)`` precision and F1 over ``grid``.

    Without ``min_precision``: the threshold of the best F1. With it: the lowest threshold
    whose precision reaches ``min_precision`` (the one that finds most images of the class at
    that precision); a class that reaches it nowhere gets its most precise threshold. Ties go
    to the higher threshold.
    """
    grid = np.asarray(grid, dtype=np.float64)
    # Visit thresholds from high to low so that argmax's first-index rule favours higher ones.
    order = np.argsort(-grid, kind="stable")
    chosen = np.empty(precision.shape[1], dtype=np.float64)
    for k in range(precision.shape[1]):
        if min_precision is None:
            chosen[k] = grid[order][np.argmax(f1[order, k])]
            continue
        reached = precision[:, k] >= min_precision
        if reached.any():
            chosen[k] = grid[reached].min()
        else:
            chosen[k] = grid[order][np.argmax(precision[order, k])]
    return chosen


def binarize(proba: np.ndarray, class_thresholds: npt.ArrayLike) -> np.ndarray:
    """``(N, K)`` 0/1 predictions: label ``k`` where ``proba[:, k] >= class_thresholds[k]``."""
    thresholds = np.asarray(class_thresholds, dtype=np.float64).astype(proba.dtype)
    return (proba >= thresholds[None, :]).astype(np.int64)


# --------------------------------------------------------------------------- scores


@dataclass
class MultiLabelScores:
    """Everything one weights file scores on one dataset.

    Attributes:
        per_class: :data:`CLASS_COLUMNS` frame, threshold-major (classes in index order).
        overall: :data:`OVERALL_COLUMNS` frame, one row per threshold.
        chosen: :data:`CHOSEN_COLUMNS` frame, one row per class at its threshold.
        summary: :data:`SUMMARY_COLUMNS` -> value at the per-class thresholds.
        class_thresholds: ``{class name: threshold}``.
        predicted: ``(N, K)`` 0/1 predictions at those thresholds.
    """

    per_class: pd.DataFrame
    overall: pd.DataFrame
    chosen: pd.DataFrame
    summary: dict[str, float]
    class_thresholds: dict[str, float]
    predicted: np.ndarray


def multilabel_scores(
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    class_names: Sequence[str],
    thresholds: Iterable[float] | None = None,
    *,
    min_precision: float | None = None,
    class_thresholds: npt.ArrayLike | None = None,
) -> MultiLabelScores:
    """Score multi-label predictions (see the module docstring for every definition).

    Args:
        y_true: ``(N, K)`` multi-hot labels.
        proba: ``(N, K)`` per-class probabilities (sigmoid outputs).
        class_names: ``K`` distinct class names, in index order.
        thresholds: the grid (default :func:`cnnhub.evaluation.metrics.default_thresholds`).
        min_precision: choose each class's threshold as the lowest reaching this precision
            instead of by best F1.
        class_thresholds: use these ``K`` thresholds instead of choosing them (held-out data is
            scored at the thresholds chosen on validation).
    """
    labels, array, names = validate_multilabel_inputs(y_true, proba, class_names)
    grid = validate_thresholds(thresholds)
    num_images, num_classes = array.shape
    tp, predicted, support = threshold_counts(labels, array, grid)
    ap = average_precisions(labels, array)
    precision = _divide(tp, predicted)
    recall = _divide(tp, np.broadcast_to(support, tp.shape))
    f1 = _divide(2 * tp, predicted + support[None, :])

    per_class = pd.DataFrame(
        {
            "threshold": np.repeat(grid, num_classes),
            "class": np.tile(np.asarray(names, dtype=object), len(grid)),
            "tp": tp.ravel(),
            "fp": (predicted - tp).ravel(),
            "fn": (support[None, :] - tp).ravel(),
            "tn": (num_images - predicted - support[None, :] + tp).ravel(),
            "precision": precision.ravel(),
            "recall": recall.ravel(),
            "f1": f1.ravel(),
            "support": np.tile(support, len(grid)),
            "ap": np.tile(ap, len(grid)),
        },
        columns=CLASS_COLUMNS,
    )
    overall = pd.DataFrame(
        {"threshold": grid}
        | _overall(tp, predicted, support, _exact_matches(labels, array, grid), num_images),
        columns=OVERALL_COLUMNS,
    )

    if class_thresholds is None:
        chosen_t = choose_class_thresholds(grid, precision, f1, min_precision)
    else:
        chosen_t = _check_class_thresholds(class_thresholds, num_classes)
    hits = binarize(array, chosen_t)
    tp_c = (hits & labels).sum(axis=0)[None, :]
    predicted_c = hits.sum(axis=0)[None, :]
    exact = np.array([(hits == labels).all(axis=1).sum()])
    figures = _overall(tp_c, predicted_c, support, exact, num_images)
    summary = {"map": float(ap.mean())} | {key: float(value[0]) for key, value in figures.items()}
    chosen = pd.DataFrame(
        {
            "class": pd.Series(names, dtype=object),
            "threshold": chosen_t,
            "precision": _divide(tp_c, predicted_c)[0],
            "recall": _divide(tp_c, support[None, :])[0],
            "f1": _divide(2 * tp_c, predicted_c + support[None, :])[0],
            "support": support,
            "ap": ap,
        },
        columns=CHOSEN_COLUMNS,
    )
    return MultiLabelScores(
        per_class=per_class,
        overall=overall,
        chosen=chosen,
        summary={key: summary[key] for key in SUMMARY_COLUMNS},
        class_thresholds={name: float(t) for name, t in zip(names, chosen_t)},
        predicted=hits,
    )


def multilabel_predictions_frame(
    image_paths: Sequence[str | os.PathLike],
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    class_names: Sequence[str],
    predicted: np.ndarray,
    separator: str = "|",
) -> pd.DataFrame:
    """One row per image: :data:`PREDICTION_COLUMNS`, then ``p_<class>`` per class.

    ``predicted`` is the ``(N, K)`` 0/1 matrix at the chosen thresholds
    (:attr:`MultiLabelScores.predicted`).
    """
    labels, array, names = validate_multilabel_inputs(y_true, proba, class_names)
    paths = [os.fspath(path) for path in image_paths]
    if len(paths) != array.shape[0]:
        raise ValueError(
            f"`image_paths` must have one entry per image ({array.shape[0]}). "
            f"Received: {len(paths)} image paths"
        )
    frame = pd.DataFrame(
        {
            "image_path": pd.Series(paths, dtype=object),
            "actual": pd.Series(join_labels(labels, names, separator), dtype=object),
            "predicted": pd.Series(join_labels(predicted, names, separator), dtype=object),
            "correct": (predicted == labels).all(axis=1).astype(np.int64),
        },
        columns=PREDICTION_COLUMNS,
    )
    probabilities = pd.DataFrame(
        array, columns=pd.Index([f"p_{name}" for name in names], dtype=object)
    )
    return pd.concat([frame, probabilities], axis=1)


def summary_row(scores: MultiLabelScores, **prefix: Any) -> dict[str, Any]:
    """One analysis-report row: ``prefix`` (e.g. weights_name, epoch), then the summary."""
    return dict(prefix) | scores.summary
