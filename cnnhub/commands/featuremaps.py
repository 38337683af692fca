"""``cnnhub featuremaps``: the flags and output files of :mod:`cnnhub.explain.featuremaps`.

::

    python -m cnnhub featuremaps RUN IMAGE [--layer NAME] [--weights best|last|<epoch>|<file>]
        [--max_channels 64] [--out DIR]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnhub import atomic
from cnnhub.cli import OneLineParser, add_run_argument, add_weights_option, run_command
from cnnhub.errors import CnnhubError
from cnnhub.explain.featuremaps import (
    write_feature_maps,
)
from cnnhub.quiet import quiet_tensorflow
from cnnhub.run_folder import check_output_target, check_writable
from cnnhub.run_loading import choose_weights, open_run, safe_file_name


def _run(argv: Sequence[str], prog: str) -> int:
    parser = OneLineParser(
        prog=prog,
        description="Plot the activations of each conv layer of a run's backbone for one image.",
    )
    add_run_argument(parser)
    parser.add_argument("image", help="Image file.")
    parser.add_argument(
        "--layer",
        default=None,
        help="Only this backbone layer (any layer with a 2-D feature map). [default: all conv "
        "layers]",
    )
    add_weights_option(parser)
    parser.add_argument(
        "--max_channels", type=int, default=64, help="Channels shown per layer. [default: 64]"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="Folder for the PNGs. [default: RUN/explain/featuremaps/<image stem>/]",
    )
    args = parser.parse_args(list(argv))
    if args.max_channels < 1:
        raise CnnhubError(
            f"`--max_channels` must be an integer >= 1. Received: max_channels={args.max_channels}"
        )
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise CnnhubError(
            f"`--out` must be a folder, but {args.out} is a file. Received: out={args.out}"
        )
    run = open_run(args.run)
    weights = choose_weights(run, args.weights)
    image = run.load_input(args.image)
    out_dir = (
        Path(args.out)
        if args.out
        else run.folder.explain / "featuremaps" / safe_file_name(Path(args.image).stem)
    )
    check_writable(out_dir, "feature maps", "--out", f"out={args.out or out_dir}")
    if args.out:
        check_output_target(out_dir, run, "--out", f"out={args.out}", [args.image])
    quiet_tensorflow()
    # Keras loads here, once the flags and the run are checked.
    from cnnhub.model_factory import build_run_model

    model = build_run_model(run, weights)
    caption = f"image {Path(args.image).name} | run {run.name} | weights {weights.path.name}"
    with atomic.new_folder(out_dir):
        paths = write_feature_maps(model, image, out_dir, args.layer, args.max_channels, caption)
    for path in paths:
        print(path)
    print(f"{len(paths)} feature-map PNG(s) in {out_dir}")
    return 0


def command(argv: Sequence[str], prog: str = "cnnhub featuremaps") -> int:
    """Entry point of ``cnnhub featuremaps``; returns the exit code."""
    return run_command(prog, lambda: _run(argv, prog))
