"""Multi-label scores (cnnhub.evaluation.multilabel) against scikit-learn on random data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

from cnnhub.errors import CnnhubError
from cnnhub.evaluation.metrics import default_thresholds
from cnnhub.evaluation.multilabel import (
    choose_class_thresholds,
    multilabel_predictions_frame,
    multilabel_scores,
)

# scikit-learn warns about the label no image has (on purpose: it must score 0 in both).
pytestmark = pytest.mark.filterwarnings("ignore:No positive class found:UserWarning")


def _random(seed: int, n: int = 60, k: int = 5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.35).astype(np.int64)
    y[0] = 0  # an image with no label
    y[:, -1] = 0  # a label no image has
    # Scores on the grid (0.05 steps) make ties with the thresholds themselves.
    proba = np.where(
        rng.random((n, k)) < 0.3, np.round(rng.random((n, k)) * 20) / 20, rng.random((n, k))
    )
    proba = np.clip(proba + 0.3 * y, 0, 1).astype(dtype)
    return y, proba, [f"c{i}" for i in range(k)]


def _sk_at(y, hits):
    return {
        "precision_micro": precision_score(y, hits, average="micro", zero_division=0),
        "recall_micro": recall_score(y, hits, average="micro", zero_division=0),
        "f1_micro": f1_score(y, hits, average="micro", zero_division=0),
        "precision_macro": precision_score(y, hits, average="macro", zero_division=0),
        "recall_macro": recall_score(y, hits, average="macro", zero_division=0),
        "f1_macro": f1_score(y, hits, average="macro", zero_division=0),
        "subset_accuracy": accuracy_score(y, hits),
        "hamming_loss": hamming_loss(y, hits),
    }


@pytest.mark.parametrize("seed,dtype", [(0, np.float64), (1, np.float32), (2, np.float32)])
def test_every_figure_equals_scikit_learn(seed, dtype):
    y, proba, names = _random(seed, dtype=dtype)
    scores = multilabel_scores(y, proba, names)
    grid = default_thresholds()
    ap = average_precision_score(y, proba, average=None)
    for i, t in enumerate(grid):
        hits = (proba >= dtype(t)).astype(int)
        p, r, f, s = precision_recall_fscore_support(y, hits, average=None, zero_division=0)
        rows = scores.per_class[scores.per_class["threshold"] == t]
        np.testing.assert_allclose(rows["precision"], p, atol=1e-12)
        np.testing.assert_allclose(rows["recall"], r, atol=1e-12)
        np.testing.assert_allclose(rows["f1"], f, atol=1e-12)
        np.testing.assert_array_equal(rows["support"], s)
        np.testing.assert_allclose(rows["ap"], ap, atol=1e-12)
        np.testing.assert_array_equal(rows["tp"] + rows["fp"] + rows["fn"] + rows["tn"], len(y))
        overall = scores.overall.iloc[i]
        assert overall["threshold"] == t
        for key, value in _sk_at(y, hits).items():
            assert overall[key] == pytest.approx(value, abs=1e-12), (t, key)
    chosen = np.array([scores.class_thresholds[n] for n in names])
    hits = (proba >= chosen.astype(dtype)).astype(int)
    np.testing.assert_array_equal(scores.predicted, hits)
    expected = _sk_at(y, hits) | {"map": average_precision_score(y, proba, average="macro")}
    for key, value in expected.items():
        assert scores.summary[key] == pytest.approx(value, abs=1e-12), key
    p, r, f, s = precision_recall_fscore_support(y, hits, average=None, zero_division=0)
    np.testing.assert_allclose(scores.chosen["f1"], f, atol=1e-12)
    np.testing.assert_allclose(scores.chosen["precision"], p, atol=1e-12)
    np.testing.assert_allclose(scores.chosen["recall"], r, atol=1e-12)


def test_thresholds_by_best_f1_and_by_precision():
    y, proba, names = _random(3)
    grid = np.asarray(default_thresholds())
    for min_precision in (None, 0.8):
        scores = multilabel_scores(y, proba, names, min_precision=min_precision)
        for k, name in enumerate(names):
            f1s, precisions = [], []
            for t in grid:
                hits = (proba[:, k] >= t).astype(int)
                f1s.append(f1_score(y[:, k], hits, zero_division=0))
                precisions.append(precision_score(y[:, k], hits, zero_division=0))
            f1s, precisions = np.array(f1s), np.array(precisions)
            if min_precision is None:
                expected = grid[f1s == f1s.max()].max()  # ties: the higher threshold
            elif (precisions >= min_precision).any():
                expected = grid[precisions >= min_precision].min()
            else:
                expected = grid[precisions == precisions.max()].max()
            assert scores.class_thresholds[name] == expected, (name, min_precision)


def test_fixed_class_thresholds_are_used_as_given():
    y, proba, names = _random(4)
    given = [0.1, 0.5, 0.9, 0.3, 0.7]
    scores = multilabel_scores(y, proba, names, class_thresholds=given)
    assert list(scores.class_thresholds.values()) == given
    hits = (proba >= np.array(given)).astype(int)
    assert scores.summary["f1_micro"] == pytest.approx(f1_score(y, hits, average="micro"))
    with pytest.raises(CnnhubError, match="one number between 0 and 1 per class"):
        multilabel_scores(y, proba, names, class_thresholds=[0.5, 2.0, 0.5, 0.5, 0.5])


def test_choose_ties_and_fallback():
    grid = [0.0, 0.5, 0.9]
    precision = np.array([[0.2, 0.1], [0.6, 0.1], [0.6, 0.1]])
    f1 = np.array([[0.3, 0.0], [0.5, 0.0], [0.5, 0.0]])
    np.testing.assert_array_equal(choose_class_thresholds(grid, precision, f1), [0.9, 0.9])
    np.testing.assert_array_equal(
        choose_class_thresholds(grid, precision, f1, min_precision=0.5), [0.5, 0.9]
    )


def test_predictions_frame_and_label_sets():
    y = np.array([[1, 0, 1], [0, 0, 0]])
    proba = np.array([[0.9, 0.2, 0.6], [0.1, 0.7, 0.0]], dtype=np.float32)
    scores = multilabel_scores(y, proba, ["beach", "dog", "people"], class_thresholds=[0.5] * 3)
    frame = multilabel_predictions_frame(
        ["a.jpg", "b.jpg"], y, proba, ["beach", "dog", "people"], scores.predicted
    )
    assert list(frame.columns) == [
        "image_path",
        "actual",
        "predicted",
        "correct",
        "p_beach",
        "p_dog",
        "p_people",
    ]
    assert frame["actual"].tolist() == ["beach|people", ""]
    assert frame["predicted"].tolist() == ["beach|people", "dog"]
    assert frame["correct"].tolist() == [1, 0]


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="only 0 and 1"):
        multilabel_scores(np.array([[2, 0]]), np.array([[0.5, 0.5]]), ["a", "b"])
    with pytest.raises(ValueError, match="multi-hot matrix of shape"):
        multilabel_scores(np.array([1, 0]), np.array([[0.5, 0.5], [0.1, 0.2]]), ["a", "b"])


def test_reports_written_and_best_weights_chosen(tmp_path):
    from cnnhub.evaluation.multilabel_reports import (
        choose_best_multilabel,
        multilabel_analysis_report,
        write_multilabel_reports,
    )
    from cnnhub.evaluation.safe_csv import read_csv_safe

    y, proba, names = _random(5, n=20)
    rows, chosen = [], {}
    for epoch, noise in ((1, 0.6), (2, 0.0)):
        noisy = np.clip(proba + noise * np.random.default_rng(epoch).random(proba.shape), 0, 1)
        out = write_multilabel_reports(
            tmp_path,
            f"w{epoch}",
            [f"{i}.png" for i in range(20)],
            y,
            noisy,
            names,
            weights_name=f"w{epoch}",
            epoch=epoch,
        )
        rows += out["rows"]
        chosen[f"w{epoch}"] = read_csv_safe(out["files"]["class_thresholds"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"w{e}{s}.csv" for e in (1, 2) for s in ("", "-thresholds", "-classes", "-class_thresholds")
    )
    report = multilabel_analysis_report(rows)
    best = choose_best_multilabel(report, chosen, "macro_f1")
    expected = report.loc[report["f1_macro"].idxmax()]
    assert (best["weights"], best["value"]) == (expected["weights_name"], expected["f1_macro"])
    assert best["class_thresholds"] == dict(
        zip(chosen[best["weights"]]["class"], chosen[best["weights"]]["threshold"])
    )
    lowest = choose_best_multilabel(report, chosen, "min_class_recall")
    table = chosen[lowest["weights"]]
    assert lowest["value"] == table[table["support"] > 0]["recall"].min()
    # a tolerance as wide as the scores' spread: the last epoch, whichever scored best
    spread = float(report["f1_macro"].max() - report["f1_macro"].min())
    latest = choose_best_multilabel(report, chosen, "macro_f1", spread)
    assert (latest["epoch"], latest["best_scoring_epoch"]) == (2, best["epoch"])
    assert latest["class_thresholds"] == dict(zip(chosen["w2"]["class"], chosen["w2"]["threshold"]))


def test_multi_hot_cells():
    from cnnhub.data.multi_hot import co_occurrence, encode_multi_hot, join_labels

    matrix, names = encode_multi_hot(["beach|people", "", " people | dog|people", "dog"])
    assert names == ["beach", "dog", "people"]
    assert matrix.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 1], [0, 1, 0]]
    assert join_labels(matrix, names, ";") == ["beach;people", "", "dog;people", "dog"]
    assert co_occurrence(matrix).tolist() == [[1, 0, 1], [0, 2, 1], [1, 1, 2]]
    matrix, names = encode_multi_hot(["0;2", "b"], ";", names=["a", "b", "c"])
    assert matrix.tolist() == [[1, 0, 1], [0, 1, 0]]
    with pytest.raises(CnnhubError, match=r"missing from the class names file: 'z'"):
        encode_multi_hot(["a|z"], names=["a", "b"])
    with pytest.raises(CnnhubError, match="No sample in `x.csv` has a label"):
        encode_multi_hot(["", " "], origin="x.csv")
    with pytest.raises(CnnhubError, match="`label_separator` must be"):
        encode_multi_hot(["a,b"], ",")
