"""PNG plots of the validation metrics (matplotlib, Agg canvas, no pyplot).

Figures are built with :class:`matplotlib.figure.Figure` on an Agg canvas, so nothing here
touches pyplot's global figure list or the caller's backend, and every file is written
atomically through :func:`cnnhub.atomic.save_figure`.

Class names and file names are untrusted text and must appear literally: each one goes
through :func:`plain_text`, which escapes ``$`` so matplotlib never reads it as mathtext, and
the figures are drawn with ``text.usetex=False`` and ``text.parse_math=True`` (the setting
the escaping relies on) whatever the caller's rcParams say. A class called ``$\\alpha$``
shows up as ``$\\alpha$``, not as a Greek letter.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cnnhub.atomic import save_figure
from cnnhub.display import plot_text
from cnnhub.evaluation.metrics import OVERALL_COLUMNS

MAX_LABELLED_CLASSES = 60
"""Above this many classes, class-name tick labels are left out (they would overlap)."""

MAX_ANNOTATED_CLASSES = 25
"""Up to this many classes, confusion-matrix cells show their counts."""

_RC = {"text.usetex": False, "text.parse_math": True}
# Every overall figure but the threshold itself is a rate in [0, 1].
_RATE_METRICS = [*OVERALL_COLUMNS[1:], "top5_accuracy"]


def plain_text(value: object) -> str:
    """``value`` as matplotlib draws it literally (:func:`cnnhub.display.plot_text`)."""
    return plot_text(value)


@contextlib.contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    """A fresh Agg figure drawn with plain-text settings; missing-glyph warnings are muted
    (a class name in a script the font lacks is drawn with placeholder boxes)."""
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        figure = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(figure)
        yield figure


def _select_threshold(frame: pd.DataFrame, threshold: float, name: str) -> pd.DataFrame:
    if "threshold" not in frame.columns:
        raise ValueError(
            f"`{name}` must have a `threshold` column. Received: {list(frame.columns)}"
        )
    values = frame["threshold"].astype(np.float64)
    chosen = frame[np.isclose(values, float(threshold), rtol=0.0, atol=1e-9)]
    if chosen.empty:
        available = sorted(set(values.round(6)))
        raise ValueError(
            f"`threshold` must be one of the thresholds in `{name}`: {available}. "
            f"Received: threshold={threshold!r}"
        )
    return chosen


def plot_confusion(
    confusion_df: pd.DataFrame, path: str | os.PathLike, title: str | None = None
) -> None:
    """Save a heat map of a :func:`~cnnhub.evaluation.metrics.confusion_frame` to ``path``.

    Rows are actual classes (first column), columns predicted classes. Class names label the
    axes when there are at most :data:`MAX_LABELLED_CLASSES`; cells show counts when there are
    at most :data:`MAX_ANNOTATED_CLASSES`.
    """
    actual = [plain_text(name) for name in confusion_df.iloc[:, 0]]
    predicted = [plain_text(name) for name in confusion_df.columns[1:]]
    counts = confusion_df.iloc[:, 1:].to_numpy(dtype=np.int64)
    num_classes = max(len(actual), len(predicted), 1)
    labelled = num_classes <= MAX_LABELLED_CLASSES
    side = float(min(max(6.0, 0.3 * num_classes + 3.0), 24.0)) if labelled else 10.0
    with _figure(side + 1.5, side) as figure:
        axes = figure.add_subplot()
        image = axes.imshow(counts, cmap="Blues", interpolation="nearest", aspect="auto")
        figure.colorbar(image, ax=axes, label="images")
        if labelled:
            axes.set_xticks(np.arange(len(predicted)), predicted, rotation=90)
            axes.set_yticks(np.arange(len(actual)), actual)
            axes.set_xlabel("Predicted class")
            axes.set_ylabel("Actual class")
        else:
            axes.set_xlabel(f"Predicted class (index; {len(predicted)} classes, names omitted)")
            axes.set_ylabel(f"Actual class (index; {len(actual)} classes, names omitted)")
        if num_classes <= MAX_ANNOTATED_CLASSES and counts.size:
            middle = counts.max() / 2.0
            for (row, column), count in np.ndenumerate(counts):
                axes.text(
                    column,
                    row,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if count > middle else "black",
                )
        axes.set_title(plain_text(title) if title else "Confusion matrix (threshold 0)")
        save_figure(path, figure, dpi=100)


def plot_threshold_curves(
    overall_df: pd.DataFrame, path: str | os.PathLike, title: str | None = None
) -> None:
    """Save precision_micro, recall_micro, coverage and f1_macro against threshold to ``path``."""
    metrics = ["precision_micro", "recall_micro", "coverage", "f1_macro"]
    missing = [c for c in ["threshold", *metrics] if c not in overall_df.columns]
    if missing:
        raise ValueError(
            f"`overall_df` must have the columns {metrics}. Received: without {missing}"
        )
    frame = overall_df.sort_values("threshold", kind="mergesort")
    with _figure(8.0, 5.0) as figure:
        axes = figure.add_subplot()
        for metric, marker in zip(metrics, "osD^", strict=True):
            axes.plot(frame["threshold"], frame[metric], marker=marker, markersize=4, label=metric)
        axes.set_xlim(-0.02, 1.02)
        axes.set_ylim(-0.02, 1.02)
        axes.set_xlabel("Confidence threshold")
        axes.set_ylabel("Score")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="best")
        axes.set_title(plain_text(title) if title else "Metrics by confidence threshold")
        save_figure(path, figure, dpi=100)


def plot_class_f1(
    per_class_df: pd.DataFrame,
    threshold: float,
    path: str | os.PathLike,
    title: str | None = None,
) -> None:
    """Save a bar chart of every class's F1 at ``threshold`` (one of the table's thresholds)."""
    missing = [c for c in ["class", "f1"] if c not in per_class_df.columns]
    if missing:
        raise ValueError(
            f"`per_class_df` must have the columns class, f1. Received: without {missing}"
        )
    chosen = _select_threshold(per_class_df, threshold, "per_class_df")
    names = [plain_text(name) for name in chosen["class"]]
    f1 = chosen["f1"].to_numpy(dtype=np.float64)
    count = len(names)
    labelled = count <= MAX_LABELLED_CLASSES
    height = float(min(max(4.0, 0.3 * count + 1.5), 20.0)) if labelled else 6.0
    with _figure(9.0, height) as figure:
        axes = figure.add_subplot()
        positions = np.arange(count)
        if labelled:
            axes.barh(positions, f1, color="tab:blue", label="F1 per class")
            axes.set_yticks(positions, names)
            axes.invert_yaxis()
            axes.set_ylabel("Class")
            axes.set_xlabel("F1")
            axes.set_xlim(0.0, 1.02)
            axes.axvline(
                f1.mean(), color="tab:red", linestyle="--", label=f"macro F1 = {f1.mean():.3f}"
            )
        else:
            axes.bar(positions, f1, width=1.0, color="tab:blue", label="F1 per class")
            axes.set_xlabel(f"Class index ({count} classes, names omitted)")
            axes.set_ylabel("F1")
            axes.set_ylim(0.0, 1.02)
            axes.axhline(
                f1.mean(), color="tab:red", linestyle="--", label=f"macro F1 = {f1.mean():.3f}"
            )
        axes.legend(loc="best")
        default = f"F1 per class at threshold {float(threshold):g}"
        axes.set_title(plain_text(title) if title else default)
        save_figure(path, figure, dpi=100)


def plot_metrics_by_epoch(
    report_df: pd.DataFrame,
    threshold: float,
    path: str | os.PathLike,
    title: str | None = None,
) -> None:
    """Save every analysis-report metric against epoch, at ``threshold``, to ``path``.

    Rates (coverage, accuracy, precision/recall/F1, top-5 accuracy when present) share the left
    panel; ``log_loss`` has its own panel on the right because its scale differs.
    """
    if "epoch" not in report_df.columns:
        raise ValueError(
            f"`report_df` must have an `epoch` column. Received: {list(report_df.columns)}"
        )
    frame = _select_threshold(report_df, threshold, "report_df").sort_values(
        "epoch", kind="mergesort"
    )
    rates = [metric for metric in _RATE_METRICS if metric in frame.columns]
    with _figure(13.0, 5.0) as figure:
        left, right = figure.subplots(1, 2, width_ratios=[2, 1])
        for metric in rates:
            left.plot(frame["epoch"], frame[metric], marker="o", markersize=3, label=metric)
        left.set_xlabel("Epoch")
        left.set_ylabel("Score")
        left.set_ylim(-0.02, 1.02)
        left.grid(True, alpha=0.3)
        left.legend(loc="best", fontsize=8)
        left.set_title(f"Metrics at threshold {float(threshold):g}")
        if "log_loss" in frame.columns:
            right.plot(
                frame["epoch"],
                frame["log_loss"],
                marker="o",
                markersize=3,
                color="tab:red",
                label="log_loss",
            )
            right.legend(loc="best")
        right.set_xlabel("Epoch")
        right.set_ylabel("Log loss")
        right.grid(True, alpha=0.3)
        right.set_title("Validation log loss")
        for axes in (left, right):
            axes.xaxis.get_major_locator().set_params(integer=True)
        figure.suptitle(plain_text(title) if title else "Validation metrics by epoch")
        save_figure(path, figure, dpi=100)


def draw_reliability(
    axes, labels: np.ndarray, proba: np.ndarray, calibrated: np.ndarray | None = None
) -> None:
    """Draw the reliability diagram (accuracy against mean confidence per confidence bin, with
    the ECE) of ``proba``, and of ``calibrated`` when given, on ``axes``."""
    from cnnhub.evaluation.calibration import expected_calibration_error, reliability_table

    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    curves = [("uncalibrated" if calibrated is not None else "model", proba, "o")]
    if calibrated is not None:
        curves.append(("calibrated", calibrated, "s"))
    for name, values, marker in curves:
        table = reliability_table(labels, values)
        present = table["count"] > 0
        ece = expected_calibration_error(labels, values)
        axes.plot(
            table["confidence"][present],
            table["accuracy"][present],
            marker=marker,
            label=f"{name} (ECE {ece:.3f})",
        )
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("Mean confidence in bin (15 bins)")
    axes.set_ylabel("Accuracy in bin")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left")


def plot_reliability(
    labels: np.ndarray,
    proba: np.ndarray,
    calibrated: np.ndarray | None,
    path: str | os.PathLike,
    title: str | None = None,
) -> None:
    """Save the reliability diagram of :func:`draw_reliability` to ``path``."""
    with _figure(5.5, 5.0) as figure:
        axes = figure.add_subplot()
        draw_reliability(axes, labels, proba, calibrated)
        axes.set_title(plain_text(title) if title else "Reliability diagram")
        save_figure(path, figure, dpi=100)


new_figure = _figure
"""A fresh Agg figure drawn with plain-text settings (a context manager; see ``_figure``)."""
