"""cnnhub.fused_batch_norm: BatchNormalization's training step through TensorFlow's fused
kernel gives Keras's outputs, gradients and moving statistics; everything else is Keras's own
code, and the saved model is unchanged."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnhub.fused_batch_norm import fused_batch_norm_applies, use_fused_batch_norm


def small_model(center: bool = True, scale: bool = True) -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 5, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, center=center, scale=scale, name="bn")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8)(x)
    x = keras.layers.BatchNormalization(name="bn_dense")(x)  # 2-D: Keras's own code
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def twins(**kwargs) -> tuple[keras.Model, keras.Model]:
    keras_model, fused = small_model(**kwargs), small_model(**kwargs)
    fused.set_weights(keras_model.get_weights())
    assert use_fused_batch_norm(fused) == 2
    for bn in ("bn", "bn_dense"):  # non-trivial gamma and beta
        for model in (keras_model, fused):
            layer = model.get_layer(bn)
            if layer.scale:
                layer.gamma.assign(np.linspace(0.5, 1.5, layer.gamma.shape[0]))
            if layer.center:
                layer.beta.assign(np.linspace(-0.2, 0.3, layer.beta.shape[0]))
    return keras_model, fused


def training_step(model: keras.Model, x: np.ndarray):
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_sum(tf.square(y))
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]


@pytest.mark.parametrize("center,scale", [(True, True), (False, False)])
def test_a_training_step_matches_keras(center, scale):
    keras_model, fused = twins(center=center, scale=scale)
    x = np.random.default_rng(0).normal(3.0, 2.0, (16, 6, 5, 3)).astype("float32")
    for _ in range(2):  # the second step starts from updated moving statistics
        y_keras, grads_keras = training_step(keras_model, x)
        y_fused, grads_fused = training_step(fused, x)
        np.testing.assert_allclose(y_fused, y_keras, rtol=1e-4, atol=1e-4)
        # The conv bias's gradient is 0 up to rounding (batch norm removes a per-channel
        # constant): tolerances are relative to the largest gradient.
        largest = max(np.abs(g).max() for g in grads_keras)
        for a, b in zip(grads_fused, grads_keras):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * largest)
    for name in ("moving_mean", "moving_variance"):
        ours = getattr(fused.get_layer("bn"), name).numpy()
        theirs = getattr(keras_model.get_layer("bn"), name).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    # Independently: after 2 updates of momentum 0.9 from (0, 1), the moving mean is
    # 0.19 x the batch mean per channel and the variance 0.81 + 0.19 x the biased batch variance.
    conv = keras.Model(fused.input, fused.get_layer("bn").input)(x).numpy()
    bn = fused.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.19 * conv.mean(axis=(0, 1, 2)), rtol=1e-4)
    expected_var = 0.81 + 0.19 * conv.var(axis=(0, 1, 2))
    np.testing.assert_allclose(bn.moving_variance.numpy(), expected_var, rtol=1e-4)


def test_inference_and_frozen_layers_use_keras_code_exactly():
    keras_model, fused = twins()
    x = np.random.default_rng(1).normal(size=(4, 6, 5, 3)).astype("float32")
    np.testing.assert_array_equal(fused(x, training=False), keras_model(x, training=False))
    for model in (keras_model, fused):
        model.get_layer("bn").trainable = False  # frozen BN runs in inference mode
    np.testing.assert_array_equal(fused(x, training=True), keras_model(x, training=True))


def test_the_saved_model_is_plain_keras(tmp_path):
    _, fused = twins()
    x = np.random.default_rng(2).normal(size=(8, 6, 5, 3)).astype("float32")
    training_step(fused, x)
    path = tmp_path / "m.keras"
    fused.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("bn")) is keras.layers.BatchNormalization
    assert "call" not in vars(loaded.get_layer("bn"))
    np.testing.assert_array_equal(loaded(x, training=False), fused(x, training=False))


def test_nested_layers_are_found_and_renorm_or_synchronized_are_left_alone():
    inner = small_model()
    inputs = keras.Input((6, 5, 3))
    x = inner(inputs)
    outer = keras.Model(inputs, keras.layers.Dense(1)(x))
    assert use_fused_batch_norm(outer) == 2
    assert all("call" in vars(inner.get_layer(name)) for name in ("bn", "bn_dense"))
    assert not fused_batch_norm_applies(keras.layers.BatchNormalization(renorm=True))
    assert not fused_batch_norm_applies(keras.layers.BatchNormalization(synchronized=True))
    assert not fused_batch_norm_applies(keras.layers.LayerNormalization())
