"""``cnnhub weights [--download NAMES]``: list or fill Keras's ImageNet weights cache
(:mod:`cnnhub.pretrained`)."""

from __future__ import annotations

from cnnhub.cli import OneLineParser
from cnnhub.errors import CnnhubError
from cnnhub.pretrained import (
    fetch_imagenet,
    format_cache_table,
)
from cnnhub.quiet import quiet_tensorflow
from cnnhub.registry import BACKBONES, parse_model_names


def command(argv: list[str]) -> int:
    """``cnnhub weights [--download NAMES]``: list or fill Keras's ImageNet weights cache."""

    parser = OneLineParser(
        prog="cnnhub weights",
        description="List which registry models' ImageNet weights are in Keras's cache "
        "($KERAS_HOME or ~/.keras), or download them with Keras's own downloader.",
    )
    parser.add_argument(
        "--download",
        metavar="NAMES",
        help="comma-separated model names (or `all`) whose ImageNet weights to fetch",
    )
    args = parser.parse_args(argv)
    if args.download:
        if args.download.strip().lower() == "all":
            specs = [s for s in BACKBONES.values() if s.imagenet]
        else:
            specs = parse_model_names(args.download)
        lacking = [s.name for s in specs if not s.imagenet]
        if lacking:
            raise CnnhubError(
                f"There are no ImageNet weights for {', '.join(lacking)} (they train from random "
                f"weights). Received: --download {args.download}"
            )

        quiet_tensorflow()
        for spec in specs:
            shape = (spec.default_size, spec.default_size, 3)
            print(f"{spec.name}: {fetch_imagenet(spec, shape)}", flush=True)
    print(format_cache_table())
    return 0
