"""``regression``: one or more numbers per image (``--num_targets``), in the user's units.

Data. ``csv_paths`` with ``--target_column`` (comma-separated for several targets); any other
layout, or a CSV without it, reads each sample's label as its number: class folders named
``0``, ``15``, ``30`` are the targets 0, 15 and 30 (a folder whose name is not a number is an
error). Outputs are named by the target columns (``target`` for one unnamed target); they are
the run's "classes" in ``index_class_mapping.json``.

Model. The head ends in one linear unit per target followed by a frozen (non-trainable)
built-in ``keras.layers.Dense`` layer named ``target_scale`` whose kernel is diag(std) and bias
the mean of the training targets, set before training (``prepare_model``): y = z x std + mean.
The network therefore learns standardised targets while the saved model predicts in the
user's units, and loads (and exports: a plain matrix product) without cnnhub. The scale is in
the layer's weights, so every epoch's weights file carries it and resuming or rebuilding a run
needs nothing else.

Loss. mse, mae or huber, weighted so that its value is the standardised targets' loss: x 1/var
(mse, and huber with its delta at one std) or x 1/std (mae), var and std averaged over
targets.

Scoring every epoch from the training validation pass (:mod:`cnnhub.evaluation.regression`):
per-image CSV, MAE, RMSE, R2 and MAPE; best weights by BEST_WEIGHT_RULE (default mae); plots of
the best weights. Options of classification (class weights, oversampling, thresholds, label
smoothing, a class names file) are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub.errors import CnnhubError
from cnnhub.tasks.checks import check_choice, refuse_set, resolved
from cnnhub.tasks.finalize import FinalizedByHooks

SCALE_LAYER = "target_scale"
"""Name of the output layer that maps standardised outputs to the user's units."""


def target_names(options) -> list[str]:
    """The outputs' names: the TARGET_COLUMN names, else ``target`` (``target_<i>``)."""
    columns = [c.strip() for c in options.target_column.split(",") if c.strip()]
    if columns:
        return columns
    return (
        ["target"]
        if options.num_targets == 1
        else [f"target_{i}" for i in range(options.num_targets)]
    )


def target_scale(model) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per target held by ``model``'s :data:`SCALE_LAYER`."""
    import keras  # lazy: heavy import, kept off the --help path

    layer = model.get_layer(SCALE_LAYER)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    return keras.ops.convert_to_numpy(layer.bias).reshape(-1), np.diag(kernel).copy()


def _numbers(texts: Sequence[str], what: str, received: str) -> np.ndarray:
    values = []
    for text in texts:
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not np.isfinite(value):
            raise CnnhubError(
                f"Regression reads each {what} as the target number, but {text!r} is not a "
                f"finite number. Rename it (class folders: 0, 15, 30, ...) or use --task "
                f"single_label. Received: {received}"
            )
        values.append(value)
    return np.asarray(values, dtype=np.float32)


def _csv_targets(source, columns: list[str], received: str) -> np.ndarray:
    """The target columns of a csv_paths source, in its row order."""
    import pandas as pd

    frame = pd.read_csv(
        source.origin,
        dtype=str,
        keep_default_na=False,
        skip_blank_lines=True,
        encoding="utf-8-sig",
        encoding_errors="surrogateescape",
    )
    by_name = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in columns if c.lower() not in by_name]
    if missing:
        raise CnnhubError(
            f"`{source.origin}` has no column `{missing[0]}` (target_column). Name its columns "
            f"holding the targets. Received: target_column={','.join(columns)!r}, "
            f"columns={list(frame.columns)}"
        )
    if len(frame) != len(source):
        raise CnnhubError(
            f"`{source.origin}` has rows without an image path or blank rows the target columns "
            f"cannot be matched with. Remove them. Received: {received}"
        )
    picked = [frame[by_name[c.lower()]].tolist() for c in columns]
    return np.stack([_numbers(v, f"`{c}` cell", received) for c, v in zip(columns, picked)], 1)


