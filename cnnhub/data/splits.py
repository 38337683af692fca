"""The train/valid split of one dataset: stratified (``VAL_SPLIT``), saved as and read back from
``split.csv`` (``path,label,split``; ``SPLIT_FILE``), and the assignment of K folds (``FOLDS``)."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cnnhub.atomic import write_csv
from cnnhub.data.sources import DataSource
from cnnhub.errors import CnnhubError

SPLIT_COLUMNS = ("path", "label", "split")
TRAIN, VALID = "train", "valid"
_SPLIT_ALIASES = {
    "train": TRAIN,
    "training": TRAIN,
    "valid": VALID,
    "val": VALID,
    "validation": VALID,
}


def stratified_split(
    source: DataSource, val_fraction: float, seed: int
) -> tuple[DataSource, DataSource, pd.DataFrame]:
    """Split each class at random (seeded) into train and valid.

    Each class with n >= 2 samples gives ``round(n * val_fraction)`` of them to valid, at least 1
    and at most n - 1; a class with one sample stays in train. Returns the two sources (in the
    original order) and a frame with columns ``path,label,split`` (``path`` = the sample's key,
    ``label`` = its class name, ``split`` = train/valid), one row per sample, for ``split.csv``.
    """
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not 0 < val_fraction < 1
    ):
        raise CnnhubError(
            f"`val_fraction` must be a number between 0 and 1 (exclusive), e.g. 0.2. "
            f"Received: val_fraction={val_fraction!r}"
        )
    # Hand-written rather than scikit-learn's train_test_split(stratify=) or
    # StratifiedShuffleSplit: those refuse a class with a single image, and they share out
    # ceil(N * val_fraction) validation images over the classes as a whole, which can leave a
    # small class with no validation (or no training) image. Here every class is split on its
    # own, so each class with two or more images is in both parts.
    rng = np.random.default_rng(seed)
    is_valid = np.zeros(len(source), dtype=bool)
    for cls in range(source.num_classes):
        members = np.flatnonzero(source.labels == cls)
        if len(members) < 2:
            continue
        n_valid = min(max(int(math.floor(len(members) * val_fraction + 0.5)), 1), len(members) - 1)
        is_valid[rng.permutation(members)[:n_valid]] = True
    if not is_valid.any():
        raise CnnhubError(
            f"No class of `{source.origin}` has two or more samples, so nothing can go to "
            f"validation. Add images or give a separate validation set. "
            f"Received: val_fraction={val_fraction!r}"
        )
    frame = split_frame(source, np.asarray(source.keys, dtype=object)[is_valid])
    return source.subset(np.flatnonzero(~is_valid)), source.subset(np.flatnonzero(is_valid)), frame


def write_split_file(path: str | os.PathLike, split_frame: pd.DataFrame) -> None:
    """Save a split frame (e.g. ``<run_dir>/split.csv``) atomically."""
    write_csv(path, split_frame)


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:5])
    return shown + (f" (and {len(items) - 5} more)" if len(items) > 5 else "")


def apply_split_file(
    source: DataSource, split_csv: str | os.PathLike
) -> tuple[DataSource, DataSource]:
    """Reuse a saved split (``path,label,split`` as written by :func:`stratified_split`).

    Every sample of ``source`` must appear exactly once with the same class, and every row must
    match a sample; otherwise the error names the entries that differ.
    """
    split_csv = os.fspath(split_csv)
    fix = "Delete or replace the split file to make a new split."
    try:
        frame = pd.read_csv(
            split_csv,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            encoding_errors="surrogateescape",  # file names that are not UTF-8 (atomic.py)
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise CnnhubError(
            f"Cannot read the split file `{split_csv}`: {exc}. {fix} "
            f"Received: split_csv={split_csv!r}"
        ) from exc
    missing_cols = [c for c in SPLIT_COLUMNS if c not in frame.columns]
    if missing_cols:
        raise CnnhubError(
            f"The split file `{split_csv}` needs columns path,label,split; it lacks "
            f"{', '.join(missing_cols)}. {fix} Received: columns={list(frame.columns)}"
        )
    keys = frame["path"].tolist()
    duplicated = sorted(set(frame["path"][frame["path"].duplicated()]))
    if duplicated:
        raise CnnhubError(
            f"The split file `{split_csv}` lists {_listing(duplicated)} more than once. {fix} "
            f"Received: split_csv={split_csv!r}"
        )
    splits = [_SPLIT_ALIASES.get(s.strip().lower()) for s in frame["split"]]
    bad = sorted({s for s, v in zip(frame["split"], splits) if v is None})
    if bad:
        raise CnnhubError(
            f"The `split` column of `{split_csv}` must hold train or valid. {fix} "
            f"Received: split={_listing(bad)}"
        )
    row_of = {k: i for i, k in enumerate(keys)}
    not_in_file = [k for k in source.keys if k not in row_of]
    source_keys = set(source.keys)
    not_in_data = [k for k in keys if k not in source_keys]
    if not_in_file or not_in_data:
        parts = []
        if not_in_file:
            parts.append(
                f"{len(not_in_file)} sample(s) of the data are not in it: {_listing(not_in_file)}"
            )
        if not_in_data:
            parts.append(
                f"{len(not_in_data)} entr(ies) in it are not in the data: {_listing(not_in_data)}"
            )
        raise CnnhubError(
            f"The split file `{split_csv}` does not match `{source.origin}`: {'; '.join(parts)}. "
            f"{fix} Received: split_csv={split_csv!r}"
        )
    labels = frame["label"].tolist()
    changed = [
        k
        for k, cls in zip(source.keys, source.labels)
        if labels[row_of[k]] != source.class_names[cls]
    ]
    if changed:
        raise CnnhubError(
            f"The split file `{split_csv}` gives {len(changed)} sample(s) a different class than "
            f"the data: {_listing(changed)}. {fix} Received: split_csv={split_csv!r}"
        )
    is_valid = np.array([splits[row_of[k]] == VALID for k in source.keys], dtype=bool)
    return source.subset(np.flatnonzero(~is_valid)), source.subset(np.flatnonzero(is_valid))


def split_frame(source: DataSource, valid_keys) -> pd.DataFrame:
    """``split.csv`` rows (``path,label,split``) of ``source``: valid for ``valid_keys``. The
    one builder of a split file's rows (stratified split, split file, folds)."""

    valid_keys = set(valid_keys)
    return pd.DataFrame(
        {
            "path": source.keys,
            "label": [source.class_names[i] for i in source.labels],
            "split": [VALID if k in valid_keys else TRAIN for k in source.keys],
        },
        columns=list(SPLIT_COLUMNS),
    )


