"""From any supported dataset to ``tf.data`` pipelines the model trains and is scored on.

``load_splits`` reads the training (and validation, test) data in any layout of
:mod:`cnnhub.sources` (class folders, CSV of pixels or paths, IDX, CIFAR .bin, .npz), makes the
train/valid split (``VAL_SPLIT``, ``SPLIT_FILE``; K folds in :mod:`cnnhub.folds`), checks the
splits agree, leaves undecodable files out (reported, never a crash mid-epoch) and inspects the
result (:mod:`cnnhub.inspect_data`). Everything that can fail on bad input fails here, before
a run folder exists. ``make_dataset`` turns a split into batches of raw 0-255 float pixels
with one-hot labels: parallel decode, optional cache (memory or file), shuffling and
augmentation for training only, prefetch.

In-memory sources stay arrays (never written out as image files); their ``Split.paths`` are
the sources' keys (``train.csv#17``), which the per-image reports show as ``image_path``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.errors import CnnhubError
from cnnhub.images import load_image


@dataclass
class Split:
    """One split: file paths (or an in-memory uint8 image array) and integer labels.

    ``channels`` is what the model gets (files are decoded, in-memory images converted, to it);
    ``cache_file`` makes :func:`make_dataset` cache this split's decoded images in that file
    instead of memory (``CACHE_DIR``).
    """

    labels: np.ndarray
    paths: list[str] = field(default_factory=list)
    images: np.ndarray | None = None
    needs_pil: frozenset[str] = frozenset()
    channels: int = 3
    cache_file: str | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)

    def subset(self, indices: Any) -> Split:
        """The samples at ``indices`` (in that order), decoded the same way."""
        indices = np.asarray(indices, dtype=np.int64)
        return Split(
            labels=self.labels[indices],
            paths=[self.paths[i] for i in indices] if self.paths else [],
            images=None if self.images is None else self.images[indices],
            needs_pil=self.needs_pil,
            channels=self.channels,
        )


@dataclass
class Splits:
    """Everything training needs to know about its data.

    ``test``/``test_source``: the test data (a Split, and the cleaned DataSource that
    ``evaluate_run`` scores after training); ``split_frame``: the ``split.csv`` rows when the
    validation set was cut from the training data; ``class_weight``: ``model.fit``'s argument.
    """

    class_names: list[str]
    train: Split
    valid: Split
    skipped: list[tuple[str, str]] = field(default_factory=list)
    test: Split | None = None
    test_source: Any = None
    split_frame: Any = None
    class_weight: dict[int, float] | None = None
    inspection: Any = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class DataOptions:
    """How the data is read and split: the config keys of the same (upper-case) names."""

    data_format: str = "auto"
    class_names_file: str = ""
    image_shape: tuple[int, ...] = ()
    val_split: float = 0.0
    split_file: str = ""
    folds: int = 0
    dev: int = 0
    seed: int = 42
    oversample: bool = False
    class_weight: str = "none"
    scan_cache: bool = True
    cache_dir: str = ""
    channels: int = 3

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DataOptions:
        """The options of a resolved config. The one place the model's input channels are
        decided: 1 for COLOR_MODE grayscale (custom nets only), else 3 (the backbones expect
        RGB); data of the other kind is converted in the pipeline."""
        return cls(
            data_format=config["DATA_FORMAT"],
            class_names_file=config["CLASS_NAMES_FILE"],
            image_shape=tuple(config["IMAGE_SHAPE"]),
            val_split=config["VAL_SPLIT"],
            split_file=config["SPLIT_FILE"],
            folds=config["FOLDS"],
            dev=config["DEV"],
            seed=config["SEED"],
            oversample=config["OVERSAMPLE"],
            class_weight=config["CLASS_WEIGHT"],
            scan_cache=config["SCAN_CACHE"],
            cache_dir=config["CACHE_DIR"],
            channels=input_channels(config),
        )

    @property
    def validation_from_train(self) -> bool:
        """Whether the validation set is cut from the training data (no -dvalid needed)."""
        return bool(self.val_split or self.split_file or self.folds)


def input_channels(config: dict[str, Any]) -> int:
    """Channels of the model's input: 1 for COLOR_MODE grayscale, else 3."""
    return 1 if config["COLOR_MODE"] == "grayscale" else 3


