"""Training: check everything, then train each requested model into its run folder.

All checks that can fail on bad input (config, model names, image size, weights, data folders,
save location, the model build itself) run before a run folder is created, so bad input leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy
import tensorflow as tf

import cnnhub
from cnnhub import atomic, run_hooks, run_lock, settings
from cnnhub.callbacks import FirstBatchTimer
from cnnhub.configuration import replace
from cnnhub.data.augment import build_augmenter
from cnnhub.data.feature_cache import cached_feature_datasets, use_feature_cache
from cnnhub.data.mixing import build_mixer
from cnnhub.data.pipeline import make_dataset
from cnnhub.data.scan import write_skipped
from cnnhub.data.sets import DataOptions, input_channels, run_splits, splits_from_config
from cnnhub.data.splits import write_split_file
from cnnhub.devices import adapt_model_to_strategy, is_chief, scaled_learning_rate, setup_devices
from cnnhub.durations import describe_budget_outcome
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.run_evaluation import (
    EpochReports,
    evaluate_run,
    finalize,
    write_run_report,
)
from cnnhub.evaluation.tta import describe, parse_tta
from cnnhub.folds import plan_folds, run_folds
from cnnhub.model_defaults import format_notes, resolve_model_config, weights_kind
from cnnhub.model_factory import (
    build_model,
    check_input_size,
    check_weights_setting,
    split_at_backbone,
)
from cnnhub.pretrained import fetch_imagenet
from cnnhub.registry import parse_model_names
from cnnhub.reproducibility import EpochRandomness, seed_run
from cnnhub.resume import DiskSpaceCheck, final_weights, mark_finalized, plan_resume, prepare_resume
from cnnhub.run_folder import (
    RunFolder,
    check_free_space,
    check_run_name,
    check_save_location,
    create_run_folder,
    repository_root,
)
from cnnhub.tasks import get_task
from cnnhub.time_budget import make_budget
from cnnhub.training import FitContext, fit, freeze_for_epoch, trainable_summary
from cnnhub.weights import load_weights_checked


def environment() -> dict[str, Any]:
    """Versions and hardware, recorded in run_info.json so a result can be traced."""

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


def train_models(
    config: dict[str, Any],
    summary_only: bool = False,
    overwrite: bool = False,
    started: float | None = None,
) -> list[Path]:
    """Train every model named in MODEL_NAME (comma-separated) with ``config``.

    ``started`` (a ``time.perf_counter`` value): when the command started; TIME_BUDGET's clock
    starts there for the first run (start-up and data checks count), at each later run's own
    start for the others (more models, folds). Returns the run folders created, in order.
    """
    specs = parse_model_names(config["MODEL_NAME"])  # names and sizes: settings.validate

    for spec in specs:
        check_weights_setting(spec, config["WEIGHTS"])
    if len(specs) > 1 and config["ITERATION_NAME"]:
        raise CnnhubError(
            "`run_name` names one run folder, but several models were given; leave it empty so "
            f"each model gets its own folder. Received: run_name={config['ITERATION_NAME']}, "
            f"model_name={config['MODEL_NAME']}"
        )
    # ---- data side (sources, splits, folds, checks; see cnnhub.data / cnnhub.folds)

    check_save_location(
        config["SAVE_LOCATION"],
        {
            settings.FLAG_ALIASES[key][0]: config[key]
            for key in ("DATA_DIR_TRAIN", "DATA_DIR_VALID", "DATA_DIR_TEST")
        },
    )

    config = _data_config(config)
    plan = splits = None
    if config["FOLDS"]:
        plan = plan_folds(config)
        num_classes, inspection = len(plan.class_names), plan.inspection
    else:
        splits = splits_from_config(config)
        num_classes, inspection = splits.num_classes, splits.inspection
    model_configs = resolve_models(config, specs, inspection)
    if summary_only:
        for spec, model_config in zip(specs, model_configs):
            model = build_model(model_config, num_classes, spec)
            freeze_for_epoch(model, model_config)  # the summary shows what will train first
            model.summary(expand_nested=True, show_trainable=True)
            print(trainable_summary(model))
        return []

    if is_chief():  # other workers of a multi-worker run write to a scratch folder
        repository_root(config["SAVE_LOCATION"], create=False)
        check_run_name(config["SAVE_LOCATION"], config["ITERATION_NAME"], overwrite)
    _check_cache_dir(config["CACHE_DIR"])
    print(inspection.format(detail=False))
    # TIME_BUDGET: the first run counts from the command's start, later runs from their own.
    starts = itertools.chain([started], itertools.repeat(None))

    def train(run_config: dict[str, Any], run_splits, overwrite_run: bool = False) -> Path | None:
        return train_with_data(run_config, run_splits, overwrite_run, started=next(starts))

    if plan is not None:
        return [run_folds(model_config, plan, train, overwrite) for model_config in model_configs]
    return [train(model_config, splits, overwrite) for model_config in model_configs]


def resolve_models(config: dict[str, Any], specs: list, inspection) -> list[dict[str, Any]]:
    """Each model's config with its ``auto`` settings resolved (printed), sizes checked, and its
    ImageNet weights in Keras's cache (downloaded now, so that no model fails mid-way)."""

    resolved = []
    for spec in specs:
        model_config, notes = resolve_model_config(config, spec, inspection)
        if notes:
            print(format_notes(spec.name, notes))
        check_input_size(spec, model_config["IMG_HEIGHT"], model_config["IMG_WIDTH"])
        resolved.append(model_config)
    for spec, model_config in zip(specs, resolved):
        if model_config["WEIGHTS"] == "imagenet":
            size = (model_config["IMG_HEIGHT"], model_config["IMG_WIDTH"])
            fetch_imagenet(spec, (*size, input_channels(model_config)))
    return resolved


