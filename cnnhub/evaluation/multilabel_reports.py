"""Multi-label report files of one weights file, the analysis report, and the best weights.

Per weights file (``<stem>`` as for single-label, all CSVs atomic and formula-injection safe):

* ``<stem>.csv`` - per image: image_path, actual, predicted (label sets at the chosen
  thresholds), correct (exact set), ``p_<class>``...
* ``<stem>-thresholds.csv`` - one threshold for every class, per threshold of the grid;
* ``<stem>-classes.csv`` - per class and threshold: counts, precision, recall, F1, support, AP;
* ``<stem>-class_thresholds.csv`` - each class at its chosen threshold.

The analysis report has one row per weights file (the figures at its per-class thresholds).
The best weights (:func:`choose_best_multilabel`) by ``BEST_WEIGHT_RULE``: ``macro_f1`` the
highest macro F1; ``coverage_at_precision`` (thresholds chosen as the lowest reaching
``BEST_MIN_PRECISION``) the highest micro recall, the multi-label "images found"; and
``min_class_recall`` the best lowest recall over labels with validation images. Ties go to the
earlier epoch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from cnnhub.errors import CnnhubError
from cnnhub.evaluation.multilabel import (
    SUMMARY_COLUMNS,
    multilabel_predictions_frame,
    multilabel_scores,
)
from cnnhub.evaluation.safe_csv import write_csv_safe
from cnnhub.evaluation.selection import RULES, narrow_to_tolerance, report_records
from cnnhub.evaluation.writer import report_paths, row_prefix

REPORT_COLUMNS = ["weights_name", "epoch", *SUMMARY_COLUMNS]
"""Columns of a multi-label ``analysis_report.csv``: one row per weights file."""

RULE_COLUMN = {
    "macro_f1": "f1_macro",
    "coverage_at_precision": "recall_micro",
    "min_class_recall": "min_class_recall",
}
"""The analysis-report figure each best-weights rule maximises."""


def multilabel_report_paths(folder: str | os.PathLike, stem: str) -> dict[str, Path]:
    """Paths of the four CSVs :func:`write_multilabel_reports` writes for ``stem``."""
    paths = report_paths(folder, stem)
    del paths["confusion"]
    return paths | {"class_thresholds": Path(folder) / f"{stem}-class_thresholds.csv"}


def threshold_rule(rule: str, min_precision: float) -> float | None:
    """The ``min_precision`` per-class thresholds are chosen with under ``rule`` (None: F1)."""
    return float(min_precision) if rule == "coverage_at_precision" else None


def write_multilabel_reports(
    folder: str | os.PathLike,
    stem: str,
    image_paths: Sequence[str | os.PathLike],
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    class_names: Sequence[str],
    thresholds: Iterable[float] | None = None,
    *,
    min_precision: float | None = None,
    class_thresholds: npt.ArrayLike | None = None,
    separator: str = "|",
    weights_name: str | None = None,
    epoch: int | None = None,
) -> dict[str, Any]:
    """Score one weights file (multi-label) and write its four CSVs into ``folder``.

    Arguments as :func:`cnnhub.evaluation.multilabel.multilabel_scores`; ``weights_name`` and
    ``epoch`` go into the returned row.

    Returns:
        ``{"rows": [one analysis-report row], "scores": MultiLabelScores, "files": {...}}``.
    """
    paths = multilabel_report_paths(folder, stem)
    scores = multilabel_scores(
        y_true,
        proba,
        class_names,
        thresholds,
        min_precision=min_precision,
        class_thresholds=class_thresholds,
    )
    predictions = multilabel_predictions_frame(
        image_paths, y_true, proba, class_names, scores.predicted, separator
    )
    write_csv_safe(paths["predictions"], predictions)
    write_csv_safe(paths["thresholds"], scores.overall)
    write_csv_safe(paths["classes"], scores.per_class)
    write_csv_safe(paths["class_thresholds"], scores.chosen)
    rows = [row_prefix(weights_name, epoch) | scores.summary]
    return {"rows": rows, "scores": scores, "files": paths}


def multilabel_analysis_report(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """The multi-label ``analysis_report.csv`` frame (:data:`REPORT_COLUMNS`) from rows."""
    records = report_records(rows, REPORT_COLUMNS)
    frame = pd.DataFrame(
        [[record[column] for column in REPORT_COLUMNS] for record in records],
        columns=REPORT_COLUMNS,
    )
    frame["weights_name"] = frame["weights_name"].astype(object)
    frame["epoch"] = frame["epoch"].astype(np.int64)
    for column in SUMMARY_COLUMNS:
        frame[column] = frame[column].astype(np.float64)
    return frame


def _lowest_recall(chosen: pd.DataFrame) -> float:
    present = chosen[chosen["support"] > 0]
    return float(present["recall"].min()) if len(present) else 0.0


def choose_best_multilabel(
    report: pd.DataFrame,
    chosen: Mapping[str, pd.DataFrame],
    rule: str = "macro_f1",
    epoch_tolerance: float = 0.0,
) -> dict[str, Any]:
    """The best weights file of a multi-label analysis report, with its class thresholds.

    Args:
        report: :func:`multilabel_analysis_report`'s frame.
        chosen: ``{weights_name: <stem>-class_thresholds.csv frame}`` (class, threshold,
            recall, support columns) for every weights file of the report.
        rule: one of :data:`cnnhub.evaluation.selection.RULES` (module docstring).
        epoch_tolerance: above 0, the latest epoch whose score is within this of the best
            (:func:`cnnhub.evaluation.selection.narrow_to_tolerance`).

    Returns:
        ``{"weights", "epoch", "threshold": None, "rule", "value", "fallback": False,
        "class_thresholds": {class: threshold}}``; ``threshold`` is None because every class
        has its own. With ``epoch_tolerance`` above 0, also what the narrowing records.
    """
    if rule not in RULES:
        raise CnnhubError(f"`rule` must be one of {', '.join(RULES)}. Received: rule={rule!r}")
    report = report.reset_index(drop=True)
    if report.empty:
        raise ValueError("`report` must have at least one row. Received: an empty report")
    missing = [name for name in report["weights_name"] if name not in chosen]
    if missing:
        raise ValueError(
            "`chosen` must hold the class thresholds of every weights file in the report. "
            f"Received: no entry for {missing[0]!r}"
        )
    if rule == "min_class_recall":
        scores = report["weights_name"].map(lambda name: _lowest_recall(chosen[name]))
    else:
        scores = report[RULE_COLUMN[rule]].astype(np.float64)
    report, scores, noted = narrow_to_tolerance(report, scores, epoch_tolerance)
    ordered = pd.DataFrame(
        {"score": -scores.to_numpy(dtype=np.float64), "epoch": report["epoch"].to_numpy()},
        index=report.index,
    )
    best = ordered.sort_values(["score", "epoch"], kind="mergesort").index[0]
    row = report.loc[best]
    table = chosen[row["weights_name"]]
    return {
        "weights": str(row["weights_name"]),
        "epoch": int(row["epoch"]),
        "threshold": None,
        "rule": rule,
        "value": float(scores.loc[best]),
        "fallback": False,
        "class_thresholds": {
            str(name): float(t) for name, t in zip(table["class"], table["threshold"])
        },
        **noted,
    }


def write_multilabel_best_plots(
    folder: str | os.PathLike, stem: str, chosen: pd.DataFrame
) -> dict[str, Path]:
    """The best weights file's ``<stem>-class_f1.png``: each class's F1 at its threshold."""
    from cnnhub.evaluation import plots  # matplotlib only when plotting

    path = Path(folder) / f"{stem}-class_f1.png"
    plots.plot_class_f1(
        chosen.assign(threshold=0.0), 0.0, path, title=f"{stem}: F1 per class at its threshold"
    )
    return {"class_f1": path}
