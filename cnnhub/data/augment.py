"""Training augmentation (``AUGMENT_*`` keys) as Keras preprocessing layers."""

from __future__ import annotations

from typing import Any


def build_augmenter(config: dict[str, Any], seed: int):
    """The training augmentation as a Sequential of Keras preprocessing layers, or None."""
    import keras  # lazy: keeps --help free of TensorFlow
    from keras import layers  # lazy: keeps --help free of TensorFlow

    steps = []
    # Each layer gets its own seed; with one shared seed their random draws would be correlated.
    seeds = iter(range(seed, seed + 16))
    flip = {
        (True, True): "horizontal_and_vertical",
        (True, False): "horizontal",
        (False, True): "vertical",
    }.get((config["AUG_HORIZONTAL_FLIP"], config["AUG_VERTICAL_FLIP"]))
    if flip:
        steps.append(layers.RandomFlip(flip, seed=next(seeds)))
    if config["AUG_ROTATION"]:
        steps.append(
            layers.RandomRotation(config["AUG_ROTATION"], fill_mode="nearest", seed=next(seeds))
        )
    if config["AUG_ZOOM"]:
        steps.append(layers.RandomZoom(config["AUG_ZOOM"], fill_mode="nearest", seed=next(seeds)))
    if config["AUG_TRANSLATION"]:
        t = config["AUG_TRANSLATION"]
        steps.append(layers.RandomTranslation(t, t, fill_mode="nearest", seed=next(seeds)))
    if config["AUG_CONTRAST"]:
        steps.append(
            layers.RandomContrast(config["AUG_CONTRAST"], value_range=(0, 255), seed=next(seeds))
        )
    if config["AUG_BRIGHTNESS"]:
        steps.append(
            layers.RandomBrightness(
                config["AUG_BRIGHTNESS"], value_range=(0, 255), seed=next(seeds)
            )
        )
    return keras.Sequential(steps, name="augmentation") if steps else None
