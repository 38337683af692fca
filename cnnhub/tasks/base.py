"""The :class:`Task` interface: everything in cnnhub that depends on what a label is.

A subclass implements every method; :mod:`cnnhub.tasks` documents the seam as a whole. Methods
take plain values (config mappings, NumPy arrays, paths) so that each task's code can be
tested without training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class Task:
    """One learning task. Subclasses override every method below."""

    name: str = ""
    epoch_metric: str = "accuracy"
    """Keras metric logged per epoch (``training.log`` has it and ``val_<metric>``); its
    validation value is the number in each weights file's name."""
    higher_is_better: bool = True
    """Whether a larger ``val_<epoch_metric>`` is better (EVAL_WEIGHTS top:N ranks by it)."""
    stratified: bool = True
    """Whether validation splits and folds keep each class's share (StratifiedKFold)."""
    losses: tuple[str, ...] = ()
    """The LOSS values this task accepts (the first is what ``auto`` means)."""
    rules: tuple[str, ...] = ()
    """The BEST_WEIGHT_RULE values this task accepts (the first is what ``auto`` means)."""
    thresholded: bool = True
    """Whether ``best_weights.json`` holds a confidence ``threshold`` in [0, 1]."""
    label_sets: bool = False
    """Whether an image's labels are a set of classes joined in one CSV cell (multi-label): the
    readers then keep empty cells, the task reads the names file itself, and a validation or
    test split may lack a class (its column is all zeros)."""
    report_columns: tuple[str, ...] = ()
    """Columns every ``analysis_report.csv`` of this task has (checked when a run is read)."""

    # ------------------------------------------------------------------ config
    def check_config(self, config: dict[str, Any]) -> None:
        """Refuse options that do not apply to this task (``CnnhubError``, one line) and
        replace the task-dependent ``auto`` values in ``config`` (a dict, changed in place)."""
        raise NotImplementedError

    def log_columns(self) -> list[str]:
        """The columns of ``training.log``."""
        metric = self.epoch_metric
        return ["epoch", "loss", metric, "val_loss", f"val_{metric}", "learning_rate", "seconds"]

    def top_metric(self, config: Mapping[str, Any]) -> str:
        """The training.log column EVAL_WEIGHTS = top:N ranks epochs by."""
        return config["EVAL_TOP_METRIC"]

    # ------------------------------------------------------------------ data
    def label_source(self, source, options, received: str):
        """``source`` (a :class:`cnnhub.data.sources.DataSource` as read) with this task's
        labels; ``received`` is the flag and path for error messages."""
        raise NotImplementedError

    def check_training_source(self, source, path: str) -> None:
        """Refuse training data this task cannot learn from (e.g. a single class)."""

    def count_outputs(self, count: int) -> str:
        """``3 classes`` / ``1 target``: the first words of the data report."""
        return f"{count} classes"

    def label_lines(self, inspection) -> list[str]:
        """The data report's lines about the labels (:class:`cnnhub.data.inspect.Inspection`)."""
        return inspection.class_lines()

    def label_advice(self, inspection, detail: bool) -> list[str]:
        """The data report's closing advice about the labels."""
        return inspection.weights_advice(detail)

    def inspection_figures(self, inspection, folder: Path) -> list[Path]:
        """Figures ``cnnhub inspect --out`` writes about the labels; returns their paths."""
        return []

    # ------------------------------------------------------------------ model
    def output_layers(self, x, num_outputs: int, config: Mapping[str, Any]):
        """The head's last layer(s) on the features ``x``: the model's output, float32."""
        raise NotImplementedError

    def prepare_model(self, model, train_targets: np.ndarray) -> None:
        """Fit what the output needs from the training split's targets (before training)."""

    # ------------------------------------------------------------------ training
    def make_loss(self, config: Mapping[str, Any], model=None):
        """The Keras loss of the config's LOSS for ``model`` (built, prepared)."""
        raise NotImplementedError

    def compile_arguments(self, config: Mapping[str, Any], model=None) -> dict[str, Any]:
        """Extra ``model.compile`` arguments (metrics, loss weights)."""
        return {"metrics": [self.epoch_metric]}

    def validation_logs(
        self, outputs: np.ndarray, targets: np.ndarray, loss_fn, model=None
    ) -> dict:
        """``val_loss`` and ``val_<epoch_metric>`` of one validation pass of ``model``; the
        loss as training computes it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring
    def write_reports(
        self,
        folder: Path,
        stem: str,
        image_ids: Sequence[str],
        targets: np.ndarray,
        outputs: np.ndarray,
        names: Sequence[str],
        config: Mapping[str, Any],
        weights_name: str,
        epoch: int,
        best: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Score one weights file's outputs; write its CSVs into ``folder`` (named by
        ``stem``); return its rows of the analysis report. ``best`` (``best_weights.json``,
        given for held-out data) holds what was chosen on validation and must be used as is
        (multi-label: the per-class thresholds)."""
        raise NotImplementedError

    def analysis_report(self, rows):
        """The ``analysis_report.csv`` frame of report rows."""
        raise NotImplementedError

    def finalize(self, run_dir: Path, config: Mapping[str, Any], model=None) -> dict[str, Any]:
        """After the last epoch (or a full re-evaluation): choose the best weights from
        ``analysis_report.csv``; write ``best_weights.json`` (at least ``weights`` and
        ``epoch``), its plots, the metrics-by-epoch plot and ``best_model.keras`` (``model``,
        when given, is the run's model to load the weights into); print the table."""
        raise NotImplementedError

    def choose_best(self, report, logs: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        """The best weights by the run's BEST_WEIGHT_RULE (the ``best_weights.json`` content),
        with the best weights' plots written beside them in ``logs``. This hook and the two
        below serve ``finalize`` in :class:`~cnnhub.tasks.finalize.FinalizedByHooks`."""
        raise NotImplementedError

    def plot_by_epoch(self, report, best: Mapping[str, Any], path: Path) -> None:
        """The validation metrics by epoch as one PNG at ``path``, ``best``'s epoch marked."""
        raise NotImplementedError

    def print_choice(self, report, best: Mapping[str, Any]) -> None:
        """Print the line naming the chosen weights and their validation figures."""
        raise NotImplementedError

    def headline_columns(self) -> tuple[str, ...]:
        """The summary figures of one weights file (leaderboard, folds, summaries)."""
        raise NotImplementedError

    def headline_figures(self, report, weights_name: str, best: Mapping[str, Any]) -> dict:
        """:meth:`headline_columns` of ``weights_name`` in ``report`` (at ``best``'s
        threshold where there is one)."""
        raise NotImplementedError

    def print_table(self, report, role: str, best: Mapping[str, Any] | None) -> None:
        """Print each weights file's headline figures."""
        raise NotImplementedError

    def evaluation_summary(self, report, role, source, images, best, scored) -> dict[str, Any]:
        """The ``summary.json`` of an evaluation folder (see
        :func:`cnnhub.evaluation.reporting.evaluation_summary` for the arguments)."""
        raise NotImplementedError

    def print_evaluation(self, report, summary: Mapping[str, Any]) -> None:
        """The table and line of an evaluation that is not the run's own."""
        raise NotImplementedError

    def ranking(self) -> tuple[str, bool]:
        """(headline column, higher is better) that ranks runs in ``compare``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ use
    def check_command(self, command: str, run: str) -> None:
        """Refuse (one line) a ``cnnhub`` command that does not apply to this task's runs."""

    def predict_threshold(self, run, spec: str, weights) -> float | None:
        """predict's ``--threshold`` (``best`` or a number) for ``run``."""
        raise NotImplementedError

    def predictions_frame(self, paths, outputs, errors, names, top_k: int, threshold):
        """predict's table: one row per image (``image_path`` first, ``error`` last)."""
        raise NotImplementedError

    def format_predictions(self, frame, top_k: int) -> str:
        """predict's table for the terminal."""
        raise NotImplementedError

    def prediction_counts(self, frame, threshold) -> str:
        """predict's summary of the rows, e.g. ``5 labelled, 1 uncertain (threshold 0.5)``."""
        raise NotImplementedError

    def explained_output(self, requested: int | None) -> int | None:
        """The output index Grad-CAM explains when ``--class`` gave ``requested`` (None: the
        task's default; None back means the predicted class)."""
        return requested

    def describe_output(self, name: str, value: float) -> str:
        """One output and its value in words (Grad-CAM titles)."""
        return f"class: {name} (p={value:.3f})"

    def export_info(self, threshold) -> dict[str, str]:
        """An exported model's ``output`` meaning and ``decision`` rule (metadata.json)."""
        raise NotImplementedError

    def export_check(
        self, fmt, reference, exported, threshold, class_names, allow_flips=False
    ) -> dict:
        """Compare an export's outputs with the Keras model's on the same images:
        ``max_abs_diff``, ``agreement`` (named ``agreement_name`` in metadata.json),
        ``limit`` (the rule, in words), ``problem`` (None when it passes), ``check`` and
        ``verification`` (more keys for check.json and metadata.json) and ``text``."""
        raise NotImplementedError
