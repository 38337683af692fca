"""Score a run's saved weights: during training (free), or afterwards on any data (batched).

Two ways in, one set of files out:

- ``EpochReports``: a training callback. The validation pass that training runs anyway
  (``cnnhub.callbacks.ValidationScorer``) already has each epoch's probabilities; this writes
  that epoch's reports next to its weights and grows ``analysis_report.csv``, so post-evaluation
  after training only has to choose the best weights (``finalize``).
- ``evaluate_run``: re-score a finished run, on its validation folder or another one (a test
  set goes to ``evaluations/<folder name>/``). Images are decoded once and predicted in batches
  for every weights file; when the backbone was frozen throughout (``freeze_all``), backbone
  features are computed once and only the head runs per weights file.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from cnnhub import atomic
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.safe_csv import read_csv_safe, write_csv_safe
from cnnhub.evaluation.selection import analysis_report, choose_best
from cnnhub.evaluation.writer import report_paths, write_best_plots, write_weight_reports

WEIGHTS_SUFFIX = ".weights.h5"
_EPOCH = re.compile(r"weights-(\d+)-")


def weights_stem(path: Path | str) -> str:
    """``weights-003-0.8123.weights.h5`` -> ``weights-003-0.8123``."""
    return Path(path).name[: -len(WEIGHTS_SUFFIX)]


def weights_epoch(path: Path | str) -> int:
    match = _EPOCH.match(Path(path).name)
    return int(match.group(1)) if match else 0


def thresholds_of(config: dict[str, Any]) -> list[float] | None:
    return config["EVAL_THRESHOLDS"] or None  # None = the default grid


class EpochReports(keras.callbacks.Callback):
    """Write each epoch's per-image and threshold reports from the training validation pass."""

    def __init__(self, scorer, checkpoint, folder: Path, image_ids, labels, class_names, config):
        super().__init__()
        self.scorer = scorer
        self.checkpoint = checkpoint
        self.folder = Path(folder)
        self.image_ids = list(image_ids)
        self.labels = np.asarray(labels)
        self.class_names = list(class_names)
        self.thresholds = thresholds_of(config)

    def on_epoch_end(self, epoch, logs=None):
        weights = self.checkpoint.saved[epoch + 1]
        result = write_weight_reports(
            weights.parent,
            weights_stem(weights),
            self.image_ids,
            self.labels,
            self.scorer.probabilities,
            self.class_names,
            self.thresholds,
            weights_name=weights.name,
            epoch=epoch + 1,
        )
        append_report(self.folder / "analysis_report.csv", result["rows"], epoch + 1)


def append_report(path: Path, rows: list[dict], epoch: int) -> None:
    """Add one epoch's rows to ``analysis_report.csv`` (replacing rows of that epoch or later)."""
    previous = read_csv_safe(path) if path.exists() else None
    kept = [] if previous is None else previous[previous["epoch"] < epoch].to_dict("records")
    write_csv_safe(path, analysis_report([*kept, *rows]))


# ---------------------------------------------------------------- reading a run


@dataclass
class RunContents:
    """What evaluation needs from a run folder, checked."""

    path: Path
    config: dict[str, Any]
    class_names: list[str]
    weights: list[Path]  # sorted by epoch


