"""The headline figures of one weights file: the one definition every summary uses.

The leaderboard (``cnnhub compare``), the cross-validation summary (``folds_summary.csv``),
held-out summaries (``evaluations/<name>/summary.json``) and the printed evaluation tables all
take their figures from :func:`headline_figures`, under the names of :data:`HEADLINE_COLUMNS`:

``deploy_threshold``
    The confidence threshold chosen on validation (``best_weights.json``'s ``threshold``).
``accuracy@0``, ``f1_macro@0``
    At threshold 0: every image gets its argmax class (plain accuracy and macro F1, as
    scikit-learn's ``accuracy_score`` and ``f1_score(average="macro")``).
``accuracy@deploy``, ``f1_macro@deploy``, ``precision_micro@deploy``, ``coverage@deploy``
    At the deploy threshold: images whose top probability is below it abstain, which counts as
    a miss for accuracy and recall (see :mod:`cnnhub.evaluation.metrics`); ``coverage`` is the
    share of images accepted, ``precision_micro`` the accuracy among them.

A figure whose threshold is not in the report is NaN (never the nearest threshold's value).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

HEADLINE_FIGURES = (
    "accuracy@0",
    "f1_macro@0",
    "accuracy@deploy",
    "f1_macro@deploy",
    "precision_micro@deploy",
    "coverage@deploy",
)
"""The figures, in the order tables show them."""

HEADLINE_COLUMNS = ("deploy_threshold", *HEADLINE_FIGURES)
"""``deploy_threshold`` then :data:`HEADLINE_FIGURES`: the columns every summary table has."""

_AT_ZERO = {"accuracy@0": "accuracy", "f1_macro@0": "f1_macro"}
_AT_DEPLOY = {
    "accuracy@deploy": "accuracy",
    "f1_macro@deploy": "f1_macro",
    "precision_micro@deploy": "precision_micro",
    "coverage@deploy": "coverage",
}


def _row_at(rows: pd.DataFrame, threshold: float) -> pd.Series | None:
    """The report row at exactly ``threshold`` (CSV round trips keep floats exact)."""
    match = rows[np.isclose(rows["threshold"].to_numpy(np.float64), threshold, rtol=0, atol=1e-9)]
    return None if match.empty else match.iloc[0]


def headline_figures(
    report: pd.DataFrame, weights_name: str, deploy_threshold: float
) -> dict[str, float]:
    """The :data:`HEADLINE_COLUMNS` of ``weights_name`` from a per-threshold report.

    Args:
        report: ``analysis_report.csv`` as a frame (columns ``weights_name``, ``threshold``,
            ``accuracy``, ``f1_macro``, ``precision_micro``, ``coverage``), from any cnnhub
            version.
        weights_name: the weights file whose rows are summarized.
        deploy_threshold: the threshold chosen on validation (0 when none was chosen).

    Returns:
        ``{"deploy_threshold": float, "accuracy@0": float, ...}``; NaN for a figure whose
        threshold the report does not hold.

    Raises:
        ValueError: the report has no row for ``weights_name``.
    """
    rows = report[report["weights_name"] == weights_name]
    if rows.empty:
        raise ValueError(
            f"The report has no rows for the weights {weights_name!r}. "
            f"Received: weights_name={weights_name!r}"
        )
    figures = {"deploy_threshold": float(deploy_threshold)}
    for names, threshold in ((_AT_ZERO, 0.0), (_AT_DEPLOY, float(deploy_threshold))):
        row = _row_at(rows, threshold)
        for figure, column in names.items():
            figures[figure] = math.nan if row is None else float(row[column])
    return {column: figures[column] for column in HEADLINE_COLUMNS}
