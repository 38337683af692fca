"""``cnnhub lr_find [-c run.yaml] [training flags] [--start_lr A] [--end_lr B] [--steps N]
[--out DIR]``: the learning-rate finder (see :mod:`cnnhub.lr_finder`)."""

from __future__ import annotations

import math
from pathlib import Path

from cnnhub import settings
from cnnhub.cli import OneLineParser
from cnnhub.errors import CnnhubError
from cnnhub.quiet import quiet_tensorflow


def _parser() -> OneLineParser:
    parser = OneLineParser(
        prog="cnnhub lr_find",
        description="Sweep the learning rate exponentially over a few hundred training steps on "
        "a run's data and model (what its training type trains first; no weights are saved), "
        "plot the loss against the rate and suggest one: OUT/lr_find.png, lr_find.csv and "
        "lr_find.yaml (learning_rate: <suggestion>). Every training flag and -c config file of "
        "run_training.py is accepted too (see run_training.py --help); see docs/training.md.",
        # Only --help: -h would swallow training's -height; no abbreviations of training flags.
        add_help=False,
        allow_abbrev=False,
    )
    parser.add_argument("--help", action="help", help="show this help message and exit")
    parser.add_argument("--start_lr", type=float, default=1e-7, help="first rate [1e-07]")
    parser.add_argument("--end_lr", type=float, default=10.0, help="last rate [10]")
    parser.add_argument(
        "--steps", type=int, default=200, help="training steps (batches) of the sweep [200]"
    )
    parser.add_argument("--out", default="lr_find", help="output folder [./lr_find]")
    return parser


def check_sweep(start: float, end: float, steps: int) -> None:
    """A sweep needs 0 < start < end and at least 3 steps."""
    if not (math.isfinite(start) and math.isfinite(end) and 0 < start < end):
        raise CnnhubError(
            "`--start_lr` and `--end_lr` must be finite with 0 < start_lr < end_lr. "
            f"Received: start_lr={start:g}, end_lr={end:g}"
        )
    if not 3 <= steps <= 100_000:
        raise CnnhubError(f"`--steps` must be in [3, 100000]. Received: steps={steps}")


def command(argv: list[str]) -> int:
    """Parse the sweep's flags and the training flags (before TensorFlow loads), then sweep."""
    args, rest = _parser().parse_known_args(argv)
    check_sweep(args.start_lr, args.end_lr, args.steps)
    config, actions = settings.resolve(rest, prog="cnnhub lr_find")
    if actions["resume"] or actions["summary"] or actions["list_models"]:
        raise CnnhubError(
            "lr_find takes training's data and model flags, not its actions (--resume, "
            "--summary, --list_models). Received: " + " ".join(rest)
        )
    quiet_tensorflow(config["VERBOSE"])
    from cnnhub.lr_finder import find_learning_rate, rounded

    sweep, paths = find_learning_rate(
        config, args.start_lr, args.end_lr, args.steps, Path(args.out)
    )
    curve = sweep.curve
    how = "stopped: the loss diverged" if sweep.diverged else "done"
    print(
        f"Sweep {how} after {len(curve)} steps "
        f"({curve['learning_rate'].iloc[0]:.2g} to {curve['learning_rate'].iloc[-1]:.2g})."
    )
    print(f"Suggested learning rate: {rounded(sweep.suggestion):g}")
    print(f"Plot: {paths['png']}\nCurve: {paths['csv']}\nConfig line: {paths['yaml']}")
    return 0