def check_save_location(save_location: str, data_dirs: dict[str, str]) -> None:
    """Refuse run folders inside a class-folder dataset, before anything is written.

    The run's plots are PNG files: under ``-dtrain`` the next run would list
    ``model_repository`` as a class and train on them. ``data_dirs`` maps each data flag
    (``-dtrain``) to its path; paths that are not folders (CSV, IDX, .npz) are not walked.
    """
    from cnnhub.images import within
    from cnnhub.run_folder import REPOSITORY

    repository = os.path.realpath(os.path.join(save_location or ".", REPOSITORY))
    for flag, path in data_dirs.items():
        if path and os.path.isdir(path) and within(repository, os.path.realpath(path)):
            raise CnnhubError(
                f"The run folders would be written inside the data folder `{path}` ({flag}), "
                f"where their plots would be read as images of a class next time. Pass a save "
                f"location outside the data with -sl/--save_loc. "
                f"Received: save_location={save_location!r}, {flag} {path}"
            )


# role: (what, flag)
_ROLES = {
    "train": ("training", "-dtrain"),
    "valid": ("validation", "-dvalid"),
    "test": ("test", "-dtest"),
}
_SALT = {"train": 0, "valid": 1, "test": 2}


def read_source(path: str, role: str, options: DataOptions, reference=None):
    """Read one dataset (any format) as a :class:`cnnhub.sources.DataSource`, checked.

    ``reference`` (the training source) makes this one use the same classes in the same order;
    different classes are an error naming them.
    """
    from cnnhub.sources import detect_format, load_source

    what, flag = _ROLES[role]
    path = os.fspath(path)
    if not path:
        raise CnnhubError(f"No {what} data given; pass {flag} PATH. Received: {flag} ''")
    if not os.path.exists(path):
        raise CnnhubError(
            f"The {what} data `{path}` does not exist. Pass a folder with one sub-folder of "
            f"images per class, or a CSV, IDX, CIFAR .bin or .npz file. Received: {flag} {path}"
        )
    fmt = detect_format(path) if options.data_format == "auto" else options.data_format
    names = options.class_names_file or None if fmt != "folder" else None
    shape = options.image_shape or None if fmt in ("csv_pixels", "npz") else None
    source = load_source(path, fmt, shape, names)
    if reference is None:
        if len(source.class_names) < 2:
            raise CnnhubError(
                "A classifier needs at least two classes (two sub-folders of images, or two "
                f"label values). Received: classes={source.class_names} in {path}"
            )
        return source
    return _align_classes(reference, source, what, f"{flag} {path}")


def check_class_names(source, received: str) -> None:
    """Refuse a class named like predict's below-threshold label (``uncertain``, any case)."""
    from cnnhub.run_loading import UNCERTAIN

    clash = [name for name in source.class_names if name.strip().casefold() == UNCERTAIN]
    if clash:
        raise CnnhubError(
            f"A class may not be named {clash[0]!r}: `{UNCERTAIN}` is the label predict gives "
            "an image below the confidence threshold. Rename that class (folder or label). "
            f"Received: {received}"
        )


def _align_classes(reference, source, what: str, received: str):
    """``source`` relabelled to ``reference``'s class order; different classes are an error."""
    from cnnhub.sources import DataSource

    if source.class_names == reference.class_names:
        return source
    if set(source.class_names) != set(reference.class_names):
        only_train = sorted(set(reference.class_names) - set(source.class_names))
        only_other = sorted(set(source.class_names) - set(reference.class_names))
        raise CnnhubError(
            f"The training and {what} data must hold the same classes. "
            f"Only in training: {only_train or 'none'}; only in {what}: "
            f"{only_other or 'none'}. Received: -dtrain {reference.origin}, {received}"
        )
    index = {name: i for i, name in enumerate(reference.class_names)}
    mapping = np.array([index[name] for name in source.class_names], dtype=np.int64)
    return DataSource(
        class_names=list(reference.class_names),
        labels=mapping[source.labels],
        paths=source.paths,
        images=source.images,
        keys=source.keys,
        root=source.root,
        origin=source.origin,
        data_format=source.data_format,
    )