def read_run(run_dir: str | Path) -> RunContents:
    """Read and check a run folder; raise CnnhubError naming what is missing."""
    path = Path(run_dir)
    if not path.is_dir():
        raise CnnhubError(
            f"Run folder not found: {run_dir}. Pass a folder under model_repository/. "
            f"Received: {run_dir}"
        )
    try:
        config = json.loads((path / "run_config.json").read_text(encoding="utf-8"))
        mapping = json.loads((path / "index_class_mapping.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CnnhubError(
            f"{run_dir} is not a complete cnnhub run folder (cannot read run_config.json or "
            f"index_class_mapping.json: {exc}). Pass a folder made by run_training.py."
        ) from None
    from cnnhub import settings

    settings.validate(config)
    class_names = [mapping[str(i)] for i in range(len(mapping))]
    weights = sorted((path / "model_logs").glob(f"weights-*{WEIGHTS_SUFFIX}"), key=weights_epoch)
    if not weights:
        raise CnnhubError(
            f"No saved weights in {path / 'model_logs'}; train the run first (or pass a run "
            "folder whose model_logs/ holds weights-*.weights.h5 files)."
        )
    return RunContents(path, config, class_names, weights)


def select_weights(run: RunContents, which: str | list[str], top_metric: str) -> list[Path]:
    """``all``, ``top:N`` (by ``top_metric`` in training.log) or explicit file names/paths."""
    if isinstance(which, list):
        chosen = []
        for item in which:
            candidate = Path(item)
            if not candidate.is_file():
                candidate = run.path / "model_logs" / item
            if not candidate.is_file():
                raise CnnhubError(
                    f"Weights file not found: {item} (looked in {run.path / 'model_logs'}). "
                    f"Received: --weights {item}"
                )
            chosen.append(candidate)
        return chosen
    if which == "all":
        return run.weights
    count = int(which.split(":", 1)[1])
    log = pd.read_csv(run.path / "training.log")
    ascending = top_metric.endswith("loss")
    best_epochs = set(log.sort_values(top_metric, ascending=ascending)["epoch"].head(count))
    return [w for w in run.weights if weights_epoch(w) in best_epochs]


# ---------------------------------------------------------------- scoring


def _backbone_digest(model) -> str:
    from cnnhub.model_factory import BACKBONE_LAYER

    digest = hashlib.sha1()
    for weight in model.get_layer(BACKBONE_LAYER).weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


class BatchedScorer:
    """Predict one dataset with many weights files of one architecture.

    Decoded images are cached after the first pass. With ``frozen_backbone``, backbone
    features are computed once and reused while the backbone's weights are unchanged (checked
    by digest, so a file whose backbone differs is still scored correctly).
    """

    def __init__(self, model, dataset, frozen_backbone: bool):
        self.model = model
        self.dataset = dataset
        self.frozen_backbone = frozen_backbone
        self._features: np.ndarray | None = None
        self._digest: str | None = None
        if frozen_backbone:
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


def _check_classes(run: RunContents, found: list[str], data_dir: str) -> None:
    if found != run.class_names:
        only_data = sorted(set(found) - set(run.class_names))
        only_run = sorted(set(run.class_names) - set(found))
        raise CnnhubError(
            f"The classes in {data_dir} differ from the run's: only in the data: "
            f"{only_data or 'none'}; only in the run: {only_run or 'none'}. Pass a folder with "
            f"the run's class sub-folders. Received: --data_dir {data_dir}"
        )


def evaluate_run(
    run_dir: str | Path,
    data_dir: str | None = None,
    weights: str | list[str] | None = None,
    source=None,
) -> dict[str, Any]:
    """Score a run's weights on its validation folder, or on ``data_dir``; choose the best.

    ``source`` (a ``cnnhub.sources.DataSource`` in any layout, e.g. a CSV or IDX test set) is
    scored like ``data_dir``, into ``evaluations/<its file or folder name>/``. Without either,
    a run whose validation set was not a whole class folder (VAL_SPLIT, SPLIT_FILE, FOLDS,
    DEV, another layout) is scored on that set, rebuilt by ``cnnhub.data``.

    Checks everything (run folder, classes, weights compatibility) before writing anything.
    Returns the chosen best weights (``best_weights.json`` content).
    """
    from cnnhub.data import input_channels, make_dataset, run_validation_source, split_of_source
    from cnnhub.model_factory import build_model
    from cnnhub.sources import load_source
    from cnnhub.weights import check_compatible

    run = read_run(run_dir)
    config = dict(run.config, WEIGHTS="none")  # rebuild with random init: never download
    chosen = select_weights(run, weights or config["EVAL_WEIGHTS"], config["EVAL_TOP_METRIC"])
    other_data = data_dir is not None or source is not None
    if other_data:
        chosen = _with_validation_choice(run, chosen)
    elif source is None:  # validation: rebuilt by the data side when it is not a plain folder
        source = run_validation_source(config, run.path, run.class_names)
    if source is None:
        source = load_source(data_dir or config["DATA_DIR_VALID"])
    folder = source.origin
    _check_classes(run, source.class_names, folder)
    model = build_model(config, len(run.class_names))
    for path in chosen:
        check_compatible(model, path, str(path))
    split, skipped = split_of_source(source, config["SCAN_CACHE"], input_channels(config))
    dataset = make_dataset(
        split,
        num_classes=len(run.class_names),
        image_size=(config["IMG_HEIGHT"], config["IMG_WIDTH"]),
        batch_size=config["BATCH_SIZE"],
        training=False,
        seed=config["SEED"],
        cache=True,
        with_labels=False,
    )
    scorer = BatchedScorer(model, dataset, config["TRAINING_TYPE"] == "freeze_all")
    out = run.path / "evaluations" / Path(folder).name if other_data else None
    rows, per_class = [], {}
    for path in chosen:
        model.load_weights(path)
        result = write_weight_reports(
            out or path.parent,
            weights_stem(path),
            split.paths,
            split.labels,
            scorer.predict(),
            run.class_names,
            thresholds_of(config),
            weights_name=path.name,
            epoch=weights_epoch(path),
        )
        rows.extend(result["rows"])
        per_class[path.name] = result["per_class"]
    report_folder = out or run.path
    write_csv_safe(report_folder / "analysis_report.csv", analysis_report(rows))
    if skipped:
        from cnnhub.images import write_skipped

        write_skipped(report_folder, skipped)
    if other_data:
        return summarize_other_data(run, report_folder)
    return finalize(run.path, config, model)


def _with_validation_choice(run: RunContents, chosen: list[Path]) -> list[Path]:
    """On other data, the weights chosen on validation are always among those scored."""
    best_file = run.path / "best_weights.json"
    if not best_file.is_file():
        return chosen
    best = run.path / "model_logs" / json.loads(best_file.read_text(encoding="utf-8"))["weights"]
    return chosen if best in chosen else sorted([*chosen, best], key=weights_epoch)


def finalize(run_dir: Path, config: dict[str, Any], model=None) -> dict[str, Any]:
    """Choose the best weights from ``analysis_report.csv``; write best_weights.json, the best
    weights' plots, the metrics-by-epoch plot and ``best_model.keras``; print the table."""
    from cnnhub.evaluation import plots

    run_dir = Path(run_dir)
    report = read_csv_safe(run_dir / "analysis_report.csv")
    logs = run_dir / "model_logs"
    per_class = None
    if config["BEST_WEIGHT_RULE"] == "min_class_recall":
        per_class = {
            name: read_csv_safe(report_paths(logs, name[: -len(WEIGHTS_SUFFIX)])["classes"])
            for name in report["weights_name"].unique()
        }
    best = choose_best(report, per_class, config["BEST_WEIGHT_RULE"], config["BEST_MIN_PRECISION"])
    stem = best["weights"][: -len(WEIGHTS_SUFFIX)]
    files = report_paths(logs, stem)
    write_best_plots(
        logs,
        stem,
        read_csv_safe(files["confusion"]),
        read_csv_safe(files["thresholds"]),
        read_csv_safe(files["classes"]),
        best["threshold"],
    )
    plots.plot_metrics_by_epoch(report, best["threshold"], run_dir / "analysis_metrics.png")
    if model is None:
        from cnnhub.model_factory import build_model

        class_count = len(json.loads((run_dir / "index_class_mapping.json").read_text("utf-8")))
        model = build_model(dict(config, WEIGHTS="none"), class_count)
    model.load_weights(logs / best["weights"])
    with atomic.atomic_path(run_dir / "best_model.keras") as tmp:
        model.save(tmp)
    atomic.write_json(run_dir / "best_weights.json", best)
    print_table(report, best)
    return best


def summarize_other_data(run: RunContents, folder: Path) -> dict[str, Any]:
    """For a held-out folder: report the validation-chosen weights there (never re-choose)."""
    report = read_csv_safe(folder / "analysis_report.csv")
    best_file = run.path / "best_weights.json"
    if best_file.is_file():
        best = json.loads(best_file.read_text(encoding="utf-8"))
    else:  # no validation choice yet: report the last epoch
        last = report["epoch"].max()
        best = {
            "weights": report.loc[report["epoch"] == last, "weights_name"].iloc[0],
            "epoch": int(last),
            "threshold": 0.0,
            "rule": "last_epoch",
            "value": None,
        }
    rows = report[report["weights_name"] == best["weights"]]
    at_zero = rows.loc[rows["threshold"].sub(0).abs().idxmin()]
    at_best = rows.loc[rows["threshold"].sub(best["threshold"]).abs().idxmin()]
    summary = {
        "data_dir": str(folder.name),
        "weights": best["weights"],
        "epoch": int(best["epoch"]),
        "accuracy": float(at_zero["accuracy"]),
        "f1_macro": float(at_zero["f1_macro"]),
        "threshold": float(at_best["threshold"]),
        "coverage_at_threshold": float(at_best["coverage"]),
        "precision_micro_at_threshold": float(at_best["precision_micro"]),
        "f1_macro_at_threshold": float(at_best["f1_macro"]),
    }
    atomic.write_json(folder / "summary.json", summary)
    print_table(report, best)
    print(
        f"{folder.name}: weights {best['weights']} (chosen on validation) reach accuracy "
        f"{summary['accuracy']:.4f}, macro F1 {summary['f1_macro']:.4f}; at threshold "
        f"{summary['threshold']:g}: coverage {summary['coverage_at_threshold']:.4f}, precision "
        f"{summary['precision_micro_at_threshold']:.4f}"
    )
    return summary


def print_table(report: pd.DataFrame, best: dict[str, Any], rows: int = 10) -> None:
    """Best rows first: each weights file at its best-F1 threshold, then the choice."""
    # Same tie-break as choose_best: higher threshold, then earlier epoch.
    order = report.sort_values(["f1_macro", "threshold", "epoch"], ascending=[False, False, True])
    per_weight = order.groupby("weights_name", sort=False).head(1)
    columns = ["epoch", "threshold", "coverage", "accuracy", "precision_micro", "f1_macro"]
    print(
        per_weight.head(rows)[["weights_name", *columns]].to_string(
            index=False, float_format="%.4f"
        )
    )
    print(
        f"Best weights: {best['weights']} (epoch {best['epoch']}), threshold {best['threshold']:g} "
        f"by rule {best['rule']}"
        + (f" = {best['value']:.4f}" if best.get("value") is not None else "")
    )
