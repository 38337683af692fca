"""From folders of images to ``tf.data`` pipelines the model trains and is scored on.

``load_splits`` finds the classes, checks train and valid agree, and leaves undecodable files
out (reported, never a crash mid-epoch). ``make_dataset`` turns a split into batches of raw
0-255 float pixels with one-hot labels: parallel decode, optional cache, shuffling and
augmentation for training only, prefetch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.errors import CnnhubError
from cnnhub.images import list_class_folder, load_image, scan_images


@dataclass
class Split:
    """One split: file paths (or an in-memory uint8 image array) and integer labels."""

    labels: np.ndarray
    paths: list[str] = field(default_factory=list)
    images: np.ndarray | None = None
    needs_pil: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)


@dataclass
class Splits:
    """Everything training needs to know about its data."""

    class_names: list[str]
    train: Split
    valid: Split
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _check_folder(path: str, role: str, flag: str) -> Path:
    folder = Path(path)
    if not str(path):
        raise CnnhubError(f"No {role} folder given; pass {flag} DIR. Received: {flag} ''")
    if not folder.is_dir():
        raise CnnhubError(
            f"The {role} folder does not exist or is not a folder: {path}. Pass a folder with one "
            f"sub-folder of images per class. Received: {flag} {path}"
        )
    return folder


def _scan_folder(path: str, role: str, flag: str) -> tuple[list[str], list[tuple[str, int]]]:
    folder = _check_folder(path, role, flag)
    class_names, items = list_class_folder(folder)
    if not class_names:
        raise CnnhubError(
            f"The {role} folder {path} has no class sub-folders; put each class's images in a "
            f"sub-folder named after the class. Received: {flag} {path}"
        )
    return class_names, items


def load_splits(train_dir: str, valid_dir: str) -> Splits:
    """Read a train and a valid class-folder tree into ``Splits``, checking them first.

    Raises:
        CnnhubError: a folder is missing or empty, fewer than two classes, the two folders hold
            different classes, or a class is left with no decodable image.
    """
    train_classes, train_items = _scan_folder(train_dir, "training", "-dtrain")
    valid_classes, valid_items = _scan_folder(valid_dir, "validation", "-dvalid")
    if train_classes != valid_classes:
        only_train = sorted(set(train_classes) - set(valid_classes))
        only_valid = sorted(set(valid_classes) - set(train_classes))
        raise CnnhubError(
            "The training and validation folders must hold the same classes. "
            f"Only in training: {only_train or 'none'}; only in validation: "
            f"{only_valid or 'none'}. Received: -dtrain {train_dir}, -dvalid {valid_dir}"
        )
    if len(train_classes) < 2:
        raise CnnhubError(
            "A classifier needs at least two classes (two sub-folders of images). "
            f"Received: classes={train_classes} in {train_dir}"
        )
    skipped: list[tuple[str, str]] = []
    splits = []
    for items, role, path in (
        (train_items, "training", train_dir),
        (valid_items, "validation", valid_dir),
    ):
        scan = scan_images([p for p, _ in items])
        skipped.extend(scan.skipped)
        ok = set(scan.ok)
        kept = [(p, label) for p, label in items if p in ok]
        counts = np.bincount([label for _, label in kept], minlength=len(train_classes))
        empty = [train_classes[i] for i in np.flatnonzero(counts == 0)]
        if empty:
            raise CnnhubError(
                f"Class folder(s) {empty} in the {role} folder {path} have no readable images; "
                "add images or remove the folder."
            )
        splits.append(
            Split(
                paths=[p for p, _ in kept],
                labels=np.array([label for _, label in kept], dtype=np.int64),
                needs_pil=frozenset(scan.needs_pil),
            )
        )
    return Splits(train_classes, splits[0], splits[1], skipped)


def describe(splits: Splits) -> str:
    """A table of images per class and split, printed at the start of training."""
    train = splits.train.counts(splits.num_classes)
    valid = splits.valid.counts(splits.num_classes)
    width = max(len("class"), *(len(c) for c in splits.class_names))
    lines = [f"  {'class':<{width}}  {'train':>7}  {'valid':>7}"]
    for name, t, v in zip(splits.class_names, train, valid):
        lines.append(f"  {name:<{width}}  {t:>7}  {v:>7}")
    lines.append(f"  {'total':<{width}}  {train.sum():>7}  {valid.sum():>7}")
    if splits.skipped:
        lines.append(f"  skipped {len(splits.skipped)} unreadable file(s) (see skipped_files.csv)")
    return "\n".join(lines)


def build_augmenter(config: dict[str, Any], seed: int):
    """The training augmentation as a Sequential of Keras preprocessing layers, or None."""
    import keras
    from keras import layers

    steps = []
    flip = {
        (True, True): "horizontal_and_vertical",
        (True, False): "horizontal",
        (False, True): "vertical",
    }.get((config["AUG_HORIZONTAL_FLIP"], config["AUG_VERTICAL_FLIP"]))
    if flip:
        steps.append(layers.RandomFlip(flip, seed=seed))
    if config["AUG_ROTATION"]:
        steps.append(layers.RandomRotation(config["AUG_ROTATION"], fill_mode="nearest", seed=seed))
    if config["AUG_ZOOM"]:
        steps.append(layers.RandomZoom(config["AUG_ZOOM"], fill_mode="nearest", seed=seed))
    if config["AUG_TRANSLATION"]:
        t = config["AUG_TRANSLATION"]
        steps.append(layers.RandomTranslation(t, t, fill_mode="nearest", seed=seed))
    if config["AUG_CONTRAST"]:
        steps.append(layers.RandomContrast(config["AUG_CONTRAST"], value_range=(0, 255), seed=seed))
    if config["AUG_BRIGHTNESS"]:
        steps.append(
            layers.RandomBrightness(config["AUG_BRIGHTNESS"], value_range=(0, 255), seed=seed)
        )
    return keras.Sequential(steps, name="augmentation") if steps else None


def _decode_tf(path, image_size):
    import tensorflow as tf

    raw = tf.io.read_file(path)
    # INTEGER_ACCURATE decodes JPEGs exactly as Pillow (cnnhub.images.load_image) does, so
    # training, prediction and export all see the same pixels.
    image = tf.cond(
        tf.io.is_jpeg(raw),
        lambda: tf.io.decode_jpeg(raw, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(raw, channels=3, expand_animations=False),
    )
    image = tf.image.resize(image, image_size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _decode_pil(path, image_size):
    import tensorflow as tf

    def load(p):
        return load_image(p.decode("utf-8"), tuple(image_size), channels=3)

    image = tf.numpy_function(load, [path], tf.uint8, stateful=False)
    return tf.ensure_shape(image, (*image_size, 3))


def _decoder(split: Split, image_size: tuple[int, int]):
    """The elements of ``split`` before decoding, and the function that decodes one."""
    import tensorflow as tf

    if split.images is not None:
        if split.images.shape[1:3] == tuple(image_size):
            return split.images, lambda x: x
        return split.images, lambda x: tf.cast(
            tf.round(tf.image.resize(x, image_size, antialias=True)), tf.uint8
        )
    flags = [p in split.needs_pil for p in split.paths]

    def decode(item):
        path, use_pil = item
        return tf.cond(
            use_pil, lambda: _decode_pil(path, image_size), lambda: _decode_tf(path, image_size)
        )

    return (split.paths, flags), decode


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
):
    """Batches of (float32 0-255 images, one-hot labels) for ``split``.

    Training data is reshuffled every epoch (seeded) and augmented; validation data keeps the
    split's order so predictions line up with ``split.labels``. Without ``cache`` the file list
    is shuffled before decoding, so memory does not grow with the dataset.
    """
    import tensorflow as tf

    items, decode = _decoder(split, image_size)
    ds = tf.data.Dataset.from_tensor_slices((items, split.labels))
    shuffle = training and with_labels
    if shuffle and not cache:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda item, y: (decode(item), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if cache:
        ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def to_model_input(x, y):
        x = tf.cast(x, tf.float32)
        if augmenter is not None and training:
            x = augmenter(x, training=True)
        if not with_labels:
            return x
        return x, tf.one_hot(y, num_classes)

    return ds.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
