"""Stratified K-fold cross-validation (``FOLDS = K``): one run per fold under one parent folder.

Layout (``create_run_folder`` always makes ``<save location>/model_repository/<name>``, so the
fold runs use the parent as their save location)::

    <save>/model_repository/<parent>/
        folds.csv                      path,label,fold: the fold (1..K) of every listed sample
        folds_summary.csv              one row per fold, then mean and std
        model_repository/fold_1/       an ordinary run folder; its split.csv is that fold's
        ...                            train/valid split (reusable with --split_file)

The parent is named by ``--run_name``, else ``<model>-<K>fold`` (``-2``, ``-3``... when taken).
Because the fold runs are ordinary runs, ``cnnhub compare <parent>/model_repository`` ranks
them. Folds are assigned on every listed sample (unreadable files included, then left out) by
scikit-learn's seeded ``StratifiedKFold``, so each class is spread evenly and fold sizes differ
by at most one. Every class needs at least K samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnnhub import atomic
from cnnhub.configuration import replace as replace_config
from cnnhub.data.class_weights import resolve_class_weight
from cnnhub.data.scan import scan_source
from cnnhub.data.sets import (
    DataOptions,
    Splits,
    check_class_names,
    check_classes_present,
    dev_subset,
    finish_splits,
    inspect_clean,
    load_test,
    read_source,
)
from cnnhub.data.sources import DataSource
from cnnhub.data.splits import assign_folds, split_frame
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.headline import HEADLINE_COLUMNS
from cnnhub.evaluation.safe_csv import read_csv_safe, write_csv_safe
from cnnhub.run_folder import ANALYSIS_REPORT, SUMMARY, RunFolder, claim_folder, repository_root
from cnnhub.tasks import get_task

FOLDS_CSV = "folds.csv"
FOLDS_SUMMARY = "folds_summary.csv"
"""The cross-validation parent's own files (its fold runs are ordinary run folders)."""

SUMMARY_COLUMNS = ["fold", "run", "best_weights", "best_epoch", *HEADLINE_COLUMNS, "val_loss"]
"""The columns of a single_label summary (other tasks: their headline columns instead of
HEADLINE_COLUMNS). Then, per held-out set ``<name>`` a fold was scored on,
``test_<figure>[<name>]`` for each headline figure (single_label: those of
:data:`~cnnhub.evaluation.headline.HEADLINE_FIGURES`)."""


@dataclass
class FoldPlan:
    """Everything checked before the first fold trains; ``splits(k)`` builds fold k (0-based)."""

    k: int
    class_names: list[str]
    listing: Any  # the training DataSource as read (every listed sample)
    fold_of: np.ndarray  # per listed sample
    clean: DataSource  # the listing without unreadable files
    clean_fold: np.ndarray  # per clean sample
    test: DataSource | None
    options: DataOptions
    inspection: Any

    def folds_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "path": self.listing.keys,
                "label": [self.class_names[i] for i in self.listing.labels],
                "fold": self.fold_of + 1,
            }
        )

    def _parts(self, k: int):
        train = self.clean.subset(np.flatnonzero(self.clean_fold != k))
        valid = self.clean.subset(np.flatnonzero(self.clean_fold == k))
        if self.options.dev:
            train = dev_subset(train, self.options.dev, self.options.seed, "train")
            valid = dev_subset(valid, self.options.dev, self.options.seed, "valid")
        return train, valid

    def splits(self, k: int) -> Splits:
        train, valid = self._parts(k)
        valid_keys = [key for key, f in zip(self.listing.keys, self.fold_of) if f == k]
        return finish_splits(
            self.class_names,
            replace(train, scan=self.clean.scan),  # each fold run lists the skipped files
            valid,
            self.test,
            self.options,
            frame=split_frame(self.listing, valid_keys),
        )


def plan_folds(config: dict[str, Any], inspect: bool = True) -> FoldPlan:
    """Read, fold, decode-check and check the training data for ``FOLDS`` runs."""
    options = DataOptions.from_config(config)
    k = options.folds
    train_dir = config["DATA_DIR_TRAIN"]
    listing = read_source(train_dir, "train", options)
    check_class_names(listing, f"-dtrain {train_dir}")
    test = load_test(config["DATA_DIR_TEST"], listing, options)
    counts = listing.class_counts()
    too_few = [f"{listing.class_names[i]} ({counts[i]})" for i in np.flatnonzero(counts < k)]
    if too_few:
        raise CnnhubError(
            f"`folds`={k} needs at least {k} images in every class so each fold validates every "
            f"class; too few in: {', '.join(too_few)}. Lower `folds` or add images. "
            f"Received: folds={k}"
        )
    fold_of = assign_folds(listing.labels, k, options.seed, get_task(options.task).stratified)
    clean = scan_source(listing, options.scan_cache, options.channels)
    check_classes_present(
        clean, len(clean.skipped), f"training data `{train_dir}`", f"-dtrain {train_dir}"
    )
    fold_by_key = dict(zip(listing.keys, fold_of))
    clean_fold = np.array([fold_by_key[key] for key in clean.keys], dtype=np.int64)
    plan = FoldPlan(
        k, list(listing.class_names), listing, fold_of, clean, clean_fold, test, options, None
    )
    for fold in range(k):  # every fold's checks now, before any run folder exists
        train, valid = plan._parts(fold)
        for part, role in ((train, "training"), (valid, "validation")):
            check_classes_present(
                part,
                len(clean.skipped),
                f"{role} part of fold {fold + 1} of `{train_dir}`",
                f"folds={k}",
            )

    resolve_class_weight(options.class_weight, plan.class_names, clean.class_counts())
    if inspect:
        plan.inspection = inspect_clean({"train": clean, "test": test}, options)
    return plan


