"""Configuration: defaults.py < config.py < config file < flags, typed flags, strict keys,
instant --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnhub import settings
from cnnhub.commands.train import train_main
from cnnhub.errors import CnnhubError
from conftest import ROOT, cli_env


def test_defaults_come_from_the_packaged_file_and_config_py():
    defaults, helps = settings.load_defaults()
    config, _ = settings.resolve([])
    assert config == defaults
    assert config["MODEL_NAME"] == "custom"
    assert "Backbone name" in helps["MODEL_NAME"]
    # Every key is documented by the comment above it in cnnhub/defaults.py.
    assert all(helps[key] for key in defaults)
    # The checkout's config.py points at the shipped sample, relative to its own folder.
    packaged, _ = settings.load_defaults(user_config=False)
    assert packaged["DATA_DIR_TRAIN"] == "" and packaged["DATA_DIR_VALID"] == ""
    assert config["DATA_DIR_TRAIN"] == str(ROOT / "data" / "fashion_mnist_sample" / "train")
    assert Path(config["DATA_DIR_VALID"]).is_dir()


def test_config_py_paths_are_relative_to_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.py").write_text(
        'DATA_DIR_TRAIN = "data/train"\nSAVE_LOCATION = "."\nCACHE_DIR = "/abs/cache"\n'
        'WEIGHTS = "w/model.weights.h5"\nEPOCHS = 3\n'
    )
    monkeypatch.chdir(tmp_path)  # not the folder of config.py
    defaults, _ = settings.load_defaults(folder / "config.py")
    assert defaults["DATA_DIR_TRAIN"] == str(folder / "data" / "train")
    assert defaults["SAVE_LOCATION"] == str(folder)
    assert defaults["CACHE_DIR"] == "/abs/cache"
    assert defaults["WEIGHTS"] == str(folder / "w" / "model.weights.h5")
    assert defaults["EPOCHS"] == 3
    # A run folder as WEIGHTS is a path too; the keywords are not.
    for weights, expected in [
        ("model_repository/custom", str(folder / "model_repository" / "custom")),
        ("ImageNet", "ImageNet"),
        ("none", "none"),
    ]:
        (folder / "config.py").write_text(f"WEIGHTS = {weights!r}\n")
        assert settings.load_defaults(folder / "config.py")[0]["WEIGHTS"] == expected
    # Flags stay relative to the current folder.
    config, _ = settings.resolve(["-dtrain", "here/train"])
    assert config["DATA_DIR_TRAIN"] == "here/train"


@pytest.mark.parametrize(
    "content, message",
    [
        ("EPOCS = 3\n", r"Unknown config key `EPOCS`.*Did you mean epochs"),
        ("EPOCHS = 3 +\n", r"Cannot read .*config.py"),
        ("EPOCHS = int('3')\n", r"`EPOCHS` must be a plain value"),
    ],
)
def test_broken_config_py_is_one_error(tmp_path, content, message):
    (tmp_path / "config.py").write_text(content)
    with pytest.raises(CnnhubError, match=message):
        settings.load_defaults(tmp_path / "config.py")


def test_precedence_config_file_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 7\nNum_Nodes: [512, 256]\nnum_dropouts: [0.5, 0.25]\nbatch_size: 8\n")
    config, actions = settings.resolve(["-c", str(path), "-b", "16", "--seed", "3"])
    assert actions["config"] == str(path)
    assert config["EPOCHS"] == 7  # from the file
    assert config["NUM_NODES"] == [512, 256]  # file key matched case-insensitively
    assert config["BATCH_SIZE"] == 16  # flag beats file
    assert config["SEED"] == 3
    assert config["LEARNING_RATE"] == settings.load_defaults()[0]["LEARNING_RATE"]


def test_json_config_and_types(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"LEARNING_RATE": 1, "cache": "no", "epochs": 4.0}))
    config, _ = settings.resolve(["-c", str(path)])
    assert config["LEARNING_RATE"] == 1.0 and isinstance(config["LEARNING_RATE"], float)
    assert config["CACHE"] is False
    assert config["EPOCHS"] == 4 and isinstance(config["EPOCHS"], int)


@pytest.mark.parametrize(
    "text, expected",
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), ("no", False)],
)
def test_boolean_flags_accept_common_spellings(text, expected):
    config, _ = settings.resolve(["-post", text, "-start", text])
    assert config["POST_EVAL"] is expected and config["START_TRAIN"] is expected


def test_seed_short_flags_map_to_keys():
    config, _ = settings.resolve(
        "-dtrain a -dvalid b -sl out -m resnet50 -height 40 -width 48 -e 3 -b 4 -tt freeze_all "
        "-w none -lr 0.01 --optimizer sgd --run_name exp1".split()
    )
    assert config["DATA_DIR_TRAIN"] == "a" and config["DATA_DIR_VALID"] == "b"
    assert config["SAVE_LOCATION"] == "out" and config["MODEL_NAME"] == "resnet50"
    assert (config["IMG_HEIGHT"], config["IMG_WIDTH"]) == (40, 48)
    assert (config["EPOCHS"], config["BATCH_SIZE"]) == (3, 4)
    assert config["TRAINING_TYPE"] == "freeze_all" and config["WEIGHTS"] == "none"
    assert config["LEARNING_RATE"] == 0.01 and config["OPTIMIZER"] == "sgd"
    assert config["ITERATION_NAME"] == "exp1"


def test_list_flags():
    config, _ = settings.resolve(["--num_nodes", "64", "32", "--num_dropouts", "0.1", "0.2"])
    assert config["NUM_NODES"] == [64, 32] and config["NUM_DROPOUTS"] == [0.1, 0.2]
    config, _ = settings.resolve(["--num_nodes", "--num_dropouts"])
    assert config["NUM_NODES"] == [] and config["NUM_DROPOUTS"] == []


def test_unknown_config_key_suggests_the_closest(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("num_node: [10]\n")
    with pytest.raises(CnnhubError, match=r"Unknown config key `num_node`.*Did you mean num_nodes"):
        settings.resolve(["-c", str(path)])


@pytest.mark.parametrize(
    "content, message",
    [
        ("epochs: many\n", r"`epochs` must be of type int.*Received: epochs='many'"),
        ("training_type: freeze\n", r"`training_type` must be one of auto, train_all, .*freeze"),
        ("num_nodes: [8, 4]\nnum_dropouts: [0.1]\n", r"same length.*\[8, 4\].*\[0.1\]"),
        ("batch_size: 0\n", r"`batch_size` must be a number in \[1, 65536\]"),
        ("- a\n- b\n", r"must hold a mapping"),
    ],
)
def test_bad_config_values_are_named(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(CnnhubError, match=message):
        settings.resolve(["-c", str(path)])


def test_bad_flag_is_one_line_exit_2(capsys):
    with pytest.raises(CnnhubError, match="-e/--epochs: invalid int value: 'ten'"):
        settings.resolve(["-e", "ten"])
    assert train_main(["-e", "ten"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "run_training.py: error: argument -e/--epochs: invalid int value: 'ten' (see --help)\n"
    )


def test_help_is_fast_and_does_not_import_tensorflow():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['run_training.py', '--help']\n"
        "try:\n    runpy.run_path('run_training.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('TF_LOADED' if 'tensorflow' in sys.modules else 'TF_NOT_LOADED')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True, text=True
    )
    assert "--data_dir_train" in result.stdout and "--list_models" in result.stdout
    assert result.stdout.strip().endswith("TF_NOT_LOADED")


def test_list_models_prints_the_registry():
    result = subprocess.run(
        [sys.executable, "run_training.py", "--list_models"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "resnet50" in result.stdout and "squeezenet" in result.stdout
    assert "caffe" in result.stdout and "75" in result.stdout  # preprocessing, min size
    same = subprocess.run(
        [sys.executable, "-m", "cnnhub", "models"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert same.stdout == result.stdout


def test_docs_list_every_flag():
    """docs/configuration.md's flag table is generated from cnnhub/defaults.py; regenerate it
    when a key changes:
    python -c "from cnnhub.settings import flags_markdown; print(flags_markdown())"."""
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    block = page.split("<!-- flags:start -->\n", 1)[1].split("\n<!-- flags:end -->", 1)[0]
    assert block == settings.flags_markdown()
