"""Compare runs: one leaderboard row per run folder of a model repository.

The figures are the headline figures of :mod:`cnnhub.evaluation.headline` on validation data,
of the weights and deploy threshold in each run's ``best_weights.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from cnnhub import atomic
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.headline import HEADLINE_COLUMNS, headline_figures
from cnnhub.evaluation.safe_csv import read_csv_safe, write_csv_safe

LEADERBOARD_COLUMNS = [
    "run",
    "model",
    "params",
    "image_size",
    "epochs",
    "seconds_per_epoch",
    "best_epoch",
    *HEADLINE_COLUMNS,
]


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def leaderboard_row(run: Path) -> dict[str, Any] | None:
    """The leaderboard row of one evaluated run folder, or None when it is not evaluated."""
    needed = ["run_config.json", "run_info.json", "best_weights.json", "analysis_report.csv"]
    if not all((run / name).is_file() for name in needed):
        return None
    config = _read_json(run / "run_config.json")
    info = _read_json(run / "run_info.json")
    best = _read_json(run / "best_weights.json")
    report = read_csv_safe(run / "analysis_report.csv")
    log = pd.read_csv(run / "training.log") if (run / "training.log").is_file() else None
    return {
        "run": run.name,
        "model": config["MODEL_NAME"],
        "params": info.get("params"),
        "image_size": f"{config['IMG_HEIGHT']}x{config['IMG_WIDTH']}",
        "epochs": int(len(log)) if log is not None else None,
        "seconds_per_epoch": round(float(log["seconds"].mean()), 2) if log is not None else None,
        "best_epoch": int(best["epoch"]),
        **headline_figures(report, best["weights"], float(best["threshold"])),
    }


def compare(repository: str | Path = "model_repository") -> pd.DataFrame:
    """Write ``leaderboard.csv`` and ``leaderboard.png`` in ``repository``; return the table."""
    root = Path(repository)
    if not root.is_dir():
        raise CnnhubError(
            f"Model repository not found: {repository}. Pass the folder that holds the run "
            f"folders (default model_repository). Received: {repository}"
        )
    rows = [row for run in sorted(root.iterdir()) if run.is_dir() and (row := leaderboard_row(run))]
    if not rows:
        raise CnnhubError(
            f"No evaluated runs in {repository}: each run folder needs best_weights.json and "
            "analysis_report.csv (train with -post true, or run `python -m cnnhub evaluate RUN`)."
        )
    board = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS).sort_values(
        ["f1_macro@deploy", "accuracy@0"], ascending=False, kind="mergesort"
    )
    write_csv_safe(root / "leaderboard.csv", board)
    _plot(board, root / "leaderboard.png")
    return board


def _plot(board: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnhub.evaluation.plots import plain_text

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


def command(argv: list[str]) -> int:
    """``cnnhub compare [REPOSITORY]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="cnnhub compare",
        description="Write leaderboard.csv and leaderboard.png: one row per evaluated run, with "
        "its validation figures at threshold 0 (@0) and at its deploy threshold (@deploy).",
    )
    parser.add_argument(
        "repository",
        nargs="?",
        default="model_repository",
        help="folder holding the run folders (default: model_repository)",
    )
    args = parser.parse_args(argv)
    board = compare(args.repository)
    print(board.to_string(index=False, float_format="%.4f"))
    print(f"Leaderboard: {Path(args.repository) / 'leaderboard.csv'}")
    return 0
