"""Threshold-based precision/recall for one set of weights, scored on the validation set.

Semantics (all functions here follow them exactly):

* An image is *accepted* at threshold ``t`` when its top confidence (largest probability)
  is ``>= t``; its prediction (argmax, first index on ties) then counts, otherwise the model
  abstains on it.
* For class ``c``: ``TP`` = accepted, predicted ``c``, actual ``c``; ``FP`` = accepted,
  predicted ``c``, actual not ``c``; ``FN`` = actual ``c`` and not (accepted and predicted
  ``c``); ``TN = N - TP - FP - FN``.
* ``precision = TP / (TP + FP)`` (0 when nothing is accepted as ``c``), ``recall =
  TP / (TP + FN)`` (0 when the class has no images), ``f1`` their harmonic mean (0 when both
  are 0). At ``t = 0`` these equal scikit-learn's
  ``precision_recall_fscore_support(labels=range(K), zero_division=0)``.
* Overall: ``coverage = accepted / N``; ``accuracy = recall_micro = correct accepted / N``;
  ``precision_micro = correct accepted / accepted`` (0 when nothing is accepted);
  ``f1_micro`` their harmonic mean; ``*_macro`` = unweighted means over all ``K`` classes.

The threshold comparison is made in the dtype of the probabilities, exactly like
``proba.max(axis=1) >= t`` with a Python float ``t`` under NumPy 2: a float32 confidence of
``0.95`` is accepted at ``t = 0.95``.

The threshold tables are vectorised: one pass over the images (argmax, ``searchsorted``,
``bincount``) and then arithmetic on ``thresholds x classes`` count tables, because
scikit-learn would need one call per threshold. The threshold-free figures (confusion matrix,
log loss, top-5 accuracy) are scikit-learn's own functions. No TensorFlow here.

Errors: values a user controls (class names, thresholds) and unusable data (empty validation
set, NaN probabilities) raise :class:`~cnnhub.errors.CnnhubError`; arrays whose shapes do not
fit together (a bug in the caller) raise :class:`ValueError`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from numbers import Real
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import confusion_matrix, log_loss, top_k_accuracy_score

from cnnhub.errors import CnnhubError
from cnnhub.evaluation.calibration import expected_calibration_error

OVERALL_COLUMNS = [
    "threshold",
    "coverage",
    "accuracy",
    "precision_micro",
    "recall_micro",
    "f1_micro",
    "precision_macro",
    "recall_macro",
    "f1_macro",
]
"""Columns of ``<stem>-thresholds.csv``, in order."""

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
]
"""Columns of ``<stem>-classes.csv``, in order."""

PREDICTION_COLUMNS = ["image_path", "actual", "predicted", "confidence", "correct"]
"""Leading columns of ``<stem>.csv``; one ``p_<class>`` column per class follows."""

TOP_K = 5
"""``top5_accuracy`` is reported only when there are more than this many classes."""

_CHUNK_ELEMENTS = 1 << 22  # rows x classes scored at once by the scikit-learn metrics

def default_thresholds() -> list[float]:
    """Return the default threshold grid ``[0.0, 0.05, ..., 0.95, 0.99]`` (21 rounded floats)."""
    return [round(0.05 * i, 2) for i in range(20)] + [0.99]


# --------------------------------------------------------------------------- validation


def _describe(value: Any) -> str:
    """Short description of an argument for ``Received: ...`` (no huge array dumps)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"array of shape {tuple(shape)} and dtype {getattr(value, 'dtype', '?')}"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def validate_class_names(class_names: Sequence[str]) -> list[str]:
    """Check that ``class_names`` is a non-empty list of distinct, non-empty strings."""
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Iterable):
        raise CnnhubError(
            "`class_names` must be a list of class-name strings. "
            f"Received: class_names={_describe(class_names)}"
        )
    names = list(class_names)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise CnnhubError(
            "`class_names` must be a non-empty list of non-empty strings. "
            f"Received: class_names={_describe(names)}"
        )
    if len(set(names)) != len(names):
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        raise CnnhubError(
            "`class_names` must not repeat a name. "
            f"Received: class_names with duplicates {duplicates!r}"
        )
    return names


