"""Tests of cnnhub.evaluation: metrics against scikit-learn, hand-computed threshold cases,
best-weights rules, report files, CSV safety and plots."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from cnnhub.display import printable
from cnnhub.errors import CnnhubError
from cnnhub.evaluation import metrics, plots
from cnnhub.evaluation.metrics import (
    CLASS_COLUMNS,
    OVERALL_COLUMNS,
    confusion_frame,
    default_thresholds,
    predictions_frame,
    summary_metrics,
    threshold_metrics,
)
from cnnhub.evaluation.safe_csv import escape_cell, read_csv_safe, safe_frame, unescape_cell
from cnnhub.evaluation.selection import REPORT_COLUMNS, analysis_report, choose_best
from cnnhub.evaluation.writer import write_best_plots, write_weight_reports

HOSTILE_NAMES = [
    "=cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    'a,b"c',
    "日本",
    "+1",
    "@SUM(A1)",
    "-x",
    "'quoted",
    "$\\alpha$",
    "$x^{$",
    "line\nbreak",
    "NA",
]


def random_case(seed: int, num_images: int, num_classes: int, dtype=np.float64, ties: bool = False):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, num_images)
    logits = rng.normal(size=(num_images, num_classes)) * 2.0
    logits[np.arange(num_images), y_true] += 1.5  # better than chance
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    if ties:
        proba = np.round(proba, 1)
    return y_true, proba.astype(dtype)


def names_for(num_classes: int) -> list[str]:
    return [f"class_{i}" for i in range(num_classes)]


# --------------------------------------------------------------------------- threshold grid


def test_default_thresholds():
    grid = default_thresholds()
    assert len(grid) == 21
    assert grid[:3] == [0.0, 0.05, 0.1]
    assert grid[-2:] == [0.95, 0.99]
    assert all(value == round(value, 2) for value in grid)
    assert grid == sorted(grid)
    assert all(isinstance(value, float) for value in grid)


# --------------------------------------------------------------------------- vs scikit-learn at t=0


@pytest.mark.parametrize(("seed", "num_classes"), [(0, 2), (1, 7), (2, 12)])
def test_threshold_zero_matches_sklearn(seed, num_classes):
    y_true, proba = random_case(seed, 400, num_classes)
    names = names_for(num_classes)
    overall, per_class = threshold_metrics(y_true, proba, names, [0.0, 0.5])
    y_pred = proba.argmax(axis=1)
    labels = list(range(num_classes))

    at_zero = per_class[per_class["threshold"] == 0.0]
    assert list(at_zero["class"]) == names
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    np.testing.assert_allclose(at_zero["precision"], precision, rtol=1e-12)
    np.testing.assert_allclose(at_zero["recall"], recall, rtol=1e-12)
    np.testing.assert_allclose(at_zero["f1"], f1, rtol=1e-12)
    np.testing.assert_array_equal(at_zero["support"], support)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    np.testing.assert_array_equal(at_zero["tp"], np.diag(matrix))
    np.testing.assert_array_equal(at_zero["fp"], matrix.sum(axis=0) - np.diag(matrix))
    np.testing.assert_array_equal(at_zero["fn"], matrix.sum(axis=1) - np.diag(matrix))
    np.testing.assert_array_equal(
        at_zero["tn"], len(y_true) - matrix.sum(axis=0) - matrix.sum(axis=1) + np.diag(matrix)
    )

    row = overall[overall["threshold"] == 0.0].iloc[0]
    assert row["coverage"] == 1.0
    accuracy = accuracy_score(y_true, y_pred)
    assert row["accuracy"] == pytest.approx(accuracy, rel=1e-12)
    for average in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        assert row[f"precision_{average}"] == pytest.approx(p, rel=1e-12)
        assert row[f"recall_{average}"] == pytest.approx(r, rel=1e-12)
        assert row[f"f1_{average}"] == pytest.approx(f, rel=1e-12)
    assert row["recall_micro"] == row["accuracy"]


@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.9])
def test_threshold_metrics_match_sklearn_with_abstention(threshold):
    """At t > 0, an abstaining image is a prediction of an extra 'abstain' label: the
    per-class counts over the real labels are then exactly sklearn's."""
    num_classes = 5
    y_true, proba = random_case(3, 300, num_classes)
    overall, per_class = threshold_metrics(y_true, proba, names_for(num_classes), [threshold])
    y_pred = np.where(proba.max(axis=1) >= threshold, proba.argmax(axis=1), num_classes)
    labels = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    np.testing.assert_allclose(per_class["precision"], precision, rtol=1e-12)
    np.testing.assert_allclose(per_class["recall"], recall, rtol=1e-12)
    np.testing.assert_allclose(per_class["f1"], f1, rtol=1e-12)
    np.testing.assert_array_equal(per_class["support"], support)
    accepted = y_pred != num_classes
    row = overall.iloc[0]
    assert row["coverage"] == pytest.approx(accepted.mean())
    assert row["accuracy"] == pytest.approx((y_pred == y_true).mean())
    assert row["precision_micro"] == pytest.approx((y_pred == y_true)[accepted].mean())
    assert row["precision_macro"] == pytest.approx(precision.mean())
    assert row["recall_macro"] == pytest.approx(recall.mean())
    assert row["f1_macro"] == pytest.approx(f1.mean())


