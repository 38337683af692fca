"""Read every supported dataset layout into one structure, :class:`DataSource`.

Layouts (``data_format`` names):

* ``folder`` - one subfolder of images per class (:func:`cnnhub.images.list_class_folder`).
* ``csv_pixels`` - a CSV whose first column is the label and the rest pixel values (0-255).
* ``csv_paths`` - a CSV with columns ``path,label``; relative paths start at the CSV's folder.
* ``idx`` - MNIST-style IDX files (gzipped or not); pass the images file, the labels file is
  found beside it.
* ``cifar_bin`` - CIFAR-10/100 *binary* batches (``.bin``), one file or a folder of
  ``data_batch_*.bin``. The Python (pickle) batches are refused: unpickling runs code.
* ``npz`` - a NumPy ``.npz`` with arrays ``x`` (images) and ``y`` (labels), loaded with
  ``allow_pickle=False``.

File-backed sources keep paths (decoded later by the pipeline); the others hold a uint8
(N, H, W, C) array in memory and are never written out as image files.

Class names: a names file (one name per line) maps integer label ``v`` to line ``v`` and is
the whole class list, even for names no sample uses. Without one, integer labels are named by
their value (``"0".."K-1"`` for labels 0..K-1; distinct values in increasing order otherwise)
and string labels by themselves, sorted. CIFAR uses ``batches.meta.txt`` /
``fine_label_names.txt`` beside the data when present.

Pixel values (``csv_pixels``, ``npz``): integers must lie in 0-255; floats are taken as 0-1
when the largest value in the whole array is at most 1.0 (then multiplied by 255), else as
0-255; both are rounded to the nearest integer.
"""

from __future__ import annotations

import csv
import gzip
import math
import numbers
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cnnhub.atomic import write_csv
from cnnhub.errors import CnnhubError
from cnnhub.images import IMAGE_EXTENSIONS, list_class_folder

DATA_FORMATS = ("folder", "csv_pixels", "csv_paths", "idx", "cifar_bin", "npz")
"""Values accepted for ``data_format`` besides ``"auto"``."""

SPLIT_COLUMNS = ("path", "label", "split")
TRAIN, VALID = "train", "valid"
_SPLIT_ALIASES = {
    "train": TRAIN,
    "training": TRAIN,
    "valid": VALID,
    "val": VALID,
    "validation": VALID,
}

