"""The Keras build of a custom CNN, layer by layer from its plan (:mod:`cnnhub.custom.plan`).

Only standard Keras layers are used (no ``Lambda``), so saved models load with
``safe_mode=True``: leaky_relu is ``LeakyReLU`` with slope :data:`LEAKY_RELU_SLOPE` (0.2, the
dense head's too), prelu is
``PReLU(shared_axes=[1, 2])`` (one slope per channel), the others ``Activation(name)``;
BatchNormalization uses momentum ``BN_MOMENTUM``. This is the only module of
:mod:`cnnhub.custom` that imports Keras.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from cnnhub.custom.plan import _plan, resolve_blocks
from cnnhub.custom.spec import CONFIG_NAME, _check_input_shape, _shape_text
from cnnhub.errors import CnnhubError

#: Moving-statistics momentum of every BatchNormalization (Keras defaults to 0.99, which needs
#: hundreds of steps before inference matches training: too slow for small folder datasets).
BN_MOMENTUM = 0.9


LEAKY_RELU_SLOPE = 0.2
"""Slope of ``leaky_relu`` for x < 0, wherever it is used (conv blocks and the dense head);
the default of ``keras.activations.leaky_relu`` and ``tf.nn.leaky_relu``."""


def activation_layer(activation: str, layer_name: str) -> Any:
    """The Keras layer for an activation name (conv blocks and the dense head alike)."""
    if activation == "leaky_relu":
        return layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, name=layer_name)
    if activation == "prelu":
        # One slope per channel, so the weights do not depend on the input size.
        return layers.PReLU(shared_axes=[1, 2], name=layer_name)
    return layers.Activation(activation, name=layer_name)


def build_custom_backbone(input_shape: Sequence[int], blocks: Any, name: str = "custom") -> Any:
    """A functional ``keras.Model`` from ``Input(shape=input_shape)`` to the last block's map.

    ``blocks``: anything :func:`normalize_blocks` accepts.  Every layer's output shape is
    computed first (CnnhubError naming the block when the net does not fit the input); after
    building, a forward pass on a dummy batch of zeros checks the model end to end.
    """
    plan = _plan(blocks, input_shape)
    input_shape = _check_input_shape(input_shape)

    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = block_input = inputs
    block = 0
    shortcut = None
    for layer in plan:
        kind, cfg = layer.kind, layer.config
        if layer.block != block:
            block, block_input = layer.block, x
        if kind == "pad":
            x = layers.ZeroPadding2D(cfg["padding"], name=layer.name)(x)
        elif kind == "conv":
            x = layers.Conv2D(**cfg, name=layer.name)(x)
        elif kind == "bn":
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=layer.name)(x)
        elif kind == "proj":
            shortcut = layers.Conv2D(**cfg, name=layer.name)(block_input)
        elif kind == "proj_bn":
            shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=layer.name)(shortcut)
        elif kind == "add":
            x = layers.Add(name=layer.name)([x, block_input if shortcut is None else shortcut])
            shortcut = None
        elif kind == "act":
            x = activation_layer(cfg["activation"], layer.name)(x)
        elif kind == "pool":
            pool_cls = layers.MaxPooling2D if cfg["pool"] == "max" else layers.AveragePooling2D
            x = pool_cls(
                pool_size=cfg["pool_size"], strides=cfg["strides"], padding="valid", name=layer.name
            )(x)
        elif kind == "drop":
            x = layers.Dropout(cfg["rate"], name=layer.name)(x)
        else:  # pragma: no cover - _plan only makes the kinds above
            raise AssertionError(kind)
    model = keras.Model(inputs, x, name=name)

    expected = (1, *plan[-1].output_shape)
    try:
        out = model(np.zeros((1, *input_shape), dtype="float32"), training=False)
        got = tuple(int(v) for v in out.shape)
    except Exception as exc:  # reported to the user on one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CnnhubError(
            f"{CONFIG_NAME}: the built model failed a forward pass on a dummy batch of shape "
            f"{_shape_text((1, *input_shape))}: {first}"
        ) from exc
    if got != expected:
        raise RuntimeError(f"custom backbone output {got} differs from the computed {expected}")
    return model


def build_backbone(
    input_shape: Sequence[int], config: Mapping[str, Any], num_classes: int, name: str = "custom"
) -> Any:
    """The registry's build function: the blocks of ``CUSTOM_CONV_BLOCKS``, built for the input.

    ``num_classes`` matters to the ``auto`` preset (:func:`auto_blocks`).
    """
    blocks = resolve_blocks(config["CUSTOM_CONV_BLOCKS"], input_shape, num_classes)
    return build_custom_backbone(input_shape, blocks, name=name)
