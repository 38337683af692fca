"""Train BatchNormalization with TensorFlow's fused kernel.

Keras 3's ``BatchNormalization`` computes a training step's statistics and normalisation from
separate ops (``tf.nn.moments``, then ``tf.nn.batch_normalization``), each one more pass over
the activations, forward and backward. TensorFlow's ``FusedBatchNormV3`` does the forward in
one kernel and the backward in another (oneDNN on CPU, cuDNN on GPU). For the Fashion-MNIST
recipe's network a training step is ~18% faster with it (benchmarks/README.md, "Fused batch
norm"), which is as fast as the same network without batch norm.

:func:`use_fused_batch_norm` gives each BatchNormalization layer of a model a ``call`` that
uses the fused kernel in training mode and Keras's own code otherwise (inference, frozen
layers, masks, renorm, synchronized statistics, inputs that are not 4-D channels-last). The
layers stay Keras's class: saved models, their weights and exports do not change, and
inference gives the same numbers. In training, outputs, gradients and moving statistics agree
with Keras's to float32 rounding (tests/test_fused_batch_norm.py); the moving variance is the
biased one, as Keras keeps it.
"""

from __future__ import annotations

import types

import keras

from cnnhub.keras_hooks import flatten_layers


def _fused_call(self, inputs, training=None, mask=None):
    """``BatchNormalization.call`` with the fused kernel for a training step (module doc)."""
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    default = type(self).call
    rank = len(inputs.shape)
    channels_last = self.axis in (-1, rank - 1)
    if not (training and self.trainable) or mask is not None or rank != 4 or not channels_last:
        return default(self, inputs, training=training, mask=mask)
    x = tf.cast(inputs, "float32")  # as Keras: statistics in float32 under mixed precision
    ones = tf.ones(x.shape[-1:], "float32")
    scale = tf.cast(self.gamma, "float32") if self.scale else ones
    offset = tf.cast(self.beta, "float32") if self.center else tf.zeros_like(ones)
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        x, scale, offset, epsilon=self.epsilon, data_format="NHWC", is_training=True
    )
    # The kernel returns the Bessel-corrected variance; Keras averages the biased one.
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), "float32")
    variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
    for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
        moving.assign(moving * self.momentum + tf.cast(batch, moving.dtype) * (1 - self.momentum))
    return tf.cast(y, self.compute_dtype)


def fused_batch_norm_applies(layer) -> bool:
    """Whether :func:`use_fused_batch_norm` gives ``layer`` the fused training step."""
    return (
        isinstance(layer, keras.layers.BatchNormalization)
        and not layer.renorm
        and not layer.synchronized
    )


def use_fused_batch_norm(model) -> int:
    """Make every BatchNormalization layer in ``model`` (nested models included) train with
    TensorFlow's fused kernel (module docstring); returns how many layers it changed. Nothing
    changes on a backend other than TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return 0
    changed = 0
    for layer in flatten_layers(model):
        if fused_batch_norm_applies(layer):
            layer.call = types.MethodType(_fused_call, layer)
            changed += 1
    return changed
