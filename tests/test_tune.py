"""``cnnhub tune``: the search space checked before any trial, trials as ordinary run folders,
pruning, continuing a study whose process died, results, MLflow nesting, two processes sharing
one storage.

One tiny study (3 trials of a custom CNN at 16 px, 2 epochs, freeze_all so the trials share one
feature cache, logged to MLflow) serves most tests; pruning is forced on trial 1 by a test
pruner, so its outcome does not depend on the accuracies.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from subprocess import STDOUT

import numpy as np
import optuna
import pandas as pd
import pytest

from cnnhub import settings
from cnnhub.cli import main
from cnnhub.tuning import space as search_space
from cnnhub.tuning import study as tuning_study
from conftest import ROOT, cli_env

SPACE = (
    "learning_rate: {low: 1.0e-3, high: 3.0e-2, log: true}\n"
    "num_nodes: [[8], [16, 8]]\n"
    "num_dropouts: {low: 0.0, high: 0.3}\n"
)


def base_flags(tiny_data, save: Path) -> list[str]:
    return [
        "-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"]), "-sl", str(save),
        "-m", "custom", "--custom_conv_blocks", "c8-mp2", "-height", "16", "-width", "16",
        "-e", "2", "-b", "16", "-tt", "freeze_all", "--seed", "3",
        "--aug_horizontal_flip", "false", "--aug_zoom", "0", "--aug_translation", "0",
    ]  # fmt: skip


class PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 at its first report, never another trial."""

    def prune(self, study, trial) -> bool:
        return trial.number == 1


@pytest.fixture(scope="module")
def study(tiny_data, tmp_path_factory):
    """The tiny study: (save folder, study folder, stdout of the command)."""
    save = tmp_path_factory.mktemp("tune")
    space = save / "space.yaml"
    space.write_text(SPACE, encoding="utf-8")
    original = tuning_study._sampler_and_pruner

    def forced(config, pruner, started):
        return original(config, pruner, started)[0], PruneTrialOne()

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tuning_study, "_sampler_and_pruner", forced)
        patch.setattr(sys, "stdout", out)
        argv = ["tune", "--space", str(space), "--trials", "3", "--study", "s", "--mlflow"]
        code = main(argv + base_flags(tiny_data, save))
    assert code == 0, out.getvalue()[-3000:]
    return save, save / "model_repository" / "s", out.getvalue()


def trials_of(folder: Path):
    return optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")


def test_each_trial_is_a_run_folder_and_study_csv_lists_it(study):
    save, folder, _ = study
    table = pd.read_csv(folder / "study.csv")
    assert list(table["trial"]) == [0, 1, 2]
    assert list(table["state"]) == ["COMPLETE", "PRUNED", "COMPLETE"]
    for row in table.itertuples():
        run = folder / f"trial_{row.trial}"
        assert row.run == str(run)
        log = pd.read_csv(run / "training.log")
        assert row.best_val_accuracy == pytest.approx(log["val_accuracy"].max())
        config = json.loads((run / "run_config.json").read_text(encoding="utf-8"))
        assert config["LEARNING_RATE"] == pytest.approx(row.param_learning_rate)
        assert config["NUM_NODES"] == json.loads(row.param_num_nodes)
        assert config["NUM_DROPOUTS"] == [pytest.approx(row.param_num_dropouts)] * len(
            config["NUM_NODES"]
        )
    stored = trials_of(folder).get_trials()
    assert [t.state.name for t in stored] == list(table["state"])


def test_pruned_trial_stops_after_its_epoch_and_stays_a_valid_run(study):
    from cnnhub.compare import leaderboard_row

    _, folder, out = study
    run = folder / "trial_1"
    assert len(pd.read_csv(run / "training.log")) == 1  # of 2 epochs
    assert "Trial 1 pruned after epoch 1." in out
    row = leaderboard_row(run)  # what `cnnhub compare` reads: every file there and valid
    assert row["epochs"] == 1 and row["best_epoch"] == 1
    assert (run / "best_model.keras").is_file()
    assert trials_of(folder).trials[1].last_step == 1


def test_frozen_backbone_trials_share_one_feature_cache(study):
    out = study[2]
    assert out.count("Feature cache: keeping this backbone's features.") == 1
    assert out.count("Feature cache: reusing this backbone's features.") == 2


def test_best_config_repeats_the_best_trial(study):
    _, folder, out = study
    best = trials_of(folder).best_trial
    text = (folder / "best_config.yaml").read_text(encoding="utf-8")
    assert f"Best trial {best.number} " in text
    config, _ = settings.resolve(["-c", str(folder / "best_config.yaml")])
    saved = json.loads((folder / f"trial_{best.number}" / "run_config.json").read_text())
    assert config["ITERATION_NAME"] == ""  # a new run folder, numbered automatically
    assert {k: v for k, v in config.items() if k != "ITERATION_NAME"} == {
        k: v for k, v in saved.items() if k != "ITERATION_NAME"
    }
    assert (folder / "optimization_history.png").stat().st_size > 1000
    assert (folder / "param_importances.png").stat().st_size > 1000
    assert "Tuning overhead:" in out


def test_mlflow_nests_every_trial_under_the_study_run(study):
    from mlflow.tracking import MlflowClient

    save, folder, _ = study
    client = MlflowClient(tracking_uri=f"sqlite:///{save / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("cnnhub").experiment_id])
    parents = [r for r in runs if r.info.run_name == "s"]
    assert len(parents) == 1
    parent = parents[0]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId")}
    assert set(children) == {"trial_0", "trial_1", "trial_2"}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children.values())
    assert children["trial_1"].data.tags["optuna.state"] == "PRUNED"
    best = trials_of(folder).best_trial
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(best.value)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"study.csv", "best_config.yaml", "optimization_history.png"} <= artifacts


