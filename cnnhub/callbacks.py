"""Keras callbacks that make a run folder: validation scoring, per-epoch weights, logs, plots.

Order matters and ``training.fit`` fixes it: ``ValidationScorer`` runs first and
puts ``val_loss``/``val_accuracy`` into the epoch's logs, so every later callback (early
stopping, learning-rate plateau, checkpoint names, TensorBoard) sees them. Validation is one
batched inference-mode pass per epoch whose predictions are kept for per-epoch reports, instead
of Keras's own validation pass plus a second prediction pass.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from cnnhub import atomic
from cnnhub.evaluation.tta import with_tta
from cnnhub.run_folder import LOG_COLUMNS  # single_label's training.log columns


def current_learning_rate(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class ValidationScorer(keras.callbacks.Callback):
    """Predict the validation set once per epoch; add the task's val_loss and
    val_<metric> (single_label: val_accuracy) to the logs.

    The epoch's model outputs (class probabilities, regression values) stay in
    ``probabilities`` for later callbacks (per-epoch reports). With ``tta`` views
    (``cnnhub.evaluation.tta``) they are averaged over the views.
    """

    def __init__(
        self, dataset, labels: np.ndarray, loss_fn, task=None, tta: list[str] | None = None
    ):
        super().__init__()
        from cnnhub.tasks import get_task  # lazy: heavy import, kept off the --help path

        self.dataset = dataset
        self.labels = np.asarray(labels)  # the split's model_targets()
        self.loss_fn = loss_fn
        self.task = task or get_task()
        self.tta = tta or []
        self.probabilities: np.ndarray | None = None
        self._scoring = None

    def on_train_begin(self, logs=None):
        self._scoring = with_tta(self.model, self.tta)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        proba = (self._scoring or self.model).predict(self.dataset, verbose=0)
        logs.update(self.task.validation_logs(proba, self.labels, self.loss_fn, self.model))
        self.probabilities = proba


def weights_file_name(epoch: int, val_accuracy: float) -> str:
    """The per-epoch weights file name; epochs are numbered from 1. The number is the epoch's
    validation metric (the task's: val_accuracy for single_label, val_mae for regression)."""
    return f"weights-{epoch:03d}-{val_accuracy:.4f}.weights.h5"


class EpochCheckpoint(keras.callbacks.Callback):
    """Save every epoch's weights as ``weights-{epoch:03d}-{<metric>:.4f}.weights.h5``
    (``metric``: the log entry in the name, val_accuracy unless the task says otherwise).

    Written to a temporary file and renamed, so a crash never leaves a truncated weights file.
    """

    def __init__(self, folder: Path, source=None, metric: str = "val_accuracy"):
        super().__init__()
        self.folder = Path(folder)
        self.source = source  # the model whose weights are saved; default: the one training
        self.metric = metric
        self.saved: dict[int, Path] = {}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.folder / weights_file_name(epoch + 1, logs.get(self.metric, 0.0))
        with atomic.atomic_path(path) as tmp:
            (self.source or self.model).save_weights(tmp)
        self.saved[epoch + 1] = path

    def path_of(self, epoch: int) -> Path:
        """The weights file of a 1-based ``epoch``, also for epochs saved before a restart."""
        if epoch not in self.saved:
            self.saved[epoch] = next(self.folder.glob(f"weights-{epoch:03d}-*.weights.h5"))
        return self.saved[epoch]


class TrainingLog(keras.callbacks.Callback):
    """``training.log``: one CSV row per epoch, rewritten atomically after each epoch."""

    def __init__(
        self,
        path: Path,
        on_update: Callable[[pd.DataFrame], None] | None = None,
        columns: list[str] | None = None,
    ):
        super().__init__()
        self.path = Path(path)
        self.on_update = on_update
        self.columns = columns or LOG_COLUMNS  # the task's (Task.log_columns)
        self.rows: list[dict] = []
        self._started = 0.0

    def load_existing(self) -> None:
        """Continue an existing log (after a restart) instead of starting a new one."""
        if self.path.is_file():
            self.rows = pd.read_csv(self.path).to_dict("records")

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {key: logs.get(key, np.nan) for key in self.columns}
        row["epoch"] = epoch + 1
        row["learning_rate"] = current_learning_rate(self.model)
        row["seconds"] = round(time.perf_counter() - self._started, 3)
        self.rows.append(row)
        frame = pd.DataFrame(self.rows, columns=self.columns)
        atomic.write_csv(self.path, frame)
        if self.on_update is not None:
            self.on_update(frame)


# The rule of ChanceLevelWarning (see ``stuck_at_chance``).
CHANCE_FIRST_EPOCH = 2
CHANCE_MARGIN = 0.02
CHANCE_LEARNED_FRACTION = 0.25


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class of ``labels`` (1/K if balanced)."""
    counts = np.bincount(np.asarray(labels, dtype=int))
    return float(counts.max() / counts.sum()) if counts.sum() else 1.0


def stuck_at_chance(epoch: int, accuracy: float, val_accuracy: float, chance: float) -> bool:
    """True when, at 1-based ``epoch`` >= 2, validation accuracy is within 0.02 of ``chance``
    (or below it) while training accuracy has closed at least a quarter of the gap from chance
    to 1: ``accuracy >= chance + 0.25 * (1 - chance)`` (0.325 for 10 balanced classes)."""
    return (
        epoch >= CHANCE_FIRST_EPOCH
        and val_accuracy <= chance + CHANCE_MARGIN
        and accuracy >= chance + CHANCE_LEARNED_FRACTION * (1 - chance)
    )


class ChanceLevelWarning(keras.callbacks.Callback):
    """Warn (once per run, on stdout) when validation accuracy stays at chance while training
    accuracy climbs (``stuck_at_chance``): such a run's validation figures are no result.

    Reads ``accuracy`` and ``val_accuracy`` from the epoch's logs, so it runs after
    ``ValidationScorer``. ``message`` holds the warning once given.
    """

    def __init__(self, valid_labels: np.ndarray):
        super().__init__()
        self.chance = chance_accuracy(valid_labels)
        self.message: str | None = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.message is not None or "accuracy" not in logs or "val_accuracy" not in logs:
            return
        accuracy, val_accuracy = float(logs["accuracy"]), float(logs["val_accuracy"])
        if stuck_at_chance(epoch + 1, accuracy, val_accuracy, self.chance):
            self.message = (
                f"epoch {epoch + 1}: validation accuracy {val_accuracy:.3f} is at chance "
                f"({self.chance:.3f}, always the most frequent class) while training accuracy is "
                f"{accuracy:.3f}: what the model learned does not reach validation (from scratch, "
                "BatchNormalization statistics that lag behind do this), so its validation "
                "figures are no result."
            )
            print(f"\nWARNING: {self.message}", file=sys.stdout, flush=True)


class FirstBatchTimer(keras.callbacks.Callback):
    """Print the time from the command's start to the end of the first training batch."""

    def __init__(self, started: float):
        super().__init__()
        self.started = started
        self.seconds: float | None = None

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds is None:
            self.seconds = round(time.perf_counter() - self.started, 2)
            print(f"\nFirst training batch done {self.seconds:.1f} s after start-up", flush=True)


def plot_training_stats(
    frame: pd.DataFrame, path: Path, title: str, metric: str = "accuracy"
) -> None:
    """Loss and ``metric`` (the task's, e.g. accuracy or mae) per epoch, train vs validation,
    as one PNG."""
    import matplotlib  # lazy: heavy import, kept off the --help path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy import, kept off the --help path

    from cnnhub.evaluation.plots import plain_text  # lazy: heavy import, kept off the --help path

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    name = "Accuracy" if metric == "accuracy" else metric.upper()
    for ax, column, label in ((ax_loss, "loss", "Loss"), (ax_acc, metric, name)):
        ax.plot(frame["epoch"], frame[column], marker="o", label="train")
        ax.plot(frame["epoch"], frame[f"val_{column}"], marker="o", label="validation")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(plain_text(title))
    fig.tight_layout()
    atomic.save_figure(path, fig, dpi=100)
    plt.close(fig)