_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049
_CIFAR_PIXELS = 3 * 32 * 32
_CIFAR_RECORD = {"cifar10": 1 + _CIFAR_PIXELS, "cifar100": 2 + _CIFAR_PIXELS}
_CIFAR_NAMES_FILE = {"cifar10": "batches.meta.txt", "cifar100": "fine_label_names.txt"}
_CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}
_CIFAR_PICKLE_NAMES = re.compile(r"^(data_batch_\d+|test_batch|batches\.meta|train|test|meta)$")


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
    """

    class_names: list[str]
    labels: np.ndarray
    paths: list[str] | None = None
    images: np.ndarray | None = None
    keys: list[str] | None = None
    root: str | None = None
    origin: str = ""
    data_format: str = ""

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
        if self.keys is None:
            self.keys = self._default_keys()
        elif len(self.keys) != n:
            raise ValueError(f"{len(self.keys)} keys but {n} labels.")

    def _default_keys(self) -> list[str]:
        if self.paths is not None:
            return [_relative_key(p, self.root) for p in self.paths]
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

    def class_counts(self) -> np.ndarray:
        """Samples per class, shape (num_classes,)."""
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
        )

    def drop_paths(self, paths: Sequence[str]) -> DataSource:
        """The source without the given paths (e.g. the files a scan skipped)."""
        if self.paths is None:
            return self
        drop = {os.fspath(p) for p in paths}
        return self.subset([i for i, p in enumerate(self.paths) if p not in drop])


def _relative_key(path: str, root: str | None) -> str:
    if root:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        if not rel.startswith(".."):
            return Path(rel).as_posix()
    return Path(path).as_posix()


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
    raw: Sequence | np.ndarray, names: list[str] | None, origin: str
) -> tuple[np.ndarray, list[str]]:
    """Class indices and class names for raw labels (see the module docstring for the rules)."""
    values = _labels_to_array(raw)
    if values.dtype.kind != "i":
        blank = np.flatnonzero(values == "")
        if len(blank):
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


# --------------------------------------------------------------------------- readers


def read_class_folder(root: str | os.PathLike) -> DataSource:
    """A folder with one subfolder of images per class (file-backed)."""
    root = os.fspath(root)
    class_names, samples = list_class_folder(root)
    return DataSource(
        class_names=class_names,
        labels=np.array([label for _, label in samples], dtype=np.int64),
        paths=[path for path, _ in samples],
        root=root,
        origin=root,
        data_format="folder",
    )


def _read_csv_rows(path: str, rows: int = 2, errors: str = "strict") -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig", errors=errors) as handle:
            reader = csv.reader(handle)
            out = []
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    out.append(row)
                if len(out) >= rows:
                    break
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CnnhubError(
            f"Cannot read the CSV file `{path}`: {exc}. Received: path={path!r}"
        ) from exc


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pixel_header(rows: list[list[str]]) -> bool:
    """Whether the first row of a pixel CSV is a header rather than an image."""
    first = [c.strip() for c in rows[0]]
    cells = first[1:]
    if not all(_is_number(c) for c in cells):
        return True
    label_is_text = not _is_number(first[0])
    if label_is_text and len(rows) > 1 and rows[1] and _is_number(rows[1][0].strip()):
        return True  # "label,0,1,..." above "3,0,0,...": a header with numeric pixel names
    # Columns named 0..D-1 or 1..D (pandas' default names): not pixel data once D > 256.
    values = [float(c) for c in cells]
    n = len(values)
    is_sequence = values in (list(range(n)), list(range(1, n + 1)))
    return is_sequence and (n > 256 or label_is_text)


def _csv_error(path: str, exc: Exception, what: str) -> CnnhubError:
    return CnnhubError(
        f"Cannot parse the CSV file `{path}`: {str(exc).strip()}. Every row needs the same "
        f"number of comma-separated columns{what}. Received: path={path!r}"
    )


def read_csv_pixels(
    path: str | os.PathLike,
    image_shape: Sequence[int] | None = None,
    names_file: str | os.PathLike | None = None,
) -> DataSource:
    """A CSV of images, one per row: the label, then pixel values (row-major H, W, C).

    A header is detected (first row has non-numeric pixel cells). Without ``image_shape`` the
    images are square grayscale (side = sqrt of the number of pixel values).
    """
    path = os.fspath(path)
    shape = _check_shape(image_shape)
    rows = _read_csv_rows(path, 2)
    if not rows:
        raise CnnhubError(f"The CSV file `{path}` is empty. Received: path={path!r}")
    first = rows[0]
    if len(first) < 2:
        raise CnnhubError(
            f"`{path}` needs a label column followed by pixel columns; its first row has "
            f"{len(first)} column. Received: path={path!r}"
        )
    header = _pixel_header(rows)
    n_cols = len(first)
    try:
        frame = pd.read_csv(
            path,
            header=None,
            skiprows=1 if header else 0,
            dtype={0: str, **{i: np.float32 for i in range(1, n_cols)}},
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=True,
            encoding="utf-8-sig",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise _csv_error(path, exc, " and every pixel cell a number") from exc
    if frame.shape[1] != n_cols:
        raise CnnhubError(
            f"Rows of `{path}` have {frame.shape[1]} columns but the first row has {n_cols}. "
            f"Received: path={path!r}"
        )
    if len(frame) == 0:
        raise CnnhubError(
            f"The CSV file `{path}` has a header but no images. Received: path={path!r}"
        )
    pixels = frame.iloc[:, 1:].to_numpy(dtype=np.float32)
    missing = np.flatnonzero(np.isnan(pixels).any(axis=1))
    if len(missing):
        line = int(missing[0]) + 1 + int(header)
        raise CnnhubError(
            f"{len(missing)} row(s) of `{path}` have empty pixel cells (first on line {line}). "
            f"Fill or remove them. Received: path={path!r}"
        )
    images = _reshape_flat(_to_uint8(pixels, path), shape, path)
    raw_labels = frame.iloc[:, 0].fillna("").to_numpy()
    labels, class_names = _encode_labels(raw_labels, _names(names_file), path)
    return DataSource(class_names, labels, images=images, origin=path, data_format="csv_pixels")


def _paths_header(row: list[str]) -> dict[str, int] | None:
    lowered = [c.strip().lower() for c in row]
    if "path" in lowered:
        return {name: i for i, name in enumerate(lowered)}
    return None


def read_csv_paths(
    path: str | os.PathLike, names_file: str | os.PathLike | None = None
) -> DataSource:
    """A CSV with columns ``path,label`` (header optional), paths relative to the CSV's folder.

    Every listed file must exist and appear once; missing ones are reported together.
    """
    path = os.fspath(path)
    # Bytes that are not UTF-8 are file-name bytes (as cnnhub's own CSVs write them, see
    # cnnhub.atomic): kept as surrogates, they name the same files again.
    rows = _read_csv_rows(path, 1, errors="surrogateescape")
    if not rows:
        raise CnnhubError(f"The CSV file `{path}` is empty. Received: path={path!r}")
    columns = _paths_header(rows[0])
    if columns is None:
        if len(rows[0]) < 2 or not _has_image_extension(rows[0][0]):
            raise CnnhubError(
                f"`{path}` needs a header with columns `path` and `label` (or no header and "
                f"image paths in the first column, labels in the second). "
                f"Received: first row={rows[0][:3]!r}"
            )
        path_col, label_col, skip = 0, 1, 0
    else:
        if "label" not in columns:
            raise CnnhubError(
                f"`{path}` has a `path` column but no `label` column. Add a `label` column with "
                f"each image's class. Received: columns={rows[0]!r}"
            )
        path_col, label_col, skip = columns["path"], columns["label"], 1
    try:
        frame = pd.read_csv(
            path,
            header=None,
            skiprows=skip,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
            encoding="utf-8-sig",
            encoding_errors="surrogateescape",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise _csv_error(path, exc, "") from exc
    if len(frame) == 0:
        raise CnnhubError(f"The CSV file `{path}` lists no images. Received: path={path!r}")
    base = os.path.dirname(os.path.abspath(path))
    written = [p.strip() for p in frame.iloc[:, path_col].tolist()]
    resolved = [_resolve(base, p) for p in written]
    missing = [w for w, r in zip(written, resolved) if not os.path.isfile(r)]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        raise CnnhubError(
            f"{len(missing)} of {len(written)} image(s) listed in `{path}` do not exist (relative "
            f"paths start at {base}): {shown}{' ...' if len(missing) > 5 else ''}. Fix the paths "
            f"or remove those rows. Received: path={missing[0]!r}"
        )
    seen: set[str] = set()
    repeated = [r for r in resolved if r in seen or seen.add(r)]
    if repeated:
        raise CnnhubError(
            f"`{path}` lists {len(repeated)} image(s) more than once, e.g. {repeated[0]!r}. "
            f"List each image once. Received: path={repeated[0]!r}"
        )
    raw_labels = frame.iloc[:, label_col].to_numpy()
    labels, class_names = _encode_labels(raw_labels, _names(names_file), path)
    return DataSource(
        class_names, labels, paths=resolved, root=base, origin=path, data_format="csv_paths"
    )


def _has_image_extension(text: str) -> bool:
    return os.path.splitext(text.strip())[1].lower() in IMAGE_EXTENSIONS


def _resolve(base: str, written: str) -> str:
    candidate = os.path.expanduser(written)
    if os.sep == "/" and "\\" in candidate and not os.path.exists(os.path.join(base, candidate)):
        candidate = candidate.replace("\\", "/")  # a CSV written on Windows
    return os.path.normpath(os.path.join(base, candidate))


def _read_bytes(path: str) -> bytes:
    """File contents, gunzipped when the file starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise CnnhubError(
            f"Cannot read `{path}`: {exc.strerror or exc}. Received: path={path!r}"
        ) from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise CnnhubError(
                f"`{path}` is a damaged gzip file ({exc}). Download it again. "
                f"Received: path={path!r}"
            ) from exc
    return data


