"""Learning-rate schedules as pure functions of the global training step.

Every value depends only on the 0-based global step (epoch x steps per epoch + batch), the
run's planned epochs and the config, never on callback state, so a run resumed after a kill
sets exactly the rates the uninterrupted run would have set.

- ``WARMUP_EPOCHS`` = W > 0: the rate climbs linearly over the first W epochs' steps,
  ``(step + 1) / warmup_steps`` of the phase's rate, before any schedule.
- ``step`` / ``cosine``: per-epoch values, counted from the end of the warm-up; cosine goes
  from the full rate at epoch W to 0 at epoch ``EPOCHS`` (with W = 0 as before warm-up existed).
- ``onecycle``: Smith's one-cycle policy with PyTorch ``OneCycleLR``'s defaults: over the steps
  after the warm-up, cosine from LEARNING_RATE / 25 up to LEARNING_RATE in the first 30%, then
  cosine down to LEARNING_RATE / 25 / 10^4 at the last step. (Momentum is not cycled.)
- ``constant`` and ``plateau``: the full rate after the warm-up (plateau's decays are
  ReduceLROnPlateau's, applied to the optimizer's rate outside the warm-up).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras

ONE_CYCLE_PCT_START = 0.3  # fraction of the cycle's steps spent rising
ONE_CYCLE_DIV = 25.0  # start rate = LEARNING_RATE / ONE_CYCLE_DIV
ONE_CYCLE_FINAL_DIV = 1e4  # end rate = start rate / ONE_CYCLE_FINAL_DIV


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * fraction))


def one_cycle_factor(step: int, steps: int) -> float:
    """Multiplier of the peak rate at 0-based ``step`` of a one-cycle of ``steps`` steps, as
    PyTorch's ``OneCycleLR`` (two phases, cosine annealing) computes it."""
    low = 1 / ONE_CYCLE_DIV
    rise_end = ONE_CYCLE_PCT_START * steps - 1
    last = steps - 1
    if step <= rise_end:
        return _cosine(low, 1.0, step / rise_end if rise_end > 0 else 1.0)
    fall = (step - rise_end) / (last - rise_end) if last > rise_end else 1.0
    return _cosine(1.0, low / ONE_CYCLE_FINAL_DIV, min(fall, 1.0))


def learning_rate_factor(
    config: dict[str, Any], step: int, steps_per_epoch: int, epochs: float | None = None
) -> float:
    """Multiplier of the phase's learning rate at 0-based global ``step``.

    ``epochs`` is the run's planned length (default EPOCHS; a time budget plans its own, whose
    shorter last epoch counts as its fraction of an epoch).
    """
    epochs = config["EPOCHS"] if epochs is None else epochs
    warmup = config["WARMUP_EPOCHS"]
    warmup_steps = warmup * steps_per_epoch
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    kind = config["LR_SCHEDULE"]
    epoch = step // steps_per_epoch
    if kind == "step":
        return config["LR_DECAY_FACTOR"] ** ((epoch - warmup) // config["LR_STEP_EPOCHS"])
    if kind == "cosine":
        return 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / max(epochs - warmup, 1)))
    if kind == "onecycle":
        cycle = max(round((epochs - warmup) * steps_per_epoch), steps_per_epoch)
        return one_cycle_factor(step - warmup_steps, cycle)
    return 1.0


def sets_rate(config: dict[str, Any], step: int, steps_per_epoch: int) -> bool:
    """Whether the schedule owns the rate at ``step`` (plateau and constant only warm up)."""
    if config["LR_SCHEDULE"] in ("step", "cosine", "onecycle"):
        return True
    return step < config["WARMUP_EPOCHS"] * steps_per_epoch


class StepSchedule(keras.callbacks.Callback):
    """Set the optimizer's rate before every batch from :func:`learning_rate_factor`.

    ``planned_epochs`` returns the run's current planned length (a time budget may shorten it
    after the first epoch); ``steps_per_epoch`` is the training dataset's batch count.
    """

    def __init__(
        self,
        config: dict[str, Any],
        base_rate: float,
        steps_per_epoch: int,
        planned_epochs: Callable[[], float] | None = None,
    ):
        super().__init__()
        self.config = config
        self.base_rate = base_rate
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.planned_epochs = planned_epochs or (lambda: config["EPOCHS"])
        self.epoch = 0
        self._last: float | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = self.epoch * self.steps_per_epoch + batch
        if not sets_rate(self.config, step, self.steps_per_epoch):
            return
        factor = learning_rate_factor(
            self.config, step, self.steps_per_epoch, self.planned_epochs()
        )
        rate = self.base_rate * factor
        if rate != self._last:  # step/cosine change once an epoch: skip the identical assigns
            self.model.optimizer.learning_rate = rate
            self._last = rate


def make_step_schedule(
    config: dict[str, Any],
    base_rate: float,
    steps_per_epoch: int,
    planned_epochs: Callable[[], float] | None = None,
) -> StepSchedule | None:
    """The schedule callback of a phase trained at ``base_rate``, or None when the rate stays
    the optimizer's own (constant or plateau without warm-up)."""
    if config["LR_SCHEDULE"] in ("constant", "plateau") and not config["WARMUP_EPOCHS"]:
        return None
    return StepSchedule(config, base_rate, steps_per_epoch, planned_epochs)


def steps_per_epoch(dataset) -> int:
    """Batches per epoch of a training dataset: its cardinality, else counted by one pass."""
    count = int(dataset.cardinality())
    if count >= 0:
        return max(count, 1)
    return max(int(dataset.reduce(0, lambda n, _: n + 1)), 1)
