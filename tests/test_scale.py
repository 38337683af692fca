"""Speed and scale features that change how training runs, not what it computes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cnnhub.commands.train import train_main
from conftest import ROOT, cli_env, run_cli

NO_AUGMENTATION = ["--aug_horizontal_flip", "false", "--aug_zoom", "0", "--aug_translation", "0"]


def test_feature_cache_trains_the_same_head(tiny_data, tmp_path):
    """freeze_all with the feature cache gives the same epochs as the full pipeline."""
    args = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    args += ["-sl", str(tmp_path), "-e", "3", "-b", "8", "-height", "32", "-width", "32"]
    args += ["-tt", "freeze_all", "--custom_conv_blocks", "c8k3-bn-mp2,c16k3-bn-mp2"]
    args += ["--num_nodes", "16", "--num_dropouts", "0", "-lr", "0.01", *NO_AUGMENTATION]
    assert train_main(args + ["--feature_cache", "true", "--run_name", "cached"]) == 0
    assert train_main(args + ["--feature_cache", "false", "--run_name", "full"]) == 0
    repo = tmp_path / "model_repository"
    cached = pd.read_csv(repo / "cached" / "training.log")
    full = pd.read_csv(repo / "full" / "training.log")
    columns = ["loss", "accuracy", "val_loss", "val_accuracy"]
    np.testing.assert_allclose(cached[columns], full[columns], atol=1e-4)
    assert cached["loss"].iloc[-1] < cached["loss"].iloc[0]  # the head learned
    # Saved weights are the full classifier's: the same files, the same per-image predictions.
    for weights in sorted((repo / "full" / "model_logs").glob("*.weights.h5")):
        stem = weights.name[: -len(".weights.h5")]
        a = pd.read_csv(repo / "cached" / "model_logs" / f"{stem}.csv")
        b = pd.read_csv(repo / "full" / "model_logs" / f"{stem}.csv")
        p_columns = [c for c in a.columns if c.startswith("p_")]
        np.testing.assert_allclose(a[p_columns], b[p_columns], atol=1e-4)


def test_mirrored_strategy_over_two_logical_cpus(tiny_data, tmp_path):
    result = run_cli(
        "-dtrain",
        str(tiny_data["train"]),
        "-dvalid",
        str(tiny_data["valid"]),
        "-e",
        "2",
        "-b",
        "8",
        "-height",
        "32",
        "-width",
        "32",
        "--custom_conv_blocks",
        "c8k3-mp2",
        "--logical_cpus",
        "2",
        "--strategy",
        "mirrored",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Training on 2 replicas; global batch 8" in result.stdout
    run = tmp_path / "model_repository" / "custom"
    log = pd.read_csv(run / "training.log")
    assert log["epoch"].tolist() == [1, 2]
    assert (run / "best_weights.json").is_file() and (run / "final_model.keras").is_file()
    # val_loss is the plain mean over images, not divided by the number of replicas.
    assert log["val_loss"].iloc[0] > 0.5


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_together_and_only_the_chief_writes(tiny_data, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    args = [
        sys.executable,
        str(ROOT / "run_training.py"),
        "-dtrain",
        str(tiny_data["train"]),
        "-dvalid",
        str(tiny_data["valid"]),
        "-sl",
        str(tmp_path),
        "-e",
        "1",
        "-b",
        "8",
        "-height",
        "32",
        "-width",
        "32",
        "--custom_conv_blocks",
        "c8k3-mp2",
        "--strategy",
        "multi_worker",
        "--run_name",
        "together",
    ]
    workers = []
    for index in range(2):
        env = cli_env()
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        workers.append(
            subprocess.Popen(
                args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = [w.communicate(timeout=400) for w in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-2000:]
    runs = [p.name for p in (tmp_path / "model_repository").iterdir() if not p.name.startswith(".")]
    assert runs == ["together"]
    assert "Run folder:" in outputs[0][0] and "Run folder:" not in outputs[1][0]
    assert pd.read_csv(tmp_path / "model_repository" / "together" / "training.log")[
        "epoch"
    ].tolist() == [1]
    assert not [
        p
        for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("cnnhub-worker-*")
        if p.stat().st_mtime > (tmp_path.stat().st_mtime - 1)
    ]


def test_one_device_trains_under_the_default_strategy():
    """One device trains with no distribution wrapper."""
    import tensorflow as tf

    from cnnhub import settings
    from cnnhub.devices import setup_devices

    for kind in ("auto", "one_device"):
        config = settings.resolve(["--strategy", kind])[0]
        strategy = setup_devices(config)
        assert strategy is tf.distribute.get_strategy()  # outside any scope: the default one
        assert not isinstance(strategy, tf.distribute.OneDeviceStrategy)
        assert strategy.num_replicas_in_sync == 1
