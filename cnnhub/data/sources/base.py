"""The one structure every dataset layout is read into, :class:`DataSource`, and what the
readers share: class names from labels and names files, pixel arrays to uint8 images."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.errors import CnnhubError


@dataclass
class DataSource:
    """Samples of one dataset: class names, integer labels, and paths *or* in-memory images.

    Attributes:
        class_names: class index -> name.
        labels: int64 array (N,) of class indices.
        paths: image file paths (file-backed sources), else None.
        images: uint8 array (N, H, W, C), C = 1 or 3 (in-memory sources), else None.
        keys: one stable, unique id per sample, used in ``split.csv``: the path relative to
            ``root`` (with ``/``) for file-backed sources, ``<file name>#<index in file>`` for
            in-memory ones. Filled in when not given.
        root: the folder file-backed keys are relative to.
        origin: what the data was read from; data_format: one of :data:`DATA_FORMATS`.
        targets: float32 (N, outputs) model targets when the task's labels are not one class
            per sample (regression values, multi-label indicators; see :mod:`cnnhub.tasks`),
            else None (``labels`` one-hot encoded).
        label_sets: ``targets`` are one 0/1 column per class (multi-label); ``labels`` then
            holds each sample's first label, for what needs one class per sample (DEV picks,
            VAL_SPLIT's per-class split).
        needs_pil: the files TensorFlow would decode wrongly (decoded with Pillow instead);
            set by the decode check (:func:`cnnhub.data.scan.scan_source`), kept by subsets.
        scan: the decode check this set comes from (a ``ScanResult``; its ``skipped`` files
            were left out), or None: not checked yet, in memory, or a subset.
    """

    class_names: list[str]
    labels: np.ndarray
    paths: list[str] | None = None
    images: np.ndarray | None = None
    keys: list[str] | None = None
    root: str | None = None
    origin: str = ""
    data_format: str = ""
    targets: np.ndarray | None = None
    label_sets: bool = False
    needs_pil: frozenset[str] = frozenset()
    scan: Any = None

    def __post_init__(self) -> None:
        self.class_names = [str(name) for name in self.class_names]
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if (self.paths is None) == (self.images is None):
            raise ValueError("A DataSource needs exactly one of `paths` and `images`.")
        n = len(self.labels)
        if self.paths is not None:
            self.paths = [os.fspath(p) for p in self.paths]
            if len(self.paths) != n:
                raise ValueError(f"{len(self.paths)} paths but {n} labels.")
        else:
            images = self.images
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
                raise ValueError(
                    f"`images` must be uint8 (N, H, W, 1 or 3); got {images.dtype} {images.shape}."
                )
            if len(images) != n:
                raise ValueError(f"{len(images)} images but {n} labels.")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError("Labels must index `class_names`.")
        if self.targets is not None:
            self.targets = np.asarray(self.targets, dtype=np.float32).reshape(n, -1)
        if self.keys is None:
            self.keys = self._default_keys()
        elif len(self.keys) != n:
            raise ValueError(f"{len(self.keys)} keys but {n} labels.")

    def _default_keys(self) -> list[str]:
        if self.paths is not None:
            return relative_keys(self.paths, self.root)
        name = os.path.basename(self.origin.rstrip("/\\")) or "images"
        return [f"{name}#{i}" for i in range(len(self.labels))]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of the files the decode check left out of this set."""
        return list(self.scan.skipped) if self.scan is not None else []

    def class_counts(self) -> np.ndarray:
        """Samples per class, shape (num_classes,): with ``label_sets``, samples having each
        label (an image counts once for each of its labels); with other ``targets``
        (regression: the "classes" are the targets), every sample has a value of each."""
        if self.label_sets:
            return self.targets.sum(axis=0).astype(np.int64)
        if self.targets is not None:
            return np.full(self.num_classes, len(self), dtype=np.int64)
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices: Sequence[int] | np.ndarray) -> DataSource:
        """The samples at ``indices`` (in that order), with the same classes."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return DataSource(
            class_names=list(self.class_names),
            labels=self.labels[idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            images=None if self.images is None else self.images[idx],
            keys=[self.keys[i] for i in idx],
            root=self.root,
            origin=self.origin,
            data_format=self.data_format,
            targets=None if self.targets is None else self.targets[idx],
            label_sets=self.label_sets,
            needs_pil=self.needs_pil,
        )

    def drop_paths(self, paths: Sequence[str]) -> DataSource:
        """The source without the given paths (e.g. the files a scan skipped)."""
        if self.paths is None:
            return self
        drop = {os.fspath(p) for p in paths}
        return self.subset([i for i, p in enumerate(self.paths) if p not in drop])


def relative_keys(paths: list[str], root: str | None) -> list[str]:
    """Each path as a '/'-separated key: relative to ``root`` when it lies inside it, else the
    path as given."""
    if not root:
        return [Path(path).as_posix() for path in paths]
    # One prefix test per path: os.path.relpath per path took ~1.5 s for 70,000 files.
    prefix = os.path.join(os.path.abspath(root), "")
    keys = []
    for path in paths:
        full = os.path.abspath(path)
        inside = full.startswith(prefix)
        keys.append(full[len(prefix) :].replace(os.sep, "/") if inside else Path(path).as_posix())
    return keys


# --------------------------------------------------------------------------- labels


def read_names_file(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (surrounding whitespace and trailing blank lines dropped)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [line.strip() for line in handle.read().splitlines()]
    except OSError as exc:
        raise CnnhubError(
            f"Cannot read the class names file `{path}`: {exc.strerror or exc}. Pass a text file "
            f"with one class name per line. Received: names_file={path!r}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise CnnhubError(
            f"The class names file `{path}` is not UTF-8 text. Save it as UTF-8 with one name per "
            f"line. Received: names_file={path!r}"
        ) from exc
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        raise CnnhubError(f"The class names file `{path}` is empty. Received: names_file={path!r}")
    if "" in lines:
        raise CnnhubError(
            f"The class names file `{path}` has a blank line {lines.index('') + 1} between names; "
            f"line v names integer label v, so remove the blank line. Received: names_file={path!r}"
        )
    duplicates = sorted({n for n in lines if lines.count(n) > 1})
    if duplicates:
        raise CnnhubError(
            f"The class names file `{path}` repeats {', '.join(map(repr, duplicates))}; class "
            f"names must be unique. Received: names_file={path!r}"
        )
    return lines


_INT_TEXT = re.compile(r"^[+-]?\d+(\.0*)?$")


def _labels_to_array(raw: Sequence | np.ndarray) -> np.ndarray:
    """Integer array when every label is a whole number (also as text), else str array."""
    arr = np.asarray(raw)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if np.isfinite(arr).all() and (arr == np.round(arr)).all():
            return arr.astype(np.int64)
        return arr.astype(str)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    text = np.char.strip(arr.astype(str))
    if len(text) and all(_INT_TEXT.match(t) for t in text):
        return np.array([int(float(t)) for t in text], dtype=np.int64)
    return text


def _encode_labels(
    raw: Sequence | np.ndarray, names: list[str] | None, origin: str, allow_empty: bool = False
) -> tuple[np.ndarray, list[str]]:
    """Class indices and class names for raw labels (see the module docstring for the rules).

    ``allow_empty`` keeps empty label cells as the class ``""`` (a multi-label image without a
    label) instead of refusing them."""
    values = _labels_to_array(raw)
    if values.dtype.kind != "i":
        blank = np.flatnonzero(values == "")
        if len(blank) and not allow_empty:
            raise CnnhubError(
                f"{len(blank)} sample(s) in `{origin}` have an empty label (first at sample "
                f"{blank[0]}). Give every sample a label. Received: label=''"
            )
        if names is None:
            class_names = sorted(set(values.tolist()))
        else:
            unknown = sorted(set(values.tolist()) - set(names))
            if unknown:
                raise CnnhubError(
                    f"Labels in `{origin}` missing from the class names file: "
                    f"{', '.join(map(repr, unknown[:5]))}. Add them to the names file. "
                    f"Received: labels={unknown[:5]}"
                )
            class_names = list(names)
        index = {name: i for i, name in enumerate(class_names)}
        return np.array([index[v] for v in values.tolist()], dtype=np.int64), class_names
    if names is None:
        unique = np.unique(values)
        return np.searchsorted(unique, values).astype(np.int64), [str(v) for v in unique]
    bad = values[(values < 0) | (values >= len(names))]
    if len(bad):
        raise CnnhubError(
            f"Integer labels in `{origin}` must be 0..{len(names) - 1} to index the {len(names)} "
            f"class names given. Add names or fix the labels. "
            f"Received: labels={sorted(set(bad.tolist()))[:5]}"
        )
    return values, list(names)


def _names(names_file: str | os.PathLike | None) -> list[str] | None:
    return None if names_file is None else read_names_file(names_file)


def labelled_source(
    raw_labels: Sequence | np.ndarray,
    names_file: str | os.PathLike | None,
    origin: str,
    data_format: str,
    allow_empty: bool = False,
    **samples: Any,
) -> DataSource:
    """A DataSource of ``samples`` (``images=`` or ``paths=``, optionally ``keys=``, ``root=``)
    labelled by ``raw_labels``, encoded by the module docstring's rules (class names from
    ``names_file`` when given; ``allow_empty`` as in :func:`_encode_labels`). Every source that
    reads labels from a file ends here."""
    labels, class_names = _encode_labels(raw_labels, _names(names_file), origin, allow_empty)
    return DataSource(class_names, labels, origin=origin, data_format=data_format, **samples)


# --------------------------------------------------------------------------- pixels


def _to_uint8(x: np.ndarray, origin: str) -> np.ndarray:
    """Pixels to uint8: integers must be 0-255; floats are 0-1 if max <= 1 else 0-255."""
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind == "b":
        return x.astype(np.uint8) * 255
    if x.dtype.kind in "iu":
        if x.size and (x.min() < 0 or x.max() > 255):
            raise CnnhubError(
                f"Pixel values in `{origin}` must be 0-255. Rescale them to 0-255 (or 0-1 "
                f"floats). Received: min={x.min()}, max={x.max()}"
            )
        return x.astype(np.uint8)
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise CnnhubError(
                f"Pixel values in `{origin}` include NaN or infinity (a missing value?). "
                f"Fill or remove those samples. Received: dtype={x.dtype}"
            )
        low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if low < 0 or high > 255:
            raise CnnhubError(
                f"Pixel values in `{origin}` must be 0-1 or 0-255. Received: min={low}, max={high}"
            )
        scale = 255.0 if high <= 1.0 else 1.0
        return np.rint(x * scale).astype(np.uint8)
    raise CnnhubError(f"Pixel values in `{origin}` must be numbers. Received: dtype={x.dtype}")


def _check_shape(image_shape: Sequence[int] | None) -> tuple[int, int, int] | None:
    if image_shape is None:
        return None
    shape = tuple(image_shape)
    ok = len(shape) in (2, 3) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in shape
    )
    if not ok or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise CnnhubError(
            "`image_shape` must be (height, width) or (height, width, channels) with channels 1 "
            f"or 3. Received: image_shape={image_shape!r}"
        )
    return (int(shape[0]), int(shape[1]), int(shape[2]) if len(shape) == 3 else 1)


def _reshape_flat(
    x: np.ndarray, image_shape: tuple[int, int, int] | None, origin: str
) -> np.ndarray:
    """(N, D) rows of pixels (row-major H, W, C) -> (N, H, W, C)."""
    n_pixels = x.shape[1]
    if image_shape is None:
        side = math.isqrt(n_pixels)
        if side * side != n_pixels:
            hint = ""
            rgb_side = math.isqrt(n_pixels // 3)
            if n_pixels % 3 == 0 and rgb_side * rgb_side * 3 == n_pixels:
                hint = f" (for RGB pass image_shape=({rgb_side}, {rgb_side}, 3))"
            raise CnnhubError(
                f"`{origin}` has {n_pixels} pixel values per image, not a square number, so the "
                f"image shape is unknown. Pass `image_shape`=(height, width, channels){hint}. "
                f"Received: image_shape=None"
            )
        image_shape = (side, side, 1)
    if math.prod(image_shape) != n_pixels:
        raise CnnhubError(
            f"`image_shape` {image_shape} holds {math.prod(image_shape)} values but `{origin}` "
            f"has {n_pixels} per image. Received: image_shape={image_shape!r}"
        )
    return x.reshape((len(x), *image_shape))
