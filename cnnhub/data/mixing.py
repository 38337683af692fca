"""MixUp / CutMix (``AUG_MIXUP``, ``AUG_CUTMIX``): Keras layers that mix pairs of training
images and their one-hot labels, switched off for the last ``MIX_OFF_EPOCHS`` epochs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf


def build_mixer(
    config: dict[str, Any], seed: int, epochs: Callable[[], int] | None = None
) -> BatchMixer | None:
    """MixUp or CutMix as a :class:`BatchMixer` (also the callback that turns it off for the
    last ``MIX_OFF_EPOCHS`` epochs), or None when neither is on. ``seed`` is the run's SEED;
    ``epochs`` gives the run's length when it may change (``--time_budget``: its plan), else
    EPOCHS."""
    seed += 16  # build_augmenter's layers take seed ... seed + 15
    if config["AUG_MIXUP"]:
        layer = keras.layers.MixUp(alpha=config["AUG_MIXUP"], seed=seed)
    elif config["AUG_CUTMIX"]:
        layer = keras.layers.CutMix(factor=config["AUG_CUTMIX"], seed=seed)
    else:
        return None
    return BatchMixer(layer, config["MIX_OFF_EPOCHS"], epochs or (lambda: config["EPOCHS"]))


class BatchMixer(keras.callbacks.Callback):
    """Mix (images, one-hot labels) batches with a Keras MixUp/CutMix layer, except in the
    last ``off_epochs`` of the run's ``epochs()``, whose batches pass unchanged.

    A callback: at each epoch's start it sets the switch that the ``tf.data`` map reads when
    that epoch's iterator runs, so a resumed run switches at the same epoch. The layer's random
    state is re-keyed per epoch by ``cnnhub.reproducibility.EpochRandomness``.
    """

    def __init__(self, layer, off_epochs: int, epochs: Callable[[], int]):
        super().__init__()
        self.layer = layer
        self.off_epochs = off_epochs
        self.epochs = epochs
        self.active = tf.Variable(True, trainable=False, name="mixing_on")

    def on_epoch_begin(self, epoch, logs=None):
        self.active.assign(epoch < self.epochs() - self.off_epochs)

    def __call__(self, images, labels):
        """The batch mixed (while active) or as it is; ``labels`` are float one-hot rows."""

        def mixed():
            out = self.layer({"images": images, "labels": labels}, training=True)
            return out["images"], tf.cast(out["labels"], labels.dtype)

        return tf.cond(self.active, mixed, lambda: (images, labels))