def dev_subset(source, per_class: int, seed: int, role: str = "train"):
    """At most ``per_class`` samples of each class (seeded pick, original order kept)."""
    rng = np.random.default_rng([seed, _SALT[role]])
    keep = []
    for cls in range(source.num_classes):
        members = np.flatnonzero(source.labels == cls)
        keep.extend(rng.permutation(members)[:per_class].tolist())
    return source.subset(np.sort(np.asarray(keep, dtype=np.int64)))


def split_frame(source, valid_keys) -> Any:
    """``split.csv`` rows (``path,label,split``) of ``source``: valid for ``valid_keys``."""
    import pandas as pd

    valid_keys = set(valid_keys)
    return pd.DataFrame(
        {
            "path": source.keys,
            "label": [source.class_names[i] for i in source.labels],
            "split": ["valid" if k in valid_keys else "train" for k in source.keys],
        },
        columns=["path", "label", "split"],
    )


def _partition(train_src, valid_src, options: DataOptions):
    """(train, valid, split frame or None) by SPLIT_FILE, VAL_SPLIT or the given valid data."""
    from cnnhub.sources import apply_split_file, stratified_split

    if options.split_file:
        if not os.path.isfile(options.split_file):
            raise CnnhubError(
                f"The split file `{options.split_file}` does not exist. Pass the split.csv of an "
                f"earlier run. Received: split_file={options.split_file!r}"
            )
        train, valid = apply_split_file(train_src, options.split_file)
        return train, valid, split_frame(train_src, valid.keys)
    if options.val_split:
        return stratified_split(train_src, options.val_split, options.seed)
    return train_src, valid_src, None


@dataclass
class _Clean:
    """One split after the decode check: the kept samples and what was left out."""

    source: Any
    needs_pil: frozenset[str]
    skipped: list[tuple[str, str]]
    scan: Any


def scan_split(source, options: DataOptions) -> _Clean:
    """Decode-check a source's files (cached) and drop the unreadable ones."""
    if source.in_memory:
        return _Clean(source, frozenset(), [], None)
    from cnnhub.inspect_data import scan_source_files

    scan = scan_source_files(source.paths, source.origin, options.scan_cache, options.channels)
    kept = source.drop_paths([p for p, _ in scan.skipped])
    return _Clean(kept, frozenset(scan.needs_pil), list(scan.skipped), scan)


