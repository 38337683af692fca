"""Class weights and oversampling for imbalanced training data (``CLASS_WEIGHT``, ``OVERSAMPLE``).

Keras turns ``class_weight`` into a per-sample weight ``w[argmax(y)]`` and the loss of a batch
becomes ``sum(w_i * loss_i) / batch_size`` (the mean of the weighted per-image losses, not
divided by the sum of the weights). ``balanced`` weights ``n / (classes * n_class)`` average 1
over the training set, so the loss keeps its scale. Validation loss is never weighted.

This module is imported by ``cnnhub.settings`` (no TensorFlow, numpy only inside functions).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from cnnhub.errors import CnnhubError


def parse_class_weight(text: str) -> str | dict[str, float]:
    """``"none"``, ``"balanced"`` or a ``{class name: weight}`` mapping from JSON text.

    Raises CnnhubError for anything else, or for weights that are not positive finite numbers.
    """
    value = str(text).strip()
    if value.lower() in ("none", "balanced", ""):
        return value.lower() or "none"
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data:
        raise CnnhubError(
            "`class_weight` must be none, balanced, or a JSON object mapping class names to "
            'weights, e.g. \'{"cat": 2.0, "dog": 1.0}\'. '
            f"Received: class_weight={text!r}"
        )
    out: dict[str, float] = {}
    for name, weight in data.items():
        ok = isinstance(weight, (int, float)) and not isinstance(weight, bool)
        if not ok or not math.isfinite(weight) or weight <= 0:
            raise CnnhubError(
                f"`class_weight` weights must be positive numbers; class {name!r} has "
                f"{weight!r}. Received: class_weight={text!r}"
            )
        out[str(name)] = float(weight)
    return out


def balanced_weights(counts: Any):
    """``n / (classes * n_class)`` per class (0 for a class with no samples)."""

    counts = np.asarray(counts, dtype=np.float64)
    total, classes = counts.sum(), len(counts)
    with np.errstate(divide="ignore"):
        weights = np.where(counts > 0, total / (classes * np.maximum(counts, 1)), 0.0)
    return weights


def resolve_class_weight(text: str, class_names: list[str], counts: Any) -> dict[int, float] | None:
    """The ``class_weight`` argument of ``model.fit`` ({class index: weight}), or None.

    ``counts`` are the training split's images per class. Named classes not in ``class_names``
    are an error (listing the known names); classes not named get weight 1.
    """
    spec = parse_class_weight(text)
    if spec == "none":
        return None
    if spec == "balanced":
        return {i: float(w) for i, w in enumerate(balanced_weights(counts))}
    unknown = [name for name in spec if name not in class_names]
    if unknown:
        raise CnnhubError(
            f"`class_weight` names class(es) {unknown} that the data does not have; the classes "
            f"are {class_names}. Received: class_weight={text!r}"
        )
    return {i: spec.get(name, 1.0) for i, name in enumerate(class_names)}


def oversample_indices(labels: Any, seed: int):
    """Indices that repeat smaller classes until each has as many samples as the largest.

    Every original sample appears (in order) first; each smaller class then gets whole copies
    of itself plus a seeded random remainder (without repeats), appended after. Empty classes
    stay empty.
    """

    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 7])
    counts = np.bincount(labels) if len(labels) else np.zeros(0, dtype=int)
    target = counts.max() if len(counts) else 0
    extra = []
    for cls, count in enumerate(counts):
        if count == 0 or count == target:
            continue
        members = np.flatnonzero(labels == cls)
        need = target - count
        whole, rest = divmod(need, count)
        extra.append(np.tile(members, whole))
        extra.append(np.sort(rng.choice(members, rest, replace=False)))
    return np.concatenate([np.arange(len(labels)), *extra]).astype(np.int64)
