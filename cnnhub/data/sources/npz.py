"""``npz``: a NumPy ``.npz`` with arrays ``x`` and ``y``, loaded with ``allow_pickle=False``."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence

import numpy as np

from cnnhub.data.sources.base import (
    DataSource,
    _check_shape,
    _reshape_flat,
    _to_uint8,
    labelled_source,
)
from cnnhub.errors import CnnhubError


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
    if x.shape[-1] == 4:  # composite on white, like cnnhub.data.images.load_image
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
    return labelled_source(y, names_file, path, "npz", images=images)
