"""SqueezeNet v1.1 (Iandola et al., 2016) as a headless Keras backbone.

Keras has no SqueezeNet, so cnnhub builds it from Fire modules: a 1x1 "squeeze" convolution
feeding parallel 1x1 and 3x3 "expand" convolutions whose outputs are concatenated. v1.1 is the
variant with 2.4x less computation than v1.0 at the same accuracy.

Initialisation: He (Kaiming) uniform, as torchvision's SqueezeNet. Keras's default, Glorot,
shrinks the signal about 5,000-fold over the 25 ReLU convolutions of a random-init SqueezeNet,
so training from scratch stalled at loss ln(K). The first convolution's variance is further
divided by the variance of its "caffe" input (0-255 pixels minus the ImageNet mean, standard
deviation ~58), so the features start at unit scale, as with unit-variance input.
"""

from __future__ import annotations

import keras
from keras import layers

HE_UNIFORM = "he_uniform"
# Standard deviation of ImageNet pixels on the 0-255 scale (the mean of torchvision's per-channel
# 0.229, 0.224, 0.225, times 255): the scale of conv1's caffe-preprocessed input.
CAFFE_INPUT_STD = 57.4

# (squeeze filters, expand filters per branch) of each Fire module; "pool" marks max pooling.
_V11_LAYOUT: list[tuple[int, int] | str] = [
    (16, 64),
    (16, 64),
    "pool",
    (32, 128),
    (32, 128),
    "pool",
    (48, 192),
    (48, 192),
    (64, 256),
    (64, 256),
]


def fire_module(x, squeeze: int, expand: int, name: str):
    """One Fire module: squeeze to ``squeeze`` channels, expand to ``2 * expand``."""
    conv = {"activation": "relu", "kernel_initializer": HE_UNIFORM}
    s = layers.Conv2D(squeeze, 1, name=f"{name}_squeeze1x1", **conv)(x)
    e1 = layers.Conv2D(expand, 1, name=f"{name}_expand1x1", **conv)(s)
    e3 = layers.Conv2D(expand, 3, padding="same", name=f"{name}_expand3x3", **conv)(s)
    return layers.Concatenate(name=f"{name}_concat")([e1, e3])


def SqueezeNet(input_shape: tuple[int, int, int], name: str = "squeezenet") -> keras.Model:
    """Build SqueezeNet v1.1 without its classifier: input -> last Fire module's feature map.

    The input is expected already preprocessed (cnnhub puts ImageNet "caffe" preprocessing in
    front of it). There are no published Keras ImageNet weights for it.
    """
    inputs = keras.Input(shape=input_shape, name="input")
    # He init for unit-variance input, scaled down for the caffe input's variance.
    first = keras.initializers.VarianceScaling(2.0 / CAFFE_INPUT_STD**2, "fan_in", "uniform")
    x = layers.Conv2D(
        64, 3, strides=2, padding="same", activation="relu", kernel_initializer=first, name="conv1"
    )(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    fire_index = 2
    for step in _V11_LAYOUT:
        if step == "pool":
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{fire_index - 1}")(x)
            continue
        squeeze, expand = step
        x = fire_module(x, squeeze, expand, name=f"fire{fire_index}")
        fire_index += 1
    return keras.Model(inputs, x, name=name)


def build(
    input_shape: tuple[int, int, int], config: dict, num_classes: int, name: str = "squeezenet"
) -> keras.Model:
    """The registry's build function: SqueezeNet v1.1 for ``input_shape`` (config unused)."""
    return SqueezeNet(input_shape, name=name)
