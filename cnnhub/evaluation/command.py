"""``cnnhub evaluate RUN [--data_dir DIR] [--weights all|top:N|FILE...]``."""

from __future__ import annotations

import argparse


def command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="cnnhub evaluate",
        description="Score a run's saved weights with threshold precision/recall. On the run's "
        "validation folder this chooses the best weights (best_weights.json, best_model.keras); "
        "on another folder (--data_dir) results go to RUN/evaluations/<folder name>/ and report "
        "the weights chosen on validation.",
    )
    parser.add_argument("run_dir", help="run folder, e.g. model_repository/custom")
    parser.add_argument("--data_dir", help="class-folder tree to score instead of validation")
    parser.add_argument(
        "--weights",
        nargs="+",
        help="all, top:N (best N epochs by EVAL_TOP_METRIC), or weights file names/paths "
        "(default: the run's EVAL_WEIGHTS)",
    )
    args = parser.parse_args(argv)
    from cnnhub.runner import configure_tensorflow

    configure_tensorflow(verbose=False)
    from cnnhub.evaluation.run_evaluation import evaluate_run

    weights = args.weights
    if weights and len(weights) == 1 and (weights[0] == "all" or weights[0].startswith("top:")):
        weights = weights[0]
    evaluate_run(args.run_dir, args.data_dir, weights)
    return 0
