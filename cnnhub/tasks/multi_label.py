"""``multi_label``: a set of classes per image; one sigmoid per class, every class its own
threshold.

Labels come from a ``csv_paths`` CSV whose label cells join an image's labels with
``LABEL_SEPARATOR`` (``img/001.jpg,beach|people``; an empty cell is an image with no label).
Binary (focal) cross-entropy; the per-epoch ``accuracy`` (training.log, the weights file names,
early stopping) is Keras's binary accuracy: the share of (image, label) pairs right at 0.5;
scored every epoch by :mod:`cnnhub.evaluation.multilabel` (per-class precision/recall/F1/AP
on the threshold grid, each class's threshold chosen on validation, micro/macro F1, mAP, subset
accuracy, Hamming loss) and the best weights chosen by
:mod:`cnnhub.evaluation.multilabel_reports`. This module only routes the
:class:`~cnnhub.tasks.base.Task` calls to that code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.errors import CnnhubError
from cnnhub.tasks.checks import check_choice, refuse_set, resolved
from cnnhub.tasks.finalize import FinalizedByHooks
from cnnhub.tasks.single_label import CLASSIFICATION_RULES

MULTI_LABEL_LOSSES = ("binary_crossentropy", "binary_focal_crossentropy")

HEADLINE = ("map", "f1_micro", "f1_macro", "subset_accuracy", "hamming_loss")
"""The figures every multi-label summary reports, at each class's chosen threshold."""


def class_thresholds(best: Mapping[str, Any] | None, names: Sequence[str]) -> np.ndarray | None:
    """The per-class thresholds of ``best_weights.json`` in class order (None without them)."""
    if not best or not best.get("class_thresholds"):
        return None
    chosen = best["class_thresholds"]
    missing = [name for name in names if name not in chosen]
    if missing:
        raise CnnhubError(
            f"best_weights.json has no class threshold for {missing[0]!r}; re-run "
            f"`cnnhub evaluate` on the run to choose them again. Received: "
            f"class_thresholds for {sorted(chosen)[:5]}"
        )
    return np.array([float(chosen[name]) for name in names])


