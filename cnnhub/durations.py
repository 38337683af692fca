"""Durations written as ``90s``, ``10m``, ``1.5h`` or plain seconds (``600``), and the one line
that states a time budget's outcome (console and report)."""

from __future__ import annotations

import math
import re
from typing import Any

from cnnhub.errors import CnnhubError

UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)")


def parse_duration(text: str, name: str = "time_budget") -> float | None:
    """Seconds in ``text`` (None for an empty string).

    Raises:
        CnnhubError: not a positive number with an optional unit s, m or h.
    """
    text = str(text).strip().lower()
    if not text:
        return None
    match = _DURATION.fullmatch(text)
    seconds = float(match.group(1)) * UNITS[match.group(2)] if match else math.nan
    if not 0 < seconds < math.inf:
        raise CnnhubError(
            f"`{name}` must be a positive duration: a number with an optional unit s, m or h "
            f"(90s, 10m, 1.5h; no unit = seconds), or empty for none. Received: {name}={text!r}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` as ``9 min 41 s`` (or ``41.2 s`` under a minute)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def shortened_last_epoch(plan: dict[str, Any]) -> tuple[int, int] | None:
    """(its steps, steps per epoch) when a time budget's plan shortens its last epoch, else
    None (plans made before shorter last epochs existed have none)."""
    last, steps = plan.get("last_epoch_steps"), plan.get("steps_per_epoch")
    return (last, steps) if last is not None and steps and last < steps else None


def planned_length(plan: dict[str, Any]) -> float:
    """A time budget's planned epochs, a shorter last epoch counting as its fraction."""
    short = shortened_last_epoch(plan)
    return plan["planned_epochs"] - (1 - short[0] / short[1] if short else 0.0)


def describe_last_epoch(plan: dict[str, Any]) -> str:
    """`` (the last one 150 of 215 steps)`` for a plan with a shorter last epoch, else ``""``."""
    short = shortened_last_epoch(plan)
    return f" (the last one {short[0]} of {short[1]} steps)" if short else ""


def describe_budget_outcome(report: dict[str, Any]) -> str:
    """One line on ``run_info.json``'s ``time_budget`` (``TimeBudget.report`` in
    :mod:`cnnhub.time_budget`): the budget, the plan, the actual seconds, and whether the run
    ended inside the budget."""
    planned = report.get("planned_seconds")
    inside = "inside" if report["actual_seconds"] <= report.get("budget_seconds", 0) else "OVER"
    return (
        f"{format_duration(report['budget_seconds'])}: planned "
        f"{format_duration(planned) if planned is not None else '-'} "
        f"({report.get('planned_epochs', '-')} epochs{describe_last_epoch(report)}), actual "
        f"{format_duration(report['actual_seconds'])} ({inside} the budget"
        + ("; stopped early: the machine slowed down" if report.get("stopped_early") else "")
        + ("; this resumed process only)" if report["resumed"] else ")")
    )
