"""Compare runs: one leaderboard row per run folder of a model repository.

The figures are the headline figures of :mod:`cnnhub.evaluation.headline` on validation data,
of the weights and deploy threshold in each run's ``best_weights.json``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from cnnhub import atomic
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.headline import HEADLINE_COLUMNS, headline_figures
from cnnhub.evaluation.safe_csv import write_csv_safe
from cnnhub.run_folder import BEST_WEIGHTS, RUN_CONFIG, open_run

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
    return {
        "run": run.name,
        "model": config["MODEL_NAME"],
        **data_sources(config, run.name),
        "params": info.get("params"),
        "image_size": f"{config['IMG_HEIGHT']}x{config['IMG_WIDTH']}",
        "epochs": int(len(log)),
        "seconds_per_epoch": round(float(log["seconds"].mean()), 2),
        "best_epoch": int(best["epoch"]),
        **headline_figures(report, best["weights"], float(best["threshold"])),
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
    return pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS).sort_values(
        ["f1_macro@deploy", "accuracy@0"], ascending=False, kind="mergesort"
    )


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

    fig, ax = plt.subplots(figsize=(8, 0.5 * len(board) + 1.5))
    labels = [plain_text(f"{r} ({m})") for r, m in zip(board["run"], board["model"])]
    f1 = board["f1_macro@deploy"].to_numpy()[::-1]
    ax.barh(labels[::-1], f1, color="tab:blue", label="f1_macro@deploy")
    accuracy = board["accuracy@0"].to_numpy()[::-1]
    ax.plot(accuracy, labels[::-1], "o", color="tab:orange", label="accuracy@0")
    ax.set_xlim(0, 1)
    ax.set_xlabel("Validation score of the best weights (@0: threshold 0, @deploy: chosen)")
    ax.set_title("Leaderboard")
    ax.legend(loc="lower right")
    fig.tight_layout()
    atomic.save_figure(path, fig, dpi=100)
    plt.close(fig)
