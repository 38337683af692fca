"""Try page: one uploaded image through a run's model - top-k classes with the deploy
threshold, the Grad-CAM overlay, and any conv layer's feature maps, a page of channels at a
time.

The image is decoded with the run's own loader (:meth:`cnnhub.run_folder.Run.load_input`, the
training decoder): a file that is not an image gives a message. Prediction, Grad-CAM and feature
maps are the engine's (:mod:`cnnhub.predict`, :mod:`cnnhub.explain`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.data.images import UnreadableImage
from cnnhub.errors import CnnhubError
from cnnhub.studio.workspace import Workspace

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
CHANNELS_PER_PAGE = 16
TOP_K = 3
DISPLAY_MIN = 224  # smaller images are shown enlarged

_models: dict[tuple, Any] = {}
_models_lock = threading.Lock()


def check_upload(path: str | os.PathLike | None) -> Path:
    """The uploaded file, refused when missing or larger than :data:`MAX_UPLOAD_BYTES`."""
    if not path:
        raise CnnhubError("Upload an image first.")
    file = Path(path)
    size = file.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise CnnhubError(
            f"The upload is {size:,} bytes; images up to {MAX_UPLOAD_BYTES:,} bytes are "
            f"accepted. Received: {file.name}"
        )
    return file


def loaded_model(workspace: Workspace, name: str, weights: str = "best"):
    """``(run, weights choice, model)``: the run's model with its weights, cached per file."""
    from cnnhub.model_factory import build_run_model
    from cnnhub.run_loading import choose_weights, open_run

    run = open_run(workspace.run(name))
    choice = choose_weights(run, weights, show=lambda _message: None)
    key = (str(run.path), str(choice.path), choice.path.stat().st_mtime_ns)
    with _models_lock:
        if key not in _models:
            _models.clear()  # one model in memory at a time
            _models[key] = build_run_model(run, choice)
        return run, choice, _models[key]


@dataclass
class Prediction:
    """What the Try page shows for one image."""

    label: str  # the class, or ``uncertain`` below the threshold
    text: str
    top: Any  # DataFrame: class, probability
    threshold: float
    image: np.ndarray  # the image as shown (EXIF-rotated, at most 512 px)


def predict(workspace: Workspace, name: str, upload: str, top_k: int = TOP_K) -> Prediction:
    """Top-k classes of the uploaded image with the run's deploy threshold (multi-label: the
    label set at the per-class thresholds, and the top-k classes)."""
    import pandas as pd  # lazy: heavy import

    from cnnhub.explain.gradcam import display_image
    from cnnhub.predict import predict_paths, predictions_frame
    from cnnhub.run_loading import choose_threshold
    from cnnhub.tasks import get_task

    file = check_upload(upload)
    run, choice, model = loaded_model(workspace, name)
    task = get_task(run.config)
    proba, errors = predict_paths(model, run, [str(file)], progress=False, workers=1)
    if errors[0] is not None:
        raise CnnhubError(f"{file.name} cannot be read as an image: {errors[0]}")
    if task.label_sets:  # multi-label: every label at or above its class's threshold
        return _label_set(task, run, choice, file, proba, errors, top_k)
    threshold = choose_threshold(run, "best", choice, show=lambda _message: None)
    frame = predictions_frame([str(file)], proba, errors, run.class_names, top_k, threshold)
    row = frame.iloc[0]
    k = min(int(top_k), run.num_classes)
    top = pd.DataFrame(
        {
            "class": [row[f"class_{i}"] for i in range(1, k + 1)],
            "probability": [round(float(row[f"prob_{i}"]), 4) for i in range(1, k + 1)],
        }
    )
    text = (
        f"{row['label']} (confidence {float(row['confidence']):.3f}; deploy threshold "
        f"{threshold:g}; weights {choice.path.name})"
    )
    return Prediction(str(row["label"]), text, top, threshold, enlarged(display_image(file)))


def _label_set(task, run, choice, file, proba, errors, top_k: int) -> Prediction:
    """A multi-label run's Prediction: the label set at the per-class thresholds (``label``),
    the ``top_k`` most probable classes; ``threshold`` is NaN (one per class)."""
    import pandas as pd  # lazy: heavy import

    from cnnhub.explain.gradcam import display_image

    cuts = task.predict_threshold(run, "best", choice)
    row = task.predictions_frame([str(file)], proba, errors, run.class_names, top_k, cuts).iloc[0]
    order = np.argsort(-proba[0], kind="stable")[: min(int(top_k), run.num_classes)]
    top = pd.DataFrame(
        {
            "class": [run.class_names[i] for i in order],
            "probability": [round(float(proba[0][i]), 4) for i in order],
        }
    )
    label = row["labels"] or "(no label)"
    text = f"{label} (a threshold per class, chosen on validation; weights {choice.path.name})"
    return Prediction(label, text, top, float("nan"), enlarged(display_image(file)))


def gradcam(workspace: Workspace, name: str, upload: str) -> tuple[np.ndarray, str]:
    """The Grad-CAM overlay of the predicted class over the image, and a caption."""
    from cnnhub.explain.gradcam import display_image, grad_cam, overlay

    file = check_upload(upload)
    run, _, model = loaded_model(workspace, name)
    image = _input(run, file)
    result = grad_cam(model, image)
    shown = display_image(file)
    caption = (
        f"Grad-CAM of {run.class_names[result.class_index]} "
        f"(p={result.probabilities[result.class_index]:.3f}) at layer {result.layer}"
    )
    return enlarged(overlay(shown, result.heatmap)), caption


def conv_layer_names(workspace: Workspace, name: str) -> list[str]:
    """The run's backbone layers with a 2-D feature map (the feature-map layer choice)."""
    from cnnhub.explain.common import spatial_layers, split_model

    _, _, model = loaded_model(workspace, name)
    return [layer.name for layer in spatial_layers(split_model(model).backbone)]


def feature_map_page(
    workspace: Workspace, name: str, upload: str, layer: str, page: int = 1
) -> tuple[Path, str]:
    """A PNG grid of channels ``(page-1)*16 ..`` of ``layer`` for the image, and a caption."""
    from cnnhub.explain.common import shape_text, split_model
    from cnnhub.explain.featuremaps import feature_maps, plot_grid

    file = check_upload(upload)
    run, _, model = loaded_model(workspace, name)
    target = split_model(model).layer(layer)
    maps = feature_maps(model, _input(run, file), [target])[0]
    channels = maps.shape[-1]
    pages = max(1, -(-channels // CHANNELS_PER_PAGE))
    page = min(max(int(page or 1), 1), pages)
    start = (page - 1) * CHANNELS_PER_PAGE
    stop = min(start + CHANNELS_PER_PAGE, channels)
    folder = workspace.studio_dir / "featuremaps"
    folder.mkdir(exist_ok=True)
    path = folder / f"{run.name}-{layer}-{page}.png".replace(os.sep, "_")
    caption = f"{layer} {shape_text(maps.shape)}: channels {start + 1}-{stop} of {channels}"
    plot_grid(maps[..., start:stop], caption, f"page {page} of {pages}", path)
    return path, f"{caption} (page {page} of {pages})"


def enlarged(image: np.ndarray, at_least: int = DISPLAY_MIN) -> np.ndarray:
    """A small image scaled up by a whole factor (pixels kept sharp) to be seen on the page."""
    factor = max(1, at_least // max(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


def _input(run, file: Path) -> np.ndarray:
    try:
        return run.load_input(file)
    except UnreadableImage as exc:
        raise CnnhubError(f"{file.name} cannot be read as an image: {exc.reason}") from None
