"""Run folders under faults: damaged files, two writers, a full disk, a kill while finishing.

Every test works on a copy of the session's tiny run (``shared_tiny_run``) or trains for one or
two epochs at 32 px.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest
from trained_runs import TINY_FLAGS, best_weights_file, shared_tiny_run, valid_paths

from cnnhub import run_lock
from cnnhub.cli import main
from cnnhub.commands.train import train_main
from cnnhub.errors import CnnhubError
from conftest import ROOT, cli_env

Disk = namedtuple("Disk", "total used free")


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    return shared_tiny_run(tiny_data, tmp_path_factory)


def copy_run(run: Path, repository: Path, name: str) -> Path:
    target = repository / name
    shutil.copytree(run, target)
    return target


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-1 of every file under ``folder``."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line and not line.startswith("note:")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def state_of(run: Path) -> dict:
    return json.loads((run / "checkpoint" / "state.json").read_text(encoding="utf-8"))


def set_state(run: Path, **changes) -> None:
    state = state_of(run)
    state.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del state[key]
    (run / "checkpoint" / "state.json").write_text(json.dumps(state), encoding="utf-8")


# ------------------------------------------------------------------ damaged run folders


def last_weights(run: Path) -> Path:
    return run / "model_logs" / state_of(run)["weights"]


def _weights_files(run: Path) -> list[Path]:
    return sorted({last_weights(run), run / "model_logs" / best_weights_file(run)})


def truncate_weights(run: Path) -> str:
    for path in _weights_files(run):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return "model_logs/weights-"


def random_weights(run: Path) -> str:
    for path in _weights_files(run):
        path.write_bytes(os.urandom(path.stat().st_size))
    return "model_logs/weights-"


def remove_training_log(run: Path) -> str:
    (run / "training.log").unlink()
    return "training.log"


def malformed_mapping(run: Path) -> str:
    (run / "index_class_mapping.json").write_text('{"0": "circle", "1":', encoding="utf-8")
    return "index_class_mapping.json"


def malformed_config(run: Path) -> str:
    (run / "run_config.json").write_text('["not", "a", "config"]', encoding="utf-8")
    return "run_config.json"


def damaged_state(run: Path) -> str:
    (run / "checkpoint" / "state.json").write_text('{"epoch": "six"', encoding="utf-8")
    return "checkpoint/state.json"


def damaged_optimizer(run: Path) -> str:
    (run / "checkpoint" / "optimizer.npz").write_bytes(b"PK\x03\x04" + os.urandom(300))
    return "checkpoint/optimizer.npz"


DAMAGE = {
    "weights_truncated": truncate_weights,
    "weights_random": random_weights,
    "training_log_missing": remove_training_log,
    "mapping_malformed": malformed_mapping,
    "config_malformed": malformed_config,
    "state_damaged": damaged_state,
    "optimizer_damaged": damaged_optimizer,
}
USES = {  # the files each command reads; damage elsewhere does not concern it (tested below)
    "predict": {"weights_truncated", "weights_random", "mapping_malformed", "config_malformed"},
    "evaluate": {"weights_truncated", "weights_random", "mapping_malformed", "config_malformed"},
    "post-eval": {"weights_truncated", "weights_random", "mapping_malformed", "config_malformed"},
    "resume": set(DAMAGE),
    "report": {"mapping_malformed", "config_malformed"},
}
COMMANDS = {
    "predict": lambda run, image: main(["predict", str(run), image]),
    "evaluate": lambda run, image: main(["evaluate", str(run)]),
    "post-eval": lambda run, image: train_main(
        ["-start", "false", "-post", "true", "--run_dir", str(run)]
    ),
    "resume": lambda run, image: train_main(["--resume", str(run), "-e", "7"]),
    "report": lambda run, image: main(["report", str(run)]),
}
CELLS = [(d, c) for c in COMMANDS for d in DAMAGE if d in USES[c]]


@pytest.mark.parametrize(("damage", "command"), CELLS)
def test_damaged_run_fails_in_one_line_and_changes_nothing(
    tiny_run, tiny_data, tmp_path, capsys, damage, command
):
    run = copy_run(tiny_run, tmp_path / "model_repository", "damaged")
    named = DAMAGE[damage](run)
    before = snapshot(run)
    capsys.readouterr()
    code = COMMANDS[command](run, valid_paths(tiny_data)[0])
    err = capsys.readouterr().err
    assert code == 2, err
    line = one_error_line(err)
    assert "damaged" in line and named in line, line
    assert snapshot(run) == before


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_compare_skips_a_damaged_run_with_a_warning(tiny_run, tmp_path, capsys, damage):
    repository = tmp_path / "model_repository"
    good = copy_run(tiny_run, repository, "good")
    bad = copy_run(tiny_run, repository, "bad")
    named = DAMAGE[damage](bad)
    before = snapshot(bad)
    capsys.readouterr()
    assert main(["compare", str(repository)]) == 0
    err = capsys.readouterr().err
    board = pd.read_csv(repository / "leaderboard.csv")
    if damage in ("state_damaged", "optimizer_damaged"):  # compare does not read checkpoint/
        assert sorted(board["run"]) == ["bad", "good"] and "warning" not in err
    else:
        assert board["run"].tolist() == [good.name]
        assert "Traceback" not in err
        warnings = [line for line in err.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1 and "skipped bad" in warnings[0] and named in warnings[0]
    assert snapshot(bad) == before


def test_damage_in_files_a_command_does_not_read_does_not_block_it(
    tiny_run, tiny_data, tmp_path, capsys
):
    run = copy_run(tiny_run, tmp_path / "model_repository", "partly")
    remove_training_log(run)
    damaged_state(run)
    assert main(["predict", str(run), valid_paths(tiny_data)[0]]) == 0, capsys.readouterr().err


def test_open_run_reports_a_best_weights_record_that_is_not_one(tiny_run, tmp_path):
    from cnnhub.run_folder import open_run

    run = copy_run(tiny_run, tmp_path / "model_repository", "best")
    (run / "best_weights.json").write_text('{"weights": "../../etc/passwd"}', encoding="utf-8")
    with pytest.raises(CnnhubError, match="damaged: best_weights.json"):
        open_run(run)


# ------------------------------------------------------------------ a kill while finishing


def _finishing_files(run: Path) -> list[Path]:
    logs = run / "model_logs"
    plots = [p for p in logs.glob("*.png")]
    names = ["final_model.keras", "best_model.keras", "best_weights.json", "analysis_metrics.png"]
    return [run / n for n in names] + plots


def test_resume_finishes_a_run_killed_after_its_last_epoch(tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run, tmp_path / "model_repository", "unfinished")
    best = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))
    assert state_of(run)["finalized"] is True
    for path in _finishing_files(run):
        path.unlink()
    set_state(run, finalized=False)  # as a kill before the finishing steps ended leaves it
    weights_before = snapshot(run / "model_logs")
    assert train_main(["--resume", str(run)]) == 0, capsys.readouterr().err
    assert all(p.is_file() for p in _finishing_files(run))
    assert json.loads((run / "best_weights.json").read_text(encoding="utf-8")) == best
    assert state_of(run)["finalized"] is True and state_of(run)["epoch"] == 6
    log = pd.read_csv(run / "training.log")
    assert log["epoch"].tolist() == [1, 2, 3, 4, 5, 6]  # nothing was trained again
    after = snapshot(run / "model_logs")
    assert {k: v for k, v in after.items() if k.endswith(".weights.h5")} == {
        k: v for k, v in weights_before.items() if k.endswith(".weights.h5")
    }
    # final_model.keras holds the last epoch's weights (no early stopping in this run).
    import keras
    import numpy as np

    final = keras.saving.load_model(run / "final_model.keras", safe_mode=True)
    last = keras.saving.load_model(run / "final_model.keras", safe_mode=True)
    last.load_weights(last_weights(run))
    for a, b in zip(final.weights, last.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    capsys.readouterr()
    assert train_main(["--resume", str(run)]) == 2
    assert "already complete" in capsys.readouterr().err


def test_resume_finishes_a_run_from_before_the_finalized_record(tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run, tmp_path / "model_repository", "legacy")
    (run / "final_model.keras").unlink()
    set_state(run, finalized=None)  # state.json without the key, as older runs wrote it
    assert train_main(["--resume", str(run)]) == 0, capsys.readouterr().err
    assert (run / "final_model.keras").is_file()
    set_state(run, finalized=None)
    assert train_main(["--resume", str(run)]) == 2  # complete by its files
    assert "already complete" in capsys.readouterr().err


# ------------------------------------------------------------------ one writer per run folder


def _hold_lock(folder: Path) -> subprocess.Popen:
    code = (
        "import sys, time\n"
        "from cnnhub import run_lock\n"
        f"run_lock.acquire({str(folder)!r})\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_locked_run_refuses_other_writers_and_a_killed_holder_leaves_no_stuck_lock(
    tiny_run, tiny_data, tmp_path, capsys
):
    run = copy_run(tiny_run, tmp_path / "model_repository", "busy")
    holder = _hold_lock(run)
    try:
        before = snapshot(run)
        capsys.readouterr()
        data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
        attempts = {
            "resume": lambda: train_main(["--resume", str(run), "-e", "7"]),
            "evaluate": lambda: main(["evaluate", str(run)]),
            "post-eval": lambda: COMMANDS["post-eval"](run, ""),
            "overwrite": lambda: train_main(
                [*data, "-sl", str(tmp_path), "--run_name", "busy", "--overwrite", *TINY_FLAGS]
            ),
        }  # fmt: skip
        for name, attempt in attempts.items():
            assert attempt() == 2, name
            line = one_error_line(capsys.readouterr().err)
            assert f"in use by process {holder.pid}" in line, (name, line)
            assert snapshot(run) == before, name
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run / run_lock.LOCK_FILE).exists()  # the killed holder's file stays ...
    run_lock.acquire(run)  # ... but holds nobody back
    run_lock.release(run)
    assert not (run / run_lock.LOCK_FILE).exists()


def test_the_lock_is_reentrant_within_a_process_and_released_at_the_end(tmp_path):
    run_lock.acquire(tmp_path)
    run_lock.acquire(tmp_path)  # training scores its test data while it holds its run
    run_lock.release(tmp_path)
    assert (tmp_path / run_lock.LOCK_FILE).read_text() == str(os.getpid())
    run_lock.release(tmp_path)
    assert not (tmp_path / run_lock.LOCK_FILE).exists()


def test_a_run_name_taken_by_another_process_meanwhile_is_one_line(tmp_path):
    from cnnhub.run_folder import claim_folder

    (tmp_path / "taken").mkdir()  # what a concurrent training with the same name did first
    with pytest.raises(CnnhubError, match="created by another process"):
        claim_folder(tmp_path, "taken", "custom")


# ------------------------------------------------------------------ disk space


def test_the_disk_estimate_covers_what_a_run_writes(tiny_run):
    from cnnhub.run_folder import estimate_run_bytes

    info = json.loads((tiny_run / "run_info.json").read_text(encoding="utf-8"))
    written = sum(p.stat().st_size for p in tiny_run.rglob("*") if p.is_file())
    estimate = estimate_run_bytes(info["params"], 6, "adam")
    assert written <= estimate <= 4 * written, (written, estimate)


def _tiny_train(tiny_data, save: Path, name: str, epochs: str) -> list[str]:
    flags = list(TINY_FLAGS)
    flags[flags.index("-e") + 1] = epochs
    return ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"]),
            "-sl", str(save), "--run_name", name, *flags]  # fmt: skip


def test_too_little_disk_is_refused_before_training(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Disk(10**9, 10**9 - 10**5, 10**5))
    assert train_main(_tiny_train(tiny_data, tmp_path, "full_disk", "2")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "Not enough disk space" in line and "MB needed" in line
    assert not (tmp_path / "model_repository").exists()  # refused before anything is created


def test_a_disk_filling_up_stops_after_a_committed_epoch_and_resume_continues(
    tiny_data, tmp_path, capsys, monkeypatch
):
    calls = []

    def usage(path):  # room for the estimate; then, measured after epoch 1, too little
        calls.append(path)
        return Disk(10**12, 0, 10**12 if len(calls) == 1 else 10**5)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    assert train_main(_tiny_train(tiny_data, tmp_path, "filling", "3")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "2 epoch(s) left" in line and "--resume" in line and "MB needed" in line
    run = tmp_path / "model_repository" / "filling"
    assert state_of(run)["epoch"] == 1 and not (run / "final_model.keras").exists()
    assert not (run / run_lock.LOCK_FILE).exists()


def test_a_full_disk_while_saving_weights_is_one_line_and_the_run_resumes(
    tiny_data, tmp_path, capsys, monkeypatch
):
    from cnnhub.callbacks import EpochCheckpoint

    save = EpochCheckpoint.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.folder / "w.tmp"))
        save(self, epoch, logs)

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", on_epoch_end)
    assert train_main(_tiny_train(tiny_data, tmp_path, "enospc", "2")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "--resume" in line
    run = tmp_path / "model_repository" / "enospc"
    assert state_of(run)["epoch"] == 1
    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", save)
    assert train_main(["--resume", str(run)]) == 0, capsys.readouterr().err
    assert pd.read_csv(run / "training.log")["epoch"].tolist() == [1, 2]
    assert (run / "best_weights.json").is_file() and state_of(run)["finalized"] is True


# ------------------------------------------------------------------ -c run_config.json


def test_a_saved_run_config_repeats_a_named_run_in_a_new_folder(tiny_run, tmp_path, capsys):
    repository = tmp_path / "model_repository"
    run = copy_run(tiny_run, repository, "named")
    config = json.loads((run / "run_config.json").read_text(encoding="utf-8"))
    config.update(SAVE_LOCATION=str(tmp_path), ITERATION_NAME="named", EPOCHS=1)
    saved = tmp_path / "run_config.json"
    saved.write_text(json.dumps(config), encoding="utf-8")
    started = time.monotonic()
    assert train_main(["-c", str(saved)]) == 0, capsys.readouterr().err
    assert time.monotonic() - started < 120
    repeat = repository / "named-2"
    assert json.loads((repeat / "run_config.json").read_text())["EPOCHS"] == 1
    assert snapshot(run) == snapshot(tiny_run)  # the original run is untouched
