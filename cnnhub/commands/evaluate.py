"""``cnnhub evaluate RUN [--data_dir DIR] [--weights all|top:N|FILE...] [--tta VIEWS]``."""

from __future__ import annotations

from cnnhub import run_lock
from cnnhub.cli import OneLineParser, add_tta_option
from cnnhub.evaluation.tta import parse_tta
from cnnhub.quiet import quiet_tensorflow


def command(argv: list[str]) -> int:
    """Parse and check the arguments (before TensorFlow is imported), then evaluate."""
    parser = OneLineParser(
        prog="cnnhub evaluate",
        description="Score a run's saved weights with threshold precision/recall. Scoring all "
        "the run's weights on its validation data rewrites its reports and re-chooses the best "
        "weights (best_weights.json, best_model.keras). Any other evaluation leaves the run's "
        "results unchanged: held-out data (--data_dir) goes to RUN/evaluations/<name>-<hash>/ "
        "and is reported at the weights and threshold chosen on validation; a subset of the "
        "weights (or outside weights) on validation goes to RUN/evaluations/validation/.",
    )
    parser.add_argument("run_dir", help="run folder, e.g. model_repository/custom")
    parser.add_argument(
        "--data_dir", help="held-out data (any layout) to score instead of validation"
    )
    parser.add_argument(
        "--weights",
        nargs="+",
        help="all, top:N (N >= 1: best N epochs by EVAL_TOP_METRIC), or .weights.h5 / .keras "
        "files (paths, or names in the run's model_logs/ or run folder) "
        "(default: the run's EVAL_WEIGHTS)",
    )
    add_tta_option(parser)
    args = parser.parse_args(argv)
    # Here, once the flags parse: these load the run modules, then TensorFlow (quieted first).
    from cnnhub.evaluation.targets import parse_weights_option

    weights = parse_weights_option(args.weights)
    parse_tta(args.tta)  # a bad view name: one line, before anything loads
    quiet_tensorflow()
    from cnnhub.evaluation.run_evaluation import evaluate_run

    with run_lock.locked(args.run_dir):  # it rewrites the run's reports and best-weights choice
        evaluate_run(args.run_dir, args.data_dir, weights, tta=args.tta)
    return 0
