"""From any supported dataset to ``tf.data`` pipelines the model trains and is scored on.

``load_splits`` reads the training (and validation, test) data in any layout of
:mod:`cnnhub.data.sources` (class folders, CSV of pixels or paths, IDX, CIFAR .bin, .npz), makes the
train/valid split (``VAL_SPLIT``, ``SPLIT_FILE``; K folds in :mod:`cnnhub.folds`), checks the
splits agree, leaves undecodable files out (reported, never a crash mid-epoch) and inspects the
result (:mod:`cnnhub.data.inspect`). Everything that can fail on bad input fails here, before
a run folder exists. ``make_dataset`` turns a split into batches of raw 0-255 float pixels
with one-hot labels: parallel decode, optional cache (memory or file), shuffling and
augmentation for training only, prefetch.

In-memory sources stay arrays (never written out as image files); their ``Split.paths`` are
the sources' keys (``train.csv#17``), which the per-image reports show as ``image_path``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from cnnhub.configuration import replace as replace_config
from cnnhub.data.class_weights import oversample_indices, resolve_class_weight
from cnnhub.data.inspect import Inspection, split_report
from cnnhub.data.scan import scan_source
from cnnhub.data.sources import DataSource, detect_format, load_source
from cnnhub.data.splits import apply_split_file, split_frame, stratified_split
from cnnhub.errors import CnnhubError
from cnnhub.tasks import get_task


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
    targets: np.ndarray | None = None  # float32 (N, outputs) for tasks other than single_label

    def __len__(self) -> int:
        return len(self.labels)

    def model_targets(self) -> np.ndarray:
        """What the model is scored against per sample: ``targets`` when the task has them
        (regression, multi-label), else the integer class ``labels``."""
        return self.labels if self.targets is None else self.targets

    def encoded_targets(self, num_classes: int) -> np.ndarray:
        """float32 (N, outputs): one-hot ``labels``, or ``targets`` when the task has them."""
        if self.targets is None:
            return np.eye(num_classes, dtype="float32")[self.labels]
        return self.targets

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
            targets=None if self.targets is None else self.targets[indices],
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
    task: str = "single_label"
    target_column: str = ""
    num_targets: int = 1
    label_separator: str = "|"

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
            task=config.get("TASK", "single_label"),
            target_column=config.get("TARGET_COLUMN", ""),
            num_targets=config.get("NUM_TARGETS", 1),
            label_separator=config.get("LABEL_SEPARATOR", "|"),
        )

    @property
    def validation_from_train(self) -> bool:
        """Whether the validation set is cut from the training data (no -dvalid needed)."""
        return bool(self.val_split or self.split_file or self.folds)


def input_channels(config: dict[str, Any]) -> int:
    """Channels of the model's input: 1 for COLOR_MODE grayscale, else 3."""
    return 1 if config["COLOR_MODE"] == "grayscale" else 3


UNCERTAIN = "uncertain"
"""The label predict gives an image below the confidence threshold: no class may be named so."""

# role: (what, flag)
_ROLES = {
    "train": ("training", "-dtrain"),
    "valid": ("validation", "-dvalid"),
    "test": ("test", "-dtest"),
}
_SALT = {"train": 0, "valid": 1, "test": 2}


def read_source(path: str, role: str, options: DataOptions, reference=None):
    """Read one dataset (any format) as a :class:`cnnhub.data.sources.DataSource`, checked.

    ``reference`` (the training source) makes this one use the same classes in the same order;
    different classes are an error naming them.
    """

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
    task = get_task(options.task)
    # Label sets: the task reads the names file itself (a cell joins several names).
    names = options.class_names_file or None if fmt != "folder" and not task.label_sets else None
    shape = options.image_shape or None if fmt in ("csv_pixels", "npz") else None
    source = load_source(path, fmt, shape, names, **_label_column(options, fmt))
    source = task.label_source(source, options, f"{flag} {path}")
    if reference is None:
        task.check_training_source(source, path)
        return source
    return _align_classes(reference, source, what, f"{flag} {path}", task.label_sets)


def _label_column(options: DataOptions, fmt: str) -> dict[str, Any]:
    """How the task's labels are read: the CSV column (csv_paths: TARGET_COLUMN's first), and
    whether an empty label cell is an image without a label (label sets)."""
    found: dict[str, Any] = {}
    if fmt == "csv_paths" and options.target_column:
        found["label_column"] = options.target_column.split(",")[0].strip()
    if fmt == "csv_paths" and get_task(options.task).label_sets:
        found["allow_empty_labels"] = True
    return found


