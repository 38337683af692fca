"""``cnnhub predict`` on a tiny trained run: files, folders, unreadable files, top-k, threshold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from trained_runs import (
    best_weights_file,
    copy_without_best,
    error_lines,
    keras_model,
    pixels,
    shared_tiny_run,
    valid_paths,
)

from cnnhub.cli import main
from cnnhub.evaluation.safe_csv import read_csv_safe
from conftest import ROOT, cli_env


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory) -> Path:
    return shared_tiny_run(tiny_data, tmp_path_factory)


@pytest.fixture(scope="module")
def reference(run, tiny_data) -> dict[str, np.ndarray]:
    """The Keras model's own probabilities (best weights) for every validation image."""
    paths = valid_paths(tiny_data)
    proba = keras_model(run, best_weights_file(run)).predict(pixels(paths), verbose=0)
    return dict(zip(paths, proba))


@pytest.fixture(scope="module")
def mixed(tiny_data, tmp_path_factory) -> dict[str, object]:
    """A folder tree with good images in subfolders, two unreadable files and a non-image."""
    root = tmp_path_factory.mktemp("mixed")
    paths = valid_paths(tiny_data)
    copies = {}
    for i, source in enumerate(paths[::4]):
        folder = root / ("nested/deeper" if i % 2 else "top")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(source).name
        shutil.copy(source, target)
        copies[str(target)] = source
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("this is not a picture\n", encoding="utf-8")
    (root / "notes.txt").write_text("ignored: no image extension\n", encoding="utf-8")
    (root / ".hidden.png").write_bytes(b"")
    return {"root": root, "copies": copies}