def _data_config(config: dict[str, Any]) -> dict[str, Any]:
    """When validation is cut from the training data (VAL_SPLIT, SPLIT_FILE, FOLDS), the run's
    config says so: DATA_DIR_VALID becomes empty. config.py's default for it is overridden
    silently; any other value is an error (two validation sets asked for)."""

    if not DataOptions.from_config(config).validation_from_train or not config["DATA_DIR_VALID"]:
        return config
    if config["DATA_DIR_VALID"] != settings.load_defaults()[0]["DATA_DIR_VALID"]:
        how = "folds" if config["FOLDS"] else "split_file" if config["SPLIT_FILE"] else "val_split"
        raise CnnhubError(
            f"`{how}` makes the validation set from the training data, so leave "
            f"`data_dir_valid` empty (-dvalid ''). Received: data_dir_valid="
            f"{config['DATA_DIR_VALID']!r}, {how}={config[how.upper()]!r}"
        )
    return replace(config, DATA_DIR_VALID="")


def _check_cache_dir(cache_dir: str) -> None:
    if not cache_dir:
        return
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        ok = os.access(cache_dir, os.W_OK)
    except OSError:
        ok = False
    if not ok:
        raise CnnhubError(
            f"Cannot write the tf.data cache under {cache_dir}; pass a writable folder with "
            f"--cache_dir (or leave it empty to cache in memory). Received: cache_dir={cache_dir}"
        )


def train_with_data(
    config: dict[str, Any],
    splits,
    overwrite: bool = False,
    resume=None,
    started: float | None = None,
) -> Path | None:
    """``train_one`` plus the data side around it: the tf.data file cache (CACHE_DIR, removed
    afterwards) and scoring the test data (DATA_DIR_TEST) with the weights chosen on
    validation; then ``report.html`` and ``MODEL_CARD.md`` are written and the run is marked
    finished (``state.json``'s ``finalized``).

    ``resume`` (a :class:`ResumePlan`) continues a run folder instead of making one.
    ``started`` (a ``time.perf_counter`` value, default now) starts TIME_BUDGET's clock."""

    cache_dir = config["CACHE_DIR"]
    prefix = Path(cache_dir) / f"cnnhub-{os.getpid()}-{uuid.uuid4().hex[:8]}" if cache_dir else None
    if prefix is not None:
        splits.train.cache_file = f"{prefix}-train"
        splits.valid.cache_file = f"{prefix}-valid"
    budget = make_budget(config, splits, started)
    if budget is not None and resume is not None and resume.state is not None:
        budget.carry = resume.state.callbacks.get("time_budget")
    try:
        run = train_one(config, splits, resume=resume, overwrite=overwrite, budget=budget)
    finally:
        if prefix is not None:
            splits.train.cache_file = splits.valid.cache_file = None
            for path in prefix.parent.glob(prefix.name + "-*"):
                path.unlink(missing_ok=True)
    if run is None:  # a non-chief worker: the chief writes the run folder
        return None
    if splits.test_source is not None:
        print(f"\nTest data {config['DATA_DIR_TEST']}:")
        with _write_errors(run):
            evaluate_run(
                run.path,
                weights=_chosen_weights(run),
                source=splits.test_source,
                with_report=False,
            )
    if budget is not None:
        _report_budget(run, budget)
    with _write_errors(run):  # once, when everything it shows is on disk
        write_run_report(run.path)
    mark_finalized(run)
    return run.path


