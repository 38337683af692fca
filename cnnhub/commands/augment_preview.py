"""``cnnhub augment-preview DATA [-c config] [--out PNG] [training flags]``: a PNG grid of
original and augmented training images per class, so a user sees what the model will see
(e.g. that horizontal flips turn a 2 into something else)."""

from __future__ import annotations

from pathlib import Path

from cnnhub import settings
from cnnhub.cli import OneLineParser
from cnnhub.errors import CnnhubError
from cnnhub.quiet import quiet_tensorflow
from cnnhub.run_folder import check_writable


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="cnnhub augment-preview",
        description="Write a PNG grid of training images: for a few images of each class, the "
        "original and augmented copies as training draws them (the AUG_* keys, MixUp/CutMix "
        "included; copy k uses epoch k's random draws). Any training flag (--aug_*, "
        "--color_mode, --height, ...) may follow, as in `cnnhub train`.",
    )
    parser.add_argument("data", help="training data: a class folder, CSV, IDX, CIFAR or npz")
    parser.add_argument("--out", default="augment_preview.png", help="PNG file to write")
    parser.add_argument("--images", type=int, default=2, help="images per class [default: 2]")
    parser.add_argument("--copies", type=int, default=5, help="augmented copies [default: 5]")
    return parser


def command(argv: list[str]) -> int:
    """Check the flags and the config (before TensorFlow loads), then draw the grid."""
    args, rest = build_parser().parse_known_args(argv)
    config, _ = settings.resolve([*rest, "-dtrain", args.data], "cnnhub augment-preview")
    for flag, value, low, high in (
        ("--images", args.images, 1, 20),
        ("--copies", args.copies, 1, 20),
    ):
        if not low <= value <= high:
            raise CnnhubError(
                f"`{flag}` must be an integer in [{low}, {high}]. Received: {flag} {value}"
            )
    out = Path(args.out)
    if out.suffix.lower() != ".png" or out.is_dir():
        raise CnnhubError(f"`--out` must be a .png file path. Received: --out {args.out}")
    check_writable(out.parent, "the preview", "--out", f"out={args.out}")
    quiet_tensorflow(config["VERBOSE"])
    # Here, once everything is checked: the data and Keras modules load.
    from cnnhub.data.preview import draw_preview

    print(draw_preview(config, args.data, out, args.images, args.copies))
    return 0
