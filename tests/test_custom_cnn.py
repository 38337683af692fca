"""Tests for cnnhub.custom: grammar, validation, shape arithmetic, build, save, train."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import subprocess
import sys

import numpy as np
import pytest

from cnnhub import custom as cc
from cnnhub.errors import CnnhubError

keras = pytest.importorskip("keras")


def build(spec, input_shape, name="custom"):
    """Build the backbone and check it against the arithmetic (shape and weight count)."""
    model = cc.build_custom_backbone(input_shape, spec, name=name)
    assert tuple(model.output_shape[1:]) == cc.output_shape(spec, input_shape)
    assert model.count_params() == cc.count_params(spec, input_shape)
    return model


def layer_names(model):
    return [layer.name for layer in model.layers]


# ----------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    ("preset", "input_shape", "num_classes", "expected"),
    [
        ("lenet", (28, 28, 1), 10, (5, 5, 16)),  # 28 -> 14 -> 10 (valid 5x5) -> 5
        ("lenet", (32, 32, 3), 10, (6, 6, 16)),
        ("vgg_small", (28, 28, 1), 10, (3, 3, 128)),
        ("vgg_small", (32, 32, 3), 10, (4, 4, 128)),
        ("fashion", (28, 28, 1), 10, (3, 3, 128)),
        ("fashion", (32, 32, 3), 10, (4, 4, 128)),
        ("alexnet_small", (28, 28, 1), 10, (2, 2, 64)),  # 28 -> 13 -> 6 -> 2 (3x3/2 pools)
        ("alexnet_small", (32, 32, 3), 10, (3, 3, 64)),  # 32 -> 15 -> 7 -> 3
        ("auto", (28, 28, 1), 2, (3, 3, 128)),  # 28 -> 14 -> 7 -> 3, 32/64/128 filters
        ("auto", (32, 32, 3), 2, (4, 4, 128)),
        ("auto", (32, 32, 3), 100, (4, 4, 256)),  # 64/128/256 filters
    ],
)
def test_preset_builds_with_expected_output_shape(preset, input_shape, num_classes, expected):
    blocks = cc.resolve_blocks(preset, input_shape, num_classes)
    assert cc.output_shape(blocks, input_shape) == expected
    model = build(blocks, input_shape, name=f"{preset}_backbone")
    assert model.output_shape == (None, *expected)
    assert model.input_shape == (None, *input_shape)
    assert model.name == f"{preset}_backbone"


def test_presets_are_named_and_small():
    assert set(cc.PRESETS) == {"lenet", "vgg_small", "fashion", "alexnet_small", "auto"}
    for name, text in cc.PRESETS.items():
        if text is not None:
            assert cc.normalize_blocks(name) == cc.parse_layers(text)
            assert cc.format_layers(name) == text  # presets are written in canonical form
    params = {name: cc.count_params(name, (28, 28, 1)) for name in cc.PRESETS if name != "auto"}
    assert params["lenet"] < 5_000
    assert all(
        100_000 <= params[name] <= 400_000 for name in ("vgg_small", "fashion", "alexnet_small")
    )
    # The fashion preset: BN, max pool and dropout in every stage, 32 -> 128 filters.
    fashion = cc.normalize_blocks("fashion")
    assert all(b["batch_norm"] for b in fashion)
    assert [b["filters"] for b in fashion if b["pool"] == "max"] == [32, 64, 128]
    assert all(b["dropout"] > 0 for b in fashion if b["pool"] != "none")


def test_auto_derives_stages_from_input_size_and_classes():
    def stages(shape, classes):
        blocks = cc.auto_blocks(shape, classes)
        return [b["filters"] for b in blocks if b["pool"] != "none"], cc.output_shape(blocks, shape)

    assert stages((28, 28, 1), 10) == ([32, 64, 128], (3, 3, 128))
    assert stages((64, 64, 3), 10) == ([32, 64, 128, 256], (4, 4, 256))
    assert stages((224, 224, 3), 1000)[1] == (3, 3, 256)
    assert stages((8, 8, 3), 2) == ([32], (4, 4, 32))
    assert stages((4, 4, 1), 2) == ([32], (2, 2, 32))  # at least one stage
    one_pixel = cc.auto_blocks((1, 1, 3), 2)  # too small to pool: one stage without pooling
    assert all(b["pool"] == "none" for b in one_pixel) and one_pixel
    assert cc.auto_blocks((32, 32, 3), 100)[0]["filters"] == 64
    assert cc.auto_blocks((32, 32, 3), 1000)[0]["filters"] == 128
    with pytest.raises(CnnhubError, match="auto depends on the input shape"):
        cc.normalize_blocks("auto")


# ----------------------------------------------------------------------------- layers and options


def test_each_activation_builds_the_right_layer():
    spec = [{"filters": 4, "activation": a} for a in cc.ACTIVATIONS]
    model = build(spec, (8, 8, 3))
    by_name = {layer.name: layer for layer in model.layers}
    for n, activation in enumerate(cc.ACTIVATIONS, 1):
        if activation == "none":
            assert f"block{n}_act" not in by_name
            continue
        layer = by_name[f"block{n}_act"]
        expected_class = {"leaky_relu": "LeakyReLU", "prelu": "PReLU"}.get(activation, "Activation")
        assert type(layer).__name__ == expected_class
        if expected_class == "Activation":
            keras_name = {"swish": "silu"}.get(activation, activation)  # Keras' own alias
            assert layer.get_config()["activation"] == keras_name
    # PReLU has one slope per channel, independent of the input size.
    prelu_block = cc.ACTIVATIONS.index("prelu") + 1
    assert by_name[f"block{prelu_block}_act"].count_params() == 4


@pytest.mark.parametrize(
    ("padding", "expected_hw", "has_pad_layer"),
    [
        ("same", (10, 10), False),
        ("valid", (8, 8), False),
        ([1, 1, 1, 1], (10, 10), True),
        ([0, 1, 2, 3], (9, 13), True),
        (2, (12, 12), True),
        ([1, 0], (10, 8), True),
    ],
)
def test_each_padding_builds(padding, expected_hw, has_pad_layer):
    spec = [{"filters": 4, "kernel_size": 3, "padding": padding}]
    model = build(spec, (10, 10, 1))
    assert model.output_shape == (None, *expected_hw, 4)
    assert ("block1_pad" in layer_names(model)) == has_pad_layer


def test_layer_names_and_order_are_deterministic():
    spec = "c8k3-pad1-bn-r-mp2-d0.25,c16k3s2-bn-r-ap2"
    names = layer_names(build(spec, (16, 16, 3), name="net"))
    planned = [line.split()[0] for line in cc.describe_blocks(spec, (16, 16, 3))[1:-1]]
    assert planned == [
        "block1_pad",
        "block1_conv",
        "block1_bn",
        "block1_proj",
        "block1_proj_bn",
        "block1_add",
        "block1_act",
        "block1_pool",
        "block1_drop",
        "block2_conv",
        "block2_bn",
        "block2_proj",
        "block2_proj_bn",
        "block2_add",
        "block2_act",
        "block2_pool",
    ]
    assert sorted(names) == sorted(["net_input", *planned])  # Keras lists them by graph depth
    assert names == layer_names(build(spec, (16, 16, 3), name="net"))
    conv = build(spec, (16, 16, 3)).get_layer("block2_conv")
    assert conv.strides == (2, 2) and conv.use_bias is False  # BN makes the bias redundant


def test_residual_blocks_identity_and_projection():
    spec = "c8k3-bn,c8k3-bn-r,c16k3s2-bn-r,c16k3-r"
    model = build(spec, (16, 16, 3))
    names = layer_names(model)
    assert {"block2_add", "block3_add", "block4_add"} <= set(names)
    assert "block2_proj" not in names and "block4_proj" not in names  # identity shortcuts
    assert "block3_proj" in names and "block3_proj_bn" in names  # 8 -> 16 filters, stride 2
    add = model.get_layer("block2_add")
    inbound = {t._keras_history.operation.name for t in add._inbound_nodes[0].input_tensors}
    assert inbound == {"block2_bn", "block1_act"}  # conv+BN plus the block's input
    assert model.output_shape == (None, 8, 8, 16)
    # The shortcut really is added: with zero conv weights the block passes its input through.
    x = np.random.default_rng(0).random((1, 16, 16, 3)).astype("float32")
    sub = keras.Model(model.input, model.get_layer("block2_add").output)
    before = keras.Model(model.input, model.get_layer("block1_act").output)(x)
    model.get_layer("block2_bn").set_weights(
        [np.zeros(8), np.zeros(8), np.zeros(8), np.ones(8)]
    )  # gamma = beta = 0: the conv branch outputs zeros
    np.testing.assert_allclose(sub(x), before, atol=1e-6)


# ----------------------------------------------------------------------------- compact grammar


def test_issue_example_expands_stages_into_blocks():
    blocks = cc.parse_layers("c32k3-bn-c32k3-bn-p2-d0.25,c64k3-bn-c64k3-bn-p2-d0.25")
    assert [b["filters"] for b in blocks] == [32, 32, 64, 64]
    assert [b["pool"] for b in blocks] == ["none", "max", "none", "max"]
    assert [b["dropout"] for b in blocks] == [0.0, 0.25, 0.0, 0.25]
    assert all(b["batch_norm"] for b in blocks)
    assert blocks[0] == {
        "filters": 32,
        "kernel_size": [3, 3],
        "strides": [1, 1],
        "padding": "same",
        "activation": "relu",
        "batch_norm": True,
        "dropout": 0.0,
        "pool": "none",
        "pool_size": [2, 2],
        "pool_strides": [2, 2],
        "residual": False,
    }
    assert cc.format_layers(blocks) == "c32k3-bn-c32k3-bn-mp2-d0.25,c64k3-bn-c64k3-bn-mp2-d0.25"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("c32k3-bn-c32k3-bn-mp2-d0.25,c64k3-bn-c64k3-bn-mp2-d0.25", None),
        ("c6k5-mp2,c16k5-pv-mp2", None),
        ("c32k3s2-bn-r", None),
        ("c16k1x7s2x1-pv-aleaky_relu", None),
        ("c8k3-pad1,c8k3-pad1.2,c8k3-pad0.1.2.3-r", "c8k3-pad1-c8k3-pad1.2-c8k3-pad0.1.2.3-r"),
        ("c32k5-ap3s2-d0.1", None),
        ("c8-atanh-ap2x1s1x2,c8-anone-mp2", "c8k3-atanh-ap2x1s1x2,c8k3-anone-mp2"),
        ("C32K3 - BN - P2 , c64 - D.5", "c32k3-bn-mp2,c64k3-d0.5"),
        ("c8-ps-arelu-mp2s2-d0", "c8k3-mp2"),
        ("c4-aprelu-r-d0.3-mp3,c4-aswish", "c4k3-aprelu-r-mp3-d0.3,c4k3-aswish"),
    ],
)
def test_compact_grammar_round_trips(text, canonical):
    blocks = cc.parse_layers(text)
    formatted = cc.format_layers(blocks)
    assert formatted == (canonical or text)
    assert cc.parse_layers(formatted) == blocks
    assert cc.normalize_blocks(formatted) == cc.normalize_blocks(blocks) == blocks


def test_grammar_tokens_mean_what_the_docstring_says():
    b1, b2, b3 = cc.parse_layers("c16k5x3s2-pad1.2.3.4-aelu-r,c8-pv-ap3s1-d0.125,c4-pad2.1")
    assert (b1["kernel_size"], b1["strides"], b1["padding"]) == ([5, 3], [2, 2], [1, 2, 3, 4])
    assert (b1["activation"], b1["residual"]) == ("elu", True)
    assert (b2["padding"], b2["pool"], b2["pool_size"], b2["pool_strides"]) == (
        "valid",
        "avg",
        [3, 3],
        [1, 1],
    )
    assert b2["dropout"] == 0.125
    assert b3["padding"] == [2, 2, 1, 1]  # vertical.horizontal


def test_list_of_mappings_round_trips_through_the_grammar():
    spec = [
        {"filters": 16, "kernel_size": [3, 5], "strides": [1, 2], "padding": [0, 1, 2, 1]},
        {"filters": 16, "batch_norm": True, "residual": True, "activation": "gelu"},
        {"filters": 32, "pool": "avg", "pool_size": 3, "pool_strides": 2, "dropout": 0.3},
        {"filters": 8, "padding": "valid", "pool": "max", "dropout": 1e-5},
        "c4-bn",  # list items may also be compact strings
    ]
    blocks = cc.normalize_blocks(spec)
    assert len(blocks) == 5 and blocks[4]["filters"] == 4
    text = cc.format_layers(spec)
    assert text == (
        "c16k3x5s1x2-pad0.1.2.1-c16k3-bn-agelu-r-c32k3-ap3s2-d0.3,c8k3-pv-mp2-d0.00001,c4k3-bn"
    )
    assert cc.parse_layers(text) == blocks
    assert cc.normalize_blocks(blocks) == blocks  # idempotent
    # YAML-style nulls mean "default".
    assert (
        cc.normalize_blocks([{"filters": 8, "pool": None, "activation": None}])[0]["activation"]
        == "none"
    )


def test_dense_grammar():
    assert cc.parse_dense("256-d0.5") == ([256], [0.5])
    assert cc.parse_dense("512-d0.5-256-d0.3") == ([512, 256], [0.5, 0.3])
    assert cc.parse_dense("512-256-d0.1") == ([512, 256], [0.0, 0.1])
    assert cc.parse_dense(128) == ([128], [0.0])
    assert cc.parse_dense("") == cc.parse_dense("none") == ([], [])
    for text in ("256-d0.5", "512-d0.5-256-d0.3", "512-256-d0.1", "64", "none"):
        assert cc.format_dense(*cc.parse_dense(text)) == text
    for bad, token in [
        ("d0.5", "d0.5"),
        ("256-d1", "d1"),
        ("256-x", "x"),
        ("256-d0.1-d0.2", "d0.2"),
    ]:
        with pytest.raises(CnnhubError, match=r"dense_layers.*Received: dense_layers=") as info:
            cc.parse_dense(bad)
        assert f"token {token}" in str(info.value)


# ----------------------------------------------------------------------------- validation errors


@pytest.mark.parametrize(
    ("block", "fragments"),
    [
        (
            {"filters": 8, "kernal_size": 3},
            ["unknown key `kernal_size`", "Did you mean `kernel_size`?", "Received: kernal_size=3"],
        ),
        (
            {"filters": 8, "dropuot": 0.5},
            ["unknown key `dropuot`", "`dropout`", "Received: dropuot=0.5"],
        ),
        ({"kernel_size": 3}, ["`filters` is required"]),
        ({"filters": 0}, ["`filters` must be an integer >= 1", "Received: filters=0"]),
        ({"filters": 8.5}, ["`filters`", "Received: filters=8.5"]),
        ({"filters": 8, "kernel_size": [3, 0]}, ["`kernel_size`", "Received: kernel_size=[3, 0]"]),
        ({"filters": 8, "strides": "2"}, ["`strides`", "Received: strides='2'"]),
        (
            {"filters": 8, "padding": "smae"},
            ["`padding` must be one of same, valid", "Received: padding=smae"],
        ),
        ({"filters": 8, "padding": [1, 2, 3]}, ["`padding`", "Received: padding=[1, 2, 3]"]),
        (
            {"filters": 8, "activation": "gelux"},
            [
                "`activation` must be one of none, relu",
                "Did you mean `gelu`?",
                "Received: activation=gelux",
            ],
        ),
        (
            {"filters": 8, "batch_norm": "yes"},
            ["`batch_norm` must be true or false", "Received: batch_norm='yes'"],
        ),
        (
            {"filters": 8, "residual": 1},
            ["`residual` must be true or false", "Received: residual=1"],
        ),
        (
            {"filters": 8, "dropout": 1.0},
            ["`dropout` must be a number >= 0 and < 1", "Received: dropout=1.0"],
        ),
        ({"filters": 8, "dropout": -0.1}, ["`dropout`", "Received: dropout=-0.1"]),
        (
            {"filters": 8, "pool": "maxx"},
            ["`pool` must be one of none, max, avg", "Did you mean `max`?", "Received: pool=maxx"],
        ),
        ({"filters": 8, "pool": "max", "pool_size": 0}, ["`pool_size`", "Received: pool_size=0"]),
        (
            {"filters": 8, "pool": "max", "pool_strides": [1, 2, 3]},
            ["`pool_strides`", "Received: pool_strides=[1, 2, 3]"],
        ),
    ],
)
def test_bad_block_values_fail_naming_key_and_value(block, fragments):
    with pytest.raises(CnnhubError) as info:
        cc.normalize_blocks([{"filters": 4}, block])
    message = str(info.value)
    assert message.startswith("custom_conv_blocks block 2: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("c8-bnn", ["stage 1", "unknown token", "Received: bnn"]),
        ("c8,bn-c8", ["stage 2", "must start with a conv token", "Received: bn"]),
        ("c8-agelx", ["unknown activation `gelx`", "Did you mean `gelu`?", "Received: agelx"]),
        ("c8-bn-bn", ["`batch_norm` is given twice", "Received: bn"]),
        ("c8-mp2-ap2", ["`pool` is given twice", "Received: ap2"]),
        ("c8-aswish-asigmoid", ["`activation` is given twice", "Received: asigmoid"]),
        ("c8-pad1.2.3", ["explicit padding takes 1, 2 or 4 numbers", "Received: pad1.2.3"]),
        ("c8,,c8", ["stage 2", "empty token"]),
        ("c8-d1.5", ["block 1 (c8)", "`dropout`", "Received: dropout=1.5"]),
        ("c8,c0", ["block 2 (c0)", "`filters` must be an integer >= 1", "Received: filters=0"]),
        ("resnet", ["stage 1", "Received: resnet"]),
        ([], ["at least one block"]),
        ({"filters": 8}, ["must be a list of blocks", "preset name"]),
        (42, ["must be a list of blocks", "Received: custom_conv_blocks=42"]),
    ],
)
def test_bad_specs_fail_with_one_clear_line(spec, fragments):
    with pytest.raises(CnnhubError) as info:
        cc.normalize_blocks(spec)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        # 16 -> 4 -> 2, then a 4x4 pool window at block 3.
        (
            "c8-mp4,c8-mp2,c8-mp4",
            ["block 3 (max pool 4x4, stride 4)", "input 2x2x8 is smaller than the pool window"],
        ),
        (
            [{"filters": 8, "pool": "max"}] * 2 + [{"filters": 64, "pool": "avg", "pool_size": 8}],
            ["block 3 (avg pool 8x8, stride 8)", "input 4x4x64", "IMG_HEIGHT/IMG_WIDTH"],
        ),
        # 16 -> 4, then a valid 5x5 conv.
        (
            "c8-mp4,c8k5-pv",
            ["block 2 (conv 5x5, valid padding)", "input 4x4x8 is smaller than the 5x5 kernel"],
        ),
        ("c8k17-pv", ["block 1 (conv 17x17, valid padding)", "input 16x16x3"]),
        # Valid padding shrinks 16 -> 14: the shortcut cannot be added.
        ("c8,c8-pv-r", ["block 2 (residual add)", "conv output 14x14x8", "block input 16x16x8"]),
        ("c8k3s2-pv-r", ["block 1 (residual add)", "7x7x8", "16x16x3", "8x8x8"]),
        (
            "c8-mp4,c8s8",
            [
                "block 2 (conv 3x3, same padding, stride 8x8)",
                "stride 8x8 is larger than its input 4x4x8",
            ],
        ),
    ],
)
def test_shape_errors_name_the_block(spec, fragments):
    for check in (
        lambda: cc.output_shape(spec, (16, 16, 3)),
        lambda: cc.resolve_blocks(spec, (16, 16, 3), 2),
        lambda: cc.describe_blocks(spec, (16, 16, 3)),
        lambda: cc.build_custom_backbone((16, 16, 3), spec),
    ):
        with pytest.raises(CnnhubError) as info:
            check()
        message = str(info.value)
        assert message.startswith("custom_conv_blocks block ")
        assert "\n" not in message
        for fragment in fragments:
            assert fragment in message


def test_bad_input_shape_and_classes():
    with pytest.raises(CnnhubError, match=r"input_shape.*Received: input_shape=\(28, 28\)"):
        cc.output_shape("c8", (28, 28))
    with pytest.raises(CnnhubError, match="num_classes"):
        cc.resolve_blocks("auto", (28, 28, 1), 0)


def test_describe_blocks_lists_every_layer_with_shapes():
    lines = cc.describe_blocks("c8k3-bn-r-mp2,c16k3s2-aprelu-d0.5", (28, 28, 1))
    text = "\n".join(lines)
    assert lines[0].split() == ["input", "28x28x1"]
    for name, shape in [
        ("block1_conv", "28x28x8"),
        ("block1_proj", "28x28x8"),
        ("block1_pool", "14x14x8"),
        ("block2_conv", "7x7x16"),
        ("block2_act", "7x7x16"),
        ("block2_drop", "7x7x16"),
    ]:
        assert any(line.split()[:2] == [name, shape] for line in lines), (name, text)
    total = cc.count_params("c8k3-bn-r-mp2,c16k3s2-aprelu-d0.5", (28, 28, 1))
    assert lines[-1] == f"total {total:,} params, output 7x7x16"


def test_importing_needs_no_tensorflow():
    code = (
        "import sys; from cnnhub import custom as cc; "
        "cc.resolve_blocks('auto', (28, 28, 1), 10); cc.describe_blocks('fashion', (28, 28, 1)); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# ----------------------------------------------------------------------------- saving and training


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras saving
def test_saved_model_reloads_in_safe_mode_and_predicts_identically(tmp_path):
    spec = "c8k3-pad1-bn-aleaky_relu-r-mp2,c16k3s2-bn-aprelu-r-ap2-d0.2,c16k3-agelu-r"
    backbone = build(spec, (16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(backbone.output)
    model = keras.Model(backbone.input, keras.layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(0)  # non-trivial weights, BN statistics and PReLU slopes
    model.set_weights([rng.uniform(0.1, 1.0, w.shape) for w in model.get_weights()])
    path = tmp_path / "custom.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert layer_names(loaded) == layer_names(model)
    batch = rng.random((4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-6, atol=1e-6
    )
    assert not any(type(layer).__name__ == "Lambda" for layer in loaded.layers)


def synthetic_corners(n, seed):
    """16x16 gray noise; class 1 has a bright 6x6 top-left corner, class 0 a dark one."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = 0.5 + 0.1 * rng.standard_normal((n, 16, 16, 1))
    x[:, :6, :6, 0] = np.where(y[:, None, None] == 1, 0.9, 0.1) + 0.1 * rng.standard_normal(
        (n, 6, 6)
    )
    return x.astype("float32"), y


