"""The studio's handlers and state, without a browser (the browser flow: test_studio_browser.py).

The pages' handlers are plain functions: each is checked against the engine's own answer
(the CLI's config parser, the data on disk, Keras, the run folder's files).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from trained_runs import keras_model, shared_tiny_run, valid_paths

from cnnhub import settings
from cnnhub.errors import CnnhubError
from cnnhub.studio import data, model, process, runs, train, try_
from cnnhub.studio.process import Job, Trainer
from cnnhub.studio.workspace import Workspace
from conftest import make_image_folder


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    make_image_folder(tmp_path / "data" / "train", 3, size=16, seed=1, classes=("a", "<b>"))
    make_image_folder(tmp_path / "data" / "valid", 2, size=16, seed=2, classes=("a", "<b>"))
    return Workspace(tmp_path)


# ---------------------------------------------------------------------------- workspace


def test_paths_outside_the_root_are_refused(workspace, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (workspace.root / "link").symlink_to(outside)
    assert workspace.resolve("data/train") == workspace.root / "data" / "train"
    for path in ("..", "../x", str(outside), "link", "link/inner", "data/../../x"):
        with pytest.raises(CnnhubError, match="must lie inside the studio's root folder"):
            workspace.resolve(path)
    with pytest.raises(CnnhubError, match="Choose a run first"):
        workspace.run("../data")


def test_folder_picker_lists_data_folders_and_files_only(workspace):
    (workspace.repository / "run").mkdir(parents=True)
    (workspace.root / "data" / "pixels.csv").write_text("label,p0\n", encoding="utf-8")
    (workspace.root / "data" / "notes.txt").write_text("", encoding="utf-8")
    (workspace.root / ".hidden").mkdir()
    workspace.studio_dir  # noqa: B018 (creates it)
    assert workspace.data_folders() == [
        "data", "data/train", "data/valid", "data/pixels.csv", "data/train/<b>", "data/train/a",
        "data/valid/<b>", "data/valid/a",
    ]  # fmt: skip


# ---------------------------------------------------------------------------- data page


def test_data_page_inspects_as_the_files_are(workspace):
    choice = data.choose(workspace, "data/train", "data/valid")
    report = data.inspect(choice)
    on_disk = {
        split: [len(list((workspace.root / "data" / split / c).iterdir())) for c in ("<b>", "a")]
        for split in ("train", "valid")
    }
    assert report.counts.to_dict("list") == {"class": ["<b>", "a"], **on_disk}
    assert [caption for _, caption in report.samples] == ["<b>"] * 3 + ["a"] * 3
    assert all(image.shape == (64, 64, 3) for image, _ in report.samples)
    assert Path(report.first_image).parent.parent == workspace.root / "data" / "train"
    assert "files that cannot be decoded: none" in report.text


def test_data_page_refuses_what_the_cli_would(workspace):
    with pytest.raises(CnnhubError, match="Choose validation data"):
        data.choose(workspace, "data/train")
    with pytest.raises(CnnhubError, match="must lie inside"):
        data.choose(workspace, "/etc", "data/valid")
    with pytest.raises(CnnhubError, match="does not exist"):
        data.inspect(data.choose(workspace, "data/nothing", "data/valid"))


# ---------------------------------------------------------------------------- model page


def test_blocks_add_edit_remove_reorder():
    a, b, c = (model.block_from_form(f, pool="max") for f in (8, 16, 32))
    blocks = model.edit_blocks([], "add", 0, a)
    blocks = model.edit_blocks(blocks, "add", 0, c)
    blocks = model.edit_blocks(blocks, "add", 2, b)  # before block 2
    assert [x["filters"] for x in blocks] == [8, 16, 32]
    blocks = model.edit_blocks(blocks, "up", 3)
    assert [x["filters"] for x in blocks] == [8, 32, 16]
    blocks = model.edit_blocks(blocks, "down", 1)
    assert [x["filters"] for x in blocks] == [32, 8, 16]
    blocks = model.edit_blocks(blocks, "replace", 2, model.block_from_form(4, kernel_size=5))
    blocks = model.edit_blocks(blocks, "remove", 1)
    assert model.blocks_text(blocks) == "c4k5\nc16k3-mp2"
    assert model.parse_blocks_text(model.blocks_text(blocks)) == blocks
    assert model.blocks_form_values(blocks, 1)[:3] == [4, 5, 1]
    with pytest.raises(CnnhubError, match="block number from 1 to 2. Received: block=3"):
        model.edit_blocks(blocks, "remove", 3)
    with pytest.raises(CnnhubError, match="`filters` must be an integer >= 1"):
        model.block_from_form(0)
    with pytest.raises(CnnhubError, match="`kernel_size` must be a whole number"):
        model.block_from_form(8, kernel_size=2.5)


def test_a_block_that_does_not_fit_names_itself():
    blocks = model.parse_blocks_text("c8-mp2\nc8-mp2\nc8k5-pv")
    config = train.page_config({"IMG_HEIGHT": 16, "IMG_WIDTH": 16}, blocks)
    table, message = model.check_model(config, 2, None)
    assert table.empty
    assert message.startswith("error: custom_conv_blocks block 3 (conv 5x5, valid padding)")
    assert "input 4x4x8 is smaller than the 5x5 kernel" in message


def test_model_check_passes_a_real_image_and_counts_like_keras(workspace):
    report = data.inspect(data.choose(workspace, "data/train", "data/valid"))
    blocks = model.parse_blocks_text("c8-bn-mp2\nc16-mp2")
    config = train.page_config(
        {"MODEL_NAME": "custom", "IMG_HEIGHT": "auto", "IMG_WIDTH": "auto", "DENSE": "16"}, blocks
    )
    table, message = model.check_model(config, 2, report.first_image, report.inspection)
    assert message.startswith("ok: custom at 16x16x3")  # auto: the images' median size
    from cnnhub.model_factory import build_model

    reference = build_model(dict(config, IMG_HEIGHT=16, IMG_WIDTH=16, WEIGHTS="none"), 2)
    assert table["parameters"].sum() == reference.count_params()
    assert f"{reference.count_params():,} parameters" in message
    last = table.iloc[-1]
    assert (last["layer"], last["output shape"]) == ("predictions", "2")


def test_registry_table_lists_every_backbone():
    from cnnhub.registry import BACKBONES

    table = model.registry_table()
    assert list(table["model"]) == list(BACKBONES)
    custom = table[table["model"] == "custom"].iloc[0]
    assert custom["ImageNet weights"] == "none"
    assert [model.backbone_at(i) for i in range(len(table))] == list(table["model"])
    with pytest.raises(CnnhubError, match="No backbone on row"):
        model.backbone_at(len(table))


# ---------------------------------------------------------------------------- train page


def test_config_file_repeats_the_page_on_the_command_line(workspace):
    choice = data.choose(workspace, "data/train", "data/valid")
    values = {"MODEL_NAME": "custom", "IMG_HEIGHT": 16, "IMG_WIDTH": "auto", "DENSE": "32-d0.25",
              "EPOCHS": 3, "BATCH_SIZE": 4, "OPTIMIZER": "sgd", "LEARNING_RATE": 0.05,
              "AUG_ZOOM": 0.0, **choice.config()}  # fmt: skip
    config = train.page_config(values, model.parse_blocks_text("c8-mp2"))
    name = train.run_name(workspace, config)
    path = train.write_config(workspace, config, name)
    cli, _ = settings.resolve(["-c", str(path)])
    for key in train.PAGE_KEYS:
        assert cli[key] == config[key], key
    assert (cli["SAVE_LOCATION"], cli["ITERATION_NAME"]) == (str(workspace.root), "custom")
    assert (cli["NUM_NODES"], cli["NUM_DROPOUTS"]) == ([32], [0.25])
    assert cli["CUSTOM_CONV_BLOCKS"] == "c8k3-mp2"
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["epochs"] == 3


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"EPOCHS": 0}, "epochs"),
        ({"OPTIMIZER": "adagrad"}, "`optimizer` must be one of sgd, adam, adamw, rmsprop"),
        ({"DENSE": "12-x"}, "dense"),
        ({"IMG_HEIGHT": "big"}, "img_height"),
    ],
)
def test_page_settings_are_checked_as_the_cli_checks_them(values, fragment):
    with pytest.raises(CnnhubError, match=fragment) as caught:
        train.page_config(values)
    if "DENSE" not in values:
        key = next(iter(values))
        with pytest.raises(CnnhubError) as cli:
            settings.validate(dict(train.defaults(), **values))
        assert str(cli.value) == str(caught.value)
        assert key.lower() in str(caught.value)


def test_run_names_are_numbered_and_an_existing_one_is_refused(workspace):
    config = train.page_config({})
    assert train.run_name(workspace, config) == "custom"
    (workspace.repository / "custom").mkdir(parents=True)
    assert train.run_name(workspace, config) == "custom-2"
    with pytest.raises(CnnhubError, match="already exists"):
        train.run_name(workspace, config, "custom")
    with pytest.raises(CnnhubError, match="must lie inside"):
        train.run_name(workspace, config, "../../elsewhere")


# ---------------------------------------------------------------------------- training process


def _sleeper(monkeypatch, seconds: float = 30.0):
    """Trainer starts a stand-in for run_training.py that prints like Keras and waits (and,
    as run_training.py does, takes SIGINT even if the test runner ignores it)."""
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "print('Epoch 1/3', flush=True)\n"
        "sys.stdout.write(' 1/4 \\x1b[1m━━\\x1b[0m\\r 2/4 ━━━━\\b\\b\\r'); sys.stdout.flush()\n"
        "try:\n"
        f"    time.sleep({seconds})\n"
        "except KeyboardInterrupt:\n"
        "    print('Interrupted.', flush=True); sys.exit(130)\n"
    )
    monkeypatch.setattr(process, "training_command", lambda: [sys.executable, "-c", script])


def _wait(condition, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not condition():
        time.sleep(0.05)
    assert condition()


def test_two_tabs_cannot_start_two_runs_into_one_folder(tmp_path, monkeypatch):
    _sleeper(monkeypatch)
    trainer = Trainer(cwd=tmp_path)
    run = tmp_path / "model_repository" / "r"
    job = trainer.start(tmp_path / "c.yaml", run)
    with pytest.raises(CnnhubError, match="already being trained by this studio"):
        trainer.start(tmp_path / "c.yaml", run)
    with pytest.raises(CnnhubError, match="already being trained"):
        trainer.resume(run)
    _wait(lambda: job.batch == (2, 4))
    assert job.epoch == (1, 3)
    assert job.status() == "running, epoch 1/3, batch 2/4"
    assert trainer.stop(run)
    assert job.wait(20) == 130
    assert job.status() == "stopped (resumable: press Resume)"
    assert "Interrupted." in job.console_text()
    assert job.argv[-2:] == ["-c", str(tmp_path / "c.yaml")]  # an argument list, no shell
    assert not trainer.stop(run)


def test_a_folder_another_process_writes_is_refused(tmp_path, monkeypatch):
    _sleeper(monkeypatch)
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cnnhub import run_lock; "
         f"run_lock.acquire({str(run)!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CnnhubError, match=f"in use by process {holder.pid}"):
            Trainer().resume(run)
    finally:
        holder.kill()
        holder.wait()


def test_console_parses_progress_bars():
    job = Job(Path("."), [], process=None)  # type: ignore[arg-type]
    job._feed("Epoch 2/5\n  3/10 \x1b[32m━━━\x1b[0m 1s\r  7/10 ━━━━━━━")
    assert (job.epoch, job.batch) == ((2, 5), (7, 10))
    assert job.console_text() == "Epoch 2/5\n  7/10 ━━━━━━━"
    job._feed("\r 10/10 done - loss: 0.5\nnext line\n")
    assert job.console_text().splitlines()[-2:] == [" 10/10 done - loss: 0.5", "next line"]


# ---------------------------------------------------------------------------- runs, try


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory) -> Workspace:
    """A workspace holding a copy of the session's tiny run."""
    source = shared_tiny_run(tiny_data, tmp_path_factory)
    root = tmp_path_factory.mktemp("studio_runs")
    shutil.copytree(source, root / "model_repository" / "tiny")
    return Workspace(root)


