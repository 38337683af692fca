"""cnnhub.keras_hooks: every private Keras name cnnhub uses works on the installed Keras, agrees
with what Keras itself does, and a Keras without it fails in one line (or falls back)."""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import keras
import pytest
import tensorflow as tf

from cnnhub import keras_hooks
from cnnhub.errors import CnnhubError
from cnnhub.keras_hooks import (
    CHECKED_KERAS,
    flatten_layers,
    is_checked_version,
    keras_file_utils,
    keras_home,
    own_variables,
    patch_scalar_reduction,
)

ROOT = Path(__file__).resolve().parents[1]


def test_installed_keras_is_a_checked_version():
    assert is_checked_version(keras.__version__)
    assert keras_hooks.keras_version() == keras.__version__


@pytest.mark.parametrize("file", ["requirements.txt", "requirements-gpu.txt", "pyproject.toml"])
def test_requirements_pin_keras_to_the_checked_range(file):
    low, high = CHECKED_KERAS
    major, minor = (int(p) for p in high.split("."))
    pins = re.findall(r"keras[<>=!~][^\s\"#]*", (ROOT / file).read_text())
    assert pins == [f"keras>={low},<{major}.{minor + 1}"]


@pytest.mark.parametrize(
    ("version", "checked"),
    [("3.10.0", True), ("3.15.1", True), ("3.13.2.dev0", True), ("3.9.2", False), ("3.16.0", False),
     ("4.0.0", False)],
)  # fmt: skip
def test_checked_range(version, checked):
    assert is_checked_version(version) is checked


def test_own_variables_are_in_the_order_keras_saves_them():
    layer = keras.layers.BatchNormalization()
    layer.build((None, 3))
    store: dict = {}
    layer.save_own_variables(store)  # Keras's own writer of the weights file entries
    assert [v.path for v in own_variables(layer)] == [store[k].path for k in sorted(store)]
    assert len(store) == 4  # gamma, beta (trainable), moving mean and variance (not)


def test_flatten_layers_finds_nested_layers_like_the_public_walk():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])
    names = {layer.name for layer in flatten_layers(outer)}
    assert {inner.name, *(layer.name for layer in inner.layers), outer.layers[-1].name} <= names
    assert outer.name not in names


def test_flatten_layers_falls_back_to_public_layers_lists():
    leaf = types.SimpleNamespace(name="leaf")
    nested = types.SimpleNamespace(name="nested", layers=[leaf])
    model = types.SimpleNamespace(name="model", layers=[nested])  # no _flatten_layers
    assert [layer.name for layer in flatten_layers(model)] == ["nested", "leaf"]


def test_applications_download_through_the_hooked_module():
    from keras.src.applications import mobilenet_v2

    assert mobilenet_v2.file_utils is keras_file_utils()
    assert keras_file_utils().get_file is keras.utils.get_file


def test_keras_home_is_the_one_keras_uses():
    from keras.src.backend import config

    assert keras_home() == config.keras_home()


def test_scalar_reduction_patch_is_installed_once(monkeypatch):
    from keras.src.backend.tensorflow import trainer

    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    patch_scalar_reduction()
    patched = trainer.reduce_per_replica
    assert patched.cnnhub_patched
    patch_scalar_reduction()
    assert trainer.reduce_per_replica is patched
    # under the default strategy the original reduction runs unchanged
    value = tf.constant([1.0, 2.0])
    assert patched(value, tf.distribute.get_strategy(), "auto").numpy().tolist() == [1.0, 2.0]


def _assert_one_line_guard(message: str, hook: str) -> None:
    low, high = CHECKED_KERAS
    assert "\n" not in message and f"`{hook}`" in message
    assert f"checked with Keras {low} to {high}" in message
    assert re.search(r'pip install "keras>=[\d.]+,<[\d.]+"', message)
    assert message.endswith(f"Received: keras={keras.__version__}")


def test_a_keras_without_the_layer_variables_fails_in_one_line():
    with pytest.raises(CnnhubError) as error:
        own_variables(types.SimpleNamespace(name="dense"))
    _assert_one_line_guard(str(error.value), "Layer._trainable_variables")


def test_a_keras_without_the_trainer_module_fails_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras.src.backend.tensorflow.trainer", None)
    with pytest.raises(CnnhubError) as error:
        patch_scalar_reduction()
    _assert_one_line_guard(str(error.value), "keras.src.backend.tensorflow.trainer")
    assert str(error.value).startswith("Training with --strategy multi_worker needs")


def test_a_keras_without_the_symbolic_build_fails_in_one_line():
    with pytest.raises(CnnhubError) as error:
        keras_hooks.build_from_local_batch(object(), tf.distribute.get_strategy())
    _assert_one_line_guard(str(error.value), "Trainer._maybe_symbolic_build")


def test_a_keras_without_file_utils_get_file_fails_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras.src.utils.file_utils", types.ModuleType("stub"))
    with pytest.raises(CnnhubError) as error:
        keras_file_utils()
    _assert_one_line_guard(str(error.value), "keras.src.utils.file_utils.get_file")


PRIVATE_ATTRIBUTES = {
    "_trainable_variables",
    "_non_trainable_variables",
    "_flatten_layers",
    "_symbolic_build",
    "_maybe_symbolic_build",
}


def test_no_other_module_reaches_into_keras_internals():
    """Imports of keras.src and the private attributes above appear only in keras_hooks.py."""
    offenders = []
    for path in sorted((ROOT / "cnnhub").rglob("*.py")):
        if path.name == "keras_hooks.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.startswith("keras.src") else []
            private = isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRIBUTES
            if private or any(name.startswith("keras.src") for name in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
