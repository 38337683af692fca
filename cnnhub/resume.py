"""Crash-safe training state: what a killed run needs to continue after its last full epoch.

After every epoch, ``ResumeCheckpoint`` (the last callback) writes ``checkpoint/optimizer.npz``
(the optimizer's variables: slots, iteration count, learning rate) and then
``checkpoint/state.json``, the commit point: the number of completed epochs, the training-type
phase, that epoch's weights file in ``model_logs/`` and the early-stopping and learning-rate
plateau counters. The model weights are not copied: every epoch's weights file already exists.

On ``--resume``, ``prepare_resume`` removes whatever an interrupted epoch left behind (files and
log rows of later epochs) and tells TensorBoard to drop events from those epochs, so logs
continue without duplicated or missing epochs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from cnnhub import atomic
from cnnhub.evaluation.safe_csv import read_csv_safe, write_csv_safe
from cnnhub.run_folder import RunFolder


def _float(value) -> float | None:
    return None if value is None else float(value)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose counters survive a restart and carry across fine_tune phases.

    Best weights are not part of the state: after a restart they are reloaded from the best
    epoch's weights file when training ends, as Keras restores them from memory otherwise.
    """

    def __init__(self, weights_path, full_model, **kwargs):
        super().__init__(**kwargs)
        self.weights_path = weights_path  # 1-based epoch -> its weights file
        self.full_model = full_model  # what the weights files hold (the model may be its head)
        self.carry: dict[str, Any] | None = None

    def get_state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": _float(self.best), "best_epoch": self.best_epoch}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.carry:
            self.wait = self.carry["wait"]
            self.best = self.carry["best"]
            self.best_epoch = self.carry["best_epoch"]

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.restore_best_weights and self.best_weights is None and self.best is not None:
            self.full_model.load_weights(self.weights_path(self.best_epoch + 1))
        self.carry = self.get_state()


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters survive a restart and carry across phases."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.carry: dict[str, Any] | None = None

    def get_state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": _float(self.best), "cooldown": self.cooldown_counter}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.carry:
            self.wait = self.carry["wait"]
            self.best = self.carry["best"]
            self.cooldown_counter = self.carry["cooldown"]

    def on_train_end(self, logs=None):
        self.carry = self.get_state()


@dataclass
class TrainingState:
    """The contents of ``checkpoint/state.json``."""

    epoch: int = 0  # completed epochs
    phase: int = 0
    weights: str = ""
    callbacks: dict[str, dict] = field(default_factory=dict)
    finished: bool = False


def checkpoint_dir(run: RunFolder) -> Path:
    return run.path / "checkpoint"


def read_state(run: RunFolder) -> TrainingState | None:
    path = checkpoint_dir(run) / "state.json"
    if not path.is_file():
        return None
    return TrainingState(**json.loads(path.read_text(encoding="utf-8")))


def save_optimizer(optimizer, path: Path) -> None:
    values = {f"v{i:05d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **values)


def restore_optimizer(model, path: Path) -> None:
    """Load optimizer variables saved by ``save_optimizer`` into ``model``'s compiled optimizer."""
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    with np.load(path, allow_pickle=False) as saved:
        values = [saved[key] for key in sorted(saved.files)]
    if len(values) != len(optimizer.variables):
        raise ValueError(
            f"Saved optimizer state has {len(values)} variables, the optimizer "
            f"{len(optimizer.variables)}; was the run's configuration changed?"
        )
    for variable, value in zip(optimizer.variables, values):
        variable.assign(value)


class ResumeCheckpoint(keras.callbacks.Callback):
    """Commit the training state after every epoch (see the module docstring)."""

    def __init__(self, run: RunFolder, checkpoint, phase_index: int, stateful: dict):
        super().__init__()
        self.run = run
        self.checkpoint = checkpoint
        self.phase_index = phase_index
        self.stateful = stateful  # name -> callback with get_state()

    def on_epoch_end(self, epoch, logs=None):
        folder = checkpoint_dir(self.run)
        save_optimizer(self.model.optimizer, folder / "optimizer.npz")
        state = TrainingState(
            epoch=epoch + 1,
            phase=self.phase_index,
            weights=self.checkpoint.saved[epoch + 1].name,
            callbacks={name: cb.get_state() for name, cb in self.stateful.items()},
            finished=bool(self.model.stop_training),
        )
        atomic.write_json(folder / "state.json", state.__dict__)


def prepare_resume(run: RunFolder, state: TrainingState | None) -> None:
    """Remove what epochs after ``state.epoch`` left behind; purge their TensorBoard events."""
    done = state.epoch if state else 0
    for path in run.path.rglob(".*.tmp*"):  # temporary files of a write the crash cut short
        path.unlink()
    for path in run.model_logs.glob("weights-*"):
        try:
            epoch = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if epoch > done:
            path.unlink()
    log = run.training_log
    if log.is_file():
        frame = pd.read_csv(log)
        atomic.write_csv(log, frame[frame["epoch"] <= done])
    report = run.path / "analysis_report.csv"
    if report.is_file():
        frame = read_csv_safe(report)
        write_csv_safe(report, frame[frame["epoch"] <= done])
    _purge_tensorboard(run, done)


def _purge_tensorboard(run: RunFolder, from_step: int) -> None:
    """Write a SessionLog START at ``from_step``: TensorBoard then discards the events of that
    step and later from earlier files (its "orphaned data" rule), so no epoch appears twice."""
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for split in ("train", "validation"):
        folder = run.tensor_logs / split
        if not folder.is_dir():
            continue
        writer = EventFileWriter(str(folder))
        writer.add_event(
            Event(
                step=from_step,
                wall_time=time.time(),
                session_log=SessionLog(status=SessionLog.START),
            )
        )
        writer.close()