def test_runs_page_reads_the_run_folder(trained):
    board, message = runs.leaderboard(trained)
    assert (list(board["run"]), message) == (["tiny"], "")
    run = trained.repository / "tiny"
    best = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))
    detail = runs.run_detail(trained, "tiny")
    assert detail.epoch == best["epoch"]
    assert detail.epoch_choices == list(range(1, 7))
    assert f"deploy threshold {best['threshold']}" in detail.best_text
    log = pd.read_csv(run / "training.log")
    assert detail.epochs["val_accuracy"].tolist() == log["val_accuracy"].tolist()
    assert set(detail.per_class["threshold"]) == {best["threshold"]}
    predictions = pd.read_csv(run / "model_logs" / best["weights"].replace(".weights.h5", ".csv"))
    wrong = predictions[predictions["actual"] != predictions["predicted"]]
    assert len(detail.errors) == min(len(wrong), runs.ERRORS_SHOWN)
    other = runs.run_detail(trained, "tiny", 2)
    assert other.epoch == 2 and other.thresholds_png.is_file()
    with pytest.raises(CnnhubError, match="must be one of the run's epochs"):
        runs.run_detail(trained, "tiny", 9)


def test_leaderboard_rows_are_read_again_only_when_a_run_changes(trained, monkeypatch):
    import cnnhub.compare

    calls = []
    real = cnnhub.compare.leaderboard_row
    monkeypatch.setattr(
        cnnhub.compare, "leaderboard_row", lambda run: calls.append(run) or real(run)
    )
    first, _ = runs.leaderboard(trained)
    again, _ = runs.leaderboard(trained)
    pd.testing.assert_frame_equal(first, again)
    assert len(calls) <= 1  # read once (or not at all: an earlier test read it)
    log = trained.repository / "tiny" / "training.log"
    os.utime(log, ns=(log.stat().st_atime_ns, log.stat().st_mtime_ns + 10**9))
    runs.leaderboard(trained)
    assert calls[-1] == trained.repository / "tiny" and len(calls) in (1, 2)


