"""MLflow tracking of a run folder (``--mlflow``), read back with MLflow's own client and
checked against the run's files read independently with pandas and json."""

from __future__ import annotations

import ast
import json

import pandas as pd
import pytest
from trained_runs import error_lines, shared_tiny_run

from cnnhub import settings
from cnnhub.commands.train import train_main
from conftest import ROOT


@pytest.fixture(scope="module")
def logged(tiny_data, tmp_path_factory):
    """The shared tiny run logged to a fresh SQLite store: (run folder, client, MLflow run)."""
    from mlflow.tracking import MlflowClient

    from cnnhub import tracking

    run = shared_tiny_run(tiny_data, tmp_path_factory)
    store = tmp_path_factory.mktemp("mlflow")
    uri = tracking.resolve_uri("auto", str(store))
    assert uri == f"sqlite:///{store.resolve() / 'mlflow.db'}"
    [run_id] = tracking.log_runs(tracking.Tracker(uri), [run])
    client = MlflowClient(tracking_uri=uri)
    return run, client, client.get_run(run_id), store


def history(client, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def test_params_are_the_resolved_config(logged):
    run, _, mlflow_run, _ = logged
    config = json.loads((run / "run_config.json").read_text(encoding="utf-8"))
    params = mlflow_run.data.params
    assert set(params) == {k.lower() for k in config}
    for key, value in config.items():
        expected = value if isinstance(value, str) else json.dumps(value)
        assert params[key.lower()] == expected
    assert mlflow_run.info.run_name == run.name
    assert mlflow_run.info.status == "FINISHED"


def test_every_epoch_metric_is_logged(logged):
    run, client, mlflow_run, _ = logged
    log = pd.read_csv(run / "training.log")
    run_id = mlflow_run.info.run_id
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"):
        assert history(client, run_id, column) == pytest.approx(
            dict(zip(log["epoch"], log[column]))
        )


def test_threshold_metrics_at_the_deploy_threshold_and_the_best_choice(logged):
    run, client, mlflow_run, _ = logged
    best = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))
    report = pd.read_csv(run / "analysis_report.csv")
    rows = report[report["threshold"].round(6) == round(best["threshold"], 6)]
    run_id = mlflow_run.info.run_id
    for metric in ("coverage", "precision_micro", "f1_macro"):
        assert history(client, run_id, f"deploy_{metric}") == pytest.approx(
            dict(zip(rows["epoch"], rows[metric]))
        )
    tags = mlflow_run.data.tags
    assert tags["best_weights"] == best["weights"] and tags["best_epoch"] == str(best["epoch"])
    assert float(tags["best_threshold"]) == best["threshold"]
    at_best = rows[rows["weights_name"] == best["weights"]].iloc[0]
    assert mlflow_run.data.metrics["best_f1_macro_at_deploy"] == pytest.approx(at_best["f1_macro"])


def test_artifacts_hold_the_model_reports_and_per_epoch_csvs(logged):
    run, client, mlflow_run, store = logged
    run_id = mlflow_run.info.run_id
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"best_model.keras", "analysis_report.csv", "training.log", "run_config.json"} <= top
    logs = {a.path for a in client.list_artifacts(run_id, "model_logs")}
    assert {f"model_logs/{p.name}" for p in (run / "model_logs").glob("*.csv")} == {
        p for p in logs if p.endswith(".csv")
    }
    # A local store keeps its artifacts beside the database, not in the current folder.
    assert mlflow_run.info.artifact_uri.startswith((store / "mlartifacts").resolve().as_uri())
    assert (store / "mlartifacts").is_dir()


def test_mlflow_flag_alone_means_the_local_store():
    config, _ = settings.resolve(["--mlflow"])
    assert config["MLFLOW"] == "auto"
    config, _ = settings.resolve(["--mlflow", "sqlite:///x.db"])
    assert config["MLFLOW"] == "sqlite:///x.db"


def test_bad_tracking_store_fails_before_training(tiny_data, tmp_path, capsys):
    argv = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv += ["-sl", str(tmp_path), "--mlflow", "nosuchstore://x", "-e", "1"]
    assert train_main(argv) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "--mlflow must name a tracking store" in lines[0]
    assert not (tmp_path / "model_repository").exists()


def test_mlflow_and_optuna_are_imported_only_inside_functions():
    """No cnnhub module imports MLflow or Optuna at its top level, so only --mlflow and the
    tune command load them (a plain `cnnhub train` never does)."""
    found = []
    for path in sorted((ROOT / "cnnhub").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("mlflow", "optuna")]
    assert found == []
    # ... and the training command reaches cnnhub.tracking only when MLFLOW is set.
    source = (ROOT / "cnnhub" / "commands" / "train.py").read_text(encoding="utf-8")
    top = ast.parse(source).body
    assert not any(
        isinstance(n, ast.ImportFrom) and "tracking" in [a.name for a in n.names] for n in top
    )
