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
    """Work around Keras 3's first-batch build under MultiWorkerMirroredStrategy.

    Before training, Keras's TensorFlow trainer takes one batch and reduces the whole (x, y)
    structure with ``strategy.reduce`` only to learn its shapes; the multi-worker strategy
    cannot reduce a structure and fails. The local replica's values have the same shapes.
    """
    import tensorflow as tf  # lazy: heavy import, kept off the --help path

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return

    def build_from_local_batch(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = tf.nest.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0], batch
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build_from_local_batch
    _patch_scalar_reduction()


def _patch_scalar_reduction() -> None:
    """Keras 3's step reduces each metric with ``strategy.reduce("MEAN", v, axis=0)`` under a
    multi-worker strategy, which fails for scalars (there is no axis 0); reduce scalars over
    replicas instead (``axis=None``), as the single-host path does."""
    from keras.src.backend.tensorflow import trainer  # lazy: heavy import, kept off the --help path

    if getattr(trainer.reduce_per_replica, "cnnhub_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        import tensorflow as tf  # lazy: heavy import, kept off the --help path

        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return original(values, strategy, reduction)

        def reduce(value):
            if reduction in ("auto", "mean") and value.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    reduce_per_replica.cnnhub_patched = True
    trainer.reduce_per_replica = reduce_per_replica
