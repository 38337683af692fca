"""``python -m cnnhub tune``: hyperparameter search with Optuna over config keys.

The command's own flags are below; every other flag is a training flag (``-c base.yaml``,
``-dtrain``, ``-e``, ``--mlflow`` ...) and makes the base configuration each trial starts from.
"""

from __future__ import annotations

import importlib.util
import logging

from cnnhub import settings
from cnnhub.cli import OneLineParser
from cnnhub.durations import parse_duration
from cnnhub.errors import CnnhubError
from cnnhub.quiet import quiet_tensorflow


def _parser() -> OneLineParser:
    parser = OneLineParser(
        prog="cnnhub tune",
        allow_abbrev=False,
        add_help=False,  # -h would swallow the training flags -height ("-h eight")
        description="Search config keys with Optuna: each trial is a run folder under "
        "model_repository/<study>/trial_<n>/. Every flag not listed here is a training flag "
        "(see run_training.py --help) setting the base configuration, e.g. -c base.yaml -e 5; "
        "--mlflow [URI] logs every trial, nested under the study's run. See docs/tuning.md.",
    )
    parser.add_argument("--help", action="help", help="Show this help and exit.")
    parser.add_argument(
        "--space", required=True, help="YAML of config keys to search: ranges or choices."
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=20,
        help="Finished (complete or pruned) trials the study should hold. [default: 20]",
    )
    parser.add_argument(
        "--study", default="study", help="Study name and folder name. [default: study]"
    )
    parser.add_argument(
        "--storage",
        help="Optuna storage: a database URL (postgresql://..., sqlite:///...) shared by "
        "processes on several machines, or a journal file path. [default: sqlite:///"
        "<study folder>/study.db]",
    )
    parser.add_argument(
        "--timeout", help="Stop starting trials after this long: 90, 90s, 30m, 2h. [default: none]"
    )
    parser.add_argument(
        "--metric",
        default="auto",
        help="Best epoch's metric to optimise: auto (the task's: val_accuracy, val_mae for "
        "regression) or val_loss. [default: auto]",
    )
    parser.add_argument(
        "--pruner",
        default="median",
        choices=("median", "none"),
        help="median: stop a trial whose epoch is worse than the median of earlier trials at "
        "that epoch; none: never. [default: median]",
    )
    return parser


def command(argv: list[str]) -> int:
    """``cnnhub tune``: returns the exit code (2 on bad input, with one line on stderr)."""
    if importlib.util.find_spec("optuna") is None:
        raise CnnhubError(
            "cnnhub tune needs Optuna: pip install 'optuna>=4,<5' (or pip install cnnhub[tune]). "
            "Received: no optuna module"
        )
    argv = ["--help" if arg == "-h" else arg for arg in argv]
    args, rest = _parser().parse_known_args(argv)
    if args.trials < 1:
        raise CnnhubError(f"--trials must be at least 1. Received: trials={args.trials}")
    timeout = parse_duration(args.timeout, "timeout") if args.timeout is not None else None
    config, actions = settings.resolve(rest, "cnnhub tune")
    if actions["resume"] or actions["list_models"] or actions["summary"]:
        raise CnnhubError(
            "tune takes training settings only, not --resume, --list_models or --summary. "
            "Received: " + ", ".join(k for k in ("resume", "list_models", "summary") if actions[k])
        )
    quiet_tensorflow(config["VERBOSE"])
    if not config["VERBOSE"]:
        # Every trial builds new models in this process: TensorFlow's retracing warnings about
        # that say nothing wrong.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from cnnhub import run_lock
    from cnnhub.tuning.study import TuneOptions, tune

    options = TuneOptions(
        space=args.space,
        trials=args.trials,
        study=args.study,
        storage=args.storage,
        timeout=timeout,
        metric=args.metric,
        pruner=args.pruner,
        mlflow=config["MLFLOW"] or None,
    )
    try:
        result = tune(config, options)
    finally:
        run_lock.release_all()
    print(f"Study folder: {result.study_dir}")
    return 0
