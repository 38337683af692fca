"""The leaderboard says which data each run was trained and validated on.

Works on copies of the session's tiny run (``shared_tiny_run``); no training of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from trained_runs import copy_with_data, shared_tiny_run

from cnnhub.cli import main


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    return shared_tiny_run(tiny_data, tmp_path_factory)


def test_leaderboard_names_each_runs_training_and_validation_data(
    tiny_run, tiny_data, tmp_path, capsys
):
    repository = tmp_path / "model_repository"
    shutil.copytree(tiny_run, repository / "a_tiny")
    copy_with_data(
        tiny_run,
        repository / "b_other",
        DATA_DIR_TRAIN="/data/other/train",
        DATA_DIR_VALID="/data/other/valid",
    )
    copy_with_data(
        tiny_run,
        repository / "c_split",
        DATA_DIR_TRAIN="/data/all",
        DATA_DIR_VALID="",
        VAL_SPLIT=0.25,
    )
    assert main(["compare", str(repository)]) == 0
    assert "train_data" in capsys.readouterr().out  # the printed table has the columns too
    board = pd.read_csv(repository / "leaderboard.csv", keep_default_na=False)
    assert list(board.columns[:4]) == ["run", "model", "train_data", "valid_data"]
    sources = board.set_index("run")[["train_data", "valid_data"]].to_dict("index")
    assert sources == {
        "a_tiny": {"train_data": str(tiny_data["train"]), "valid_data": str(tiny_data["valid"])},
        "b_other": {"train_data": "/data/other/train", "valid_data": "/data/other/valid"},
        "c_split": {"train_data": "/data/all", "valid_data": "val_split 0.25 of train_data"},
    }
    # Ranking is unchanged: by f1_macro@deploy, then accuracy@0, ties in folder order.
    expected = board.sort_values(
        ["f1_macro@deploy", "accuracy@0", "run"], ascending=[False, False, True]
    )
    assert board["run"].tolist() == expected["run"].tolist()
