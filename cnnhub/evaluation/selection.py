"""Pick the best (weights, threshold) pair from the per-epoch validation scores.

The *analysis report* (:func:`analysis_report`, saved as ``analysis_report.csv``) has one
row per weights file and threshold. :func:`choose_best` applies one of the :data:`RULES`:

``macro_f1`` (default)
    The row with the highest ``f1_macro``.
``coverage_at_precision``
    Among rows with ``precision_micro >= min_precision``, the one with the highest
    ``coverage``. When no row reaches the target the rule falls back to the row with the
    highest ``precision_micro`` (then highest coverage), emits a :class:`UserWarning` and
    returns ``"fallback": True``.
``min_class_recall``
    The row whose lowest per-class recall is highest. Classes with no validation images
    (support 0, recall 0 by definition) are left out of the minimum, otherwise one empty
    class would make every row score 0. Needs the per-class tables.

Ties (exactly equal values) go to the earlier epoch, then to the higher threshold (which
abstains more for the same score), then to the earlier row of the report.

With an epoch tolerance above 0 (``BEST_EPOCH_TOLERANCE``), the weights are first narrowed to
the *latest* epoch whose score is within the tolerance of the best score
(:func:`narrow_to_tolerance`), and the rule then picks the row of that epoch. On a small
validation set the best of many noisy epoch scores is often a lucky earlier epoch (the
winner's curse); when training ends with a decaying learning rate the later, statistically
tied weights are the better bet. The tolerance is in the rule's own units; one standard error
of an accuracy *p* on *n* images, ``sqrt(p (1 - p) / n)``, is a natural choice.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from cnnhub.errors import CnnhubError
from cnnhub.evaluation.metrics import OVERALL_COLUMNS
from cnnhub.evaluation.rules import RULES

REPORT_COLUMNS = ["weights_name", "epoch", *OVERALL_COLUMNS, "log_loss"]
"""Columns of ``analysis_report.csv``; ``ece`` (expected calibration error) follows when the
rows have it (every cnnhub run since it was added), then ``top5_accuracy`` when there are more
than 5 classes."""

_OPTIONAL_COLUMNS = ("ece", "top5_accuracy")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def report_records(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame, columns: list[str]
) -> list[dict[str, Any]]:
    """The rows of an analysis report as dicts; ValueError names a row lacking a key of
    ``columns``."""
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else [dict(r) for r in rows]
    for index, record in enumerate(records):
        missing = [column for column in columns if column not in record]
        if missing:
            raise ValueError(
                f"Every row of the analysis report needs the keys {columns}. "
                f"Received: row {index} without {missing}"
            )
    return records


def analysis_report(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Build the ``analysis_report.csv`` frame from per-(weights, threshold) rows.

    Args:
        rows: mappings (or a DataFrame) with at least the keys of :data:`REPORT_COLUMNS`;
            ``ece`` and ``top5_accuracy`` are optional.
            :func:`cnnhub.evaluation.writer.write_weight_reports` returns such rows under
            ``"rows"`` (pass ``weights_name`` and ``epoch`` to it, or add them yourself).
            Extra keys are dropped.

    Returns:
        A frame with columns :data:`REPORT_COLUMNS`, plus ``ece`` and ``top5_accuracy`` when
        any row has a value for them (``top5_accuracy``: the model has more than 5 classes).
        Rows keep their order.
    """
    records = report_records(rows, REPORT_COLUMNS)
    columns = REPORT_COLUMNS + [
        column
        for column in _OPTIONAL_COLUMNS
        if any(not _missing(record.get(column)) for record in records)
    ]
    frame = pd.DataFrame(
        [[record.get(column) for column in columns] for record in records], columns=columns
    )
    frame["weights_name"] = frame["weights_name"].astype(object)
    if len(frame):
        frame["epoch"] = frame["epoch"].astype(np.int64)
    for column in columns[3:]:
        frame[column] = frame[column].astype(np.float64)
    return frame


def calibrated_report(
    report: pd.DataFrame, best: Mapping[str, Any], overall: pd.DataFrame
) -> pd.DataFrame:
    """``report`` with the chosen weights' rows replaced by their calibrated scores.

    ``best`` is ``best_weights.json`` of a calibrated run (its ``calibration`` holds the log
    loss and ECE after calibration) and ``overall`` the calibrated threshold table
    (``<stem>-calibrated-thresholds.csv``): the figures of the model as deployed.
    ``top5_accuracy`` is kept (a temperature does not change the ranking of the classes).
    """
    calibration = best["calibration"]
    mine = report["weights_name"] == best["weights"]
    extra = {"weights_name": best["weights"], "epoch": int(best["epoch"])}
    extra |= {"log_loss": calibration["log_loss_after"], "ece": calibration["ece_after"]}
    if "top5_accuracy" in report and mine.any():
        extra["top5_accuracy"] = report.loc[mine, "top5_accuracy"].iloc[0]
    rows = [dict(row, **extra) for row in overall.to_dict("records")]
    merged = analysis_report([*report[~mine].to_dict("records"), *rows])
    return merged.sort_values("epoch", kind="mergesort").reset_index(drop=True)


