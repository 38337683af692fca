"""The registry: every entry builds at its minimum size, and its metadata is true."""

from __future__ import annotations

import inspect
import sys

import keras
import numpy as np
import pytest

from cnnhub.errors import CnnhubError
from cnnhub.model_factory import (
    BACKBONE_LAYER,
    SCRATCH_BN_MOMENTUM,
    build_model,
    check_input_size,
)
from cnnhub.registry import (
    BACKBONES,
    PREPROCESSING_MODES,
    RESCALE,
    get_backbone,
    parse_model_names,
)
from cnnhub.settings import load_defaults


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


def _scratch_config(name: str, size: int) -> dict:
    return dict(
        load_defaults()[0], MODEL_NAME=name, WEIGHTS="none", IMG_HEIGHT=size, IMG_WIDTH=size
    )


@pytest.mark.parametrize("name", [n for n in BACKBONES if n != "custom"])
def test_entry_builds_at_minimum_size_with_registry_param_count(name):
    """Every entry's whole classifier builds at its minimum size, its backbone has the
    registry's parameter count, and random-init BatchNormalization gets the scratch momentum.

    Built without initialising the weights (``keras.StatelessScope``): shapes and counts are
    the same at a fraction of the cost (initialising all backbones took ~120 s of CPU, this
    ~50 s). ``test_random_init_model_predicts`` builds and runs real ones.
    """
    spec = BACKBONES[name]
    with keras.StatelessScope(initialize_variables=False):
        model = build_model(_scratch_config(name, spec.min_size), num_classes=3)
    backbone = model.get_layer(BACKBONE_LAYER)
    assert len(backbone.output.shape) == 4 and min(backbone.output.shape[1:3]) >= 1
    assert backbone.count_params() == spec.params
    assert model.output_shape == (None, 3)
    momenta = {
        layer.momentum
        for layer in backbone._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta <= {SCRATCH_BN_MOMENTUM}


@pytest.mark.parametrize("name", ["mobilenetv3small", "squeezenet"])
def test_random_init_model_predicts(name):
    """A real build (weights initialised) runs and returns probabilities."""
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    probabilities = build_model(_scratch_config(name, 32), num_classes=3).predict(images, verbose=0)
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


class TestRegistryMetadata:
    """Every entry's facts, checked without building it (fast: one test per entry)."""

    @pytest.fixture(autouse=True)
    def _fresh_session(self):  # overrides the module's: nothing is built, nothing to clear
        yield

    @pytest.mark.parametrize("name", list(BACKBONES))
    def test_entry(self, name):
        """Every entry's facts, checked without building it: its build function or Keras
        constructor exists, ImageNet weights exactly for keras.applications, sizes, and the
        preprocessing equal to what its Keras module's own ``preprocess_input`` does."""
        spec = BACKBONES[name]
        assert spec.name == name and get_backbone(name) is spec
        assert 1 <= spec.min_size <= spec.default_size
        assert spec.params > 0 or name == "custom"  # custom's size depends on its blocks
        images = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
        if spec.family == "keras.applications":
            assert spec.imagenet and spec.build_function() is None
            constructor = getattr(keras.applications, spec.constructor)
            assert "include_top" in inspect.signature(constructor).parameters
            module = sys.modules[constructor.__module__]
            assert spec.preprocessing in PREPROCESSING_MODES
            expected = keras.ops.convert_to_numpy(module.preprocess_input(images.copy()))
            if spec.preprocessing == "none":
                np.testing.assert_array_equal(expected, images)  # the model normalises itself
            else:
                np.testing.assert_allclose(
                    expected,
                    keras.applications.imagenet_utils.preprocess_input(
                        images.copy(), mode=spec.preprocessing
                    ),
                    rtol=1e-6,
                )
        else:
            assert spec.family == "cnnhub" and not spec.imagenet
            build = spec.build_function()
            assert callable(build)
            assert list(inspect.signature(build).parameters)[:4] == [
                "input_shape",
                "config",
                "num_classes",
                "name",
            ]
            assert spec.preprocessing in (*PREPROCESSING_MODES, RESCALE)
        assert (spec.preprocessing == RESCALE) == (name == "custom")


def test_custom_entry_builds_a_full_model():
    config = dict(
        load_defaults()[0], MODEL_NAME="custom", WEIGHTS="none", IMG_HEIGHT=8, IMG_WIDTH=8
    )
    model = build_model(config, num_classes=4)
    assert model.output_shape == (None, 4)


def test_size_below_minimum_names_the_minimum():
    with pytest.raises(CnnhubError, match=r"minimum input size of `xception`, 71x71"):
        check_input_size(get_backbone("xception"), 64, 80)


@pytest.mark.parametrize(
    "typed, name",
    [
        ("ResNet50", "resnet50"),
        ("resnet-50", "resnet50"),
        ("inception_v3", "inceptionv3"),
        ("NASNetMobile", "nasnet_small"),
        ("efficientnet-b3", "efficientnetb3"),
        ("ConvNeXt-Tiny", "convnext_tiny"),
        ("mobilenet_v2", "mobilenetv2"),
    ],
)
def test_names_are_case_insensitive_with_aliases(typed, name):
    assert get_backbone(typed).name == name


def test_unknown_name_lists_closest_matches():
    with pytest.raises(CnnhubError, match=r"Unknown model `resnet5O`\. Did you mean .*resnet50"):
        get_backbone("resnet5O")
    assert [s.name for s in parse_model_names("mobilenetv2, resnet50,custom")] == [
        "mobilenetv2",
        "resnet50",
        "custom",
    ]
