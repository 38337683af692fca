"""Where training runs: distribution strategy, logical CPU devices, mixed precision.

``setup_devices`` must run before TensorFlow touches a device (before any model is built): it
splits the CPU into logical devices when asked (to exercise multi-device code without GPUs),
sets the mixed-precision policy, and returns the ``tf.distribute`` strategy to build and train
under. Batch sizes are global: each replica gets BATCH_SIZE / replicas.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cnnhub.errors import CnnhubError
from cnnhub.keras_hooks import build_from_local_batch, patch_scalar_reduction


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (or a parameter server)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        config = json.loads(raw)
        task = config.get("task", {})
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError):
        raise CnnhubError(
            "TF_CONFIG is not valid JSON with a task type and index; see docs/scaling.md. "
            f"Received: TF_CONFIG={raw!r}"
        ) from None
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in config.get("cluster", {})


_MULTI_WORKER = None  # one per process: collective ops are configured once, at start-up


def setup_devices(config: dict[str, Any]):
    """Configure devices and precision; return the distribution strategy for ``config``."""
    import tensorflow as tf  # lazy: heavy import, kept off the --help path

    global _MULTI_WORKER
    kind = config["STRATEGY"]
    if kind == "multi_worker" or (kind == "auto" and "TF_CONFIG" in os.environ):
        if "TF_CONFIG" not in os.environ:
            raise CnnhubError(
                "--strategy multi_worker needs TF_CONFIG describing the cluster and this "
                "worker's task (see docs/scaling.md). Received: TF_CONFIG unset"
            )
        # Created before anything else touches the TensorFlow runtime, as it must be.
        _MULTI_WORKER = _MULTI_WORKER or tf.distribute.MultiWorkerMirroredStrategy()
        _set_precision(config, tf.config.list_logical_devices("GPU"))
        return _MULTI_WORKER
    if config["LOGICAL_CPUS"] > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * config["LOGICAL_CPUS"]
            )
        except RuntimeError:  # the runtime already started in this process: keep its devices
            pass
    gpus = tf.config.list_logical_devices("GPU")
    _set_precision(config, gpus)
    if kind == "mirrored" or (kind == "auto" and (len(gpus) > 1 or config["LOGICAL_CPUS"] > 1)):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    # TensorFlow's default strategy, not OneDeviceStrategy: no distributed-training path for one
    # device (benchmarks/bench_training_loop.py). It puts ops on the first GPU if any, else the CPU.
    return tf.distribute.get_strategy()


def _set_precision(config: dict[str, Any], gpus: list) -> None:
    import keras  # lazy: heavy import, kept off the --help path

    if config["MIXED_PRECISION"]:
        keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "mixed_bfloat16")
    else:
        keras.mixed_precision.set_global_policy("float32")


def scaled_learning_rate(config: dict[str, Any], replicas: int) -> float:
    """LEARNING_RATE, times the number of replicas with SCALE_LR (linear scaling rule)."""
    return config["LEARNING_RATE"] * (replicas if config["SCALE_LR"] else 1)


def adapt_model_to_strategy(model, strategy) -> None:
    """Work around two limits of Keras 3's TensorFlow trainer under MultiWorkerMirroredStrategy
    (the first-batch build and the reduction of scalar metrics; see :mod:`cnnhub.keras_hooks`).
    """
    import tensorflow as tf  # lazy: heavy import, kept off the --help path

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    build_from_local_batch(model, strategy)
    patch_scalar_reduction()