def _idx_header(data: bytes, path: str, magic: int, ndim: int) -> tuple[int, ...]:
    if len(data) < 4 + 4 * ndim:
        raise CnnhubError(
            f"`{path}` is too short to be an IDX file. Received: size={len(data)} bytes"
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = {_IDX_IMAGES_MAGIC: "images", _IDX_LABELS_MAGIC: "labels"}
        what = kind.get(found, "not an IDX images/labels file")
        raise CnnhubError(
            f"`{path}` must be an IDX {kind[magic]} file (magic number {magic}); it has magic "
            f"number {found} ({what}). Pass the *-images-idx3-ubyte file; its labels file is "
            f"found beside it. Received: magic={found}"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + math.prod(dims)
    if len(data) != expected:
        raise CnnhubError(
            f"`{path}` declares {dims} ({expected} bytes) but holds {len(data)} bytes: it is "
            f"truncated or damaged. Download it again. Received: size={len(data)}"
        )
    return dims


def idx_labels_candidates(images_path: str | os.PathLike) -> list[str]:
    """Where the labels file of an IDX images file may be, most likely first."""
    folder, name = os.path.split(os.fspath(images_path))
    stems = []
    renames = (
        ("-images-idx3-ubyte", "-labels-idx1-ubyte"),
        ("-images.idx3-ubyte", "-labels.idx1-ubyte"),
    )
    for old, new in renames:
        if old in name:
            stems.append(name.replace(old, new))
    if not stems and "images" in name:
        stems.append(name.replace("images", "labels").replace("idx3", "idx1"))
    out: list[str] = []
    for stem in stems:
        bare = stem[:-3] if stem.endswith(".gz") else stem
        for candidate in (stem, bare, bare + ".gz"):
            full = os.path.join(folder, candidate)
            if full not in out:
                out.append(full)
    return out


def read_idx(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike | None = None,
    names_file: str | os.PathLike | None = None,
) -> DataSource:
    """MNIST-style IDX images (magic 2051) and labels (magic 2049), gzipped or not.

    The labels file is found beside the images file by name (``*-images-idx3-ubyte[.gz]`` ->
    ``*-labels-idx1-ubyte[.gz]``, ``*-images.idx3-ubyte`` -> ``*-labels.idx1-ubyte``) unless
    ``labels_path`` is given.
    """
    images_path = os.fspath(images_path)
    data = _read_bytes(images_path)
    n, rows, cols = _idx_header(data, images_path, _IDX_IMAGES_MAGIC, 3)
    if labels_path is None:
        candidates = idx_labels_candidates(images_path)
        found = [c for c in candidates if os.path.isfile(c)]
        if not found:
            tried = ", ".join(os.path.basename(c) for c in candidates)
            tried = tried or "none (the name has no 'images')"
            raise CnnhubError(
                f"No labels file found beside `{images_path}` (looked for: {tried}). Put the "
                f"matching *-labels-idx1-ubyte file next to it. Received: path={images_path!r}"
            )
        labels_path = found[0]
    labels_path = os.fspath(labels_path)
    label_data = _read_bytes(labels_path)
    (n_labels,) = _idx_header(label_data, labels_path, _IDX_LABELS_MAGIC, 1)
    if n_labels != n:
        raise CnnhubError(
            f"`{images_path}` holds {n} images but `{labels_path}` holds {n_labels} labels; they "
            f"must be the pair from the same download. Received: images={n}, labels={n_labels}"
        )
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols, 1).copy()
    raw = np.frombuffer(label_data, dtype=np.uint8, offset=8).astype(np.int64)
    labels, class_names = _encode_labels(raw, _names(names_file), images_path)
    return DataSource(class_names, labels, images=images, origin=images_path, data_format="idx")


def _refuse_pickle(path: str) -> None:
    raise CnnhubError(
        f"`{path}` is a Python pickle (e.g. a CIFAR 'python version' batch). cnnhub never "
        f"unpickles data files because unpickling can run arbitrary code. Use the binary version "
        f"(cifar-10-binary.tar.gz / cifar-100-binary.tar.gz, files ending in .bin) or save the "
        f"arrays as .npz with `x` and `y`. Received: path={path!r}"
    )


def _looks_pickled(path: str) -> bool:
    if os.path.splitext(path)[1].lower() in (".pkl", ".pickle", ".p"):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
    except OSError:
        return False
    return head[:1] == b"\x80" and len(head) == 2 and 2 <= head[1] <= 5


def _cifar_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    names = os.listdir(path)
    batches = [n for n in names if re.fullmatch(r"data_batch_\d+\.bin", n)]
    if batches:
        batches.sort(key=lambda n: int(re.findall(r"\d+", n)[0]))
        return [os.path.join(path, n) for n in batches]
    for name in sorted(names):
        if _CIFAR_PICKLE_NAMES.match(name) and _looks_pickled(os.path.join(path, name)):
            _refuse_pickle(os.path.join(path, name))
    bins = sorted(n for n in names if n.lower().endswith(".bin"))
    raise CnnhubError(
        f"The folder `{path}` has no data_batch_*.bin files. Pass one CIFAR .bin file "
        f"({', '.join(bins) if bins else 'none found here'}) or the folder of the CIFAR-10 "
        f"binary training batches. Received: path={path!r}"
    )


def _fits(sizes: list[int], record: int) -> bool:
    return all(size and size % record == 0 for size in sizes)


def read_cifar_bin(
    path: str | os.PathLike,
    variant: str = "auto",
    names_file: str | os.PathLike | None = None,
) -> DataSource:
    """CIFAR-10/100 binary batches: one ``.bin`` file or a folder of ``data_batch_*.bin``.

    Records are 1 label byte + 3072 bytes (CIFAR-10) or coarse + fine label bytes + 3072
    bytes (CIFAR-100; the fine label is used), pixels stored as 3x32x32 (CHW). ``variant``
    ``"cifar10"``/``"cifar100"`` or ``"auto"``: the names file beside the data
    (``batches.meta.txt`` / ``fine_label_names.txt``), else which record size divides the
    file size. Class names come from ``names_file``, else that names file, else label values.
    """
    path = os.fspath(path)
    if variant not in ("auto", "cifar10", "cifar100"):
        raise CnnhubError(
            f"`variant` must be one of auto, cifar10, cifar100. Received: variant={variant!r}"
        )
    if not os.path.exists(path):
        raise CnnhubError(f"`{path}` does not exist. Received: path={path!r}")
    files = _cifar_files(path)
    for file in files:
        if _looks_pickled(file):
            _refuse_pickle(file)
    folder = os.path.dirname(files[0])
    beside = {v: os.path.join(folder, n) for v, n in _CIFAR_NAMES_FILE.items()}
    sizes = [os.path.getsize(f) for f in files]
    if variant == "auto":
        fits = [v for v in ("cifar10", "cifar100") if _fits(sizes, _CIFAR_RECORD[v])]
        with_names = [v for v in fits if os.path.isfile(beside[v])]
        if len(fits) == 1:
            variant = fits[0]
        elif len(with_names) == 1:
            variant = with_names[0]
        elif not fits:
            raise CnnhubError(
                f"`{path}` is not a CIFAR binary batch: its size ({sizes[0]} bytes) is not a "
                f"multiple of {_CIFAR_RECORD['cifar10']} (CIFAR-10) or {_CIFAR_RECORD['cifar100']} "
                f"(CIFAR-100) bytes. Received: path={path!r}"
            )
        else:
            raise CnnhubError(
                f"The size of `{path}` fits both CIFAR-10 and CIFAR-100 records. Pass "
                f"variant='cifar10' or 'cifar100'. Received: variant='auto'"
            )
    record = _CIFAR_RECORD[variant]
    pixels, raw_labels, keys = [], [], []
    for file, size in zip(files, sizes):
        if size == 0 or size % record:
            raise CnnhubError(
                f"`{file}` is not a {variant} binary batch: {size} bytes is not a multiple of "
                f"the {record}-byte record. Received: variant={variant!r}"
            )
        with open(file, "rb") as handle:
            records = np.frombuffer(handle.read(), dtype=np.uint8).reshape(-1, record)
        raw_labels.append(records[:, record - _CIFAR_PIXELS - 1].astype(np.int64))
        pixels.append(records[:, -_CIFAR_PIXELS:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        keys.extend(f"{os.path.basename(file)}#{i}" for i in range(len(records)))
    labels_raw = np.concatenate(raw_labels)
    n_classes = _CIFAR_CLASSES[variant]
    if labels_raw.max() >= n_classes:
        raise CnnhubError(
            f"`{path}` has label {labels_raw.max()}, beyond the {n_classes} {variant} classes: it "
            f"is not a {variant} batch. Pass the other variant. Received: variant={variant!r}"
        )
    if names_file is None and os.path.isfile(beside[variant]):
        names_file = beside[variant]
    labels, class_names = _encode_labels(labels_raw, _names(names_file), path)
    images = np.ascontiguousarray(np.concatenate(pixels))
    return DataSource(
        class_names, labels, images=images, keys=keys, origin=path, data_format="cifar_bin"
    )


def _npz_labels(y: np.ndarray, path: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim == 2 and y.dtype.kind in "iufb":
        is_one_hot = np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
        if is_one_hot:
            return y.argmax(axis=1)
    if y.ndim != 1:
        raise CnnhubError(
            f"`y` in `{path}` must hold one label per image (shape (N,), (N, 1) or one-hot "
            f"(N, K)). Received: y.shape={y.shape}"
        )
    return y


def _npz_images(x: np.ndarray, shape: tuple[int, int, int] | None, path: str) -> np.ndarray:
    if x.ndim == 2:
        x = _reshape_flat(x, shape, f"{path}:x")
    elif shape is not None and x.shape[1:] not in (shape, shape[:2]):
        raise CnnhubError(
            f"`x` in `{path}` has images of shape {x.shape[1:]}, not the `image_shape` given. "
            f"Received: image_shape={shape}"
        )
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise CnnhubError(
            f"`x` in `{path}` must be (N, H, W) or (N, H, W, C) images. Received: x.shape={x.shape}"
        )
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)  # channels-first (N, C, H, W)
    if x.shape[-1] not in (1, 3, 4):
        raise CnnhubError(
            f"`x` in `{path}` must have 1 (gray), 3 (RGB) or 4 (RGBA) channels. "
            f"Received: x.shape={x.shape}"
        )
    x = _to_uint8(x, f"{path}:x")
    if x.shape[-1] == 4:  # composite on white, like cnnhub.images.load_image
        alpha = x[..., 3:].astype(np.float32) / 255.0
        x = np.rint(x[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(x)


def read_npz(
    path: str | os.PathLike,
    image_shape: Sequence[int] | None = None,
    names_file: str | os.PathLike | None = None,
) -> DataSource:
    """A ``.npz`` with ``x`` (images) and ``y`` (labels), loaded with ``allow_pickle=False``.

    ``x``: (N, H, W) or (N, H, W, C) with C = 1, 3 or 4 (channels-first (N, C, H, W) is
    recognised), or flat (N, D) reshaped with ``image_shape`` (square grayscale by default);
    uint8, other integers in 0-255, floats in 0-1 or 0-255 (see the module docstring); RGBA is
    composited on white. ``y``: integers or strings, shape (N,), (N, 1) or one-hot (N, K).
    """
    path = os.fspath(path)
    shape = _check_shape(image_shape)
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if "x" not in keys or "y" not in keys:
                raise CnnhubError(
                    f"`{path}` must hold arrays named `x` (images) and `y` (labels); it holds "
                    f"{', '.join(keys) or 'nothing'}. Save it with np.savez(path, x=images, "
                    f"y=labels). Received: arrays={keys}"
                )
            x, y = archive["x"], archive["y"]
    except CnnhubError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise CnnhubError(
                f"`{path}` stores an object array, which cannot be read without unpickling "
                f"(never done). Save labels as integers or a fixed-width string array "
                f"(np.array(labels, dtype=str)). Received: path={path!r}"
            ) from exc
        raise CnnhubError(f"Cannot read `{path}` as .npz: {exc}. Received: path={path!r}") from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise CnnhubError(f"Cannot read `{path}` as .npz: {exc}. Received: path={path!r}") from exc
    y = _npz_labels(y, path)
    if len(x) != len(y):
        raise CnnhubError(
            f"`{path}` has {len(x)} images in `x` but {len(y)} labels in `y`; they must match. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    images = _npz_images(x, shape, path)
    labels, class_names = _encode_labels(y, _names(names_file), path)
    return DataSource(class_names, labels, images=images, origin=path, data_format="npz")


# --------------------------------------------------------------------------- detection


def _idx_magic(path: str) -> int | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
            handle.seek(0)
            if head == b"\x1f\x8b":
                with gzip.open(handle) as inner:
                    head = inner.read(4)
            else:
                head = handle.read(4)
    except (OSError, EOFError):
        return None
    return int.from_bytes(head, "big") if len(head) == 4 else None


def detect_format(path: str | os.PathLike) -> str:
    """The ``data_format`` of ``path``, from its layout, extension and first bytes.

    A folder of ``data_batch_*.bin`` -> ``cifar_bin``; another folder -> ``folder``; ``.csv``
    -> ``csv_paths`` when it has a ``path`` column, only two columns, or an image file name
    in its first column, else ``csv_pixels``; ``.npz`` -> ``npz``; ``.bin`` -> ``cifar_bin``;
    a file starting with the IDX images magic number (gzipped or not) -> ``idx``. Pickles are
    refused.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CnnhubError(f"The dataset path `{path}` does not exist. Received: path={path!r}")
    if os.path.isdir(path):
        names = os.listdir(path)
        if any(re.fullmatch(r"data_batch_\d+\.bin", n) for n in names):
            return "cifar_bin"
        for name in sorted(names):
            full = os.path.join(path, name)
            if _CIFAR_PICKLE_NAMES.match(name) and os.path.isfile(full) and _looks_pickled(full):
                _refuse_pickle(full)
        return "folder"
    lower = path.lower()
    if lower.endswith(".csv"):
        rows = _read_csv_rows(path, 2)
        if rows and (
            _paths_header(rows[0]) is not None
            or len(rows[0]) <= 2  # one "pixel" per image is no image: a path,label list
            or any(_has_image_extension(row[0]) for row in rows)
        ):
            return "csv_paths"
        return "csv_pixels"
    if lower.endswith(".npz"):
        return "npz"
    if lower.endswith(".bin"):
        return "cifar_bin"
    magic = _idx_magic(path)
    if magic == _IDX_IMAGES_MAGIC:
        return "idx"
    if magic == _IDX_LABELS_MAGIC:
        raise CnnhubError(
            f"`{path}` is an IDX labels file. Pass the matching images file "
            f"(*-images-idx3-ubyte); the labels are found beside it. Received: path={path!r}"
        )
    if _looks_pickled(path):
        _refuse_pickle(path)
    raise CnnhubError(
        f"Cannot tell the dataset format of `{path}`. Pass a folder of class subfolders, a .csv "
        f"(pixels or path,label), an IDX images file, a CIFAR .bin batch or a .npz with x and y, "
        f"or set `data_format` to one of {', '.join(DATA_FORMATS)}. Received: path={path!r}"
    )


def load_source(
    path: str | os.PathLike,
    data_format: str = "auto",
    image_shape: Sequence[int] | None = None,
    names_file: str | os.PathLike | None = None,
) -> DataSource:
    """Read any supported dataset into a :class:`DataSource` (``data_format="auto"`` detects it).

    ``image_shape`` applies to ``csv_pixels`` and flat ``npz`` arrays; ``names_file`` to every
    format except ``folder`` (whose class names are the folder names).
    """
    path = os.fspath(path)
    if data_format != "auto" and data_format not in DATA_FORMATS:
        raise CnnhubError(
            f"`data_format` must be auto or one of {', '.join(DATA_FORMATS)}. "
            f"Received: data_format={data_format!r}"
        )
    if not os.path.exists(path):
        raise CnnhubError(f"The dataset path `{path}` does not exist. Received: path={path!r}")
    fmt = detect_format(path) if data_format == "auto" else data_format
    if image_shape is not None and fmt not in ("csv_pixels", "npz"):
        raise CnnhubError(
            f"`image_shape` only applies to csv_pixels and npz data; `{path}` is {fmt}. Leave it "
            f"out. Received: image_shape={image_shape!r}"
        )
    if names_file is not None and fmt == "folder":
        raise CnnhubError(
            f"`names_file` does not apply to a class folder: the subfolder names are the class "
            f"names. Leave it out. Received: names_file={os.fspath(names_file)!r}"
        )
    if fmt == "folder":
        return read_class_folder(path)
    if fmt == "csv_pixels":
        return read_csv_pixels(path, image_shape, names_file)
    if fmt == "csv_paths":
        return read_csv_paths(path, names_file)
    if fmt == "idx":
        return read_idx(path, names_file=names_file)
    if fmt == "cifar_bin":
        return read_cifar_bin(path, names_file=names_file)
    return read_npz(path, image_shape, names_file)


# --------------------------------------------------------------------------- splits


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
    frame = _split_frame(source, is_valid)
    return source.subset(np.flatnonzero(~is_valid)), source.subset(np.flatnonzero(is_valid)), frame


def _split_frame(source: DataSource, is_valid: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": source.keys,
            "label": [source.class_names[i] for i in source.labels],
            "split": np.where(is_valid, VALID, TRAIN),
        },
        columns=list(SPLIT_COLUMNS),
    )


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