def test_confusion_frame_matches_sklearn():
    num_classes = 6
    y_true, proba = random_case(4, 250, num_classes)
    y_pred = proba.argmax(axis=1)
    names = names_for(num_classes)
    frame = confusion_frame(y_true, y_pred, names)
    assert list(frame.columns) == ["actual", *names]
    assert list(frame["actual"]) == names
    np.testing.assert_array_equal(
        frame[names].to_numpy(), confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_loss_matches_sklearn_including_clipping(dtype):
    num_classes = 4
    y_true, proba = random_case(5, 200, num_classes, dtype=dtype)
    # Certain, wrong and certain, right rows exercise the [eps, 1 - eps] clipping.
    proba[0] = [1.0, 0.0, 0.0, 0.0]
    y_true[0] = 1
    proba[1] = [0.0, 0.0, 1.0, 0.0]
    y_true[1] = 2
    y_true[2:6] = 3  # class 3 present; labels=range(K) matters when one is absent
    result = summary_metrics(y_true, proba, num_classes)
    expected = log_loss(y_true, proba, labels=list(range(num_classes)))
    assert result["log_loss"] == pytest.approx(expected, rel=1e-6)
    assert result["top5_accuracy"] is None


@pytest.mark.parametrize("ties", [False, True])
def test_top5_accuracy_matches_sklearn(ties):
    num_classes = 9
    y_true, proba = random_case(6, 300, num_classes, ties=ties)
    result = summary_metrics(y_true, proba, num_classes)
    expected = top_k_accuracy_score(y_true, proba, k=5, labels=list(range(num_classes)))
    assert result["top5_accuracy"] == pytest.approx(expected, abs=1e-12)
    with warnings.catch_warnings():  # rounded rows do not sum to exactly one
        warnings.simplefilter("ignore", UserWarning)
        expected_loss = log_loss(y_true, proba, labels=list(range(num_classes)))
    assert result["log_loss"] == pytest.approx(expected_loss, rel=1e-9)


def test_chunked_summary_equals_one_pass(monkeypatch):
    """Rows are scored in chunks (bounded memory); the sums must equal one unchunked call."""
    num_classes = 9
    y_true, proba = random_case(13, 301, num_classes, dtype=np.float32)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 7 * num_classes)  # 43 chunks, last short
    result = summary_metrics(y_true, proba, num_classes)
    labels = list(range(num_classes))
    assert result["top5_accuracy"] == top_k_accuracy_score(y_true, proba, k=5, labels=labels)
    assert result["log_loss"] == pytest.approx(log_loss(y_true, proba, labels=labels), rel=1e-6)
    with pytest.raises(ValueError, match="`num_classes` must be an integer of at least 2"):
        summary_metrics([0, 0], np.ones((2, 1)), 1)


# --------------------------------------------------------------------------- hand-computed cases

