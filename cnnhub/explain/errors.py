"""``cnnhub errors``: the validation images the model gets wrong most confidently.

::

    python -m cnnhub errors RUN [--weights best|last|<epoch>|<file>] [--count 16]
        [--valid DIR] [--out FILE.png] [--batch_size 32]

Like fastai's "top losses", restricted to mistakes: every validation image is predicted with
the chosen weights (default: the best epoch), batched; the wrongly classified ones are sorted by
the confidence of the wrong class (highest first) and the first ``--count`` are drawn in a
gallery (as the model sees them) with actual class, predicted class and confidence under each.
Written to ``RUN/explain/errors_<weights stem>.png`` (or ``--out``) plus a CSV of the same name
listing every wrong image (``image_path, actual, predicted, confidence, loss``; formula-safe).

The validation data is rebuilt exactly as ``evaluate`` rebuilds it
(:func:`cnnhub.data.sets.evaluation_source`): the run's ``split.csv`` for ``--val_split`` runs,
DATA_DIR_VALID in any layout (class folders, CSV, IDX, ...), the same DEV pick; ``--valid``
names other data in any layout instead. Unreadable files are left out, with a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnhub.errors import CnnhubError
from cnnhub.explain.common import DPI, plot_text, pyplot
from cnnhub.run_folder import check_output_target, check_writable
from cnnhub.run_loading import (
    OneLineParser,
    build_run_model,
    choose_weights,
    note,
    open_run,
    quiet_tensorflow,
    run_command,
)

CELL_WIDTH_PX = 260
CELL_HEIGHT_PX = 330
TITLE_PX = 70
MAX_COLUMNS = 4


def figure_pixels(count: int) -> tuple[int, int]:
    """(width, height) in pixels of a gallery of ``count`` images."""
    columns = min(MAX_COLUMNS, max(count, 1))
    rows = math.ceil(max(count, 1) / columns)
    return columns * CELL_WIDTH_PX, rows * CELL_HEIGHT_PX + TITLE_PX


def wrong_predictions(
    paths: Sequence[str], labels: Sequence[int], proba: np.ndarray, class_names: Sequence[str]
):
    """Every wrongly classified image, most confident first (readable images only)."""
    import pandas as pd

    labels = np.asarray(labels)
    readable = ~np.isnan(proba).any(axis=1)
    predicted = np.where(readable, np.nan_to_num(proba).argmax(axis=1), -1)
    wrong = np.flatnonzero(readable & (predicted != labels))
    names = list(class_names)
    frame = pd.DataFrame(
        {
            "image_path": [str(paths[i]) for i in wrong],
            "actual": [names[labels[i]] for i in wrong],
            "predicted": [names[predicted[i]] for i in wrong],
            "confidence": [float(proba[i, predicted[i]]) for i in wrong],
            "loss": [float(-np.log(max(float(proba[i, labels[i]]), 1e-12))) for i in wrong],
        },
        columns=["image_path", "actual", "predicted", "confidence", "loss"],
    )
    return frame.sort_values(
        ["confidence", "loss", "image_path"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)


def plot_gallery(rows, images: np.ndarray, title: str, path: Path) -> None:
    """Save the gallery of ``rows`` (a frame from :func:`wrong_predictions`) to ``path``.

    ``images[i]`` is the model input of ``rows``' i-th image (0-255, one or three channels).
    """
    from cnnhub import atomic

    plt = pyplot()
    count = len(rows)
    width, height = figure_pixels(count)
    columns = min(MAX_COLUMNS, max(count, 1))
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    for n, record in enumerate(rows.to_dict("records")):
        r, c = divmod(n, columns)
        left = c * CELL_WIDTH_PX / width
        top = 1 - (TITLE_PX + r * CELL_HEIGHT_PX) / height
        image_height = 200 / height
        ax = fig.add_axes(
            (left + 30 / width, top - 10 / height - image_height, 200 / width, image_height)
        )
        image = np.clip(images[n], 0, 255).astype(np.uint8)
        if image.shape[-1] == 1:  # a grayscale run
            ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(image)
        ax.set_axis_off()
        ax.set_title(plot_text(Path(record["image_path"]).name), fontsize=7, color="0.3")
        caption = (
            f"actual: {plot_text(record['actual'])}\n"
            f"predicted: {plot_text(record['predicted'])}\n"
            f"confidence: {record['confidence']:.3f}"
        )
        fig.text(
            left + 0.5 * CELL_WIDTH_PX / width,
            top - 220 / height,
            caption,
            ha="center",
            va="top",
            fontsize=9,
            linespacing=1.4,
        )
    fig.text(0.5, 1 - 35 / height, title, ha="center", va="center", fontsize=12)
    atomic.save_figure(path, fig, dpi=DPI)
    plt.close(fig)


def _run(argv: Sequence[str], prog: str) -> int:
    parser = OneLineParser(
        prog=prog,
        description="Gallery of the most confidently wrong validation images of a run.",
    )
    parser.add_argument("run", help="Run folder (<save_loc>/model_repository/<run name>).")
    parser.add_argument(
        "--weights",
        default="best",
        help="best, last, an epoch number or a weights file. [default: best]",
    )
    parser.add_argument("--count", type=int, default=16, help="Images shown. [default: 16]")
    parser.add_argument(
        "--valid",
        default=None,
        help="Validation data, any layout. [default: the run's validation data, as evaluate]",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="PNG file to write (the CSV goes next to it). "
        "[default: RUN/explain/errors_<weights stem>.png]",
    )
    parser.add_argument("--batch_size", type=int, default=32, help="[default: 32]")
    args = parser.parse_args(list(argv))
    if args.out is not None and not args.out.lower().endswith(".png"):
        raise CnnhubError(f"`--out` must be a .png file path. Received: out={args.out}")
    for flag in ("count", "batch_size"):
        if getattr(args, flag) < 1:
            raise CnnhubError(
                f"`--{flag}` must be an integer >= 1. Received: {flag}={getattr(args, flag)}"
            )
    run = open_run(args.run)
    weights = choose_weights(run, args.weights)
    png_folder = Path(args.out).parent if args.out else run.path / "explain"
    check_writable(png_folder, "the errors gallery", "--out", f"out={args.out or png_folder}")
    quiet_tensorflow()
    from cnnhub.data.pipeline import evaluation_dataset
    from cnnhub.data.sets import (
        check_same_classes,
        evaluation_source,
        split_of_source,
    )

    # The validation data exactly as `evaluate` scores it (any layout, VAL_SPLIT, DEV).
    source = evaluation_source(run.config, run.path, run.class_names, args.valid, "--valid")
    check_same_classes(source, run.class_names, f"--valid {source.origin}")
    split, skipped = split_of_source(source, run.config.get("SCAN_CACHE", True), run.channels)
    if skipped:
        note(f"{len(skipped)} unreadable validation file(s) left out.")
    if args.out:  # the gallery and its CSV beside it
        for target in (args.out, Path(args.out).with_suffix(".csv")):
            check_output_target(target, run, "--out", f"out={args.out}", split.paths)
    model = build_run_model(run, weights)
    dataset = evaluation_dataset(split, run.config, run.num_classes, args.batch_size)
    proba = np.asarray(model.predict(dataset, verbose=0), dtype=np.float64)
    wrong = wrong_predictions(split.paths, split.labels, proba, run.class_names)
    scored = len(split)
    if wrong.empty:
        print(f"No misclassified validation images: all {scored} are right with {weights.how}.")
        return 0
    png = Path(args.out) if args.out else run.path / "explain" / f"errors_{weights.stem}.png"
    csv = png.with_suffix(".csv")
    shown = wrong.head(args.count)
    title = (
        f"Most confidently wrong: {len(shown)} of {len(wrong)} errors in {scored} validation "
        f"images\nrun {plot_text(run.name)}, weights {plot_text(weights.path.name)}"
    )
    position = {path: i for i, path in enumerate(split.paths)}
    shown_split = split.subset([position[p] for p in shown["image_path"]])
    images = np.concatenate(
        list(evaluation_dataset(shown_split, run.config, run.num_classes).as_numpy_iterator())
    )
    plot_gallery(shown, images, title, png)
    from cnnhub.evaluation.safe_csv import write_csv_safe

    write_csv_safe(csv, wrong)
    print(f"{len(wrong)} of {scored} validation images wrong with {weights.how}.")
    print(f"Gallery: {png}")
    print(f"All errors: {csv}")
    return 0


def command(argv: Sequence[str], prog: str = "cnnhub errors") -> int:
    """Entry point of ``cnnhub errors``; returns the exit code."""
    return run_command(prog, lambda: _run(argv, prog))
