"""Test-time augmentation (``TTA``, ``--tta``): average a model's probabilities over cheap views
of each image.

The original image is always one of the views; ``flip`` adds its left-right mirror, ``vflip``
its up-down mirror, ``crop`` its centre 90% resized back to the input size. ``with_tta`` wraps
a classifier in a Keras model that does this inside one forward pass, so every scoring path
(the per-epoch validation pass, ``evaluate``, ``predict``) uses it unchanged. Exported models
stay single-view (``cnnhub export`` saves the plain classifier).
"""

from __future__ import annotations

from cnnhub.errors import CnnhubError

VIEWS = ("flip", "vflip", "crop")
CROP_FRACTION = 0.9


def parse_tta(text: str | None) -> list[str]:
    """``none`` (or empty) -> []; ``flip,crop`` -> ["flip", "crop"].

    Raises:
        CnnhubError: a name not in :data:`VIEWS`, or a view named twice.
    """
    names = [n.strip().lower() for n in str(text or "").split(",") if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in VIEWS]
    if unknown or len(set(names)) != len(names):
        raise CnnhubError(
            f"`tta` must be none, or views to average with the original image, comma-separated "
            f"without repeats, from: {', '.join(VIEWS)}. Received: tta={text!r}"
        )
    return names


def describe(views: list[str]) -> str:
    """``original+flip+crop`` (``none`` without views), as reports and run_info state it."""
    return "+".join(["original", *views]) if views else "none"


def _view_layer():
    import keras  # lazy: heavy import, kept off the --help path

    class View(keras.layers.Layer):
        """One deterministic view of a (batch, height, width, channels) image batch."""

        def __init__(self, kind: str, **kwargs):
            super().__init__(name=f"tta_{kind}", **kwargs)
            self.kind = kind

        def call(self, images):
            if self.kind == "flip":
                return keras.ops.flip(images, axis=2)
            if self.kind == "vflip":
                return keras.ops.flip(images, axis=1)
            height, width = images.shape[1], images.shape[2]
            crop_h = max(1, round(height * CROP_FRACTION))
            crop_w = max(1, round(width * CROP_FRACTION))
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            centre = images[:, top : top + crop_h, left : left + crop_w, :]
            return keras.ops.image.resize(centre, (height, width), interpolation="bilinear")

    return View


def with_tta(model, views: list[str]):
    """``model`` itself without views; else a Keras model (sharing ``model``'s layers, so
    weights loaded into ``model`` are used) whose output is the mean of ``model``'s
    probabilities over the original image and each view."""
    if not views:
        return model
    import keras  # lazy: heavy import, kept off the --help path

    view = _view_layer()
    inputs = keras.Input(shape=model.input_shape[1:], name="tta_input")
    outputs = [model(inputs), *(model(view(kind)(inputs)) for kind in views)]
    mean = keras.layers.Average(name="tta_mean")(outputs)
    return keras.Model(inputs, mean, name=f"{model.name}_tta")