def test_try_page_predicts_as_keras_does(trained, tiny_data):
    run = trained.repository / "tiny"
    image = valid_paths(tiny_data)[0]
    result = try_.predict(trained, "tiny", image, top_k=3)
    best = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))
    from cnnhub.run_folder import open_run

    expected = keras_model(run, best["weights"]).predict(
        open_run(run).load_input(image)[None], verbose=0
    )[0]
    names = json.loads((run / "index_class_mapping.json").read_text(encoding="utf-8"))
    order = np.argsort(-expected)
    assert list(result.top["class"]) == [names[str(i)] for i in order]
    np.testing.assert_allclose(result.top["probability"], expected[order], atol=1e-4)
    assert result.label == (names[str(order[0])] if expected[order[0]] >= best["threshold"]
                            else "uncertain")  # fmt: skip
    overlay, caption = try_.gradcam(trained, "tiny", image)
    assert overlay.shape == (224, 224, 3) and caption.startswith("Grad-CAM of ")
    layers = try_.conv_layer_names(trained, "tiny")
    path, text = try_.feature_map_page(trained, "tiny", image, layers[0], page=1)
    assert path.is_file() and "channels 1-8 of 8" in text


def test_try_page_refuses_files_that_are_not_images_or_too_big(trained, tmp_path, monkeypatch):
    text = tmp_path / "notes.png"
    text.write_text("not an image", encoding="utf-8")
    with pytest.raises(CnnhubError, match="notes.png cannot be read as an image"):
        try_.predict(trained, "tiny", str(text))
    monkeypatch.setattr(try_, "MAX_UPLOAD_BYTES", 4)
    with pytest.raises(CnnhubError, match="images up to 4 bytes are accepted"):
        try_.predict(trained, "tiny", str(text))


# ---------------------------------------------------------------------------- the command


def test_studio_command_bad_flags_exit_2_with_one_line(tmp_path, capsys):
    from cnnhub.cli import main

    assert main(["studio", "--root", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`--root` must be an existing folder" in err
    assert main(["studio", "--port", "0", "--root", str(tmp_path)]) == 2
    assert "`--port` must be from 1 to 65535" in capsys.readouterr().err


def test_studio_command_warns_about_a_public_address(tmp_path, capsys, monkeypatch):
    from cnnhub.cli import main
    from cnnhub.studio import app

    calls = []
    monkeypatch.setattr(app, "launch", lambda *args, **kwargs: calls.append(args))
    assert main(["studio", "--root", str(tmp_path), "--port", "7999"]) == 0
    out = capsys.readouterr()
    assert "http://127.0.0.1:7999/" in out.out and "WARNING" not in out.err
    assert calls[-1][1:3] == ("127.0.0.1", 7999)
    assert main(["studio", "--root", str(tmp_path), "--host", "0.0.0.0"]) == 0
    assert "WARNING: the studio listens on 0.0.0.0" in capsys.readouterr().err
    assert calls[-1][1] == "0.0.0.0"
