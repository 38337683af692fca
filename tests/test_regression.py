"""--task regression: data, refusals, per-epoch scores (checked against scikit-learn), the
saved model in the user's units, and every command on a tiny regression run."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    root_mean_squared_error,
)
from trained_runs import error_lines

from cnnhub import settings
from cnnhub.cli import main as cnnhub_main
from cnnhub.commands.train import train_main
from cnnhub.data.sets import DataOptions, read_source
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.regression import choose_best_regression, regression_metrics
from cnnhub.evaluation.safe_csv import read_csv_safe

VALUES = ("0", "10", "20")
TINY = [
    "--task", "regression", "-b", "8", "-height", "16", "-width", "16", "--seed", "5",
    "-lr", "0.01", "--custom_conv_blocks", "c8-bn-mp2", "--num_nodes", "16",
    "--num_dropouts", "0", "--aug_horizontal_flip", "false", "--aug_zoom", "0",
    "--aug_translation", "0",
]  # fmt: skip


def value_folder(root: Path, per_value: int, seed: int, names=VALUES) -> Path:
    """Class folders named by numbers; brighter images for larger values (learnable)."""
    rng = np.random.default_rng(seed)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        level = 40 + 8 * (float(name) if name.replace(".", "").isdigit() else 0)
        for i in range(per_value):
            pixels = rng.normal(level, 12, (16, 16, 3)).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{i}.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("regression_data")
    value_folder(base / "train", 6, seed=1)
    value_folder(base / "valid", 3, seed=2)
    return base


@pytest.fixture(scope="module")
def run(data) -> Path:
    """A 2-epoch regression run on folder data (numbers as folder names)."""
    code = train_main(
        ["-dtrain", str(data / "train"), "-dvalid", str(data / "valid"), "-e", "2"]
        + ["-sl", str(data), "--run_name", "reg", *TINY]
    )
    assert code == 0
    return data / "model_repository" / "reg"


# ---------------------------------------------------------------- scoring, no training


@pytest.mark.parametrize("targets", [1, 2])
def test_metrics_equal_scikit_learn(targets):
    rng = np.random.default_rng(targets)
    actual = rng.normal(50, 20, (40, targets))
    predicted = actual + rng.normal(0, 5, (40, targets))
    got = regression_metrics(actual, predicted)
    assert got["mae"] == pytest.approx(mean_absolute_error(actual, predicted), rel=1e-12)
    assert got["rmse"] == pytest.approx(root_mean_squared_error(actual, predicted), rel=1e-12)
    assert got["r2"] == pytest.approx(r2_score(actual, predicted), rel=1e-12)
    expected_mape = mean_absolute_percentage_error(actual, predicted)
    assert got["mape"] == pytest.approx(expected_mape, rel=1e-12)


def test_metrics_edge_cases_equal_scikit_learn():
    constant = np.full(5, 3.0)
    for predicted in (constant, constant + 1):  # r2 of a constant target: 1 if exact, else 0
        assert regression_metrics(constant, predicted)["r2"] == r2_score(constant, predicted)
    with_zero = np.array([0.0, 1.0, 2.0])  # MAPE divides by max(|y|, eps), as scikit-learn
    predicted = np.array([0.5, 1.0, 2.5])
    assert regression_metrics(with_zero, predicted)["mape"] == pytest.approx(
        mean_absolute_percentage_error(with_zero, predicted), rel=1e-12
    )


def test_console_says_mape_has_no_meaning_when_an_actual_value_is_0(capsys):
    from cnnhub.tasks import get_task

    with_zero, predicted = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 2.5])
    figures = [regression_metrics(actual, predicted) for actual in (with_zero, with_zero + 1)]
    rows = [
        {"weights_name": f"w{i}", "epoch": i, **f, "loss": 0.1} for i, f in enumerate(figures, 1)
    ]
    report = pd.DataFrame(rows)
    task = get_task({"TASK": "regression"})
    best = {"weights": "w1", "epoch": 1, "rule": "mae", "value": figures[0]["mae"]}
    task.print_table(report, "validation", best)
    task.print_choice(report, best)
    out = capsys.readouterr().out
    assert "mape n/a (an actual value is 0)" in out  # not scikit-learn's ~1e15
    assert f"{figures[1]['mape']:.4f}" in out and "e+15" not in out and "1e" not in out
    table = out.split("\n")[1:4]
    assert table[1].split()[-1] == "n/a" and table[2].split()[-1] == f"{figures[1]['mape']:.4f}"


def test_best_weights_by_rule():
    report = pd.DataFrame(
        {
            "weights_name": ["w1", "w2", "w3"],
            "epoch": [1, 2, 3],
            "mae": [3.0, 2.0, 2.0],
            "rmse": [4.0, 1.0, 3.0],
            "r2": [0.1, 0.5, 0.9],
            "mape": [0.3, 0.2, 0.1],
        }
    )
    assert choose_best_regression(report, "mae")["weights"] == "w2"  # tie: earlier epoch
    assert choose_best_regression(report, "rmse")["weights"] == "w2"
    assert choose_best_regression(report, "r2")["weights"] == "w3"  # highest
    assert choose_best_regression(report, "mape") == {
        "weights": "w3", "epoch": 3, "rule": "mape", "value": 0.1
    }  # fmt: skip
    # a tolerance in the figure's units: the latest epoch within it of the best
    assert choose_best_regression(report, "rmse", 2.0)["weights"] == "w3"  # 3.0 <= 1.0 + 2.0
    assert choose_best_regression(report, "rmse", 1.5)["weights"] == "w2"
    assert choose_best_regression(report, "r2", 0.5) == {
        "weights": "w3", "epoch": 3, "rule": "r2", "value": 0.9, "epoch_tolerance": 0.5,
        "best_scoring_epoch": 3, "best_scoring_value": 0.9,
    }  # fmt: skip
    assert choose_best_regression(report, "mae", 1.0)["weights"] == "w3"


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_loss_is_that_of_the_standardised_targets(loss):
    from cnnhub.model_factory import build_model
    from cnnhub.tasks import get_task

    config, _ = settings.resolve(
        ["--task", "regression", "--loss", loss, "-w", "none", "-height", "16", "-width", "16"]
        + ["--custom_conv_blocks", "c4-mp2", "--num_nodes", "4", "--num_dropouts", "0"]
    )
    task = get_task(config)
    model = build_model(config, 1)
    rng = np.random.default_rng(0)
    targets = rng.normal(100.0, 30.0, (50, 1)).astype("float32")
    task.prepare_model(model, targets)
    outputs = targets + rng.normal(0.0, 20.0, (50, 1)).astype("float32")
    got = task.validation_logs(outputs, targets, task.make_loss(config, model), model)
    mean, std = targets.mean(), targets.std()
    z = (outputs.astype(np.float64) - mean) / std - (targets - mean) / std
    expected = {
        "mse": np.mean(z**2),
        "mae": np.mean(np.abs(z)),
        "huber": np.mean(np.where(np.abs(z) <= 1, 0.5 * z**2, np.abs(z) - 0.5)),
    }[loss]
    assert got["val_loss"] == pytest.approx(expected, rel=1e-4)
    assert got["val_mae"] == pytest.approx(np.mean(np.abs(outputs - targets)), rel=1e-5)


# ---------------------------------------------------------------- config and data checks


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--class_weight", "balanced"], "`class_weight` does not apply to task regression"),
        (["--oversample", "true"], "`oversample` does not apply to task regression"),
        (["--eval_thresholds", "0.5"], "`eval_thresholds` does not apply to task regression"),
        (["--label_smoothing", "0.1"], "`label_smoothing` does not apply to task regression"),
        (["--loss", "categorical_crossentropy"], "`loss` for task regression must be auto or"),
        (["--best_weight_rule", "macro_f1"], "`best_weight_rule` for task regression must be"),
        (["--early_stopping_monitor", "val_accuracy"], "use val_mae, mae, val_loss or loss"),
        (["--target_column", "a,b"], "`target_column` names 2 column(s) but `num_targets` is 1"),
    ],
)
def test_options_that_do_not_apply_are_refused(flags, message, data, tmp_path, capsys):
    argv = ["-dtrain", str(data / "train"), "-dvalid", str(data / "valid"), *TINY, *flags]
    assert train_main([*argv, "-sl", str(tmp_path), "-e", "1"]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--target_column", "angle"], "`target_column` does not apply to task single_label"),
        (["--loss", "mse"], "`loss` for task single_label must be auto or one of"),
        (["--best_weight_rule", "mae"], "`best_weight_rule` for task single_label"),
    ],
)
def test_single_label_refuses_regression_options(flags, message):
    with pytest.raises(CnnhubError, match=message):
        settings.resolve(flags)


def test_auto_means_the_task_default():
    config, _ = settings.resolve([])
    assert config["TASK"] == "single_label" and config["LOSS"] == "auto"
    from cnnhub.tasks import get_task
    from cnnhub.tasks.checks import resolved

    assert resolved(config, "LOSS", get_task(config)) == "categorical_crossentropy"
    assert resolved(config, "BEST_WEIGHT_RULE", get_task(config)) == "macro_f1"
    regression = get_task("regression")
    assert resolved(config, "LOSS", regression) == "mse"
    assert resolved(config, "BEST_WEIGHT_RULE", regression) == "mae"


def test_a_folder_name_that_is_not_a_number_is_one_line(tmp_path, capsys):
    train = value_folder(tmp_path / "train", 2, seed=1, names=("0", "ten"))
    valid = value_folder(tmp_path / "valid", 2, seed=2, names=("0", "ten"))
    save = tmp_path / "save"
    argv = ["-dtrain", str(train), "-dvalid", str(valid), "-sl", str(save), *TINY, "-e", "1"]
    assert train_main(argv) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "'ten' is not a finite number" in lines[0], lines
    assert not save.exists()


def _csv(path: Path, images: Path, columns: dict[str, list]) -> Path:
    files = sorted(str(p) for p in images.rglob("*.png"))
    frame = pd.DataFrame({"path": files, **{k: v[: len(files)] for k, v in columns.items()}})
    frame.to_csv(path, index=False)
    return path


def test_csv_paths_targets(data, tmp_path):
    n = len(list((data / "valid").rglob("*.png")))
    angles = [float(i) * 1.5 for i in range(n)]
    sizes = [100.0 - i for i in range(n)]
    csv = _csv(tmp_path / "v.csv", data / "valid", {"angle": angles, "size": sizes})
    options = DataOptions(task="regression", target_column="angle,size", num_targets=2)
    source = read_source(str(csv), "train", options)
    assert source.class_names == ["angle", "size"]
    np.testing.assert_array_equal(source.targets, np.stack([angles, sizes], 1).astype("float32"))
    one = read_source(str(csv), "train", DataOptions(task="regression", target_column="size"))
    np.testing.assert_array_equal(one.targets[:, 0], np.float32(sizes))
    bad = _csv(tmp_path / "b.csv", data / "valid", {"angle": ["x"] * n})
    with pytest.raises(CnnhubError, match="'x' is not a finite number"):
        read_source(str(bad), "train", DataOptions(task="regression", target_column="angle"))
    with pytest.raises(CnnhubError, match="no column `height`"):
        read_source(str(csv), "train", DataOptions(task="regression", target_column="height"))


def test_inspect_reports_the_target_distribution(data, tmp_path, capsys):
    code = cnnhub_main(["inspect", str(data / "train"), "--task", "regression"] +
                       ["--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    values = np.repeat([0.0, 10.0, 20.0], 6)
    assert "Data: 1 target" in out
    assert f"18 images, min 0, max 20, mean 10, std {values.std():.6g}" in out
    assert (tmp_path / "target_histogram.png").stat().st_size > 0


# ---------------------------------------------------------------- a trained run


def test_run_files_and_scores(run):
    logs = run / "model_logs"
    log = pd.read_csv(run / "training.log")
    assert list(log.columns) == [
        "epoch", "loss", "mae", "val_loss", "val_mae", "learning_rate", "seconds"
    ]  # fmt: skip
    report = read_csv_safe(run / "analysis_report.csv")
    assert list(report["epoch"]) == [1, 2]
    for row in report.itertuples():
        frame = read_csv_safe(logs / row.weights_name.replace(".weights.h5", ".csv"))
        assert list(frame.columns) == ["image_path", "actual", "predicted", "error"]
        assert len(frame) == 9
        np.testing.assert_allclose(frame["error"], frame["predicted"] - frame["actual"])
        y, p = frame["actual"], frame["predicted"]
        assert row.mae == pytest.approx(mean_absolute_error(y, p), rel=1e-9)
        assert row.rmse == pytest.approx(root_mean_squared_error(y, p), rel=1e-9)
        assert row.r2 == pytest.approx(r2_score(y, p), rel=1e-9)
        assert row.mape == pytest.approx(mean_absolute_percentage_error(y, p), rel=1e-9)
        epoch_log = log[log["epoch"] == row.epoch].iloc[0]  # same pass as training's val_mae
        assert epoch_log["val_mae"] == pytest.approx(row.mae, rel=1e-5)
    best = json.loads((run / "best_weights.json").read_text())
    chosen = report.loc[report["mae"].idxmin()]
    assert best["weights"] == chosen["weights_name"] and best["rule"] == "mae"
    assert "threshold" not in best
    stem = best["weights"].removesuffix(".weights.h5")
    for name in (f"{stem}-predicted_vs_actual.png", f"{stem}-residuals.png"):
        assert (logs / name).stat().st_size > 0
    assert (run / "analysis_metrics.png").is_file()
    mapping = json.loads((run / "index_class_mapping.json").read_text())
    assert mapping == {"0": "target"}


def test_saved_model_predicts_in_the_users_units_without_cnnhub(run):
    model = keras.saving.load_model(run / "best_model.keras", safe_mode=True)
    layer = model.get_layer("target_scale")  # a built-in Dense: std and mean of the targets
    values = np.repeat([0.0, 10.0, 20.0], 6)
    np.testing.assert_allclose(np.diag(layer.get_weights()[0]), [values.std()], rtol=1e-5)
    np.testing.assert_allclose(layer.get_weights()[1], [values.mean()], rtol=1e-5)
    assert not layer.trainable
    best = json.loads((run / "best_weights.json").read_text())
    frame = read_csv_safe(run / "model_logs" / best["weights"].replace(".weights.h5", ".csv"))
    from trained_runs import pixels

    images = pixels(frame["image_path"], size=(16, 16))
    predicted = model.predict(images, verbose=0)[:, 0]
    np.testing.assert_allclose(predicted, frame["predicted"], rtol=1e-4, atol=1e-3)


def test_predict_writes_the_values(run, data, tmp_path, capsys):
    out = tmp_path / "p.csv"
    code = cnnhub_main(["predict", str(run), str(data / "valid" / "10"), "--out", str(out)])
    assert code == 0
    frame = read_csv_safe(out)
    assert list(frame.columns) == ["image_path", "target", "error"]
    model = keras.saving.load_model(run / "best_model.keras", safe_mode=True)
    from trained_runs import pixels

    expected = model.predict(pixels(frame["image_path"], size=(16, 16)), verbose=0)[:, 0]
    np.testing.assert_allclose(frame["target"], expected, rtol=1e-4, atol=1e-3)
    assert "3 predicted, 0 unreadable" in capsys.readouterr().out
    assert cnnhub_main(["predict", str(run), str(data / "valid"), "--threshold", "0.5"]) == 2
    assert "`--threshold` applies to classification runs" in capsys.readouterr().err


def test_evaluate_on_other_data(run, data, capsys):
    assert cnnhub_main(["evaluate", str(run), "--data_dir", str(data / "train")]) == 0
    summary_file = next((run / "evaluations").glob("*/summary.json"))
    summary = json.loads(summary_file.read_text())
    assert summary["task"] == "regression" and summary["images"] == 18
    frame = read_csv_safe(summary_file.parent / summary["weights"].replace(".weights.h5", ".csv"))
    assert summary["mae"] == pytest.approx(
        mean_absolute_error(frame["actual"], frame["predicted"]), rel=1e-9
    )
    assert sorted(frame["actual"].unique()) == [0.0, 10.0, 20.0]


def test_compare_and_gradcam(run, tmp_path, capsys):
    assert cnnhub_main(["compare", str(run.parent)]) == 0
    board = read_csv_safe(run.parent / "leaderboard.csv")
    assert {"mae", "rmse", "r2", "mape"} <= set(board.columns)
    assert "f1_macro@deploy" not in board.columns
    report = read_csv_safe(run / "analysis_report.csv")
    best = json.loads((run / "best_weights.json").read_text())
    row = report[report["weights_name"] == best["weights"]].iloc[0]
    assert board.loc[board["run"] == "reg", "mae"].iloc[0] == pytest.approx(row["mae"])
    image = next((run.parent.parent / "valid" / "20").glob("*.png"))
    out = tmp_path / "cam.png"
    assert cnnhub_main(["gradcam", str(run), str(image), "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and "Grad-CAM for target = " in capsys.readouterr().out


def test_export_carries_the_task_and_verifies_values(run, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx"
    assert cnnhub_main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["task"] == "regression" and metadata["labels"] == ["target"]
    assert metadata["threshold"] is None
    assert metadata["verification"]["max_abs_diff"] <= 1e-4 * 30


def test_resume_continues_exactly(data, run, tmp_path):
    common = ["-dtrain", str(data / "train"), "-dvalid", str(data / "valid"), *TINY]
    assert train_main([*common, "-e", "1", "-sl", str(tmp_path), "--run_name", "part"]) == 0
    part = tmp_path / "model_repository" / "part"
    assert train_main(["--resume", str(part), "-e", "2"]) == 0
    full, resumed = pd.read_csv(run / "training.log"), pd.read_csv(part / "training.log")
    columns = ["loss", "mae", "val_loss", "val_mae"]
    np.testing.assert_allclose(resumed[columns], full[columns], rtol=1e-4, atol=1e-5)
    assert json.loads((part / "best_weights.json").read_text()) == json.loads(
        (run / "best_weights.json").read_text()
    )


def test_folds_use_kfold(data, tmp_path):
    argv = ["-dtrain", str(data / "train"), "--folds", "2", "-e", "1", *TINY]
    assert train_main([*argv, "-sl", str(tmp_path), "--run_name", "cv"]) == 0
    parent = tmp_path / "model_repository" / "cv"
    from sklearn.model_selection import KFold

    folds = pd.read_csv(parent / "folds.csv")
    expected = np.zeros(len(folds), dtype=int)
    for index, (_, held) in enumerate(KFold(2, shuffle=True, random_state=5).split(folds)):
        expected[held] = index + 1
    np.testing.assert_array_equal(folds["fold"], expected)
    summary = read_csv_safe(parent / "folds_summary.csv")
    assert list(summary.columns[:8]) == [
        "fold", "run", "best_weights", "best_epoch", "mae", "rmse", "r2", "mape"
    ]  # fmt: skip
    assert list(summary["fold"]) == ["1", "2", "mean", "std"]


def test_errors_refuses_a_regression_run_and_the_report_is_written(run, capsys):
    assert cnnhub_main(["errors", str(run)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "`cnnhub errors` shows confident errors" in lines[0], lines
    assert (run / "report.html").is_file() and (run / "MODEL_CARD.md").is_file()


def test_two_targets_from_csv_columns(data, tmp_path):
    """--num_targets 2: one output per --target_column, each scaled by its own mean and std."""
    paths = {}
    for split in ("train", "valid"):
        files = sorted((data / split).rglob("*.png"))
        value = np.array([float(f.parent.name) for f in files])
        frame = pd.DataFrame({"path": [str(f) for f in files], "angle": value, "size": 3 * value})
        paths[split] = tmp_path / f"{split}.csv"
        frame.to_csv(paths[split], index=False)
    argv = ["-dtrain", str(paths["train"]), "-dvalid", str(paths["valid"]), *TINY, "-e", "1"]
    argv += ["--target_column", "angle,size", "--num_targets", "2"]
    assert train_main([*argv, "-sl", str(tmp_path), "--run_name", "two"]) == 0
    run = tmp_path / "model_repository" / "two"
    assert json.loads((run / "index_class_mapping.json").read_text()) == {
        "0": "angle", "1": "size"
    }  # fmt: skip
    frame = read_csv_safe(next((run / "model_logs").glob("weights-001-*.csv")))
    assert list(frame.columns) == [
        "image_path", "actual_angle", "predicted_angle", "error_angle",
        "actual_size", "predicted_size", "error_size",
    ]  # fmt: skip
    row = read_csv_safe(run / "analysis_report.csv").iloc[0]
    actual = frame[["actual_angle", "actual_size"]].to_numpy()
    predicted = frame[["predicted_angle", "predicted_size"]].to_numpy()
    assert row["mae"] == pytest.approx(mean_absolute_error(actual, predicted), rel=1e-9)
    assert row["r2"] == pytest.approx(r2_score(actual, predicted), rel=1e-9)
    layer = keras.saving.load_model(run / "best_model.keras").get_layer("target_scale")
    values = np.repeat([0.0, 10.0, 20.0], 6)
    np.testing.assert_allclose(np.diag(layer.get_weights()[0]), [values.std(), 3 * values.std()],
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(layer.get_weights()[1], [10.0, 30.0], rtol=1e-5)
