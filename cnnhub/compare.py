"""Compare runs: one leaderboard row per run folder of a model repository.

The figures are each run's task's headline figures on validation data (single_label: those of
:mod:`cnnhub.evaluation.headline`, at the weights and deploy threshold in its
``best_weights.json``; regression: mae, rmse, r2, mape of its best weights). Runs are ranked by
their task's figure (``Task.ranking``); a repository holding runs of several tasks gets a
``task`` column, each task's runs together (in the order of :data:`cnnhub.tasks.TASK_NAMES`),
and only those tasks' figure columns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from cnnhub import atomic
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.headline import HEADLINE_COLUMNS
from cnnhub.evaluation.safe_csv import write_csv_safe
from cnnhub.run_folder import BEST_WEIGHTS, RUN_CONFIG, open_run
from cnnhub.tasks import TASK_NAMES, get_task

LEADERBOARD_COLUMNS = [
    "run",
    "model",
    "train_data",
    "valid_data",
    "params",
    "image_size",
    "epochs",
    "seconds_per_epoch",
    "best_epoch",
    *HEADLINE_COLUMNS,
]
"""The columns of a single_label leaderboard; other tasks put their headline columns after
``best_epoch``."""


def leaderboard_row(run: Path) -> dict[str, Any] | None:
    """The leaderboard row of one evaluated run folder, or None when it is not evaluated.

    Raises:
        CnnhubError: a file the row is made from is damaged (it names the file).
    """
    if not (run / RUN_CONFIG).exists() or not (run / BEST_WEIGHTS).exists():
        return None  # not a run folder, or not evaluated
    opened = open_run(run)
    folder, config, best = opened.folder, opened.config, opened.best
    info = folder.read_info()
    report = folder.read_deployed_report()
    log = folder.read_training_log()
    folder.check_weights(folder.model_logs / best["weights"])
    if not (report["weights_name"] == best["weights"]).any():
        raise folder.damaged(folder.analysis_report, f"has no rows of {best['weights']}")
    task = get_task(config)
    return {
        "task": task.name,
        "run": run.name,
        "model": config["MODEL_NAME"],
        **data_sources(config, run.name),
        "params": info.get("params"),
        "image_size": f"{config['IMG_HEIGHT']}x{config['IMG_WIDTH']}",
        "epochs": int(len(log)),
        "seconds_per_epoch": round(float(log["seconds"].mean()), 2),
        "best_epoch": int(best["epoch"]),
        **task.headline_figures(report, best["weights"], best),
    }


def data_sources(config: dict[str, Any], run_name: str) -> dict[str, str]:
    """What a run trained and validated on (``train_data``, ``valid_data``), from its config.

    Runs are ranked together whatever their data, so the leaderboard says which data each
    figure comes from. A validation set cut from the training data is named by how it was cut.
    """
    valid = config.get("DATA_DIR_VALID", "")
    if not valid:
        if config.get("FOLDS"):
            valid = f"{run_name} of {config['FOLDS']} folds of train_data"
        elif config.get("SPLIT_FILE"):
            valid = f"split_file {config['SPLIT_FILE']} of train_data"
        elif config.get("VAL_SPLIT"):
            valid = f"val_split {config['VAL_SPLIT']} of train_data"
    return {"train_data": config.get("DATA_DIR_TRAIN", ""), "valid_data": valid}


RowFunction = Callable[[Path], "dict[str, Any] | None"]


def _rows(root: Path, row_of: RowFunction = leaderboard_row) -> list[dict[str, Any]]:
    """Every evaluated run's row; a damaged run is left out with a warning on stderr."""
    rows = []
    for run in sorted(root.iterdir()):
        if not run.is_dir():
            continue
        try:
            row = row_of(run)
        except CnnhubError as exc:
            sys.stderr.write(f"warning: skipped {run.name}: {' '.join(str(exc).split())}\n")
            continue
        if row is not None:
            rows.append(row)
    return rows