# A MAPE this large (the error a billion times the actual value) only comes from actual values
# of 0, which MAPE divides by: scikit-learn's figure is then ~1e15, a number with no meaning.
_MEANINGLESS_MAPE = 1e9


def _figure(key: str, value: float, short: bool = False) -> str:
    """A headline figure as the console shows it: 4 decimals, or n/a for a MAPE that only
    says an actual value is 0."""
    if key == "mape" and value >= _MEANINGLESS_MAPE:
        return "n/a" if short else "n/a (an actual value is 0)"
    return f"{value:.4f}"


class Regression(FinalizedByHooks):
    """Numbers per image."""

    name = "regression"
    epoch_metric = "mae"
    higher_is_better = False
    stratified = False
    thresholded = False
    losses = ("mse", "mae", "huber")
    rules = ("mae", "rmse", "r2", "mape")
    report_columns = ("weights_name", "epoch", "mae", "rmse", "r2", "mape")

    # ------------------------------------------------------------------ config
    def check_config(self, config: dict[str, Any]) -> None:
        check_choice(config, "LOSS", self)
        check_choice(config, "BEST_WEIGHT_RULE", self)
        refuse_set(
            config,
            self,
            (
                "CLASS_WEIGHT",
                "OVERSAMPLE",
                "EVAL_THRESHOLDS",
                "LABEL_SMOOTHING",
                "CLASS_NAMES_FILE",
                "CALIBRATE",
            ),
        )
        if config["EARLY_STOPPING_MONITOR"].endswith("accuracy"):
            raise CnnhubError(
                "`early_stopping_monitor` accuracy does not exist for regression; use val_mae, "
                f"mae, val_loss or loss. Received: early_stopping_monitor="
                f"{config['EARLY_STOPPING_MONITOR']!r}, task='regression'"
            )
        columns = [c for c in config["TARGET_COLUMN"].split(",") if c.strip()]
        if columns and len(columns) != config["NUM_TARGETS"]:
            raise CnnhubError(
                f"`target_column` names {len(columns)} column(s) but `num_targets` is "
                f"{config['NUM_TARGETS']}; name one column per target. Received: target_column="
                f"{config['TARGET_COLUMN']!r}, num_targets={config['NUM_TARGETS']}"
            )

    def top_metric(self, config: Mapping[str, Any]) -> str:
        """EVAL_TOP_METRIC: val_accuracy (the packaged default) means val_mae here."""
        metric = config["EVAL_TOP_METRIC"]
        return "val_mae" if metric == "val_accuracy" else metric

    # ------------------------------------------------------------------ data
    def label_source(self, source, options, received: str):
        from cnnhub.data.sources import DataSource  # lazy: loads pandas

        names = target_names(options)
        if source.data_format == "csv_paths" and options.target_column:
            targets = _csv_targets(source, names, received)
        else:
            if len(names) != 1:
                raise CnnhubError(
                    f"Several targets (num_targets {len(names)}) come from csv_paths data with "
                    f"one --target_column per target; {source.origin} is {source.data_format} "
                    f"data. Received: {received}"
                )
            what = "class folder's name" if source.data_format == "folder" else "label"
            targets = _numbers(source.class_names, what, received)[source.labels][:, None]
        return DataSource(
            class_names=names,
            labels=np.zeros(len(source), dtype=np.int64),
            paths=source.paths,
            images=source.images,
            keys=source.keys,
            root=source.root,
            origin=source.origin,
            data_format=source.data_format,
            targets=targets,
        )

    def check_training_source(self, source, path: str) -> None:
        if len(source) and np.all(source.targets == source.targets[0]):
            raise CnnhubError(
                f"Every training target in {path} is the same ({source.targets[0].tolist()}); "
                "regression needs targets that vary. Received: -dtrain " + str(path)
            )

    def count_outputs(self, count: int) -> str:
        return f"{count} target{'s' if count != 1 else ''}"

    def label_lines(self, inspection) -> list[str]:
        lines = []
        for index, name in enumerate(inspection.class_names):
            lines.append(f"  target {name}:")
            for split in inspection.splits:
                values = split.targets[:, index]
                lines.append(
                    f"    {split.name}: {len(values)} images, min {values.min():.6g}, max "
                    f"{values.max():.6g}, mean {values.mean():.6g}, std {values.std():.6g}"
                )
        return lines

    def label_advice(self, inspection, detail: bool) -> list[str]:
        return []

    def inspection_figures(self, inspection, folder: Path) -> list[Path]:
        from cnnhub.evaluation.regression import plot_target_histogram

        path = Path(folder) / "target_histogram.png"
        plot_target_histogram(inspection, path)
        return [path]

    # ------------------------------------------------------------------ model
    def output_layers(self, x, num_outputs: int, config: Mapping[str, Any]):
        from keras import layers  # lazy: heavy import, kept off the --help path

        x = layers.Dense(num_outputs, dtype="float32", name="predictions")(x)
        scale = layers.Dense(
            num_outputs,
            kernel_initializer="identity",
            dtype="float32",
            trainable=False,  # set from the training targets, never trained
            name=SCALE_LAYER,
        )
        return scale(x)

    def prepare_model(self, model, train_targets: np.ndarray) -> None:
        targets = np.asarray(train_targets, dtype=np.float64)
        layer = model.get_layer(SCALE_LAYER)
        layer.kernel.assign(np.diag(targets.std(axis=0)).astype(np.float32))
        layer.bias.assign(targets.mean(axis=0).astype(np.float32))

    # ------------------------------------------------------------------ training
    def _std(self, model) -> float:
        return float(np.mean(target_scale(model)[1]))

    def _loss_weight(self, config: Mapping[str, Any], model) -> float:
        std = 1.0 if model is None else self._std(model)
        # mse and huber (delta = std) scale with std^2 in the user's units, mae with std
        return 1.0 / std if resolved(config, "LOSS", self) == "mae" else 1.0 / std**2

    def make_loss(self, config: Mapping[str, Any], model=None):
        import keras  # lazy: heavy import, kept off the --help path

        name = resolved(config, "LOSS", self)
        if name == "mae":
            return keras.losses.MeanAbsoluteError()
        if name == "huber":
            return keras.losses.Huber(delta=1.0 if model is None else self._std(model))
        return keras.losses.MeanSquaredError()

    def compile_arguments(self, config: Mapping[str, Any], model=None) -> dict[str, Any]:
        return {"metrics": ["mae"], "loss_weights": self._loss_weight(config, model)}

    def validation_logs(
        self, outputs: np.ndarray, targets: np.ndarray, loss_fn, model=None
    ) -> dict:
        import keras  # lazy: heavy import, kept off the --help path

        y = np.asarray(targets, dtype=np.float32).reshape(outputs.shape)
        per_image = keras.ops.convert_to_numpy(loss_fn.call(y, outputs))
        weight = self._loss_weight({"LOSS": _loss_name(loss_fn)}, model)
        return {
            "val_loss": float(np.mean(per_image)) * weight,
            "val_mae": float(np.mean(np.abs(outputs - y))),
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
        from cnnhub.evaluation.regression import write_regression_reports

        return write_regression_reports(
            folder, stem, image_ids, targets, outputs, names,
            weights_name=weights_name, epoch=epoch,
        )  # fmt: skip

    def analysis_report(self, rows):
        from cnnhub.evaluation.regression import regression_report

        return regression_report(rows)

    def choose_best(self, report, logs: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        from cnnhub.evaluation.regression import choose_best_regression, write_regression_plots
        from cnnhub.evaluation.safe_csv import read_csv_safe
        from cnnhub.evaluation.writer import report_paths
        from cnnhub.run_folder import weights_stem

        best = choose_best_regression(
            report, resolved(config, "BEST_WEIGHT_RULE", self), config["BEST_EPOCH_TOLERANCE"]
        )
        stem = weights_stem(best["weights"])
        write_regression_plots(logs, stem, read_csv_safe(report_paths(logs, stem)["predictions"]))
        return best

    def plot_by_epoch(self, report, best: Mapping[str, Any], path: Path) -> None:
        from cnnhub.evaluation.regression import plot_regression_by_epoch

        plot_regression_by_epoch(report, int(best["epoch"]), path)

    def headline_columns(self) -> tuple[str, ...]:
        return ("mae", "rmse", "r2", "mape")

    def headline_figures(self, report, weights_name: str, best: Mapping[str, Any]) -> dict:
        rows = report[report["weights_name"] == weights_name]
        if rows.empty:
            raise ValueError(
                f"The report has no rows for the weights {weights_name!r}. "
                f"Received: weights_name={weights_name!r}"
            )
        return {key: float(rows.iloc[0][key]) for key in self.headline_columns()}

    def print_table(self, report, role: str, best: Mapping[str, Any] | None, rows: int = 10):
        import pandas as pd

        table = report.sort_values(["mae", "epoch"], kind="mergesort")
        shown = table.head(rows)
        chosen = best["weights"] if best else None
        if chosen is not None and chosen not in set(shown["weights_name"]):
            shown = pd.concat([shown.head(rows - 1), table[table["weights_name"] == chosen]])
        print(f"{role.capitalize()} figures of each weights file:")
        columns = ["weights_name", "epoch", *self.headline_columns()]
        formatters = {"mape": lambda value: _figure("mape", value, short=True)}
        print(shown[columns].to_string(index=False, float_format="%.4f", formatters=formatters))

    def print_choice(self, report, best: Mapping[str, Any]) -> None:
        from cnnhub.evaluation.reporting import tolerance_text

        figures = self.headline_figures(report, best["weights"], best)
        how = "highest" if best["rule"] == "r2" else "lowest"
        print(
            f"Best weights (chosen on validation): {best['weights']} (epoch {best['epoch']}) by "
            f"{how} {best['rule']}{tolerance_text(best)}. Validation: "
            + ", ".join(f"{key} {_figure(key, value)}" for key, value in figures.items())
        )

    def evaluation_summary(self, report, role, source, images, best, scored) -> dict[str, Any]:
        from cnnhub.evaluation.reporting import last_epoch_choice, weights_summary

        return weights_summary(
            report,
            last_epoch_choice(report) if best is None else best,
            scored,
            head={"task": self.name, "role": role, "source": source, "images": int(images)},
            chosen_on_validation=best is not None,
            columns=self.headline_columns(),
            number=float,
        )

    def print_evaluation(self, report, summary: Mapping[str, Any]) -> None:
        self.print_table(report, summary["role"], summary if summary["weights"] else None)
        if summary["weights"] is not None:
            figures = ", ".join(f"{k} {_figure(k, summary[k])}" for k in self.headline_columns())
            print(
                f"{summary['role'].capitalize()} ({summary['source']}): weights "
                f"{summary['weights']} (epoch {summary['epoch']}): {figures}"
            )

    def ranking(self) -> tuple[str, bool]:
        return "mae", False

    # ------------------------------------------------------------------ use
    def check_command(self, command: str, run: str) -> None:
        if command == "errors":
            raise CnnhubError(
                "`cnnhub errors` shows confident errors of a classifier; "
                f"{run} is a regression run (its per-image errors are model_logs/<weights>.csv, "
                f"its plots beside them, its largest errors in report.html). "
                f"Received: run={run!r}, task='regression'"
            )

    def predict_threshold(self, run, spec: str, weights) -> float | None:
        if str(spec).strip().lower() != "best":
            raise CnnhubError(
                "`--threshold` applies to classification runs; a regression run predicts "
                f"values. Leave it out. Received: threshold={spec}, task='regression'"
            )
        return None

    def predictions_frame(self, paths, outputs, errors, names, top_k: int, threshold):
        import pandas as pd

        frame = pd.DataFrame({"image_path": [str(p) for p in paths]})
        values = np.asarray(outputs, dtype=np.float64).reshape(len(frame), -1)
        for index, name in enumerate(names):
            frame[name] = values[:, index]
        frame["error"] = [error or "" for error in errors]
        return frame

    def format_predictions(self, frame, top_k: int) -> str:
        from cnnhub.run_loading import printable

        shown = frame.copy()
        shown["image_path"] = [printable(p) for p in shown["image_path"]]
        return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")

    def prediction_counts(self, frame, threshold) -> str:
        unreadable = int((frame["error"] != "").sum())
        return f"{len(frame) - unreadable} predicted, {unreadable} unreadable"

    def explained_output(self, requested: int | None) -> int | None:
        return 0 if requested is None else requested

    def describe_output(self, name: str, value: float) -> str:
        return f"output: {name} = {value:.4g}"

    def export_info(self, threshold) -> dict[str, str]:
        return {
            "output": "predicted values in the training targets' units; index i is labels[i]",
            "decision": "none: the outputs are the predictions",
        }

    def export_check(
        self, fmt, reference, exported, threshold, class_names, allow_flips=False
    ) -> dict:
        return _export_check(fmt, reference, exported)


def _loss_name(loss_fn) -> str:
    """The LOSS value of a Keras loss object made by :meth:`Regression.make_loss`."""
    return {"mean_absolute_error": "mae", "huber_loss": "huber"}.get(loss_fn.name, "mse")


INT8_MAX_RELATIVE_MAE = 0.05
"""tflite-int8 regression exports: largest mean |export - keras| as a share of the spread
(standard deviation) of the Keras model's predictions on the check images."""


def _export_check(fmt: str, reference: np.ndarray, exported: np.ndarray) -> dict:
    """Float formats: max |export - keras| <= FLOAT_TOLERANCE x max(1, |keras|) (a relative
    tolerance: the values are in the user's units); tflite-int8: mean |export - keras| at most
    INT8_MAX_RELATIVE_MAE of the predictions' spread."""
    from cnnhub.export import FLOAT_TOLERANCE

    exported = np.asarray(exported, dtype=np.float64).reshape(reference.shape)
    finite = bool(np.isfinite(exported).all())
    gap = np.abs(exported - reference) if finite else np.full(reference.shape, np.inf)
    diff = float(gap.max())
    scale = max(1.0, float(np.abs(reference).max()))
    spread = float(reference.std()) or scale
    relative_mae = float(gap.mean()) / spread
    if fmt == "tflite-int8":
        limit = f"mean |y - keras| <= {INT8_MAX_RELATIVE_MAE} x std of the predictions"
        bad = not relative_mae <= INT8_MAX_RELATIVE_MAE
        problem = (
            f"the mean difference from the Keras model is {relative_mae:.3g} of the "
            f"predictions' spread, over the {INT8_MAX_RELATIVE_MAE:g} allowed"
        )
    else:
        limit = f"max_abs_diff <= {FLOAT_TOLERANCE} x max(1, |keras|)"
        bad = not diff <= FLOAT_TOLERANCE * scale
        problem = (
            f"the largest value difference from the Keras model is {diff:.3g}, over the "
            f"{FLOAT_TOLERANCE * scale:g} allowed"
        )
    return {
        "max_abs_diff": diff,
        "agreement": relative_mae,
        "agreement_name": "mae_over_std",
        "problem": problem if bad else None,
        "limit": limit,
        "check": {"limit": limit},
        "verification": {},
        "text": f"max |y - keras| = {diff:.3g}, mean |y - keras| / std = {relative_mae:.3g}",
    }