# 4 images, 2 classes: (actual, probabilities) -> prediction, confidence
#   img0: actual 0, [0.90, 0.10] -> 0 @ 0.90 (right)
#   img1: actual 1, [0.60, 0.40] -> 0 @ 0.60 (wrong)
#   img2: actual 1, [0.30, 0.70] -> 1 @ 0.70 (right)
#   img3: actual 0, [0.45, 0.55] -> 1 @ 0.55 (wrong)
HAND_Y = np.array([0, 1, 1, 0])
HAND_P = np.array([[0.90, 0.10], [0.60, 0.40], [0.30, 0.70], [0.45, 0.55]])
HAND_NAMES = ["cat", "dog"]

# threshold -> {class: (tp, fp, fn, tn)}
HAND_COUNTS = {
    0.0: {"cat": (1, 1, 1, 1), "dog": (1, 1, 1, 1)},  # everything accepted
    0.58: {"cat": (1, 1, 1, 1), "dog": (1, 0, 1, 2)},  # img3 abstains
    0.65: {"cat": (1, 0, 1, 2), "dog": (1, 0, 1, 2)},  # img1, img3 abstain
    0.9: {"cat": (1, 0, 1, 2), "dog": (0, 0, 2, 2)},  # only img0 (0.90 >= 0.90)
    0.95: {"cat": (0, 0, 2, 2), "dog": (0, 0, 2, 2)},  # nothing accepted
}
# threshold -> coverage, accuracy, precision_micro, recall_micro, f1_micro,
#              precision_macro, recall_macro, f1_macro
HAND_OVERALL = {
    0.0: (1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5),
    0.58: (0.75, 0.5, 2 / 3, 0.5, 4 / 7, 0.75, 0.5, (0.5 + 2 / 3) / 2),
    0.65: (0.5, 0.5, 1.0, 0.5, 2 / 3, 1.0, 0.5, 2 / 3),
    0.9: (0.25, 0.25, 1.0, 0.25, 0.4, 0.5, 0.25, (2 / 3) / 2),
    0.95: (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
}


def test_hand_computed_threshold_semantics():
    thresholds = list(HAND_COUNTS)
    overall, per_class = threshold_metrics(HAND_Y, HAND_P, HAND_NAMES, thresholds)
    assert list(overall.columns) == OVERALL_COLUMNS
    assert list(per_class.columns) == CLASS_COLUMNS
    assert list(overall["threshold"]) == thresholds
    for threshold, classes in HAND_COUNTS.items():
        for name, (tp, fp, fn, tn) in classes.items():
            row = per_class[(per_class["threshold"] == threshold) & (per_class["class"] == name)]
            assert len(row) == 1
            row = row.iloc[0]
            assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (tp, fp, fn, tn), (
                threshold,
                name,
            )
            assert row["support"] == 2
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn)
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            assert row["precision"] == pytest.approx(precision)
            assert row["recall"] == pytest.approx(recall)
            assert row["f1"] == pytest.approx(f1)
        got = overall[overall["threshold"] == threshold].iloc[0]
        assert tuple(got[OVERALL_COLUMNS[1:]]) == pytest.approx(HAND_OVERALL[threshold]), threshold


def test_threshold_order_is_kept_and_unsorted_input_is_consistent():
    y_true, proba = random_case(7, 200, 4)
    names = names_for(4)
    shuffled = [0.7, 0.0, 0.95, 0.3]
    overall_shuffled, per_class_shuffled = threshold_metrics(y_true, proba, names, shuffled)
    overall_sorted, per_class_sorted = threshold_metrics(y_true, proba, names, sorted(shuffled))
    assert list(overall_shuffled["threshold"]) == shuffled
    pd.testing.assert_frame_equal(
        overall_shuffled.sort_values("threshold").reset_index(drop=True), overall_sorted
    )
    pd.testing.assert_frame_equal(
        per_class_shuffled.sort_values(["threshold", "class"]).reset_index(drop=True),
        per_class_sorted.sort_values(["threshold", "class"]).reset_index(drop=True),
    )


def test_float32_confidence_equal_to_threshold_is_accepted():
    proba = np.array([[0.95, 0.05], [0.2, 0.8]], dtype=np.float32)
    overall, per_class = threshold_metrics([0, 1], proba, ["a", "b"], [0.95])
    assert overall["coverage"].iloc[0] == 0.5
    assert per_class["tp"].tolist() == [1, 0]