def _chosen_weights(run: RunFolder) -> list[str] | None:
    """The weights the test data is scored with: those chosen on validation alone, since
    scoring other epochs on the test set invites choosing on it (and costs a pass each, inside
    a time budget); EVAL_WEIGHTS (None) for a run without a choice (POST_EVAL false)."""
    best = run.read_best()
    return None if best is None else [best["weights"]]


def _report_budget(run, budget) -> None:
    """The time budget's plan and the actual time, on the console and in run_info.json."""
    report = budget.report()
    with _write_errors(run):
        info = json.loads(run.run_info.read_text(encoding="utf-8"))
        atomic.write_json(run.run_info, dict(info, time_budget=report))
    print(f"Time budget {describe_budget_outcome(report)}")


@contextlib.contextmanager
def _write_errors(run) -> Iterator[None]:
    """A failed write into the run folder (full disk, lost mount) ends in one line that says
    how to continue, not a traceback; the run stays resumable (every write is atomic)."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise CnnhubError(
            f"Writing run folder {run.path} failed: {exc.strerror or exc}{where}. Completed "
            f"epochs are kept; free space or fix the folder, then continue with "
            f"`python run_training.py --resume {run.path}`. Received: run={str(run.path)!r}"
        ) from None


def train_one(config: dict[str, Any], splits, resume=None, overwrite: bool = False, budget=None):
    """Build, train and save one model; returns its RunFolder (None on a non-chief worker).

    With ``resume`` (a :class:`ResumePlan`), continue that run after its last completed epoch
    instead, or only finish it when every epoch is done; with ``overwrite``, replace an
    existing run folder of the same explicit name; ``budget`` (a TimeBudget) may end the run
    before EPOCHS.
    """

    started = time.perf_counter()
    config, strategy, chief = _prepare(config)
    if resume is not None:
        model, run, state = _resume(config, splits, resume, strategy)
    else:
        model, run, state = *_create(config, splits, strategy, overwrite), None
    freeze_for_epoch(model, config, state.epoch if state else 0)
    print(trainable_summary(model))
    info = _write_run_files(run, config, splits, model)
    augmenter = build_augmenter(config, config["SEED"])
    # MixUp / CutMix (or None), off for the last epochs of the run as planned
    mixer = build_mixer(config, config["SEED"], budget.planned_epochs if budget else None)
    randomness = EpochRandomness(config["SEED"], augmenter, mixer and mixer.layer)
    trained, train_ds, valid_ds = _datasets(
        config, splits, model, (augmenter, mixer), randomness, strategy
    )
    timer = FirstBatchTimer(cnnhub.STARTED)
    context = FitContext(
        run,
        splits.valid.model_targets(),
        _epoch_reporters(config, run, splits),
        extra_callbacks=[randomness, timer, *([mixer] if mixer else [])],
        # a tuner's pruning check (run_hooks) may stop the run, like the disk check
        after_commit=[
            DiskSpaceCheck(run, config["EPOCHS"]),
            *run_hooks.make_epoch_checks(run, config),
        ],
        resume_from=state,
        class_weight=splits.class_weight,
        save_model=model,
        budget=budget,
    )
    run_warnings = _fit(config, model, trained, train_ds, valid_ds, context, resume, strategy)
    _finish(config, run, model, info, run_warnings, started, timer)
    if not chief:
        shutil.rmtree(config["SAVE_LOCATION"], ignore_errors=True)
        print("Worker done; the chief wrote the run folder.")
        return None
    return run


def _prepare(config: dict[str, Any]):
    """Devices and randomness: returns (config, distribution strategy, is chief).

    A non-chief worker of a multi-worker run gets a config that writes to a scratch folder
    (only the chief writes the run folder)."""

    strategy = setup_devices(config)
    chief = is_chief()
    if not chief:
        scratch = tempfile.mkdtemp(prefix="cnnhub-worker-")
        config = replace(config, SAVE_LOCATION=scratch, ITERATION_NAME="", POST_EVAL=False)
    seed_run(config)
    return config, strategy, chief


def _resume(config: dict[str, Any], splits, resume, strategy):
    """Rebuild a resumed run's model with its last completed epoch's weights and prepare its
    folder to continue: returns (model, run folder, training state or None)."""

    run, state = resume.run, resume.state
    # Built without downloading: the saved epoch's weights replace the initial ones.
    random_init = weights_kind(config["WEIGHTS"]) == "none"
    with strategy.scope():
        model = build_model(replace(config, WEIGHTS="none"), splits.num_classes, None, random_init)
    if state is not None:
        load_weights_checked(model, run.model_logs / state.weights)
    # Everything is checked: from here on the run folder changes.
    if resume.config_changed:
        atomic.write_json(run.run_config, config)
    prepare_resume(run, state)
    done = state.epoch if state else 0
    if resume.trained:
        print(f"\n== {config['MODEL_NAME']}: finishing {run.path} (all {done} epochs done)")
    else:
        print(f"\n== {config['MODEL_NAME']}: resuming {run.path} after epoch {done}")
    return model, run, state


def _create(config: dict[str, Any], splits, strategy, overwrite: bool):
    """Build the model, then (the last check: free disk space) create the run folder with its
    config and class mapping: returns (model, run folder)."""

    with strategy.scope():  # building may still reject the input: before mkdir
        model = build_model(config, splits.num_classes, class_names=splits.class_names)
        # e.g. regression's target scale; saved in every weights file, so resume keeps it
        get_task(config).prepare_model(model, splits.train.model_targets())
    check_free_space(
        config["SAVE_LOCATION"], model.count_params(), config["EPOCHS"], config["OPTIMIZER"]
    )
    run = create_run_folder(
        config["SAVE_LOCATION"], config["ITERATION_NAME"], config["MODEL_NAME"], overwrite
    )
    print(f"\n== {config['MODEL_NAME']} -> {run.path}")
    atomic.write_json(run.run_config, config)
    atomic.write_json(run.class_mapping, {str(i): c for i, c in enumerate(splits.class_names)})
    return model, run


def _write_run_files(run, config: dict[str, Any], splits, model) -> dict[str, Any]:
    """The run's data files (split.csv unless resuming wrote it, skipped files) and
    run_info.json; returns run_info's content, completed when training ends."""

    if splits.split_frame is not None and not run.split_csv.exists():
        write_split_file(run.split_csv, splits.split_frame)
    if splits.skipped:
        write_skipped(run.skipped_files, splits.skipped)
    info = {
        "run_name": run.path.name,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model_name": config["MODEL_NAME"],
        "class_names": splits.class_names,
        "train_images": len(splits.train),
        "valid_images": len(splits.valid),
        "params": model.count_params(),
        "skipped_files": len(splits.skipped),
        # Issue 20: the scores of this run average these views; its weights are the EMA's.
        "tta": describe(parse_tta(config["TTA"])),
        "ema": config["EMA"],
        "environment": environment(),
    }
    if splits.inspection is not None:
        info["data"] = splits.inspection.summary()
    atomic.write_json(run.run_info, info)
    return info