def predict(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["predict", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read(path: Path):
    """The predictions CSV; empty cells (no error, no label) read as ""."""
    frame = read_csv_safe(path, dtype={"error": str, "label": str})
    for column in ("error", "label"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    return frame


def test_folder_and_files_to_csv_with_keras_top_k(
    run, mixed, reference, tiny_data, tmp_path, capsys
):
    single = valid_paths(tiny_data)[1]
    out = tmp_path / "predictions.csv"
    code, stdout, stderr = predict(
        capsys, str(run), str(mixed["root"]), single, "--out", str(out), "--top_k", "2",
        "--threshold", "0",
    )  # fmt: skip
    assert code == 0, stderr
    frame = read(out).set_index("image_path")
    copies = mixed["copies"]
    expected_paths = {*copies, str(mixed["root"] / "empty.png"), str(mixed["root"] / "text.jpg")}
    assert set(frame.index) == expected_paths | {single}
    assert list(frame.columns) == [
        "label", "confidence", "class_1", "prob_1", "class_2", "prob_2", "error",
    ]  # fmt: skip
    assert frame.loc[str(mixed["root"] / "empty.png"), "error"] == "empty file (0 bytes)"
    assert "text" in frame.loc[str(mixed["root"] / "text.jpg"), "error"]
    assert np.isnan(frame.loc[str(mixed["root"] / "text.jpg"), "prob_1"])
    class_names = json.loads((run / "index_class_mapping.json").read_text())
    names = [class_names[str(i)] for i in range(len(class_names))]
    for path, source in [*copies.items(), (single, single)]:
        row, proba = frame.loc[path], reference[source]
        order = np.argsort(-proba, kind="stable")[:2]
        assert [row["class_1"], row["class_2"]] == [names[i] for i in order]
        np.testing.assert_allclose([row["prob_1"], row["prob_2"]], proba[order], atol=1e-5)
        assert row["label"] == names[order[0]]  # threshold 0: never uncertain
        assert row["confidence"] == pytest.approx(float(proba[order[0]]), abs=1e-5)
        assert row["error"] == ""
    assert "Wrote" in stdout and "2 unreadable" in stdout
    assert not stdout.startswith("image ")  # no table without --print


def test_threshold_gives_uncertain_and_best_threshold_is_used(run, reference, tmp_path, capsys):
    paths = list(reference)
    out = tmp_path / "p.csv"
    code, _, stderr = predict(capsys, str(run), *paths, "--threshold", "0.9", "--out", str(out))
    assert code == 0, stderr
    frame = read(out).set_index("image_path")
    for path, proba in reference.items():
        expect_uncertain = float(proba.max()) < 0.9
        assert (frame.loc[path, "label"] == "uncertain") == expect_uncertain
        assert frame.loc[path, "class_1"] != "uncertain"
    # default --threshold best: the threshold of best_weights.json, no note needed
    best = json.loads((run / "best_weights.json").read_text())
    code, _, stderr = predict(capsys, str(run), *paths, "--out", str(out))
    assert code == 0 and "note:" not in stderr
    frame = read(out).set_index("image_path")
    for path, proba in reference.items():
        uncertain = float(proba.max()) < best["threshold"]
        assert (frame.loc[path, "label"] == "uncertain") == uncertain


def test_table_is_printed_without_out(run, mixed, capsys):
    code, stdout, _ = predict(capsys, str(run), str(mixed["root"]), "--top_k", "5")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["image", "label", "top"]
    assert any("empty.png" in line and "ERROR" in line for line in lines)
    assert any(Path(p).name in stdout for p in mixed["copies"])


def test_without_best_weights_falls_back_to_last_epoch(run, reference, tmp_path, capsys):
    copy = copy_without_best(run, tmp_path / "no_best")
    path = next(iter(reference))
    code, stdout, stderr = predict(capsys, str(copy), path)
    assert code == 0
    assert "best_weights.json not found" in stderr
    assert "using the last epoch's weights" in stderr and "using threshold 0.0" in stderr
    assert "weights-006-" in stdout


def test_epoch_and_file_weights_match_keras(run, reference, tmp_path, capsys):
    path = next(iter(reference))
    weights = sorted((run / "model_logs").glob("weights-002-*.weights.h5"))[0]
    expected = keras_model(run, weights).predict(pixels([path]), verbose=0)[0]
    for spec in ("2", str(weights), weights.name):
        out = tmp_path / "w.csv"
        code, _, stderr = predict(
            capsys, str(run), path, "--weights", spec, "--out", str(out), "--top_k", "3"
        )
        assert code == 0, stderr
        row = read(out).iloc[0]
        np.testing.assert_allclose(
            sorted([row["prob_1"], row["prob_2"], row["prob_3"]]), sorted(expected), atol=1e-5
        )


def test_predict_paths_batches_with_padding_and_progress(run, reference, capsys):
    from cnnhub.predict import predict_paths
    from cnnhub.run_loading import open_run

    paths = list(reference)[:7]
    model = keras_model(run, best_weights_file(run))
    proba, errors = predict_paths(model, open_run(run), paths, batch_size=3, progress=True)
    assert errors == [None] * 7
    np.testing.assert_allclose(proba, np.stack([reference[p] for p in paths]), atol=1e-5)
    assert "img" in capsys.readouterr().err  # the tqdm bar


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["{missing}", "{image}"], "Run folder not found"),
        (["{run}", "{image}", "--weights", "99"], "epoch 99"),
        (["{run}", "{image}", "--weights", "nonsense"], "`--weights` must be"),
        (["{run}", "{image}", "--threshold", "1.5"], "`--threshold` must be"),
        (["{run}", "{image}", "--top_k", "0"], "`--top_k` must be"),
        (["{run}", "{missing}"], "Image or folder not found"),
        (["{run}", "{image}", "--bogus"], "unrecognized arguments"),
        (["{run}"], "required"),
    ],
)
def test_bad_input_exits_2_with_one_line(run, reference, tmp_path, capsys, args, fragment):
    values = {"run": str(run), "image": next(iter(reference)), "missing": str(tmp_path / "nope")}
    code, stdout, stderr = predict(capsys, *[a.format(**values) for a in args])
    assert code == 2
    lines = error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("cnnhub predict: error:")
    assert fragment in lines[0]


def test_not_a_run_folder(tmp_path, capsys):
    code, _, stderr = predict(capsys, str(tmp_path), str(tmp_path))
    assert code == 2 and "not a cnnhub run folder" in stderr


def test_subprocess_bad_input_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cnnhub", "predict", str(tmp_path / "missing"), "x.png"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [line for line in result.stderr.splitlines() if line]
    assert len(error_lines(result.stderr)) == 1
    assert "Run folder not found" in result.stderr


def test_keras_file_in_the_run_folder_as_weights(run, reference, tmp_path, capsys):
    path = next(iter(reference))
    out = tmp_path / "k.csv"
    code, stdout, stderr = predict(
        capsys, str(run), path, "--weights", "final_model.keras", "--out", str(out)
    )
    assert code == 0, stderr
    assert "final_model.keras" in stdout
    expected = keras_model(run, sorted((run / "model_logs").glob("weights-*.h5"))[-1])
    proba = expected.predict(pixels([path]), verbose=0)[0]
    assert read(out).iloc[0]["prob_1"] == pytest.approx(float(proba.max()), abs=1e-5)
