"""What an evaluation prints, and the ``summary.json`` of an evaluation folder (no TensorFlow).

Every printed figure names the data it was measured on (``validation`` or ``held-out``) and
the threshold it is taken at, with the names of :mod:`cnnhub.evaluation.headline`; tables are
never re-ranked with thresholds tuned on the data being reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from cnnhub.evaluation.headline import HEADLINE_FIGURES, headline_figures

VALIDATION = "validation"
HELD_OUT = "held-out"


def figures_text(figures: Mapping[str, float]) -> str:
    """``accuracy@0 0.9123, f1_macro@0 0.9001, ...`` (the headline figures, named)."""
    return ", ".join(
        f"{name} {figures[name]:.4f}" if not math.isnan(figures[name]) else f"{name} n/a"
        for name in HEADLINE_FIGURES
    )


def headline_table(report: pd.DataFrame, deploy_threshold: float) -> pd.DataFrame:
    """One row per weights file of ``report``: its epoch and headline figures."""
    pairs = report[["weights_name", "epoch"]].drop_duplicates("weights_name")
    return pd.DataFrame(
        [
            {"weights_name": name, "epoch": int(epoch)}
            | headline_figures(report, name, deploy_threshold)
            for name, epoch in pairs.itertuples(index=False)
        ]
    )


def print_table(
    report: pd.DataFrame, role: str, deploy_threshold: float, chosen: str | None, rows: int = 10
) -> None:
    """Print each weights file's figures at threshold 0 and at the deploy threshold.

    Rows are ranked by ``f1_macro@deploy`` (then earlier epoch); at most ``rows`` are shown,
    always including ``chosen`` (the weights chosen on validation).
    """
    table = headline_table(report, deploy_threshold).sort_values(
        ["f1_macro@deploy", "epoch"], ascending=[False, True], kind="mergesort"
    )
    shown = table.head(rows)
    if chosen is not None and chosen not in set(shown["weights_name"]):
        shown = pd.concat([shown.head(rows - 1), table[table["weights_name"] == chosen]])
    print(
        f"{role.capitalize()} figures of each weights file, at threshold 0 (@0) and at the "
        f"deploy threshold {deploy_threshold:g} (@deploy):"
    )
    columns = ["weights_name", "epoch", *HEADLINE_FIGURES]
    print(shown[columns].to_string(index=False, float_format="%.4f"))


def tolerance_text(best: Mapping[str, Any]) -> str:
    """How ``BEST_EPOCH_TOLERANCE`` moved the choice, for the printed choice line: empty when
    it was 0 or the best-scoring epoch was also the latest within it."""
    keys = ("epoch_tolerance", "best_scoring_epoch", "best_scoring_value")
    if any(key not in best for key in keys) or best["best_scoring_epoch"] == best["epoch"]:
        return ""
    return (
        f" (the latest epoch within {best['epoch_tolerance']:g} of the best score, "
        f"{best['best_scoring_value']:.4f} at epoch {best['best_scoring_epoch']})"
    )


def print_validation_choice(report: pd.DataFrame, best: Mapping[str, Any]) -> None:
    """The line naming the best weights chosen on validation, with their validation figures."""
    value = f" = {best['value']:.4f}" if best.get("value") is not None else ""
    figures = headline_figures(report, best["weights"], best["threshold"])
    print(
        f"Best weights (chosen on validation): {best['weights']} (epoch {best['epoch']}), "
        f"deploy threshold {best['threshold']:g} by rule {best['rule']}{value}"
        f"{tolerance_text(best)}. Validation: {figures_text(figures)}"
    )


LAST_EPOCH_RULE = "last_epoch (no weights chosen on validation yet)"


def json_number(value: Any) -> float | None:
    """``value`` as a float for ``summary.json``; NaN (undefined figure) as None."""
    number = float(value)
    return None if math.isnan(number) else number


def last_epoch_choice(report: pd.DataFrame) -> dict[str, Any]:
    """The weights an evaluation reports when nothing was chosen on validation yet: those
    of the last scored epoch (``weights``, ``epoch``, ``rule``)."""
    last = report.loc[report["epoch"].idxmax()]
    return {"weights": last["weights_name"], "epoch": int(last["epoch"]), "rule": LAST_EPOCH_RULE}


def weights_summary(
    table: pd.DataFrame,
    best: Mapping[str, Any],
    scored: Mapping[str, str],
    *,
    head: Mapping[str, Any],
    chosen_on_validation: bool,
    columns: Sequence[str],
    number: Callable[[Any], float | None] = json_number,
    extra: Mapping[str, Any] | None = None,
    figures: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The ``summary.json`` of an evaluation folder, shared by every task.

    Args:
        table: one row per scored weights file (``weights_name``, ``epoch``, ``columns``).
        best: the weights reported (``weights``, ``epoch``, ``rule``).
        scored: ``{weights name: resolved path}`` of every weights file scored.
        head: the summary's first keys (``role``, ``source``, ``images``, ...).
        chosen_on_validation: whether ``best`` was chosen on validation.
        columns: the figures of ``table`` listed for every weights file, through ``number``.
        number: turns one figure into its JSON value.
        extra: keys written after ``rule``.
        figures: the figures of the chosen weights written at the top level (default
            ``columns``).

    Returns:
        ``head``, ``chosen_on_validation``, ``weights``/``epoch`` (None when ``best``'s
        weights were not scored), ``rule``, ``extra``, the chosen weights' ``figures`` and
        ``scored``: every weights file with its path, epoch and ``columns``.
    """
    per_weights = [
        {"weights": row["weights_name"], "path": scored[row["weights_name"]],
         "epoch": int(row["epoch"])} | {key: number(row[key]) for key in columns}
        for _, row in table.iterrows()
    ]  # fmt: skip
    chosen = next((row for row in per_weights if row["weights"] == best["weights"]), None)
    summary: dict[str, Any] = {
        **head,
        "chosen_on_validation": chosen_on_validation,
        "weights": best["weights"] if chosen else None,
        "epoch": int(best["epoch"]) if chosen else None,
        "rule": best.get("rule"),
        **(extra or {}),
    }
    for key in columns if figures is None else figures:
        summary[key] = chosen[key] if chosen else None
    summary["scored"] = per_weights
    return summary


