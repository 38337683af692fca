"""Classify image files with a trained run.

The library behind ``cnnhub predict``; :mod:`cnnhub.commands.predict` parses its
flags and writes its files.

One row per image: ``image_path, label, confidence, class_1, prob_1, ..., class_k, prob_k,
error``. ``label`` is the top-1 class, or ``uncertain`` when the top-1 probability is below the
threshold (default: the one in ``best_weights.json``, else 0.0). Folders are walked recursively
(files with an image extension, hidden files and folders skipped); files named explicitly are
always tried. A file that cannot be decoded gets a row with ``error`` filled in and empty
prediction columns; the batch goes on. Images are turned into model input by the run
(:meth:`cnnhub.run_loading.Run.load_input`: its size and channels, training's decoder), in a
thread pool, and predicted in batches; a progress bar (stderr) appears above 300 images.

Without ``--out`` a table is printed; with ``--out`` the CSV is written (formula-safe, see
:mod:`cnnhub.evaluation.safe_csv`) and the table is printed only with ``--print``.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from cnnhub.data.images import IMAGE_EXTENSIONS, UnreadableImage
from cnnhub.errors import CnnhubError
from cnnhub.run_loading import (
    UNCERTAIN,
    Run,
    note,
    printable,
    walk_images,
)

PROGRESS_ABOVE = 300
"""A progress bar is shown when more images than this are predicted."""


def collect_images(inputs: Sequence[str]) -> list[str]:
    """Files as given plus the image files found (recursively) in folders, without repeats.

    Raises:
        CnnhubError: a path does not exist, or no image file is found at all.
    """

    paths: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = walk_images(item)
            if not found:
                note(f"no image files in the folder {printable(item)}.")
            paths.extend(found)
        elif os.path.exists(item):
            paths.append(item)
        else:
            raise CnnhubError(
                f"Image or folder not found: {item}. Pass image files or folders of images. "
                f"Received: {item!r}"
            )
    unique = list(dict.fromkeys(paths))
    if not unique:
        raise CnnhubError(
            "No image files to predict: the folders given hold no files with an image extension "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))}). Received: {list(inputs)}"
        )
    return unique


def _load(run: Run, path: str) -> tuple[np.ndarray | None, str | None]:

    try:
        return run.load_input(path), None
    except UnreadableImage as exc:
        return None, exc.reason


def predict_paths(
    model,
    run: Run,
    paths: Sequence[str],
    batch_size: int = 32,
    progress: bool | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, list[str | None]]:
    """Class probabilities for each file, decoded with ``run.load_input``, in batches.

    Returns ``(proba, errors)``: ``proba`` is float32 ``(N, classes)`` with a row of NaN for
    each unreadable file, ``errors[i]`` the reason file ``i`` could not be read (else None).
    ``progress`` None shows a tqdm bar on stderr above :data:`PROGRESS_ABOVE` images.
    """

    paths = list(paths)
    num_classes = int(model.output_shape[-1])
    proba = np.full((len(paths), num_classes), np.nan, dtype=np.float32)
    errors: list[str | None] = [None] * len(paths)
    show = len(paths) > PROGRESS_ABOVE if progress is None else progress
    starts = list(range(0, len(paths), batch_size))
    pad = len(paths) > batch_size  # a fixed batch shape: predict traces once
    n_workers = workers or min(8, os.cpu_count() or 1)
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=n_workers) as pool,
        tqdm(total=len(paths), disable=not show, unit="img", file=sys.stderr) as bar,
    ):

        def submit(start: int):
            chunk = paths[start : start + batch_size]
            return [pool.submit(_load, run, p) for p in chunk]

        pending = submit(starts[0]) if starts else []
        for index, start in enumerate(starts):
            loaded = [future.result() for future in pending]
            if index + 1 < len(starts):
                pending = submit(starts[index + 1])  # decode the next batch while predicting
            good = [i for i, (image, _) in enumerate(loaded) if image is not None]
            for i, (_, reason) in enumerate(loaded):
                errors[start + i] = reason
            if good:
                batch = np.stack([loaded[i][0] for i in good]).astype(np.float32)
                if pad and len(batch) < batch_size:
                    filler = np.zeros((batch_size - len(batch), *batch.shape[1:]), np.float32)
                    batch = np.concatenate([batch, filler])
                out = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
                proba[[start + i for i in good]] = out[: len(good)]
            bar.update(len(loaded))
    return proba, errors


def predictions_frame(
    paths: Sequence[str],
    proba: np.ndarray,
    errors: Sequence[str | None],
    class_names: Sequence[str],
    top_k: int,
    threshold: float,
):
    """The predictions table: one row per image (see the module docstring for the columns)."""

    k = min(top_k, len(class_names))
    names = np.asarray(class_names, dtype=object)
    rows = []
    for path, row, error in zip(paths, proba, errors):
        record: dict = {"image_path": str(path)}
        if error is not None:
            record.update(label="", confidence=np.nan)
            for rank in range(1, k + 1):
                record[f"class_{rank}"] = ""
                record[f"prob_{rank}"] = np.nan
            record["error"] = error
        else:
            order = np.argsort(-row, kind="stable")[:k]  # ties: lower class index first
            confidence = float(row[order[0]])
            record["label"] = str(names[order[0]]) if confidence >= threshold else UNCERTAIN
            record["confidence"] = confidence
            for rank, index in enumerate(order, start=1):
                record[f"class_{rank}"] = str(names[index])
                record[f"prob_{rank}"] = float(row[index])
            record["error"] = ""
        rows.append(record)
    columns = ["image_path", "label", "confidence"]
    for rank in range(1, k + 1):
        columns += [f"class_{rank}", f"prob_{rank}"]
    return pd.DataFrame(rows, columns=[*columns, "error"])


def format_table(frame, top_k: int) -> str:
    """The predictions as a fixed-width text table for the terminal."""
    k = min(top_k, sum(1 for c in frame.columns if c.startswith("class_")))
    header = ("image", "label", f"top {k}" if k > 1 else "top 1")
    rows = []
    for record in frame.to_dict("records"):
        if record["error"]:
            rows.append((record["image_path"], "ERROR", record["error"]))
            continue
        tops = " | ".join(
            f"{record[f'class_{r}']} {record[f'prob_{r}']:.3f}" for r in range(1, k + 1)
        )
        rows.append((record["image_path"], record["label"], tops))
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in [header, *rows]]
    lines.insert(1, f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * len(header[2])}")
    return "\n".join(lines)
