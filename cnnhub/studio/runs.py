"""Runs page: the leaderboard of every run under the root, and one run in detail.

Everything is read from the run folders with the engine's readers (:mod:`cnnhub.run_folder`,
:func:`cnnhub.compare.leaderboard`); nothing here scores a model again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.data.images import UnreadableImage, load_image
from cnnhub.errors import CnnhubError
from cnnhub.run_folder import (
    ANALYSIS_REPORT,
    BEST_WEIGHTS,
    CLASS_MAPPING,
    RUN_CONFIG,
    RUN_INFO,
    TRAINING_LOG,
)
from cnnhub.studio.workspace import Workspace

ERRORS_SHOWN = 8
THUMBNAIL = (96, 96)


# The files a leaderboard row is made of (cnnhub.compare.leaderboard_row).
ROW_FILES = (RUN_CONFIG, BEST_WEIGHTS, RUN_INFO, ANALYSIS_REPORT, TRAINING_LOG, CLASS_MAPPING)
_rows: dict[Path, tuple[tuple, Any]] = {}
_rows_lock = threading.Lock()


def _signature(run: Path) -> tuple:
    signature = []
    for name in ROW_FILES:
        try:
            stat = (run / name).stat()
            signature.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            signature.append(None)
    return tuple(signature)


def remembered_row(run: Path):
    """:func:`cnnhub.compare.leaderboard_row`, computed again only when one of the run's
    files changed: with a hundred runs the page then answers from memory."""
    from cnnhub.compare import leaderboard_row

    key, signature = run.resolve(), _signature(run)
    with _rows_lock:
        cached = _rows.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    row = leaderboard_row(run)  # a CnnhubError (damaged run) is not remembered
    with _rows_lock:
        _rows[key] = (signature, row)
    return row


def leaderboard(workspace: Workspace):
    """``(table, message)``: the leaderboard (as ``cnnhub compare``, nothing written)."""
    import pandas as pd  # lazy: heavy import

    from cnnhub.compare import leaderboard as board

    try:
        return board(workspace.repository, remembered_row), ""
    except CnnhubError as exc:
        return pd.DataFrame(), " ".join(str(exc).split())


def run_names(workspace: Workspace) -> list[str]:
    """Every run folder's name, newest first."""
    runs = workspace.run_folders()
    return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


@dataclass
class RunDetail:
    """One run as the Runs page shows it."""

    name: str
    epochs: Any  # DataFrame: training.log
    curves: Path | None
    epoch_choices: list[int]
    epoch: int | None
    best_text: str
    thresholds: Any  # DataFrame: precision and coverage per threshold for ``epoch``
    thresholds_png: Path | None
    confusion: Any  # DataFrame
    per_class: Any  # DataFrame at the deploy threshold
    errors: list[tuple[np.ndarray, str]] = field(default_factory=list)