def test_coverage_and_counts_are_monotone():
    y_true, proba = random_case(8, 500, 10)
    overall, per_class = threshold_metrics(y_true, proba, names_for(10), default_thresholds())
    assert np.all(np.diff(overall["coverage"]) <= 0)
    assert np.all(np.diff(overall["recall_micro"]) <= 0)
    assert overall["coverage"].iloc[0] == 1.0
    tp = per_class.pivot(index="threshold", columns="class", values="tp").to_numpy()
    assert np.all(np.diff(tp, axis=0) <= 0)
    totals = per_class[["tp", "fp", "fn", "tn"]].sum(axis=1)
    assert (totals == len(y_true)).all()
    by_threshold = per_class.groupby("threshold")
    assert (by_threshold["support"].sum() == len(y_true)).all()


def test_never_predicted_class_has_zero_precision_and_empty_class_zero_recall():
    rng = np.random.default_rng(9)
    proba = rng.dirichlet(np.ones(3), size=50)
    proba[:, 2] = 0.0  # class 2 never predicted
    proba /= proba.sum(axis=1, keepdims=True)
    y_true = rng.integers(0, 3, 50)
    y_true[y_true == 1] = 0  # class 1 has no images
    _, per_class = threshold_metrics(y_true, proba, ["a", "b", "c"], [0.0, 0.5])
    never = per_class[per_class["class"] == "c"]
    assert (
        (never["precision"] == 0.0).all() and (never["tp"] == 0).all() and (never["fp"] == 0).all()
    )
    assert (never["f1"] == 0.0).all()
    empty = per_class[per_class["class"] == "b"]
    assert (empty["support"] == 0).all() and (empty["recall"] == 0.0).all()


def test_predictions_frame():
    frame = predictions_frame(
        ["x/1.jpg", Path("y/2.jpg"), "z/3.jpg", "w/4.jpg"], HAND_Y, HAND_P, HAND_NAMES
    )
    assert list(frame.columns) == [
        "image_path",
        "actual",
        "predicted",
        "confidence",
        "correct",
        "p_cat",
        "p_dog",
    ]
    assert frame["image_path"].tolist() == ["x/1.jpg", str(Path("y/2.jpg")), "z/3.jpg", "w/4.jpg"]
    assert frame["actual"].tolist() == ["cat", "dog", "dog", "cat"]
    assert frame["predicted"].tolist() == ["cat", "cat", "dog", "dog"]
    assert frame["confidence"].tolist() == [0.90, 0.60, 0.70, 0.55]
    assert frame["correct"].tolist() == [1, 0, 1, 0]
    np.testing.assert_array_equal(frame[["p_cat", "p_dog"]].to_numpy(), HAND_P)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"thresholds": [0.5, 1.5]}, "`thresholds`"),
        ({"thresholds": [0.5, 0.5]}, "must not repeat"),
        ({"thresholds": []}, "`thresholds`"),
        ({"thresholds": [float("nan")]}, "`thresholds`"),
        ({"thresholds": "0.5"}, "`thresholds`"),
        ({"class_names": ["cat", "cat"]}, "`class_names`"),
        ({"class_names": ["cat", ""]}, "`class_names`"),
        ({"proba": np.full((4, 2), np.nan)}, "`proba`"),
    ],
)
def test_user_input_errors(kwargs, fragment):
    arguments = {"y_true": HAND_Y, "proba": HAND_P, "class_names": HAND_NAMES, "thresholds": [0.5]}
    arguments.update(kwargs)
    with pytest.raises(CnnhubError, match=fragment) as info:
        threshold_metrics(**arguments)
    assert "Received:" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"y_true": np.array([0, 1, 2, 0])}, "`y_true` must hold class indices from 0 to 1"),
        ({"y_true": np.array([0, 1, 1])}, "`y_true` must have shape"),
        ({"proba": HAND_P[:, :1]}, "`proba` must have shape"),
        ({"proba": HAND_P * 2}, "between 0 and 1"),
    ],
)
def test_shape_errors(kwargs, fragment):
    arguments = {"y_true": HAND_Y, "proba": HAND_P, "class_names": HAND_NAMES}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=fragment) as info:
        threshold_metrics(**arguments)
    assert "Received:" in str(info.value)