def _datasets(config: dict[str, Any], splits, model, augmentation, randomness, strategy):
    """Returns (the model to train, training dataset, validation dataset): the classifier on
    image batches, or only its head on backbone features computed once (feature cache).
    ``augmentation``: (per-image augmenter, MixUp/CutMix mixer), each possibly None."""

    augmenter, mixer = augmentation
    size = (config["IMG_HEIGHT"], config["IMG_WIDTH"])
    common = {"num_classes": splits.num_classes, "image_size": size, "seed": config["SEED"]}
    train_ds = make_dataset(
        splits.train,
        batch_size=config["BATCH_SIZE"],
        training=True,
        cache=config["CACHE"],
        augmenter=augmenter,
        mixer=mixer,
        epoch=randomness.epoch,
        deterministic=config["DETERMINISTIC"],
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
    trained = model
    if use_feature_cache(config, augmenter, mixer):
        with strategy.scope():
            extractor, trained = split_at_backbone(model)
            train_ds, valid_ds = cached_feature_datasets(
                extractor, splits, config, augmenter, randomness
            )
    return trained, train_ds, valid_ds


def _epoch_reporters(config: dict[str, Any], run, splits):
    """With POST_EVAL, the per-epoch reports on the validation set (see ``FitContext``)."""
    if not config["POST_EVAL"]:
        return None
    valid, names = splits.valid, splits.class_names

    def reporters(scorer, checkpoint):
        valid_set = (valid.paths, valid.model_targets(), names)
        return [EpochReports(scorer, checkpoint, run.path, *valid_set, config)]

    return reporters


def _fit(config, model, trained, train_ds, valid_ds, context: FitContext, resume, strategy):
    """Train ``trained`` (the model, or its head) on every replica; a resumed run whose epochs
    are all done only loads its final weights. Returns the run's warnings. Ctrl-C ends with
    exit status 130 and says how to resume."""

    run = context.run
    adapt_model_to_strategy(trained, strategy)
    replicas = strategy.num_replicas_in_sync
    if replicas > 1:
        print(f"Training on {replicas} replicas; global batch {config['BATCH_SIZE']}")
    fit_config = replace(config, LEARNING_RATE=scaled_learning_rate(config, replicas))
    try:
        if resume is not None and resume.trained:
            load_weights_checked(model, final_weights(run, context.resume_from, config))
            return []
        with strategy.scope(), _write_errors(run):
            return fit(fit_config, trained, train_ds, valid_ds, context)
    except KeyboardInterrupt:
        last = run.read_state()
        done = last.epoch if last else 0
        sys.stderr.write(
            f"\nInterrupted. {done} complete epoch(s) are saved in {run.path}. Resume with:\n"
            f"  python run_training.py --resume {run.path}\n"
        )
        raise SystemExit(130) from None


def _finish(config: dict[str, Any], run, model, info: dict[str, Any], warnings, started, timer):
    """Save the final model, complete run_info.json (warnings, timings) and, with POST_EVAL,
    choose the best weights and write the run's reports (report.html and MODEL_CARD.md follow
    in ``train_with_data``, with POST_EVAL or without: settings, data and curves only)."""

    with _write_errors(run):
        with atomic.atomic_path(run.final_model) as tmp:
            model.save(tmp)
        if warnings:
            info["warnings"] = warnings
        info["train_seconds"] = round(time.perf_counter() - started, 1)
        info["startup_seconds"] = timer.seconds
        atomic.write_json(run.run_info, info)
        if config["POST_EVAL"]:
            finalize(run.path, config, model)


def resume_run(
    run_dir: str, flags: dict[str, Any], given: list[str], started: float | None = None
) -> Path | None:
    """Continue a run folder with its saved configuration (only EPOCHS may be raised); a run
    whose epochs are all done but whose finishing steps were cut short is finished.
    ``started``: when the command started (the resumed process's TIME_BUDGET clock)."""

    changed = sorted(set(given) - {"EPOCHS", "VERBOSE"})
    if changed:
        raise CnnhubError(
            "--resume continues a run with its saved configuration; only -e/--epochs may change. "
            f"Start a new run to change settings. Received: {', '.join(k.lower() for k in changed)}"
        )
    run_lock.acquire(run_dir)  # before reading: the state read is the state continued
    plan = plan_resume(run_dir, flags["EPOCHS"] if "EPOCHS" in given else None)
    splits = run_splits(plan.config, plan.run.split_csv)
    if plan.class_names != splits.class_names:
        raise CnnhubError(
            f"The classes in {plan.config['DATA_DIR_TRAIN']} changed since run {run_dir} started; "
            "resume needs the same data. Received: classes=" + ", ".join(splits.class_names)
        )
    return train_with_data(plan.config, splits, resume=plan, started=started)


def post_evaluate(run_dir: str) -> Path:
    """Score every saved weights file of an existing run (``-start false -post true``)."""
    if not run_dir:
        raise CnnhubError(
            "-start false -post true evaluates an existing run: pass its folder with --run_dir. "
            "Received: run_dir=''"
        )

    with run_lock.locked(run_dir):
        evaluate_run(run_dir)
    return Path(run_dir)
