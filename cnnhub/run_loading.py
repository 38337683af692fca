"""Open a trained run folder and rebuild its model with the weights the user asks for.

Shared by ``predict``, the explain commands (``featuremaps``, ``gradcam``, ``errors``) and
``export``. A run folder (see :mod:`cnnhub.run_folder`) holds ``run_config.json`` (the resolved
config), ``index_class_mapping.json`` (``{"0": "class_a", ...}``), per-epoch weights in
``model_logs/weights-{epoch:03d}-{val_accuracy:.4f}.weights.h5`` and, after post-evaluation,
``best_weights.json`` (``{"weights": <file in model_logs>, "epoch": k, "threshold": t, ...}``).

``--weights`` accepts:

* ``best`` (default): the file named in ``best_weights.json``; without that file, the last
  epoch's weights, with a printed note.
* ``last``: the last epoch's weights.
* an epoch number (``3``): ``model_logs/weights-003-*.weights.h5``.
* a file: a path, or a file name in ``model_logs`` or the run folder (``best_model.keras``,
  ``final_model.keras``); ``.weights.h5`` or ``.keras``.

``--threshold`` accepts ``best`` (default: the threshold of ``best_weights.json``, 0.0 without
it, with a printed note) or a number in [0, 1]. A top-1 probability below the threshold means
"uncertain" (the comparison is ``confidence >= threshold``, as in the evaluation reports).

It also prints notes on stderr. The commands themselves (flags, printing, exit status) are in
:mod:`cnnhub.commands`.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnhub.data.images import walk_images as walk
from cnnhub.data.sets import UNCERTAIN  # noqa: F401  (predict's and export's label)
from cnnhub.display import printable
from cnnhub.errors import CnnhubError
from cnnhub.run_folder import (  # noqa: F401  (Run, open_run: this module's public API)
    BEST_WEIGHTS,
    FINAL_MODEL,
    RUN_CONFIG,
    Run,
    epoch_of,
    open_run,
)

# --------------------------------------------------------------------------- command line


def note(message: str) -> None:
    """Print an informational note on stderr (stdout stays clean for tables)."""
    sys.stderr.write(f"note: {printable(message)}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- the run folder
# ``Run`` and ``open_run`` live in cnnhub.run_folder, the one reader of run folders.


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class WeightsChoice:
    """The weights file a command uses, and how it was chosen."""

    path: Path
    epoch: int | None
    is_best: bool
    how: str  # e.g. "best (epoch 3)", "epoch 2", "file x.weights.h5"

    @property
    def stem(self) -> str:
        """File name without ``.weights.h5`` / ``.keras`` (names derived outputs)."""
        name = self.path.name
        for suffix in (".weights.h5", ".keras", ".h5"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return self.path.stem


def _last_epoch(run: Run, why: str, show: Callable[[str], None]) -> WeightsChoice:
    epochs = run.epoch_weights()
    if epochs:
        epoch, path = max(epochs.items())
        if why:
            show(f"{why}; using the last epoch's weights, {path.name}.")
        return WeightsChoice(path, epoch, False, f"last epoch ({epoch})")
    final = run.path / FINAL_MODEL
    if final.is_file():
        if why:
            show(f"{why}; {run.model_logs} holds no epoch weights, using {FINAL_MODEL}.")
        return WeightsChoice(final, None, False, FINAL_MODEL)
    raise CnnhubError(
        f"The run folder {run.path} holds no weights: {run.model_logs} has no "
        f"weights-NNN-*.weights.h5 file and there is no {FINAL_MODEL}. Train the run first. "
        f"Received: run={str(run.path)!r}"
    )


def choose_weights(
    run: Run, spec: str = "best", show: Callable[[str], None] = note
) -> WeightsChoice:
    """Resolve ``--weights`` (best, last, an epoch number or a file) to a weights file."""
    text = str(spec).strip()
    lowered = text.lower()
    if lowered == "best":
        if run.best is None:
            return _last_epoch(
                run, f"{run.path / BEST_WEIGHTS} not found (no post-evaluation)", show
            )
        name = str(run.best.get("weights", ""))
        path = run.model_logs / name
        if not name or "/" in name or "\\" in name or not path.is_file():
            raise CnnhubError(
                f"{run.path / BEST_WEIGHTS} names the weights file {name!r}, which is not in "
                f"{run.model_logs}. Pass --weights last, an epoch number or a file. "
                f"Received: weights={text}"
            )
        epoch = run.best.get("epoch")
        epoch = int(epoch) if isinstance(epoch, (int, float)) else None
        label = f"best (epoch {epoch})" if epoch is not None else "best"
        return WeightsChoice(path, epoch, True, label)
    if lowered == "last":
        return _last_epoch(run, "", show)
    if text.isdigit():
        epoch = int(text)
        epochs = run.epoch_weights()
        if epoch not in epochs:
            available = ", ".join(str(e) for e in epochs) or "none"
            raise CnnhubError(
                f"`--weights` names epoch {epoch}, but {run.model_logs} has weights for epochs: "
                f"{available}. Pass best, last, one of those epochs or a weights file. "
                f"Received: weights={text}"
            )
        best_name = (run.best or {}).get("weights")
        return WeightsChoice(
            epochs[epoch], epoch, epochs[epoch].name == best_name, f"epoch {epoch}"
        )
    for candidate in (Path(text), run.model_logs / text, run.path / text):
        if candidate.is_file():
            if not (candidate.name.endswith(".weights.h5") or candidate.suffix == ".keras"):
                raise CnnhubError(
                    "`--weights` must be best, last, an epoch number, or a Keras .weights.h5 / "
                    f".keras file. Received: weights={text}"
                )
            epoch = epoch_of(candidate)
            is_best = candidate.name == (run.best or {}).get("weights")
            return WeightsChoice(candidate, epoch, is_best, f"file {candidate.name}")
    raise CnnhubError(
        "`--weights` must be best, last, an epoch number, or an existing .weights.h5 / .keras "
        "file (a path, or a file name in the run folder or its model_logs). "
        f"Received: weights={text}"
    )


def choose_threshold(
    run: Run, spec: str | float, weights: WeightsChoice | None = None,
    show: Callable[[str], None] = note,
) -> float:  # fmt: skip
    """Resolve ``--threshold`` (``best`` or a number in [0, 1])."""
    text = str(spec).strip()
    if text.lower() == "best":
        value = None if run.best is None else run.best.get("threshold")
        if run.best is None:
            show(f"{run.path / BEST_WEIGHTS} not found (no post-evaluation); using threshold 0.0.")
            return 0.0
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            show(f"no valid threshold in {run.path / BEST_WEIGHTS}; using threshold 0.0.")
            return 0.0
        if weights is not None and not weights.is_best:
            show(
                f"threshold {float(value):g} was chosen for the best weights "
                f"({run.best.get('weights')}), not for {weights.path.name}."
            )
        return float(value)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise CnnhubError(
            f"`--threshold` must be best or a number between 0 and 1. Received: threshold={text}"
        )
    return value


# ----------------------------------------------------------------- pretrained starts (-w <run>)


def weights_source(weights: str | Path, announce: bool = False):
    """The weights file that ``-w`` names, and the run it comes from (a ``run_loading.Run``,
    None when the file is not inside a run folder).

    ``weights`` is a run folder (its best weights, chosen on validation, else its last epoch's,
    with a printed note when ``announce``), a ``.weights.h5`` file (in a run's ``model_logs``,
    or anywhere) or a ``.keras`` model.
    """
    path = Path(weights)
    if path.is_dir():
        run = open_run(path)
        show = (lambda text: print(f"note: {text}")) if announce else (lambda text: None)
        return choose_weights(run, "best", show=show).path, run
    for folder in (path.parent, path.parent.parent):
        if (folder / RUN_CONFIG).is_file():
            try:
                return path, open_run(folder)
            except CnnhubError:
                break
    return path, None


# --------------------------------------------------------------------------- images


def walk_images(folder: str | os.PathLike) -> list[str]:
    """The image files under ``folder``: :func:`cnnhub.data.images.walk_images`, the walk that
    training and ``inspect`` use too (regular files only, links followed once)."""

    return walk(folder)


def spread(items: Sequence, count: int) -> list:
    """Up to ``count`` items picked evenly across ``items`` (so every class is represented)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def safe_file_name(text: str, limit: int = 60) -> str:
    """``text`` made into a safe file-name part (class names and file stems are untrusted).

    Letters (any script), digits, ``.``, ``_`` and ``-`` are kept, anything else becomes ``_``;
    no leading dot, at most ``limit`` characters. When that changed the text, a short hash of
    the original is appended so that different names never give the same file name.
    """
    text = str(text)
    cleaned = re.sub(r"[^\w.\-]", "_", text).lstrip(".")[:limit] or "_"
    if cleaned != text:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]
        cleaned = f"{cleaned}-{digest}"
    return cleaned