def test_tiny_custom_net_learns_synthetic_task():
    keras.utils.set_random_seed(0)
    x_train, y_train = synthetic_corners(128, seed=1)
    x_test, y_test = synthetic_corners(64, seed=2)
    backbone = build("c8k3-bn-mp2,c16k3-bn-mp2", (16, 16, 1), name="tiny")
    features = keras.layers.GlobalAveragePooling2D()(backbone.output)
    model = keras.Model(backbone.input, keras.layers.Dense(2, activation="softmax")(features))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=2, batch_size=8, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.75


def test_leaky_relu_has_one_slope_in_conv_blocks_and_dense_head():
    from cnnhub.model_factory import build_model
    from cnnhub.settings import load_defaults

    config = dict(
        load_defaults()[0], MODEL_NAME="custom", IMG_HEIGHT=8, IMG_WIDTH=8, WEIGHTS="none",
        CUSTOM_CONV_BLOCKS="c4-aleaky_relu", NUM_NODES=[4], NUM_DROPOUTS=[0.0],
        DENSE_ACTIVATION="leaky_relu", COLOR_MODE="rgb",
    )  # fmt: skip
    model = build_model(config, 2)
    conv_act = model.get_layer("backbone").get_layer("block1_act")
    head_act = model.get_layer("head_act1")
    x = np.array([[-2.0, -1.0, 0.0, 3.0]], dtype=np.float32)
    for layer in (conv_act, head_act):
        np.testing.assert_allclose(np.asarray(layer(x)), [[-0.4, -0.2, 0.0, 3.0]], rtol=1e-6)
    from cnnhub.custom.build import LEAKY_RELU_SLOPE

    assert LEAKY_RELU_SLOPE == 0.2