def check_class_names(source, received: str) -> None:
    """Refuse a class named like predict's below-threshold label (``uncertain``, any case)."""

    clash = [name for name in source.class_names if name.strip().casefold() == UNCERTAIN]
    if clash:
        raise CnnhubError(
            f"A class may not be named {clash[0]!r}: `{UNCERTAIN}` is the label predict gives "
            "an image below the confidence threshold. Rename that class (folder or label). "
            f"Received: {received}"
        )


def _align_classes(reference, source, what: str, received: str, label_sets: bool = False):
    """``source`` relabelled to ``reference``'s class order; different classes are an error
    (with ``label_sets``, multi-label data, ``source`` may lack some of them)."""

    if source.class_names == reference.class_names:
        return source
    if label_sets and set(source.class_names) <= set(reference.class_names):
        return _align_label_sets(reference, source)
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
    return replace(source, class_names=list(reference.class_names), labels=mapping[source.labels])


def _align_label_sets(reference, source):
    """Multi-label ``source`` with ``reference``'s label columns: a split may lack a label
    (rare labels), which is then a column of zeros."""
    index = {name: i for i, name in enumerate(reference.class_names)}
    targets = np.zeros((len(source), len(reference.class_names)), dtype=np.float32)
    targets[:, [index[name] for name in source.class_names]] = source.targets
    return replace(
        source,
        class_names=list(reference.class_names),
        labels=targets.argmax(axis=1),
        targets=targets,
    )


def dev_subset(source, per_class: int, seed: int, role: str = "train"):
    """At most ``per_class`` samples of each class (seeded pick, original order kept)."""
    rng = np.random.default_rng([seed, _SALT[role]])
    keep = []
    for cls in range(source.num_classes):
        members = np.flatnonzero(source.labels == cls)
        keep.extend(rng.permutation(members)[:per_class].tolist())
    return source.subset(np.sort(np.asarray(keep, dtype=np.int64)))


def _partition(train_src, valid_src, options: DataOptions):
    """(train, valid, split frame or None) by SPLIT_FILE, VAL_SPLIT or the given valid data."""

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


def to_split(source, channels: int) -> Split:
    """The pipeline's view of a checked DataSource (in-memory: keys stand in for paths)."""
    return Split(
        labels=source.labels,
        paths=list(source.keys if source.in_memory else source.paths),
        images=source.images,  # None for files
        needs_pil=source.needs_pil,  # empty for in-memory sources
        channels=channels,
        targets=source.targets,
    )


def _validation_hint(options: DataOptions) -> str:
    if options.val_split:
        return (
            " (a class needs at least 2 images for `val_split` to give validation one; "
            "add images or give -dvalid)"
        )
    return ""


def load_test(test_path: str, reference, options: DataOptions) -> DataSource | None:
    """Read, dev-subset and decode-check the test data; None without one."""
    if not test_path:
        return None
    source = read_source(test_path, "test", options, reference=reference)
    if options.dev:
        source = dev_subset(source, options.dev, options.seed, "test")
    checked = scan_source(source, options.scan_cache, options.channels)
    check_classes_present(
        checked, len(checked.skipped), f"test data `{test_path}`", f"-dtest {test_path}"
    )
    return checked


