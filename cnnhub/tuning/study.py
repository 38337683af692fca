"""The tuning loop: check everything, open (or continue) the study, run trials, write results.

Nothing is written before every check passed (base config, search space, study name, storage
URL, MLflow store). ``--trials N`` is the number of finished (complete or pruned) trials the
study should hold: running the command again after a kill runs only the missing ones, and
several processes sharing a storage stop once the study holds N (each may finish the trial it
is running, so the study can end a few trials over N).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnhub.errors import CnnhubError
from cnnhub.run_folder import RUN_CONFIG, repository_path, repository_root
from cnnhub.tuning import results
from cnnhub.tuning import space as search_space
from cnnhub.tuning.objective import InvalidTrial, Objective, study_metric
from cnnhub.tuning.storage import default_storage, fail_dead_trials, open_storage

PRUNERS = ("median", "none")
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class TuneOptions:
    """The ``tune`` command's own flags (the base configuration is separate)."""

    space: str
    trials: int
    study: str = "study"
    storage: str | None = None
    timeout: float | None = None
    metric: str = "auto"
    pruner: str = "median"
    mlflow: str | None = None


@dataclass
class TuneResult:
    """What :func:`tune` did: the study folder, trials run, seconds per trial not training."""

    study_dir: Path
    trials_run: int
    overhead_seconds: float
    train_seconds: dict[int, float]  # per trial number: time inside the training entry point


def check_study_name(name: str) -> str:
    """A study name is a plain folder name of letters, digits, ``.``, ``_`` and ``-``."""
    if not _STUDY_NAME.match(name):
        raise CnnhubError(
            "--study must be a plain folder name (letters, digits, . _ -, starting with a letter "
            f"or digit, at most 100 characters). Received: study={name!r}"
        )
    return name


def check_base(config: dict[str, Any]) -> None:
    """What a tuning base configuration may not hold."""
    if config["FOLDS"]:
        raise CnnhubError(
            "tune trains one run per trial; cross-validation (folds) is not supported. "
            f"Set folds to 0. Received: folds={config['FOLDS']}"
        )
    if not config["START_TRAIN"]:
        raise CnnhubError("tune trains every trial; leave -start true. Received: start_train=False")


def _study_dir(config: dict[str, Any], name: str) -> Path:
    folder = repository_path(config["SAVE_LOCATION"]) / name
    if (folder / RUN_CONFIG).exists():
        raise CnnhubError(
            f"{folder} is a run folder, not a study; choose another --study name. "
            f"Received: study={name!r}"
        )
    return folder


def _sampler_and_pruner(config: dict[str, Any], pruner: str, started: int):
    import optuna  # lazy: heavy import, kept off the --help path

    # A process joining a running study gets another seed, so it does not repeat the first
    # process's start-up trials.
    sampler = optuna.samplers.TPESampler(seed=config["SEED"] + started)
    if pruner == "none":
        return sampler, optuna.pruners.NopPruner()
    return sampler, optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


def tune(config: dict[str, Any], options: TuneOptions, train=None) -> TuneResult:
    """Run the study ``options.study`` over ``options.space`` from the base ``config``.

    ``train`` defaults to :func:`cnnhub.runner.train_models`.
    """
    import optuna  # lazy: heavy import, kept off the --help path

    check_base(config)
    name = check_study_name(options.study)
    metric, direction = study_metric(config, options.metric)
    dimensions = search_space.read_space(options.space, config)
    study_dir = _study_dir(config, name)
    repository_root(config["SAVE_LOCATION"], create=False)  # writable, before anything is made
    tracker = None
    if options.mlflow:
        from cnnhub import tracking  # loads MLflow: only with --mlflow

        uri = tracking.resolve_uri(options.mlflow, config["SAVE_LOCATION"])
        tracker = tracking.Tracker(uri)
    url = options.storage
    storage = open_storage(url) if url else None  # a bad URL fails before the folder exists
    study_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or open_storage(default_storage(study_dir))
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
        started = len(existing.get_trials(deepcopy=False))
        known = existing.user_attrs.get("metric", metric)
        if known != metric:
            raise CnnhubError(
                f"Study {name} optimises {known}; give the same --metric or another --study. "
                f"Received: metric={metric}"
            )
    except KeyError:
        started = 0
    sampler, pruner = _sampler_and_pruner(config, options.pruner, started)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction=direction,
        load_if_exists=True,
    )
    dead = fail_dead_trials(study)
    if dead:
        print(f"Trials {', '.join(map(str, dead))} of a process that ended were marked failed.")
    study.set_user_attr("metric", metric)
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished_states))
    remaining = max(options.trials - done, 0)
    print(f"Study {name} in {study_dir}: {done} finished trial(s), running {remaining} more.")

    if train is None:
        from cnnhub.runner import train_models  # lazy: loads TensorFlow

        train = train_models
    objective = Objective(config, dimensions, study_dir, metric, direction, train)
    parent = _mlflow_parent(tracker, study, config, dimensions) if tracker else None

    def after_trial(study, trial) -> None:
        results.write_tables(study, study_dir, metric)
        run = trial.user_attrs.get("run")
        if tracker is not None and trial.state in finished_states and run:
            tags = {"optuna.trial": str(trial.number), "optuna.state": trial.state.name}
            tracker.log_run_folder(Path(run), parent=parent, tags=tags)

    enough = optuna.study.MaxTrialsCallback(options.trials, finished_states)
    started_at = time.perf_counter()
    try:
        if remaining:
            study.optimize(
                objective,
                n_trials=remaining,
                timeout=options.timeout,
                callbacks=[enough, after_trial],
                catch=(InvalidTrial,),
            )
    except KeyboardInterrupt:
        results.write_tables(study, study_dir, metric)
        sys.stderr.write(
            f"\nInterrupted. Finished trials are kept in {study_dir}; run the same command again "
            "to continue the study.\n"
        )
        raise SystemExit(130) from None
    elapsed = time.perf_counter() - started_at
    runs = len(objective.seconds)
    overhead = (elapsed - sum(objective.seconds.values())) / runs if runs else 0.0
    results.write_tables(study, study_dir, metric)
    for skipped in results.write_plots(study, study_dir):
        print(f"Plot left out: {skipped}")
    best = results.best_trial(study)
    if best is not None:
        print(
            f"Best trial {best.number}: {metric} {best.value:.4f} "
            f"({best.user_attrs.get('run', '')}); repeat it with "
            f"python run_training.py -c {study_dir / results.BEST_CONFIG}"
        )
    if runs:
        print(f"Tuning overhead: {overhead:.2f} s per trial (everything but training).")
    if tracker is not None and parent is not None:
        figures = {f"best_{metric}": best.value} if best is not None else {}
        files = [study_dir / n for n in (results.STUDY_CSV, results.BEST_CONFIG)]
        files += [study_dir / results.HISTORY_PNG, study_dir / results.IMPORTANCE_PNG]
        tracker.finish(parent, figures, files)
    return TuneResult(study_dir, runs, overhead, dict(objective.seconds))


def _mlflow_parent(tracker, study, config: dict[str, Any], dimensions) -> str:
    """The study's parent MLflow run: the one recorded in the study, or a new one."""
    key = f"mlflow_parent:{tracker.uri}"
    known = study.user_attrs.get(key)
    if known and tracker.exists(known):
        return known
    space = {f"space.{d.name}": d.choices or [d.low, d.high] for d in dimensions}
    run_id = tracker.start(study.study_name, {**config, **space})
    study.set_user_attr(key, run_id)
    return run_id