# --------------------------------------------------------------------------- selection


def report_row(name, epoch, threshold, **metrics):
    row = {column: 0.5 for column in REPORT_COLUMNS[3:]}
    row.update(weights_name=name, epoch=epoch, threshold=threshold, **metrics)
    return row


def test_analysis_report_columns():
    rows = [report_row("e1.weights.h5", 1, 0.0), report_row("e1.weights.h5", 1, 0.5)]
    frame = analysis_report(rows)
    assert list(frame.columns) == REPORT_COLUMNS
    assert REPORT_COLUMNS[:3] == ["weights_name", "epoch", "threshold"]
    assert REPORT_COLUMNS[-1] == "log_loss"
    with_top5 = analysis_report([dict(row, top5_accuracy=0.9) for row in rows])
    assert list(with_top5.columns) == [*REPORT_COLUMNS, "top5_accuracy"]
    none_top5 = analysis_report([dict(row, top5_accuracy=None) for row in rows])
    assert "top5_accuracy" not in none_top5.columns
    with pytest.raises(ValueError, match="without"):
        analysis_report([{"weights_name": "x", "epoch": 1}])


def test_choose_best_macro_f1_and_ties():
    report = analysis_report(
        [
            report_row("e1", 1, 0.0, f1_macro=0.60),
            report_row("e2", 2, 0.0, f1_macro=0.70),
            report_row("e2", 2, 0.5, f1_macro=0.80),  # winner
            report_row("e3", 3, 0.5, f1_macro=0.75),
        ]
    )
    best = choose_best(report)
    assert best == {
        "weights": "e2",
        "epoch": 2,
        "threshold": 0.5,
        "rule": "macro_f1",
        "value": 0.80,
        "fallback": False,
    }
    tied = analysis_report(
        [
            report_row("e3", 3, 0.9, f1_macro=0.8),
            report_row("e2", 2, 0.0, f1_macro=0.8),
            report_row("e2", 2, 0.4, f1_macro=0.8),  # earliest epoch, then highest threshold
            report_row("e1", 1, 0.5, f1_macro=0.7),
        ]
    )
    best = choose_best(tied, rule="macro_f1")
    assert (best["weights"], best["epoch"], best["threshold"]) == ("e2", 2, 0.4)


def test_choose_best_coverage_at_precision():
    report = analysis_report(
        [
            report_row("e1", 1, 0.0, coverage=1.0, precision_micro=0.80),
            report_row("e1", 1, 0.5, coverage=0.85, precision_micro=0.91),
            report_row("e2", 2, 0.5, coverage=0.90, precision_micro=0.93),  # winner
            report_row("e2", 2, 0.9, coverage=0.40, precision_micro=0.99),
            report_row("e3", 3, 0.3, coverage=0.95, precision_micro=0.89),
        ]
    )
    best = choose_best(report, rule="coverage_at_precision", min_precision=0.9)
    assert (best["weights"], best["threshold"], best["value"], best["fallback"]) == (
        "e2",
        0.5,
        0.90,
        False,
    )
    best = choose_best(report, rule="coverage_at_precision", min_precision=0.95)
    assert (best["weights"], best["threshold"], best["value"]) == ("e2", 0.9, 0.40)
    with pytest.warns(UserWarning, match="No weights reach"):
        best = choose_best(report, rule="coverage_at_precision", min_precision=1.0)
    assert best["fallback"] is True
    assert (best["weights"], best["threshold"]) == ("e2", 0.9)  # most precise row


