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

import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from cnnhub import atomic
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.safe_csv import write_csv_safe
from cnnhub.run_folder import (
    WEIGHTS_SUFFIX,
    RunFolder,
    TrainingState,
    open_run,
    require_space,
)
from cnnhub.weights import load_weights_checked


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
            # Through cnnhub's loader: an epoch saved before a resume may be in an older layout.
            load_weights_checked(self.full_model, self.weights_path(self.best_epoch + 1), False)
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


def save_optimizer(optimizer, path: Path) -> None:
    values = {f"v{i:05d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **values)


def restore_optimizer(model, run: RunFolder) -> None:
    """Load the optimizer variables ``save_optimizer`` wrote into ``model``'s compiled optimizer.

    Raises:
        CnnhubError: ``optimizer.npz`` is unreadable or does not fit the optimizer.
    """
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    try:
        with np.load(run.optimizer_file, allow_pickle=False) as saved:
            values = [saved[key] for key in sorted(saved.files)]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise run.damaged(run.optimizer_file, f"cannot be read ({exc})") from None
    shapes = [tuple(v.shape) for v in optimizer.variables]
    if [tuple(v.shape) for v in values] != shapes:
        raise run.damaged(
            run.optimizer_file,
            f"holds {len(values)} arrays that do not fit the optimizer's {len(shapes)} variables",
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
        save_optimizer(self.model.optimizer, self.run.optimizer_file)
        state = TrainingState(
            epoch=epoch + 1,
            phase=self.phase_index,
            weights=self.checkpoint.saved[epoch + 1].name,
            callbacks={name: cb.get_state() for name, cb in self.stateful.items()},
            finished=bool(self.model.stop_training),
            finalized=False,
        )
        atomic.write_json(self.run.state_file, state.__dict__)


@dataclass
class ResumePlan:
    """A checked run folder to continue (``plan_resume``): nothing in it has changed yet."""

    run: RunFolder
    config: dict[str, Any]
    class_names: list[str]
    state: TrainingState | None
    config_changed: bool  # EPOCHS was raised: run_config.json is rewritten
    trained: bool  # every epoch is done: only the finishing steps run


def plan_resume(run_dir: str | Path, epochs: int | None = None) -> ResumePlan:
    """Read and check everything ``--resume`` uses before anything is written.

    Raises:
        CnnhubError: a file of the run is damaged, or the run is complete (finishing included).
    """
    opened = open_run(run_dir)
    run, config = opened.folder, dict(opened.config)
    if epochs is not None:
        config["EPOCHS"] = epochs
    state = run.read_state()
    if state is not None:
        log = run.read_training_log()
        if len(log) < state.epoch:
            raise run.damaged(
                run.training_log, f"has {len(log)} epoch rows; the checkpoint says {state.epoch}"
            )
        if run.analysis_report.exists():
            run.read_report()
    trained = state is not None and (state.finished or state.epoch >= config["EPOCHS"])
    if trained and is_finalized(run, state, config):
        raise CnnhubError(
            f"Run {run_dir} is already complete ({state.epoch} epochs); pass a larger "
            f"-e/--epochs to train longer. Received: --resume {run_dir}"
        )
    return ResumePlan(
        run,
        config,
        opened.class_names,
        state,
        config["EPOCHS"] != opened.config["EPOCHS"],
        trained,
    )


def is_finalized(run: RunFolder, state: TrainingState, config: dict[str, Any]) -> bool:
    """Whether the finishing steps after the last epoch ran to the end."""
    if state.finalized is not None:
        return state.finalized
    # A run from before ``finalized`` was recorded: judge by the finishing steps' files.
    return run.final_model.exists() and (
        not config["POST_EVAL"] or (run.best_weights.exists() and run.best_model.exists())
    )


def mark_finalized(run: RunFolder) -> None:
    """Record in ``state.json`` that the finishing steps ran (the run is complete)."""
    state = run.read_state()
    if state is not None:
        state.finalized = True
        atomic.write_json(run.state_file, state.__dict__)


def final_weights(run: RunFolder, state: TrainingState, config: dict[str, Any]) -> Path:
    """The weights training ends with: the last epoch's, or the best epoch's when early
    stopping restores them (as ``ResumableEarlyStopping.on_train_end`` does)."""
    stopping = state.callbacks.get("early_stopping")
    if config["EARLY_STOPPING"] and config["EARLY_STOPPING_RESTORE_BEST"] and stopping:
        if stopping.get("best") is not None:
            epoch = int(stopping["best_epoch"]) + 1
            path = run.epoch_weights().get(epoch)
            if path is None:
                raise run.damaged(run.model_logs, f"lacks the weights of the best epoch {epoch}")
            return run.check_weights(path)
    return run.model_logs / state.weights


def prepare_resume(run: RunFolder, state: TrainingState | None) -> None:
    """Remove what epochs after ``state.epoch`` left behind; purge their TensorBoard events.

    The files read here were checked by ``plan_resume``."""
    done = state.epoch if state else 0
    for path in run.path.rglob(".*.tmp*"):  # temporary files of a write the crash cut short
        path.unlink()
    for epoch, path in run.epoch_weights().items():
        if epoch > done:
            path.unlink()
    if run.training_log.is_file():
        frame = run.read_training_log()
        atomic.write_csv(run.training_log, frame[frame["epoch"] <= done])
    if run.analysis_report.is_file():
        frame = run.read_report()
        write_csv_safe(run.analysis_report, frame[frame["epoch"] <= done])
    _purge_tensorboard(run, done)


class DiskSpaceCheck(keras.callbacks.Callback):
    """After the first epoch this process trains, check the disk holds the epochs left.

    The need is measured, not estimated: the bytes the epoch's weights file and reports took,
    times the epochs left, plus room for ``final_model.keras`` and ``best_model.keras`` (each
    about the weights file plus ``optimizer.npz``). Runs after the epoch's commit, so a refusal
    leaves a run that ``--resume`` continues once there is room.
    """

    def __init__(self, run: RunFolder, epochs: int):
        super().__init__()
        self.run = run
        self.epochs = epochs
        self.checked = False

    def on_epoch_end(self, epoch, logs=None):
        if self.checked:
            return
        self.checked = True
        left = self.epochs - (epoch + 1)
        weights = self.run.epoch_weights()[epoch + 1]
        stem = weights.name[: -len(WEIGHTS_SUFFIX)]
        per_epoch = sum(p.stat().st_size for p in self.run.model_logs.glob(f"{stem}*"))
        models = 2 * (weights.stat().st_size + self.run.optimizer_file.stat().st_size)
        need = int((per_epoch * left + models) * 1.1)
        require_space(
            self.run.path,
            need,
            f"the {left} epoch(s) left and the final models ({per_epoch / 1e6:,.1f} MB per epoch "
            "measured)",
            f"{epoch + 1} complete epoch(s) are saved; free space, then continue with "
            f"`python run_training.py --resume {self.run.path}`.",
            f"run={str(self.run.path)!r}",
        )


def _purge_tensorboard(run: RunFolder, from_step: int) -> None:
    """Write a SessionLog START at ``from_step``: TensorBoard then discards the events of that
    step and later from earlier files (its "orphaned data" rule), so no epoch appears twice."""

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
