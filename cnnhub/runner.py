"""The training command: check everything, then train each requested model into its run folder.

All checks that can fail on bad input (config, model names, image size, weights, data folders,
save location, the model build itself) run before a run folder is created, so bad input leaves
nothing behind.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from cnnhub import atomic, settings
from cnnhub.errors import CnnhubError
from cnnhub.registry import format_table, parse_model_names


def configure_tensorflow(verbose: bool) -> None:
    """Hide TensorFlow's start-up log noise unless ``verbose``; call before importing it."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module=r"(keras|tensorflow|absl)")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def environment() -> dict[str, Any]:
    """Versions and hardware, recorded in run_info.json so a result can be traced."""
    import keras
    import numpy
    import tensorflow as tf

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "cnnhub_commit": commit,
    }


def train_models(config: dict[str, Any], summary_only: bool = False) -> list[Path]:
    """Train every model named in MODEL_NAME (comma-separated) with ``config``.

    Returns the run folders created, in order.
    """
    specs = parse_model_names(config["MODEL_NAME"])
    from cnnhub.model_factory import check_input_size, check_weights_setting
    from cnnhub.run_folder import check_run_name, repository_root

    for spec in specs:
        check_input_size(spec, config["IMG_HEIGHT"], config["IMG_WIDTH"])
        check_weights_setting(spec, config["WEIGHTS"])
    if len(specs) > 1 and config["ITERATION_NAME"]:
        raise CnnhubError(
            "`run_name` names one run folder, but several models were given; leave it empty so "
            f"each model gets its own folder. Received: run_name={config['ITERATION_NAME']}, "
            f"model_name={config['MODEL_NAME']}"
        )
    from cnnhub.data import describe, load_splits

    splits = load_splits(config["DATA_DIR_TRAIN"], config["DATA_DIR_VALID"])
    if summary_only:
        from cnnhub.model_factory import build_model

        for spec in specs:
            build_model(config, splits.num_classes, spec).summary(expand_nested=True)
        return []
    repository_root(config["SAVE_LOCATION"])
    check_run_name(config["SAVE_LOCATION"], config["ITERATION_NAME"])
    print(f"Data: {splits.num_classes} classes\n{describe(splits)}")
    return [train_one(dict(config, MODEL_NAME=spec.name), splits) for spec in specs]


def train_one(config: dict[str, Any], splits) -> Path:
    """Build, train and save one model; returns its run folder."""
    import keras

    from cnnhub.data import build_augmenter, make_dataset
    from cnnhub.model_factory import build_model
    from cnnhub.run_folder import create_run_folder
    from cnnhub.training import fit, trainable_summary

    started = time.perf_counter()
    keras.utils.set_random_seed(config["SEED"])
    model = build_model(config, splits.num_classes)  # may still reject the input: before mkdir
    run = create_run_folder(config["SAVE_LOCATION"], config["ITERATION_NAME"], config["MODEL_NAME"])
    print(f"\n== {config['MODEL_NAME']} -> {run.path}")
    print(trainable_summary(model))
    atomic.write_json(run.run_config, config)
    atomic.write_json(run.class_mapping, {str(i): c for i, c in enumerate(splits.class_names)})
    if splits.skipped:
        from cnnhub.images import write_skipped

        write_skipped(run.path, splits.skipped)
    size = (config["IMG_HEIGHT"], config["IMG_WIDTH"])
    common = {"num_classes": splits.num_classes, "image_size": size, "seed": config["SEED"]}
    train_ds = make_dataset(
        splits.train,
        batch_size=config["BATCH_SIZE"],
        training=True,
        cache=config["CACHE"],
        augmenter=build_augmenter(config, config["SEED"]),
        **common,
    )
    valid_ds = make_dataset(
        splits.valid,
        batch_size=config["BATCH_SIZE"],
        training=False,
        cache=True,
        with_labels=False,
        **common,
    )
    info = {
        "run_name": run.path.name,
        "model_name": config["MODEL_NAME"],
        "class_names": splits.class_names,
        "train_images": len(splits.train),
        "valid_images": len(splits.valid),
        "params": model.count_params(),
        "skipped_files": len(splits.skipped),
        "environment": environment(),
    }
    atomic.write_json(run.run_info, info)
    reporters = None
    if config["POST_EVAL"]:
        from cnnhub.evaluation.run_evaluation import EpochReports

        def reporters(scorer, checkpoint):
            valid = splits.valid
            return [
                EpochReports(
                    scorer,
                    checkpoint,
                    run.path,
                    valid.paths,
                    valid.labels,
                    splits.class_names,
                    config,
                )
            ]

    fit(config, model, train_ds, valid_ds, splits.valid.labels, run, reporters)
    with atomic.atomic_path(run.final_model) as tmp:
        model.save(tmp)
    info["train_seconds"] = round(time.perf_counter() - started, 1)
    atomic.write_json(run.run_info, info)
    if config["POST_EVAL"]:
        from cnnhub.evaluation.run_evaluation import finalize

        finalize(run.path, config, model)
    return run.path


def post_evaluate(run_dir: str) -> Path:
    """Score every saved weights file of an existing run (``-start false -post true``)."""
    if not run_dir:
        raise CnnhubError(
            "-start false -post true evaluates an existing run: pass its folder with --run_dir. "
            "Received: run_dir=''"
        )
    from cnnhub.evaluation.run_evaluation import evaluate_run

    evaluate_run(run_dir)
    return Path(run_dir)


def train_main(argv: list[str] | None = None, prog: str = "run_training.py") -> int:
    """Entry point of ``run_training.py`` and ``python -m cnnhub train``; returns the exit code."""
    try:
        config, actions = settings.resolve(argv, prog)
        if actions["list_models"]:
            print(format_table())
            return 0
        configure_tensorflow(config["VERBOSE"])
        print("Configuration:\n" + settings.format_config(config), flush=True)
        runs = (
            train_models(config, summary_only=actions["summary"]) if config["START_TRAIN"] else []
        )
    except CnnhubError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 2
    for path in runs:
        print(f"Run folder: {path}")
    return 0


def command(argv: list[str]) -> int:
    """``cnnhub train``: the same flags as run_training.py."""
    return train_main(argv, prog="cnnhub train")
