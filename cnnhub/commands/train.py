"""``run_training.py`` / ``cnnhub train``: parse and check the flags, then train (or resume,
or post-evaluate) with :mod:`cnnhub.runner`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cnnhub import settings
from cnnhub.cli import run_command, stop_on_ctrl_c
from cnnhub.display import safe_output
from cnnhub.errors import CnnhubError
from cnnhub.quiet import quiet_tensorflow
from cnnhub.registry import format_table


def _repeats_saved_run(config: dict[str, Any], actions: dict[str, Any]) -> bool:
    """``-c <run>/run_config.json`` repeats a run in a new folder: the run name it saved is
    then a base name, numbered like an automatic one (``--run_name`` and ``--overwrite`` still
    mean that exact folder)."""
    from cnnhub.run_folder import RUN_CONFIG  # loads pandas: not on the --help path

    return bool(
        actions["config"]
        and Path(actions["config"]).name == RUN_CONFIG
        and config["ITERATION_NAME"]
        and "ITERATION_NAME" not in actions["given"]
        and not actions["overwrite"]
    )


def train_main(argv: list[str] | None = None, prog: str = "run_training.py") -> int:
    """Entry point of ``run_training.py`` and ``python -m cnnhub train``; returns the exit code."""

    safe_output()
    stop_on_ctrl_c()
    return run_command(prog, lambda: _train(argv, prog))


def _train(argv: list[str] | None, prog: str) -> int:
    started = time.perf_counter()  # TIME_BUDGET's clock counts the data checks too
    try:
        config, actions = settings.resolve(argv, prog)
        if actions["list_models"]:
            print(format_table())
            return 0
        quiet_tensorflow(config["VERBOSE"])
        # Here, once the flags are checked: the runner loads the data and run modules.
        from cnnhub.runner import post_evaluate, resume_run, train_models

        tracker = None if actions["summary"] else _tracker(config)
        print("Configuration:\n" + settings.format_config(config), flush=True)
        if actions["resume"]:
            runs = [resume_run(actions["resume"], config, actions["given"], started)]
        elif config["START_TRAIN"]:
            if _repeats_saved_run(config, actions):
                from cnnhub.run_folder import free_run_name

                name = free_run_name(config["SAVE_LOCATION"], config["ITERATION_NAME"])
                config = config.replace(ITERATION_NAME=name)
            runs = train_models(config, actions["summary"], actions["overwrite"], started)
        elif config["POST_EVAL"]:
            runs = [post_evaluate(config["RUN_DIR"])]
        else:
            raise CnnhubError(
                "Nothing to do: -start false and -post false. Pass -start true to train, or "
                "-post true --run_dir DIR to evaluate an existing run."
            )
    finally:
        from cnnhub import run_lock

        run_lock.release_all()
    for path in runs:
        if path is not None:
            print(f"Run folder: {path}")
    if tracker is not None:
        from cnnhub import tracking

        tracking.log_runs(tracker, [path for path in runs if path is not None])
    return 0


def _tracker(config: dict[str, Any]):
    """``--mlflow``: the tracking store, opened before training so a bad URI fails first."""
    if not config["MLFLOW"]:
        return None
    from cnnhub import tracking  # loads MLflow: only when asked for

    return tracking.Tracker(tracking.resolve_uri(config["MLFLOW"], config["SAVE_LOCATION"]))


def command(argv: list[str]) -> int:
    """``cnnhub train``: the same flags as run_training.py."""
    return train_main(argv, prog="cnnhub train")
