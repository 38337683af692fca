"""Score a run's saved weights: during training (free), or afterwards on any data (batched).

Two ways in, one set of files out:

- ``EpochReports``: a training callback. The validation pass that training runs anyway
  (``cnnhub.callbacks.ValidationScorer``) already has each epoch's probabilities; this writes
  that epoch's reports next to its weights and grows ``analysis_report.csv``, so post-evaluation
  after training only has to choose the best weights (``finalize``).
- ``evaluate_run``: re-score a finished run, on its validation data or other data. Only an
  evaluation of all the run's weights on its validation data rewrites the run's own results
  and re-chooses the best weights; any other goes to a folder of its own under
  ``evaluations/`` (see :mod:`cnnhub.evaluation.targets`). Images are decoded once and
  predicted in batches for every weights file; when the backbone was frozen throughout
  (``freeze_all``), backbone features are computed once and only the head runs per weights
  file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from cnnhub import atomic
from cnnhub.data.pipeline import evaluation_dataset
from cnnhub.data.scan import write_skipped
from cnnhub.data.sets import check_same_classes, evaluation_source, input_channels, split_of_source
from cnnhub.errors import CnnhubError
from cnnhub.evaluation import reporting
from cnnhub.evaluation.calibration import (
    apply_temperature,
    calibration_summary,
    fit_temperature,
    scale_final_layer,
)
from cnnhub.evaluation.safe_csv import read_csv_safe, write_csv_safe
from cnnhub.evaluation.selection import analysis_report, calibrated_report, choose_best
from cnnhub.evaluation.targets import (
    VALIDATION_FOLDER,
    heldout_folder_name,
    printable_path,
)
from cnnhub.evaluation.tta import describe, parse_tta, with_tta
from cnnhub.evaluation.writer import (
    predictions_arrays,
    report_paths,
    write_best_plots,
    write_weight_reports,
)
from cnnhub.run_folder import (  # noqa: F401  (weights_stem: this module's public API)
    ANALYSIS_REPORT,
    EVALUATIONS,
    SKIPPED_FILES,
    SUMMARY,
    Run,
    RunFolder,
    open_run,
    weights_stem,
)
from cnnhub.tasks import get_task
from cnnhub.tasks.checks import resolved
from cnnhub.weights import check_weights_file, load_weights_checked

WEIGHTS_SUFFIX = ".weights.h5"
_EPOCH = re.compile(r"weights-(\d+)-")


def weights_epoch(path: Path | str) -> int:
    """The epoch in a ``weights-NNN-...`` file name; 0 for any other file."""
    match = _EPOCH.match(Path(path).name)
    return int(match.group(1)) if match else 0


def thresholds_of(config: dict[str, Any]) -> list[float] | None:
    """The run's threshold grid (None = the default grid), always with 0 so that the
    threshold-0 headline figures (``accuracy@0``, ``f1_macro@0``) exist."""
    grid = list(config["EVAL_THRESHOLDS"])
    if not grid:
        return None
    return grid if any(float(t) == 0.0 for t in grid) else [0.0, *grid]


class EpochReports(keras.callbacks.Callback):
    """Write each epoch's reports (the task's: per-image and threshold reports for
    single_label) from the training validation pass."""

    def __init__(self, scorer, checkpoint, folder: Path, image_ids, labels, class_names, config):
        super().__init__()
        self.scorer = scorer
        self.checkpoint = checkpoint
        self.folder = Path(folder)
        self.image_ids = list(image_ids)
        self.labels = np.asarray(labels)  # the validation split's model_targets()
        self.class_names = list(class_names)
        self.config = config
        self.task = get_task(config)

    def on_epoch_end(self, epoch, logs=None):
        weights = self.checkpoint.saved[epoch + 1]
        rows = self.task.write_reports(
            weights.parent,
            weights_stem(weights),
            self.image_ids,
            self.labels,
            self.scorer.probabilities,
            self.class_names,
            self.config,
            weights_name=weights.name,
            epoch=epoch + 1,
        )
        append_report(RunFolder(self.folder).analysis_report, rows, epoch + 1, self.task)


def append_report(path: Path, rows: list[dict], epoch: int, task=None) -> None:
    """Add one epoch's rows to ``analysis_report.csv`` (replacing rows of that epoch or later)."""
    previous = read_csv_safe(path) if path.exists() else None
    kept = [] if previous is None else previous[previous["epoch"] < epoch].to_dict("records")
    write_csv_safe(path, (task or get_task()).analysis_report([*kept, *rows]))


# ---------------------------------------------------------------- reading a run


