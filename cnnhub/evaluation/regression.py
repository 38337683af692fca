"""Regression scores of one weights file: per-image CSV, MAE/RMSE/R2/MAPE, best-weights plots.

Computed with NumPy from the validation pass training already runs (no extra inference);
every figure equals scikit-learn's (``mean_absolute_error``, ``root_mean_squared_error``,
``r2_score``, ``mean_absolute_percentage_error``, each with ``multioutput="uniform_average"``:
with several targets, the mean over targets):

``mae``   mean |predicted - actual|
``rmse``  square root of the mean squared error (per target, then averaged)
``r2``    1 - SS_res / SS_tot per target (a constant target scores 1 when predicted exactly,
          else 0, as scikit-learn's ``force_finite``), then averaged
``mape``  mean |predicted - actual| / max(|actual|, eps), a fraction (0.05 = 5 %); with an
          actual value of 0 it is huge, as scikit-learn's
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnnhub.evaluation.safe_csv import write_csv_safe
from cnnhub.evaluation.selection import narrow_to_tolerance

METRICS = ("mae", "rmse", "r2", "mape")
"""The per-epoch figures, in report order."""

LOWER_IS_BETTER = {"mae": True, "rmse": True, "mape": True, "r2": False}

REPORT_COLUMNS = ["weights_name", "epoch", *METRICS, "loss"]
"""Columns of a regression run's ``analysis_report.csv`` (``loss``: the training loss)."""


