"""--task multi_label end to end on a tiny dataset: one 2-epoch training of 16 px images,
checked against scikit-learn and an independent Keras model; refusals; inspect; evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)
from trained_runs import error_lines, keras_model, pixels

from cnnhub.cli import main
from cnnhub.commands.train import train_main

LABELS = ("red", "green", "blue")
FLAGS = [
    "--task", "multi_label", "-e", "2", "-b", "8", "-height", "16", "-width", "16",
    "-m", "custom", "--custom_conv_blocks", "c8-bn-mp2", "--num_nodes", "16",
    "--num_dropouts", "0", "--seed", "3", "--aug_horizontal_flip", "false", "--aug_zoom", "0",
    "--aug_translation", "0",
]  # fmt: skip

# scikit-learn warns when a label has no positive image; the figures must still agree.
pytestmark = pytest.mark.filterwarnings("ignore:No positive class found:UserWarning")


def make_label_sets(root: Path, count: int, seed: int, labels=LABELS, sep: str = "|") -> Path:
    """``root/labels.csv`` (path,label) over 16 px PNGs: red top-left, green top-right, blue
    bottom half, each label drawn with probability 1/2 (some images have none)."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = ["path,label"]
    for i in range(count):
        chosen = [name for name in labels if rng.random() < 0.5]
        image = rng.normal(40, 15, (16, 16, 3))
        if "red" in chosen:
            image[:8, :8] = (230, 30, 30)
        if "green" in chosen:
            image[:8, 8:] = (30, 220, 30)
        if "blue" in chosen:
            image[8:, :] = (30, 30, 230)
        name = f"img/{i:03d}.png"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / name)
        lines.append(f"{name},{sep.join(chosen)}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "labels.csv"


def multi_hot(cells, names) -> np.ndarray:
    return np.array([[int(n in str(c).split("|")) for n in names] for c in cells])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("multilabel_data")
    return {
        "train": make_label_sets(base / "train", 24, 1),
        "valid": make_label_sets(base / "valid", 12, 2),
    }


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    save = tmp_path_factory.mktemp("multilabel_run")
    argv = ["-dtrain", str(data["train"]), "-dvalid", str(data["valid"]), "-sl", str(save)]
    assert train_main([*argv, "--run_name", "ml", *FLAGS]) == 0
    return save / "model_repository" / "ml"


def _best(run: Path) -> dict:
    return json.loads((run / "best_weights.json").read_text(encoding="utf-8"))


def test_run_has_class_thresholds_and_per_epoch_reports(run):
    best = _best(run)
    names = [json.loads((run / "index_class_mapping.json").read_text())[str(i)] for i in range(3)]
    assert names == sorted(LABELS)  # the union of the labels, sorted
    assert best["threshold"] is None and best["rule"] == "macro_f1"
    assert sorted(best["class_thresholds"]) == sorted(LABELS)
    report = pd.read_csv(run / "analysis_report.csv")
    assert report["epoch"].tolist() == [1, 2]
    assert best["value"] == pytest.approx(report["f1_macro"].max())
    for name in report["weights_name"]:
        stem = name.removesuffix(".weights.h5")
        for suffix in ("", "-thresholds", "-classes", "-class_thresholds"):
            assert (run / "model_logs" / f"{stem}{suffix}.csv").is_file()
    log = pd.read_csv(run / "training.log")
    assert {"accuracy", "val_accuracy", "val_loss"} <= set(log.columns)


def test_epoch_figures_equal_scikit_learn_on_the_model_outputs(run, data):
    best = _best(run)
    stem = best["weights"].removesuffix(".weights.h5")
    frame = pd.read_csv(run / "model_logs" / f"{stem}.csv", keep_default_na=False)
    names = sorted(LABELS)
    truth = multi_hot(frame["actual"], names)
    expected_truth = multi_hot(pd.read_csv(data["valid"], keep_default_na=False)["label"], names)
    np.testing.assert_array_equal(truth, expected_truth)
    proba = frame[[f"p_{n}" for n in names]].to_numpy()
    # The CSV holds the model's own outputs: an independent Keras model gives the same.
    model = keras_model(run, best["weights"])
    images = pixels([data["valid"].parent / p for p in frame["image_path"]], size=(16, 16))
    np.testing.assert_allclose(model.predict(images, verbose=0), proba, atol=1e-5)
    cuts = np.array([best["class_thresholds"][n] for n in names])
    hits = (proba >= cuts).astype(int)
    assert frame["predicted"].tolist() == ["|".join(np.array(names)[r == 1]) for r in hits]
    row = pd.read_csv(run / "analysis_report.csv").set_index("weights_name").loc[best["weights"]]
    assert row["map"] == pytest.approx(average_precision_score(truth, proba, average="macro"))
    assert row["f1_micro"] == pytest.approx(f1_score(truth, hits, average="micro", zero_division=0))
    assert row["f1_macro"] == pytest.approx(f1_score(truth, hits, average="macro", zero_division=0))
    assert row["subset_accuracy"] == pytest.approx(accuracy_score(truth, hits))
    assert row["hamming_loss"] == pytest.approx(hamming_loss(truth, hits))
    chosen = pd.read_csv(run / "model_logs" / f"{stem}-class_thresholds.csv")
    p, r, f, s = precision_recall_fscore_support(truth, hits, average=None, zero_division=0)
    np.testing.assert_allclose(chosen["f1"], f)
    np.testing.assert_array_equal(chosen["support"], s)


def test_held_out_data_is_scored_at_the_validation_thresholds(run, data, tmp_path, capsys):
    from cnnhub.evaluation.run_evaluation import evaluate_run

    # Held-out data without any `red` image: its column is all zeros, not an error.
    held_out = make_label_sets(tmp_path / "test", 10, 5, labels=("green", "blue"))
    summary = evaluate_run(run, data_dir=str(held_out))
    best = _best(run)
    assert summary["class_thresholds"] == best["class_thresholds"]
    folder = next((run / "evaluations").glob("labels.csv-*"))
    stem = best["weights"].removesuffix(".weights.h5")
    frame = pd.read_csv(folder / f"{stem}.csv", keep_default_na=False)
    names = sorted(LABELS)
    truth = multi_hot(frame["actual"], names)
    assert truth[:, names.index("red")].sum() == 0
    proba = frame[[f"p_{n}" for n in names]].to_numpy()
    hits = (proba >= np.array([best["class_thresholds"][n] for n in names])).astype(int)
    assert summary["f1_micro"] == pytest.approx(
        f1_score(truth, hits, average="micro", zero_division=0)
    )
    assert summary["hamming_loss"] == pytest.approx(hamming_loss(truth, hits))
    assert "thresholds chosen on validation" in capsys.readouterr().out


def test_inspect_counts_labels_and_co_occurrence(data, capsys):
    from cnnhub.commands.inspect import command

    assert command([str(data["train"]), "--task", "multi_label"]) == 0
    out = capsys.readouterr().out
    frame = pd.read_csv(data["train"], keep_default_na=False)
    truth = multi_hot(frame["label"], sorted(LABELS))
    for name, count in zip(sorted(LABELS), truth.sum(axis=0)):
        assert any(line.split() == [name, str(count)] for line in out.splitlines()), name
    both = int((truth[:, 0] & truth[:, 1]).sum())  # blue and green
    assert f"blue+green {both}" in out
    assert f"{int((truth.sum(axis=1) == 0).sum())} image(s) without a label" in out


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--class_weight", "balanced"], "`class_weight` does not apply to task multi_label"),
        (["--oversample", "true"], "`oversample` does not apply to task multi_label"),
        (["--loss", "categorical_crossentropy"], "`loss` for task multi_label must be"),
        (["--label_separator", ","], "`label_separator` must be a non-empty string"),
        (["--early_stopping_monitor", "val_mae"], "is a regression metric"),
    ],
)
def test_options_that_cannot_apply_are_refused(data, tmp_path, capsys, flags, fragment):
    argv = ["-dtrain", str(data["train"]), "-dvalid", str(data["valid"]), "-sl", str(tmp_path)]
    assert train_main([*argv, *FLAGS, *flags]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and fragment in lines[0]
    assert not (tmp_path / "model_repository").exists()


def test_folder_data_cannot_carry_label_sets(tiny_data, tmp_path, capsys):
    argv = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    assert train_main([*argv, "-sl", str(tmp_path), *FLAGS]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "reads each image's labels from a csv_paths CSV" in lines[0]


def _valid_outputs(run: Path, data) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """The validation images, the best weights' outputs on them (Keras, built independently)
    and the class thresholds in class order."""
    best = _best(run)
    paths = sorted((data["valid"].parent / "img").glob("*.png"))
    proba = keras_model(run, best["weights"]).predict(pixels(paths, (16, 16)), verbose=0)
    return paths, proba, np.array([best["class_thresholds"][n] for n in sorted(LABELS)])


def test_predict_writes_each_label_set_at_the_class_thresholds(run, data, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(run), str(data["valid"].parent / "img"), "--out", str(out)]) == 0
    assert "a threshold per class" in capsys.readouterr().out
    paths, proba, cuts = _valid_outputs(run, data)
    frame = pd.read_csv(out, keep_default_na=False)
    assert frame["image_path"].tolist() == [str(p) for p in paths]
    names = np.array(sorted(LABELS))
    np.testing.assert_allclose(frame[[f"p_{n}" for n in names]], proba, atol=1e-5)
    for row, p in zip(frame.to_dict("records"), proba):
        on = np.flatnonzero(p >= cuts)
        assert row["labels"] == "|".join(names[on])
        assert row["probabilities"] == "|".join(f"{p[i]:.4f}" for i in on)
    # A number is every class's threshold.
    assert main(["predict", str(run), str(paths[0]), "--threshold", "0", "--out", str(out)]) == 0
    assert pd.read_csv(out)["labels"].tolist() == ["|".join(names)]


def test_onnx_export_carries_task_labels_and_class_thresholds(run, tmp_path, capsys):
    import onnx

    out = tmp_path / "onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert "label-set agreement 100.0% at the class thresholds" in capsys.readouterr().out
    best = _best(run)
    metadata = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["task"] == "multi_label" and metadata["labels"] == sorted(LABELS)
    assert metadata["threshold"]["class_thresholds"] == best["class_thresholds"]
    assert metadata["verification"]["label_set_agreement"] == 1.0
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert props["cnnhub_task"] == "multi_label"
    assert json.loads(props["cnnhub_threshold"])["class_thresholds"] == best["class_thresholds"]


def test_gradcam_for_a_chosen_label(run, data, tmp_path, capsys):
    paths, proba, _ = _valid_outputs(run, data)
    out = tmp_path / "cam.png"
    assert main(["gradcam", str(run), str(paths[0]), "--class", "green", "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert out.is_file() and f"Grad-CAM for green (p={proba[0][1]:.3f})" in line


def test_compare_shows_the_multi_label_figures(run, capsys):
    from cnnhub.compare import compare

    board = compare(run.parent)
    best = _best(run)
    row = pd.read_csv(run / "analysis_report.csv").set_index("weights_name").loc[best["weights"]]
    for column in ("map", "f1_micro", "f1_macro", "subset_accuracy", "hamming_loss"):
        assert board.iloc[0][column] == pytest.approx(row[column]), column


def test_errors_gallery_refuses_a_multi_label_run(run, capsys):
    assert main(["errors", str(run)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "`cnnhub errors` shows confident errors" in lines[0], lines


def test_separator_names_file_and_focal_loss(tmp_path, capsys):
    import keras

    from cnnhub.tasks import get_task

    csv = make_label_sets(tmp_path / "semi", 6, 4, sep=";")
    names = tmp_path / "names.txt"
    names.write_text("blue\ngreen\nred\nunused\n", encoding="utf-8")
    argv = [str(csv), "--task", "multi_label", "--label_separator", ";"]
    assert main(["inspect", *argv, "--class_names_file", str(names)]) == 0
    out = capsys.readouterr().out
    truth = multi_hot(pd.read_csv(csv, keep_default_na=False)["label"].str.replace(";", "|"),
                      ["blue", "green", "red"])  # fmt: skip
    assert "Data: 4 classes" in out
    assert any(line.split() == ["unused", "0"] for line in out.splitlines())
    assert any(line.split() == ["red", str(truth[:, 2].sum())] for line in out.splitlines())
    task = get_task("multi_label")
    config = {"LOSS": "binary_focal_crossentropy", "LABEL_SMOOTHING": 0.0}
    assert isinstance(task.make_loss(config), keras.losses.BinaryFocalCrossentropy)
    assert isinstance(task.make_loss(dict(config, LOSS="auto")), keras.losses.BinaryCrossentropy)


def test_folds_use_kfold_and_val_split_keeps_every_label_column(data):
    from sklearn.model_selection import KFold

    from cnnhub import settings
    from cnnhub.data.sets import splits_from_config
    from cnnhub.folds import plan_folds

    argv = ["-dtrain", str(data["train"]), *FLAGS]
    config, _ = settings.resolve([*argv, "--folds", "3"])
    plan = plan_folds(config, inspect=False)
    expected = np.zeros(len(plan.listing), dtype=int)
    folds = KFold(n_splits=3, shuffle=True, random_state=config["SEED"])
    for index, (_, held_out) in enumerate(folds.split(np.zeros(len(plan.listing)))):
        expected[held_out] = index
    np.testing.assert_array_equal(plan.fold_of, expected)
    train, valid = plan.splits(0).train, plan.splits(0).valid
    assert len(valid) == int((expected == 0).sum()) and len(train) + len(valid) == 24
    assert valid.targets.shape == (len(valid), 3)  # every label column, even where absent

    config, _ = settings.resolve([*argv, "--val_split", "0.25"])
    splits = splits_from_config(config, inspect=False)
    both = np.concatenate([splits.train.targets, splits.valid.targets])
    truth = multi_hot(pd.read_csv(data["train"], keep_default_na=False)["label"], sorted(LABELS))
    assert sorted(map(tuple, both)) == sorted(map(tuple, truth.astype(np.float32)))


def test_mlflow_metrics_of_a_multi_label_run(run):
    from cnnhub.tracking import run_metrics

    best = _best(run)
    row = pd.read_csv(run / "analysis_report.csv").set_index("weights_name").loc[best["weights"]]
    metrics = {name: value for name, value, _ in run_metrics(run)}
    assert not any(name.startswith("deploy_") for name in metrics)
    for name in ("map", "f1_micro", "f1_macro", "subset_accuracy", "hamming_loss"):
        assert metrics[f"best_{name}"] == pytest.approx(row[name]), name


def test_studio_export_of_a_multi_label_run(run):
    from cnnhub.studio.export import export
    from cnnhub.studio.workspace import Workspace

    exported = export(Workspace(run.parent.parent), run.name, "keras")
    assert "label-set agreement 100.0% at the class thresholds" in exported.text
    metadata = json.loads((run / "export" / "keras" / "metadata.json").read_text())
    assert metadata["threshold"]["class_thresholds"] == _best(run)["class_thresholds"]


def test_studio_run_page_of_a_multi_label_run(run):
    from cnnhub.studio.runs import run_detail
    from cnnhub.studio.workspace import Workspace

    detail = run_detail(Workspace(run.parent.parent), run.name)
    best = _best(run)
    assert "a threshold per class" in detail.best_text
    assert dict(zip(detail.per_class["class"], detail.per_class["threshold"])) == best[
        "class_thresholds"
    ]
    assert "f1_micro" in detail.thresholds.columns and detail.confusion.empty


def test_studio_try_page_shows_the_label_set(run, data):
    from cnnhub.studio.try_ import predict
    from cnnhub.studio.workspace import Workspace

    paths, proba, cuts = _valid_outputs(run, data)
    shown = predict(Workspace(run.parent.parent), run.name, str(paths[0]), top_k=2)
    names = np.array(sorted(LABELS))
    assert shown.label == ("|".join(names[proba[0] >= cuts]) or "(no label)")
    assert shown.top["class"].tolist() == names[np.argsort(-proba[0], kind="stable")[:2]].tolist()
