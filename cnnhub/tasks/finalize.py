"""``Task.finalize`` from the task's hooks, for the tasks whose best weights need nothing but
them (multi_label, regression; single_label adds calibration and threshold plots).

A module of its own, not in :mod:`cnnhub.tasks.base`: it reaches the scoring code, which
imports :mod:`cnnhub.tasks`, and only the task modules that :func:`cnnhub.tasks.get_task` loads
by name import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnhub.tasks.base import Task


class FinalizedByHooks(Task):
    """A task whose ``finalize`` is :meth:`choose_best`, :meth:`plot_by_epoch`,
    ``best_model.keras``, ``best_weights.json``, :meth:`print_table` and :meth:`print_choice`."""

    def finalize(self, run_dir: Path, config: Mapping[str, Any], model=None) -> dict[str, Any]:
        from cnnhub import atomic
        from cnnhub.evaluation.reporting import VALIDATION
        from cnnhub.evaluation.run_evaluation import save_best_model
        from cnnhub.evaluation.safe_csv import read_csv_safe
        from cnnhub.run_folder import RunFolder

        folder = RunFolder(Path(run_dir))
        report = read_csv_safe(folder.analysis_report)
        best = self.choose_best(report, folder.model_logs, config)
        self.plot_by_epoch(report, best, folder.analysis_metrics_png)
        outputs = len(folder.read_class_names())
        save_best_model(run_dir, config, model, best["weights"], outputs)
        atomic.write_json(folder.best_weights, best)
        self.print_table(report, VALIDATION, best)
        self.print_choice(report, best)
        return best
