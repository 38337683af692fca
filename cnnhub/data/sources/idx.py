"""``idx``: MNIST-style IDX files (gzipped or not); the labels file is found beside the images."""

from __future__ import annotations

import gzip
import math
import os

import numpy as np

from cnnhub.data.sources.base import (
    DataSource,
    labelled_source,
)
from cnnhub.errors import CnnhubError

_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049


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
    return labelled_source(raw, names_file, images_path, "idx", images=images)


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
