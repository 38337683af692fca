"""Every use of Keras's private internals, in one place, each checked before it is used.

Keras 3's public API cannot do these things, so cnnhub reaches into ``keras.src``:

- ``own_variables``: a layer's own variables in the order Keras saves them
  (``Layer._trainable_variables + Layer._non_trainable_variables``, as
  ``Layer.save_own_variables`` writes them), to name the layer a weights file does not fit;
- ``flatten_layers``: every layer nested in a model (``Layer._flatten_layers``), falling back
  to a walk of the public ``layers`` lists when it is missing;
- ``keras_file_utils``: the module whose ``get_file`` ``keras.applications`` calls, recorded to
  learn the ImageNet download without making it, and called to make it;
- ``keras_home``: the folder Keras fixed for its cache when it was imported;
- ``build_from_local_batch`` and ``patch_scalar_reduction``: two work-arounds for Keras's
  TensorFlow trainer under ``MultiWorkerMirroredStrategy`` (see :mod:`cnnhub.devices`).

Each hook was checked against the Keras versions in ``CHECKED_KERAS`` (tests/test_keras_hooks.py
exercises every one of them; requirements.txt pins Keras to that range). On another version a
hook whose private name is still there is used as is (the tests above then show whether it
still behaves); one whose name is gone fails with one line naming the hook, the Keras version
and the range that works, or falls back to public API where one exists. Keras is imported
lazily, so that importing this module stays cheap.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

from cnnhub.errors import CnnhubError

CHECKED_KERAS = ("3.10", "3.15")
"""Oldest and newest Keras minor versions every hook below was checked against."""


def keras_version() -> str:
    """The installed Keras's version, read without importing Keras."""
    try:
        return metadata.version("keras")
    except metadata.PackageNotFoundError:
        return "unknown"


def _minor(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def is_checked_version(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed Keras) is in ``CHECKED_KERAS``'s range."""
    low, high = (_minor(v) for v in CHECKED_KERAS)
    return low <= _minor(version or keras_version()) <= high


def unsupported(hook: str, purpose: str) -> CnnhubError:
    """The one-line error for a private Keras name that this Keras lacks."""
    low, high = CHECKED_KERAS
    return CnnhubError(
        f"{purpose} needs Keras's private `{hook}`, which this Keras does not have (cnnhub was "
        f"checked with Keras {low} to {high}). Install a checked version: "
        f'pip install "keras>={low},<{_next_minor(high)}". Received: keras={keras_version()}'
    )


def _next_minor(version: str) -> str:
    major, minor = _minor(version)
    return f"{major}.{minor + 1}"


def _private_module(name: str, purpose: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise unsupported(name, purpose) from None


# ---------------------------------------------------------------- layers and variables


def own_variables(layer) -> list:
    """``layer``'s own variables (not its sublayers'), in the order Keras saves them."""
    try:
        return [*layer._trainable_variables, *layer._non_trainable_variables]
    except AttributeError:
        raise unsupported(
            "Layer._trainable_variables", "Matching a weights file to the model"
        ) from None


def flatten_layers(model) -> list:
    """Every layer inside ``model`` (nested models' layers included), ``model`` excluded."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False))
    found = []  # public fallback: layers reachable through the `layers` lists
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(flatten_layers(layer))
    return found


# ---------------------------------------------------------------- downloads


def keras_file_utils():
    """``keras.src.utils.file_utils``: its ``get_file`` is what ``keras.applications`` calls,
    so replacing that attribute intercepts their downloads (public ``keras.utils.get_file`` is
    the same function, bound elsewhere)."""
    module = _private_module("keras.src.utils.file_utils", "Fetching ImageNet weights")
    if not hasattr(module, "get_file"):
        raise unsupported("keras.src.utils.file_utils.get_file", "Fetching ImageNet weights")
    return module


def keras_home() -> str | None:
    """The cache folder Keras fixed when it was imported, or None (Keras not imported yet, or
    a Keras without ``keras.src.backend.config.keras_home``: the caller applies Keras's rule)."""
    config = sys.modules.get("keras.src.backend.config")
    home = getattr(config, "keras_home", None)
    return home() if home is not None else None


# ---------------------------------------------------------------- multi-worker training

_MULTI_WORKER = "Training with --strategy multi_worker"


def build_from_local_batch(model, strategy) -> None:
    """Make ``model`` learn its input shapes from the local replica's first batch.

    Keras's TensorFlow trainer builds the model before training from one batch, reduced with
    ``strategy.reduce`` only to learn its shapes (``Trainer._maybe_symbolic_build``); the
    multi-worker strategy cannot reduce a structure and fails. The local values have the same
    shapes, so the build uses them (``Trainer._symbolic_build``).
    """
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    if not hasattr(model, "_maybe_symbolic_build") or not hasattr(model, "_symbolic_build"):
        raise unsupported("Trainer._maybe_symbolic_build", _MULTI_WORKER)

    def build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = tf.nest.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0], batch
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build


def patch_scalar_reduction() -> None:
    """Keras's step reduces each metric with ``strategy.reduce("MEAN", v, axis=0)`` under a
    multi-worker strategy, which fails for scalars (there is no axis 0); reduce scalars over
    replicas instead (``axis=None``), as the single-host path does. Idempotent."""
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    where = "keras.src.backend.tensorflow.trainer"
    trainer = _private_module(where, _MULTI_WORKER)
    original = getattr(trainer, "reduce_per_replica", None)
    if original is None:
        raise unsupported(f"{where}.reduce_per_replica", _MULTI_WORKER)
    if getattr(original, "cnnhub_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return original(values, strategy, reduction)

        def reduce(value):
            if reduction in ("auto", "mean") and value.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    reduce_per_replica.cnnhub_patched = True
    trainer.reduce_per_replica = reduce_per_replica
