"""``TIME_BUDGET``: fit a run into a wall-clock budget by choosing its number of epochs.

The clock starts with the command for its first run (start-up and data checks included), and
when the run starts for a command's later runs (more models, folds): it covers model build,
training, per-epoch scoring, finishing steps and test evaluation. The plan is made after the
first epoch this process trains and made again after every later epoch but the last planned:

- an epoch's cost = its training steps plus its scoring (validation pass, per-epoch reports,
  weights file). After the first epoch: that epoch's, its first step (graph tracing) left out
  and the other steps scaled to all steps. From the second on: the longest of the last
  ``RECENT_EPOCHS`` epochs, the first left out (it pays one-offs: filling the data cache,
  tracing, warming up allocators and kernels, so it errs long and could waste an epoch); a
  machine that slows down or speeds up moves the plan with it. The longest, not the mean:
  epochs on a shared machine vary by 10-20%, and a plan cut short later ends the run before
  its schedule does (the last epochs at too high a learning rate), while one that grows later
  only stretches the schedule;
- the finishing steps (final model, best-weight choice and reports, test evaluation) are
  estimated once, after the first epoch, as ``scoring x (1 + test images / validation
  images)``, at least 10 s: like that epoch's scoring they build and trace models and score
  images with the same views, and the plots and the report cost seconds in any run;
- planned epochs = the epochs done + as many more as fit in what is left, at most EPOCHS
  (EPOCHS stays the maximum), at least the epochs done. What is left after the whole epochs
  becomes a shorter last epoch (``last_epoch_steps`` of its steps) when it can train at least
  as long as its scoring takes: without it, up to an epoch of the budget would go unused (a
  third of it for a run of three long epochs). A plan whose length changes is printed.

A plan is a forecast: a machine that slows down within an epoch makes it late. So after every
step of a planned epoch, the run stops early (that epoch becomes its last, shortened, and is
scored as any other) once one more step, that epoch's scoring and the finishing steps would
end it past the budget. The pace is the median step of the epoch so far; once it has
``PACE_MIN_STEPS`` steps, scoring and finishing are scaled by how much slower it is than planned
(the median: one slow step, a pause of the input pipeline, does not stop a run).

Schedules (cosine, step, onecycle) run over the planned length as planned at each step (a
shorter last epoch counts as its fraction of an epoch): the first epoch used EPOCHS, the later
ones the plan of the moment. The plan is part of the epoch's commit (``state.json``), so
``--resume`` finishes the committed plan with the same learning rates and the same steps; the
resumed process does not re-plan or re-measure (the time before the kill is unknown to it), and
reports its own time only.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import keras

from cnnhub.durations import (
    describe_last_epoch,
    format_duration,
    parse_duration,
    planned_length,
    shortened_last_epoch,
)

RECENT_EPOCHS = 3  # an epoch's cost: the longest of the last ones measured, the first left out
FINISH_MIN_SECONDS = 10.0  # plots, report, the test set's model build: fixed costs of any run
FINISH_SCORING_PASSES = 1.0  # best-weight choice and reports, final and best model saves
TEST_SCORING_FACTOR = 1.0  # scoring test data, per image vs validation (the same views)
PACE_MIN_STEPS = 5  # steps of an epoch before its pace scales the estimates of what is left


class TimeBudget(keras.callbacks.Callback):
    """Plan the run's epochs after each epoch (see the module docstring); stop the run when
    the planned epochs are done. Resumable: ``get_state`` / ``carry``."""

    def __init__(
        self,
        seconds: float,
        max_epochs: int,
        test_fraction: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
        started: float | None = None,
    ):
        super().__init__()
        self.seconds = seconds
        self.max_epochs = max_epochs
        self.test_fraction = test_fraction
        self.clock = clock
        self.started = clock() if started is None else started
        self.carry: dict[str, Any] | None = None
        self.plan: dict[str, Any] | None = None
        self.resumed = False
        self._epoch_start = self._first_step = self._last_batch_end = 0.0
        self._batch_start = 0.0
        self._trained_until: float | None = None  # when the last epoch this process trained ended
        self._epoch = 0
        self._step_seconds: list[float] = []  # this epoch's, batch end to batch end
        # Epochs measured after the first: (training, scoring) seconds.
        self._costs: list[tuple[float, float]] = []

    @property
    def _batches(self) -> int:
        """The steps this epoch has trained (measured)."""
        return len(self._step_seconds)

    def planned_epochs(self) -> int:
        """The run's epochs: the plan once made (a shorter last epoch counts), else EPOCHS."""
        return self.plan["planned_epochs"] if self.plan else self.max_epochs

    def planned_length(self) -> float:
        """The run's length in epochs for the schedules: a shorter last epoch counts as its
        fraction of an epoch."""
        return planned_length(self.plan) if self.plan else float(self.max_epochs)

    def get_state(self) -> dict[str, Any] | None:
        return self.plan

    def on_train_begin(self, logs=None):
        self._take_carry()

    def _take_carry(self) -> None:
        """A resumed run continues the plan committed with its last epoch."""
        if self.plan is None and self.carry:
            self.plan, self.resumed = dict(self.carry), True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.clock()
        self._epoch = epoch
        self._step_seconds = []

    def measuring(self) -> bool:
        """Whether epochs are measured and planned after: not in a resumed process."""
        return not self.resumed

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0 and self.measuring():
            self._batch_start = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        if self.measuring():
            now = self.clock()
            self._step_seconds.append(now - (self._last_batch_end if batch else self._epoch_start))
            self._last_batch_end = now
            if batch == 0:
                self._first_step = self._last_batch_end - self._batch_start
        if self.plan is None:
            return
        short = shortened_last_epoch(self.plan)
        last = short[0] if short and self._epoch + 1 == self.planned_epochs() else None
        if last is not None and batch + 1 >= last:
            self.model.stop_training = True  # a shorter last epoch ends here
        # An epoch's last step needs no check: the plan is made again after the epoch.
        elif self.measuring() and batch + 1 < (last or self.plan["steps_per_epoch"]):
            if self._would_overrun():
                self._stop_early()

    def _would_overrun(self) -> bool:
        """Whether one more step, this epoch's scoring and the finishing steps would end the
        run past the budget, at this epoch's pace (see the module docstring)."""
        plan = self.plan
        step = statistics.median(self._step_seconds)
        planned_step = (plan["epoch_seconds"] - plan["scoring_seconds"]) / plan["steps_per_epoch"]
        slower = 1.0
        if len(self._step_seconds) >= PACE_MIN_STEPS:
            slower = max(step / max(planned_step, 1e-9), 1.0)
        rest = step + slower * (plan["scoring_seconds"] + plan["finishing_seconds"])
        return self._last_batch_end - self.started + rest > self.seconds

    def _stop_early(self) -> None:
        """End the run with this epoch, shortened to the steps done; the plan says so, as it
        is committed with the epoch and reported."""
        plan = self.plan
        self.plan = dict(
            plan,
            planned_epochs=self._epoch + 1,
            last_epoch_steps=self._batches,
            stopped_early=True,
        )
        self.model.stop_training = True
        print(
            f"\nTime budget {format_duration(plan['budget_seconds'])}: the machine slowed down; "
            f"epoch {self._epoch + 1} ends after {self._batches} of {plan['steps_per_epoch']} "
            "steps and is the last, to end the run inside the budget.",
            flush=True,
        )

    def on_epoch_end(self, epoch, logs=None):
        self._trained_until = self.clock()
        if self.plan is None or (self.measuring() and epoch + 1 < self.planned_epochs()):
            before = self.planned_length() if self.plan else None
            self.plan = self.make_plan(epoch + 1)
            if self.planned_length() != before:
                print(self.describe_plan(), flush=True)
        if epoch + 1 >= self.planned_epochs():
            self.model.stop_training = True

    def make_plan(self, done: int) -> dict[str, Any]:
        """The plan after ``done`` epochs, the last of them just measured."""
        now = self.clock()
        training = self._last_batch_end - self._epoch_start
        scoring = now - self._last_batch_end
        if self.plan is None:
            if self._batches > 1:  # the first step traces: a one-off
                training = (training - self._first_step) * self._batches / (self._batches - 1)
            steps = self._batches
            passes = FINISH_SCORING_PASSES + TEST_SCORING_FACTOR * self.test_fraction
            finishing = max(scoring * passes, FINISH_MIN_SECONDS)
        else:
            steps = self.plan["steps_per_epoch"]
            self._costs.append((training, scoring))
            # The longest: a plan cut later stops the schedule before its end, so it errs short
            training, scoring = max(self._costs[-RECENT_EPOCHS:], key=sum)
            # Kept: the finishing steps build and trace models again, as the first epoch's
            # scoring did, which later epochs' scoring no longer shows.
            finishing = self.plan["finishing_seconds"]
        epoch_seconds = training + scoring
        elapsed = now - self.started
        left = self.seconds - elapsed - finishing
        more = max(math.floor(left / max(epoch_seconds, 1e-9)), 0)
        planned, last_steps = min(done + more, self.max_epochs), steps
        # What the whole epochs leave: a shorter last epoch, if it trains as long as it scores.
        spare = left - more * epoch_seconds - scoring
        if planned < self.max_epochs and spare >= scoring:
            last_steps = min(math.floor(spare / max(training, 1e-9) * steps), steps)
            if last_steps > 0:
                planned += 1
        plan = {
            "budget_seconds": self.seconds,
            "planned_epochs": planned,
            "steps_per_epoch": steps,
            "last_epoch_steps": last_steps,
            "measured_after_epoch": done,
            "elapsed_seconds": round(elapsed, 2),
            "epoch_seconds": round(epoch_seconds, 2),
            "scoring_seconds": round(scoring, 2),
            "finishing_seconds": round(finishing, 2),
        }
        training_left = (planned_length(plan) - done) * training
        scoring_left = (planned - done) * scoring
        plan["planned_seconds"] = round(elapsed + training_left + scoring_left + finishing, 2)
        return plan

    def describe_plan(self) -> str:
        plan = self.plan
        line = (
            f"\nTime budget {format_duration(plan['budget_seconds'])}, after epoch "
            f"{plan['measured_after_epoch']}: an epoch costs "
            f"{plan['epoch_seconds']:.1f} s (scoring {plan['scoring_seconds']:.1f} s), finishing "
            f"~{plan['finishing_seconds']:.1f} s: {plan['planned_epochs']} epoch(s) planned"
            f"{describe_last_epoch(plan)}, "
            f"ending at ~{format_duration(plan['planned_seconds'])}"
        )
        if plan["planned_epochs"] == self.max_epochs:
            line += f" (EPOCHS = {self.max_epochs} is the maximum)"
        if plan["planned_seconds"] > plan["budget_seconds"]:
            line += "; the budget is too small for more than the epoch done"
        return line + "."

    def report(self) -> dict[str, Any]:
        """For run_info.json: the plan, the actual seconds of this process (and of its finishing
        steps, after the last epoch it trained), whether resumed."""
        self._take_carry()  # a resumed run whose epochs were all done trains nothing
        now = self.clock()
        plan = self.plan or {"budget_seconds": self.seconds}
        actual = {"actual_seconds": round(now - self.started, 2)}
        if self._trained_until is not None:
            actual["actual_finishing_seconds"] = round(now - self._trained_until, 2)
        return {**plan, **actual, "resumed": self.resumed}


def make_budget(config: dict[str, Any], splits, started: float | None = None) -> TimeBudget | None:
    """The run's TimeBudget (None without TIME_BUDGET); its clock started at ``started`` (a
    ``time.perf_counter`` value), by default now."""
    seconds = parse_duration(config["TIME_BUDGET"])
    if seconds is None:
        return None
    test = len(splits.test) if getattr(splits, "test", None) is not None else 0
    fraction = test / max(len(splits.valid), 1)
    return TimeBudget(seconds, config["EPOCHS"], fraction, started=started)
