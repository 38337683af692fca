"""``cifar_bin``: CIFAR-10/100 binary batches; the Python (pickle) batches are refused."""

from __future__ import annotations

import os
import re

import numpy as np

from cnnhub.data.sources.base import (
    DataSource,
    labelled_source,
)
from cnnhub.errors import CnnhubError

_CIFAR_PIXELS = 3 * 32 * 32
_CIFAR_RECORD = {"cifar10": 1 + _CIFAR_PIXELS, "cifar100": 2 + _CIFAR_PIXELS}
_CIFAR_NAMES_FILE = {"cifar10": "batches.meta.txt", "cifar100": "fine_label_names.txt"}
_CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}
_CIFAR_PICKLE_NAMES = re.compile(r"^(data_batch_\d+|test_batch|batches\.meta|train|test|meta)$")


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
    images = np.ascontiguousarray(np.concatenate(pixels))
    return labelled_source(labels_raw, names_file, path, "cifar_bin", images=images, keys=keys)