RunContents = Run  # what evaluation reads of a run folder: cnnhub.run_folder's validated view


def read_run(run_dir: str | Path) -> Run:
    """Open and check a run folder (see ``cnnhub.run_folder.open_run``) that has weights."""
    run = open_run(run_dir)
    if not run.weights:
        raise CnnhubError(
            f"No saved weights in {run.model_logs}; train the run first (or pass a run "
            "folder whose model_logs/ holds weights-*.weights.h5 files)."
        )
    return run


def _find_weights_file(run: RunContents, item: str) -> Path:
    """A ``--weights`` file: a path, or a name in ``model_logs/`` or the run folder; one of
    the run's own epoch files comes back as that file's path in ``model_logs/``."""
    for candidate in (Path(item), run.model_logs / item, run.path / item):
        if candidate.is_file():
            resolved = candidate.resolve()
            return next((w for w in run.weights if w.resolve() == resolved), candidate)
    raise CnnhubError(
        f"Weights file not found: {item} (looked for the path, and in {run.model_logs} "
        f"and {run.path}). Received: --weights {item}"
    )


def _top_epochs(run: RunContents, count: int, top_metric: str) -> set[int]:
    log_file = run.folder.training_log
    try:
        log = pd.read_csv(log_file)
        ascending = top_metric.endswith(("loss", "mae"))  # lower is better
        return set(log.sort_values(top_metric, ascending=ascending)["epoch"].head(count))
    except (OSError, ValueError, KeyError) as exc:
        raise CnnhubError(
            f"top:{count} ranks epochs by {top_metric} in {log_file}, which cannot be read "
            f"({exc}). Pass --weights all or weights file names. Received: --weights top:{count}"
        ) from None


def select_weights(run: RunContents, which: str | list[str], top_metric: str) -> list[Path]:
    """``all``, ``top:N`` (by ``top_metric`` in training.log) or explicit file names/paths
    (see :func:`cnnhub.evaluation.targets.parse_weights_option`); no file twice."""
    if isinstance(which, list):
        chosen: list[Path] = []
        for item in which:
            path = _find_weights_file(run, item)
            if path.resolve() not in {p.resolve() for p in chosen}:
                chosen.append(path)
        return chosen
    if which == "all":
        return run.weights
    best_epochs = _top_epochs(run, int(which.split(":", 1)[1]), top_metric)
    return [w for w in run.weights if weights_epoch(w) in best_epochs]


def _check_distinct_names(chosen: list[Path]) -> None:
    """Reports are named after the weights file: two different files may not share a name."""
    seen: dict[str, Path] = {}
    for path in chosen:
        other = seen.setdefault(path.name, path)
        if other.resolve() != path.resolve():
            raise CnnhubError(
                f"Two weights files share the name {path.name} ({other} and {path}); their "
                "reports would overwrite each other. Rename one, or evaluate them separately. "
                f"Received: --weights {other} {path}"
            )


def is_full_evaluation(run: RunContents, chosen: list[Path], from_config: bool) -> bool:
    """Whether scoring ``chosen`` on the run's validation data may rewrite the run's results.

    True when ``chosen`` is every weights file of ``model_logs/``; also when the run has no
    results yet and ``chosen`` is its EVAL_WEIGHTS selection (``from_config``): then nothing
    is replaced or re-decided.
    """
    own = {path.resolve() for path in run.weights}
    picked = {path.resolve() for path in chosen}
    if picked == own:
        return True
    has_results = run.folder.analysis_report.exists() or run.folder.best_weights.exists()
    return from_config and picked <= own and not has_results


# ---------------------------------------------------------------- scoring


def _backbone_digest(model) -> str:
    from cnnhub.model_factory import BACKBONE_LAYER  # lazy: heavy import, kept off the --help path

    digest = hashlib.sha1()
    for weight in model.get_layer(BACKBONE_LAYER).weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


class BatchedScorer:
    """Predict one dataset with many weights files of one architecture.

    Decoded images are cached after the first pass. With ``frozen_backbone``, backbone
    features are computed once and reused while the backbone's weights are unchanged (checked
    by digest, so a file whose backbone differs is still scored correctly). With ``tta``
    views, probabilities are averaged over them (``cnnhub.evaluation.tta``; every view runs
    the whole model, so features are not reused).
    """

    def __init__(self, model, dataset, frozen_backbone: bool, tta: list[str] | None = None):
        self.model = with_tta(model, tta or [])
        self.dataset = dataset
        self.frozen_backbone = frozen_backbone and not tta
        self._features: np.ndarray | None = None
        self._digest: str | None = None
        if self.frozen_backbone:
            # lazy: heavy import, kept off the --help path
            from cnnhub.model_factory import split_at_backbone

            self._extractor, self._head = split_at_backbone(model)

    def predict(self) -> np.ndarray:
        if not self.frozen_backbone:
            return self.model.predict(self.dataset, verbose=0)
        digest = _backbone_digest(self.model)
        if digest != self._digest:
            self._features = self._extractor.predict(self.dataset, verbose=0)
            self._digest = digest
        return self._head.predict(self._features, batch_size=256, verbose=0)


