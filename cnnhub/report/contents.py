"""What a run's report shows, read from its run folder (:mod:`cnnhub.run_folder`) and nothing else.

:func:`gather` returns a :class:`ReportContents`: every part is optional, because a run holds
what its task, its settings and the commands run on it wrote (no post-evaluation, no held-out
data, no export yet, an older cnnhub version); the page and the model card show the parts found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnnhub.errors import CnnhubError
from cnnhub.run_folder import Run, open_run, weights_stem
from cnnhub.settings import load_defaults

TASK_KEY = "TASK"
"""The config key naming a run's task (classification when absent)."""
GALLERY_SIZE = 12
"""Most confident errors shown in the gallery."""
NOT_SETTINGS = frozenset({"ITERATION_NAME", "VERBOSE"})
"""Keys left out of "settings that differ from the defaults": they name, not shape, the run."""


@dataclass
class ReportContents:
    """Everything the report and the model card show (None / empty: not in the run folder)."""

    run: Run
    task: str
    info: dict[str, Any]
    changed_settings: dict[str, tuple[Any, Any]]
    log: pd.DataFrame | None = None
    report: pd.DataFrame | None = None
    best: dict[str, Any] | None = None
    chosen: dict[str, pd.DataFrame] = field(default_factory=dict)
    uncalibrated: pd.DataFrame | None = None
    skipped: pd.DataFrame | None = None
    evaluations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return self.run.class_names

    @property
    def output_word(self) -> str:
        """What the model's outputs are called: ``target`` (regression) or ``class``."""
        return "target" if self.task == "regression" else "class"

    @property
    def config(self) -> dict[str, Any]:
        return self.run.config

    @property
    def threshold(self) -> float | None:
        """The deploy threshold (None: not chosen yet, or a task without one)."""
        value = (self.best or {}).get("threshold")
        return None if value is None else float(value)

    @property
    def calibration(self) -> dict[str, Any] | None:
        calibration = (self.best or {}).get("calibration")
        return calibration if isinstance(calibration, dict) else None

    def epoch_table(self) -> pd.DataFrame | None:
        """One row per epoch: training.log's columns and the analysis report's figures of that
        epoch's validation reports (``report_*``): at threshold 0 when the report has one row
        per threshold (accuracy, macro F1, log loss, ECE), else every figure of its row."""
        frames = []
        if self.log is not None:
            frames.append(self.log.set_index("epoch"))
        if self.report is not None:
            rows = self.report
            if "threshold" in rows:
                rows = rows[np.isclose(rows["threshold"], 0.0, rtol=0, atol=1e-9)]
                wanted = [c for c in ("accuracy", "f1_macro", "log_loss", "ece") if c in rows]
            else:
                wanted = [
                    c for c in rows.columns
                    if c not in ("weights_name", "epoch") and pd.api.types.is_numeric_dtype(rows[c])
                ]  # fmt: skip
            scores = rows.drop_duplicates("epoch").set_index("epoch")[wanted]
            frames.append(scores.rename(columns={c: f"report_{c}" for c in wanted}))
        if not frames:
            return None
        table = pd.concat(frames, axis=1).sort_index()
        table.index.name = "epoch"
        return table.reset_index()

    def validation_figures(self) -> dict[str, float] | None:
        """The headline figures of the chosen weights on validation, from their (calibrated,
        when the run was) threshold table: what the deployed model does at its threshold."""
        overall = self.chosen.get("thresholds")
        if overall is None or self.threshold is None:
            return None
        from cnnhub.evaluation.headline import headline_figures

        rows = overall.assign(weights_name=self.best["weights"])
        return headline_figures(rows, self.best["weights"], float(self.best["threshold"]))

    def per_class_at_threshold(self) -> pd.DataFrame | None:
        """The chosen weights' per-class table at the deploy threshold."""
        classes = self.chosen.get("classes")
        if classes is None or self.threshold is None or "threshold" not in classes:
            return None
        rows = classes[np.isclose(classes["threshold"], self.threshold, rtol=0, atol=1e-9)]
        return rows.reset_index(drop=True)

    def confident_errors(self, count: int = GALLERY_SIZE) -> pd.DataFrame:
        """The ``count`` most confidently wrong validation images of the chosen weights."""
        predictions = self.chosen.get("predictions")
        if predictions is None or "correct" not in predictions:
            return pd.DataFrame(columns=["image_path", "actual", "predicted", "confidence"])
        wrong = predictions[predictions["correct"] == 0]
        return wrong.sort_values("confidence", ascending=False, kind="mergesort").head(count)


def changed_settings(config: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (value, packaged default)}`` for every setting of the run that differs from
    cnnhub's packaged defaults (``auto`` values resolved by the run count as changed)."""
    defaults, _ = load_defaults(user_config=False)
    return {
        key: (value, defaults[key])
        for key, value in sorted(config.items())
        if key in defaults and key not in NOT_SETTINGS and value != defaults[key]
    }


def gather(run_dir: str | os.PathLike) -> ReportContents:
    """Read everything the report shows from the run folder ``run_dir``.

    Raises:
        CnnhubError: not a run folder, or a file it holds is damaged.
    """
    run = open_run(run_dir)
    folder = run.folder
    info = folder.read_info() if folder.run_info.is_file() else {}
    contents = ReportContents(
        run=run,
        task=str(run.config.get(TASK_KEY, "classification")),
        info=info,
        changed_settings=changed_settings(run.config),
        best=run.best,
    )
    if folder.training_log.is_file():
        contents.log = folder.read_training_log()
    if folder.analysis_report.is_file():
        contents.report = folder.read_report()
    if run.best is not None:
        contents.chosen = folder.weights_reports(folder.chosen_stem(run.best))
        if contents.calibration is not None:
            own = folder.weights_reports(weights_stem(run.best["weights"]))
            contents.uncalibrated = own.get("predictions")
    contents.skipped = folder.read_skipped()
    contents.evaluations = folder.read_evaluations()
    contents.exports = folder.read_exports()
    return contents


def image_file(run: Run, path: str) -> Path | None:
    """A validation image of the report's gallery, when it is still a readable file."""
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = run.path / candidate
    try:
        return candidate if candidate.is_file() else None
    except (OSError, CnnhubError):
        return None
