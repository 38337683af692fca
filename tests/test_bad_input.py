"""Bad input: one line on stderr naming the problem, exit status 2, no traceback, no run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnhub.cli import main as cnnhub_main
from cnnhub.commands.train import train_main
from conftest import make_image_folder, run_cli

SMALL = ["-e", "1", "-b", "4", "-height", "32", "-width", "32", "-post", "false"]


def check_rejected(capsys, argv: list[str], message: str, save: Path) -> None:
    before = sorted(save.rglob("*"))
    assert train_main(argv + ["-sl", str(save)] + SMALL) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err, err
    assert "Traceback" not in err
    assert sorted(save.rglob("*")) == before  # nothing created, not even an empty folder


def data_args(train: Path, valid: Path) -> list[str]:
    return ["-dtrain", str(train), "-dvalid", str(valid)]


def test_missing_folder(tiny_data, tmp_path, capsys):
    args = data_args(tmp_path / "nope", tiny_data["valid"])
    check_rejected(capsys, args, "nope", tmp_path)


def test_folder_without_classes(tiny_data, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    check_rejected(capsys, data_args(tmp_path / "empty", tiny_data["valid"]), "empty", tmp_path)


def test_mismatched_classes_are_named(tiny_data, tmp_path, capsys):
    valid = tmp_path / "valid"
    shutil.copytree(tiny_data["valid"], valid)
    shutil.move(valid / "stripes", valid / "zigzag")
    check_rejected(
        capsys,
        data_args(tiny_data["train"], valid),
        "Only in training: ['stripes']; only in validation: ['zigzag']",
        tmp_path,
    )


def test_single_class(tmp_path, capsys):
    train = make_image_folder(tmp_path / "t", 2, classes=("only",))
    valid = make_image_folder(tmp_path / "v", 2, classes=("only",))
    check_rejected(capsys, data_args(train, valid), "at least two classes", tmp_path)


@pytest.mark.parametrize("name", ["uncertain", "Uncertain "])
@pytest.mark.parametrize("split", [["--val_split", "0.25"], ["--folds", "2"], None])
def test_class_named_like_the_abstain_label_is_refused(name, split, tmp_path, capsys):
    # predict labels an image below the threshold `uncertain`: no class may be called that
    classes = ("cat", name)
    train = make_image_folder(tmp_path / "t", 2, classes=classes)
    args = ["-dtrain", str(train)]
    if split is None:
        args += ["-dvalid", str(make_image_folder(tmp_path / "v", 1, classes=classes))]
    else:
        args += split
    check_rejected(capsys, args, f"A class may not be named {name!r}", tmp_path)


def test_image_size_below_the_minimum(tiny_data, tmp_path, capsys):
    args = data_args(tiny_data["train"], tiny_data["valid"]) + ["-m", "xception", "-w", "none"]
    check_rejected(capsys, args, "minimum input size of `xception`, 71x71", tmp_path)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--layers", "c8-zz"], "custom_conv_blocks stage 1: unknown token"),  # after the scan
        (["--run_name", "../escape"], "`run_name` must be a plain folder name"),
    ],
)
def test_refused_late_checks_leave_no_model_repository(tiny_data, tmp_path, capsys, flags, message):
    args = data_args(tiny_data["train"], tiny_data["valid"]) + flags
    check_rejected(capsys, args, message, tmp_path)
    assert not (tmp_path / "model_repository").exists()


def test_unknown_model(tiny_data, tmp_path, capsys):
    args = data_args(tiny_data["train"], tiny_data["valid"]) + ["-m", "resnet5O"]
    check_rejected(capsys, args, "Unknown model `resnet5O`. Did you mean", tmp_path)


def test_unreadable_weights_file(tiny_data, tmp_path, capsys):
    bad = tmp_path / "broken.weights.h5"
    bad.write_bytes(b"not an hdf5 file")
    args = data_args(tiny_data["train"], tiny_data["valid"]) + ["-w", str(bad)]
    check_rejected(capsys, args, "Cannot read weights file", tmp_path)


def test_missing_weights_file(tiny_data, tmp_path, capsys):
    args = data_args(tiny_data["train"], tiny_data["valid"]) + ["-w", "missing.weights.h5"]
    check_rejected(capsys, args, "Weights file not found: missing.weights.h5", tmp_path)


def test_list_lengths_must_match(tiny_data, tmp_path, capsys):
    args = data_args(tiny_data["train"], tiny_data["valid"])
    args += ["--num_nodes", "16", "8", "--num_dropouts", "0.1"]
    check_rejected(
        capsys, args, "`num_nodes` and `num_dropouts` must have the same length", tmp_path
    )


def test_save_location_not_writable(tiny_data, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    args = data_args(tiny_data["train"], tiny_data["valid"])
    assert train_main(args + ["-sl", str(blocker)] + SMALL) == 2
    err = capsys.readouterr().err
    assert "Cannot write run folders under" in err and err.count("\n") == 1


def test_existing_run_name_is_refused(tiny_data, tmp_path, capsys):
    (tmp_path / "model_repository" / "taken").mkdir(parents=True)
    args = data_args(tiny_data["train"], tiny_data["valid"]) + ["--run_name", "taken"]
    assert train_main(args + ["-sl", str(tmp_path)] + SMALL) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "model_repository").iterdir()] == ["taken"]


def test_imagenet_download_failure_says_what_to_do(tiny_data, tmp_path, capsys, monkeypatch):
    # A fresh Keras home, so no cached weights file can make this pass offline; -w auto means
    # ImageNet weights for mobilenetv2 (tests/test_pretrained.py checks the whole message).
    from keras.src.backend import config as keras_config

    (tmp_path / "keras_home").mkdir()
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    args = data_args(tiny_data["train"], tiny_data["valid"]) + ["-m", "mobilenetv2"]
    for weights in ("imagenet", "auto"):
        save = tmp_path / "save"  # beside the Keras home, which Keras fills itself
        save.mkdir(exist_ok=True)
        check_rejected(capsys, args + ["-w", weights], "Cannot download the ImageNet weights", save)


def test_cli_subprocess_exit_code_and_no_traceback(tmp_path):
    result = run_cli("-dtrain", str(tmp_path / "missing"), "-m", "custom", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "The training folder does not exist" in result.stderr or "missing" in result.stderr
    assert not (tmp_path / "model_repository").exists() or not list(
        (tmp_path / "model_repository").iterdir()
    )


# ---------------------------------------------------------------- evaluation


@pytest.fixture(scope="module")
def trained_run(tiny_data, tmp_path_factory):
    save = tmp_path_factory.mktemp("eval_bad")
    args = data_args(tiny_data["train"], tiny_data["valid"])
    args += ["-sl", str(save), "-e", "1", "-b", "8", "-height", "32", "-width", "32"]
    assert train_main(args + ["--custom_conv_blocks", "c8k3-mp2"]) == 0
    return save / "model_repository" / "custom"


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def check_eval_rejected(capsys, argv, message, run: Path | None) -> None:
    before = snapshot(run) if run else None
    assert cnnhub_main(["evaluate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    if run:
        assert snapshot(run) == before  # nothing in the run folder changed


def test_evaluate_folder_without_config(tmp_path, capsys):
    (tmp_path / "model_logs").mkdir()
    check_eval_rejected(capsys, [str(tmp_path)], "not a cnnhub run folder", tmp_path)


def test_evaluate_other_classes(trained_run, tmp_path, capsys):
    other = make_image_folder(tmp_path / "other", 2, classes=("circle", "square", "triangle"))
    check_eval_rejected(
        capsys,
        [str(trained_run), "--data_dir", str(other)],
        "only in the data: ['triangle']; only in the run: ['stripes']",
        trained_run,
    )


def test_evaluate_weights_of_another_architecture(trained_run, tmp_path, capsys):
    import keras

    from cnnhub.model_factory import build_model

    config = json.loads((trained_run / "run_config.json").read_text())
    other = build_model(dict(config, CUSTOM_CONV_BLOCKS="c4k3-mp2"), 3)
    path = tmp_path / "weights-009-0.1000.weights.h5"
    other.save_weights(path)
    keras.backend.clear_session()
    check_eval_rejected(
        capsys,
        [str(trained_run), "--weights", str(path)],
        "layer `backbone/block1_conv` expects shape (3, 3, 3, 8) but the file has (3, 3, 3, 4)",
        trained_run,
    )


def test_continue_training_from_weights_of_another_architecture(
    trained_run, tiny_data, tmp_path, capsys
):
    weights = next((trained_run / "model_logs").glob("*.weights.h5"))
    args = data_args(tiny_data["train"], tiny_data["valid"]) + ["-w", str(weights)]
    check_rejected(
        capsys,
        args + ["--custom_conv_blocks", "c4k3-mp2"],
        "layer `backbone/block1_conv` expects shape (3, 3, 3, 4) but the file has (3, 3, 3, 8)",
        tmp_path,
    )


def test_continue_training_from_matching_weights(trained_run, tiny_data, tmp_path):
    weights = next((trained_run / "model_logs").glob("weights-001-*.weights.h5"))
    args = data_args(tiny_data["train"], tiny_data["valid"]) + ["-w", str(weights), "-lr", "0.0001"]
    assert (
        train_main(args + ["--custom_conv_blocks", "c8k3-mp2", "-sl", str(tmp_path)] + SMALL) == 0
    )