def evaluate_run(
    run_dir: str | Path,
    data_dir: str | None = None,
    weights: str | list[str] | None = None,
    source=None,
    tta: str | None = None,
    with_report: bool = True,
) -> dict[str, Any]:
    """Score a run's weights on its validation data, or on ``data_dir`` / ``source``.

    ``weights``: ``all``, ``top:N`` or file names/paths (already checked by
    :func:`cnnhub.evaluation.targets.parse_weights_option`); None = the run's EVAL_WEIGHTS.
    ``source`` (a ``cnnhub.data.sources.DataSource`` in any layout, e.g. a CSV or IDX test set) is
    scored like ``data_dir``. Without either, a run whose validation set was not a whole class
    folder (VAL_SPLIT, SPLIT_FILE, FOLDS, DEV, another layout) is scored on that set, rebuilt
    by ``cnnhub.data``.

    A full evaluation (:func:`is_full_evaluation`) rewrites the run's reports and re-chooses
    the best weights; it returns ``best_weights.json``'s content. Any other evaluation writes
    only ``evaluations/<folder>/`` (replaced as a whole; see :mod:`cnnhub.evaluation.targets`)
    and returns its ``summary.json``. Everything (run folder, classes, every weights file) is
    checked before anything is written.

    ``tta`` (``none``, ``flip``, ``flip,crop``, ...; None = the run's TTA) averages the
    probabilities over those views; the summary (or ``best_weights.json``) records it.

    ``with_report``: rewrite the run's ``report.html`` and ``MODEL_CARD.md`` afterwards (a held-out
    evaluation only when the run has a report already). A caller with more to record first
    (training with a test set and a time budget) passes False and writes them once at its end.
    """
    from cnnhub.model_factory import build_model  # lazy: heavy import, kept off the --help path

    run = read_run(run_dir)
    config = dict(run.config, WEIGHTS="none")  # rebuild with random init: never download
    if tta is not None:
        config["TTA"] = tta
    views = parse_tta(config["TTA"])
    task = get_task(config)
    chosen = select_weights(run, weights or config["EVAL_WEIGHTS"], task.top_metric(config))
    heldout = data_dir is not None or source is not None
    if heldout:
        chosen = _with_validation_choice(run, chosen)
    if source is None:
        source = evaluation_source(config, run.folder.split_csv, run.class_names, data_dir)
    else:
        check_same_classes(source, run.class_names, f"--data_dir {source.origin}")
    _check_distinct_names(chosen)
    full = not heldout and is_full_evaluation(run, chosen, from_config=weights is None)
    model = build_model(config, len(run.class_names))
    for path in chosen:
        check_weights_file(model, run.folder.check_weights(path))
    split, skipped = split_of_source(source, config["SCAN_CACHE"], input_channels(config))
    dataset = evaluation_dataset(split, config, len(run.class_names))
    scorer = BatchedScorer(model, dataset, config["TRAINING_TYPE"] == "freeze_all", views)

    temperature = run.temperature
    calibrated_file = run.model_logs / str((run.best or {}).get("weights"))

    def score_into(folder: Path | None) -> pd.DataFrame:
        """Score every chosen file; its CSVs go to ``folder`` (None: beside the weights, the
        run's own uncalibrated reports); elsewhere the calibrated weights are scored calibrated."""
        rows = []
        for path in chosen:
            load_weights_checked(model, path, check=False)  # all checked above
            if folder is not None and temperature and path.resolve() == calibrated_file.resolve():
                scale_final_layer(model, temperature)
            rows.extend(
                task.write_reports(
                    folder or path.parent,
                    weights_stem(path),
                    split.paths,
                    split.model_targets(),
                    scorer.predict(),
                    run.class_names,
                    config,
                    weights_name=path.name,
                    epoch=weights_epoch(path),
                    best=run.best if heldout else None,  # held-out: validation's choices
                )
            )
        report = task.analysis_report(rows)
        write_csv_safe((folder or run.path) / ANALYSIS_REPORT, report)
        if skipped:
            write_skipped((folder or run.path) / SKIPPED_FILES, skipped)
        return report

    if full:
        score_into(None)
        best = finalize(run.path, config, model)
        if with_report:
            write_run_report(run.path)
        return best
    role = reporting.HELD_OUT if heldout else reporting.VALIDATION
    name = heldout_folder_name(source.origin) if heldout else VALIDATION_FOLDER
    target = run.path / EVALUATIONS / name
    best = run.best
    with atomic.atomic_folder(target) as tmp:
        report = score_into(tmp)
        summary = task.evaluation_summary(
            report,
            role,
            printable_path(Path(source.origin).resolve()),
            len(split.labels),
            best,
            {path.name: printable_path(path.resolve()) for path in chosen},
        )
        summary["tta"] = describe(views)
        atomic.write_json(tmp / SUMMARY, summary)
    _print_evaluation(task, report, summary, target, heldout)
    if with_report and run.folder.report_html.exists():  # its held-out section lists this one now
        write_run_report(run.path)
    return summary