def check_classes_present(source, skipped: int, description: str, received: str) -> None:
    """Fail naming the classes of ``source`` that have no (readable) sample."""
    counts = source.class_counts()
    empty = [source.class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        why = f" ({skipped} unreadable file(s) left out)" if skipped else ""
        raise CnnhubError(
            f"Class(es) {empty} have no readable images in the {description}{why}; add images "
            f"or remove the class. Received: {received}"
        )


def to_split(clean: _Clean, channels: int) -> Split:
    """The pipeline's view of a cleaned source (in-memory: keys stand in for paths)."""
    source = clean.source
    if source.in_memory:
        return Split(
            labels=source.labels, paths=list(source.keys), images=source.images, channels=channels
        )
    return Split(
        labels=source.labels,
        paths=list(source.paths),
        needs_pil=clean.needs_pil,
        channels=channels,
    )


def _validation_hint(options: DataOptions) -> str:
    if options.val_split:
        return (
            " (a class needs at least 2 images for `val_split` to give validation one; "
            "add images or give -dvalid)"
        )
    return ""


def load_test(test_path: str, reference, options: DataOptions) -> _Clean | None:
    """Read, dev-subset and decode-check the test data; None without one."""
    if not test_path:
        return None
    source = read_source(test_path, "test", options, reference=reference)
    if options.dev:
        source = dev_subset(source, options.dev, options.seed, "test")
    clean = scan_split(source, options)
    check_classes_present(
        clean.source, len(clean.skipped), f"test data `{test_path}`", f"-dtest {test_path}"
    )
    return clean


def finish_splits(
    class_names: list[str],
    train: _Clean,
    valid: _Clean,
    test: _Clean | None,
    options: DataOptions,
    frame=None,
    inspection=None,
) -> Splits:
    """Class weights and oversampling on checked, cleaned splits -> :class:`Splits`."""
    from cnnhub.class_weights import oversample_indices, resolve_class_weight

    class_weight = resolve_class_weight(
        options.class_weight, class_names, train.source.class_counts()
    )
    train_split = to_split(train, options.channels)
    if options.oversample:
        order = oversample_indices(train.source.labels, options.seed)
        train_split = to_split(
            _Clean(train.source.subset(order), train.needs_pil, [], None), options.channels
        )
    skipped = [*train.skipped, *valid.skipped, *(test.skipped if test else [])]
    return Splits(
        class_names=list(class_names),
        train=train_split,
        valid=to_split(valid, options.channels),
        skipped=skipped,
        test=to_split(test, options.channels) if test else None,
        test_source=test.source if test else None,
        split_frame=frame,
        class_weight=class_weight,
        inspection=inspection,
    )


def load_splits(
    train_dir: str,
    valid_dir: str = "",
    test_dir: str = "",
    options: DataOptions | None = None,
    inspect: bool = True,
) -> Splits:
    """Read, split, check and inspect the data of one run (not K folds: see cnnhub.folds).

    The validation set is ``valid_dir``, or cut from the training data by
    ``options.split_file`` / ``options.val_split`` (``valid_dir`` is then ignored). Order: read
    -> split (on every listed sample, so split.csv covers unreadable files too and can be
    reused) -> DEV subset -> decode check (unreadable files left out) -> checks -> inspection
    -> class weights / oversampling.

    Raises:
        CnnhubError: missing or unreadable data, fewer than two classes, splits with different
            classes, a class with no readable image in a split, a bad split file or class
            weight.
    """
    options = options or DataOptions()
    train_src = read_source(train_dir, "train", options)
    check_class_names(train_src, f"-dtrain {train_dir}")
    valid_src = None
    if not options.validation_from_train:
        if not valid_dir:
            raise CnnhubError(
                "No validation data given: pass -dvalid PATH, or --val_split 0.2 to hold out "
                "part of the training data. Received: -dvalid ''"
            )
        valid_src = read_source(valid_dir, "valid", options, reference=train_src)
    test = load_test(test_dir, train_src, options)
    train, valid, frame = _partition(train_src, valid_src, options)
    if options.dev:
        train = dev_subset(train, options.dev, options.seed, "train")
        valid = dev_subset(valid, options.dev, options.seed, "valid")
    train_clean, valid_clean = scan_split(train, options), scan_split(valid, options)
    check_classes_present(
        train_clean.source,
        len(train_clean.skipped),
        f"training data `{train_dir}`",
        f"-dtrain {train_dir}",
    )
    where = (
        f"validation data `{valid_dir}`"
        if valid_src is not None
        else f"validation part of the training data `{train_dir}`"
    )
    check_classes_present(
        valid_clean.source,
        len(valid_clean.skipped),
        where + _validation_hint(options),
        f"-dvalid {valid_dir}" if valid_src is not None else _split_received(options),
    )
    inspection = None
    if inspect:
        inspection = inspect_clean(
            {"train": train_clean, "valid": valid_clean, "test": test}, options
        )
    return finish_splits(
        train_src.class_names, train_clean, valid_clean, test, options, frame, inspection
    )


def _split_received(options: DataOptions) -> str:
    if options.split_file:
        return f"split_file={options.split_file!r}"
    return f"val_split={options.val_split}"


def inspect_clean(cleaned: dict[str, _Clean | None], options: DataOptions):
    """The training-start inspection of cleaned splits (None entries are left out)."""
    from cnnhub.inspect_data import Inspection, split_report

    reports = [
        split_report(name, c.source, c.scan, c.skipped, options.scan_cache)
        for name, c in cleaned.items()
        if c is not None
    ]
    first = next(c for c in cleaned.values() if c is not None)
    return Inspection(list(first.source.class_names), reports)


def splits_from_config(config: dict[str, Any], inspect: bool = True) -> Splits:
    """:func:`load_splits` with a resolved config's data keys (not for FOLDS > 0)."""
    return load_splits(
        config["DATA_DIR_TRAIN"],
        "" if DataOptions.from_config(config).validation_from_train else config["DATA_DIR_VALID"],
        config["DATA_DIR_TEST"],
        DataOptions.from_config(config),
        inspect=inspect,
    )


def run_splits(config: dict[str, Any], run_dir: str | Path, inspect: bool = False) -> Splits:
    """The data splits a finished (or stopped) run trained on, rebuilt from its folder.

    A run whose validation set was cut from the training data (VAL_SPLIT, SPLIT_FILE, FOLDS)
    has ``split.csv``; it is applied to DATA_DIR_TRAIN again. Class weights, DEV and
    oversampling are recomputed from the same config, so the result is what training used.
    """
    split_csv = Path(run_dir) / "split.csv"
    if split_csv.is_file():
        config = dict(config, SPLIT_FILE=str(split_csv), VAL_SPLIT=0.0, FOLDS=0)
    return splits_from_config(config, inspect=inspect)


def run_validation_source(config: dict[str, Any], run_dir: str | Path, class_names: list[str]):
    """The validation data of a run as a DataSource, for re-scoring it (``evaluate_run``).

    None when the run validated on a whole class folder (DATA_DIR_VALID, no DEV): the caller
    reads that folder itself. Otherwise the run's ``split.csv`` is applied to DATA_DIR_TRAIN
    again, or DATA_DIR_VALID is read in its layout; then the same DEV pick as in training.
    """
    from types import SimpleNamespace

    from cnnhub.sources import apply_split_file, detect_format

    options = DataOptions.from_config(config)
    split_csv = Path(run_dir) / "split.csv"
    valid_dir = config["DATA_DIR_VALID"]
    if split_csv.is_file():
        train = read_source(config["DATA_DIR_TRAIN"], "train", options)
        _, valid = apply_split_file(train, split_csv)
    elif options.validation_from_train:
        raise CnnhubError(
            f"Run {run_dir} cut its validation set from the training data but has no split.csv, "
            f"so that set cannot be rebuilt. Pass --data_dir. Received: run_dir={str(run_dir)!r}"
        )
    else:
        layout = options.data_format
        if layout == "auto" and os.path.exists(valid_dir):
            layout = detect_format(valid_dir)
        if layout == "folder" and not options.dev:
            return None
        valid = read_source(valid_dir, "valid", options)
    reference = SimpleNamespace(class_names=list(class_names), origin=config["DATA_DIR_TRAIN"])
    valid = _align_classes(reference, valid, "validation", f"-dvalid {valid_dir}")
    if options.dev:
        valid = dev_subset(valid, options.dev, options.seed, "valid")
    return valid


def evaluation_source(
    config: dict[str, Any],
    run_dir: str | Path,
    class_names: list[str],
    data_dir: str | None = None,
    flag: str = "--data_dir",
):
    """The data a run is scored on, as a DataSource: ``data_dir`` (any layout) when given, else
    the run's validation data as training had it (:func:`run_validation_source`, or the
    DATA_DIR_VALID folder). The one way ``evaluate``, ``errors`` and ``export`` find it;
    ``flag`` is the option that passes ``data_dir``, named when the data is not there."""
    from cnnhub.sources import load_source

    if data_dir is None:
        source = run_validation_source(config, run_dir, class_names)
        if source is not None:
            return source
    path = data_dir or config["DATA_DIR_VALID"]
    if not path or not os.path.exists(path):
        where = "given" if data_dir else "of the run (DATA_DIR_VALID of run_config.json)"
        raise CnnhubError(
            f"The validation data {where} is not there: {path!r}. Pass the data to score on "
            f"with {flag} PATH. Received: {flag}={path!r}"
        )
    return load_source(path)


def check_same_classes(source, class_names: list[str], received: str) -> None:
    """Fail naming the differences when ``source`` does not hold exactly the run's classes."""
    if list(source.class_names) != list(class_names):
        only_data = sorted(set(source.class_names) - set(class_names))
        only_run = sorted(set(class_names) - set(source.class_names))
        raise CnnhubError(
            f"The classes in {source.origin} differ from the run's: only in the data: "
            f"{only_data or 'none'}; only in the run: {only_run or 'none'}. Pass a folder with "
            f"the run's class sub-folders. Received: {received}"
        )


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


def split_of_source(source, scan_cache: bool = True, channels: int = 3):
    """``(Split, skipped files)`` of a DataSource: its files decode-checked, the bad ones out."""
    options = DataOptions(scan_cache=scan_cache, channels=channels)
    clean = scan_split(source, options)
    return to_split(clean, channels), clean.skipped


def build_augmenter(config: dict[str, Any], seed: int):
    """The training augmentation as a Sequential of Keras preprocessing layers, or None."""
    import keras
    from keras import layers

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


def _decode_tf(path, image_size, channels: int = 3):
    import tensorflow as tf

    from cnnhub.tf_images import decode_bytes

    # The same op the scan checked the file with (cnnhub.images.scan_images).
    image = decode_bytes(tf.io.read_file(path), channels)
    image = tf.image.resize(image, image_size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _decode_pil(path, image_size, channels: int = 3):
    import tensorflow as tf

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
    import tensorflow as tf

    from cnnhub.images import UnreadableImage, needs_pil

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
    import tensorflow as tf

    channels = split.channels
    if split.images is not None:
        have = split.images.shape[-1]

        def convert(x):
            if split.images.shape[1:3] != tuple(image_size):
                x = tf.image.resize(x, image_size, antialias=True)
                x = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
            if have == 1 and channels == 3:
                x = tf.image.grayscale_to_rgb(x)
            elif have == 3 and channels == 1:  # luma, as Pillow's convert("L")
                x = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(x, tf.float32))), tf.uint8)
            return x

        return split.images, convert
    from cnnhub.tf_images import path_tensor_values

    flags = [p in split.needs_pil for p in split.paths]

    def decode(item):
        path, use_pil = item
        return tf.cond(
            use_pil,
            lambda: _decode_pil(path, image_size, channels),
            lambda: _decode_tf(path, image_size, channels),
        )

    return (path_tensor_values(split.paths), flags), decode


