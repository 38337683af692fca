"""``single_label``: one class per image (cnnhub's original task).

Softmax output, categorical (focal) cross-entropy, accuracy per epoch; scored every epoch by
threshold precision/recall (:mod:`cnnhub.evaluation.metrics`), best weights and deploy threshold
by one of :data:`cnnhub.evaluation.selection.RULES`. This module only routes the
:class:`~cnnhub.tasks.base.Task` calls to that code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.errors import CnnhubError
from cnnhub.evaluation.rules import RULES
from cnnhub.tasks.base import Task
from cnnhub.tasks.checks import check_choice, refuse_set, resolved

CLASSIFICATION_LOSSES = ("categorical_crossentropy", "categorical_focal_crossentropy")
CLASSIFICATION_RULES = RULES  # owned by cnnhub.evaluation (choose_best applies them)


class SingleLabel(Task):
    """One class per image."""

    name = "single_label"
    epoch_metric = "accuracy"
    higher_is_better = True
    stratified = True
    losses = CLASSIFICATION_LOSSES
    rules = CLASSIFICATION_RULES
    report_columns = ("weights_name", "epoch", "threshold", "accuracy", "f1_macro")

    def check_config(self, config: dict[str, Any]) -> None:
        check_choice(config, "LOSS", self)
        check_choice(config, "BEST_WEIGHT_RULE", self)
        refuse_set(config, self, ("TARGET_COLUMN", "NUM_TARGETS"))
        for key in ("EARLY_STOPPING_MONITOR", "EVAL_TOP_METRIC"):
            if config[key].endswith("mae"):
                raise CnnhubError(
                    f"`{key.lower()}` {config[key]} is a regression metric; a single_label run "
                    f"logs loss and accuracy. Received: {key.lower()}={config[key]!r}, "
                    "task='single_label'"
                )

    def label_source(self, source, options, received: str):
        return source

    def check_training_source(self, source, path: str) -> None:
        if len(source.class_names) < 2:
            raise CnnhubError(
                "A classifier needs at least two classes (two sub-folders of images, or two "
                f"label values). Received: classes={source.class_names} in {path}"
            )

    def output_layers(self, x, num_outputs: int, config: Mapping[str, Any]):
        from keras import layers  # lazy: heavy import, kept off the --help path

        # float32 softmax keeps probabilities exact under mixed precision.
        return layers.Dense(num_outputs, activation="softmax", dtype="float32", name="predictions")(
            x
        )

    def make_loss(self, config: Mapping[str, Any], model=None):
        import keras  # lazy: heavy import, kept off the --help path

        if resolved(config, "LOSS", self) == "categorical_focal_crossentropy":
            return keras.losses.CategoricalFocalCrossentropy(
                label_smoothing=config["LABEL_SMOOTHING"]
            )
        return keras.losses.CategoricalCrossentropy(label_smoothing=config["LABEL_SMOOTHING"])

    def validation_logs(
        self, outputs: np.ndarray, targets: np.ndarray, loss_fn, model=None
    ) -> dict:
        import keras  # lazy: heavy import, kept off the --help path

        labels = np.asarray(targets)
        one_hot = np.eye(outputs.shape[1], dtype="float32")[labels]
        # `call` gives per-image losses without the 1/replicas scaling a strategy would apply.
        per_image = keras.ops.convert_to_numpy(loss_fn.call(one_hot, outputs))
        return {
            "val_loss": float(np.mean(per_image)),
            "val_accuracy": float(np.mean(outputs.argmax(axis=1) == labels)),
        }

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
        from cnnhub.evaluation.run_evaluation import thresholds_of
        from cnnhub.evaluation.writer import write_weight_reports

        result = write_weight_reports(
            folder,
            stem,
            image_ids,
            targets,
            outputs,
            names,
            thresholds_of(config),
            weights_name=weights_name,
            epoch=epoch,
        )
        return result["rows"]

    def analysis_report(self, rows):
        from cnnhub.evaluation.selection import analysis_report

        return analysis_report(rows)

    def finalize(self, run_dir: Path, config: Mapping[str, Any], model=None) -> dict[str, Any]:
        from cnnhub.evaluation.run_evaluation import finalize_classes

        return finalize_classes(run_dir, config, model)

    def headline_columns(self) -> tuple[str, ...]:
        from cnnhub.evaluation.headline import HEADLINE_COLUMNS

        return HEADLINE_COLUMNS

    def headline_figures(self, report, weights_name: str, best: Mapping[str, Any]) -> dict:
        from cnnhub.evaluation.headline import headline_figures

        return headline_figures(report, weights_name, float(best["threshold"]))

    def print_table(self, report, role: str, best: Mapping[str, Any] | None) -> None:
        from cnnhub.evaluation import reporting

        threshold = float(best["threshold"]) if best else 0.0
        reporting.print_table(report, role, threshold, best["weights"] if best else None)

    def evaluation_summary(self, report, role, source, images, best, scored) -> dict[str, Any]:
        from cnnhub.evaluation import reporting

        return reporting.evaluation_summary(report, role, source, images, best, scored)

    def print_evaluation(self, report, summary: Mapping[str, Any]) -> None:
        import math

        from cnnhub.evaluation import reporting
        from cnnhub.evaluation.headline import HEADLINE_FIGURES

        role = summary["role"]
        reporting.print_table(report, role, summary["deploy_threshold"], summary["weights"])
        if summary["weights"] is None:
            return
        figures = {
            key: math.nan if summary[key] is None else summary[key] for key in HEADLINE_FIGURES
        }
        how = (
            f"both chosen on validation ({summary['rule']})"
            if summary["chosen_on_validation"]
            else "the last epoch at threshold 0: no weights were chosen on validation yet"
        )
        print(
            f"{role.capitalize()} ({summary['source']}): weights {summary['weights']} (epoch "
            f"{summary['epoch']}) and deploy threshold {summary['deploy_threshold']:g}, {how}: "
            f"{reporting.figures_text(figures)}"
        )

    def ranking(self) -> tuple[str, bool]:
        return "f1_macro@deploy", True

    def predict_threshold(self, run, spec: str, weights) -> float | None:
        from cnnhub.run_loading import choose_threshold

        return choose_threshold(run, spec, weights)

    def predictions_frame(self, paths, outputs, errors, names, top_k: int, threshold):
        from cnnhub.predict import predictions_frame

        return predictions_frame(paths, outputs, errors, names, top_k, threshold)

    def format_predictions(self, frame, top_k: int) -> str:
        from cnnhub.predict import format_table

        return format_table(frame, top_k)

    def prediction_counts(self, frame, threshold) -> str:
        from cnnhub.run_loading import UNCERTAIN

        unreadable = int((frame["error"] != "").sum())
        uncertain = int((frame["label"] == UNCERTAIN).sum())
        return (
            f"{len(frame) - unreadable - uncertain} labelled, {uncertain} uncertain "
            f"(threshold {threshold:g}), {unreadable} unreadable"
        )

    def export_info(self, threshold) -> dict[str, str]:
        from cnnhub.run_loading import UNCERTAIN

        return {
            "output": "class probabilities (softmax); index i is labels[i]",
            "decision": f"labels[argmax] if max probability >= threshold else '{UNCERTAIN}'",
        }

    def export_check(
        self, fmt, reference, exported, threshold, class_names, allow_flips=False
    ) -> dict:
        from cnnhub.export import FLOAT_TOLERANCE, INT8_MIN_AGREEMENT, check_passes, compare
        from cnnhub.export_check import INT8_MAX_FLIP_RATE, decision_changes, flips_problem

        diff, agreement = compare(reference, exported)
        changes = decision_changes(reference, exported, threshold, class_names)
        return {
            "max_abs_diff": diff,
            "agreement": agreement,
            "agreement_name": "top1_agreement",
            "problem": check_passes(fmt, diff, agreement)
            or flips_problem(fmt, changes, allow_flips),
            "limit": (
                f"top-1 agreement >= {INT8_MIN_AGREEMENT}"
                if fmt == "tflite-int8"
                else f"max_abs_diff <= {FLOAT_TOLERANCE}"
            ),
            "check": {
                **changes,
                "limit": (
                    f"flip_rate <= {INT8_MAX_FLIP_RATE}"
                    + (" (waived: --allow_flips)" if allow_flips else "")
                    if fmt == "tflite-int8"
                    else "none (reported only)"
                ),
            },
            "verification": {
                "decisions_flipped": changes["flipped"],
                "flip_rate": changes["flip_rate"],
            },
            "text": f"max |p - keras| = {diff:.3g}, top-1 agreement {agreement:.1%}",
        }