def validate_thresholds(thresholds: Iterable[float] | None) -> np.ndarray:
    """Return ``thresholds`` (default: :func:`default_thresholds`) as a float64 array.

    Thresholds must be distinct numbers in ``[0, 1]``; their order is kept.
    """
    if thresholds is None:
        return np.asarray(default_thresholds(), dtype=np.float64)
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Iterable):
        raise CnnhubError(
            "`thresholds` must be a list of numbers between 0 and 1. "
            f"Received: thresholds={_describe(thresholds)}"
        )
    values = list(np.ravel(thresholds)) if isinstance(thresholds, np.ndarray) else list(thresholds)
    if not values or not all(
        isinstance(v, (Real, np.floating, np.integer))
        and not isinstance(v, (bool, np.bool_))
        and math.isfinite(float(v))
        and 0.0 <= float(v) <= 1.0
        for v in values
    ):
        raise CnnhubError(
            "`thresholds` must be a non-empty list of numbers between 0 and 1. "
            f"Received: thresholds={_describe(values)}"
        )
    array = np.asarray([float(v) for v in values], dtype=np.float64)
    if len(np.unique(array)) != len(array):
        raise CnnhubError(
            "`thresholds` must not repeat a value. "
            f"Received: thresholds={_describe([float(v) for v in values])}"
        )
    return array


