"""Randomness keyed to (seed, epoch), so a resumed run repeats what the uninterrupted run did.

Keras random layers (augmentation, dropout) draw from ``SeedGenerator`` states that advance with
every call, and ``tf.data`` reshuffles from a per-dataset counter: both would restart from the
beginning after a crash. ``EpochRandomness`` instead sets, at the start of every epoch, the
shuffle's epoch variable and every seed generator's state from (SEED, epoch), and the epoch of
layers that follow it (``cnnhub.data.augment.alternating_flip``).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

# Draws within one epoch advance a generator's second state word by one per call; epochs are
# spaced this far apart so their streams never overlap.
_EPOCH_STRIDE = 1_000_000


def seed_run(config: dict[str, Any]) -> None:
    """Seed Python, NumPy and TensorFlow with SEED; with DETERMINISTIC also make TensorFlow's
    ops deterministic (training and the learning-rate sweep alike)."""
    if config["DETERMINISTIC"]:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config["SEED"])


def _layers_within(*layers_or_models) -> list:
    """The given layers and every layer within them (recursively: the layers of a model, and
    layers held as attributes, as RandAugment and AugMix hold theirs), each once."""
    found, seen = [], set()
    stack = list(layers_or_models)
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        found.append(item)
        stack.extend(v for v in vars(item).values() if isinstance(v, keras.layers.Layer))
        stack.extend(getattr(item, "layers", []) or [])
    return found


def seed_generators(*layers_or_models) -> list:
    """Every ``keras.random.SeedGenerator`` owned by the given layers or the layers within
    them."""
    found, seen = [], set()
    for layer in _layers_within(*layers_or_models):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    return found


class EpochRandomness(keras.callbacks.Callback):
    """At each epoch start: set the data epoch variable and re-key every random layer (those
    given, e.g. the augmenter and the MixUp/CutMix layer, and the model's)."""

    def __init__(self, seed: int, *random_layers):
        super().__init__()
        self.seed = seed
        self.random_layers = random_layers
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)
        for layer in _layers_within(*self.random_layers):
            if isinstance(getattr(layer, "epoch", None), keras.Variable):
                layer.epoch.assign(epoch)  # layers that act by epoch (AlternatingFlip)
        generators = seed_generators(*self.random_layers, self.model)
        for index, generator in enumerate(generators):
            dtype = generator.state.dtype
            state = [self.seed + index, epoch * _EPOCH_STRIDE]
            generator.state.assign(keras.ops.convert_to_tensor(state, dtype=dtype))