def leaderboard(
    repository: str | Path = "model_repository", row_of: RowFunction = leaderboard_row
) -> pd.DataFrame:
    """The leaderboard of the evaluated runs in ``repository``, best first (writes nothing).

    ``row_of`` makes one run's row (default :func:`leaderboard_row`; the studio passes one
    that remembers rows of unchanged runs)."""
    root = Path(repository)
    if not root.is_dir():
        raise CnnhubError(
            f"Model repository not found: {repository}. Pass the folder that holds the run "
            f"folders (default model_repository). Received: {repository}"
        )
    rows = _rows(root, row_of)
    if not rows:
        raise CnnhubError(
            f"No evaluated runs in {repository}: each run folder needs best_weights.json and "
            "analysis_report.csv (train with -post true, or run `python -m cnnhub evaluate RUN`)."
        )
    return _board(rows)


def _board(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The leaderboard of :func:`leaderboard_row` rows: each task's runs ranked by its figure
    (single_label: ``f1_macro@deploy``, then ``accuracy@0``), tasks in TASK_NAMES order. The
    tasks present are in the frame's ``attrs["tasks"]``."""
    tasks = [name for name in TASK_NAMES if any(row["task"] == name for row in rows)]
    base = [c for c in LEADERBOARD_COLUMNS if c not in HEADLINE_COLUMNS]
    figures = [c for name in tasks for c in get_task(name).headline_columns()]
    columns = base[:2] + ["task"] + base[2:] if len(tasks) > 1 else base
    columns += list(dict.fromkeys(figures))
    parts = []
    for name in tasks:
        part = pd.DataFrame([r for r in rows if r["task"] == name], columns=columns)
        key, higher = get_task(name).ranking()
        keys = [key, "accuracy@0"] if name == "single_label" else [key]
        parts.append(part.sort_values(keys, ascending=not higher, kind="mergesort"))
    board = pd.concat(parts) if len(parts) > 1 else parts[0]
    board.attrs["tasks"] = tasks
    return board


def compare(repository: str | Path = "model_repository") -> pd.DataFrame:
    """Write ``leaderboard.csv`` and ``leaderboard.png`` in ``repository``; return the table."""
    root = Path(repository)
    board = leaderboard(root)
    write_csv_safe(root / "leaderboard.csv", board)
    _plot(board, root / "leaderboard.png")
    return board


def _plot(board: pd.DataFrame, path: Path) -> None:
    import matplotlib  # lazy: heavy import, kept off the --help path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy import, kept off the --help path

    from cnnhub.evaluation.plots import plain_text  # lazy: heavy import, kept off the --help path

    tasks = board.attrs.get("tasks", ["single_label"])
    panels = [  # one panel per task
        (name, board if len(tasks) == 1 else board[board["task"] == name]) for name in tasks
    ]
    height = sum(0.5 * len(part) + 1.5 for _, part in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, height), squeeze=False)
    for ax, (name, part) in zip(axes[:, 0], panels):
        labels = [plain_text(f"{r} ({m})") for r, m in zip(part["run"], part["model"])]
        if name == "single_label":
            f1 = part["f1_macro@deploy"].to_numpy()[::-1]
            ax.barh(labels[::-1], f1, color="tab:blue", label="f1_macro@deploy")
            accuracy = part["accuracy@0"].to_numpy()[::-1]
            ax.plot(accuracy, labels[::-1], "o", color="tab:orange", label="accuracy@0")
            ax.set_xlim(0, 1)
            ax.set_xlabel("Validation score of the best weights (@0: threshold 0, @deploy: chosen)")
        else:
            key, _ = get_task(name).ranking()
            ax.barh(labels[::-1], part[key].to_numpy()[::-1], color="tab:blue", label=key)
            ax.set_xlabel(f"Validation {key} of the best weights")
        ax.set_title("Leaderboard" if len(panels) == 1 else f"Leaderboard: {name}")
        ax.legend(loc="lower right")
    fig.tight_layout()
    atomic.save_figure(path, fig, dpi=100)
    plt.close(fig)
