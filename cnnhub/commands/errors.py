"""``cnnhub errors``: the flags and output files of :mod:`cnnhub.explain.errors`.

::

    python -m cnnhub errors RUN [--weights best|last|<epoch>|<file>] [--count 16]
        [--valid DIR] [--out FILE.png] [--batch_size 32]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnhub.cli import OneLineParser, add_run_argument, add_weights_option, run_command
from cnnhub.data.pipeline import evaluation_dataset
from cnnhub.data.sets import evaluation_source, split_of_source
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.safe_csv import write_csv_safe
from cnnhub.explain.common import plot_text
from cnnhub.explain.errors import (
    plot_gallery,
    wrong_predictions,
)
from cnnhub.quiet import quiet_tensorflow
from cnnhub.run_folder import check_output_target, check_writable
from cnnhub.run_loading import choose_weights, note, open_run
from cnnhub.tasks import get_task


def _run(argv: Sequence[str], prog: str) -> int:
    parser = OneLineParser(
        prog=prog,
        description="Gallery of the most confidently wrong validation images of a run.",
    )
    add_run_argument(parser)
    add_weights_option(parser)
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
    get_task(run.config).check_command("errors", args.run)
    weights = choose_weights(run, args.weights)
    png_folder = Path(args.out).parent if args.out else run.folder.explain
    check_writable(png_folder, "the errors gallery", "--out", f"out={args.out or png_folder}")
    quiet_tensorflow()

    # The validation data exactly as `evaluate` scores it (any layout, VAL_SPLIT, DEV).
    source = evaluation_source(
        run.config, run.folder.split_csv, run.class_names, args.valid, "--valid"
    )
    split, skipped = split_of_source(source, run.config.get("SCAN_CACHE", True), run.channels)
    if skipped:
        note(f"{len(skipped)} unreadable validation file(s) left out.")
    if args.out:  # the gallery and its CSV beside it
        for target in (args.out, Path(args.out).with_suffix(".csv")):
            check_output_target(target, run, "--out", f"out={args.out}", split.paths)
    # Keras loads here, once the flags and the run are checked.
    from cnnhub.model_factory import build_run_model

    model = build_run_model(run, weights)
    dataset = evaluation_dataset(split, run.config, run.num_classes, args.batch_size)
    proba = np.asarray(model.predict(dataset, verbose=0), dtype=np.float64)
    wrong = wrong_predictions(split.paths, split.labels, proba, run.class_names)
    scored = len(split)
    if wrong.empty:
        print(f"No misclassified validation images: all {scored} are right with {weights.how}.")
        return 0
    png = Path(args.out) if args.out else run.folder.explain / f"errors_{weights.stem}.png"
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

    write_csv_safe(csv, wrong)
    print(f"{len(wrong)} of {scored} validation images wrong with {weights.how}.")
    print(f"Gallery: {png}")
    print(f"All errors: {csv}")
    return 0


def command(argv: Sequence[str], prog: str = "cnnhub errors") -> int:
    """Entry point of ``cnnhub errors``; returns the exit code."""
    return run_command(prog, lambda: _run(argv, prog))