def test_choose_best_min_class_recall():
    def table(recalls_by_threshold, support=(5, 5, 0)):
        rows = []
        for threshold, recalls in recalls_by_threshold.items():
            for index, (recall, count) in enumerate(zip(recalls, support, strict=True)):
                rows.append(
                    {
                        "threshold": threshold,
                        "class": f"c{index}",
                        "recall": recall,
                        "support": count,
                    }
                )
        return pd.DataFrame(rows)

    per_class = {
        "e1": table({0.0: (0.9, 0.3, 0.0), 0.5: (0.8, 0.2, 0.0)}),
        "e2": table({0.0: (0.6, 0.7, 0.0), 0.5: (0.5, 0.6, 0.0)}),  # winner: min 0.6 at t=0
        "e3": table({0.0: (1.0, 0.55, 0.0), 0.5: (0.9, 0.4, 0.0)}),
    }
    report = analysis_report(
        [report_row(name, epoch, t) for epoch, name in enumerate(per_class, 1) for t in (0.0, 0.5)]
    )
    best = choose_best(report, per_class, rule="min_class_recall")
    assert (best["weights"], best["epoch"], best["threshold"]) == ("e2", 2, 0.0)
    assert best["value"] == pytest.approx(0.6)  # class c2 (support 0) is ignored
    with pytest.raises(CnnhubError, match="per_class"):
        choose_best(report, None, rule="min_class_recall")


def test_choose_best_epoch_tolerance():
    """Above 0, the latest epoch within the tolerance of the best score, then the rule's best
    row of that epoch; every rule compares its own score."""
    report = analysis_report(
        [
            report_row("e1", 1, 0.0, f1_macro=0.70, coverage=1.0, precision_micro=0.95),
            report_row("e2", 2, 0.0, f1_macro=0.805, coverage=1.0, precision_micro=0.92),
            report_row("e2", 2, 0.5, f1_macro=0.81, coverage=0.9, precision_micro=0.95),
            report_row("e3", 3, 0.0, f1_macro=0.80, coverage=1.0, precision_micro=0.91),
            report_row("e3", 3, 0.5, f1_macro=0.795, coverage=0.8, precision_micro=0.96),
            report_row("e4", 4, 0.0, f1_macro=0.79, coverage=1.0, precision_micro=0.89),
        ]
    )
    assert choose_best(report)["epoch"] == 2  # 0 (the default): the best score
    best = choose_best(report, epoch_tolerance=0.01)
    assert best == {
        "weights": "e3",
        "epoch": 3,
        "threshold": 0.0,  # e3's best row (0.80), not e3's first
        "rule": "macro_f1",
        "value": 0.80,
        "fallback": False,
        "epoch_tolerance": 0.01,
        "best_scoring_epoch": 2,
        "best_scoring_value": 0.81,
    }
    assert choose_best(report, epoch_tolerance=0.02)["epoch"] == 4  # 0.79 is within 0.02
    assert choose_best(report, epoch_tolerance=0.005)["epoch"] == 2  # 0.80 is 0.01 below
    # coverage among the rows reaching the precision target (e4's coverage 1.0 does not)
    best = choose_best(report, rule="coverage_at_precision", epoch_tolerance=0.1)
    assert (best["epoch"], best["threshold"], best["value"]) == (3, 0.0, 1.0)
    best = choose_best(report, rule="coverage_at_precision", min_precision=0.95,
                       epoch_tolerance=0.1)  # fmt: skip
    # reaching 0.95: e1 (coverage 1.0), e2 (0.9) and e3 (0.8, 0.2 below the best)
    assert (best["epoch"], best["threshold"], best["best_scoring_epoch"]) == (2, 0.5, 1)
    # none reaches 1.0: precision decides, and the warning names the best of all rows
    with pytest.warns(UserWarning, match=r"\(best is 0.9600\)"):
        best = choose_best(report, rule="coverage_at_precision", min_precision=1.0,
                           epoch_tolerance=0.08)  # fmt: skip
    assert (best["epoch"], best["best_scoring_epoch"], best["fallback"]) == (4, 3, True)
    with pytest.raises(CnnhubError, match=r"epoch tolerance must be a number >= 0. Received: -1"):
        choose_best(report, epoch_tolerance=-1)


def test_choose_best_errors():
    report = analysis_report([report_row("e1", 1, 0.0)])
    with pytest.raises(CnnhubError, match=r"`rule` must be one of .*Received: rule='best'"):
        choose_best(report, rule="best")
    with pytest.raises(CnnhubError, match="`min_precision`"):
        choose_best(report, rule="coverage_at_precision", min_precision=1.5)
    with pytest.raises(ValueError, match="empty"):
        choose_best(report.iloc[:0])


# --------------------------------------------------------------------------- files and CSV safety


