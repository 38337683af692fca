"""The in-model preprocessing: equal to keras.applications, and loadable without cnnhub.

Saved models (``best_model.keras``, ``final_model.keras``, ``export --format keras``) must load
with ``keras.saving.load_model(path, safe_mode=True)`` in a Python that has Keras but not
cnnhub; models and weights saved with the old custom ``ImageNetPreprocessing`` layer must still
load with cnnhub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from trained_runs import fabricate_run, shared_tiny_run

from cnnhub.layers import PREPROCESS_LAYER, ImageNetPreprocessing, preprocessing_layer
from cnnhub.model_factory import build_run_model
from cnnhub.resume import ResumableEarlyStopping
from cnnhub.run_loading import choose_weights, open_run
from conftest import NETGUARD, ROOT

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def images(count: int = 3, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (count, size, size, 3)).astype(np.float32)
    batch[0, 0, 0] = (0.0, 255.0, 128.0)  # the ends of the range
    return np.round(batch)


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch", "none"])
def test_preprocessing_layer_equals_preprocess_input(mode):
    x = images()
    if mode == "none":
        expected = x
    else:
        expected = keras.applications.imagenet_utils.preprocess_input(x.copy(), mode=mode)
    layer = preprocessing_layer(mode)
    got = keras.ops.convert_to_numpy(layer(x))
    # float32 rounding: tf and torch multiply by a reciprocal where numpy divides (1 ulp)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert layer.name == PREPROCESS_LAYER
    assert not layer.trainable_weights  # nothing in it is ever trained
    assert type(layer).__module__.startswith("keras.")  # a Keras built-in layer


def test_legacy_layer_still_matches_preprocess_input():
    x = images()
    for mode in ("caffe", "tf", "torch"):
        expected = keras.applications.imagenet_utils.preprocess_input(x.copy(), mode=mode)
        got = keras.ops.convert_to_numpy(ImageNetPreprocessing(mode)(x))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def _head_model(mode: str) -> keras.Model:
    inputs = keras.Input((8, 8, 3), name="image")
    x = preprocessing_layer(mode)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


LOADER = """
import json, os, sys
import numpy as np
sys.modules["cnnhub"] = None  # cnnhub cannot be imported, even when installed
assert sys.argv[1] not in [os.path.realpath(p or ".") for p in sys.path], sys.path
import keras
batch = np.load(sys.argv[2])
out = {}
for path in sys.argv[3:]:
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    size = model.input_shape[1:3]
    out[path] = np.asarray(model(batch[:, : size[0], : size[1]], training=False)).tolist()
print(json.dumps(out))
"""


def test_saved_models_load_in_a_python_without_cnnhub(tiny_data, tmp_path_factory, tmp_path):
    run = shared_tiny_run(tiny_data, tmp_path_factory)
    mobilenet = fabricate_run(run, tmp_path / "mobilenet", "mobilenetv2")
    expected: dict[str, keras.Model] = {}
    for name in ("best_model.keras", "final_model.keras"):  # a custom run's saved models
        expected[str(run / name)] = keras.saving.load_model(run / name, safe_mode=True)
    opened = open_run(mobilenet)
    models = {
        "mobilenet.keras": build_run_model(opened, choose_weights(opened)),
        **{f"{mode}.keras": _head_model(mode) for mode in ("tf", "torch", "caffe", "none")},
    }
    for name, model in models.items():
        model.save(tmp_path / name)
        expected[str(tmp_path / name)] = model
    batch = images(2)
    np.save(tmp_path / "batch.npy", batch)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = f"import sys; sys.path.insert(0, {str(NETGUARD)!r}); import no_network\n" + LOADER
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT.resolve()), str(tmp_path / "batch.npy"), *expected],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for path, model in expected.items():
        size = model.input_shape[1:3]
        want = np.asarray(model(batch[:, : size[0], : size[1]], training=False))
        np.testing.assert_allclose(np.asarray(loaded[path]), want, atol=1e-6, err_msg=path)


def _old_style(model: keras.Model, mode: str) -> keras.Model:
    """``model`` rebuilt as before: the legacy ImageNetPreprocessing layer, same other layers."""
    inputs = keras.Input(model.input_shape[1:], name="image")
    x = ImageNetPreprocessing(mode, name=PREPROCESS_LAYER)(inputs)
    for layer in model.layers[2:]:  # the chain after input and preprocessing, shared weights
        x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def test_runs_saved_with_the_legacy_layer_still_load(tiny_data, tmp_path_factory, tmp_path):
    # caffe mode: the new layer has (fixed) weights that the old files lack
    run = fabricate_run(shared_tiny_run(tiny_data, tmp_path_factory), tmp_path / "old", "vgg16")
    old = _old_style(build_run_model(open_run(run), choose_weights(open_run(run))), "caffe")
    assert isinstance(old.get_layer(PREPROCESS_LAYER), ImageNetPreprocessing)
    # an old run folder: per-epoch weights and best_model.keras written by the old model
    weights = run / "model_logs" / "weights-001-0.0000.weights.h5"
    old.save_weights(weights)
    old.save(run / "best_model.keras")
    batch = images(2)
    want = old.predict(batch, verbose=0)
    reloaded = keras.saving.load_model(run / "best_model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(batch, verbose=0), want, atol=1e-6)
    rebuilt = build_run_model(open_run(run), choose_weights(open_run(run), "last"))
    assert not isinstance(rebuilt.get_layer(PREPROCESS_LAYER), ImageNetPreprocessing)
    np.testing.assert_allclose(rebuilt.predict(batch, verbose=0), want, atol=1e-5)
    # Resuming such a run restores its best epoch (saved by the old model) the same way.
    fresh = build_run_model(open_run(run), choose_weights(open_run(run), "last"))
    for layer in fresh.layers[2:]:  # everything but the input and the fixed preprocessing
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    stopper = ResumableEarlyStopping(lambda epoch: weights, fresh, restore_best_weights=True)
    stopper.best, stopper.best_epoch = 0.5, 0  # as carried over from before the resume
    stopper.on_train_end()
    np.testing.assert_allclose(fresh.predict(batch, verbose=0), want, atol=1e-5)