def test_dead_process_trial_is_failed_and_the_study_continues(study, tiny_data):
    save, folder, _ = study
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stored = trials_of(folder)
    orphan = stored.ask()  # a trial its (dead) process never finished
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", gone.pid)
    space = save / "space.yaml"
    argv = ["tune", "--space", str(space), "--trials", "4", "--study", "s", "--pruner", "none"]
    assert main(argv + base_flags(tiny_data, save)) == 0
    states = {t.number: t.state.name for t in trials_of(folder).get_trials()}
    assert states == {0: "COMPLETE", 1: "PRUNED", 2: "COMPLETE", 3: "FAIL", 4: "COMPLETE"}
    table = pd.read_csv(folder / "study.csv", keep_default_na=False)
    assert f"process {gone.pid}" in table.loc[table["trial"] == 3, "error"].item()
    assert (folder / "trial_4" / "best_weights.json").is_file()
    assert not (folder / "trial_3").exists()


@pytest.mark.parametrize(
    "space, message",
    [
        ("learning_rat: {low: 0.001, high: 0.1}", "Unknown config key `learning_rat`"),
        ("learning_rate: {low: 0.001, high: 20}", "`learning_rate` must be a number in (0, 10]"),
        ("learning_rate: {low: 0.1, high: 0.01}", "low must be below high"),
        ("learning_rate: {low: 0, high: 0.1, log: true}", "a log range needs low > 0"),
        ("batch_size: {low: 8.5, high: 64}", "takes whole numbers"),
        ("optimizer: [adam, nadam]", "`optimizer` must be one of sgd, adam, adamw, rmsprop"),
        ("optimizer: {low: 1, high: 2}", "a range needs a numeric key"),
        ("model_name: [custom, resnet5O]", "Unknown model `resnet5O`"),
        ("img_size: [16, 0]", "`img_height` must be a number in [1, 8192]"),
        ("data_dir_train: [a, b]", "`data_dir_train` in search space"),
        ("learning_rate: 0.01", "must be a list of choices or a range"),
        ("learning_rate: {low: 0.001, high: 0.1, scale: log}", "not scale"),
        ("epochs: []", "lists no choices"),
        ("", "is empty"),
    ],
)
def test_bad_space_fails_in_one_line_before_any_trial(space, message, tmp_path, capsys, tiny_data):
    path = tmp_path / "space.yaml"
    path.write_text(space, encoding="utf-8")
    code = main(["tune", "--space", str(path), "--trials", "2"] + base_flags(tiny_data, tmp_path))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cnnhub tune: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "model_repository").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--storage", "nosuchdb://x/y"], "--storage must be a database URL"),
        (["--timeout", "2x"], "`timeout` must be a positive duration"),
        (["--metric", "val_f1"], "--metric must be auto, val_accuracy or val_loss"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["--study", "../up"], "--study must be a plain folder name"),
        (["--folds", "3"], "folds) is not supported"),
        (["--mlflow", "nosuchstore://x"], "--mlflow must name a tracking store"),
    ],
)
def test_bad_tune_flags_fail_in_one_line(flags, message, tmp_path, capsys, tiny_data):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE, encoding="utf-8")
    argv = ["tune", "--space", str(path)] + flags + base_flags(tiny_data, tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "model_repository").exists()


def test_space_values_apply_like_config_keys():
    base, _ = settings.resolve(["--num_nodes", "64", "--num_dropouts", "0.2"])
    config = search_space.apply(base, {"img_size": 24, "num_nodes": [32, 16]})
    assert (config["IMG_HEIGHT"], config["IMG_WIDTH"]) == (24, 24)
    assert config["NUM_DROPOUTS"] == [0.2, 0.2]  # one rate follows the searched layers
    config = search_space.apply(base, {"num_nodes": [32, 16], "num_dropouts": 0.1})
    assert config["NUM_DROPOUTS"] == [0.1, 0.1]


def test_two_processes_share_one_study_without_collisions(tiny_data, tmp_path):
    """Two `tune` processes on one storage: every trial number once, each its own run folder."""
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 3.0e-2, log: true}\n", encoding="utf-8")
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    argv = [sys.executable, "-m", "cnnhub", "tune", "--space", str(space), "--trials", "3"]
    argv += ["--study", "duo", "--storage", storage, "--pruner", "none", "-post", "false"]
    argv += base_flags(tiny_data, tmp_path)
    argv[argv.index("-e") + 1] = "1"
    workers = [
        subprocess.Popen(argv, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=STDOUT)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=400)[0].decode(errors="replace") for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    trials = optuna.load_study(study_name="duo", storage=storage).get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 3
    assert all(t.state.name == "COMPLETE" for t in trials)
    folder = tmp_path / "model_repository" / "duo"
    for trial in trials:
        run = folder / f"trial_{trial.number}"
        config = json.loads((run / "run_config.json").read_text(encoding="utf-8"))
        assert config["LEARNING_RATE"] == pytest.approx(trial.params["learning_rate"])
        assert trial.user_attrs["run"] == str(run)
    assert {t.user_attrs["pid"] for t in trials} <= {w.pid for w in workers}
    assert sorted(p.name for p in folder.glob("trial_*")) == sorted(f"trial_{n}" for n in numbers)
    assert np.all(pd.read_csv(folder / "study.csv")["state"].isin(["COMPLETE"]))
