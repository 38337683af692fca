"""``csv_pixels`` (label, then pixel values 0-255) and ``csv_paths`` (``path,label``; relative
paths start at the CSV's folder)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cnnhub.data.images import IMAGE_EXTENSIONS
from cnnhub.data.sources.base import (
    DataSource,
    _check_shape,
    _reshape_flat,
    _to_uint8,
    labelled_source,
)
from cnnhub.errors import CnnhubError


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
    return labelled_source(raw_labels, names_file, path, "csv_pixels", images=images)


def _paths_header(row: list[str]) -> dict[str, int] | None:
    lowered = [c.strip().lower() for c in row]
    if "path" in lowered:
        return {name: i for i, name in enumerate(lowered)}
    return None


def read_csv_paths(
    path: str | os.PathLike,
    names_file: str | os.PathLike | None = None,
    label_column: str = "label",
    allow_empty_labels: bool = False,
) -> DataSource:
    """A CSV with columns ``path,label`` (header optional), paths relative to the CSV's folder.

    ``label_column`` names the header's label column (a regression target, for instance).
    ``allow_empty_labels`` reads an empty label cell as the class ``""`` (multi-label data: an
    image without a label) instead of refusing it.

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
        wanted = label_column.strip().lower()
        if wanted not in columns:
            if wanted != "label":
                raise CnnhubError(
                    f"`{path}` has no column `{label_column}` (target_column). Name one of its "
                    f"columns. Received: target_column={label_column!r}, columns={rows[0]!r}"
                )
            raise CnnhubError(
                f"`{path}` has a `path` column but no `label` column. Add a `label` column with "
                f"each image's class. Received: columns={rows[0]!r}"
            )
        path_col, label_col, skip = columns["path"], columns[wanted], 1
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
    return labelled_source(
        raw_labels, names_file, path, "csv_paths", allow_empty_labels, paths=resolved, root=base
    )


def _has_image_extension(text: str) -> bool:
    return os.path.splitext(text.strip())[1].lower() in IMAGE_EXTENSIONS


def _resolve(base: str, written: str) -> str:
    candidate = os.path.expanduser(written)
    if os.sep == "/" and "\\" in candidate and not os.path.exists(os.path.join(base, candidate)):
        candidate = candidate.replace("\\", "/")  # a CSV written on Windows
    return os.path.normpath(os.path.join(base, candidate))
