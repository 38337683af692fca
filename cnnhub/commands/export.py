"""``cnnhub export RUN --format FORMAT``: the flags and the summary line of :mod:`cnnhub.export`.

::

    python -m cnnhub export RUN --format keras|savedmodel|tflite|tflite-int8|onnx
        [--weights best|last|<epoch>|<file>] [--threshold best|<float>] [--out DIR]
        [--valid DIR] [--calibration DIR] [--calibration_images 200] [--opset 17]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnhub.cli import OneLineParser, add_run_argument, add_weights_option, run_command
from cnnhub.errors import CnnhubError
from cnnhub.export import (
    FORMATS,
    ONNX_OPSETS,
    export_run,
    human_size,
)
from cnnhub.quiet import quiet_tensorflow
from cnnhub.run_folder import check_output_target, check_writable
from cnnhub.run_loading import choose_weights, open_run
from cnnhub.tasks import get_task


def parse_format(text: str) -> str:
    fmt = text.strip().lower()
    if fmt not in FORMATS:
        raise CnnhubError(
            f"`--format` must be one of {', '.join(FORMATS)}. Received: format={text}"
        )
    return fmt


def _run(argv: Sequence[str], prog: str) -> int:
    parser = OneLineParser(
        prog=prog,
        description="Export a run's model (raw 0-255 RGB in, class probabilities out), with "
        "labels.txt and metadata.json, after checking it against the Keras model.",
    )
    add_run_argument(parser)
    parser.add_argument(
        "--format", required=True, help=f"One of {', '.join(FORMATS)}.", metavar="FORMAT"
    )
    add_weights_option(parser)
    parser.add_argument(
        "--threshold",
        default="best",
        help="Threshold recorded with the model: best (best_weights.json, else 0.0) or a "
        "number in [0, 1]. [default: best]",
    )
    parser.add_argument(
        "--out", default=None, help="Export folder. [default: RUN/export/<format>/]"
    )
    parser.add_argument(
        "--valid",
        default=None,
        help="Data for the check, any layout. [default: the run's validation data]",
    )
    parser.add_argument(
        "--calibration",
        default=None,
        help="tflite-int8: representative images. [default: DATA_DIR_TRAIN of the run]",
    )
    parser.add_argument(
        "--calibration_images",
        type=int,
        default=200,
        help="tflite-int8: how many calibration images. [default: 200]",
    )
    parser.add_argument("--opset", type=int, default=17, help="onnx: ONNX opset. [default: 17]")
    parser.add_argument(
        "--allow_flips",
        action="store_true",
        help="tflite-int8: keep the export even when its decisions at the threshold change on "
        "more than 1%% of the validation images (see check.json).",
    )
    args = parser.parse_args(list(argv))
    fmt = parse_format(args.format)
    if args.calibration_images < 1:
        raise CnnhubError(
            "`--calibration_images` must be an integer >= 1. "
            f"Received: calibration_images={args.calibration_images}"
        )
    if not ONNX_OPSETS[0] <= args.opset <= ONNX_OPSETS[1]:
        raise CnnhubError(
            f"`--opset` must be an ONNX opset from {ONNX_OPSETS[0]} to {ONNX_OPSETS[1]}. "
            f"Received: opset={args.opset}"
        )
    run = open_run(args.run)
    weights = choose_weights(run, args.weights)
    task = get_task(run.config)
    threshold = task.predict_threshold(run, args.threshold, weights)
    out_dir = Path(args.out) if args.out else run.path / "export" / fmt
    if out_dir.exists() and not out_dir.is_dir():
        raise CnnhubError(
            f"`--out` is the export folder (the model goes inside as {FORMATS[fmt]}), but "
            f"{out_dir} is a file. Received: out={args.out}"
        )
    check_writable(out_dir, "the export", "--out", f"out={args.out or out_dir}")
    if args.out:
        check_output_target(out_dir, run, "--out", f"out={args.out}")
    quiet_tensorflow()
    result = export_run(
        run, weights, fmt, out_dir, threshold, args.valid, args.calibration,
        args.calibration_images, args.opset, args.allow_flips,
    )  # fmt: skip
    print(
        f"Exported {run.name} ({weights.path.name}, {weights.how}) as {fmt}: {result.path} "
        f"({human_size(result.size_bytes)}, {result.size_bytes:,} bytes)"
    )
    print(
        f"Checked with {result.runtime} on {result.metadata['verification']['source']}: "
        f"{result.check_text} ({result.metadata['verification']['limit']})"
    )
    check = result.metadata["verification"]
    if "decisions_flipped" in check:  # classification: decisions at the threshold
        print(
            f"Decisions at threshold {threshold:g}: {check['decisions_flipped']} of "
            f"{result.images_checked} images change (accepted <-> abstained or class; "
            f"{check['flip_rate']:.1%}), per class in {result.check_path}"
        )
    print(f"Latency: {result.latency_ms:.3f} ms per image (batch 1, median, this machine)")
    print(
        f"Labels: {result.labels_path}; metadata: {result.metadata_path}"
        + (
            ""
            if threshold is None
            else " (a threshold per class)"
            if isinstance(threshold, dict)
            else f" (threshold {threshold:g})"
        )
    )
    if not args.out and run.folder.report_html.exists():  # its exports section lists this one
        from cnnhub.report import write_report  # lazy: matplotlib

        print(f"Report updated: {write_report(run.path)['html']}")
    return 0


def command(argv: Sequence[str], prog: str = "cnnhub export") -> int:
    """Entry point of ``cnnhub export``; returns the exit code."""
    return run_command(prog, lambda: _run(argv, prog))