class MultiLabel(FinalizedByHooks):
    """Several classes per image."""

    name = "multi_label"
    epoch_metric = "accuracy"  # Keras's BinaryAccuracy under the shared name
    higher_is_better = True
    stratified = False  # scikit-learn has no multi-label stratified split (docs/tasks.md)
    thresholded = False  # a threshold per class: best_weights.json's class_thresholds
    label_sets = True
    losses = MULTI_LABEL_LOSSES
    rules = CLASSIFICATION_RULES
    report_columns = ("weights_name", "epoch", "map", "f1_micro", "f1_macro")

    # ------------------------------------------------------------------ config
    def check_config(self, config: dict[str, Any]) -> None:
        check_choice(config, "LOSS", self)
        check_choice(config, "BEST_WEIGHT_RULE", self)
        refuse_set(
            config,
            self,
            ("TARGET_COLUMN", "NUM_TARGETS", "CLASS_WEIGHT", "OVERSAMPLE", "CALIBRATE"),
        )
        from cnnhub.data.multi_hot import check_separator

        check_separator(config["LABEL_SEPARATOR"])
        for key in ("EARLY_STOPPING_MONITOR", "EVAL_TOP_METRIC"):
            if config[key].endswith("mae"):
                raise CnnhubError(
                    f"`{key.lower()}` {config[key]} is a regression metric; a multi_label run "
                    f"logs loss and accuracy. Received: {key.lower()}={config[key]!r}, "
                    "task='multi_label'"
                )

    # ------------------------------------------------------------------ data
    def label_source(self, source, options, received: str):
        from dataclasses import replace

        from cnnhub.data.multi_hot import encode_multi_hot
        from cnnhub.data.sources.base import read_names_file

        if source.data_format != "csv_paths":
            raise CnnhubError(
                "Task multi_label reads each image's labels from a csv_paths CSV (columns "
                f"path,label; labels joined by {options.label_separator!r}); {source.origin} is "
                f"{source.data_format} data. Received: {received}"
            )
        names = read_names_file(options.class_names_file) if options.class_names_file else None
        cells = np.asarray(source.class_names, dtype=object)[source.labels]
        matrix, class_names = encode_multi_hot(
            cells.tolist(), options.label_separator, names, source.origin
        )
        # `labels` keeps one class per image for what needs one (dev subsets, split files):
        # its first label, or the first class for an image without any.
        return replace(
            source,
            class_names=class_names,
            labels=matrix.argmax(axis=1),
            targets=matrix,
            label_sets=True,
        )

    def check_training_source(self, source, path: str) -> None:
        counts = source.targets.sum(axis=0)
        if len(source.class_names) < 1 or not counts.any():
            raise CnnhubError(
                f"The multi-label training data needs at least one label. Received: {path}"
            )

    def label_lines(self, inspection) -> list[str]:
        """Images per label (the counts table), then per split the images without a label,
        the mean labels per image and the pairs of labels that occur together (most frequent
        first, at most ten)."""
        from cnnhub.data.multi_hot import co_occurrence

        lines = inspection.class_lines()
        names = inspection.class_names
        for split in inspection.splits:
            matrix = co_occurrence(split.targets)
            pairs = sorted(
                (
                    (int(matrix[i, j]), names[i], names[j])
                    for i in range(len(names))
                    for j in range(i + 1, len(names))
                    if matrix[i, j]
                ),
                key=lambda pair: -pair[0],
            )
            shown = ", ".join(f"{a}+{b} {n}" for n, a, b in pairs[:10]) or "none"
            more = f" (and {len(pairs) - 10} more pairs)" if len(pairs) > 10 else ""
            none = int((split.targets.sum(axis=1) == 0).sum())
            lines.append(
                f"  {split.name}: {none} image(s) without a label; labels per image mean "
                f"{split.targets.sum() / max(split.total, 1):.2f}; co-occurring labels: "
                f"{shown}{more}"
            )
        return lines

    def label_advice(self, inspection, detail: bool) -> list[str]:
        return []  # class weights do not apply to multi-label training

    # ------------------------------------------------------------------ model
    def output_layers(self, x, num_outputs: int, config: Mapping[str, Any]):
        from keras import layers  # lazy: heavy import, kept off the --help path

        # One independent yes/no per class; float32 keeps probabilities exact under mixed
        # precision.
        return layers.Dense(num_outputs, activation="sigmoid", dtype="float32", name="predictions")(
            x
        )

    # ------------------------------------------------------------------ training
    def make_loss(self, config: Mapping[str, Any], model=None):
        import keras  # lazy: heavy import, kept off the --help path

        if resolved(config, "LOSS", self) == "binary_focal_crossentropy":
            return keras.losses.BinaryFocalCrossentropy(label_smoothing=config["LABEL_SMOOTHING"])
        return keras.losses.BinaryCrossentropy(label_smoothing=config["LABEL_SMOOTHING"])

    def compile_arguments(self, config: Mapping[str, Any], model=None) -> dict[str, Any]:
        import keras  # lazy: heavy import, kept off the --help path

        # "accuracy" as a string would be categorical accuracy (argmax) for several outputs.
        return {"metrics": [keras.metrics.BinaryAccuracy(name="accuracy")]}

    def validation_logs(
        self, outputs: np.ndarray, targets: np.ndarray, loss_fn, model=None
    ) -> dict:
        import keras  # lazy: heavy import, kept off the --help path

        truth = np.asarray(targets, dtype="float32")
        # `call` gives per-image losses without the 1/replicas scaling a strategy would apply.
        per_image = keras.ops.convert_to_numpy(loss_fn.call(truth, outputs))
        return {
            "val_loss": float(np.mean(per_image)),
            # Keras's binary_accuracy: a label is predicted above 0.5.
            "val_accuracy": float(np.mean((outputs > 0.5) == (truth > 0.5))),
        }

    # ------------------------------------------------------------------ scoring
    def write_reports(
        self,
        folder: Path,
        stem: str,
        image_ids: Sequence[str],
        targets: np.ndarray,
        outputs: np.ndarray,
        names: Sequence[str],
        config: Mapping[str, Any],
        weights_name: str,
        epoch: int,
        best: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        from cnnhub.evaluation.multilabel_reports import threshold_rule, write_multilabel_reports
        from cnnhub.evaluation.run_evaluation import thresholds_of

        result = write_multilabel_reports(
            folder,
            stem,
            image_ids,
            targets,
            outputs,
            names,
            thresholds_of(config),
            min_precision=threshold_rule(
                resolved(config, "BEST_WEIGHT_RULE", self), config["BEST_MIN_PRECISION"]
            ),
            class_thresholds=class_thresholds(best, names),
            separator=config["LABEL_SEPARATOR"],
            weights_name=weights_name,
            epoch=epoch,
        )
        return result["rows"]

    def analysis_report(self, rows):
        from cnnhub.evaluation.multilabel_reports import multilabel_analysis_report

        return multilabel_analysis_report(rows)

    def choose_best(self, report, logs: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        from cnnhub.evaluation.multilabel_reports import (
            choose_best_multilabel,
            multilabel_report_paths,
            write_multilabel_best_plots,
        )
        from cnnhub.evaluation.safe_csv import read_csv_safe
        from cnnhub.run_folder import weights_stem

        chosen = {
            name: read_csv_safe(
                multilabel_report_paths(logs, weights_stem(name))["class_thresholds"]
            )
            for name in report["weights_name"].unique()
        }
        best = choose_best_multilabel(
            report,
            chosen,
            resolved(config, "BEST_WEIGHT_RULE", self),
            config["BEST_EPOCH_TOLERANCE"],
        )
        write_multilabel_best_plots(logs, weights_stem(best["weights"]), chosen[best["weights"]])
        return best

    def plot_by_epoch(self, report, best: Mapping[str, Any], path: Path) -> None:
        from cnnhub.evaluation import plots  # lazy: loads matplotlib

        plots.plot_metrics_by_epoch(
            report.assign(threshold=0.0),
            0.0,
            path,
            title="Validation metrics by epoch, each class at its own threshold",
        )

    def headline_columns(self) -> tuple[str, ...]:
        return HEADLINE

    def headline_figures(self, report, weights_name: str, best: Mapping[str, Any]) -> dict:
        rows = report[report["weights_name"] == weights_name]
        if rows.empty:
            raise ValueError(
                f"The report has no rows for the weights {weights_name!r}. "
                f"Received: weights_name={weights_name!r}"
            )
        return {key: float(rows.iloc[0][key]) for key in HEADLINE}

    def _table(self, report) -> Any:
        return report[["weights_name", "epoch", *HEADLINE]].sort_values(
            ["f1_macro", "epoch"], ascending=[False, True], kind="mergesort"
        )

    def print_table(self, report, role: str, best: Mapping[str, Any] | None) -> None:
        table = self._table(report)
        shown = table.head(10)
        chosen = best["weights"] if best else None
        if chosen is not None and chosen not in set(shown["weights_name"]):
            import pandas as pd

            shown = pd.concat([shown.head(9), table[table["weights_name"] == chosen]])
        print(f"{role.capitalize()} figures of each weights file, each class at its threshold:")
        print(shown.to_string(index=False, float_format="%.4f"))

    def print_choice(self, report, best: Mapping[str, Any]) -> None:
        from cnnhub.evaluation.reporting import tolerance_text

        figures = self.headline_figures(report, best["weights"], best)
        print(
            f"Best weights (chosen on validation): {best['weights']} (epoch {best['epoch']}) by "
            f"rule {best['rule']} = {best['value']:.4f}{tolerance_text(best)}, with a threshold "
            f"per class (best_weights.json). Validation: {_figures_text(figures)}"
        )

    def evaluation_summary(self, report, role, source, images, best, scored) -> dict[str, Any]:
        from cnnhub.evaluation.reporting import last_epoch_choice, weights_summary

        reported = last_epoch_choice(report) if best is None else best
        return weights_summary(
            report,
            reported,
            scored,
            head={"task": self.name, "role": role, "source": source, "images": int(images)},
            chosen_on_validation=best is not None,
            columns=HEADLINE,
            extra={"class_thresholds": reported.get("class_thresholds")},
        )

    def print_evaluation(self, report, summary: Mapping[str, Any]) -> None:
        self.print_table(report, summary["role"], {"weights": summary["weights"]})
        if summary["weights"] is None:
            return
        how = (
            f"thresholds chosen on validation ({summary['rule']})"
            if summary["class_thresholds"]
            else "thresholds chosen on this data: no weights were chosen on validation yet"
        )
        figures = {key: math.nan if summary[key] is None else summary[key] for key in HEADLINE}
        print(
            f"{summary['role'].capitalize()} ({summary['source']}): weights {summary['weights']} "
            f"(epoch {summary['epoch']}), {how}: {_figures_text(figures)}"
        )

    def ranking(self) -> tuple[str, bool]:
        return "f1_macro", True

    # ------------------------------------------------------------------ use
    def check_command(self, command: str, run: str) -> None:
        if command == "errors":
            raise CnnhubError(
                "`cnnhub errors` shows confident errors of a single-label classifier; "
                f"{run} is a multi_label run (its per-image label sets are "
                "model_logs/<weights>.csv, rows with correct = 0 are the wrong ones). "
                f"Received: run={run!r}, task='multi_label'"
            )

    def predict_threshold(self, run, spec: str, weights) -> dict[str, Any]:
        """``{"class_thresholds": {class: t}, "label_separator": sep}``: ``--threshold best``
        takes best_weights.json's per-class thresholds (0.5 each without them), a number
        is every class's threshold."""
        from cnnhub.run_loading import BEST_WEIGHTS, choose_threshold, note

        names = run.class_names
        separator = run.config.get("LABEL_SEPARATOR", "|")
        if str(spec).strip().lower() == "best":
            chosen = class_thresholds(run.best, names)
            if chosen is None:
                note(f"no class thresholds in {run.path / BEST_WEIGHTS}; using 0.5 for each class.")
                chosen = np.full(len(names), 0.5)
            elif weights is not None and not weights.is_best:
                note(
                    f"the class thresholds were chosen for the best weights "
                    f"({run.best.get('weights')}), not for {weights.path.name}."
                )
        else:
            chosen = np.full(len(names), choose_threshold(run, spec, weights))
        return {
            "class_thresholds": {name: float(t) for name, t in zip(names, chosen)},
            "label_separator": separator,
        }

    def predictions_frame(self, paths, outputs, errors, names, top_k: int, threshold):
        """One row per image: ``image_path, labels, probabilities, p_<class>..., error``:
        the labels at or above their class's threshold (class order) joined by the label
        separator, their probabilities joined the same way, every class's probability."""
        import pandas as pd  # lazy: heavy import, kept off the --help path

        from cnnhub.evaluation.multilabel import binarize

        separator = threshold["label_separator"]
        cuts = [threshold["class_thresholds"][name] for name in names]
        hits = binarize(np.nan_to_num(np.asarray(outputs), nan=-1.0), cuts)
        rows = []
        for path, row, hit, error in zip(paths, outputs, hits, errors):
            on = np.flatnonzero(hit) if error is None else []
            rows.append(
                {
                    "image_path": str(path),
                    "labels": separator.join(names[i] for i in on),
                    "probabilities": separator.join(f"{row[i]:.4f}" for i in on),
                }
                | {f"p_{name}": float(p) for name, p in zip(names, row)}
                | {"error": error or ""}
            )
        columns = ["image_path", "labels", "probabilities", *(f"p_{n}" for n in names), "error"]
        return pd.DataFrame(rows, columns=columns)

    def format_predictions(self, frame, top_k: int) -> str:
        from cnnhub.display import printable

        lines = ["image  labels  probabilities"]
        for record in frame.to_dict("records"):
            if record["error"]:
                shown = f"ERROR  {record['error']}"
            elif not record["labels"]:
                shown = "(no label)"
            else:
                shown = f"{record['labels']}  {record['probabilities']}"
            lines.append(f"{printable(record['image_path'])}  {printable(shown)}")
        return "\n".join(lines)

    def prediction_counts(self, frame, threshold) -> str:
        unreadable = int((frame["error"] != "").sum())
        without = int(((frame["labels"] == "") & (frame["error"] == "")).sum())
        return (
            f"{len(frame) - unreadable - without} with labels, {without} with no label "
            f"(a threshold per class), {unreadable} unreadable"
        )

    def export_info(self, threshold) -> dict[str, str]:
        return {
            "output": "per-class probabilities (one sigmoid each); index i is labels[i]",
            "decision": "every labels[i] whose probability >= threshold['class_thresholds'][labels"
            "[i]] (none: no label)",
        }

    def export_check(
        self, fmt, reference, exported, threshold, class_names, allow_flips=False
    ) -> dict:
        """As single-label's check, at the label-set level: ``label_set_agreement`` is the
        share of images whose whole label set (at the class thresholds) is the same as the
        Keras model's; ``check`` counts per class the images where that label's decision
        changed. float formats: max_abs_diff within the tolerance; ``tflite-int8``: label sets
        change on at most INT8_MAX_FLIP_RATE of the images (unless ``allow_flips``)."""
        from cnnhub.evaluation.multilabel import binarize
        from cnnhub.export import FLOAT_TOLERANCE, check_passes
        from cnnhub.export_check import INT8_MAX_FLIP_RATE

        names = list(class_names)
        cuts = np.array([threshold["class_thresholds"][name] for name in names])
        reference = np.asarray(reference, dtype=np.float64)
        outputs = np.asarray(exported, dtype=np.float64).reshape(reference.shape)
        diff = float(np.max(np.abs(reference - outputs))) if reference.size else 0.0
        before = binarize(reference, cuts)
        after = binarize(np.nan_to_num(outputs, nan=-1.0), cuts)
        changed = (before != after) | ~np.isfinite(outputs)
        flipped = changed.any(axis=1)
        images = len(reference)
        rate = float(flipped.mean()) if images else 0.0
        problem = None if fmt == "tflite-int8" else check_passes(fmt, diff, 1.0)
        if fmt == "tflite-int8" and not allow_flips and rate > INT8_MAX_FLIP_RATE:
            problem = (
                f"its label sets at the class thresholds change on {int(flipped.sum())} of "
                f"{images} images ({rate:.1%}), over the {INT8_MAX_FLIP_RATE:.0%} allowed; pass "
                "--allow_flips to keep it anyway"
            )
        per_class = [
            {
                "class": name,
                "threshold": float(cut),
                "images_with_label": int(before[:, k].sum()),
                "label_added": int((changed[:, k] & (before[:, k] == 0)).sum()),
                "label_removed": int((changed[:, k] & (before[:, k] == 1)).sum()),
            }
            for k, (name, cut) in enumerate(zip(names, cuts))
        ]
        limit = (
            f"label sets change on <= {INT8_MAX_FLIP_RATE} of the images"
            + (" (waived: --allow_flips)" if allow_flips else "")
            if fmt == "tflite-int8"
            else f"max_abs_diff <= {FLOAT_TOLERANCE}"
        )
        return {
            "max_abs_diff": diff,
            "agreement": 1.0 - rate,
            "agreement_name": "label_set_agreement",
            "problem": problem,
            "limit": limit,
            "check": {
                "class_thresholds": dict(threshold["class_thresholds"]),
                "images": images,
                "flipped": int(flipped.sum()),
                "flip_rate": rate,
                "per_class": per_class,
                "limit": limit,
            },
            # not "decisions_flipped": that names single-label decisions at one threshold
            "verification": {"label_sets_changed": int(flipped.sum()), "change_rate": rate},
            "text": f"max |p - keras| = {diff:.3g}, label-set agreement {1.0 - rate:.1%} at the "
            "class thresholds",
        }


def _figures_text(figures: Mapping[str, float]) -> str:
    return ", ".join(
        f"{name} {figures[name]:.4f}" if not math.isnan(figures[name]) else f"{name} n/a"
        for name in HEADLINE
    )
