"""Config checks the tasks share: a task-dependent choice, and options a task does not use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cnnhub.errors import CnnhubError

# Packaged values of the keys a task may refuse when they are set (None: any value is "set").
_UNSET: dict[str, Any] = {
    "TARGET_COLUMN": "",
    "NUM_TARGETS": 1,
    "CLASS_WEIGHT": "none",
    "OVERSAMPLE": False,
    "EVAL_THRESHOLDS": [],
    "LABEL_SMOOTHING": 0.0,
    "CLASS_NAMES_FILE": "",
    "CALIBRATE": "none",
}


def resolved(config: Mapping[str, Any], key: str, task) -> str:
    """``config[key]`` (LOSS or BEST_WEIGHT_RULE) with ``auto`` as the task's first value."""
    allowed = task.losses if key == "LOSS" else task.rules
    return allowed[0] if config[key] == "auto" else config[key]


def check_choice(config: Mapping[str, Any], key: str, task) -> None:
    """``config[key]`` (LOSS or BEST_WEIGHT_RULE) is ``auto`` or one of the task's."""
    allowed = task.losses if key == "LOSS" else task.rules
    if config[key] != "auto" and config[key] not in allowed:
        raise CnnhubError(
            f"`{key.lower()}` for task {task.name} must be auto or one of {', '.join(allowed)}. "
            f"Received: {key.lower()}={config[key]!r}, task={task.name!r}"
        )


def refuse_set(config: dict[str, Any], task, keys: Iterable[str]) -> None:
    """One line naming the first of ``keys`` set to other than its packaged value."""
    for key in keys:
        if key in config and config[key] != _UNSET[key]:
            raise CnnhubError(
                f"`{key.lower()}` does not apply to task {task.name}; leave it unset (or pick "
                f"another --task). Received: {key.lower()}={config[key]!r}, task={task.name!r}"
            )
