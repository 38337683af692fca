"""``cnnhub predict RUN IMAGE_OR_DIR...``: the flags, the table and the CSV of
:mod:`cnnhub.predict`.

::

    python -m cnnhub predict RUN IMAGE_OR_DIR... [--weights best|last|<epoch>|<file>]
        [--top_k 3] [--threshold best|<float>] [--out predictions.csv] [--print]
        [--batch_size 32]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnhub.cli import OneLineParser, add_run_argument, add_tta_option, run_command
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.safe_csv import write_csv_safe
from cnnhub.evaluation.tta import describe, parse_tta, with_tta
from cnnhub.predict import collect_images, predict_paths
from cnnhub.quiet import quiet_tensorflow
from cnnhub.run_folder import check_output_target, check_writable
from cnnhub.run_loading import Run, choose_weights, note, open_run
from cnnhub.tasks import get_task


def build_parser(prog: str) -> OneLineParser:
    parser = OneLineParser(
        prog=prog,
        description="Classify images with a trained run: one row per image with the top-k "
        "classes and probabilities; below the threshold the label is `uncertain` "
        "(regression runs: the predicted value(s)).",
    )
    add_run_argument(parser)
    parser.add_argument(
        "inputs", nargs="+", metavar="IMAGE_OR_DIR",
        help="Image files and/or folders (walked recursively).",
    )  # fmt: skip
    parser.add_argument(
        "--weights", default="best",
        help="best (best_weights.json, else the last epoch), last, an epoch number, or a "
        ".weights.h5/.keras file. [default: best]",
    )  # fmt: skip
    parser.add_argument("--top_k", type=int, default=3, help="Classes per image. [default: 3]")
    parser.add_argument(
        "--threshold", default="best",
        help="best (best_weights.json, else 0.0) or a number in [0, 1]; a top-1 probability "
        "below it gives the label `uncertain`. [default: best]",
    )  # fmt: skip
    parser.add_argument("--out", default=None, help="Write the predictions to this CSV file.")
    parser.add_argument(
        "--print", dest="print_table", action="store_true",
        help="Print the table even when --out is given.",
    )  # fmt: skip
    parser.add_argument("--batch_size", type=int, default=32, help="[default: 32]")
    add_tta_option(parser)
    return parser


def predict_command(argv: Sequence[str], prog: str) -> int:
    args = build_parser(prog).parse_args(list(argv))
    if args.top_k < 1:
        raise CnnhubError(f"`--top_k` must be an integer >= 1. Received: top_k={args.top_k}")
    if args.batch_size < 1:
        raise CnnhubError(
            f"`--batch_size` must be an integer >= 1. Received: batch_size={args.batch_size}"
        )
    if args.tta is not None:
        parse_tta(args.tta)  # a bad view name: one line, before the run is read
    if args.out is not None and Path(args.out).is_dir():
        raise CnnhubError(
            f"`--out` must be a CSV file path, not a folder. Received: out={args.out}"
        )
    if args.out is not None:
        check_writable(Path(args.out).parent, "the predictions", "--out", f"out={args.out}")
    run: Run = open_run(args.run)
    task = get_task(run.config)
    views = parse_tta(run.config["TTA"] if args.tta is None else args.tta)
    weights = choose_weights(run, args.weights)
    threshold = task.predict_threshold(run, args.threshold, weights)
    paths = collect_images(args.inputs)
    if args.out is not None:
        check_output_target(args.out, run, "--out", f"out={args.out}", paths)
    if args.top_k > run.num_classes and task.thresholded:
        note(f"--top_k {args.top_k} is more than the {run.num_classes} classes; showing all.")
    quiet_tensorflow()
    # Keras loads here, once the flags and the run are checked.
    from cnnhub.model_factory import build_run_model

    model = with_tta(build_run_model(run, weights), views)
    proba, errors = predict_paths(model, run, paths, args.batch_size)
    frame = task.predictions_frame(paths, proba, errors, run.class_names, args.top_k, threshold)
    if args.out is None or args.print_table:
        print(task.format_predictions(frame, args.top_k))
    if args.out is not None:
        write_csv_safe(args.out, frame)
    print(
        f"{len(paths)} image(s): {task.prediction_counts(frame, threshold)}; "
        f"weights {weights.path.name} ({weights.how})"
        + (f", test-time augmentation {describe(views)}." if views else ".")
        + (f" Wrote {args.out}" if args.out is not None else "")
    )
    return 0


def command(argv: Sequence[str], prog: str = "cnnhub predict") -> int:
    """Entry point of ``cnnhub predict``; returns the exit code."""
    return run_command(prog, lambda: predict_command(argv, prog))
