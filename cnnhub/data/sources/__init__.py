"""Read every supported dataset layout into one structure, :class:`DataSource`.

Layouts (``data_format`` names):

* ``folder`` - one subfolder of images per class (:func:`cnnhub.data.images.list_class_folder`).
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

import os
import re
from collections.abc import Sequence

from cnnhub.data.formats import DATA_FORMATS
from cnnhub.data.sources.base import DataSource, read_names_file
from cnnhub.data.sources.cifar import (
    _CIFAR_PICKLE_NAMES,
    _looks_pickled,
    _refuse_pickle,
    read_cifar_bin,
)
from cnnhub.data.sources.csv_files import (
    _has_image_extension,
    _paths_header,
    _read_csv_rows,
    read_csv_paths,
    read_csv_pixels,
)
from cnnhub.data.sources.folder import read_class_folder
from cnnhub.data.sources.idx import (
    _IDX_IMAGES_MAGIC,
    _IDX_LABELS_MAGIC,
    _idx_magic,
    idx_labels_candidates,
    read_idx,
)
from cnnhub.data.sources.npz import read_npz
from cnnhub.errors import CnnhubError


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
    label_column: str = "label",
    allow_empty_labels: bool = False,
) -> DataSource:
    """Read any supported dataset into a :class:`DataSource` (``data_format="auto"`` detects it).

    ``image_shape`` applies to ``csv_pixels`` and flat ``npz`` arrays; ``names_file`` to every
    format except ``folder`` (whose class names are the folder names); ``label_column`` to
    ``csv_paths`` with a header; ``allow_empty_labels`` (multi-label data) to ``csv_paths``.
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
        return read_csv_paths(path, names_file, label_column, allow_empty_labels)
    if fmt == "idx":
        return read_idx(path, names_file=names_file)
    if fmt == "cifar_bin":
        return read_cifar_bin(path, names_file=names_file)
    return read_npz(path, image_shape, names_file)


__all__ = [
    "DATA_FORMATS",
    "DataSource",
    "detect_format",
    "idx_labels_candidates",
    "load_source",
    "read_cifar_bin",
    "read_class_folder",
    "read_csv_paths",
    "read_csv_pixels",
    "read_idx",
    "read_names_file",
    "read_npz",
]
