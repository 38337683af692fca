"""Validation metrics and reports for each epoch's weights (numpy/pandas/scikit-learn only).

* :mod:`~cnnhub.evaluation.metrics` - threshold precision/recall, confusion matrix, log loss,
  top-5 accuracy, per-image predictions.
* :mod:`~cnnhub.evaluation.selection` - the analysis report and the best-weights rules.
* :mod:`~cnnhub.evaluation.writer` - write a weights file's CSVs and the best one's plots.
* :mod:`~cnnhub.evaluation.plots` - the PNGs (imported on demand: it loads matplotlib).
* :mod:`~cnnhub.evaluation.safe_csv` - formula-injection-safe CSV writing and reading.
* :mod:`~cnnhub.evaluation.headline` - the headline figures (``accuracy@0``,
  ``f1_macro@deploy``, ...) every summary reports.
* :mod:`~cnnhub.evaluation.targets` - ``--weights`` checks and where an evaluation's results go.
* :mod:`~cnnhub.evaluation.reporting` - printed tables and an evaluation folder's summary.json.

No TensorFlow is imported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnhub.evaluation.headline import HEADLINE_COLUMNS, headline_figures
    from cnnhub.evaluation.metrics import (
        confusion_frame,
        default_thresholds,
        predictions_frame,
        summary_metrics,
        threshold_metrics,
    )
    from cnnhub.evaluation.safe_csv import read_csv_safe, write_csv_safe
    from cnnhub.evaluation.selection import RULES, analysis_report, choose_best
    from cnnhub.evaluation.writer import write_best_plots, write_weight_reports

# Where each name below lives. They are imported on first use, not with the package:
# metrics loads scikit-learn (and SciPy), which commands that only read reports (compare)
# would otherwise pay for at start-up.
_HOME = {
    "HEADLINE_COLUMNS": "headline",
    "headline_figures": "headline",
    "confusion_frame": "metrics",
    "default_thresholds": "metrics",
    "predictions_frame": "metrics",
    "summary_metrics": "metrics",
    "threshold_metrics": "metrics",
    "read_csv_safe": "safe_csv",
    "write_csv_safe": "safe_csv",
    "RULES": "selection",
    "analysis_report": "selection",
    "choose_best": "selection",
    "write_best_plots": "writer",
    "write_weight_reports": "writer",
}


def __getattr__(name: str) -> Any:
    """The package's public names, each imported from its module on first use."""
    if name in _HOME:
        return getattr(importlib.import_module(f"cnnhub.evaluation.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HEADLINE_COLUMNS",
    "RULES",
    "analysis_report",
    "choose_best",
    "confusion_frame",
    "default_thresholds",
    "headline_figures",
    "predictions_frame",
    "read_csv_safe",
    "summary_metrics",
    "threshold_metrics",
    "write_best_plots",
    "write_csv_safe",
    "write_weight_reports",
]
