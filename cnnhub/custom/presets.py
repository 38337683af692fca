"""Named custom CNNs (``PRESETS``) and ``auto``, derived from the input size and the classes.

No TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cnnhub.custom.spec import (
    CONFIG_NAME,
    _check_input_shape,
    _is_int,
    _normalize_block,
    _show,
)
from cnnhub.errors import CnnhubError

#: Presets by name.  ``auto`` maps to ``None``: it depends on the input shape and the number of
#: classes and is computed by :func:`auto_blocks` (through :func:`resolve_blocks`).
PRESETS: dict[str, str | None] = {
    # LeNet-5 layout (6 and 16 filters of 5x5, the second conv unpadded) with ReLU and max pool.
    "lenet": "c6k5-mp2,c16k5-pv-mp2",
    # Three VGG stages of two 3x3 convs with batch norm, 32/64/128 filters.
    "vgg_small": (
        "c32k3-bn-c32k3-bn-mp2-d0.2,c64k3-bn-c64k3-bn-mp2-d0.3,c128k3-bn-c128k3-bn-mp2-d0.4"
    ),
    # Strong small net for 28x28 grayscale (Fashion-MNIST): 28 -> 14 -> 7 -> 3, light dropout so
    # that it fits in 10-15 epochs (vgg_small is the same shape, regularized for longer runs).
    "fashion": (
        "c32k3-bn-c32k3-bn-mp2-d0.1,c64k3-bn-c64k3-bn-mp2-d0.2,c128k3-bn-c128k3-bn-mp2-d0.3"
    ),
    # AlexNet layout scaled down: 5x5 convs, overlapping 3x3/2 max pools, three 3x3 convs.
    "alexnet_small": "c32k5-bn-mp3s2,c64k5-bn-mp3s2,c96k3-bn-c96k3-bn-c64k3-bn-mp3s2",
    "auto": None,
}


def auto_blocks(input_shape: Sequence[int], num_classes: int) -> list[dict[str, Any]]:
    """A conv stack derived from the input size and the number of classes.

    Stages of two 3x3 conv + BN blocks (one block while the map is larger than 64 px, to keep
    CPU cost down), each followed by a 2x2 max pool and dropout 0.25, halving the map while it
    stays >= 3 px (so it ends at about 4x4: 28 -> 3, 32 -> 4, 224 -> 3), at least one stage.
    Filters start at 32 (64 for 65-128 classes, 128 above) and double per stage, capped at 256.
    """
    height, width, _ = _check_input_shape(input_shape)
    if not (_is_int(num_classes) and num_classes >= 1):
        raise CnnhubError(
            f"`num_classes` must be an integer >= 1. Received: num_classes={_show(num_classes)}"
        )
    side = min(height, width)
    start = min(128, max(32, 2 ** math.ceil(math.log2(num_classes / 2))))
    stages = []
    while side // 2 >= 3 or not stages:
        pool = side >= 2
        stages.append((side, pool))
        side = side // 2 if pool else side
        if not pool:
            break
    blocks: list[dict[str, Any]] = []
    for i, (stage_side, pool) in enumerate(stages):
        filters = min(256, start * 2**i)
        convs = 1 if stage_side > 64 else 2
        for j in range(convs):
            raw: dict[str, Any] = {"filters": filters, "batch_norm": True}
            if j == convs - 1:
                raw["dropout"] = 0.25
                if pool:
                    raw["pool"] = "max"
            blocks.append(raw)
    # Mappings built here, so each is validated on its own (as normalize_blocks would).
    return [
        _normalize_block(raw, f"{CONFIG_NAME} block {n}") for n, raw in enumerate(blocks, 1)
    ]
