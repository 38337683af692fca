"""Multi-label labels: ``beach|people`` cells to a multi-hot matrix and back.

A cell holds an image's labels joined by the label separator (``LABEL_SEPARATOR``, default
``|``); surrounding spaces are dropped, a repeated label counts once, and an empty cell is an
image with no label (every class negative). The class names are the union of the labels,
sorted, or the names file's list (line ``v`` names label ``v``: a cell may then use names or
integer indices).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from cnnhub.errors import CnnhubError

DEFAULT_SEPARATOR = "|"

_INDEX = re.compile(r"^\d+$")


def check_separator(separator: str) -> str:
    """The separator, if it is one usable string (not empty, no comma, quote or newline)."""
    if (
        not isinstance(separator, str)
        or not separator.strip()
        or any(c in separator for c in ',"\n\r')
    ):
        raise CnnhubError(
            "`label_separator` must be a non-empty string without commas, quotes or newlines, "
            f"e.g. '|' or ';'. Received: label_separator={separator!r}"
        )
    return separator


def split_cells(cells: Sequence[str], separator: str = DEFAULT_SEPARATOR) -> list[list[str]]:
    """Each cell's labels, in the cell's order, without blanks or repeats."""
    check_separator(separator)
    out = []
    for cell in cells:
        parts = [part.strip() for part in str(cell).split(separator)]
        out.append(list(dict.fromkeys(part for part in parts if part)))
    return out


def encode_multi_hot(
    cells: Sequence[str],
    separator: str = DEFAULT_SEPARATOR,
    names: Sequence[str] | None = None,
    origin: str = "the labels",
) -> tuple[np.ndarray, list[str]]:
    """``(N, K)`` uint8 multi-hot labels and the ``K`` class names for label cells.

    Without ``names`` the classes are the union of the labels, sorted; with ``names`` every
    label must be one of them (or an integer index into them).
    """
    sets = split_cells(cells, separator)
    if names is None:
        class_names = sorted({label for labels in sets for label in labels})
        if not class_names:
            raise CnnhubError(
                f"No sample in `{origin}` has a label. Give at least one image a label "
                f"(labels separated by {separator!r}). Received: every label cell empty"
            )
    else:
        class_names = list(names)
    index = {name: i for i, name in enumerate(class_names)}
    unknown: list[str] = []
    matrix = np.zeros((len(sets), len(class_names)), dtype=np.uint8)
    for row, labels in enumerate(sets):
        for label in labels:
            column = index.get(label)
            if column is None and names is not None and _INDEX.match(label):
                column = int(label) if int(label) < len(class_names) else None
            if column is None:
                unknown.append(label)
            else:
                matrix[row, column] = 1
    if unknown:
        shown = sorted(set(unknown))[:5]
        raise CnnhubError(
            f"Labels in `{origin}` missing from the class names file: "
            f"{', '.join(map(repr, shown))}. Add them to the names file. Received: labels={shown}"
        )
    return matrix, class_names


def join_labels(
    multi_hot: np.ndarray, class_names: Sequence[str], separator: str = DEFAULT_SEPARATOR
) -> list[str]:
    """Each row's labels, in class order, joined by ``separator`` ('' for none)."""
    names = np.asarray(class_names, dtype=object)
    return [separator.join(names[np.flatnonzero(row)]) for row in np.asarray(multi_hot)]


def co_occurrence(multi_hot: np.ndarray) -> np.ndarray:
    """``(K, K)`` images having both labels (the diagonal: images per label)."""
    matrix = np.asarray(multi_hot, dtype=np.int64)
    return matrix.T @ matrix
