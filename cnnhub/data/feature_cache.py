"""Frozen-backbone fast path: compute backbone features once, train only the head on them.

With ``freeze_all`` the backbone never changes, so running it on every image in every epoch is
wasted work. The classifier is split at its backbone (``model_factory.split_at_backbone``;
both parts share its layers): training images go through the backbone once (or
FEATURE_CACHE_COPIES times with augmentation, each copy with its own augmentation seed), and the
head trains on those feature maps. Saved weights and models are still the full classifier's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnhub import run_hooks
from cnnhub.data.pipeline import make_dataset, prefetched, shuffle_by_epoch

# Feature sets a tuner keeps at most (run_hooks.feature_memo), one per backbone/size/data.
MEMO_ENTRIES = 4
# Config keys that change what the augmenter does to an image (with FEATURE_CACHE_COPIES).
_AUGMENTATION_KEYS = ("SEED", "AUG_")


def use_feature_cache(config: dict[str, Any], augmenter, mixer=None) -> bool:
    """FEATURE_CACHE: auto means on for freeze_all without augmentation; never with MixUp /
    CutMix (``mixer``: they mix images and labels per batch) or test-time augmentation (it
    scores views of the validation images); an explicit true with either is refused by the
    config checks (``cnnhub.settings``)."""
    if config["TRAINING_TYPE"] != "freeze_all" or config["FEATURE_CACHE"] == "false":
        return False
    if mixer is not None or config["TTA"] != "none":  # TTA scores views of the images
        return False
    return config["FEATURE_CACHE"] == "true" or augmenter is None


def cached_feature_datasets(extractor, splits, config: dict[str, Any], augmenter, randomness):
    """Return (training feature dataset, validation feature dataset): the images of ``splits``
    run once through ``extractor`` (the classifier's backbone part).

    The training dataset is shuffled by (seed, epoch) like the image pipeline, so resuming
    repeats the uninterrupted run.
    """
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    size = (config["IMG_HEIGHT"], config["IMG_WIDTH"])
    batch = config["BATCH_SIZE"]

    def images(split):
        return make_dataset(
            split, splits.num_classes, size, batch, training=False, seed=config["SEED"],
            cache=False, with_labels=False,
        )  # fmt: skip

    copies = config["FEATURE_CACHE_COPIES"] if augmenter is not None else 1

    def compute():
        features, labels = [], []
        for copy in range(copies):
            ds = images(splits.train)
            if augmenter is not None:
                randomness.on_epoch_begin(copy)  # a distinct, reproducible augmentation per copy
                ds = ds.map(lambda x: augmenter(x, training=True))
            features.append(extractor.predict(ds, verbose=0))
            labels.append(splits.train.encoded_targets(splits.num_classes))
        valid_x = extractor.predict(images(splits.valid), verbose=0)
        return np.concatenate(features), np.concatenate(labels), valid_x

    memo = run_hooks.current_feature_memo()
    if memo is None:
        train_x, train_labels, valid_x = compute()
    else:
        key = features_key(extractor, splits, config, copies if augmenter is not None else 0)
        reused = key in memo
        if not reused:
            while len(memo) >= MEMO_ENTRIES:  # oldest first: a tuner alternating backbones
                memo.pop(next(iter(memo)))
            memo[key] = compute()
        train_x, train_labels, valid_x = memo[key]
        print(f"Feature cache: {'reusing' if reused else 'keeping'} this backbone's features.")
    train_y = train_labels  # one-hot classes, or the task's targets
    train = tf.data.Dataset.from_tensor_slices((train_x, train_y))
    train = shuffle_by_epoch(train, len(train_x), config["SEED"], randomness.epoch)
    train = prefetched(train.batch(batch))
    valid = prefetched(tf.data.Dataset.from_tensor_slices(valid_x).batch(batch))
    print(
        f"Feature cache: backbone features of {len(train_x)} training and {len(valid_x)} "
        f"validation images computed once ({train_x.nbytes / 1e6:,.0f} MB); training the head."
    )
    return train, valid


def features_key(extractor, splits, config: dict[str, Any], augmented_copies: int) -> str:
    """What the backbone features of ``splits`` depend on, as one digest: the extractor's
    weights and input shape, both splits' images and labels, and, with augmentation
    (``augmented_copies`` > 0), the copies and every augmentation setting."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(extractor.input_shape).encode())
    for weight in extractor.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    for split in (splits.train, splits.valid):
        digest.update(np.ascontiguousarray(split.labels).tobytes())
        digest.update("\0".join(split.paths).encode("utf-8", "surrogateescape"))
        if split.images is not None:
            digest.update(np.ascontiguousarray(split.images).tobytes())
        digest.update(f"|{split.channels}|".encode())
    if augmented_copies:
        settings = {k: v for k, v in config.items() if k.startswith(_AUGMENTATION_KEYS)}
        digest.update(repr((augmented_copies, sorted(settings.items()))).encode())
    return digest.hexdigest()