def run_detail(workspace: Workspace, name: str, epoch: Any = None) -> RunDetail:
    """Curves, per-epoch table, and for ``epoch`` (default: the best) its threshold table,
    confusion matrix, per-class table and most confident errors."""
    import pandas as pd  # lazy: heavy import

    from cnnhub.evaluation.multilabel_reports import multilabel_report_paths
    from cnnhub.evaluation.plots import plot_threshold_curves
    from cnnhub.evaluation.writer import plot_paths, report_paths
    from cnnhub.run_folder import open_run
    from cnnhub.tasks import get_task

    run = open_run(workspace.run(name))
    folder = run.folder
    epochs = folder.read_training_log() if folder.training_log.is_file() else pd.DataFrame()
    weights = run.epoch_weights()
    best = run.best or {}
    chosen = _epoch(epoch, best, weights)
    empty = pd.DataFrame()
    detail = RunDetail(
        name=run.name,
        epochs=epochs,
        curves=folder.stats_png if folder.stats_png.is_file() else None,
        epoch_choices=sorted(weights),
        epoch=chosen,
        best_text=_best_text(best),
        thresholds=empty, thresholds_png=None, confusion=empty, per_class=empty,
    )  # fmt: skip
    if chosen is None:
        return detail
    stem = weights[chosen].name.removesuffix(".weights.h5")
    csvs = report_paths(run.model_logs, stem)
    if not csvs["thresholds"].is_file():
        return detail  # not post-evaluated
    if get_task(run.config).label_sets:  # multi-label: a threshold per class, no confusion
        files = multilabel_report_paths(run.model_logs, stem)
        detail.thresholds = folder.read_csv(files["thresholds"], ["threshold", "f1_micro"])
        detail.per_class = folder.read_csv(files["class_thresholds"], ["class", "threshold"])
        predictions = folder.read_csv(files["predictions"], ["image_path", "actual", "predicted"])
        detail.errors = confident_errors(predictions)  # wrong label sets
        return detail
    overall = folder.read_csv(csvs["thresholds"], ["threshold", "coverage", "precision_micro"])
    detail.thresholds = overall
    png = plot_paths(run.model_logs, stem)["thresholds"]
    if not png.is_file():
        png = workspace.studio_dir / "plots" / run.name / f"{stem}-thresholds.png"
        if not png.is_file():
            png.parent.mkdir(parents=True, exist_ok=True)
            plot_threshold_curves(overall, png, f"{run.name}, epoch {chosen}")
    detail.thresholds_png = png
    detail.confusion = folder.read_csv(csvs["confusion"], [])
    threshold = float(best.get("threshold", 0.0)) if best else 0.0
    per_class = folder.read_csv(csvs["classes"], ["threshold"])
    nearest = per_class["threshold"].sub(threshold).abs().min()
    detail.per_class = per_class[per_class["threshold"].sub(threshold).abs() == nearest]
    predictions = folder.read_csv(csvs["predictions"], ["image_path", "actual", "predicted"])
    detail.errors = confident_errors(predictions)
    return detail


def _epoch(epoch: Any, best: dict, weights: dict[int, Path]) -> int | None:
    if epoch not in (None, ""):
        value = int(epoch)
        if value not in weights:
            raise CnnhubError(
                f"`epoch` must be one of the run's epochs {sorted(weights)}. Received: {epoch}"
            )
        return value
    if isinstance(best.get("epoch"), (int, float)) and int(best["epoch"]) in weights:
        return int(best["epoch"])
    return max(weights) if weights else None


def _best_text(best: dict) -> str:
    if not best:
        return "Not post-evaluated yet: no best weights or threshold chosen."
    if best.get("class_thresholds"):
        cuts = ", ".join(f"{k} {v:g}" for k, v in best["class_thresholds"].items())
        return (
            f"Best weights: {best.get('weights')} (epoch {best.get('epoch')}); a threshold per "
            f"class: {cuts}; chosen by the rule {best.get('rule')} (value {best.get('value')})."
        )
    return (
        f"Best weights: {best.get('weights')} (epoch {best.get('epoch')}); deploy threshold "
        f"{best.get('threshold')}; chosen by the rule {best.get('rule')} "
        f"(value {best.get('value')})."
    )


def confident_errors(predictions, count: int = ERRORS_SHOWN) -> list[tuple[np.ndarray, str]]:
    """Thumbnails of the most confidently wrong images, captioned actual -> predicted."""
    wrong = predictions[predictions["actual"].astype(str) != predictions["predicted"].astype(str)]
    if "confidence" in wrong.columns:
        wrong = wrong.sort_values("confidence", ascending=False, kind="stable")
    shown = []
    for _, row in wrong.iterrows():
        if len(shown) >= count:
            break
        try:
            image = load_image(str(row["image_path"]), size=THUMBNAIL, channels=3)
        except UnreadableImage:
            continue
        confidence = row.get("confidence", float("nan"))
        shown.append((image, f"{row['actual']} -> {row['predicted']} ({float(confidence):.2f})"))
    return shown

