"""Build a classifier: raw pixels -> preprocessing -> backbone -> pooling -> dense head -> softmax.

Every model cnnhub builds takes raw 0-255 pixels, so a saved model needs no separate
preprocessing; it is made of Keras built-in layers only (:mod:`cnnhub.layers`), so it loads with
``keras.saving.load_model(path, safe_mode=True)`` without cnnhub. The backbone is
a nested model named ``backbone`` so training types can freeze it as one block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
from keras import layers

from cnnhub.custom.build import BN_MOMENTUM
from cnnhub.data.sets import input_channels
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.calibration import scale_final_layer
from cnnhub.keras_hooks import flatten_layers
from cnnhub.layers import BACKBONE_LAYER, preprocessing_layer
from cnnhub.model_defaults import weights_kind
from cnnhub.registry import RESCALE, BackboneSpec, check_input_size, get_backbone
from cnnhub.run_loading import Run, WeightsChoice, weights_source
from cnnhub.settings import AUTO, dense_activations
from cnnhub.tasks import get_task
from cnnhub.weights import load_pretrained, load_weights_checked

# BatchNormalization momentum of a backbone trained from random init: the custom net's, 0.9
# (PyTorch's default), so the moving statistics average the last ~10 batches. keras.applications
# use 0.99 or 0.999, tuned for ImageNet's hundreds of thousands of steps: after a few hundred
# steps their moving statistics still mostly hold the initial (0, 1), and validation, which uses
# them, stays at chance while training accuracy climbs. Pretrained BatchNormalization keeps its
# momentum: its statistics are already right.
SCRATCH_BN_MOMENTUM = BN_MOMENTUM


def check_weights_setting(spec: BackboneSpec, weights: str) -> None:
    """Reject weight choices that cannot work, before anything is built."""
    mode = weights_kind(weights)
    if mode == "imagenet" and not spec.imagenet:
        raise CnnhubError(
            f"There are no ImageNet weights for `{spec.name}`; use -w none (random init), -w "
            f"auto, or an earlier run's folder or weights file. Received: weights={weights}"
        )
    if mode != "file":
        return
    path = Path(weights)
    if path.is_dir():
        weights_source(path)  # a run folder holding weights, or a one-line error
        return
    if not path.is_file():
        raise CnnhubError(
            f"Weights file not found: {weights}. Use -w auto, imagenet, none, a run folder, or "
            f"the path of a .weights.h5 or .keras file. Received: weights={weights}"
        )
    if not (path.name.endswith(".weights.h5") or path.suffix == ".keras"):
        raise CnnhubError(
            "A weights file must be a Keras `.weights.h5` or `.keras` file (or pass a run "
            f"folder). Received: weights={weights}"
        )


def build_backbone(
    spec: BackboneSpec, input_shape: tuple, config: dict[str, Any], num_classes: int
):
    """Instantiate the backbone (headless) for ``input_shape``, preprocessed input expected."""
    build = spec.build_function()
    if build is not None:  # a backbone cnnhub builds itself (SqueezeNet, custom CNNs)
        return build(input_shape, config, num_classes, name=BACKBONE_LAYER)
    constructor = getattr(keras.applications, spec.constructor)
    weights = "imagenet" if weights_kind(config["WEIGHTS"]) == "imagenet" else None
    kwargs: dict[str, Any] = {
        "include_top": False,
        "weights": weights,
        "input_shape": input_shape,
    }
    try:
        backbone = constructor(**kwargs)
    except Exception as exc:  # noqa: BLE001 - Keras raises bare Exception for fetch failures
        if weights == "imagenet" and "fetch failure" in str(exc).lower():
            # lazy: heavy import, kept off the --help path
            from cnnhub.pretrained import offline_message, planned_download

            download = planned_download(spec, input_shape)
            raise CnnhubError(offline_message(spec, download, " ".join(str(exc).split()))) from None
        raise
    # Renamed afterwards: some constructors (EfficientNetV2) look their settings up by `name`.
    backbone.name = BACKBONE_LAYER
    return backbone


def prepare_for_scratch_training(backbone) -> int:
    """Give every BatchNormalization layer of a random-init ``backbone`` (nested models
    included) the momentum ``SCRATCH_BN_MOMENTUM``; returns how many layers it changed."""
    changed = 0
    for layer in flatten_layers(backbone):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = SCRATCH_BN_MOMENTUM
            changed += 1
    return changed


def build_head(x, num_classes: int, config: dict[str, Any]):
    """Pooling, then the dense layers of NUM_NODES/NUM_DROPOUTS, then the task's output
    layer(s) (``num_classes`` outputs; single_label: a float32 softmax)."""
    pooling = config["POOLING"]
    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="pool")(x)
    else:
        x = layers.Flatten(name="pool")(x)
    from cnnhub.custom.build import activation_layer  # lazy: heavy import, kept off the --help path

    layer_specs = zip(config["NUM_NODES"], config["NUM_DROPOUTS"], dense_activations(config))
    for i, (units, rate, activation) in enumerate(layer_specs, start=1):
        x = layers.Dense(units, name=f"head_dense{i}")(x)
        if config["DENSE_BATCH_NORM"]:
            x = layers.BatchNormalization(name=f"head_bn{i}")(x)
        x = activation_layer(activation, f"head_act{i}")(x)
        if rate > 0:
            x = layers.Dropout(rate, name=f"head_dropout{i}")(x)
    return get_task(config).output_layers(x, num_classes, config)


def build_model(
    config: dict[str, Any],
    num_classes: int,
    spec: BackboneSpec | None = None,
    from_scratch: bool | None = None,
    class_names: list[str] | None = None,
):
    """Build the full classifier for ``config`` (MODEL_NAME unless ``spec`` is given).

    Returns an uncompiled ``keras.Model`` taking raw 0-255 images of shape
    (IMG_HEIGHT, IMG_WIDTH, channels) and returning class probabilities. ``from_scratch``
    (default: WEIGHTS is none) prepares the backbone for random-init training
    (``prepare_for_scratch_training``); a resumed run passes its original answer.
    ``class_names`` (this run's) tell weights from an earlier run (WEIGHTS a run or file)
    whether its head fits: with other classes only its backbone is loaded.
    """
    spec = spec or get_backbone(config["MODEL_NAME"])
    unresolved = [k for k in ("WEIGHTS", "IMG_HEIGHT", "IMG_WIDTH") if config[k] == AUTO]
    if unresolved:
        raise ValueError(
            f"{', '.join(unresolved)} are still auto: resolve them first with "
            "cnnhub.model_defaults.resolve_model_config"
        )
    height, width = config["IMG_HEIGHT"], config["IMG_WIDTH"]
    check_input_size(spec, height, width)
    check_weights_setting(spec, config["WEIGHTS"])

    input_shape = (height, width, input_channels(config))
    inputs = keras.Input(shape=input_shape, name="image")
    if spec.preprocessing == RESCALE:
        x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    else:
        x = preprocessing_layer(spec.preprocessing)(inputs)
    backbone = build_backbone(spec, input_shape, config, num_classes)
    if from_scratch is None:
        from_scratch = weights_kind(config["WEIGHTS"]) == "none"
    if from_scratch:
        prepare_for_scratch_training(backbone)
    x = backbone(x)
    outputs = build_head(x, num_classes, config)
    model = keras.Model(inputs, outputs, name=spec.name)
    if weights_kind(config["WEIGHTS"]) == "file":
        path, run = weights_source(config["WEIGHTS"], announce=True)
        print(load_pretrained(model, path, run, class_names, config["WEIGHTS"]))
    return model


def split_at_backbone(model) -> tuple[keras.Model, keras.Model]:
    """Split a classifier into (raw image -> backbone features, features -> probabilities).

    Both parts share the classifier's layers (and so its weights): training the head part
    trains the classifier's head. The backbone runs in inference mode in the first part.
    """
    backbone = model.get_layer(BACKBONE_LAYER)
    position = model.layers.index(backbone)
    inputs = keras.Input(model.input_shape[1:], name="image")
    x = inputs
    for layer in model.layers[1:position]:
        x = layer(x)
    extractor = keras.Model(inputs, backbone(x, training=False), name="features")
    features = keras.Input(backbone.output_shape[1:], name="features")
    y = features
    for layer in model.layers[position + 1 :]:
        y = layer(y)
    return extractor, keras.Model(features, y, name="head")


def build_run_model(run: Run, weights: WeightsChoice) -> keras.Model:
    """The run's model, rebuilt from its config (nothing downloaded) with ``weights`` loaded;
    the chosen weights of a calibrated run get their temperature (as in ``best_model.keras``)."""
    config = dict(run.config, WEIGHTS="none")
    model = build_model(config, run.num_classes)
    load_weights_checked(model, run.folder.check_weights(weights.path))
    if weights.is_best and run.temperature is not None:
        scale_final_layer(model, run.temperature)
    return model