def assign_folds(labels: np.ndarray, k: int, seed: int, stratified: bool = True) -> np.ndarray:
    """The 0-based fold of each sample: stratified, seeded, fold sizes within one of each other.

    scikit-learn's ``StratifiedKFold(shuffle=True)``: it deals the label-sorted samples to the
    folds round-robin (so each class is spread evenly and fold sizes differ by at most one), in
    a random order within each class drawn from ``seed``. Without ``stratified`` (a task with
    no classes, e.g. regression): ``KFold(shuffle=True)`` with the same seed.
    """
    # Here, not at the top: scikit-learn's model_selection takes about a second to import and
    # only K-fold runs need it (every command that reads data imports this module).
    from sklearn.model_selection import (  # lazy: keeps --help free of TensorFlow
        KFold,
        StratifiedKFold,
    )

    labels = np.asarray(labels)
    splitter = StratifiedKFold if stratified else KFold
    folds = splitter(n_splits=k, shuffle=True, random_state=seed)
    fold = np.zeros(len(labels), dtype=np.int64)
    for index, (_, held_out) in enumerate(folds.split(np.zeros((len(labels), 1)), labels)):
        fold[held_out] = index
    return fold


def refuse_used_split_folders(out: os.PathLike | str, splits: Sequence[str]) -> None:
    """For scripts that write a labelled image set as split folders (``data/prepare_*.py``):
    raise when one of ``out``'s split folders already holds files. A new split written over an
    old one (other fractions, another seed) would leave images in two splits."""
    for split in splits:
        folder = os.path.join(out, split)
        if os.path.isdir(folder) and any(os.scandir(folder)):
            raise CnnhubError(
                f"{folder} already holds files; remove {out} (or pass another --out) to prepare "
                "the data again, so that no image ends up in two splits."
            )