def _as_2d(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array.reshape(len(array), -1)


def regression_metrics(actual: Any, predicted: Any) -> dict[str, float]:
    """:data:`METRICS` of ``predicted`` against ``actual`` ((N,) or (N, targets))."""
    y, p = _as_2d(actual), _as_2d(predicted)
    error = p - y
    ss_res = (error**2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    eps = np.finfo(np.float64).eps
    return {
        "mae": float(np.abs(error).mean(axis=0).mean()),
        "rmse": float(np.sqrt((error**2).mean(axis=0)).mean()),
        "r2": float(r2.mean()),
        "mape": float((np.abs(error) / np.maximum(np.abs(y), eps)).mean(axis=0).mean()),
    }


def predictions_frame(
    image_paths: Sequence[str | os.PathLike], actual: Any, predicted: Any, names: Sequence[str]
) -> pd.DataFrame:
    """One row per image: ``image_path``, then ``actual``, ``predicted``, ``error`` (predicted
    - actual); with several targets each column is suffixed ``_<target name>``."""
    y, p = _as_2d(actual), _as_2d(predicted)
    frame = pd.DataFrame({"image_path": [os.fspath(path) for path in image_paths]})
    for index, name in enumerate(names):
        suffix = "" if len(names) == 1 else f"_{name}"
        frame[f"actual{suffix}"] = y[:, index]
        frame[f"predicted{suffix}"] = p[:, index]
        frame[f"error{suffix}"] = p[:, index] - y[:, index]
    return frame


def write_regression_reports(
    folder: str | os.PathLike,
    stem: str,
    image_paths: Sequence[str | os.PathLike],
    actual: Any,
    predicted: Any,
    names: Sequence[str],
    loss: float | None = None,
    *,
    weights_name: str,
    epoch: int,
) -> list[dict[str, Any]]:
    """Write ``<stem>.csv`` (:func:`predictions_frame`) into ``folder``; return the weights
    file's one analysis-report row (:data:`REPORT_COLUMNS`)."""
    from cnnhub.evaluation.writer import report_paths  # the same file names as single_label

    write_csv_safe(
        report_paths(folder, stem)["predictions"],
        predictions_frame(image_paths, actual, predicted, names),
    )
    row = {"weights_name": weights_name, "epoch": int(epoch)}
    row.update(regression_metrics(actual, predicted))
    row["loss"] = float("nan") if loss is None else float(loss)
    return [row]


def regression_report(rows: Any) -> pd.DataFrame:
    """The ``analysis_report.csv`` frame of report rows (one per weights file)."""
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    frame = pd.DataFrame(records, columns=REPORT_COLUMNS)
    if len(frame):
        frame["epoch"] = frame["epoch"].astype(np.int64)
    for column in REPORT_COLUMNS[2:]:
        frame[column] = frame[column].astype(np.float64)
    return frame


def choose_best_regression(
    report: pd.DataFrame, rule: str, epoch_tolerance: float = 0.0
) -> dict[str, Any]:
    """The weights file with the best ``rule`` figure (lowest mae/rmse/mape, highest r2);
    ties go to the earlier epoch. With ``epoch_tolerance`` above 0, the latest epoch whose
    figure is within it of the best (in the figure's units; see
    :func:`cnnhub.evaluation.selection.narrow_to_tolerance`). Returns ``best_weights.json``'s
    content (no threshold)."""
    if report.empty:
        raise ValueError("`report` must have at least one row. Received: an empty report")
    values = report[rule].astype(np.float64)
    report, values, noted = narrow_to_tolerance(
        report, values, epoch_tolerance, higher_is_better=not LOWER_IS_BETTER[rule]
    )
    ordered = report.assign(_key=values if LOWER_IS_BETTER[rule] else -values)
    row = ordered.sort_values(["_key", "epoch"], kind="mergesort", na_position="last").iloc[0]
    return {
        "weights": str(row["weights_name"]),
        "epoch": int(row["epoch"]),
        "rule": rule,
        "value": float(row[rule]),
        **noted,
    }


def plot_paths(folder: str | os.PathLike, stem: str) -> dict[str, Path]:
    """The two PNGs of the best weights: predicted against actual, and residuals."""
    folder = Path(folder)
    return {
        "scatter": folder / f"{stem}-predicted_vs_actual.png",
        "residuals": folder / f"{stem}-residuals.png",
    }


def write_regression_plots(folder: str | os.PathLike, stem: str, frame: pd.DataFrame) -> dict:
    """Predicted against actual (with the y = x line) and residuals (error against actual) of
    the per-image frame (:func:`predictions_frame`, or its CSV read back); one panel per
    target."""
    from cnnhub.atomic import save_figure
    from cnnhub.evaluation.plots import _figure, plain_text

    paths = plot_paths(folder, stem)
    suffixes = [c[len("actual") :] for c in frame.columns if c.startswith("actual")]
    for kind, path in paths.items():
        with _figure(4.5 * len(suffixes), 4.2) as figure:
            axes = figure.subplots(1, len(suffixes), squeeze=False)[0]
            for ax, suffix in zip(axes, suffixes):
                actual = frame[f"actual{suffix}"].to_numpy(np.float64)
                predicted = frame[f"predicted{suffix}"].to_numpy(np.float64)
                name = suffix.lstrip("_") or "target"
                if kind == "scatter":
                    ax.scatter(actual, predicted, s=8, alpha=0.6)
                    low = float(np.nanmin([actual.min(), predicted.min()]))
                    high = float(np.nanmax([actual.max(), predicted.max()]))
                    ax.plot([low, high], [low, high], color="tab:red", lw=1, label="y = x")
                    ax.set_ylabel("predicted")
                    ax.legend(loc="upper left")
                else:
                    ax.scatter(actual, predicted - actual, s=8, alpha=0.6)
                    ax.axhline(0, color="tab:red", lw=1)
                    ax.set_ylabel("error (predicted - actual)")
                ax.set_xlabel(f"actual {plain_text(name)}")
                ax.grid(alpha=0.3)
            title = "predicted vs actual" if kind == "scatter" else "residuals"
            figure.suptitle(plain_text(f"{stem}: {title}"))
            save_figure(path, figure, dpi=100)
    return paths


def plot_regression_by_epoch(report: pd.DataFrame, best_epoch: int, path: Path) -> None:
    """MAE and RMSE (left) and R2 (right) of every epoch on validation; the best marked."""
    from cnnhub.atomic import save_figure
    from cnnhub.evaluation.plots import _figure

    frame = report.sort_values("epoch")
    with _figure(10, 4) as figure:
        left, right = figure.subplots(1, 2)
        for metric in ("mae", "rmse"):
            left.plot(frame["epoch"], frame[metric], marker="o", label=metric)
        right.plot(frame["epoch"], frame["r2"], marker="o", color="tab:green", label="r2")
        for ax in (left, right):
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label="best")
            ax.set_xlabel("Epoch")
            ax.grid(alpha=0.3)
            ax.legend()
        figure.suptitle("Validation metrics by epoch")
        save_figure(path, figure, dpi=100)


def plot_target_histogram(inspection, path: Path) -> None:
    """One histogram per target of every split's values (:class:`cnnhub.data.inspect.Inspection`
    of regression data), splits overlaid."""
    from cnnhub.atomic import save_figure
    from cnnhub.evaluation.plots import _figure, plain_text

    names = inspection.class_names
    with _figure(4.5 * len(names), 3.8) as figure:
        axes = figure.subplots(1, len(names), squeeze=False)[0]
        for index, (ax, name) in enumerate(zip(axes, names)):
            every = np.concatenate([s.targets[:, index] for s in inspection.splits])
            bins = np.histogram_bin_edges(every, bins="auto")[:51]
            for split in inspection.splits:
                ax.hist(split.targets[:, index], bins=bins, alpha=0.6, label=split.name)
            ax.set_xlabel(plain_text(name))
            ax.set_ylabel("images")
            ax.grid(alpha=0.3)
            ax.legend()
        figure.suptitle("Target distribution")
        save_figure(path, figure, dpi=100)