def evaluation_summary(
    report: pd.DataFrame,
    role: str,
    source: str,
    images: int,
    best: Mapping[str, Any] | None,
    scored: Mapping[str, str],
) -> dict[str, Any]:
    """The ``summary.json`` of an evaluation folder.

    Args:
        report: the folder's analysis report.
        role: :data:`VALIDATION` or :data:`HELD_OUT`.
        source: the resolved absolute path of the data.
        images: how many images were scored.
        best: ``best_weights.json`` of the run (None when nothing was chosen yet: then the
            last scored epoch is reported at threshold 0).
        scored: ``{weights name: resolved path}`` of every weights file scored.

    Returns:
        ``role``, ``source``, ``images``, ``chosen_on_validation`` (False: nothing was chosen
        yet); ``weights``, ``epoch``, ``rule`` of the weights chosen on validation (None when
        they were not scored) and their headline figures on this data
        (``deploy_threshold``, ``accuracy@0``, ...); ``scored``: every weights file with its
        path, epoch and headline figures at the same deploy threshold.
    """
    chosen_on_validation = best is not None
    if best is None:
        best = last_epoch_choice(report) | {"threshold": 0.0}
    deploy = float(best["threshold"])
    return weights_summary(
        headline_table(report, deploy),
        best,
        scored,
        head={"role": role, "source": source, "images": int(images)},
        chosen_on_validation=chosen_on_validation,
        columns=("deploy_threshold", *HEADLINE_FIGURES),
        extra={"deploy_threshold": deploy},
        figures=HEADLINE_FIGURES,
    )
