"""Where in the image the model looks for a class (Grad-CAM).

The library behind ``cnnhub gradcam``; :mod:`cnnhub.commands.gradcam` parses its
flags and writes its files.

Grad-CAM (Selvaraju et al., 2017): the gradient of the class's probability with respect to a
feature map, averaged over space, weights that map's channels; the ReLU of the weighted sum,
scaled to [0, 1], is the heatmap. It works for every backbone because cnnhub models are a chain
``preprocessing -> backbone -> head`` (see :class:`cnnhub.explain.common.SplitModel`): a
sub-model of the backbone returns the chosen layer's map and the backbone's output, and the
head layers are applied on top inside the same ``GradientTape``.

The layer defaults to the last backbone layer whose map is larger than 1x1 (the backbone's
output for usual input sizes; at small inputs, e.g. 32x32 with a 32x-downsampling ImageNet
backbone, an earlier, larger map); zero-padding and dropout layers are skipped. The class
defaults to the predicted one. The PNG (image | heatmap | overlay, titled with class and
probability) goes to ``RUN/explain/gradcam/<image stem>_<class>.png`` or ``--out``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cnnhub import atomic
from cnnhub.data.images import load_image
from cnnhub.errors import CnnhubError
from cnnhub.explain.common import DPI, plot_text, pyplot, shape_text, spatial_layers, split_model
from cnnhub.run_loading import (
    printable,
)

FIGURE_PIXELS = (1200, 460)
"""(width, height) of the Grad-CAM PNG."""
DISPLAY_MAX = 512  # the image is shown at most this large (longest side)
OVERLAY_ALPHA = 0.45


@dataclass
class GradCam:
    """A Grad-CAM result: ``heatmap`` (h, w) in [0, 1] at the layer's resolution."""

    heatmap: np.ndarray
    class_index: int
    probabilities: np.ndarray
    layer: str
    layer_shape: tuple


def default_layer(backbone):
    """The last backbone layer with a feature map larger than 1x1 (else the last map)."""
    import keras  # lazy: heavy import, kept off the --help path

    skipped = (keras.layers.ZeroPadding2D, keras.layers.Dropout, keras.layers.SpatialDropout2D)
    candidates = [layer for layer in spatial_layers(backbone) if not isinstance(layer, skipped)]
    if not candidates:
        raise CnnhubError(
            f"The backbone has no layer with a 2-D feature map for Grad-CAM. "
            f"Received: backbone layers={[layer.name for layer in backbone.layers]}"
        )
    for layer in reversed(candidates):
        _, height, width, _ = layer.output.shape
        if (height or 0) * (width or 0) > 1:
            return layer
    return candidates[-1]


def grad_cam(
    model, image: np.ndarray, class_index: int | None = None, layer_name: str | None = None
) -> GradCam:
    """Grad-CAM of ``model`` for one model input ``image`` (raw 0-255, H, W, channels).

    ``class_index`` None uses the predicted class; ``layer_name`` None :func:`default_layer`.
    """
    import keras  # lazy: heavy import, kept off the --help path
    import tensorflow as tf  # lazy: heavy import, kept off the --help path

    split = split_model(model)
    layer = split.layer(layer_name) if layer_name else default_layer(split.backbone)
    probe = keras.Model(split.backbone.input, [layer.output, split.backbone.output])
    x = tf.convert_to_tensor(np.asarray(image, dtype=np.float32)[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        conv_out, features = probe(split.preprocess(x), training=False)
        proba = split.classify(features)
        index = int(tf.argmax(proba[0])) if class_index is None else int(class_index)
        score = proba[:, index]
    grads = tape.gradient(score, conv_out)
    reference = np.asarray(model(x, training=False))[0]
    got = proba.numpy()[0]
    if not np.allclose(got, reference, atol=1e-4):
        raise RuntimeError(
            f"Grad-CAM's split of the model does not reproduce its output "
            f"(max difference {np.abs(got - reference).max():.2e})"
        )
    if grads is None:
        raise RuntimeError(f"no gradient flows from the output to layer {layer.name}")
    weights = tf.reduce_mean(grads, axis=(0, 1, 2))
    cam = tf.nn.relu(tf.reduce_sum(conv_out[0] * weights, axis=-1)).numpy().astype(np.float64)
    peak = cam.max()
    heatmap = cam / peak if peak > 0 else np.zeros_like(cam)
    return GradCam(heatmap, index, got, layer.name, tuple(int(d) for d in conv_out.shape[1:]))


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``heatmap`` resized to ``image`` (uint8 H, W, 3), coloured (jet) and blended on it."""
    import matplotlib  # lazy: heavy import, kept off the --help path

    height, width = image.shape[:2]
    resized = Image.fromarray(heatmap.astype(np.float32)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    heat = np.clip(np.asarray(resized), 0.0, 1.0)
    colours = matplotlib.colormaps["jet"](heat)[..., :3] * 255.0
    blended = (1 - alpha) * image.astype(np.float64) + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def display_image(path: str | Path) -> np.ndarray:
    """The image as a person sees it (EXIF-rotated), longest side at most :data:`DISPLAY_MAX`."""

    full = load_image(path, channels=3)
    height, width = full.shape[:2]
    scale = min(1.0, DISPLAY_MAX / max(height, width))
    if scale < 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        return load_image(path, size=size, channels=3)
    return full


def plot_gradcam(
    shown: np.ndarray,
    result: GradCam,
    class_names: Sequence[str],
    caption: str,
    path: Path,
    task=None,
) -> None:
    """Save the three-panel Grad-CAM figure (image, heatmap, overlay) to ``path``; the title
    names the explained output as the run's ``task`` describes it (default: a class)."""
    from cnnhub.tasks import get_task  # lazy: keeps this module light

    task = task or get_task()

    plt = pyplot()
    width, height = FIGURE_PIXELS
    fig, axes = plt.subplots(1, 3, figsize=(width / DPI, height / DPI), dpi=DPI)
    predicted = int(np.argmax(result.probabilities))
    target = result.class_index
    axes[0].imshow(shown)
    axes[0].set_title("image", fontsize=10)
    axes[1].imshow(result.heatmap, cmap="jet", vmin=0.0, vmax=1.0, interpolation="bilinear")
    axes[1].set_title(
        f"Grad-CAM at {plot_text(result.layer)} ({shape_text(result.layer_shape)})", fontsize=10
    )
    axes[2].imshow(overlay(shown, result.heatmap))
    axes[2].set_title("overlay", fontsize=10)
    for ax in axes:
        ax.set_axis_off()
    title = plot_text(task.describe_output(class_names[target], result.probabilities[target]))
    if task.thresholded and predicted != target:
        title += "   predicted: " + plot_text(
            task.describe_output(class_names[predicted], result.probabilities[predicted])
        ).removeprefix("class: ")
    fig.suptitle(title, fontsize=12)
    fig.text(0.5, 0.03, plot_text(caption), ha="center", fontsize=8, color="0.3")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.82, bottom=0.08, wspace=0.08)
    atomic.save_figure(path, fig, dpi=DPI)
    plt.close(fig)


def class_index_of(name: str, class_names: Sequence[str]) -> int:
    """The index of class ``name`` (exact match), or a CnnhubError listing the classes."""
    if name in class_names:
        return list(class_names).index(name)
    raise CnnhubError(
        f"`--class` must be one of the run's classes: "
        f"{', '.join(printable(c) for c in class_names)}. Received: class={printable(name)}"
    )