def _check_columns(frame: pd.DataFrame, needed: list[str], name: str) -> None:
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise ValueError(
            f"`{name}` must have the columns {needed}. Received: {name} without {missing}"
        )


def _min_class_recall(
    report: pd.DataFrame, per_class: Mapping[str, pd.DataFrame] | None
) -> pd.Series:
    """Lowest recall over classes with support > 0, aligned with ``report``'s rows."""
    if per_class is None:
        raise CnnhubError(
            "The rule min_class_recall needs the per-class tables. Received: per_class=None"
        )
    pieces = []
    for name in pd.unique(report["weights_name"]):
        if name not in per_class:
            raise ValueError(
                "`per_class` must hold the per-class table of every weights file in the report. "
                f"Received: no entry for {name!r}"
            )
        table = per_class[name]
        _check_columns(table, ["threshold", "recall", "support"], f"per_class[{name!r}]")
        present = table[table["support"] > 0]
        lowest = present.groupby("threshold", sort=False)["recall"].min().reset_index()
        lowest.insert(0, "weights_name", name)
        pieces.append(lowest)
    lowest = pd.concat(pieces, ignore_index=True)
    keyed = report[["weights_name", "threshold"]].merge(
        lowest, on=["weights_name", "threshold"], how="left", validate="many_to_one"
    )
    if keyed["recall"].isna().any():
        row = keyed[keyed["recall"].isna()].iloc[0]
        raise ValueError(
            "`per_class` has no rows (with support > 0) for a weights/threshold pair of the "
            f"report. Received: weights_name={row['weights_name']!r}, "
            f"threshold={row['threshold']!r}"
        )
    return pd.Series(keyed["recall"].to_numpy(dtype=np.float64), index=report.index)


def narrow_to_tolerance(
    report: pd.DataFrame, scores: pd.Series, tolerance: float, higher_is_better: bool = True
) -> tuple[pd.DataFrame, pd.Series, dict[str, Any]]:
    """``report`` and ``scores`` narrowed to the rows of the latest epoch whose score is within
    ``tolerance`` of the best score.

    Args:
        report: the report's rows; several may share an epoch (thresholds).
        scores: each row's score under the rule (NaN rows never count), aligned with ``report``.
        tolerance: how far below the best score (above it when lower is better) an epoch may
            be and still count as tied, in the scores' units; >= 0.
        higher_is_better: the direction of the scores.

    Returns:
        The narrowed ``report`` and ``scores``, and what ``best_weights.json`` records of the
        narrowing: ``epoch_tolerance``, ``best_scoring_epoch`` (the earliest epoch with the
        best score) and ``best_scoring_value``. When ``tolerance`` is 0 or no score is a
        number, every row stays and nothing is recorded.

    Raises:
        CnnhubError: ``tolerance`` is not a number >= 0.
    """
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, Real)
        or not (0.0 <= float(tolerance) < math.inf)
    ):
        raise CnnhubError(f"The epoch tolerance must be a number >= 0. Received: {tolerance!r}")
    values = scores.astype(np.float64)
    if not tolerance or values.isna().all():
        return report, scores, {}
    best_value = float(values.max() if higher_is_better else values.min())
    gap = (best_value - values) if higher_is_better else (values - best_value)
    # A hair of slack: a score equal to the best, read back from a CSV, may differ in its
    # last bit.
    close = gap <= float(tolerance) + 1e-12
    keep = report["epoch"] == report["epoch"][close].max()
    noted = {
        "epoch_tolerance": float(tolerance),
        "best_scoring_epoch": int(report["epoch"][values == best_value].min()),
        "best_scoring_value": best_value,
    }
    return report[keep], scores[keep], noted


