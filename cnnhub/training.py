"""Compile and fit a model according to its training type, writing the run folder as it goes.

Training types:
- ``train_all``: every layer trains.
- ``freeze_all``: the backbone is frozen, the head trains.
- ``freeze_some``: the first NUMBER_OF_LAYERS_TO_FREEZE backbone layers are frozen.
- ``fine_tune``: phase 1 trains the head for FINE_TUNE_AFTER epochs; phase 2 unfreezes the top
  FINE_TUNE_LAYERS backbone layers (0 = all) and recompiles at LEARNING_RATE x
  FINE_TUNE_LR_FACTOR. Epochs are counted globally across both phases.
BatchNormalization in a frozen or partly frozen backbone always runs in inference mode (see
``apply_freezing``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from cnnhub.callbacks import (
    ChanceLevelWarning,
    EpochCheckpoint,
    TrainingLog,
    ValidationScorer,
    plot_training_stats,
)
from cnnhub.ema import ema_callbacks
from cnnhub.evaluation.tta import parse_tta
from cnnhub.fused_batch_norm import use_fused_batch_norm
from cnnhub.model_factory import BACKBONE_LAYER
from cnnhub.resume import (
    ResumableEarlyStopping,
    ResumablePlateau,
    ResumeCheckpoint,
    restore_optimizer,
)
from cnnhub.run_folder import RunFolder, TrainingState
from cnnhub.schedules import make_step_schedule, steps_per_epoch
from cnnhub.tasks import get_task


@dataclass
class Phase:
    """A stretch of epochs trained with one set of frozen layers and one compile."""

    first_epoch: int  # 0-based, as Keras's initial_epoch
    end_epoch: int  # exclusive
    frozen_layers: int | None  # backbone layers frozen from the input; None = whole backbone
    lr_factor: float


def plan_phases(config: dict[str, Any], backbone_layers: int) -> list[Phase]:
    """The phases of ``TRAINING_TYPE`` over ``EPOCHS`` epochs."""
    epochs = config["EPOCHS"]
    kind = config["TRAINING_TYPE"]
    if kind == "freeze_all":
        return [Phase(0, epochs, None, 1.0)]
    if kind == "freeze_some":
        return [Phase(0, epochs, min(config["NUMBER_OF_LAYERS_TO_FREEZE"], backbone_layers), 1.0)]
    if kind == "fine_tune":
        top = config["FINE_TUNE_LAYERS"] or backbone_layers
        head_epochs = config["FINE_TUNE_AFTER"]
        return [
            Phase(0, head_epochs, None, 1.0),
            Phase(
                head_epochs, epochs, max(backbone_layers - top, 0), config["FINE_TUNE_LR_FACTOR"]
            ),
        ]
    return [Phase(0, epochs, 0, 1.0)]


def apply_freezing(model, phase: Phase, training_type: str) -> None:
    """Set ``trainable`` on the backbone's layers for ``phase``; the head always trains.

    For every type but ``train_all`` the backbone's BatchNormalization layers are frozen too,
    which in Keras 3 also makes them run in inference mode: their statistics stay those of the
    (pretrained) backbone, as the Keras transfer-learning guide recommends. (Calling the backbone
    with ``training=False`` is not enough: an outer ``fit`` overrides it.)
    """
    backbone = model.get_layer(BACKBONE_LAYER)
    if phase.frozen_layers is None:
        backbone.trainable = False
        return
    backbone.trainable = True
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= phase.frozen_layers
        if training_type != "train_all" and isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def freeze_for_epoch(model, config: dict[str, Any], epoch: int = 0) -> None:
    """Freeze ``model`` as the training type has it at 0-based ``epoch``, so that a summary or
    parameter count printed before training shows what will actually train."""
    phases = plan_phases(config, len(model.get_layer(BACKBONE_LAYER).layers))
    phase = next((p for p in phases if p.first_epoch <= epoch < p.end_epoch), phases[-1])
    apply_freezing(model, phase, config["TRAINING_TYPE"])


def make_optimizer(config: dict[str, Any], learning_rate: float):
    name = config["OPTIMIZER"]
    decay = config["WEIGHT_DECAY"] or None
    # EMA: the optimizer keeps the weights' moving average (see cnnhub.ema).
    ema = {"use_ema": config["EMA"], "ema_momentum": config["EMA_MOMENTUM"]}
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate, momentum=config["MOMENTUM"], weight_decay=decay, **ema
        )
    if name == "rmsprop":
        return keras.optimizers.RMSprop(
            learning_rate, momentum=config["MOMENTUM"], weight_decay=decay, **ema
        )
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=config["WEIGHT_DECAY"], **ema)
    return keras.optimizers.Adam(learning_rate, weight_decay=decay, **ema)


def make_loss(config: dict[str, Any], model=None):
    """The task's Keras loss for LOSS (see :mod:`cnnhub.tasks`); ``model`` is the one it
    trains (regression reads its target scale)."""
    return get_task(config).make_loss(config, model)


def make_stateful_callbacks(
    config: dict[str, Any], checkpoint: EpochCheckpoint, full_model
) -> dict:
    """Early stopping and the plateau schedule: one instance each for the whole run, so their
    counters carry across fine_tune phases and are saved for resuming."""
    stateful = {}
    if config["LR_SCHEDULE"] == "plateau":
        stateful["plateau"] = ResumablePlateau(
            monitor="val_loss", factor=config["LR_DECAY_FACTOR"], patience=config["LR_PATIENCE"]
        )
    if config["EARLY_STOPPING"]:
        stateful["early_stopping"] = ResumableEarlyStopping(
            checkpoint.path_of,
            full_model,
            monitor=config["EARLY_STOPPING_MONITOR"],
            patience=config["EARLY_STOPPING_PATIENCE"],
            restore_best_weights=config["EARLY_STOPPING_RESTORE_BEST"],
        )
    return stateful


@dataclass
class FitContext:
    """Everything ``fit`` needs besides the config, the model and its data.

    ``run``: the run folder written as epochs end. ``valid_labels``: the validation labels
    (the validation dataset yields images only). ``epoch_reporters(scorer, checkpoint)``: extra
    per-epoch callbacks (e.g. per-epoch reports, reading the epoch's probabilities from
    ``scorer`` and weights file from ``checkpoint``). ``extra_callbacks`` run first (per-epoch
    randomness, timers); ``after_commit`` after the epoch's commit (checks that may stop the
    run). ``resume_from`` continues after its last completed epoch: the classifier must already
    hold that epoch's weights; the optimizer state and counters are restored by ``fit``.
    ``save_model`` is the full classifier when the model trained is only its head (feature
    cache): its weights are the ones saved each epoch.
    """

    run: RunFolder
    valid_labels: Any
    epoch_reporters: Callable[[ValidationScorer, EpochCheckpoint], list] | None = None
    extra_callbacks: list = field(default_factory=list)
    after_commit: list = field(default_factory=list)
    resume_from: TrainingState | None = None
    class_weight: dict[int, float] | None = None
    save_model: Any = None
    budget: Any = None  # a cnnhub.time_budget.TimeBudget, which may shorten the run


def fit(config: dict[str, Any], model, train_ds, valid_ds, context: FitContext) -> list[str]:
    """Train ``model`` through every phase of its training type; return the run's warnings
    (``ChanceLevelWarning``).

    Per-epoch weights, ``training.log``, TensorBoard logs, the stats PNG and the resume state
    are written as each epoch ends. Callback order matters: ``context.extra_callbacks``, then
    validation scores, then the epoch's weights, logs and ``context.epoch_reporters``, then
    early stopping (which may restore earlier weights into the model), TensorBoard, the resume
    state (the commit point of the epoch), and last ``context.after_commit``. With EMA the
    averaged weights are swapped in before all of these (``cnnhub.ema``).
    """
    run, valid_labels, resume_from = context.run, context.valid_labels, context.resume_from
    task = get_task(config)
    use_fused_batch_norm(model)  # faster training steps; the saved model does not change
    full = context.save_model if context.save_model is not None else model
    loss = make_loss(config, full)
    scorer = ValidationScorer(valid_ds, valid_labels, loss, task, parse_tta(config["TTA"]))
    checkpoint = EpochCheckpoint(run.model_logs, full, f"val_{task.epoch_metric}")
    title = f"{run.path.name}: {config['MODEL_NAME']}"
    log = TrainingLog(
        run.training_log,
        lambda frame: plot_training_stats(frame, run.stats_png, title, task.epoch_metric),
        task.log_columns(),
    )
    stateful = make_stateful_callbacks(config, checkpoint, full)
    if context.budget is not None:  # its plan is committed with each epoch's state
        stateful["time_budget"] = context.budget
    planned = context.budget.planned_length if context.budget is not None else None
    start = 0
    if resume_from is not None:
        start = resume_from.epoch
        log.load_existing()
        for name, callback in stateful.items():
            callback.carry = resume_from.callbacks.get(name)
    # Chance level is a single-label idea: accuracy against the most frequent class (one class
    # index per image; multi-label targets are a 0/1 matrix).
    single = task.epoch_metric == "accuracy" and np.ndim(valid_labels) == 1
    chance = ChanceLevelWarning(valid_labels) if single else None
    reporters = context.epoch_reporters
    reports = reporters(scorer, checkpoint) if reporters else []
    per_epoch = [c for c in (chance, checkpoint, log, *reports) if c is not None]
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(run.tensor_logs), write_graph=False)
    backbone_layers = len(full.get_layer(BACKBONE_LAYER).layers)
    steps = steps_per_epoch(train_ds)
    verbose = 1 if sys.stdout.isatty() else 2
    for index, phase in enumerate(plan_phases(config, backbone_layers)):
        if phase.end_epoch <= start:
            continue
        apply_freezing(full, phase, config["TRAINING_TYPE"])
        model.compile(
            optimizer=make_optimizer(config, config["LEARNING_RATE"] * phase.lr_factor),
            loss=loss,
            jit_compile=config["JIT_COMPILE"],
            **task.compile_arguments(config, full),
        )
        first = max(phase.first_epoch, start)
        restored = resume_from is not None and resume_from.phase == index and first == start
        if restored:
            restore_optimizer(model, run)
        ema_first, ema_last = ema_callbacks(config["EMA"], restored)
        if phase.first_epoch > 0:
            print(f"Fine-tuning from epoch {phase.first_epoch + 1}: " + trainable_summary(model))
        callbacks = [
            *context.extra_callbacks,
            *ema_first,  # the averaged weights are the ones scored and saved
            scorer,
            *per_epoch,
            make_step_schedule(config, config["LEARNING_RATE"] * phase.lr_factor, steps, planned),
            *stateful.values(),
            tensorboard,
            ResumeCheckpoint(run, checkpoint, index, stateful),
            *context.after_commit,
            *ema_last,
        ]
        model.fit(
            train_ds,
            epochs=phase.end_epoch,
            initial_epoch=first,
            callbacks=[c for c in callbacks if c is not None],
            class_weight=context.class_weight,
            verbose=verbose,
        )
        if model.stop_training:
            break
    return [chance.message] if chance is not None and chance.message else []


def trainable_summary(model) -> str:
    """``Total params: N | Trainable params: M`` for the model as currently frozen."""
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    return f"Total params: {model.count_params():,} | Trainable params: {trainable:,}"
