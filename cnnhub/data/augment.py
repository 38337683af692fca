"""Training augmentation (``AUG_*`` keys) as Keras preprocessing layers.

Two stages, both on the training split only (see ``cnnhub.data.pipeline.make_dataset``):

- ``build_augmenter``: per-image layers (flips, rotation, zoom, shift, contrast, brightness,
  colour jitter, RandAugment, AugMix, random erasing), one ``keras.Sequential``. Flips are
  random (``RandomFlip``) or, with ``AUG_ALTERNATE_FLIPS``, alternate epoch by epoch
  (``AlternatingFlip``, the one layer here that Keras does not have).
- ``cnnhub.data.mixing.build_mixer``: MixUp or CutMix, which mix pairs of images *and* their
  one-hot labels, so they run on (images, labels) batches; ``MIX_OFF_EPOCHS`` switches them off
  for the last epochs.

Every layer's random state is re-keyed from (SEED, epoch) at each epoch's start by
``cnnhub.reproducibility.EpochRandomness``, which also tells ``AlternatingFlip`` the epoch, so
a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

from typing import Any

from cnnhub.errors import CnnhubError

# The keys of the per-image policies implemented with Keras's policy layers (issue 20).
POLICY_KEYS = ("AUG_SATURATION", "AUG_HUE", "AUG_RANDAUGMENT", "AUG_AUGMIX", "AUG_ERASING")
MIXING_KEYS = ("AUG_MIXUP", "AUG_CUTMIX")
_VALUE_RANGE = (0, 255)  # the pipeline's images are float 0-255


def mixing_enabled(config: dict[str, Any]) -> bool:
    """Whether MixUp or CutMix is on (labels become soft)."""
    return any(config[key] for key in MIXING_KEYS)


def check_augmentation(config: dict[str, Any]) -> None:
    """Consistency of the augmentation keys, before any data is read (ranges are checked by
    ``cnnhub.settings.check_ranges``).

    Raises:
        CnnhubError: MixUp/CutMix with a task other than single-label classification; MixUp
            and CutMix together; MIX_OFF_EPOCHS without mixing or not below
            EPOCHS; colour jitter on grayscale input; mixing with an explicit feature cache.
    """
    # Multi-label and regression targets are not one-hot class rows for MixUp/CutMix to mix.
    task = config.get("TASK", "single_label")
    if mixing_enabled(config) and task != "single_label":
        raise CnnhubError(
            "`aug_mixup` and `aug_cutmix` mix one-hot class labels, which only single-label "
            f"classification has; set them to 0 for task {task}. Received: task={task!r}, "
            f"aug_mixup={config['AUG_MIXUP']}, aug_cutmix={config['AUG_CUTMIX']}"
        )
    if config["AUG_MIXUP"] and config["AUG_CUTMIX"]:
        raise CnnhubError(
            "`aug_mixup` and `aug_cutmix` both mix pairs of images; use one of them (set the "
            f"other to 0). Received: aug_mixup={config['AUG_MIXUP']}, "
            f"aug_cutmix={config['AUG_CUTMIX']}"
        )
    off = config["MIX_OFF_EPOCHS"]
    if off and not mixing_enabled(config):
        raise CnnhubError(
            "`mix_off_epochs` switches MixUp/CutMix off for the last epochs, but neither is on; "
            f"set --aug_mixup or --aug_cutmix, or leave it 0. Received: mix_off_epochs={off}"
        )
    flips = config["AUG_HORIZONTAL_FLIP"] or config["AUG_VERTICAL_FLIP"]
    if config["AUG_ALTERNATE_FLIPS"] and not flips:
        raise CnnhubError(
            "`aug_alternate_flips` makes the flips alternate from epoch to epoch, but no flip "
            "is on; set --aug_horizontal_flip or --aug_vertical_flip, or leave it false. "
            "Received: aug_alternate_flips=true, aug_horizontal_flip=false, "
            "aug_vertical_flip=false"
        )
    if off and off >= config["EPOCHS"]:
        raise CnnhubError(
            "`mix_off_epochs` must be smaller than `epochs` (some epochs must mix). "
            f"Received: mix_off_epochs={off}, epochs={config['EPOCHS']}"
        )
    jitter = [k.lower() for k in ("AUG_SATURATION", "AUG_HUE") if config[k]]
    if jitter and config["COLOR_MODE"] == "grayscale":
        raise CnnhubError(
            f"`{jitter[0]}` changes colours, which grayscale input does not have; set it to 0 "
            f"or use color_mode rgb. Received: {jitter[0]}={config[jitter[0].upper()]}, "
            "color_mode=grayscale"
        )
    if mixing_enabled(config) and config["FEATURE_CACHE"] == "true":
        raise CnnhubError(
            "`feature_cache` true trains on stored backbone features, which MixUp/CutMix "
            "(they mix images and labels per batch) cannot act on; use feature_cache auto or "
            f"false. Received: feature_cache=true, aug_mixup={config['AUG_MIXUP']}, "
            f"aug_cutmix={config['AUG_CUTMIX']}"
        )


def build_augmenter(config: dict[str, Any], seed: int):
    """The per-image training augmentation as a Sequential of Keras preprocessing layers, or
    None when every ``AUG_*`` key is off."""
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
    if flip and config["AUG_ALTERNATE_FLIPS"]:
        steps.append(alternating_flip(flip, seed=next(seeds)))
    elif flip:
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
    steps.extend(_policy_layers(config, seeds))
    return keras.Sequential(steps, name="augmentation") if steps else None


def _policy_layers(config: dict[str, Any], seeds) -> list:
    """Colour jitter, RandAugment, AugMix and random erasing (last: it blanks a patch of the
    finished image), each a Keras policy layer."""
    from keras import layers  # lazy: keeps --help free of TensorFlow

    steps = []
    saturation, hue = config["AUG_SATURATION"], config["AUG_HUE"]
    if saturation or hue:
        steps.append(
            layers.RandomColorJitter(
                value_range=_VALUE_RANGE,
                # RandomSaturation's 0.5 is "unchanged": +-s around it.
                saturation_factor=(0.5 - saturation / 2, 0.5 + saturation / 2)
                if saturation
                else None,
                hue_factor=hue or None,
                seed=next(seeds),
            )
        )
    if config["AUG_RANDAUGMENT"]:
        steps.append(
            layers.RandAugment(
                value_range=_VALUE_RANGE,
                num_ops=config["AUG_RANDAUGMENT"],
                factor=config["AUG_RANDAUGMENT_MAGNITUDE"],
                seed=next(seeds),
            )
        )
    if config["AUG_AUGMIX"]:
        steps.append(
            layers.AugMix(value_range=_VALUE_RANGE, factor=config["AUG_AUGMIX"], seed=next(seeds))
        )
    if config["AUG_ERASING"]:
        p = config["AUG_ERASING"]
        # A (p, p) factor makes p the erasing probability (a single float would draw it).
        steps.append(
            layers.RandomErasing(factor=(p, p), value_range=_VALUE_RANGE, seed=next(seeds))
        )
    return steps


def alternating_flip(mode: str, seed: int):
    """A Keras layer that mirrors each image in every other epoch instead of at random.

    Random flips leave, by chance, some images unmirrored (or mirrored) for several epochs in a
    row; alternating ones show every image both ways in any two consecutive epochs, which makes
    short runs learn faster (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds", 2024). Which
    half of the images starts mirrored is drawn per image from ``seed`` and the image's own
    pixels, so the choice survives shuffling and caching without carrying image indices.

    ``mode`` is ``RandomFlip``'s: ``horizontal``, ``vertical`` or ``horizontal_and_vertical``
    (the left-right flip alternates every epoch, the up-down one every two: four epochs show
    all four mirror images). ``layer.epoch`` is set at each epoch's start by
    ``cnnhub.reproducibility.EpochRandomness``; left at 0 it gives one fixed mirror per image.
    """
    import keras  # lazy: keeps --help free of TensorFlow
    import numpy as np

    class AlternatingFlip(keras.layers.Layer):
        def __init__(self, mode: str, seed: int, **kwargs):
            super().__init__(**kwargs)
            self.mode, self.seed = mode, seed
            self.epoch = keras.Variable(0, dtype="int32", trainable=False, name="epoch")
            self._masks: np.ndarray | None = None

        def build(self, input_shape):
            # One random 0/1 pixel mask per flip axis: the parity of an image's pixel sum over
            # its mask is that image's start bit (a random subset's parity: a fair coin).
            shape = (2, 1, *input_shape[1:])
            self._masks = np.random.default_rng(self.seed).integers(0, 2, shape, dtype=np.int32)

        def call(self, images, training=True):
            if not training:
                return images
            ops = keras.ops
            pixels = ops.cast(ops.round(images), "int32")

            def start_bits(axis: int):  # 0: left-right, 1: up-down (only the flips in use)
                return ops.sum(pixels * self._masks[axis], axis=(1, 2, 3)) % 2

            epoch = ops.convert_to_tensor(self.epoch)
            flipped = images
            if self.mode != "vertical":
                flipped = _mirror(flipped, start_bits(0) + epoch, axis=2)
            if self.mode != "horizontal":
                every = 2 if self.mode == "horizontal_and_vertical" else 1
                flipped = _mirror(flipped, start_bits(1) + epoch // every, axis=1)
            return flipped

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "mode": self.mode, "seed": self.seed}

    def _mirror(images, keys, axis: int):
        """``images``, each mirrored along ``axis`` where its key is odd."""
        odd = keras.ops.reshape(keys % 2 == 1, (-1, 1, 1, 1))
        return keras.ops.where(odd, keras.ops.flip(images, axis=axis), images)

    return AlternatingFlip(mode, seed, name="alternating_flip")
