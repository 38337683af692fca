"""CSV cells that are safe to open in a spreadsheet.

Class names and image paths come from the user's folders, so they are untrusted text.
pandas already quotes commas, quotes and newlines; what it does not handle is *formula
injection*: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, per
OWASP, a tab or carriage return) as a formula. :func:`escape_cell` prefixes such a cell with
``'``, which spreadsheets read as "this is text".

A cell that already starts with ``'`` is prefixed too, so the escaping is reversible:
:func:`unescape_cell` strips exactly one leading ``'`` and gets the original text back.
Column headers are escaped the same way (a confusion matrix's headers are class names).
Numbers are never touched: ``-0.5`` in a float column stays a number.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from cnnhub.atomic import write_csv

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters that make a spreadsheet treat a cell as a formula."""

_ESCAPED_PREFIXES = (*FORMULA_PREFIXES, "'")


def escape_cell(value: Any) -> Any:
    """Return ``value`` with a ``'`` in front when it is a string a spreadsheet could run.

    Strings starting with ``=``, ``+``, ``-``, ``@``, tab, carriage return, or ``'`` (so that
    the escaping can be undone) get the prefix; everything else is returned unchanged.
    """
    if isinstance(value, str) and value.startswith(_ESCAPED_PREFIXES):
        return "'" + value
    return value


def unescape_cell(value: Any) -> Any:
    """Undo :func:`escape_cell`: strip one leading ``'`` from a string."""
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def _is_text_column(column: pd.Series) -> bool:
    return column.dtype == object or pd.api.types.is_string_dtype(column.dtype)


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` with every string cell and column name escaped."""
    out = frame.copy(deep=False)  # copy-on-write: text columns are replaced, not edited
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if _is_text_column(column):
            out.isetitem(position, column.map(escape_cell).astype(object))
    out.columns = [escape_cell(name) for name in out.columns]
    return out


def write_csv_safe(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Atomically write ``frame`` as UTF-8 CSV (no index) after :func:`safe_frame`."""
    write_csv(path, safe_frame(frame))


def read_csv_safe(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv_safe` and undo the escaping.

    Defaults to ``keep_default_na=False, na_values=[""]`` so that a class called ``NA`` or
    ``null`` stays a string; other keyword arguments go to :func:`pandas.read_csv` (pass
    ``dtype={"class": str}`` when class names look like numbers). Duplicate headers come back
    renamed by pandas (``actual.1``), as with any CSV.
    """
    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    kwargs.setdefault("encoding", "utf-8")
    kwargs.setdefault("encoding_errors", "surrogateescape")  # non-UTF-8 file names (atomic.py)
    frame = pd.read_csv(path, **kwargs)
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if _is_text_column(column):
            frame.isetitem(position, column.map(unescape_cell))
    frame.columns = [unescape_cell(name) for name in frame.columns]
    return frame
