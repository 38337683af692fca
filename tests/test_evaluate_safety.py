"""``cnnhub evaluate`` never shrinks or re-decides a run's results, keeps evaluations apart,
checks ``--weights`` first, and every summary uses one definition of the headline figures."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score
from trained_runs import error_lines, shared_tiny_run

from cnnhub.cli import main
from cnnhub.evaluation import threshold_metrics
from cnnhub.evaluation.headline import HEADLINE_COLUMNS, HEADLINE_FIGURES, headline_figures
from cnnhub.evaluation.safe_csv import read_csv_safe
from cnnhub.run_folder import MODEL_CARD, REPORT_HTML
from conftest import ROOT, cli_env


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory) -> Path:
    return shared_tiny_run(tiny_data, tmp_path_factory)


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A private copy of the shared run (evaluate writes into it)."""
    return shutil.copytree(trained, tmp_path / "model_repository" / "tiny")


# report.html and MODEL_CARD.md show the run's evaluations, so every evaluation rewrites them.
VIEWS = {"evaluations", REPORT_HTML, MODEL_CARD}


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of the run except its separate evaluations and the pages showing them."""
    return {
        str(path.relative_to(run)): path.read_bytes()
        for path in sorted(run.rglob("*"))
        if path.is_file() and path.relative_to(run).parts[0] not in VIEWS
    }


def epoch_files(run: Path) -> list[Path]:
    return sorted((run / "model_logs").glob("weights-*.weights.h5"))


def best_of(run: Path) -> dict:
    return json.loads((run / "best_weights.json").read_text(encoding="utf-8"))


def folder_hash(path: Path) -> str:
    return hashlib.sha1(os.fsencode(path.resolve())).hexdigest()[:8]


def sklearn_headline(per_image: pd.DataFrame, classes: list[str], threshold: float) -> dict:
    """The headline figures from a per-image CSV, computed with scikit-learn only."""
    actual = per_image["actual"].to_numpy()
    predicted = per_image["predicted"].to_numpy()
    accepted = per_image["confidence"].to_numpy() >= threshold
    # An abstention is a miss: give it a label outside the classes, scored in no class.
    at_deploy = np.where(accepted, predicted, "<abstain>")
    f1 = dict(labels=classes, average="macro", zero_division=0)
    return {
        "deploy_threshold": threshold,
        "accuracy@0": accuracy_score(actual, predicted),
        "f1_macro@0": f1_score(actual, predicted, **f1),
        "accuracy@deploy": accuracy_score(actual, at_deploy),
        "f1_macro@deploy": f1_score(actual, at_deploy, **f1),
        "precision_micro@deploy": (
            accuracy_score(actual[accepted], predicted[accepted]) if accepted.any() else 0.0
        ),
        "coverage@deploy": accepted.mean(),
    }


def assert_figures(found: dict, expected: dict) -> None:
    for key in HEADLINE_COLUMNS:
        assert found[key] == pytest.approx(expected[key], abs=1e-9), key


# ------------------------------------------------------------------ one definition


@pytest.mark.parametrize("threshold", [0.0, 0.4, 0.7, 0.99])
def test_headline_figures_match_sklearn(threshold):
    rng = np.random.default_rng(3)
    classes = ["a", "b", "c", "d"]
    labels = rng.integers(0, 4, 200)
    proba = rng.dirichlet(np.full(4, 0.6), 200)
    proba[np.arange(100), labels[:100]] += 1.0  # half of them mostly right
    proba /= proba.sum(axis=1, keepdims=True)
    overall, _ = threshold_metrics(labels, proba, classes, [0.0, 0.4, 0.7, 0.99])
    report = overall.assign(weights_name="w.weights.h5")
    per_image = pd.DataFrame(
        {
            "actual": np.asarray(classes)[labels],
            "predicted": np.asarray(classes)[proba.argmax(axis=1)],
            "confidence": proba.max(axis=1),
        }
    )
    assert_figures(
        headline_figures(report, "w.weights.h5", threshold),
        sklearn_headline(per_image, classes, threshold),
    )
    # A threshold the report does not hold is NaN, never the nearest one's figures.
    missing = headline_figures(report, "w.weights.h5", 0.5)
    assert all(math.isnan(missing[key]) for key in HEADLINE_FIGURES if key.endswith("@deploy"))


def test_every_summary_uses_the_same_figures(run, tiny_data, capsys):
    """Leaderboard, folds summary, held-out summary.json and the printed line agree with
    scikit-learn on the per-image CSVs."""
    from cnnhub.folds import fold_row

    classes = list(json.loads((run / "index_class_mapping.json").read_text()).values())
    best = best_of(run)
    stem = best["weights"][: -len(".weights.h5")]
    validation = sklearn_headline(
        read_csv_safe(run / "model_logs" / f"{stem}.csv"), classes, best["threshold"]
    )
    assert main(["compare", str(run.parent)]) == 0
    board = read_csv_safe(run.parent / "leaderboard.csv").iloc[0]
    assert_figures(board, validation)
    assert_figures(fold_row(run), validation)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data_dir", str(tiny_data["train"])]) == 0
    out = capsys.readouterr().out
    folder = run / "evaluations" / f"train-{folder_hash(tiny_data['train'])}"
    summary = json.loads((folder / "summary.json").read_text())
    heldout = sklearn_headline(read_csv_safe(folder / f"{stem}.csv"), classes, best["threshold"])
    assert_figures(summary, heldout)
    test_row = fold_row(run)
    for key in HEADLINE_FIGURES:
        assert test_row[f"test_{key}[{folder.name}]"] == pytest.approx(heldout[key], abs=1e-9)
    # Part 4: held-out figures at the weights and threshold chosen on validation, labelled.
    lines = out.strip().splitlines()
    assert lines[0] == (
        "Held-out figures of each weights file, at threshold 0 (@0) and at the deploy "
        f"threshold {best['threshold']:g} (@deploy):"
    )
    figures = ", ".join(f"{key} {heldout[key]:.4f}" for key in HEADLINE_FIGURES)
    (held_out,) = [line for line in lines if line.startswith("Held-out (")]
    assert f"weights {best['weights']} (epoch {best['epoch']}) and deploy threshold" in held_out
    assert held_out.startswith(f"Held-out ({tiny_data['train'].resolve()}):")
    assert held_out.endswith(f"chosen on validation (macro_f1): {figures}")
    assert "Best weights" not in out and "Validation" not in out


def test_old_run_folders_still_read(run):
    """A held-out folder and summary.json as written before the headline names."""
    from cnnhub.compare import compare
    from cnnhub.folds import heldout_figures

    best = best_of(run)
    old = run / "evaluations" / "test"
    old.mkdir(parents=True)
    shutil.copy(run / "analysis_report.csv", old / "analysis_report.csv")
    summary = {"data_dir": "test", "weights": best["weights"], "epoch": best["epoch"],
               "accuracy": 0.5, "f1_macro": 0.5, "threshold": best["threshold"]}  # fmt: skip
    (old / "summary.json").write_text(json.dumps(summary))
    report = read_csv_safe(run / "analysis_report.csv")
    expected = headline_figures(report, best["weights"], best["threshold"])
    assert heldout_figures(run) == {"test": expected}
    assert_figures(compare(run.parent).iloc[0], expected)


# ------------------------------------------------------------------ the run's own results


@pytest.mark.parametrize("which", ["top:2", "one", "keras", "outside"])
def test_a_subset_never_changes_the_run(run, tmp_path, which, capsys):
    before = snapshot(run)
    files = epoch_files(run)
    best = best_of(run)
    outside = tmp_path / "elsewhere"
    if which == "top:2":
        args, names = ["top:2"], None
    elif which == "one":
        args, names = [files[0].name], [files[0].name]
    elif which == "keras":
        args, names = ["best_model.keras"], ["best_model.keras"]
    else:
        outside.mkdir()
        copy = shutil.copy(files[-1], outside / "weights-099-0.5000.weights.h5")
        args, names = [str(copy)], ["weights-099-0.5000.weights.h5"]
    assert main(["evaluate", str(run), "--weights", *args]) == 0
    assert snapshot(run) == before  # byte for byte: no report shrunk, no best re-chosen
    if which == "outside":
        assert sorted(p.name for p in outside.iterdir()) == ["weights-099-0.5000.weights.h5"]
    assert sorted(p.name for p in (run / "evaluations").iterdir()) == ["validation"]
    folder = run / "evaluations" / "validation"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["role"] == "validation" and summary["deploy_threshold"] == best["threshold"]
    scored = [entry["weights"] for entry in summary["scored"]]
    if names is not None:
        assert scored == names
    else:
        log = pd.read_csv(run / "training.log").sort_values("val_accuracy", ascending=False)
        assert sorted(scored) == sorted(
            p.name for p in files if int(p.name[8:11]) in set(log["epoch"].head(2))
        )
    report = read_csv_safe(folder / "analysis_report.csv")
    assert sorted(set(report["weights_name"])) == sorted(scored)
    own = read_csv_safe(run / "analysis_report.csv")
    reference = best["weights"] if which == "keras" else (names or scored)[0]
    if which != "outside":  # the same weights give the same validation figures
        assert_figures(
            headline_figures(report, scored[0], best["threshold"]),
            headline_figures(own, reference, best["threshold"]),
        )
    assert "the run's own results (analysis_report.csv, best weights) are unchanged" in (
        capsys.readouterr().out
    )


def test_only_a_full_evaluation_rechooses(run, capsys):
    files = epoch_files(run)
    best = best_of(run)
    wrong = next(p for p in files if p.name != best["weights"])
    (run / "best_weights.json").write_text(json.dumps(dict(best, weights=wrong.name)))
    assert main(["evaluate", str(run), "--weights", *[p.name for p in files[:-1]]]) == 0
    assert best_of(run)["weights"] == wrong.name  # a subset: nothing re-decided
    assert main(["evaluate", str(run), "--weights", *[p.name for p in files]]) == 0
    assert best_of(run) == best  # every weights file: chosen again on validation
    assert len(read_csv_safe(run / "analysis_report.csv")) == len(files) * 21


# ------------------------------------------------------------------ held-out folders


def test_heldout_folders_are_unique_and_replaced_whole(run, tiny_data, tmp_path):
    first = shutil.copytree(tiny_data["valid"], tmp_path / "a" / "valid")
    second = shutil.copytree(tiny_data["valid"], tmp_path / "b" / "valid")
    for image in sorted((second / "circle").iterdir())[:3]:
        image.unlink()
    before = snapshot(run)
    assert main(["evaluate", str(run), "--data_dir", str(first), "--weights", "all"]) == 0
    assert main(["evaluate", str(run), "--data_dir", str(second)]) == 0
    assert snapshot(run) == before
    folders = {p.name for p in (run / "evaluations").iterdir()}
    assert folders == {f"valid-{folder_hash(first)}", f"valid-{folder_hash(second)}"}
    for source, images in ((first, 18), (second, 15)):
        summary = json.loads(
            (run / "evaluations" / f"valid-{folder_hash(source)}" / "summary.json").read_text()
        )
        assert summary["source"] == str(source.resolve()) and summary["images"] == images
    # Again on the first folder with one weights file: only that file's (and the validation
    # choice's) reports remain, none of the earlier evaluation's.
    files = epoch_files(run)
    best = best_of(run)
    one = next(p for p in files if p.name != best["weights"])
    assert main(["evaluate", str(run), "--data_dir", str(first), "--weights", one.name]) == 0
    folder = run / "evaluations" / f"valid-{folder_hash(first)}"
    stems = sorted(name[: -len(".weights.h5")] for name in (one.name, best["weights"]))
    expected = {"analysis_report.csv", "summary.json"} | {
        f"{stem}{suffix}" for stem in stems for suffix in (".csv", "-thresholds.csv",
                                                           "-classes.csv", "-confusion.csv")
    }  # fmt: skip
    assert {p.name for p in folder.iterdir()} == expected
    assert {p.name for p in (run / "evaluations").iterdir()} == folders  # no temporary left


# ------------------------------------------------------------------ --weights checked first


@pytest.mark.parametrize(
    "weights, message",
    [
        (["top:0"], "`--weights top:N` needs a whole number N >= 1"),
        (["top:abc"], "`--weights top:N` needs a whole number N >= 1"),
        (["top:"], "`--weights top:N` needs a whole number N >= 1"),
        (["all", "top:2"], "cannot be mixed with other values"),
        (["run_config.json"], "`--weights` must be all, top:N (N >= 1"),
        (["missing.weights.h5"], "Weights file not found: missing.weights.h5"),
        (["text.weights.h5"], "Cannot read weights file"),
        (["text.keras"], "Cannot read weights file"),
        (["other.weights.h5"], "does not fit this model"),
    ],
)
def test_bad_weights_are_one_line_and_change_nothing(run, weights, message, capsys):
    import keras

    (run / "text.weights.h5").write_text("not weights\n")
    (run / "text.keras").write_text("not a model\n")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(
        run / "other.weights.h5"
    )
    before = snapshot(run)
    assert main(["evaluate", str(run), "--weights", *weights]) == 2
    err = capsys.readouterr().err
    lines = error_lines(err)
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err
    if message.startswith(("Cannot read", "does not fit")):  # the file's content: named
        assert str(run / weights[0]) in lines[0]
    else:
        assert lines[0].endswith(f"Received: --weights {' '.join(weights)}")
    assert snapshot(run) == before and not (run / "evaluations").exists()


def test_bad_weights_are_refused_before_tensorflow_loads(run):
    code = (
        "import sys; from cnnhub.cli import main; "
        f"rc = main(['evaluate', {str(run)!r}, '--weights', 'top:0']); "
        "print(rc, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True, text=True
    )
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert result.stderr.count("\n") == 1 and "top:N" in result.stderr


def test_atomic_folder_replaces_whole_or_not_at_all(tmp_path):
    from cnnhub.atomic import atomic_folder

    target = tmp_path / "evaluations" / "data-1234abcd"
    target.mkdir(parents=True)
    (target / "stale.csv").write_text("old\n")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "new.csv").write_text("new\n")
        raise RuntimeError("scoring failed")
    assert [p.name for p in target.parent.iterdir()] == ["data-1234abcd"]
    assert [p.name for p in target.iterdir()] == ["stale.csv"]  # the failed run changed nothing
    with atomic_folder(target) as tmp:
        (tmp / "new.csv").write_text("new\n")
    assert [p.name for p in target.parent.iterdir()] == ["data-1234abcd"]
    assert [p.name for p in target.iterdir()] == ["new.csv"]


def test_heldout_before_any_validation_choice(trained, tiny_data, tmp_path, capsys):
    from trained_runs import copy_without_best

    run = copy_without_best(trained, tmp_path / "model_repository" / "fresh")
    assert main(["evaluate", str(run), "--data_dir", str(tiny_data["valid"])]) == 0
    assert not (run / "best_weights.json").exists()  # held-out data never chooses
    folder = run / "evaluations" / f"valid-{folder_hash(tiny_data['valid'])}"
    summary = json.loads((folder / "summary.json").read_text())
    last = epoch_files(run)[-1].name
    assert summary["chosen_on_validation"] is False and summary["weights"] == last
    assert summary["deploy_threshold"] == 0.0
    assert "no weights were chosen on validation yet" in capsys.readouterr().out


def test_two_weights_files_with_one_name_are_refused(run, tmp_path, capsys):
    own = epoch_files(run)[0]
    other = shutil.copy(own, (tmp_path / "other").mkdir() or tmp_path / "other" / own.name)
    before = snapshot(run)
    assert main(["evaluate", str(run), "--weights", own.name, str(other)]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert f"Two weights files share the name {own.name}" in line
    assert snapshot(run) == before and not (run / "evaluations").exists()
