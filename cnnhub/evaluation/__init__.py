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
