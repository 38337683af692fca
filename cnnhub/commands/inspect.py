"""``cnnhub inspect DATA [--valid DATA] [--test DATA]``: the full report of
:mod:`cnnhub.data.inspect` on one dataset or a folder of splits."""

from __future__ import annotations

import os
from pathlib import Path

from cnnhub.cli import OneLineParser
from cnnhub.data.images import SPLIT_ROLES, split_folders
from cnnhub.data.inspect import inspect_sources, sources_first
from cnnhub.data.multi_hot import check_separator
from cnnhub.data.sets import DataOptions, input_channels, read_source
from cnnhub.data.sources import DATA_FORMATS
from cnnhub.errors import CnnhubError
from cnnhub.run_folder import check_writable
from cnnhub.settings import check_image_shape
from cnnhub.tasks import TASK_NAMES, get_task


def command(argv: list[str]) -> int:
    """``cnnhub inspect DATA [--valid DATA] [--test DATA]``."""

    parser = OneLineParser(
        prog="cnnhub inspect",
        description="Report a dataset before training: images per class and split, imbalance, "
        "image sizes and modes, files that cannot be decoded (with the reason), exact duplicates "
        "within a split and across splits (leakage), and balanced class weights. DATA is a "
        "folder with one sub-folder per class, or a CSV (pixels or path,label), IDX, CIFAR "
        ".bin or .npz file.",
    )
    parser.add_argument(
        "data",
        help="training data (or the only dataset to inspect), or a folder whose subfolders are "
        "the splits (train, valid or validation, test): all of them are inspected",
    )
    parser.add_argument("--valid", default="", help="validation data (any format)")
    parser.add_argument("--test", default="", help="test data (any format)")
    parser.add_argument(
        "--data_format",
        default="auto",
        choices=("auto", *DATA_FORMATS),
        help="layout of every dataset given (default: detected per path)",
    )
    parser.add_argument(
        "--class_names_file", default="", help="class names, one per line (line v = label v)"
    )
    parser.add_argument(
        "--image_shape",
        type=int,
        nargs="*",
        default=[],
        help="height width [channels] of csv_pixels rows / flat npz arrays",
    )
    parser.add_argument(
        "--label_separator", default="|", help="multi_label: what separates a cell's labels"
    )
    parser.add_argument(
        "--show", type=int, default=20, help="list at most this many items per finding"
    )
    parser.add_argument(
        "--no_cache", action="store_true", help="ignore and do not write the scan/hash cache"
    )
    parser.add_argument(
        "--color_mode", default="rgb", choices=("rgb", "grayscale"),
        help="check the decode a run with this COLOR_MODE uses (the scan cache keeps one "
        "verdict per decoder), so that run finds every file checked",
    )  # fmt: skip
    parser.add_argument(
        "--task", default="single_label", choices=TASK_NAMES,
        help="what the labels are (as for training): regression reports each target's "
        "distribution, multi_label (csv_paths label cells of several labels) the images per "
        "label and the labels that occur together",
    )  # fmt: skip
    parser.add_argument(
        "--target_column", default="", help="regression, csv_paths: the target column(s)"
    )
    parser.add_argument("--num_targets", type=int, default=1, help="regression: targets")
    parser.add_argument(
        "--out", default="",
        help="folder for the report's figures (regression: target_histogram.png); none without",
    )  # fmt: skip
    args = parser.parse_args(argv)

    options = DataOptions(
        data_format=args.data_format,
        class_names_file=args.class_names_file,
        image_shape=tuple(args.image_shape),
        task=args.task,
        target_column=args.target_column,
        num_targets=args.num_targets,
        label_separator=check_separator(args.label_separator),
    )
    if args.out:
        check_writable(Path(args.out), "the inspection figures", "--out", f"out={args.out}")

    check_image_shape(list(args.image_shape))
    sources = {}
    for name, (role, path) in _datasets(args.data, args.valid, args.test).items():
        reference = sources_first(sources) if sources else None
        sources[name] = read_source(path, role, options, reference=reference)
    channels = input_channels({"COLOR_MODE": args.color_mode})
    report = inspect_sources(
        sources, use_cache=not args.no_cache, channels=channels, task=args.task
    )
    print(report.format(detail=True, show=max(args.show, 1)))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        for path in get_task(args.task).inspection_figures(report, Path(args.out)):
            print(f"Wrote {path}")
    return 0


def _datasets(data: str, valid: str, test: str) -> dict[str, tuple[str, str]]:
    """``{report name: (role, path)}`` of what to inspect, training data first.

    DATA may be a folder of splits (``train/``, ``valid/`` or ``validation/``, ``test/``...):
    then every split found is inspected, named by its folder, with the leakage check across
    them.
    """

    splits = split_folders(data) if os.path.isdir(data) else {}
    if splits and (valid or test):
        raise CnnhubError(
            f"`{data}` holds the splits {', '.join(splits)} itself; pass either it alone or "
            f"one split with --valid/--test. Received: data={data!r}, "
            f"valid={valid!r}, test={test!r}"
        )
    if splits:
        return {name: (SPLIT_ROLES[name.lower()], path) for name, path in splits.items()}
    several = bool(valid or test)
    found = {"train" if several else "data": ("train", data)}
    found.update({name: (name, path) for name, path in (("valid", valid), ("test", test)) if path})
    return found
