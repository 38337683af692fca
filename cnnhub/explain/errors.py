"""The validation images the model gets wrong most confidently.

The library behind ``cnnhub errors``; :mod:`cnnhub.commands.errors` parses its
flags and writes its files.

Like fastai's "top losses", restricted to mistakes: every validation image is predicted with
the chosen weights (default: the best epoch), batched; the wrongly classified ones are sorted by
the confidence of the wrong class (highest first) and the first ``--count`` are drawn in a
gallery (as the model sees them) with actual class, predicted class and confidence under each.
Written to ``RUN/explain/errors_<weights stem>.png`` (or ``--out``) plus a CSV of the same name
listing every wrong image (``image_path, actual, predicted, confidence, loss``; formula-safe).

The validation data is rebuilt exactly as ``evaluate`` rebuilds it
(:func:`cnnhub.data.sets.evaluation_source`): the run's ``split.csv`` for ``--val_split`` runs,
DATA_DIR_VALID in any layout (class folders, CSV, IDX, ...), the same DEV pick; ``--valid``
names other data in any layout instead. Unreadable files are left out, with a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnhub.explain.common import DPI, plot_text, pyplot

CELL_WIDTH_PX = 260
CELL_HEIGHT_PX = 330
TITLE_PX = 70
MAX_COLUMNS = 4


def figure_pixels(count: int) -> tuple[int, int]:
    """(width, height) in pixels of a gallery of ``count`` images."""
    columns = min(MAX_COLUMNS, max(count, 1))
    rows = math.ceil(max(count, 1) / columns)
    return columns * CELL_WIDTH_PX, rows * CELL_HEIGHT_PX + TITLE_PX


def wrong_predictions(
    paths: Sequence[str], labels: Sequence[int], proba: np.ndarray, class_names: Sequence[str]
):
    """Every wrongly classified image, most confident first (readable images only)."""
    import pandas as pd  # lazy: heavy import, kept off the --help path

    labels = np.asarray(labels)
    readable = ~np.isnan(proba).any(axis=1)
    predicted = np.where(readable, np.nan_to_num(proba).argmax(axis=1), -1)
    wrong = np.flatnonzero(readable & (predicted != labels))
    names = list(class_names)
    frame = pd.DataFrame(
        {
            "image_path": [str(paths[i]) for i in wrong],
            "actual": [names[labels[i]] for i in wrong],
            "predicted": [names[predicted[i]] for i in wrong],
            "confidence": [float(proba[i, predicted[i]]) for i in wrong],
            "loss": [float(-np.log(max(float(proba[i, labels[i]]), 1e-12))) for i in wrong],
        },
        columns=["image_path", "actual", "predicted", "confidence", "loss"],
    )
    return frame.sort_values(
        ["confidence", "loss", "image_path"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)


def plot_gallery(rows, images: np.ndarray, title: str, path: Path) -> None:
    """Save the gallery of ``rows`` (a frame from :func:`wrong_predictions`) to ``path``.

    ``images[i]`` is the model input of ``rows``' i-th image (0-255, one or three channels).
    """
    from cnnhub import atomic  # lazy: heavy import, kept off the --help path

    plt = pyplot()
    count = len(rows)
    width, height = figure_pixels(count)
    columns = min(MAX_COLUMNS, max(count, 1))
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    for n, record in enumerate(rows.to_dict("records")):
        r, c = divmod(n, columns)
        left = c * CELL_WIDTH_PX / width
        top = 1 - (TITLE_PX + r * CELL_HEIGHT_PX) / height
        image_height = 200 / height
        ax = fig.add_axes(
            (left + 30 / width, top - 10 / height - image_height, 200 / width, image_height)
        )
        image = np.clip(images[n], 0, 255).astype(np.uint8)
        if image.shape[-1] == 1:  # a grayscale run
            ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(image)
        ax.set_axis_off()
        ax.set_title(plot_text(Path(record["image_path"]).name), fontsize=7, color="0.3")
        caption = (
            f"actual: {plot_text(record['actual'])}\n"
            f"predicted: {plot_text(record['predicted'])}\n"
            f"confidence: {record['confidence']:.3f}"
        )
        fig.text(
            left + 0.5 * CELL_WIDTH_PX / width,
            top - 220 / height,
            caption,
            ha="center",
            va="top",
            fontsize=9,
            linespacing=1.4,
        )
    fig.text(0.5, 1 - 35 / height, title, ha="center", va="center", fontsize=12)
    atomic.save_figure(path, fig, dpi=DPI)
    plt.close(fig)
