"""Write one weights file's validation reports, and the plots of the best one.

Every CSV goes through :func:`cnnhub.evaluation.safe_csv.write_csv_safe` (atomic, UTF-8,
formula-injection safe); every PNG through :func:`cnnhub.atomic.save_figure`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from cnnhub.errors import CnnhubError
from cnnhub.evaluation.metrics import (
    confusion_frame,
    predictions_frame,
    summary_metrics,
    threshold_metrics,
    validate_inputs,
)
from cnnhub.evaluation.safe_csv import write_csv_safe


def _check_stem(stem: str) -> str:
    if (
        not isinstance(stem, str)
        or not stem
        or stem in {".", ".."}
        or any(sep in stem for sep in ("/", "\\", "\0"))
    ):
        raise ValueError(
            "`stem` must be a plain file-name stem without folder separators. "
            f"Received: stem={stem!r}"
        )
    return stem


def report_paths(folder: str | os.PathLike, stem: str) -> dict[str, Path]:
    """Paths of the four CSVs :func:`write_weight_reports` writes for ``stem``."""
    folder = Path(folder)
    stem = _check_stem(stem)
    return {
        "predictions": folder / f"{stem}.csv",
        "thresholds": folder / f"{stem}-thresholds.csv",
        "classes": folder / f"{stem}-classes.csv",
        "confusion": folder / f"{stem}-confusion.csv",
    }


def plot_paths(folder: str | os.PathLike, stem: str) -> dict[str, Path]:
    """Paths of the three PNGs :func:`write_best_plots` writes for ``stem``."""
    folder = Path(folder)
    stem = _check_stem(stem)
    return {
        "confusion": folder / f"{stem}-confusion.png",
        "thresholds": folder / f"{stem}-thresholds.png",
        "class_f1": folder / f"{stem}-class_f1.png",
    }


def row_prefix(weights_name: str | None, epoch: int | None) -> dict[str, Any]:
    """The leading ``weights_name``/``epoch`` keys of an analysis-report row (each only
    when given)."""
    prefix: dict[str, Any] = {}
    if weights_name is not None:
        prefix["weights_name"] = weights_name
    if epoch is not None:
        prefix["epoch"] = int(epoch)
    return prefix


def write_weight_reports(
    folder: str | os.PathLike,
    stem: str,
    image_paths: Sequence[str | os.PathLike],
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    class_names: Sequence[str],
    thresholds: Iterable[float] | None = None,
    *,
    weights_name: str | None = None,
    epoch: int | None = None,
) -> dict[str, Any]:
    """Score one weights file on the validation set and write its four CSVs into ``folder``.

    Files (all atomic, UTF-8, formula-injection safe):

    * ``<stem>.csv`` - one row per image (:func:`~cnnhub.evaluation.metrics.predictions_frame`);
    * ``<stem>-thresholds.csv`` - overall metrics per threshold;
    * ``<stem>-classes.csv`` - per-class metrics per threshold;
    * ``<stem>-confusion.csv`` - confusion matrix of the plain argmax predictions.

    Args:
        folder: destination folder (created if needed).
        stem: file-name stem, e.g. the weights file name without ``.weights.h5``.
        image_paths, y_true, proba, class_names, thresholds: as in
            :func:`~cnnhub.evaluation.metrics.threshold_metrics`.
        weights_name, epoch: when given, copied into every returned row so the rows can go
            straight into :func:`~cnnhub.evaluation.selection.analysis_report`.

    Returns:
        ``{"rows": [...], "log_loss": float, "top5_accuracy": float | None, "ece": float,
        "overall": DataFrame, "per_class": DataFrame, "confusion": DataFrame,
        "files": {"predictions", "thresholds", "classes", "confusion": Path}}``.
        Each row is one threshold's overall metrics plus ``log_loss``, ``ece`` (and
        ``top5_accuracy`` when there are more than 5 classes; the key is absent otherwise).
        The frames are the unescaped originals, ready for :func:`write_best_plots` and
        :func:`~cnnhub.evaluation.selection.choose_best` (``per_class``).
    """
    paths = report_paths(folder, stem)
    labels, array, names = validate_inputs(y_true, proba, class_names)
    overall, per_class = threshold_metrics(labels, array, names, thresholds)
    predictions = predictions_frame(image_paths, labels, array, names)
    confusion = confusion_frame(labels, array.argmax(axis=1), names)
    summary = summary_metrics(labels, array, len(names))

    write_csv_safe(paths["predictions"], predictions)
    write_csv_safe(paths["thresholds"], overall)
    write_csv_safe(paths["classes"], per_class)
    write_csv_safe(paths["confusion"], confusion)

    extra: dict[str, Any] = {"log_loss": summary["log_loss"], "ece": summary["ece"]}
    if summary["top5_accuracy"] is not None:
        extra["top5_accuracy"] = summary["top5_accuracy"]
    prefix = row_prefix(weights_name, epoch)
    rows = [
        prefix | {k: _python(v) for k, v in record.items()} | extra
        for record in overall.to_dict("records")
    ]
    return {
        "rows": rows,
        "log_loss": summary["log_loss"],
        "top5_accuracy": summary["top5_accuracy"],
        "ece": summary["ece"],
        "overall": overall,
        "per_class": per_class,
        "confusion": confusion,
        "files": paths,
    }


def predictions_arrays(
    predictions: pd.DataFrame, class_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of a per-image report (``<stem>.csv``).

    Class names are matched as text: a CSV reader turns a class named ``7`` into a number.
    """
    index = {name: i for i, name in enumerate(class_names)}
    labels = predictions["actual"].astype(str).map(index)
    if labels.isna().any():
        raise CnnhubError(
            "A per-image report names a class the run does not have. Received: "
            f"{predictions['actual'][labels.isna()].iloc[0]!r}"
        )
    labels = labels.to_numpy(dtype=np.int64)
    proba = predictions[[f"p_{name}" for name in class_names]].to_numpy(dtype=np.float64)
    return labels, proba


def _python(value: Any) -> Any:
    """NumPy scalar -> plain Python value (JSON-friendly rows)."""
    return value.item() if hasattr(value, "item") else value


def write_best_plots(
    folder: str | os.PathLike,
    stem: str,
    confusion: pd.DataFrame,
    overall: pd.DataFrame,
    per_class: pd.DataFrame,
    threshold: float,
) -> dict[str, Path]:
    """Write the best weights file's three PNGs into ``folder``.

    ``<stem>-confusion.png`` (from ``confusion``), ``<stem>-thresholds.png`` (curves from
    ``overall``) and ``<stem>-class_f1.png`` (per-class F1 from ``per_class`` at the chosen
    ``threshold``). The frames are those :func:`write_weight_reports` returned (or its CSVs
    read back with :func:`~cnnhub.evaluation.safe_csv.read_csv_safe`).

    Returns:
        ``{"confusion", "thresholds", "class_f1": Path}``.
    """
    from cnnhub.evaluation import plots  # matplotlib only when plotting

    paths = plot_paths(folder, stem)
    if isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise CnnhubError(
            f"`threshold` must be a number between 0 and 1. Received: threshold={threshold!r}"
        )
    plots.plot_confusion(
        confusion, paths["confusion"], title=f"{stem}: confusion matrix (threshold 0)"
    )
    plots.plot_threshold_curves(
        overall, paths["thresholds"], title=f"{stem}: metrics by confidence threshold"
    )
    plots.plot_class_f1(
        per_class,
        threshold,
        paths["class_f1"],
        title=f"{stem}: F1 per class at threshold {float(threshold):g}",
    )
    return paths
