"""Pretrained starts (issue 15): `auto` defaults, ImageNet weights offline, runs as backbones.

No test downloads: Keras's download function is replaced by one returning a weights file the
test wrote in Keras's own layout, or the network guard makes the download fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import h5py
import keras
import numpy as np
import pytest
from keras.src.backend import config as keras_config
from keras.src.legacy.saving import legacy_h5_format
from keras.src.utils import file_utils
from trained_runs import best_weights_file, keras_model, shared_tiny_run

from cnnhub import settings
from cnnhub.cli import main as cnnhub_main
from cnnhub.commands.train import train_main
from cnnhub.errors import CnnhubError
from cnnhub.model_defaults import CUSTOM_MAX_SIZE, resolve_model_config
from cnnhub.model_factory import BACKBONE_LAYER, build_model
from cnnhub.pretrained import IMAGENET_FILES, imagenet_url, keras_cache_dir, planned_download
from cnnhub.registry import BACKBONES, get_backbone
from cnnhub.runner import resolve_models

KEYS = ("WEIGHTS", "IMG_HEIGHT", "IMG_WIDTH", "TRAINING_TYPE")


def resolved(model: str, *flags: str, sizes=None) -> tuple:
    config = settings.resolve(["-m", model, *flags])[0]
    inspection = None
    if sizes is not None:
        report = SimpleNamespace(heights=[h for h, _ in sizes], widths=[w for _, w in sizes])
        inspection = SimpleNamespace(splits=[report])
    out, notes = resolve_model_config(config, get_backbone(model), inspection)
    assert notes, "every auto value is reported"
    return tuple(out[k] for k in KEYS)


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    return shared_tiny_run(tiny_data, tmp_path_factory)


# ---------------------------------------------------------------- auto resolution


def test_defaults_are_auto():
    config = settings.resolve([])[0]
    assert tuple(config[k] for k in KEYS) == ("auto",) * 4


@pytest.mark.parametrize(
    "model, size",
    [("resnet50", 224), ("xception", 299), ("inceptionv3", 299), ("nasnet_large", 331),
     ("efficientnetb3", 300), ("efficientnetv2m", 480), ("mobilenetv2", 224)],
)  # fmt: skip
def test_auto_gives_imagenet_the_default_size_and_fine_tune(model, size):
    assert resolved(model) == ("imagenet", size, size, "fine_tune")


def test_auto_for_models_without_imagenet_weights():
    assert resolved("squeezenet") == ("none", 224, 224, "train_all")
    # custom: the training images' median size (odd sizes included), capped
    assert resolved("custom", sizes=[(28, 28), (28, 30), (30, 40)]) == ("none", 28, 30, "train_all")
    big = [(3000, 4000)] * 3
    assert resolved("custom", sizes=big) == ("none", CUSTOM_MAX_SIZE, CUSTOM_MAX_SIZE, "train_all")
    assert resolved("custom", sizes=[(4, 4)])[1:3] == (8, 8)  # never below the model's minimum


def test_explicit_values_are_kept_and_shape_the_rest():
    assert resolved("resnet50", "-w", "none") == ("none", 224, 224, "train_all")
    assert resolved("resnet50", "-height", "64") == ("imagenet", 64, 224, "fine_tune")
    assert resolved("resnet50", "-tt", "freeze_all", "-width", "96") == (
        "imagenet", 224, 96, "freeze_all"
    )  # fmt: skip


def test_auto_fine_tune_fits_the_epochs():
    config = settings.resolve(["-m", "resnet50", "-e", "2"])[0]
    out, notes = resolve_model_config(config, get_backbone("resnet50"))
    assert (out["TRAINING_TYPE"], out["FINE_TUNE_AFTER"]) == ("fine_tune", 1)
    assert any("fine_tune_after = 1" in n for n in notes)
    config = settings.resolve(["-m", "resnet50", "-e", "1"])[0]
    assert resolve_model_config(config, get_backbone("resnet50"))[0]["TRAINING_TYPE"] == (
        "freeze_all"
    )


@pytest.mark.parametrize(
    "value, message", [("0", "in [1, 8192] or auto"), ("big", "whole number or auto")]
)
def test_bad_sizes_are_one_line(value, message, tmp_path, capsys):
    assert train_main(["-height", value, "-sl", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "height" in err and message in err


def test_explicit_size_below_the_minimum_is_refused(tiny_data, tmp_path, capsys):
    argv = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv += ["-m", "xception", "-w", "none", "-height", "64", "-sl", str(tmp_path)]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "minimum input size of `xception`, 71x71" in err


@pytest.mark.parametrize("model", ["custom", "squeezenet"])
def test_imagenet_for_a_model_without_it_is_bad_input(model, tmp_path, capsys):
    assert train_main(["-m", model, "-w", "imagenet", "-sl", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no ImageNet weights for `{model}`" in err
    assert "Received: weights=imagenet" in err and not (tmp_path / "model_repository").exists()


def test_run_config_records_the_resolved_values(tiny_run):
    config = json.loads((tiny_run / "run_config.json").read_text(encoding="utf-8"))
    # trained with -height/-width 32 and the defaults for the rest
    assert tuple(config[k] for k in KEYS) == ("none", 32, 32, "train_all")


# ---------------------------------------------------------------- ImageNet weights, offline


def keras_layout_file(path: Path, backbone) -> dict[str, list[np.ndarray]]:
    """Write ``backbone``'s weights (randomised) as Keras's ImageNet files are laid out (legacy
    HDF5: one group per layer, ``weight_names`` attributes); return them by layer name."""
    rng = np.random.default_rng(0)
    for weight in backbone.weights:
        weight.assign(rng.normal(0, 0.1, weight.shape).astype("float32"))
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, backbone)
    written: dict[str, list[np.ndarray]] = {}
    with h5py.File(path, "r") as handle:  # read back independently of Keras
        for name in handle.attrs["layer_names"]:
            group = handle[name]
            names = group.attrs["weight_names"]
            if len(names):
                written[name.decode() if isinstance(name, bytes) else name] = [
                    np.asarray(group[n]) for n in names
                ]
    return written


def test_imagenet_weights_come_from_the_file_keras_downloads(tmp_path, monkeypatch):
    """The real weights="imagenet" path, with Keras's download replaced by a local file."""
    spec = get_backbone("mobilenetv2")
    file_name = IMAGENET_FILES["mobilenetv2"][0]
    source = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    written = keras_layout_file(tmp_path / file_name, source)
    keras.backend.clear_session()
    calls = []

    def fake_get_file(fname=None, origin=None, **kwargs):
        calls.append((fname, origin, kwargs.get("cache_subdir")))
        return str(tmp_path / fname)

    monkeypatch.setattr(file_utils, "get_file", fake_get_file)
    config = settings.resolve(["-m", "mobilenetv2", "-height", "32", "-width", "32"])[0]
    (model_config,) = resolve_models(config, [spec], inspection=None)
    assert model_config["WEIGHTS"] == "imagenet" and model_config["TRAINING_TYPE"] == "fine_tune"
    model = build_model(model_config, num_classes=3)
    assert set(calls) == {(file_name, imagenet_url("mobilenetv2"), "models")}
    backbone = model.get_layer(BACKBONE_LAYER)
    assert len(written) == len([layer for layer in backbone.layers if layer.weights])
    for name, arrays in written.items():
        for got, want in zip(backbone.get_layer(name).get_weights(), arrays, strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["vgg16", "mobilenetv2", "efficientnetb0"])
