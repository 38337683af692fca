"""The in-model preprocessing: raw 0-255 RGB pixels in, what the backbone expects out.

Built from Keras's own layers only, so a saved model loads with
``keras.saving.load_model(path, safe_mode=True)`` in any Python with Keras, without cnnhub:

* ``tf``: ``Rescaling(1/127.5, offset=-1)``, to [-1, 1].
* ``torch``: ``Rescaling`` with a per-channel scale and offset, ``(x/255 - mean) / std``.
* ``caffe``: a fixed 1x1 ``Conv2D`` (not trainable) whose kernel swaps R and B and whose bias
  is minus the ImageNet BGR mean.
* ``none`` (backbones that rescale inside, e.g. EfficientNet, ConvNeXt): ``Identity``.

Each reproduces ``keras.applications.imagenet_utils.preprocess_input`` for its mode (to float32
rounding). The layer is always named :data:`PREPROCESS_LAYER`.

:class:`ImageNetPreprocessing` is the custom layer models held before; it stays registered so
that ``.keras`` files of older runs still load once ``cnnhub.layers`` is imported.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from cnnhub.registry import PREPROCESSING_MODES

BACKBONE_LAYER = "backbone"
"""Name of the backbone sub-model in every model cnnhub builds (weights are matched by it)."""

PREPROCESS_LAYER = "preprocess"
"""Name of the preprocessing layer in every keras.applications-based cnnhub model."""

# The constants keras.applications.imagenet_utils uses for each mode.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # 0-255 scale
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)  # 0-1 scale
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


def _check_mode(mode: str) -> None:
    if mode not in PREPROCESSING_MODES:
        raise ValueError(
            f"`mode` must be one of {', '.join(PREPROCESSING_MODES)}. Received: mode={mode}"
        )


def caffe_weights() -> list[np.ndarray]:
    """Kernel (1, 1, 3, 3) and bias of the fixed 1x1 convolution of ``caffe`` mode."""
    kernel = np.zeros((1, 1, 3, 3), dtype=np.float32)
    for rgb in range(3):
        kernel[0, 0, rgb, 2 - rgb] = 1.0  # output channel 2 - c is input channel c: RGB->BGR
    return [kernel, -np.asarray(_CAFFE_MEAN_BGR, dtype=np.float32)]


def preprocessing_layer(mode: str, name: str = PREPROCESS_LAYER) -> keras.layers.Layer:
    """A Keras built-in layer doing ``preprocess_input(x, mode=mode)`` (module docstring).

    The ``caffe`` convolution is built here with its fixed weights and marked not trainable.
    """
    _check_mode(mode)
    if mode == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name)
    if mode == "torch":
        std = np.asarray(_TORCH_STD_RGB, dtype=np.float64)
        mean = np.asarray(_TORCH_MEAN_RGB, dtype=np.float64)
        return keras.layers.Rescaling(
            scale=(1.0 / (255.0 * std)).tolist(), offset=(-mean / std).tolist(), name=name
        )
    if mode == "caffe":
        conv = keras.layers.Conv2D(3, 1, use_bias=True, trainable=False, name=name)
        conv.build((None, None, None, 3))
        conv.set_weights(caffe_weights())
        return conv
    return keras.layers.Identity(name=name)


def is_fixed_preprocessing(layer) -> bool:
    """Whether ``layer`` is a fixed-weight preprocessing layer (caffe mode's convolution).

    Its weights are constants set when the model is built, so weights files saved before it
    existed (without its variables) still fit the model.
    """
    return layer.name == PREPROCESS_LAYER and isinstance(layer, keras.layers.Conv2D)


@keras.saving.register_keras_serializable(package="cnnhub")
class ImageNetPreprocessing(keras.layers.Layer):
    """Legacy: the preprocessing layer of models saved before :func:`preprocessing_layer`.

    Kept only so that those ``.keras`` files load (with ``cnnhub.layers`` imported); new models
    never contain it. Same arithmetic as ``preprocess_input`` for ``caffe``, ``tf``, ``torch``
    and ``none`` (pass through).
    """

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        _check_mode(mode)
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN_RGB, self.compute_dtype)
            std = ops.convert_to_tensor(_TORCH_STD_RGB, self.compute_dtype)
            return (x / 255.0 - mean) / std
        if self.mode == "caffe":
            mean_bgr = ops.convert_to_tensor(_CAFFE_MEAN_BGR, self.compute_dtype)
            return ops.flip(x, axis=-1) - mean_bgr
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