def _print_evaluation(
    task, report: pd.DataFrame, summary: dict[str, Any], target: Path, heldout: bool
) -> None:
    """The table and lines of an evaluation that is not the run's own."""
    task.print_evaluation(report, summary)
    if summary.get("tta", "none") != "none":
        print(f"Test-time augmentation: probabilities averaged over {summary['tta']}.")
    what = "Held-out data" if heldout else "A subset of the run's weights (or outside weights)"
    print(
        f"{what} scored into {target}; the run's own results (analysis_report.csv, best "
        "weights) are unchanged: only an evaluation of all its weights on its validation data "
        "re-chooses them."
    )


def _with_validation_choice(run: RunContents, chosen: list[Path]) -> list[Path]:
    """On other data, the weights chosen on validation are always among those scored."""
    best = run.best
    if best is None:
        return chosen
    path = run.model_logs / str(best["weights"])
    if path.resolve() in {p.resolve() for p in chosen}:
        return chosen
    return sorted([*chosen, path], key=weights_epoch)


def finalize(run_dir: Path, config: dict[str, Any], model=None) -> dict[str, Any]:
    """Choose the best weights from ``analysis_report.csv``, write ``best_weights.json``, its
    plots and ``best_model.keras``, and print the table: the run's task's way
    (``Task.finalize``; single_label: :func:`finalize_classes`)."""
    return get_task(config).finalize(Path(run_dir), config, model)


def save_best_model(run_dir: Path, config: dict[str, Any], model, weights: str, outputs: int):
    """``best_model.keras``: ``model`` (built from ``config`` with ``outputs`` outputs when
    None) with the weights file ``weights`` of ``model_logs/``; returns the model."""
    if model is None:
        from cnnhub.model_factory import build_model  # lazy: heavy import, kept off the --help path

        model = build_model(dict(config, WEIGHTS="none"), outputs)
    folder = RunFolder(Path(run_dir))
    load_weights_checked(model, folder.model_logs / weights)
    with atomic.atomic_path(folder.best_model) as tmp:
        model.save(tmp)
    return model