def test_escape_cells():
    assert escape_cell("=1+1") == "'=1+1"
    assert escape_cell("-x") == "'-x"
    assert escape_cell("'a") == "''a"
    assert escape_cell("plain") == "plain"
    assert escape_cell(-1.5) == -1.5
    for value in ["=1", "'a", "plain", "@x", "\tx"]:
        assert unescape_cell(escape_cell(value)) == value
    frame = safe_frame(pd.DataFrame({"=h": ["+a", "b"], "n": [-1, 2]}))
    assert list(frame.columns) == ["'=h", "n"]
    assert frame["'=h"].tolist() == ["'+a", "b"]
    assert frame["n"].tolist() == [-1, 2]


def test_write_weight_reports_files_and_columns(tmp_path):
    num_classes = 7
    y_true, proba = random_case(10, 60, num_classes, dtype=np.float32)
    names = names_for(num_classes)
    paths = [f"val/{names[label]}/{index}.jpg" for index, label in enumerate(y_true)]
    result = write_weight_reports(
        tmp_path,
        "epoch_003",
        paths,
        y_true,
        proba,
        names,
        [0.0, 0.5, 0.9],
        weights_name="epoch_003.weights.h5",
        epoch=3,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "epoch_003.csv",
            "epoch_003-thresholds.csv",
            "epoch_003-classes.csv",
            "epoch_003-confusion.csv",
        ]
    )
    predictions = pd.read_csv(tmp_path / "epoch_003.csv")
    assert list(predictions.columns) == [
        "image_path",
        "actual",
        "predicted",
        "confidence",
        "correct",
        *[f"p_{n}" for n in names],
    ]
    assert len(predictions) == 60
    assert list(pd.read_csv(tmp_path / "epoch_003-thresholds.csv").columns) == OVERALL_COLUMNS
    classes = pd.read_csv(tmp_path / "epoch_003-classes.csv")
    assert list(classes.columns) == CLASS_COLUMNS
    assert len(classes) == 3 * num_classes
    confusion = pd.read_csv(tmp_path / "epoch_003-confusion.csv")
    assert list(confusion.columns) == ["actual", *names]
    assert confusion[names].to_numpy().sum() == 60

    assert result["log_loss"] == pytest.approx(
        log_loss(y_true, proba, labels=list(range(num_classes))), rel=1e-5
    )
    assert result["top5_accuracy"] == pytest.approx(
        top_k_accuracy_score(y_true, proba, k=5, labels=list(range(num_classes)))
    )
    report = analysis_report(result["rows"])
    assert list(report.columns) == [*REPORT_COLUMNS, "ece", "top5_accuracy"]
    assert report["threshold"].tolist() == [0.0, 0.5, 0.9]
    assert (report["weights_name"] == "epoch_003.weights.h5").all() and (report["epoch"] == 3).all()
    np.testing.assert_allclose(report[OVERALL_COLUMNS].to_numpy(), result["overall"].to_numpy())

    small = write_weight_reports(
        tmp_path / "small", "w", ["a", "b", "c", "d"], HAND_Y, HAND_P, HAND_NAMES
    )
    assert small["top5_accuracy"] is None
    assert all("top5_accuracy" not in row for row in small["rows"])
    assert len(small["rows"]) == len(default_thresholds())
    with pytest.raises(ValueError, match="`stem`"):
        write_weight_reports(
            tmp_path, "../escape", ["a", "b", "c", "d"], HAND_Y, HAND_P, HAND_NAMES
        )


