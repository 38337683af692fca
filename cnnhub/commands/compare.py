"""``cnnhub compare [REPOSITORY]``: print and write the leaderboard of :mod:`cnnhub.compare`."""

from __future__ import annotations

from pathlib import Path

from cnnhub.cli import OneLineParser
from cnnhub.compare import compare


def command(argv: list[str]) -> int:
    """``cnnhub compare [REPOSITORY]``."""

    parser = OneLineParser(
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