def finalize_classes(run_dir: Path, config: dict[str, Any], model=None) -> dict[str, Any]:
    """single_label's :func:`finalize`: choose the best weights from ``analysis_report.csv``;
    with CALIBRATE temperature, fit the chosen weights' temperature and re-choose the threshold
    on calibrated probabilities
    (:func:`calibrate_choice`); write best_weights.json, the best weights' plots (reliability
    diagram included), the metrics-by-epoch plot and ``best_model.keras`` (calibrated); print the
    table."""
    from cnnhub.evaluation import plots  # lazy: heavy import, kept off the --help path

    run_dir = Path(run_dir)
    rule = resolved(config, "BEST_WEIGHT_RULE", get_task("single_label"))  # auto: macro_f1
    config = dict(config, BEST_WEIGHT_RULE=rule)
    folder = RunFolder(run_dir)
    report = read_csv_safe(folder.analysis_report)
    logs = folder.model_logs
    class_names = folder.read_class_names()
    per_class = (
        _per_class_tables(logs, report["weights_name"].unique())
        if rule == "min_class_recall"
        else None
    )
    best = choose_best(
        report, per_class, rule, config["BEST_MIN_PRECISION"], config["BEST_EPOCH_TOLERANCE"]
    )
    stem = weights_stem(best["weights"])
    predictions = read_csv_safe(report_paths(logs, stem)["predictions"])
    labels, proba = predictions_arrays(predictions, class_names)
    calibrated = None
    if config.get("CALIBRATE", "none") == "temperature":
        best, calibrated = calibrate_choice(logs, best, predictions, class_names, config)
        stem = best["calibration"]["reports"]
    files = report_paths(logs, stem)
    write_best_plots(
        logs,
        stem,
        read_csv_safe(files["confusion"]),
        read_csv_safe(files["thresholds"]),
        read_csv_safe(files["classes"]),
        best["threshold"],
    )
    plots.plot_reliability(
        labels, proba, calibrated, logs / f"{stem}-reliability.png", title=f"{stem}: reliability"
    )
    plots.plot_metrics_by_epoch(report, best["threshold"], folder.analysis_metrics_png)
    if model is None:
        from cnnhub.model_factory import build_model  # lazy: heavy import, kept off the --help path

        model = build_model(dict(config, WEIGHTS="none"), len(class_names))
    load_weights_checked(model, logs / best["weights"])
    if "calibration" in best:
        scale_final_layer(model, best["calibration"]["temperature"])
    with atomic.atomic_path(folder.best_model) as tmp:
        model.save(tmp)  # single-view, as exports: TTA is applied when scoring
    best["tta"] = describe(parse_tta(config["TTA"]))
    atomic.write_json(folder.best_weights, best)
    if "calibration" in best:
        report = calibrated_report(report, best, read_csv_safe(files["thresholds"]))
    reporting.print_table(report, reporting.VALIDATION, best["threshold"], best["weights"])
    reporting.print_validation_choice(report, best)
    if "calibration" in best:
        done = best["calibration"]
        print(
            f"Calibrated with temperature {done['temperature']:.3f}: expected calibration error "
            f"{done['ece_before']:.4f} -> {done['ece_after']:.4f} (15 bins, validation); deploy "
            f"threshold {best['threshold']:g} chosen on the calibrated probabilities."
        )
    if best["tta"] != "none":
        print(f"Validation scores use test-time augmentation: {best['tta']} averaged.")
    return best


def write_run_report(run_dir: Path) -> None:
    """Write the run's ``report.html`` and ``MODEL_CARD.md`` (:mod:`cnnhub.report`), unless
    the run's task has no such report (``Task.check_command("report")`` refuses it)."""
    from cnnhub.report import write_report  # lazy: matplotlib and the page builder

    config = json.loads(RunFolder(Path(run_dir)).run_config.read_text(encoding="utf-8"))
    try:
        get_task(config).check_command("report", str(run_dir))
    except CnnhubError:
        return
    paths = write_report(run_dir)
    print(f"Report: {paths['html']}; model card: {paths['card']}")


def _per_class_tables(logs: Path, names) -> dict[str, pd.DataFrame]:
    """Every weights file's per-class table (the min_class_recall rule needs them)."""
    return {
        name: read_csv_safe(report_paths(logs, weights_stem(name))["classes"]) for name in names
    }


def calibrate_choice(
    logs: Path,
    best: dict[str, Any],
    predictions: pd.DataFrame,
    class_names: list[str],
    config: dict[str, Any],
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit the temperature of the chosen weights on their validation predictions, score the
    calibrated probabilities into ``<stem>-calibrated*.csv`` and choose the deploy threshold
    again on them (same rule). Returns (best_weights.json content, calibrated probabilities).

    The per-epoch reports and ``analysis_report.csv`` keep the uncalibrated scores: they are
    what the weights were chosen on, and what the temperature is fitted to again next time.
    """
    labels, proba = predictions_arrays(predictions, class_names)
    temperature = fit_temperature(labels, proba)
    calibrated = apply_temperature(proba, temperature)
    stem = f"{weights_stem(best['weights'])}-calibrated"
    result = write_weight_reports(
        logs,
        stem,
        predictions["image_path"].astype(str).tolist(),
        labels,
        calibrated,
        class_names,
        thresholds_of(config),
        weights_name=best["weights"],
        epoch=best["epoch"],
    )
    rows = analysis_report(result["rows"])
    chosen = choose_best(
        rows,
        {best["weights"]: result["per_class"]},
        config["BEST_WEIGHT_RULE"],
        config["BEST_MIN_PRECISION"],
    )
    summary = calibration_summary(labels, proba, calibrated, temperature)
    summary["reports"] = stem
    summary["threshold_before"] = best["threshold"]
    return dict(best, **{k: chosen[k] for k in ("threshold", "value", "fallback")},
                calibration=summary), calibrated  # fmt: skip