def finish_splits(
    class_names: list[str],
    train: DataSource,
    valid: DataSource,
    test: DataSource | None,
    options: DataOptions,
    frame=None,
    inspection=None,
) -> Splits:
    """Class weights and oversampling on checked, decode-checked splits -> :class:`Splits`."""

    class_weight = resolve_class_weight(options.class_weight, class_names, train.class_counts())
    train_split = to_split(train, options.channels)
    if options.oversample:
        order = oversample_indices(train.labels, options.seed)
        train_split = to_split(train.subset(order), options.channels)
    skipped = [*train.skipped, *valid.skipped, *(test.skipped if test else [])]
    return Splits(
        class_names=list(class_names),
        train=train_split,
        valid=to_split(valid, options.channels),
        skipped=skipped,
        test=to_split(test, options.channels) if test else None,
        test_source=test,
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
    train_clean = scan_source(train, options.scan_cache, options.channels)
    valid_clean = scan_source(valid, options.scan_cache, options.channels)
    check_classes_present(
        train_clean,
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
        valid_clean,
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


def inspect_clean(cleaned: dict[str, DataSource | None], options: DataOptions):
    """The training-start inspection of decode-checked splits (None entries are left out)."""

    reports = [
        split_report(name, c, c.scan, c.skipped, options.scan_cache)
        for name, c in cleaned.items()
        if c is not None
    ]
    first = next(c for c in cleaned.values() if c is not None)
    return Inspection(list(first.class_names), reports, options.task)


def splits_from_config(config: dict[str, Any], inspect: bool = True) -> Splits:
    """:func:`load_splits` with a resolved config's data keys (not for FOLDS > 0)."""
    return load_splits(
        config["DATA_DIR_TRAIN"],
        "" if DataOptions.from_config(config).validation_from_train else config["DATA_DIR_VALID"],
        config["DATA_DIR_TEST"],
        DataOptions.from_config(config),
        inspect=inspect,
    )


def run_splits(config: dict[str, Any], split_csv: Path, inspect: bool = False) -> Splits:
    """The data splits a finished (or stopped) run trained on, rebuilt from its folder.

    A run whose validation set was cut from the training data (VAL_SPLIT, SPLIT_FILE, FOLDS)
    has ``split.csv`` (``split_csv``: ``RunFolder.split_csv``); it is applied to DATA_DIR_TRAIN
    again. Class weights, DEV and oversampling are recomputed from the same config, so the
    result is what training used.
    """
    if split_csv.is_file():
        config = replace_config(config, SPLIT_FILE=str(split_csv), VAL_SPLIT=0.0, FOLDS=0)
    return splits_from_config(config, inspect=inspect)


def run_validation_source(config: dict[str, Any], split_csv: Path, class_names: list[str]):
    """The validation data of a run as a DataSource, for re-scoring it (``evaluate_run``).

    None when the run validated on a whole class folder (DATA_DIR_VALID, no DEV): the caller
    reads that folder itself. Otherwise the run's ``split.csv`` (``split_csv``:
    ``RunFolder.split_csv``) is applied to DATA_DIR_TRAIN again, or DATA_DIR_VALID is read in
    its layout; then the same DEV pick as in training.
    """

    options = DataOptions.from_config(config)
    run_dir = split_csv.parent
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
    label_sets = get_task(options.task).label_sets
    valid = _align_classes(reference, valid, "validation", f"-dvalid {valid_dir}", label_sets)
    if options.dev:
        valid = dev_subset(valid, options.dev, options.seed, "valid")
    return valid


def evaluation_source(
    config: dict[str, Any],
    split_csv: Path,
    class_names: list[str],
    data_dir: str | None = None,
    flag: str = "--data_dir",
    check_classes: bool = True,
):
    """The data a run is scored on, as a DataSource: ``data_dir`` (any layout) when given, else
    the run's validation data as training had it (:func:`run_validation_source` with the run's
    ``split_csv``, or the DATA_DIR_VALID folder). The one way ``evaluate``, ``errors`` and
    ``export`` find it; ``flag`` is the option that passes ``data_dir``, named when the data is
    not there or holds other classes than ``class_names`` (``check_classes=False``: images
    only, any classes)."""

    if data_dir is None:
        source = run_validation_source(config, split_csv, class_names)
        if source is not None:
            return source
    path = data_dir or config["DATA_DIR_VALID"]
    if not path or not os.path.exists(path):
        where = "given" if data_dir else "of the run (DATA_DIR_VALID of run_config.json)"
        raise CnnhubError(
            f"The validation data {where} is not there: {path!r}. Pass the data to score on "
            f"with {flag} PATH. Received: {flag}={path!r}"
        )
    options = DataOptions.from_config(config)
    fmt = detect_format(path)
    source = load_source(path, fmt, **_label_column(options, fmt))
    task = get_task(options.task)
    source = task.label_source(source, options, f"{flag} {path}")
    if task.label_sets:  # the run's label columns, even where the data lacks a label
        reference = SimpleNamespace(class_names=list(class_names), origin=source.origin)
        source = _align_classes(reference, source, "evaluation", f"{flag} {path}", True)
    if check_classes:
        check_same_classes(source, class_names, f"{flag} {source.origin}")
    return source


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


def split_of_source(source, scan_cache: bool = True, channels: int = 3):
    """``(Split, skipped files)`` of a DataSource: its files decode-checked, the bad ones out."""
    checked = scan_source(source, scan_cache, channels)
    return to_split(checked, channels), checked.skipped
