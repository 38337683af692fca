"""Which weights an evaluation scores, and where its results go (no TensorFlow here).

A run's own results (``analysis_report.csv``, the per-epoch CSVs in ``model_logs/``,
``best_weights.json``, ``best_model.keras``) are rewritten only by a *full* evaluation: every
weights file of ``model_logs/`` scored on the run's own validation data (or, on a run that has
no results yet, the run's EVAL_WEIGHTS selection). Every other evaluation writes a folder of
its own under ``<run>/evaluations/`` and leaves the run's files untouched:

* held-out data (``--data_dir``, ``-dtest``): ``evaluations/<name>-<hash>/``, where ``<name>``
  is the data's file or folder name and ``<hash>`` a short hash of its resolved absolute path,
  so that ``a/test`` and ``b/test`` never share a folder;
* a subset of the weights, or weights from outside the run, on validation data:
  ``evaluations/validation/``.

Each folder is replaced as a whole by the next evaluation of the same data.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cnnhub.errors import CnnhubError
from cnnhub.run_loading import safe_file_name
from cnnhub.weights import WEIGHTS_FILE_SUFFIXES

VALIDATION_FOLDER = "validation"
"""The evaluation folder of a weights subset (or outside weights) scored on validation."""

_TOP_N = re.compile(r"[1-9]\d*")
_ALLOWED = (
    "all, top:N (N >= 1: the N best epochs by EVAL_TOP_METRIC), or one or more .weights.h5 / "
    ".keras files (paths, or names in the run's model_logs/ or run folder)"
)


def parse_weights_option(values: Sequence[str] | None) -> str | list[str] | None:
    """Check ``evaluate --weights`` before anything is loaded.

    Returns:
        None (use the run's EVAL_WEIGHTS), ``"all"``, ``"top:N"`` or the list of file names.

    Raises:
        CnnhubError: a malformed ``top:N``, a keyword mixed with files, or a file name that
            does not end in ``.weights.h5`` or ``.keras``.
    """
    if not values:
        return None
    values = [str(value) for value in values]
    keywords = [v for v in values if v == "all" or v.lower().startswith("top:")]
    if keywords and len(values) > 1:
        raise CnnhubError(
            f"`--weights` must be {_ALLOWED}; all and top:N cannot be mixed with other values. "
            f"Received: --weights {' '.join(values)}"
        )
    if keywords:
        value = keywords[0]
        if value == "all":
            return "all"
        count = value.split(":", 1)[1]
        if not _TOP_N.fullmatch(count):
            raise CnnhubError(
                "`--weights top:N` needs a whole number N >= 1 (the N best epochs by "
                f"EVAL_TOP_METRIC). Received: --weights {value}"
            )
        return f"top:{int(count)}"
    for value in values:
        if not value.endswith(WEIGHTS_FILE_SUFFIXES):
            raise CnnhubError(f"`--weights` must be {_ALLOWED}. Received: --weights {value}")
    return values


def heldout_folder_name(origin: str | os.PathLike) -> str:
    """``<name>-<hash>``: the data's file or folder name and 8 hex digits of its resolved path."""
    resolved = Path(origin).resolve()
    digest = hashlib.sha1(os.fsencode(resolved)).hexdigest()[:8]
    return f"{safe_file_name(resolved.name or 'data', 40)}-{digest}"


def printable_path(path: str | os.PathLike) -> str:
    """``path`` as text that can be written as UTF-8 (undecodable bytes as ``\\xNN``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