def create_parent(save_location: str, run_name: str, model_name: str, k: int, overwrite=False):
    """Make (and lock) the parent folder of a cross-validation (see the module docstring)."""

    return claim_folder(
        repository_root(save_location), run_name, f"{model_name}-{k}fold", overwrite
    )


def run_folds(
    config: dict[str, Any],
    plan: FoldPlan,
    train_fold: Callable[[dict[str, Any], Splits], Path],
    overwrite: bool = False,
) -> Path:
    """Train every fold with ``train_fold(config, splits)``; write folds.csv and the summary."""

    parent = create_parent(
        config["SAVE_LOCATION"], config["ITERATION_NAME"], config["MODEL_NAME"], plan.k, overwrite
    )
    print(f"\n== {plan.k}-fold cross-validation of {config['MODEL_NAME']} -> {parent}")
    atomic.write_csv(parent / FOLDS_CSV, plan.folds_frame())
    repository_root(str(parent))  # the fold runs' own model_repository/
    runs = []
    for fold in range(plan.k):
        fold_config = replace_config(
            config, SAVE_LOCATION=str(parent), ITERATION_NAME=f"fold_{fold + 1}", DATA_DIR_VALID=""
        )
        print(f"\n== fold {fold + 1}/{plan.k}")
        runs.append(train_fold(fold_config, plan.splits(fold)))
    summary = write_summary(parent, runs)
    print(f"\nCross-validation summary ({parent / FOLDS_SUMMARY}):")
    print(summary.to_string(index=False, float_format="%.4f"))
    return parent


def fold_row(run: Path) -> dict[str, Any]:
    """One fold's figures from its run folder (best_weights.json, analysis_report.csv,
    training.log; without post-evaluation: the epoch of best val_accuracy in training.log,
    whose val_accuracy is its accuracy@0 (regression: best val_mae, its mae)), then its
    held-out figures. The figures are the run's task's headline figures."""

    task = _task_of(run)
    folder = RunFolder(run, task=task.name)
    log = pd.read_csv(folder.training_log)
    row: dict[str, Any] = {"run": run.name}
    if folder.best_weights.is_file():
        best = json.loads(folder.best_weights.read_text(encoding="utf-8"))
        report = folder.read_deployed_report()  # calibrated figures of a calibrated run
        row.update(
            best_weights=best["weights"],
            best_epoch=int(best["epoch"]),
            **task.headline_figures(report, best["weights"], best),
        )
    else:
        metric = task.epoch_metric
        values = log[f"val_{metric}"]
        top = log.loc[values.idxmax() if task.higher_is_better else values.idxmin()]
        row.update(best_weights="", best_epoch=int(top["epoch"]))
        row.update(dict.fromkeys(task.headline_columns(), float("nan")))
        row["accuracy@0" if metric == "accuracy" else metric] = float(top[f"val_{metric}"])
    epoch_rows = log.loc[log["epoch"] == row["best_epoch"], "val_loss"]
    row["val_loss"] = float(epoch_rows.iloc[0]) if len(epoch_rows) else float("nan")
    figures_of = [c for c in task.headline_columns() if c != "deploy_threshold"]
    for name, figures in heldout_figures(run).items():
        row.update({f"test_{figure}[{name}]": figures[figure] for figure in figures_of})
    return row


def _task_of(run: Path):
    """The task of a fold's run folder (its run_config.json's TASK)."""
    config = json.loads(RunFolder(run).run_config.read_text(encoding="utf-8"))
    return get_task(config)


def heldout_figures(run: Path) -> dict[str, dict[str, float]]:
    """``{evaluation folder: headline figures}`` of every held-out evaluation of ``run``.

    Computed from each folder's analysis report at the weights and threshold its summary.json
    names (chosen on validation), so folders written by earlier versions read the same way.
    """

    task = _task_of(run)
    found = {}
    for summary in sorted(RunFolder(run).evaluations.glob(f"*/{SUMMARY}")):
        folder = summary.parent
        data = json.loads(summary.read_text(encoding="utf-8"))
        if folder.name.startswith(".") or data.get("role", "held-out") != "held-out":
            continue
        if not data.get("weights"):
            continue
        threshold = data.get("deploy_threshold", data.get("threshold", 0.0))
        report = read_csv_safe(folder / ANALYSIS_REPORT)
        found[folder.name] = task.headline_figures(
            report, data["weights"], {"threshold": float(threshold)}
        )
    return found


def summarize(runs: list[Path]) -> pd.DataFrame:
    """Rows fold 1..K, then ``mean`` and ``std`` (sample standard deviation, ddof=1)."""
    rows = [dict(fold=str(i + 1), **fold_row(run)) for i, run in enumerate(runs)]
    frame = pd.DataFrame(rows)
    first = SUMMARY_COLUMNS
    if runs and _task_of(runs[0]).name != "single_label":
        first = [*SUMMARY_COLUMNS[:4], *_task_of(runs[0]).headline_columns(), "val_loss"]
    columns = first + [c for c in frame.columns if c not in first]
    frame = frame[columns]
    numeric = [c for c in columns if c not in ("fold", "run", "best_weights")]
    values = frame[numeric].astype(float)
    stats = pd.DataFrame(
        [
            {"fold": "mean", "run": "", "best_weights": "", **values.mean().to_dict()},
            {"fold": "std", "run": "", "best_weights": "", **values.std(ddof=1).to_dict()},
        ]
    )
    return pd.concat([frame, stats[columns]], ignore_index=True)


def write_summary(parent: Path, runs: list[Path]) -> pd.DataFrame:
    """Write ``<parent>/folds_summary.csv``; return the table."""

    summary = summarize(runs)
    write_csv_safe(parent / FOLDS_SUMMARY, summary)
    return summary
