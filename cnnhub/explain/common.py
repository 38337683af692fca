"""Pieces the explain commands share: the model split around its backbone, plotting helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnhub.display import plot_text  # noqa: F401  (the explain commands' plot labels)
from cnnhub.errors import CnnhubError

_LISTED = 30  # layer names listed in an error message (the last ones)

DPI = 100
"""Every explain figure is saved at this resolution, with a fixed size in pixels."""


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib  # lazy: heavy import, kept off the --help path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy import, kept off the --help path

    return plt


@dataclass
class SplitModel:
    """A cnnhub classifier cut into the layers before the backbone, the backbone, the head.

    cnnhub models are a linear chain: input -> preprocessing -> ``backbone`` (a nested model)
    -> pooling -> dense head -> softmax, so applying ``pre``, ``backbone`` and ``head`` in turn
    gives the model's output, and any tensor inside the backbone can be reached from its input.
    """

    model: Any
    pre: list
    backbone: Any
    head: list

    def preprocess(self, images):
        x = images
        for layer in self.pre:
            x = layer(x, training=False)
        return x

    def classify(self, features):
        x = features
        for layer in self.head:
            x = layer(x, training=False)
        return x

    def layer(self, name: str):
        """The backbone layer called ``name``, which must output a 4-D feature map."""
        candidates = spatial_layers(self.backbone)
        for layer in candidates:
            if layer.name == name:
                return layer
        names = [layer.name for layer in candidates]
        shown = ", ".join(names[-_LISTED:])
        if len(names) > _LISTED:
            shown = f"... ({len(names) - _LISTED} earlier), " + shown
        raise CnnhubError(
            f"`--layer` must name a layer of the backbone with a 2-D feature map: {shown}. "
            f"Received: layer={name}"
        )


def split_model(model) -> SplitModel:
    """Split a cnnhub model around its ``backbone`` layer (see :class:`SplitModel`)."""
    import keras  # lazy: heavy import, kept off the --help path

    from cnnhub.model_factory import BACKBONE_LAYER  # lazy: heavy import, kept off the --help path

    names = [layer.name for layer in model.layers]
    if BACKBONE_LAYER not in names:
        raise CnnhubError(
            f"The model has no `{BACKBONE_LAYER}` layer; it was not built by cnnhub. "
            f"Received: layers={names}"
        )
    index = names.index(BACKBONE_LAYER)
    pre = [
        layer for layer in model.layers[:index] if not isinstance(layer, keras.layers.InputLayer)
    ]
    return SplitModel(model, pre, model.layers[index], list(model.layers[index + 1 :]))


def _output_shape(layer) -> tuple | None:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):  # a layer used at several places has no single output
        return None


def spatial_layers(backbone) -> list:
    """The backbone's layers whose output is a 4-D feature map (batch, H, W, C), in order."""
    import keras  # lazy: heavy import, kept off the --help path

    found = []
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = _output_shape(layer)
        if shape is not None and len(shape) == 4:
            found.append(layer)
    return found


def conv_layers(backbone) -> list:
    """The backbone's convolution layers (Conv2D, depthwise, separable, transposed), in order."""
    import keras  # lazy: heavy import, kept off the --help path

    kinds = (
        keras.layers.Conv2D,
        keras.layers.DepthwiseConv2D,
        keras.layers.SeparableConv2D,
        keras.layers.Conv2DTranspose,
    )
    return [layer for layer in spatial_layers(backbone) if isinstance(layer, kinds)]


def shape_text(shape) -> str:
    return "x".join(str(int(d)) for d in shape)
