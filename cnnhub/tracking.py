"""MLflow tracking of run folders (``--mlflow [URI]`` on ``train`` and ``tune``).

A run is logged from its finished run folder, which already holds everything: the resolved
config (as parameters), ``training.log`` (every epoch's metrics, step = epoch),
``analysis_report.csv`` (every epoch's threshold metrics at the deploy threshold, as
``deploy_<metric>``), ``best_weights.json`` (the best-weights choice: tags, and the headline
figures as ``best_<figure>`` metrics) and the artifacts (best model, reports, plots, the
per-epoch CSVs of ``model_logs/``). Logging afterwards keeps MLflow out of the training loop,
and a run logs the same whether it was trained, resumed or tuned.

The default store (``--mlflow`` alone, or ``auto``) is ``sqlite:///<save_location>/mlflow.db``
with artifacts in ``<save_location>/mlartifacts/``: MLflow 3 refuses new ``mlruns/`` file
stores, and SQLite needs no server (``mlflow ui --backend-store-uri sqlite:///...`` shows it).
MLflow is imported only here, only when tracking is asked for.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from cnnhub import run_folder
from cnnhub.errors import CnnhubError
from cnnhub.folds import FOLDS_SUMMARY
from cnnhub.run_folder import RunFolder

EXPERIMENT = "cnnhub"
AUTO = ("auto", "true")
DB_FILE = "mlflow.db"
ARTIFACTS = "mlartifacts"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
BATCH = 100  # params per log_batch call (MLflow's limit)
# Run files logged as artifacts, and the model_logs/ files (per-epoch CSVs, the best's plots).
RUN_ARTIFACTS = (
    run_folder.RUN_CONFIG,
    run_folder.RUN_INFO,
    run_folder.CLASS_MAPPING,
    run_folder.BEST_WEIGHTS,
    run_folder.ANALYSIS_REPORT,
    run_folder.TRAINING_LOG,
    run_folder.BEST_MODEL,
    run_folder.SPLIT_CSV,
    run_folder.SKIPPED_FILES,
)


def resolve_uri(value: str, save_location: str) -> str:
    """The tracking URI of the MLFLOW setting: ``auto`` is the SQLite file in the save location."""
    if value.strip().lower() in AUTO:
        return f"sqlite:///{(Path(save_location or '.') / DB_FILE).resolve()}"
    return value


def metric_name(name: str) -> str:
    """``accuracy@deploy`` -> ``accuracy_at_deploy`` (MLflow's allowed characters)."""
    return re.sub(r"[^\w\-. /]", "_", name.replace("@", "_at_"))


class Tracker:
    """Log run folders to one MLflow tracking store (``MlflowClient``, no global state)."""

    def __init__(self, uri: str, experiment: str = EXPERIMENT):
        try:
            from mlflow.tracking import MlflowClient  # lazy: only with --mlflow
        except ImportError:
            raise CnnhubError(
                "--mlflow needs MLflow: pip install 'mlflow-skinny>=3,<4' (or pip install "
                f"cnnhub[tune]). Received: mlflow={uri!r}"
            ) from None
        self.uri = uri
        try:
            self.client = MlflowClient(tracking_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = (
                found.experiment_id
                if found is not None
                else self.client.create_experiment(experiment, artifact_location=_artifacts(uri))
            )
        except Exception as exc:  # noqa: BLE001 - any failure here is the URI or the store
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise CnnhubError(
                "--mlflow must name a tracking store MLflow can open (sqlite:///path/mlflow.db, "
                f"http://host:5000, or auto); {type(exc).__name__}: {first}. "
                f"Received: mlflow={uri!r}"
            ) from None

    def start(self, name: str, params: dict[str, Any], parent: str | None = None) -> str:
        """A new RUNNING MLflow run with ``params``; nested under ``parent`` (a run id)."""
        tags = {"mlflow.runName": name}
        if parent:
            tags["mlflow.parentRunId"] = parent
        run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id
        self.log_params(run_id, params)
        return run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Log ``params`` (values as JSON text, cut to MLflow's limit), in batches."""
        from mlflow.entities import Param  # lazy: only with --mlflow

        items = [
            Param(key.lower(), _text(value)[:MAX_PARAM_CHARS]) for key, value in params.items()
        ]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(run_id, params=items[start : start + BATCH])

    def log_metrics(self, run_id: str, rows: list[tuple[str, float, int]]) -> None:
        """Log ``(name, value, step)`` rows; NaN and infinite values are left out."""
        from mlflow.entities import Metric  # lazy: only with --mlflow

        now = int(time.time() * 1000)
        metrics = [
            Metric(metric_name(name), float(value), now, int(step))
            for name, value, step in rows
            if value is not None and math.isfinite(float(value))
        ]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def log_run_folder(
        self,
        run: Path,
        parent: str | None = None,
        tags: dict[str, str] | None = None,
        status: str = "FINISHED",
    ) -> str:
        """Log one run folder as a finished MLflow run; return its run id."""
        run = Path(run)
        config = json.loads(RunFolder(run).run_config.read_text(encoding="utf-8"))
        run_id = self.start(run.name, config, parent)
        for key, value in {"cnnhub.run_folder": str(run.resolve()), **(tags or {})}.items():
            self.client.set_tag(run_id, key, value)
        self.log_metrics(run_id, run_metrics(run))
        best = _best(run)
        for key, value in best.items():
            self.client.set_tag(run_id, f"best_{key}", str(value))
        for path in _artifact_files(run):
            folder = path.parent.relative_to(run).as_posix()
            self.client.log_artifact(run_id, str(path), None if folder == "." else folder)
        self.client.set_terminated(run_id, status)
        return run_id

    def finish(self, run_id: str, metrics: dict[str, float], files: list[Path]) -> None:
        """Log final ``metrics`` and ``files`` to a run started with :meth:`start`; end it."""
        self.log_metrics(run_id, [(k, v, 0) for k, v in metrics.items()])
        for path in files:
            if path.is_file():
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED")

    def exists(self, run_id: str) -> bool:
        """Whether ``run_id`` is a run of this store."""
        try:
            self.client.get_run(run_id)
        except Exception:  # noqa: BLE001 - MLflow raises its own error for an unknown id
            return False
        return True


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _artifacts(uri: str) -> str | None:
    """The artifact folder of a local SQLite store: ``mlartifacts/`` beside the database."""
    if not uri.startswith("sqlite:///"):
        return None  # a server or database store has its own artifact root
    return (Path(uri[len("sqlite:///") :]).parent / ARTIFACTS).resolve().as_uri()


def _best(run: Path) -> dict[str, Any]:
    path = RunFolder(run).best_weights
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def run_metrics(run: Path) -> list[tuple[str, float, int]]:
    """Every metric of a run folder as ``(name, value, step)``: training.log per epoch, the
    report's rows at the deploy threshold per epoch (``deploy_*``; tasks with one threshold),
    the run's task's headline figures of the best weights (``best_*``, step = its epoch)."""
    import pandas as pd  # lazy: heavy import, kept off the --help path

    rows: list[tuple[str, float, int]] = []
    log = pd.read_csv(RunFolder(run).training_log)
    for record in log.to_dict("records"):
        epoch = int(record.pop("epoch"))
        rows += [(name, value, epoch) for name, value in record.items()]
    best = _best(run)
    report_path = RunFolder(run).analysis_report
    if not best or not report_path.is_file():
        return rows
    from cnnhub.evaluation.metrics import OVERALL_COLUMNS  # lazy: the evaluation stack
    from cnnhub.tasks import get_task

    task = get_task(json.loads(RunFolder(run).run_config.read_text(encoding="utf-8")))
    report = pd.read_csv(report_path)
    if task.thresholded:  # one deploy threshold: the report's rows at it, per epoch
        threshold = float(best["threshold"])
        at_deploy = report[(report["threshold"] - threshold).abs() < 1e-9]
        for record in at_deploy.to_dict("records"):
            epoch = int(record["epoch"])
            # every figure of the run's <weights>-thresholds.csv rows but the threshold itself
            rows += [
                (f"deploy_{m}", record[m], epoch)
                for m in OVERALL_COLUMNS
                if m != "threshold" and m in record
            ]
    figures = task.headline_figures(report, best["weights"], best)
    rows += [(f"best_{name}", value, int(best["epoch"])) for name, value in figures.items()]
    return rows


def _artifact_files(run: Path) -> list[Path]:
    files = [run / name for name in RUN_ARTIFACTS if (run / name).is_file()]
    files += sorted(run.glob("*.png"))
    logs = RunFolder(run).model_logs
    files += sorted(logs.glob("*.csv")) + sorted(logs.glob("*.png"))
    return files


def log_runs(tracker: Tracker, runs: list[Path]) -> list[str]:
    """Log each run folder (a cross-validation parent: its folds, nested under it); return
    the top-level MLflow run ids."""
    ids = []
    for run in runs:
        folds = sorted((run / "model_repository").glob("fold_*"))
        if RunFolder(run).training_log.is_file() or not folds:
            ids.append(tracker.log_run_folder(run))
            continue
        parent = tracker.start(run.name, {"folds": len(folds)})
        for fold in folds:
            tracker.log_run_folder(fold, parent=parent)
        tracker.finish(parent, {}, [run / FOLDS_SUMMARY])
        ids.append(parent)
    print(f"MLflow: logged {len(runs)} run(s) to {tracker.uri}")
    return ids
