"""One trial = one ordinary training run, in this process, pruned per epoch.

Trials run through :func:`cnnhub.runner.train_models`, the function ``run_training.py`` calls, so
each trial is a normal run folder (``model_repository/<study>/trial_<n>/``) that every command
reads. In-process rather than a subprocess per trial: a fresh Python with TensorFlow takes
seconds to start, and frozen-backbone trials can share the backbone's features
(:func:`cnnhub.run_hooks.feature_memo`).

The pruner sees the metric the run's validation scorer puts in each epoch's logs
(:class:`PruningCheck`, run after the epoch's commit point); a pruned trial stops like early
stopping does, so its run folder is complete up to its last epoch, and the trial is PRUNED.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from cnnhub import run_hooks, run_lock
from cnnhub.errors import CnnhubError
from cnnhub.run_folder import TRAINING_LOG
from cnnhub.tuning import space as search_space
from cnnhub.tuning.storage import owner


def study_metric(config: dict[str, Any], metric: str = "auto") -> tuple[str, str]:
    """The training.log column a study optimises, and ``maximize`` or ``minimize``.

    ``auto`` is the task's epoch metric on validation (``val_accuracy``; ``val_mae`` for
    regression); ``val_loss`` works for every task.
    """
    from cnnhub.tasks import get_task  # lazy: the task modules load the evaluation stack

    task = get_task(config)
    own = f"val_{task.epoch_metric}"
    if metric in ("auto", own):
        return own, "maximize" if task.higher_is_better else "minimize"
    if metric == "val_loss":
        return metric, "minimize"
    raise CnnhubError(
        f"--metric must be auto, {own} or val_loss for task {config['TASK']}. "
        f"Received: metric={metric!r}"
    )


class InvalidTrial(CnnhubError):
    """The sampled combination is not a valid configuration: the trial fails, the study goes on."""


class PruningCheck(keras.callbacks.Callback):
    """Report each epoch's ``metric`` to the trial; stop training when the pruner says so."""

    def __init__(self, trial, metric: str, epochs: int):
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.epochs = epochs
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), step=epoch + 1)
        # After the last epoch there is nothing left to save: the trial is complete.
        if epoch + 1 < self.epochs and self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True
            print(f"\nTrial {self.trial.number} pruned after epoch {epoch + 1}.", flush=True)


def best_value(run: Path, metric: str, direction: str) -> float:
    """The best epoch's ``metric`` in the run's training.log (``direction``: maximize or
    minimize)."""
    column = pd.read_csv(run / TRAINING_LOG)[metric]
    return float(column.max() if direction == "maximize" else column.min())


class Objective:
    """Optuna's objective: sample a config, train it as ``trial_<n>``, return the best metric.

    ``train`` is :func:`cnnhub.runner.train_models` (a parameter so benchmarks can time it).
    ``seconds`` collects, per trial number, the time spent in ``train`` (the rest of a trial's
    time is the tuner's overhead).
    """

    def __init__(
        self,
        base: dict[str, Any],
        dimensions: list[search_space.Dimension],
        study_dir: Path,
        metric: str,
        direction: str,
        train: Callable[[dict[str, Any]], list[Path]],
    ):
        self.base = base
        self.dimensions = dimensions
        self.study_dir = Path(study_dir)
        self.metric = metric
        self.direction = direction
        self.train = train
        self.features: dict = {}  # backbone features shared by frozen-backbone trials
        self.seconds: dict[int, float] = {}

    def __call__(self, trial) -> float:
        import optuna  # lazy: heavy import, kept off the --help path

        for key, value in owner().items():
            trial.set_user_attr(key, value)
        values = {d.name: d.suggest(trial) for d in self.dimensions}
        name = f"trial_{trial.number}"
        try:
            config = search_space.apply(dict(self.base, ITERATION_NAME=name), values)
        except CnnhubError as exc:
            message = " ".join(str(exc).split())
            trial.set_user_attr("error", message)
            print(f"Trial {trial.number} skipped: {message}", flush=True)
            raise InvalidTrial(message) from None
        # Known before training, so a trial whose process dies still names its partial folder.
        trial.set_user_attr("run", str(self.study_dir / name))
        check = PruningCheck(trial, self.metric, config["EPOCHS"])
        started = time.perf_counter()
        try:
            with (
                run_hooks.run_repository(self.study_dir),
                run_hooks.epoch_checks(lambda run, config: check),
                run_hooks.feature_memo(self.features),
            ):
                runs = self.train(config)
        finally:
            self.seconds[trial.number] = time.perf_counter() - started
            run_lock.release_all()
            # Keras names and graphs of earlier trials would pile up; a full gc.collect() here
            # takes over a second with TensorFlow loaded, and Python collects them anyway.
            keras.backend.clear_session(free_memory=False)
        run = runs[0]
        best = best_value(run, self.metric, self.direction)
        trial.set_user_attr("best_" + self.metric, best)
        if check.pruned_at is not None:
            trial.set_user_attr("pruned_epoch", check.pruned_at)
            raise optuna.TrialPruned(f"pruned after epoch {check.pruned_at}")
        return best
