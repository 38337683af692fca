"""Learning tasks (``TASK``): what one image's label is, and everything that follows from it.

cnnhub trains one kind of model per run, chosen by ``--task``:

* ``single_label`` (default): one class per image; softmax, categorical cross-entropy,
  threshold precision/recall (:mod:`cnnhub.tasks.single_label`).
* ``multi_label``: a set of classes per image; one sigmoid per class
  (:mod:`cnnhub.tasks.multi_label`).
* ``regression``: one or more numbers per image; a linear output in the user's units
  (:mod:`cnnhub.tasks.regression`).

The seam. Every place that depends on what a label is asks the run's :class:`Task` object
(``get_task(config)``) instead of testing the task's name; a new task is one module with one
subclass of :class:`cnnhub.tasks.base.Task`, registered in :data:`TASKS`. What a task owns
(see the base class for each method's contract):

==========================  ==================================================================
config                      ``check_config``: refuse options that do not apply (one line,
                            exit 2, before training) and resolve the task's ``auto`` values
                            (``LOSS``, ``BEST_WEIGHT_RULE``, ``EVAL_TOP_METRIC``)
data                        ``label_source``: a read :class:`~cnnhub.data.sources.DataSource`
                            to the task's labels (``DataSource.targets``: float32 per-sample
                            model targets; None = the integer ``labels``, one-hot encoded);
                            ``stratified``: whether splits and folds keep class proportions
model                       ``output_layers`` (the head's last layers), ``prepare_model``
                            (fit anything the output needs from the training targets)
training                    ``make_loss``, ``compile_arguments``, ``epoch_metric`` (the
                            training.log metric, and the number in each weights file's name),
                            ``validation_logs`` (val_loss and val_<metric> from the one
                            validation pass per epoch)
scoring                     ``write_reports`` (one weights file's CSVs and analysis-report
                            rows), ``analysis_report``, ``choose_best`` (+ plots of the best
                            weights), ``plot_by_epoch``, ``headline_columns``/
                            ``headline_figures``/``ranking`` (summaries, ``compare``, folds),
                            ``print_table``/``print_choice``, ``evaluation_summary``/
                            ``print_evaluation`` (evaluations other than the run's own),
                            ``top_metric``, ``report_columns``, ``thresholded``
use                         ``predict_threshold``, ``predictions_frame``, ``format_predictions``,
                            ``prediction_counts`` (predict); ``export_info``,
                            ``export_check`` (export's metadata and verification)
==========================  ==================================================================

The run's task is saved in ``run_config.json`` (``TASK``); a run folder written before tasks
existed has none and is ``single_label``. Runs keep their model outputs in the columns of
``index_class_mapping.json``: class names for the classification tasks, target names for
regression, so every "number of classes" in cnnhub is the model's number of outputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from cnnhub.tasks.base import Task

TASK_NAMES = ("single_label", "multi_label", "regression")
"""Values of ``TASK`` (``--task``)."""

DEFAULT_TASK = "single_label"


TASKS = {
    "single_label": "cnnhub.tasks.single_label:SingleLabel",
    "multi_label": "cnnhub.tasks.multi_label:MultiLabel",
    "regression": "cnnhub.tasks.regression:Regression",
}
"""The registry: task name -> ``module:class`` of its :class:`Task`. Implementations are
imported by name on first use: they depend on the scoring, predict and export code, which in
turn asks :func:`get_task` (the low-level modules know only the :class:`Task` interface)."""


def _make(name: str) -> Task:
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


_CACHE: dict[str, Task] = {}


def get_task(config: Mapping[str, Any] | str | None = None) -> Task:
    """The :class:`Task` of a config (its ``TASK``; missing = ``single_label``) or a name."""
    from cnnhub.errors import CnnhubError

    if config is None:
        name = DEFAULT_TASK
    elif isinstance(config, str):
        name = config
    else:
        name = config.get("TASK", DEFAULT_TASK) if hasattr(config, "get") else config["TASK"]
    if name not in TASK_NAMES:
        raise CnnhubError(f"`task` must be one of {', '.join(TASK_NAMES)}. Received: task={name!r}")
    if name not in _CACHE:
        _CACHE[name] = _make(name)
    return _CACHE[name]


__all__ = ["DEFAULT_TASK", "TASKS", "TASK_NAMES", "Task", "get_task"]
