"""An export's check at the decision level: what changes for a deployment at its threshold.

A deployed model decides per image: the top class when its probability reaches the threshold,
else "uncertain" (abstain). :func:`decision_changes` compares the decisions of an export with
those of the Keras model on the same images and counts, overall and per class (the class the
Keras model decides, or its top class when it abstains):

* ``accepted_to_abstained`` - the Keras model decides a class, the export abstains;
* ``abstained_to_accepted`` - the other way round;
* ``class_changed`` - both decide, on different classes;
* ``flipped`` - the sum: images whose decision changes; ``flip_rate`` = flipped / images.

The result is written to ``export/<format>/check.json``; a ``tflite-int8`` export whose
decisions flip on more than :data:`INT8_MAX_FLIP_RATE` of the images fails (unless
``--allow_flips``). numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

INT8_MAX_FLIP_RATE = 0.01
"""Largest share of images whose decision may change in a ``tflite-int8`` export."""
KINDS = ("accepted_to_abstained", "abstained_to_accepted", "class_changed")


def decisions(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Per image the decided class index, or -1 when the top probability is below
    ``threshold`` (the comparison of the evaluation reports: ``confidence >= threshold``)."""
    array = np.asarray(proba)
    top = array.argmax(axis=1)
    accepted = array[np.arange(len(array)), top] >= threshold
    return np.where(accepted, top, -1)


def decision_changes(
    reference: np.ndarray, exported: np.ndarray, threshold: float, class_names: Sequence[str]
) -> dict[str, Any]:
    """Count the decisions that change from ``reference`` (Keras) to ``exported`` probabilities
    at ``threshold``; see the module docstring. Non-finite exported outputs count as changed."""
    reference = np.asarray(reference, dtype=np.float64)
    exported = np.asarray(exported, dtype=np.float64).reshape(reference.shape)
    before = decisions(reference, threshold)
    after = decisions(np.nan_to_num(exported, nan=-1.0), threshold)
    broken = ~np.isfinite(exported).all(axis=1)
    kinds = {
        "accepted_to_abstained": (before >= 0) & (after < 0),
        "abstained_to_accepted": (before < 0) & (after >= 0),
        "class_changed": ((before >= 0) & (after >= 0) & (before != after)) | broken,
    }
    flipped = np.logical_or.reduce(list(kinds.values()))
    group = reference.argmax(axis=1)
    per_class = []
    for index, name in enumerate(class_names):
        members = group == index
        if not members.any():
            continue
        per_class.append(
            {"class": name, "images": int(members.sum())}
            | {kind: int((mask & members).sum()) for kind, mask in kinds.items()}
            | {"flipped": int((flipped & members).sum())}
        )
    images = len(reference)
    return {
        "threshold": float(threshold),
        "images": images,
        **{kind: int(mask.sum()) for kind, mask in kinds.items()},
        "flipped": int(flipped.sum()),
        "flip_rate": float(flipped.sum() / images) if images else 0.0,
        "per_class": per_class,
    }


def flips_problem(fmt: str, changes: dict[str, Any], allow_flips: bool) -> str | None:
    """Why the decision check fails (None when it passes): only ``tflite-int8`` has a limit."""
    if fmt != "tflite-int8" or allow_flips or changes["flip_rate"] <= INT8_MAX_FLIP_RATE:
        return None
    return (
        f"its decisions at threshold {changes['threshold']:g} change on {changes['flipped']} of "
        f"{changes['images']} images ({changes['flip_rate']:.1%}: "
        f"{changes['accepted_to_abstained']} accepted -> abstained, "
        f"{changes['abstained_to_accepted']} abstained -> accepted, "
        f"{changes['class_changed']} class changed), over the {INT8_MAX_FLIP_RATE:.0%} allowed; "
        "pass --allow_flips to keep it anyway"
    )