def test_hostile_names_round_trip_and_plots_render(tmp_path):
    names = HOSTILE_NAMES
    num_classes = len(names)
    y_true, proba = random_case(11, 3 * num_classes, num_classes)
    image_paths = [
        f'=HYPERLINK("http://x")/{i}.jpg' if i % 2 else f"imgs/{i},ok.jpg"
        for i in range(len(y_true))
    ]
    result = write_weight_reports(tmp_path, "best", image_paths, y_true, proba, names, [0.0, 0.3])

    raw = pd.read_csv(tmp_path / "best-classes.csv", keep_default_na=False, encoding="utf-8")
    written = raw["class"].tolist()[:num_classes]
    assert written == [escape_cell(name) for name in names]
    assert written[0] == "'=cmd|' /C calc'!A0"
    assert (
        written[1] == "<script>alert(1)</script>" and written[2] == 'a,b"c' and written[3] == "日本"
    )
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in written)

    back = read_csv_safe(tmp_path / "best-classes.csv", dtype={"class": str})
    assert back["class"].tolist()[:num_classes] == names
    confusion = read_csv_safe(tmp_path / "best-confusion.csv", dtype={"actual": str})
    assert list(confusion.columns) == ["actual", *names]
    assert confusion["actual"].tolist() == names
    predictions = read_csv_safe(tmp_path / "best.csv", dtype=str)
    assert predictions["image_path"].tolist() == image_paths
    assert list(predictions.columns)[5:] == [f"p_{name}" for name in names]
    raw_predictions = pd.read_csv(tmp_path / "best.csv", dtype=str, keep_default_na=False)
    assert raw_predictions["image_path"].iloc[1].startswith("'=HYPERLINK")

    # Plots: drawn even when the caller's rcParams ask for LaTeX, which is not installed.
    with matplotlib.rc_context({"text.usetex": True}), warnings.catch_warnings():
        warnings.simplefilter("error")
        files = write_best_plots(
            tmp_path, "best", result["confusion"], result["overall"], result["per_class"], 0.3
        )
    assert {key: path.name for key, path in files.items()} == {
        "confusion": "best-confusion.png",
        "thresholds": "best-thresholds.png",
        "class_f1": "best-class_f1.png",
    }
    for path in files.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_plot_labels_are_literal(tmp_path, monkeypatch):
    captured = []
    monkeypatch.setattr(
        plots, "save_figure", lambda path, figure, **kwargs: captured.append(figure)
    )
    names = HOSTILE_NAMES
    frame = confusion_frame(np.arange(len(names)), np.arange(len(names)), names)
    plots.plot_confusion(frame, tmp_path / "c.png")
    _, per_class = threshold_metrics(np.arange(len(names)), np.eye(len(names)), names, [0.5])
    plots.plot_class_f1(per_class, 0.5, tmp_path / "f.png")
    for figure in captured:
        axes = figure.axes[0]
        labels = axes.get_yticklabels()
        shown = [label._preprocess_math(label.get_text()) for label in labels]
        # literal text; control characters escaped as on a terminal (cnnhub.display)
        assert shown == [(printable(name), False) for name in names]


def test_plot_metrics_by_epoch(tmp_path):
    rows = [
        report_row("e1", 1, 0.0, f1_macro=0.5, top5_accuracy=0.8, log_loss=1.2),
        report_row("e1", 1, 0.5, f1_macro=0.4, top5_accuracy=0.8, log_loss=1.2),
        report_row("e2", 2, 0.0, f1_macro=0.6, top5_accuracy=0.9, log_loss=0.9),
        report_row("e2", 2, 0.5, f1_macro=0.5, top5_accuracy=0.9, log_loss=0.9),
    ]
    report = analysis_report(rows)
    path = tmp_path / "by_epoch.png"
    plots.plot_metrics_by_epoch(report, 0.5, path, title="$run$ =1")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="threshold"):
        plots.plot_metrics_by_epoch(report, 0.7, tmp_path / "none.png")
    plots.plot_threshold_curves(
        threshold_metrics(HAND_Y, HAND_P, HAND_NAMES)[0], tmp_path / "t.png"
    )
    assert (tmp_path / "t.png").stat().st_size > 0


def test_many_classes_render_without_labels(tmp_path):
    num_classes = 80
    y_true, proba = random_case(12, 400, num_classes)
    names = names_for(num_classes)
    overall, per_class = threshold_metrics(y_true, proba, names, [0.0, 0.5])
    confusion = confusion_frame(y_true, proba.argmax(axis=1), names)
    files = write_best_plots(tmp_path, "many", confusion, overall, per_class, 0.5)
    assert all(path.stat().st_size > 0 for path in files.values())


def test_no_tensorflow_import():
    code = (
        "import sys, cnnhub.compare, cnnhub.evaluation; "
        "assert 'sklearn' not in sys.modules, 'reading reports must not load scikit-learn'; "
        "import cnnhub.evaluation.plots; from cnnhub.evaluation import summary_metrics; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
