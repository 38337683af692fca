"""The picture behind ``cnnhub augment-preview``: a few training images per class, each next to
augmented copies drawn exactly as training draws them (copy k = epoch k's random draws)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image

from cnnhub import atomic
from cnnhub.data.augment import build_augmenter
from cnnhub.data.mixing import build_mixer
from cnnhub.data.pipeline import make_dataset
from cnnhub.data.sets import DataOptions, dev_subset, read_source, split_of_source
from cnnhub.errors import CnnhubError
from cnnhub.reproducibility import EpochRandomness

AUTO_SIZE_BOUNDS = (16, 256)
"""With IMG_HEIGHT / IMG_WIDTH auto, the preview shows the data's own size within these."""


def _size(config: dict[str, Any], split) -> tuple[int, int]:
    if split.images is not None:
        natural = split.images.shape[1:3]
    else:
        with Image.open(split.paths[0]) as image:
            natural = (image.height, image.width)
    low, high = AUTO_SIZE_BOUNDS
    return tuple(
        int(config[key]) if config[key] != "auto" else int(min(max(n, low), high))
        for key, n in zip(("IMG_HEIGHT", "IMG_WIDTH"), natural)
    )


def augmented_copies(config: dict[str, Any], images: np.ndarray, labels: np.ndarray, copies: int):
    """``copies`` augmented versions of a float 0-255 batch and its soft labels (one per copy,
    copy k drawn with epoch k's keys, MixUp/CutMix as that epoch has it), and the names of the
    Keras layers that drew them."""
    augmenter = build_augmenter(config, config["SEED"])
    mixer = build_mixer(config, config["SEED"])
    randomness = EpochRandomness(config["SEED"], augmenter, mixer and mixer.layer)
    out = []
    for epoch in range(copies):
        randomness.on_epoch_begin(epoch)
        x, y = images, labels
        if augmenter is not None:
            x = augmenter(x, training=True)
        if mixer is not None:
            mixer.on_epoch_begin(epoch)
            x, y = mixer(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
        out.append((keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y)))
    layers = [type(layer).__name__ for layer in (augmenter.layers if augmenter else [])]
    return out, layers + ([type(mixer.layer).__name__] if mixer else [])


def _label_text(row: np.ndarray, names: list[str]) -> str:
    order = [i for i in np.argsort(-row, kind="stable") if row[i] >= 0.05][:2]
    if len(order) == 1:
        return ""
    return "\n".join(f"{row[i]:.2f} {names[i]}" for i in order)


def draw_preview(config: dict[str, Any], data: str, out: Path, per_class: int, copies: int) -> str:
    """Write the grid to ``out`` (PNG, atomically); return the line to print."""
    import matplotlib  # lazy: heavy import, kept off the --help path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy import, kept off the --help path

    options = DataOptions.from_config(config)
    source = dev_subset(read_source(data, "train", options), per_class, config["SEED"])
    split, _ = split_of_source(source, config["SCAN_CACHE"], options.channels)
    if not len(split):
        raise CnnhubError(f"None of the images picked from {data} can be decoded. Received: {data}")
    names = list(source.class_names)
    size = _size(config, split)
    batches = make_dataset(
        split, len(names), size, len(split), training=False, seed=config["SEED"], cache=False
    )
    images, labels = (keras.ops.convert_to_numpy(t) for t in next(iter(batches)))
    views, layers = augmented_copies(config, images, labels, copies)
    rows, cols = len(split), copies + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.8 * rows), squeeze=False)
    gray = split.channels == 1
    for r in range(rows):
        for c, (x, y) in enumerate([(images, labels), *views]):
            ax = axes[r][c]
            picture = np.clip(x[r], 0, 255).astype(np.uint8)
            ax.imshow(picture[..., 0] if gray else picture, cmap="gray" if gray else None)
            ax.set_xticks([])
            ax.set_yticks([])
            title = "original" if c == 0 else f"epoch {c}"
            mix = _label_text(y[r], names) if c else ""
            ax.set_title(f"{title}\n{mix}" if mix else title, fontsize=7)
        axes[r][0].set_ylabel(names[int(labels[r].argmax())], fontsize=8)
    fig.suptitle(f"Training augmentation preview ({size[0]}x{size[1]})", fontsize=9)
    fig.tight_layout()
    atomic.save_figure(out, fig, dpi=100)
    plt.close(fig)
    what = ", ".join(layers) if layers else "none (every AUG_* key is off)"
    return (
        f"Wrote {out}: {rows} images of {len(names)} classes, original + {copies} augmented "
        f"copies; augmentation: {what}"
    )
