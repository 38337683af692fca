"""Resolve the ``auto`` settings of one model: weights, input size and training type.

* ``WEIGHTS = auto``: ``imagenet`` for every registry model that has ImageNet weights, ``none``
  for ``custom`` and ``squeezenet``.
* ``IMG_HEIGHT``/``IMG_WIDTH = auto``: with ``-w <earlier run>``, that run's size; else the
  registry's default input size (224 for resnet50, 299 for xception, ...); for ``custom``, the
  training images' median size, between the model's minimum and :data:`CUSTOM_MAX_SIZE`.
* ``TRAINING_TYPE = auto``: ``fine_tune`` when the weights are pretrained (ImageNet or a run),
  ``train_all`` when they are random. With too few epochs for both fine_tune phases at
  FINE_TUNE_AFTER, the head-only phase is shortened to half the epochs (one epoch: freeze_all).

The resolved values replace ``auto`` in the run's config, so ``run_config.json`` repeats the
run exactly; :func:`resolve_model_config` also returns what each ``auto`` became, to print.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnhub.configuration import replace
from cnnhub.registry import BackboneSpec
from cnnhub.run_loading import weights_source
from cnnhub.settings import AUTO, WEIGHTS_WORDS

CUSTOM_MAX_SIZE = 128
"""Largest input side ``auto`` gives the custom CNN (photos are larger than a small net needs)."""


def weights_kind(weights: str) -> str:
    """Classify the WEIGHTS setting: ``auto``, ``imagenet``, ``none`` or ``file`` (a path)."""
    lowered = str(weights).strip().lower()
    if lowered in (*WEIGHTS_WORDS, ""):
        return lowered or "none"
    return "file"


def typical_size(inspection) -> tuple[int, int] | None:
    """Median (height, width) of the training images in a data inspection, if it has sizes."""
    report = inspection.splits[0] if inspection is not None and inspection.splits else None
    if report is None or not report.heights:
        return None
    return int(round(np.median(report.heights))), int(round(np.median(report.widths)))


def _auto_size(
    spec: BackboneSpec, source_config: dict | None, images: tuple[int, int] | None
) -> tuple[tuple[int, int], str]:
    if source_config and "IMG_HEIGHT" in source_config:
        size = int(source_config["IMG_HEIGHT"]), int(source_config["IMG_WIDTH"])
        return size, "the size of the run the weights come from"
    if spec.name == "custom" and images is not None:
        size = tuple(min(max(side, spec.min_size), CUSTOM_MAX_SIZE) for side in images)
        limits = f"{spec.min_size}-{CUSTOM_MAX_SIZE}"
        return size, f"the training images' median size, kept within {limits}"
    return (spec.default_size, spec.default_size), f"{spec.name}'s default input size"


def resolve_model_config(
    config: dict[str, Any], spec: BackboneSpec, inspection=None
) -> tuple[dict[str, Any], list[str]]:
    """``config`` for ``spec`` with every ``auto`` replaced; and one note per replaced value.

    ``inspection`` (the training data's :class:`~cnnhub.data.inspect.Inspection`) gives the
    custom CNN's image size.
    """
    resolved = dict(config, MODEL_NAME=spec.name)
    notes: list[str] = []
    if weights_kind(config["WEIGHTS"]) == AUTO:
        resolved["WEIGHTS"] = "imagenet" if spec.imagenet else "none"
        why = "ImageNet weights exist" if spec.imagenet else "no ImageNet weights exist"
        notes.append(f"weights = {resolved['WEIGHTS']} ({why} for {spec.name})")
    if AUTO in (config["IMG_HEIGHT"], config["IMG_WIDTH"]):
        source_config = None
        if weights_kind(resolved["WEIGHTS"]) == "file":
            run = weights_source(resolved["WEIGHTS"])[1]
            source_config = run.config if run is not None else None
        size, why = _auto_size(spec, source_config, typical_size(inspection))
        keys = [k for k in ("IMG_HEIGHT", "IMG_WIDTH") if config[k] == AUTO]
        for key, value in zip(("IMG_HEIGHT", "IMG_WIDTH"), size):
            if key in keys:
                resolved[key] = value
        shown = "x".join(str(resolved[k]) for k in keys)
        notes.append(f"{', '.join(k.lower() for k in keys)} = {shown} ({why})")
    if config["TRAINING_TYPE"] == AUTO:
        pretrained = weights_kind(resolved["WEIGHTS"]) != "none"
        kind = "fine_tune" if pretrained else "train_all"
        why = "pretrained weights" if pretrained else "random weights"
        if kind == "fine_tune" and not 0 < config["FINE_TUNE_AFTER"] < config["EPOCHS"]:
            if config["EPOCHS"] == 1:
                kind, why = "freeze_all", "pretrained weights, 1 epoch: the head only"
            else:
                resolved["FINE_TUNE_AFTER"] = config["EPOCHS"] // 2
                notes.append(
                    f"fine_tune_after = {resolved['FINE_TUNE_AFTER']} (half of the "
                    f"{config['EPOCHS']} epochs: fine_tune_after was "
                    f"{config['FINE_TUNE_AFTER']})"
                )
        resolved["TRAINING_TYPE"] = kind
        notes.append(f"training_type = {kind} ({why})")
    return replace(config, **resolved), notes  # a Config stays a Config


def format_notes(model_name: str, notes: list[str]) -> str:
    """The line printed at the start of a run: what each ``auto`` became."""
    return f"auto settings for {model_name}: " + "; ".join(notes) if notes else ""
