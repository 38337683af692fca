"""What each conv layer of a run's backbone sees in one image.

The library behind ``cnnhub featuremaps``; :mod:`cnnhub.commands.featuremaps` parses its
flags and writes its files.

One PNG per conv layer of the backbone (Conv2D, depthwise, separable; or only ``--layer``,
which may name any backbone layer with a 2-D feature map): a grid of the layer's first
``--max_channels`` channels, each scaled to its own min-max (constant ones, as in a 1x1 map, to
the layer's), titled with the layer name and output shape. Files go to
``RUN/explain/featuremaps/<image stem>/NNN_<layer>.png`` (``NNN`` = the layer's position in the
backbone, so files sort in network order), or ``--out DIR``; their paths are printed. The image
becomes model input as for prediction (:meth:`cnnhub.run_loading.Run.load_input`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnhub import atomic
from cnnhub.errors import CnnhubError
from cnnhub.explain.common import DPI, conv_layers, plot_text, pyplot, shape_text, split_model
from cnnhub.run_loading import (
    safe_file_name,
)

CELL_PX = 100
"""Side of one channel's square in the grid, in pixels."""
TITLE_PX = 60
MIN_COLUMNS = 4  # the title needs some width


def grid_shape(channels: int) -> tuple[int, int]:
    """(rows, columns) of the grid for ``channels`` maps: as square as possible."""
    columns = max(1, math.ceil(math.sqrt(channels)))
    return math.ceil(channels / columns), columns


def figure_pixels(channels: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG for a grid of ``channels`` maps."""
    rows, columns = grid_shape(channels)
    return max(columns, MIN_COLUMNS) * CELL_PX, rows * CELL_PX + TITLE_PX


def plot_grid(maps: np.ndarray, title: str, subtitle: str, path: Path) -> None:
    """Save ``maps`` (H, W, C) as a grid of images, each channel scaled to its own min-max.

    A constant channel (always the case for a 1x1 map) is scaled to the min-max of the whole
    layer instead, so its brightness still says how strongly it fires.
    """

    plt = pyplot()
    channels = maps.shape[-1]
    rows, columns = grid_shape(channels)
    width, height = figure_pixels(channels)
    layer_low, layer_high = float(maps.min()), float(maps.max())
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    grid_width = columns * CELL_PX / width
    left = (1 - grid_width) / 2
    for c in range(channels):
        r, k = divmod(c, columns)
        ax = fig.add_axes(
            (
                left + k * CELL_PX / width + 0.02 * CELL_PX / width,
                1 - (TITLE_PX + (r + 1) * CELL_PX) / height + 0.02 * CELL_PX / height,
                0.96 * CELL_PX / width,
                0.96 * CELL_PX / height,
            )
        )
        channel = maps[..., c].astype(np.float64)
        low, high = float(channel.min()), float(channel.max())
        if high <= low:  # a constant channel (every 1x1 map): shown on the layer's scale
            low, high = layer_low, layer_high
        scaled = (channel - low) / (high - low) if high > low else np.zeros_like(channel)
        ax.imshow(scaled, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_axis_off()
    fig.text(0.5, 1 - 22 / height, title, ha="center", va="center", fontsize=11)
    fig.text(0.5, 1 - 46 / height, subtitle, ha="center", va="center", fontsize=8, color="0.3")
    atomic.save_figure(path, fig, dpi=DPI)
    plt.close(fig)


def feature_maps(model, image: np.ndarray, layers: Sequence) -> list[np.ndarray]:
    """Activations (H, W, C) of backbone ``layers`` for one raw 0-255 ``image`` (H, W, 3)."""
    import keras  # lazy: heavy import, kept off the --help path

    split = split_model(model)
    probe = keras.Model(split.backbone.input, [layer.output for layer in layers])
    x = split.preprocess(np.asarray(image, dtype=np.float32)[None])
    outputs = probe(x, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.asarray(keras.ops.convert_to_numpy(out))[0] for out in outputs]


def write_feature_maps(
    model,
    image: np.ndarray,
    out_dir: Path,
    layer_name: str | None = None,
    max_channels: int = 64,
    caption: str = "",
) -> list[Path]:
    """Write one grid PNG per conv layer (or only ``layer_name``); returns the paths."""
    split = split_model(model)
    if layer_name is not None:
        layers = [split.layer(layer_name)]
    else:
        layers = conv_layers(split.backbone)
        if not layers:
            raise CnnhubError(
                "The backbone has no convolution layers to show; name a layer with --layer. "
                f"Received: model={model.name}"
            )
    positions = {id(layer): i for i, layer in enumerate(split.backbone.layers)}
    paths = []
    for layer, maps in zip(layers, feature_maps(model, image, layers)):
        channels = maps.shape[-1]
        shown = min(channels, max_channels)
        title = f"{plot_text(layer.name)}  output {shape_text(maps.shape)}"
        if shown < channels:
            title += f"  (first {shown} of {channels} channels)"
        name = f"{positions[id(layer)]:03d}_{safe_file_name(layer.name)}.png"
        path = out_dir / name
        plot_grid(maps[..., :shown], title, plot_text(caption), path)
        paths.append(path)
    return paths