def validate_proba(proba: npt.ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Return ``proba`` as a 2-D float array ``(N, K)`` of finite values in ``[0, 1]``.

    float16/float32/float64 input keeps its dtype (log-loss clipping depends on it, as in
    scikit-learn); any other numeric input becomes float64.
    """
    array = np.asarray(proba)
    if array.dtype.kind not in "fiu":
        raise ValueError(
            "`proba` must be a numeric array of class probabilities. "
            f"Received: proba={_describe(array)}"
        )
    if array.dtype not in (np.float16, np.float32, np.float64):
        array = array.astype(np.float64)
    if array.ndim != 2 or (num_classes is not None and array.shape[1] != num_classes):
        expected = "(N, K)" if num_classes is None else f"(N, {num_classes})"
        raise ValueError(
            f"`proba` must have shape {expected}: one row per image, one column per class. "
            f"Received: proba={_describe(array)}"
        )
    if array.shape[0] == 0:
        raise CnnhubError(
            "The validation set must contain at least one image. "
            f"Received: proba={_describe(array)}"
        )
    if array.shape[1] == 0:
        raise ValueError(
            f"`proba` must have at least one class column. Received: {_describe(array)}"
        )
    if not np.all(np.isfinite(array)):
        raise CnnhubError(
            "`proba` must not contain NaN or infinite values (the model may have diverged; "
            "try a lower learning rate). "
            f"Received: proba with {int(np.count_nonzero(~np.isfinite(array)))} non-finite values"
        )
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            "`proba` must hold probabilities between 0 and 1 (use a softmax output). "
            f"Received: proba with values from {low} to {high}"
        )
    return array


def validate_labels(
    labels: npt.ArrayLike, num_classes: int, num_images: int | None = None, name: str = "y_true"
) -> np.ndarray:
    """Return ``labels`` as a 1-D int64 array of class indices in ``[0, num_classes)``.

    Integer arrays are accepted, and float arrays whose values are whole numbers.
    """
    array = np.asarray(labels)
    if (
        array.dtype.kind == "f"
        and array.size
        and np.all(np.isfinite(array))
        and np.all(array == np.round(array))
    ):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(
            f"`{name}` must be an array of integer class indices. "
            f"Received: {name}={_describe(array)}"
        )
    if array.ndim != 1 or (num_images is not None and array.shape[0] != num_images):
        expected = "(N,)" if num_images is None else f"({num_images},), one entry per image"
        raise ValueError(
            f"`{name}` must have shape {expected}. Received: {name}={_describe(array)}"
        )
    array = array.astype(np.int64, copy=False)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"`{name}` must hold class indices from 0 to {num_classes - 1} "
            f"(one per class name). Received: {name} with values from {int(array.min())} "
            f"to {int(array.max())}"
        )
    return array


def validate_inputs(
    y_true: npt.ArrayLike, proba: npt.ArrayLike, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate the three usual inputs together; return ``(labels, proba, class_names)``."""
    names = validate_class_names(class_names)
    array = validate_proba(proba, num_classes=len(names))
    labels = validate_labels(y_true, len(names), num_images=array.shape[0])
    return labels, array, names


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


# --------------------------------------------------------------------------- threshold metrics


def _threshold_counts(
    labels: np.ndarray, proba: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count tables for every threshold and class.

    Returns ``tp`` and ``predicted`` (accepted and predicted as the class), both
    ``(T, K)`` int64 in the order of ``thresholds``, and ``support`` ``(K,)``.
    """
    num_images, num_classes = proba.shape
    num_thresholds = len(thresholds)
    predicted = proba.argmax(axis=1)
    confidence = proba[np.arange(num_images), predicted]
    order = np.argsort(thresholds, kind="stable")
    # Compare in the probabilities' dtype (NumPy 2 semantics of ``confidence >= t``).
    sorted_thresholds = thresholds[order].astype(confidence.dtype)
    # bucket[i] = how many (sorted) thresholds image i passes; it is accepted at sorted
    # threshold j exactly when j < bucket[i].
    bucket = np.searchsorted(sorted_thresholds, confidence, side="right")
    width = num_thresholds + 1
    cell = predicted * width + bucket
    size = num_classes * width
    by_bucket = np.bincount(cell, minlength=size).reshape(num_classes, width)
    correct = predicted == labels
    tp_by_bucket = np.bincount(cell[correct], minlength=size).reshape(num_classes, width)

    def accepted_at(table: np.ndarray) -> np.ndarray:
        at_least = np.cumsum(table[:, ::-1], axis=1)[:, ::-1]  # images with bucket >= b
        sorted_counts = at_least[:, 1:]  # (K, T): accepted at sorted threshold j
        unsorted = np.empty_like(sorted_counts)
        unsorted[:, order] = sorted_counts
        return unsorted.T

    support = np.bincount(labels, minlength=num_classes)
    return accepted_at(tp_by_bucket), accepted_at(by_bucket), support


def threshold_metrics(
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    class_names: Sequence[str],
    thresholds: Iterable[float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Overall and per-class threshold metrics (see the module docstring for definitions).

    Args:
        y_true: ``(N,)`` integer class indices.
        proba: ``(N, K)`` class probabilities.
        class_names: ``K`` distinct class names, in class-index order.
        thresholds: distinct confidence thresholds in ``[0, 1]``; default
            :func:`default_thresholds`. Rows keep the given order.

    Returns:
        ``(overall, per_class)``: ``overall`` has one row per threshold and columns
        :data:`OVERALL_COLUMNS`; ``per_class`` has one row per threshold and class
        (threshold-major, classes in index order) and columns :data:`CLASS_COLUMNS`.
    """
    labels, array, names = validate_inputs(y_true, proba, class_names)
    grid = validate_thresholds(thresholds)
    num_images, num_classes = array.shape
    tp, predicted, support = _threshold_counts(labels, array, grid)

    fp = predicted - tp
    fn = support[None, :] - tp
    tn = num_images - tp - fp - fn
    precision = _divide(tp, predicted)
    recall = _divide(tp, np.broadcast_to(support, tp.shape))
    f1 = _divide(2 * tp, predicted + support[None, :])

    accepted = predicted.sum(axis=1)
    correct = tp.sum(axis=1)
    overall = pd.DataFrame(
        {
            "threshold": grid,
            "coverage": accepted / num_images,
            "accuracy": correct / num_images,
            "precision_micro": _divide(correct, accepted),
            "recall_micro": correct / num_images,
            "f1_micro": _divide(2 * correct, accepted + num_images),
            "precision_macro": precision.mean(axis=1),
            "recall_macro": recall.mean(axis=1),
            "f1_macro": f1.mean(axis=1),
        },
        columns=OVERALL_COLUMNS,
    )
    per_class = pd.DataFrame(
        {
            "threshold": np.repeat(grid, num_classes),
            "class": np.tile(np.asarray(names, dtype=object), len(grid)),
            "tp": tp.ravel().astype(np.int64),
            "fp": fp.ravel().astype(np.int64),
            "fn": fn.ravel().astype(np.int64),
            "tn": tn.ravel().astype(np.int64),
            "precision": precision.ravel(),
            "recall": recall.ravel(),
            "f1": f1.ravel(),
            "support": np.tile(support, len(grid)).astype(np.int64),
        },
        columns=CLASS_COLUMNS,
    )
    return overall, per_class


# --------------------------------------------------------------------------- other reports


def confusion_frame(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, class_names: Sequence[str]
) -> pd.DataFrame:
    """Confusion matrix as a frame: one row per actual class, one column per predicted class.

    The first column, ``actual``, holds the row's class name; the other columns are named by
    the class names in index order and hold counts (int64):
    ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(K))``.
    """
    names = validate_class_names(class_names)
    num_classes = len(names)
    actual = validate_labels(y_true, num_classes)
    predicted = validate_labels(y_pred, num_classes, num_images=actual.shape[0], name="y_pred")
    matrix = confusion_matrix(actual, predicted, labels=np.arange(num_classes)).astype(np.int64)
    frame = pd.DataFrame(matrix, columns=pd.Index(names, dtype=object))
    frame.insert(0, "actual", pd.Series(names, dtype=object), allow_duplicates=True)
    return frame


def _chunked_mean(
    metric: Callable[..., float], labels: np.ndarray, proba: np.ndarray, **kwargs: Any
) -> float:
    """Mean over all images of a scikit-learn metric that takes ``normalize=False``.

    scikit-learn's log loss and top-k accuracy build ``N x K`` one-hot and ranking arrays, so
    rows go in chunks of about ``_CHUNK_ELEMENTS`` values and memory stays bounded for large
    evaluation sets; the per-chunk sums add up to exactly the unchunked result.
    """
    all_labels = np.arange(proba.shape[1])
    rows = max(1, _CHUNK_ELEMENTS // proba.shape[1])
    total = sum(
        float(
            metric(
                labels[start : start + rows],
                proba[start : start + rows],
                normalize=False,
                labels=all_labels,
                **kwargs,
            )
        )
        for start in range(0, len(labels), rows)
    )
    return total / len(labels)


def summary_metrics(
    y_true: npt.ArrayLike, proba: npt.ArrayLike, num_classes: int
) -> dict[str, float | None]:
    """Threshold-free metrics: ``{"log_loss": float, "top5_accuracy": float | None, "ece":
    float}``.

    ``log_loss`` is ``sklearn.metrics.log_loss(y_true, proba, labels=range(K))``
    (probabilities clipped to ``[eps, 1 - eps]`` with ``eps`` the machine epsilon of
    ``proba``'s dtype, no renormalisation). ``top5_accuracy`` is
    ``top_k_accuracy_score(..., k=5, labels=range(K))`` (among equal scores the higher class
    index ranks first) and is ``None`` when ``K <= 5``. ``ece`` is the expected calibration
    error over 15 confidence bins (:mod:`cnnhub.evaluation.calibration`). A classifier has at
    least two classes (scikit-learn's log loss is undefined for one).
    """
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 2
    ):
        raise ValueError(
            "`num_classes` must be an integer of at least 2. "
            f"Received: num_classes={num_classes!r}"
        )
    array = validate_proba(proba, num_classes=int(num_classes))
    labels = validate_labels(y_true, int(num_classes), num_images=array.shape[0])
    top5 = (
        _chunked_mean(top_k_accuracy_score, labels, array, k=TOP_K) if num_classes > TOP_K else None
    )
    with warnings.catch_warnings():
        # The probabilities are scored as given (a softmax output); rows that do not sum to
        # exactly one (rounded or float16 outputs) are not the user's to fix.
        warnings.filterwarnings("ignore", message=".*do not sum to one", category=UserWarning)
        loss = _chunked_mean(log_loss, labels, array)
    ece = expected_calibration_error(labels, array)
    return {"log_loss": loss, "top5_accuracy": top5, "ece": ece}


def predictions_frame(
    image_paths: Sequence[str | os.PathLike],
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    class_names: Sequence[str],
) -> pd.DataFrame:
    """One row per image: ``image_path, actual, predicted, confidence, correct, p_<class>...``.

    ``actual``/``predicted`` are class names, ``confidence`` the top probability, ``correct``
    an int 0/1 (prediction at threshold 0, i.e. plain argmax), then one probability column
    ``p_<class name>`` per class in class-index order.
    """
    labels, array, names = validate_inputs(y_true, proba, class_names)
    if isinstance(image_paths, (str, bytes, os.PathLike)) or not isinstance(image_paths, Iterable):
        raise TypeError(
            "`image_paths` must be a list of paths, one per image. "
            f"Received: image_paths={_describe(image_paths)}"
        )
    paths = [os.fspath(path) for path in image_paths]
    if len(paths) != array.shape[0]:
        raise ValueError(
            f"`image_paths` must have one entry per image ({array.shape[0]}). "
            f"Received: {len(paths)} image paths"
        )
    predicted = array.argmax(axis=1)
    name_array = np.asarray(names, dtype=object)
    frame = pd.DataFrame(
        {
            "image_path": pd.Series(paths, dtype=object),
            "actual": name_array[labels],
            "predicted": name_array[predicted],
            "confidence": array[np.arange(array.shape[0]), predicted],
            "correct": (predicted == labels).astype(np.int64),
        },
        columns=PREDICTION_COLUMNS,
    )
    probabilities = pd.DataFrame(
        array, columns=pd.Index([f"p_{name}" for name in names], dtype=object)
    )
    return pd.concat([frame, probabilities], axis=1)
