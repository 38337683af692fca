"""A split to ``tf.data`` batches of raw 0-255 float pixels with one-hot labels: parallel decode
(TensorFlow, or Pillow for the files it gets wrong), optional cache (memory or file),
shuffling and augmentation for training only, prefetch."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np

from cnnhub.data.images import UnreadableImage, load_image, needs_pil
from cnnhub.data.sets import Split
from cnnhub.data.tf_images import decode_bytes, path_tensor_values, prefetched


def resize_pixels(image, image_size):
    """``image`` resized to ``image_size`` (antialiased bilinear, as Pillow's
    :func:`~cnnhub.data.images.load_image`), rounded back to uint8 pixels."""
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    out = tf.image.resize(image, image_size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def _decode_tf(path, image_size, channels: int = 3):
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    # The same op the scan checked the file with (cnnhub.data.scan.scan_images).
    image = decode_bytes(tf.io.read_file(path), channels)
    # A resize to the image's own size returns its pixels; skipping it makes the first pass
    # over images already at the model's size 2.4x faster (benchmarks/bench_decode.py).
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.constant(image_size, tf.int32)))
    out = tf.cond(same, lambda: image, lambda: resize_pixels(image, image_size))
    # Static shape, as resize gives it: batching and the augmentation layers need it.
    return tf.ensure_shape(out, (*image_size, channels))


def _decode_pil(path, image_size, channels: int = 3):
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    def load(p):
        return load_image(os.fsdecode(p), tuple(image_size), channels=channels)

    image = tf.numpy_function(load, [path], tf.uint8, stateful=False)
    return tf.ensure_shape(image, (*image_size, channels))


def decode_file(
    path: str | os.PathLike, image_size: tuple[int, int], channels: int = 3
) -> np.ndarray:
    """One image file decoded as :func:`make_dataset` decodes it: uint8 (height, width, channels).

    The pipeline's own route, file by file: Pillow (``load_image``) for the files ``needs_pil``
    picks, TensorFlow's decoder and resize otherwise. For files met outside a dataset
    (``predict``, the explain commands, ``export``).

    Raises:
        UnreadableImage: the file cannot be decoded.
    """
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    size = (int(image_size[0]), int(image_size[1]))
    if needs_pil(path, channels):
        return load_image(path, size, channels=channels)
    try:
        image = _decode_tf(tf.constant(os.fsencode(path)), size, channels)
    except (tf.errors.OpError, ValueError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        reason = (message.strip().splitlines() or ["cannot decode"])[0]
        raise UnreadableImage(reason[:200], path) from None
    return image.numpy()


def _decoder(split: Split, image_size: tuple[int, int]):
    """The elements of ``split`` before decoding, and the function that decodes one."""
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    channels = split.channels
    if split.images is not None:
        have = split.images.shape[-1]

        def convert(x):
            if split.images.shape[1:3] != tuple(image_size):
                x = resize_pixels(x, image_size)
            if have == 1 and channels == 3:
                x = tf.image.grayscale_to_rgb(x)
            elif have == 3 and channels == 1:  # luma, as Pillow's convert("L")
                x = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(x, tf.float32))), tf.uint8)
            return x

        return split.images, convert

    flags = [p in split.needs_pil for p in split.paths]

    def decode(item):
        path, use_pil = item
        return tf.cond(
            use_pil,
            lambda: _decode_pil(path, image_size, channels),
            lambda: _decode_tf(path, image_size, channels),
        )

    return (path_tensor_values(split.paths), flags), decode


_MAX_SEED = 2**31 - 1  # TensorFlow reduces seeds modulo this


def shuffle_by_epoch(dataset, buffer: int, seed: int, epoch=None):
    """Shuffle ``dataset`` in an order keyed to (seed, epoch).

    ``epoch`` is a ``tf.Variable`` set at each epoch's start (see
    ``cnnhub.reproducibility.EpochRandomness``): epoch k gets the same order whether the run went
    straight through or was resumed. Without it, the order changes every iteration (seeded).
    """
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    if epoch is None:
        return dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

    def epoch_order(_):
        # TensorFlow compares the (global seed, op seed) pair with (0, 0) by Python's ==, which
        # a tensor op seed cannot answer when the global seed is 0 modulo 2**31 - 1 (SEED 0):
        # this function's graph then takes seed 1. Other global seeds keep their orders.
        graph = tf.compat.v1.get_default_graph()
        if graph.seed is not None and graph.seed % _MAX_SEED == 0:
            graph.seed = 1
        return dataset.shuffle(
            buffer, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False
        )

    # flat_map reads the variable when each epoch's iterator starts, not at definition; it
    # hides the length, which the learning-rate schedules need (steps per epoch): restore it.
    shuffled = tf.data.Dataset.from_tensors(0).flat_map(epoch_order)
    return shuffled.apply(tf.data.experimental.assert_cardinality(dataset.cardinality()))


def make_dataset(
    split: Split,
    num_classes: int,
    image_size: tuple[int, int],
    batch_size: int,
    training: bool,
    seed: int,
    cache: bool = True,
    augmenter=None,
    with_labels: bool = True,
    epoch=None,
    deterministic: bool = False,
    cache_file: str | None = None,
    mixer=None,
):
    """Batches of (float32 0-255 images, one-hot labels or the split's ``targets``) for
    ``split``.

    Training data is shuffled every epoch and augmented; validation data keeps the split's
    order so predictions line up with ``split.labels``. Without ``cache`` the file list is
    shuffled before decoding, so memory does not grow with the dataset.

    ``epoch`` (a ``tf.Variable`` that ``cnnhub.reproducibility.EpochRandomness`` sets at each
    epoch's start) keys the shuffle order to (seed, epoch): epoch k sees the same order whether
    the run went straight through or was resumed. ``deterministic`` runs augmentation in one
    thread, so random draws happen in the same order every run.

    ``cache_file`` (default ``split.cache_file``; ``CACHE_DIR``) caches decoded images in that
    file instead of memory, for data larger than RAM. A file cache replays the order of its
    first pass, so training data is shuffled once (seeded) before it and then, each epoch,
    through a bounded buffer of min(n, 10,000) images instead of a full-size one.

    ``mixer`` (``cnnhub.data.mixing.BatchMixer``, training only) mixes each augmented batch's
    images and one-hot labels (MixUp/CutMix), so its labels may be soft.
    """
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    items, decode = _decoder(split, image_size)
    # Class indices are one-hot encoded per batch; other tasks' targets are the model's already.
    one_hot = split.targets is None
    ds = tf.data.Dataset.from_tensor_slices((items, split.model_targets()))
    shuffle = training and with_labels

    cache_file = cache_file if cache_file is not None else split.cache_file
    file_cache = bool(cache and cache_file)  # CACHE_DIR (data loading side)
    buffer = min(len(split), 10_000) if file_cache else len(split)

    def shuffled(dataset):
        return shuffle_by_epoch(dataset, buffer, seed, epoch)

    if shuffle and not cache:
        ds = shuffled(ds)
    if shuffle and file_cache:  # one seeded global order, replayed by the file cache
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=False)
    ds = ds.map(
        lambda item, y: (decode(item), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if cache:
        ds = ds.cache(cache_file if file_cache else "")
        if shuffle:
            ds = shuffled(ds)
    ds = ds.batch(batch_size)

    def to_model_input(x, y):
        x = tf.cast(x, tf.float32)
        if augmenter is not None and training:
            x = augmenter(x, training=True)
        if not with_labels:
            return x
        if not one_hot:
            return x, y
        y = tf.one_hot(y, num_classes)
        if mixer is not None and training:
            x, y = mixer(x, y)
        return x, y

    randomised = augmenter is not None or mixer is not None
    parallel = None if deterministic and randomised else tf.data.AUTOTUNE
    if randomised and training:
        # AugMix picks its chains' operations with Python's random while map traces it: seed
        # it, so a resumed process builds the same graph.
        random.seed(seed)
    return prefetched(ds.map(to_model_input, num_parallel_calls=parallel))


def evaluation_dataset(
    split: Split, config: dict[str, Any], num_classes: int, batch_size: int | None = None
):
    """Batches of model input (no labels, the split's order) to score a run's weights on."""
    return make_dataset(
        split,
        num_classes=num_classes,
        image_size=(config["IMG_HEIGHT"], config["IMG_WIDTH"]),
        batch_size=batch_size or config["BATCH_SIZE"],
        training=False,
        seed=config["SEED"],
        cache=True,
        with_labels=False,
    )