def shuffle_by_epoch(dataset, buffer: int, seed: int, epoch=None):
    """Shuffle ``dataset`` in an order keyed to (seed, epoch).

    ``epoch`` is a ``tf.Variable`` set at each epoch's start (see
    ``cnnhub.reproducibility.EpochRandomness``): epoch k gets the same order whether the run went
    straight through or was resumed. Without it, the order changes every iteration (seeded).
    """
    import tensorflow as tf

    if epoch is None:
        return dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    # flat_map reads the variable when each epoch's iterator starts, not at definition.
    return tf.data.Dataset.from_tensors(0).flat_map(
        lambda _: dataset.shuffle(
            buffer, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False
        )
    )


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
):
    """Batches of (float32 0-255 images, one-hot labels) for ``split``.

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
    """
    import tensorflow as tf

    items, decode = _decoder(split, image_size)
    ds = tf.data.Dataset.from_tensor_slices((items, split.labels))
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
        return x, tf.one_hot(y, num_classes)

    parallel = None if deterministic and augmenter is not None else tf.data.AUTOTUNE
    return prefetched(ds.map(to_model_input, num_parallel_calls=parallel))


def prefetched(dataset):
    """``dataset`` with prefetching, and without tf.data's autotuning model thread.

    Keras makes a new iterator every epoch and destroying the old one joins its autotuning
    thread, which (TensorFlow 2.21) first sleeps out its optimisation period: up to 50 s of
    idle machine at every epoch start of the Fashion-MNIST recipe (benchmarks/README.md,
    "Epoch stalls"). Without the model thread an ``AUTOTUNE`` map runs one call per core (at
    most 16) and prefetch buffers still grow when the consumer waits.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
