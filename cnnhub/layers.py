"""Custom Keras layers that travel inside saved models.

Registered with Keras's serialisation so that ``keras.saving.load_model(path, safe_mode=True)``
rebuilds them once ``cnnhub`` is imported; no ``Lambda`` layers anywhere.
"""

from __future__ import annotations

import keras
from keras import ops

from cnnhub.registry import PREPROCESSING_MODES

# The constants keras.applications.imagenet_utils uses for each mode.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # 0-255 scale
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)  # 0-1 scale
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="cnnhub")
class ImageNetPreprocessing(keras.layers.Layer):
    """Turn raw 0-255 RGB pixels into what a keras.applications backbone expects.

    Same arithmetic as ``keras.applications.imagenet_utils.preprocess_input`` for each mode, but
    as a layer, so the preprocessing is part of every saved or exported model.

    Args:
        mode: one of ``caffe`` (RGB->BGR, minus the ImageNet mean), ``tf`` (scale to [-1, 1]),
            ``torch`` (scale to [0, 1], then ImageNet mean/std) or ``none`` (pass through).
    """

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(
                f"`mode` must be one of {', '.join(PREPROCESSING_MODES)}. Received: mode={mode}"
            )
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