def test_cache_table_is_what_keras_asks_for(name):
    spec = BACKBONES[name]
    # at the minimum size, to build fast: the file names do not depend on it (mobilenets fall
    # back to their 224 weights below 96 px)
    download = planned_download(spec, (spec.min_size, spec.min_size, 3))
    assert (download.fname, download.origin) == (IMAGENET_FILES[name][0], imagenet_url(name))
    assert download.kwargs["cache_subdir"] == "models"


def keras_home(tmp_path: Path, monkeypatch) -> Path:
    """An empty Keras home for this test (Keras reads $KERAS_HOME once, when imported)."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    return home


def test_offline_run_fails_before_writing_with_url_and_cache_path(
    tiny_data, tmp_path, capsys, monkeypatch
):
    home = keras_home(tmp_path, monkeypatch)  # empty: the network guard refuses the download
    save = tmp_path / "save"
    argv = ["-m", "custom,mobilenetv2", "-height", "32", "-width", "32", "-sl", str(save),
            "-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]  # fmt: skip
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    file_name = IMAGENET_FILES["mobilenetv2"][0]
    assert err.count("\n") == 1 and "Traceback" not in err
    assert imagenet_url("mobilenetv2") in err
    assert str(home / "models" / file_name) in err
    assert "-w none" in err and "cnnhub weights --download mobilenetv2" in err
    assert not save.exists()  # not even the custom run, first in the list, was started


def test_weights_command_lists_the_cache_and_downloads(tmp_path, capsys, monkeypatch):
    home = keras_home(tmp_path, monkeypatch)
    (home / "models").mkdir()
    (home / "models" / IMAGENET_FILES["resnet50"][0]).write_bytes(b"cached")
    assert keras_cache_dir() == home
    assert cnnhub_main(["weights"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["resnet50"][1:] == ["yes", str(home / "models" / IMAGENET_FILES["resnet50"][0])]
    assert rows["mobilenetv2"][1] == "no" and "custom" not in rows
    assert len([r for r in rows.values() if r[1] in ("yes", "no")]) == 40

    def fake_get_file(fname=None, origin=None, cache_subdir="datasets", **kwargs):
        target = home / cache_subdir / fname
        target.write_bytes(origin.encode())
        return str(target)

    monkeypatch.setattr(file_utils, "get_file", fake_get_file)
    assert cnnhub_main(["weights", "--download", "mobilenet-v2"]) == 0
    out = capsys.readouterr().out
    target = home / "models" / IMAGENET_FILES["mobilenetv2"][0]
    assert target.read_text() == imagenet_url("mobilenetv2")
    assert f"mobilenetv2: {target}" in out  # what --download fetched, then the table:
    assert [line.split() for line in out.splitlines() if line.startswith("mobilenetv2 ")] == [
        ["mobilenetv2", "yes", str(target)]
    ]
    assert cnnhub_main(["weights", "--download", "resnet50,custom"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no ImageNet weights for custom" in err


# ---------------------------------------------------------------- your runs as backbones


def test_transfer_from_a_run_with_other_classes_and_head(tiny_run, capsys):
    config = settings.resolve(["-w", str(tiny_run), "--custom_conv_blocks", "c8-bn-mp2,c16-bn-mp2",
                               "--num_nodes", "16", "--num_dropouts", "0"])[0]  # fmt: skip
    inspection = SimpleNamespace(splits=[SimpleNamespace(heights=[50], widths=[50])])
    model_config, notes = resolve_model_config(config, get_backbone("custom"), inspection)
    # the source run's size, not the images'; pretrained weights -> fine_tune
    assert tuple(model_config[k] for k in KEYS) == (str(tiny_run), 32, 32, "fine_tune")
    keras.utils.set_random_seed(3)
    model = build_model(model_config, num_classes=5)
    report = capsys.readouterr().out
    source = keras_model(tiny_run, best_weights_file(tiny_run))
    ours, theirs = model.get_layer(BACKBONE_LAYER), source.get_layer(BACKBONE_LAYER)
    assert ours.weights and len(ours.weights) == len(theirs.weights)
    for a, b in zip(ours.weights, theirs.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    keras.utils.set_random_seed(3)
    fresh = build_model(dict(model_config, WEIGHTS="none"), num_classes=5)
    for name in ("head_dense1", "predictions"):  # the head keeps its fresh initial values
        for a, b in zip(model.get_layer(name).weights, fresh.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert model.get_layer("predictions").kernel.shape == (16, 5)
    assert "loaded the backbone" in report and "starting fresh: head_dense1, predictions" in report
    assert best_weights_file(tiny_run) in report  # a run folder means its best weights


def test_other_classes_of_the_same_count_get_a_fresh_head(tiny_run, capsys):
    """A head that fits in shape is still not loaded for other classes (the run's names)."""
    config = json.loads((tiny_run / "run_config.json").read_text(encoding="utf-8"))
    config["WEIGHTS"] = str(tiny_run)
    keras.utils.set_random_seed(5)
    model = build_model(config, num_classes=3, class_names=["0", "1", "2"])
    assert "loaded the backbone" in capsys.readouterr().out
    keras.utils.set_random_seed(5)
    fresh = build_model(dict(config, WEIGHTS="none"), num_classes=3)
    for a, b in zip(model.get_layer("predictions").weights, fresh.get_layer("predictions").weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    same = build_model(config, num_classes=3, class_names=["circle", "square", "stripes"])
    assert "all layers loaded" in capsys.readouterr().out
    source = keras_model(tiny_run, best_weights_file(tiny_run))
    for a, b in zip(same.weights, source.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_same_architecture_and_classes_load_everything(tiny_run, capsys):
    final = tiny_run / "final_model.keras"
    config = json.loads((tiny_run / "run_config.json").read_text(encoding="utf-8"))
    model = build_model(dict(config, WEIGHTS=str(final)), num_classes=3)
    assert "all layers loaded" in capsys.readouterr().out
    saved = keras.saving.load_model(final, safe_mode=True)
    for a, b in zip(model.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_channel_mismatch_names_the_source_color_mode(tiny_run):
    config = settings.resolve(["-w", str(tiny_run), "--color_mode", "grayscale",
                               "-height", "32", "-width", "32", "-tt", "train_all"])[0]  # fmt: skip
    source = json.loads((tiny_run / "run_config.json").read_text(encoding="utf-8"))
    config = dict(config, CUSTOM_CONV_BLOCKS=source["CUSTOM_CONV_BLOCKS"])
    with pytest.raises(CnnhubError) as error:
        build_model(config, num_classes=5)
    message = str(error.value)
    assert "trained with --color_mode rgb: pass the same here" in message
    assert "-w imagenet" not in message  # custom has no ImageNet weights to suggest


def test_incompatible_backbone_names_the_layer_and_both_shapes(tiny_run, tiny_data, tmp_path):
    weights = tiny_run / "model_logs" / best_weights_file(tiny_run)
    config = settings.resolve(["-w", str(weights), "--custom_conv_blocks", "c8-bn-mp2,c32-bn-mp2",
                               "-height", "32", "-width", "32", "-tt", "train_all"])[0]  # fmt: skip
    with pytest.raises(CnnhubError) as error:
        build_model(config, num_classes=3)
    message = str(error.value)
    assert "\n" not in message and "does not fit this model" in message
    assert "expects shape (3, 3, 8, 32) but the file has (3, 3, 8, 16)" in message
    assert "backbone/" in message and f"Received: weights={weights}" in message


def test_another_architecture_is_bad_input_before_any_run_folder(
    tiny_run, tiny_data, tmp_path, capsys
):
    argv = ["-m", "mobilenetv3small", "-w", str(tiny_run), "-e", "1", "-sl", str(tmp_path),
            "-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]  # fmt: skip
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "The file comes from a `custom` run, this run builds `mobilenetv3small`" in err
    assert not (tmp_path / "model_repository").exists() or not any(
        (tmp_path / "model_repository").iterdir()
    )
