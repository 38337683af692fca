"""The report's pictures, as ``data:image/png;base64,...`` URIs (inlined: the page fetches nothing).

Figures are small (72 dpi) so that a 20-epoch, 10-class report stays well under 2 MB; untrusted
text (class names) goes through :func:`cnnhub.evaluation.plots.plain_text`.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cnnhub.evaluation.plots import draw_reliability, new_figure, plain_text

DPI = 72
CURVE_COLUMNS = ("precision_micro", "recall_micro", "coverage", "f1_micro", "f1_macro")
"""Columns of a threshold table drawn against the threshold (the first four present)."""
THUMBNAIL = 96
"""Longest side, in pixels, of a gallery image."""


def png_uri(data: bytes) -> str:
    """``data`` (PNG bytes) as a data URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return png_uri(buffer.getvalue())


def curves(log: pd.DataFrame, chosen_epoch: int | None) -> str:
    """Loss and the task's epoch metric (accuracy, mae, ...: the first other column logged
    with a ``val_`` twin) by epoch, training and validation, the chosen epoch marked."""
    other = next((c for c in log if c != "loss" and f"val_{c}" in log), None)
    metrics = ["loss"] + ([other] if other else [])
    with new_figure(5.0 * len(metrics), 3.6) as figure:
        panels = figure.subplots(1, len(metrics), squeeze=False)[0]
        for axes, metric in zip(panels, metrics):
            for column, style in ((metric, "-o"), (f"val_{metric}", "-s")):
                if column in log:
                    axes.plot(log["epoch"], log[column], style, markersize=3, label=column)
            if chosen_epoch is not None:
                axes.axvline(chosen_epoch, color="tab:red", linestyle=":", label="chosen epoch")
            axes.set_xlabel("Epoch")
            axes.set_title(metric)
            axes.grid(True, alpha=0.3)
            axes.legend(loc="best", fontsize=8)
            axes.xaxis.get_major_locator().set_params(integer=True)
        return _figure_uri(figure)


def thresholds(overall: pd.DataFrame, deploy: float | None) -> str:
    """Precision, recall and coverage (or what the table has of :data:`CURVE_COLUMNS`)
    against threshold, the deploy threshold marked."""
    frame = overall.sort_values("threshold", kind="mergesort")
    with new_figure(6.5, 4.0) as figure:
        axes = figure.add_subplot()
        shown = [c for c in CURVE_COLUMNS if c in frame][:3]
        for column, marker in zip(shown, "osD^"):
            axes.plot(frame["threshold"], frame[column], marker=marker, markersize=3, label=column)
        if deploy is not None:
            axes.axvline(deploy, color="tab:red", linestyle=":", label=f"deploy {deploy:g}")
        axes.set_xlim(-0.02, 1.02)
        axes.set_ylim(-0.02, 1.02)
        axes.set_xlabel("Confidence threshold")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="best", fontsize=8)
        return _figure_uri(figure)


def predicted_vs_actual(predictions: pd.DataFrame, targets: dict[str, str]) -> str:
    """Predicted against actual values (with the y = x line), one panel per target
    (``targets``: column suffix -> target name)."""
    with new_figure(4.0 * len(targets), 3.8) as figure:
        for axes, target in zip(figure.subplots(1, len(targets), squeeze=False)[0], targets):
            actual = predictions[f"actual{target}"].to_numpy(np.float64)
            predicted = predictions[f"predicted{target}"].to_numpy(np.float64)
            axes.scatter(actual, predicted, s=8, alpha=0.6)
            low = float(min(actual.min(), predicted.min()))
            high = float(max(actual.max(), predicted.max()))
            axes.plot([low, high], [low, high], color="tab:red", lw=1, label="y = x")
            axes.set_xlabel(f"actual {plain_text(targets[target])}")
            axes.set_ylabel("predicted")
            axes.grid(True, alpha=0.3)
            axes.legend(loc="upper left", fontsize=8)
        return _figure_uri(figure)


def reliability(labels: np.ndarray, proba: np.ndarray, calibrated: np.ndarray | None) -> str:
    """The reliability diagram of the chosen weights (before and after calibration)."""
    with new_figure(4.6, 4.2) as figure:
        draw_reliability(figure.add_subplot(), labels, proba, calibrated)
        return _figure_uri(figure)


def thumbnail(path: Path) -> str | None:
    """A small PNG of an image file, or None when it cannot be read."""
    try:
        with Image.open(path) as image:
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG", optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return png_uri(buffer.getvalue())