def _pick(report: pd.DataFrame, keys: list[tuple[pd.Series, bool]]) -> Any:
    """Index label of the best row: ``keys`` are (values, higher_is_better), in priority order;
    then earlier epoch, higher threshold, earlier row."""
    ordered = pd.DataFrame(
        {f"k{i}": values for i, (values, _) in enumerate(keys)}
        | {
            "epoch": report["epoch"],
            "threshold": report["threshold"],
            "row": np.arange(len(report)),
        },
        index=report.index,
    )
    ascending = [not higher for _, higher in keys] + [True, False, True]
    return ordered.sort_values(list(ordered.columns), ascending=ascending, kind="mergesort").index[
        0
    ]


def choose_best(
    report: pd.DataFrame,
    per_class: Mapping[str, pd.DataFrame] | None = None,
    rule: str = "macro_f1",
    min_precision: float = 0.9,
    epoch_tolerance: float = 0.0,
) -> dict[str, Any]:
    """Choose the best weights file and threshold from the analysis report.

    Args:
        report: the frame of :func:`analysis_report` (or ``analysis_report.csv`` read back).
        per_class: ``{weights_name: per-class table}`` (``<stem>-classes.csv`` frames, with
            ``threshold``, ``recall`` and ``support`` columns); only the
            ``min_class_recall`` rule needs it.
        rule: one of :data:`RULES` (see the module docstring).
        min_precision: the ``precision_micro`` target of ``coverage_at_precision``, in
            ``[0, 1]``.
        epoch_tolerance: above 0, choose among the rows of the latest epoch whose score is
            within this of the best score (module docstring); ``coverage_at_precision``
            compares coverage among the rows that reach the precision target.

    Returns:
        ``{"weights": weights_name, "epoch": int, "threshold": float, "rule": rule,
        "value": float, "fallback": bool}``. ``value`` is the rule's score of the chosen row:
        ``f1_macro``, ``coverage`` (also when falling back) or the lowest class recall.
        ``fallback`` is True only when ``coverage_at_precision`` found no row reaching
        ``min_precision`` and chose the most precise row instead (a warning says so too).
        With ``epoch_tolerance`` above 0 it also holds ``epoch_tolerance``,
        ``best_scoring_epoch`` and ``best_scoring_value`` (the best score, and its epoch).

    Ties go to the earlier epoch, then the higher threshold, then the earlier report row.

    Raises:
        CnnhubError: unknown ``rule``, ``min_precision`` outside ``[0, 1]``, or
            ``min_class_recall`` without ``per_class``.
        ValueError: an empty report or missing columns.
    """
    if rule not in RULES:
        raise CnnhubError(f"`rule` must be one of {', '.join(RULES)}. Received: rule={rule!r}")
    if (
        isinstance(min_precision, bool)
        or not isinstance(min_precision, Real)
        or not 0.0 <= float(min_precision) <= 1.0
    ):
        raise CnnhubError(
            "`min_precision` must be a number between 0 and 1. "
            f"Received: min_precision={min_precision!r}"
        )
    _check_columns(report, ["weights_name", "epoch", "threshold"], "report")
    report = report.reset_index(drop=True)
    if report.empty:
        raise ValueError("`report` must have at least one row. Received: an empty report")

    fallback = False
    if rule == "macro_f1":
        _check_columns(report, ["f1_macro"], "report")
        scores = report["f1_macro"].astype(np.float64)
        report, scores, noted = narrow_to_tolerance(report, scores, epoch_tolerance)
        best = _pick(report, [(scores, True)])
    elif rule == "coverage_at_precision":
        _check_columns(report, ["coverage", "precision_micro"], "report")
        precision = report["precision_micro"].astype(np.float64)
        reached = precision >= float(min_precision)
        if reached.any():
            report = report[reached]
            scores = report["coverage"].astype(np.float64)
            report, scores, noted = narrow_to_tolerance(report, scores, epoch_tolerance)
            best = _pick(report, [(scores, True)])
        else:
            fallback = True
            warnings.warn(
                f"No weights reach precision_micro >= {float(min_precision)} at any threshold "
                f"(best is {precision.max():.4f}); choosing the most precise row instead.",
                UserWarning,
                stacklevel=2,
            )
            scores = report["coverage"].astype(np.float64)
            report, precision, noted = narrow_to_tolerance(report, precision, epoch_tolerance)
            best = _pick(report, [(precision, True), (scores.loc[report.index], True)])
    else:
        scores = _min_class_recall(report, per_class)
        report, scores, noted = narrow_to_tolerance(report, scores, epoch_tolerance)
        best = _pick(report, [(scores, True)])

    row = report.loc[best]
    return {
        "weights": str(row["weights_name"]),
        "epoch": int(row["epoch"]),
        "threshold": float(row["threshold"]),
        "rule": rule,
        "value": float(scores.loc[best]),
        "fallback": fallback,
        **noted,
    }
