"""End to end: train into a run folder, then check every file in it against independent sums."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from cnnhub import settings
from cnnhub.callbacks import LOG_COLUMNS
from cnnhub.commands.train import train_main
from cnnhub.data.images import load_image
from cnnhub.model_factory import build_model

TRAIN_FLAGS = ["-e", "2", "-b", "8", "-height", "32", "-width", "32", "--seed", "7"]


def train(tiny_data, save: Path, *extra: str) -> tuple[int, Path]:
    code = train_main(
        ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"]), "-sl", str(save)]
        + TRAIN_FLAGS
        + list(extra)
    )
    runs = sorted((save / "model_repository").iterdir()) if code == 0 else []
    return code, (runs[-1] if runs else save)


def valid_images(tiny_data) -> tuple[list[str], np.ndarray]:
    paths = sorted(str(p) for p in Path(tiny_data["valid"]).rglob("*.*"))
    return paths, np.stack([load_image(p, (32, 32)) for p in paths]).astype("float32")


@pytest.fixture(scope="module")
def custom_run(tiny_data, tmp_path_factory):
    save = tmp_path_factory.mktemp("custom_run")
    code, run = train(
        tiny_data, save, "-m", "custom", "--custom_conv_blocks", "c8k3-bn-mp2,c16k3-bn-mp2"
    )
    assert code == 0
    return run


def test_run_folder_has_every_file(custom_run):
    names = {p.relative_to(custom_run).as_posix() for p in custom_run.rglob("*") if p.is_file()}
    expected_top = {
        "training.log",
        "custom_stats.png",
        "index_class_mapping.json",
        "run_config.json",
        "run_info.json",
        "final_model.keras",
        "best_model.keras",
        "best_weights.json",
        "analysis_report.csv",
        "analysis_metrics.png",
        "report.html",
        "MODEL_CARD.md",
    }
    assert expected_top <= names
    weights = sorted(n for n in names if n.endswith(".weights.h5"))
    assert [w.split("-")[1] for w in weights] == ["001", "002"]
    for weight in weights:
        stem = weight[: -len(".weights.h5")]
        for suffix in (".csv", "-thresholds.csv", "-classes.csv", "-confusion.csv"):
            assert stem + suffix in names
    assert any(n.startswith("tensor_logs/train/events.out.tfevents") for n in names)
    assert any(n.startswith("tensor_logs/validation/events.out.tfevents") for n in names)
    assert not [n for n in names if ".tmp" in n]  # no temporary files left behind
    image = Image.open(custom_run / "custom_stats.png")
    assert image.format == "PNG" and image.size[0] > 500


def test_training_log_and_mapping(custom_run):
    log = pd.read_csv(custom_run / "training.log")
    assert list(log.columns) == LOG_COLUMNS
    assert log["epoch"].tolist() == [1, 2]
    assert (log["seconds"] > 0).all() and np.allclose(log["learning_rate"], 0.001)
    mapping = json.loads((custom_run / "index_class_mapping.json").read_text())
    assert mapping == {"0": "circle", "1": "square", "2": "stripes"}
    # Weight file names carry the epoch's validation accuracy from the log.
    for _, row in log.iterrows():
        name = f"weights-{int(row.epoch):03d}-{row.val_accuracy:.4f}.weights.h5"
        assert (custom_run / "model_logs" / name).is_file()


def test_tensorboard_events_hold_train_and_validation_scalars(custom_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for split in ("train", "validation"):
        events = EventAccumulator(str(custom_run / "tensor_logs" / split))
        events.Reload()
        tags = set(events.Tags()["scalars"]) | set(events.Tags()["tensors"])
        assert {"epoch_loss", "epoch_accuracy"} <= tags, (split, tags)


def test_run_config_repeats_the_run(custom_run):
    saved = json.loads((custom_run / "run_config.json").read_text())
    config, _ = settings.resolve(["-c", str(custom_run / "run_config.json")])
    assert config == saved
    assert saved["CUSTOM_CONV_BLOCKS"] == "c8k3-bn-mp2,c16k3-bn-mp2"


def test_saved_models_reload_safely_and_match_the_epoch_weights(custom_run, tiny_data):
    _, images = valid_images(tiny_data)
    final = keras.saving.load_model(custom_run / "final_model.keras", safe_mode=True)
    config = json.loads((custom_run / "run_config.json").read_text())
    rebuilt = build_model(config, 3)
    rebuilt.load_weights(next((custom_run / "model_logs").glob("weights-002-*.weights.h5")))
    np.testing.assert_allclose(
        final.predict(images, verbose=0), rebuilt.predict(images, verbose=0), atol=1e-6
    )
    best = json.loads((custom_run / "best_weights.json").read_text())
    best_model = keras.saving.load_model(custom_run / "best_model.keras", safe_mode=True)
    rebuilt.load_weights(custom_run / "model_logs" / best["weights"])
    np.testing.assert_allclose(
        best_model.predict(images, verbose=0), rebuilt.predict(images, verbose=0), atol=1e-6
    )


def test_per_image_csv_matches_the_weights_and_sklearn(custom_run, tiny_data):
    config = json.loads((custom_run / "run_config.json").read_text())
    model = build_model(config, 3)
    log = pd.read_csv(custom_run / "training.log")
    for weights in sorted((custom_run / "model_logs").glob("*.weights.h5")):
        stem = weights.name[: -len(".weights.h5")]
        rows = pd.read_csv(custom_run / "model_logs" / f"{stem}.csv")
        # The probabilities in the CSV are what these weights predict for those images.
        model.load_weights(weights)
        images = np.stack([load_image(p, (32, 32)) for p in rows["image_path"]]).astype("float32")
        proba = rows[["p_circle", "p_square", "p_stripes"]].to_numpy()
        np.testing.assert_allclose(proba, model.predict(images, verbose=0), atol=1e-5)
        # Overall and per-class figures at threshold 0 agree with scikit-learn.
        overall = pd.read_csv(custom_run / "model_logs" / f"{stem}-thresholds.csv")
        t0 = overall[overall["threshold"] == 0].iloc[0]
        assert t0["accuracy"] == pytest.approx(accuracy_score(rows["actual"], rows["predicted"]))
        labels = ["circle", "square", "stripes"]
        p, r, f, s = precision_recall_fscore_support(
            rows["actual"], rows["predicted"], labels=labels, zero_division=0
        )
        classes = pd.read_csv(custom_run / "model_logs" / f"{stem}-classes.csv")
        c0 = classes[classes["threshold"] == 0].set_index("class").loc[labels]
        np.testing.assert_allclose(c0["precision"], p)
        np.testing.assert_allclose(c0["recall"], r)
        np.testing.assert_allclose(c0["f1"], f)
        assert t0["f1_macro"] == pytest.approx(f.mean())
        # The validation accuracy logged during training is the same figure.
        epoch = int(stem.split("-")[1])
        assert log.loc[log["epoch"] == epoch, "val_accuracy"].item() == pytest.approx(
            t0["accuracy"]
        )


def test_best_weights_follow_the_default_rule(custom_run):
    report = pd.read_csv(custom_run / "analysis_report.csv")
    best = json.loads((custom_run / "best_weights.json").read_text())
    assert set(best) >= {"weights", "epoch", "threshold", "rule", "value"}
    assert best["rule"] == "macro_f1"
    assert best["value"] == pytest.approx(report["f1_macro"].max())
    assert len(report) == 2 * 21  # 2 epochs x the default 21 thresholds


def test_reevaluation_reproduces_the_training_time_reports(custom_run, tiny_data, capsys):
    from cnnhub.cli import main

    before = pd.read_csv(custom_run / "analysis_report.csv")
    assert main(["evaluate", str(custom_run)]) == 0
    after = pd.read_csv(custom_run / "analysis_report.csv")
    pd.testing.assert_frame_equal(before, after, atol=1e-5)
    assert "Best weights (chosen on validation):" in capsys.readouterr().out
    # Held-out data goes to evaluations/<folder name>-<hash>/ and reports the validation choice.
    assert main(["evaluate", str(custom_run), "--data_dir", str(tiny_data["train"])]) == 0
    (folder,) = (custom_run / "evaluations").glob("train-*")
    summary = json.loads((folder / "summary.json").read_text())
    best = json.loads((custom_run / "best_weights.json").read_text())
    assert summary["weights"] == best["weights"] and summary["role"] == "held-out"
    assert (folder / "analysis_report.csv").is_file()


def test_fine_tune_keras_applications_two_phases(tiny_data, tmp_path):
    code, run = train(
        tiny_data,
        tmp_path,
        "-m",
        "mobilenetv3small",
        "-w",
        "none",
        "-tt",
        "fine_tune",
        "--fine_tune_after",
        "1",
        "--fine_tune_lr_factor",
        "0.1",
        "-post",
        "false",
    )
    assert code == 0 and run.name == "mobilenetv3small"
    log = pd.read_csv(run / "training.log")
    assert log["epoch"].tolist() == [1, 2]
    assert log["learning_rate"].tolist() == pytest.approx([0.001, 0.0001])
    # Phase 1 trained the head only: the backbone still has its seeded initial weights.
    config = json.loads((run / "run_config.json").read_text())
    keras.utils.set_random_seed(config["SEED"])
    model = build_model(config, 3)  # one model (a MobileNetV3 build takes seconds), reloaded
    backbone = model.get_layer("backbone")
    initial = backbone.get_weights()
    model.load_weights(next((run / "model_logs").glob("weights-001-*")))
    epoch1 = backbone.get_weights()
    model.load_weights(next((run / "model_logs").glob("weights-002-*")))
    epoch2 = backbone.get_weights()
    names = [w.name for w in backbone.weights]
    for a, b, c, name in zip(initial, epoch1, epoch2, names):
        np.testing.assert_array_equal(a, b, err_msg=name)
        if "moving" in name:  # BatchNorm stays in inference mode: statistics never move
            np.testing.assert_array_equal(b, c, err_msg=name)
    assert any(not np.array_equal(b, c) for b, c in zip(epoch1, epoch2))  # phase 2 trained it
    assert not (run / "best_weights.json").exists()  # -post false
    page = (run / "report.html").read_text(encoding="utf-8")  # written without post-evaluation
    assert '<table id="epochs-table">' in page and 'id="thresholds"><h2>' in page


def test_freeze_some_keeps_the_first_layers(tiny_data, tmp_path):
    code, run = train(
        tiny_data,
        tmp_path,
        "-m",
        "custom",
        "--custom_conv_blocks",
        "c8k3-bn-mp2,c16k3-bn-mp2",
        "-tt",
        "freeze_some",
        "--number_of_layers_to_freeze",
        "4",
        "-e",
        "1",
        "-post",
        "false",
    )
    assert code == 0
    config = json.loads((run / "run_config.json").read_text())
    keras.utils.set_random_seed(config["SEED"])
    initial = build_model(config, 3)
    trained = build_model(config, 3)
    trained.load_weights(next((run / "model_logs").glob("weights-001-*")))
    layers = initial.get_layer("backbone").layers
    for index, layer in enumerate(layers):
        after = trained.get_layer("backbone").get_layer(layer.name).get_weights()
        same = all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), after))
        if index < 4 or isinstance(layer, keras.layers.BatchNormalization):
            assert same, layer.name  # frozen, and BatchNorm stays in inference mode
        elif layer.weights:
            assert not same, layer.name


def test_several_models_then_compare(tiny_data, tmp_path, capsys):
    from cnnhub.cli import main

    code, _ = train(
        tiny_data,
        tmp_path,
        "-m",
        "custom,squeezenet",
        "-e",
        "1",
        "--custom_conv_blocks",
        "c8k3-bn-mp2",
    )
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    repo = tmp_path / "model_repository"
    assert out[-2:] == [f"Run folder: {repo / 'custom'}", f"Run folder: {repo / 'squeezenet'}"]
    assert main(["compare", str(repo)]) == 0
    board = pd.read_csv(repo / "leaderboard.csv")
    assert sorted(board["model"]) == ["custom", "squeezenet"]
    assert list(board.columns) == [
        "run",
        "model",
        "train_data",
        "valid_data",
        "params",
        "image_size",
        "epochs",
        "seconds_per_epoch",
        "best_epoch",
        "deploy_threshold",
        "accuracy@0",
        "f1_macro@0",
        "accuracy@deploy",
        "f1_macro@deploy",
        "precision_micro@deploy",
        "coverage@deploy",
    ]
    info = json.loads((repo / "squeezenet" / "run_info.json").read_text())
    assert board.set_index("model").loc["squeezenet", "params"] == info["params"]
    assert (repo / "leaderboard.png").stat().st_size > 0
