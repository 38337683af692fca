"""Feature maps, Grad-CAM and the errors gallery, for a custom net and an ImageNet backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from trained_runs import (
    FABRICATED_MODELS,
    copy_without_best,
    error_lines,
    fabricate_run,
    keras_model,
    pixels,
    shared_tiny_run,
    valid_paths,
)

from cnnhub.cli import main
from cnnhub.explain import errors as errors_module
from cnnhub.explain import featuremaps as featuremaps_module
from cnnhub.explain import gradcam as gradcam_module
from cnnhub.explain.common import conv_layers
from conftest import make_image_folder

# Class names that break naive code: mathtext, a spreadsheet formula, non-ASCII, a space.
ODD_CLASSES = ["$\\frac{1}{$ odd", "=HYPERLINK(x)", "naïve name"]

# Keras's own keras.applications builders trigger this NumPy 2 notice; not cnnhub's code.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def custom_run(tiny_data, tmp_path_factory) -> Path:
    """A trained custom CNN, without post-evaluation (so `best` falls back to the last epoch)."""
    trained = shared_tiny_run(tiny_data, tmp_path_factory)
    return copy_without_best(trained, tmp_path_factory.mktemp("explain") / "tiny")


@pytest.fixture(scope="module")
def mobilenet_run(custom_run) -> Path:
    """A mobilenetv2 run folder (32x32, random init: -w none) with the same data and classes."""
    return fabricate_run(custom_run, custom_run.parent / "mobilenet", "mobilenetv2")


@pytest.fixture(scope="module")
def mobilenet_model(mobilenet_run):
    """The model whose weights the mobilenetv2 run holds (building another costs seconds)."""
    return FABRICATED_MODELS[str(mobilenet_run)]


@pytest.fixture(scope="module")
def odd_run(custom_run, tmp_path_factory) -> Path:
    """A custom-net run whose class names need escaping, with a validation folder to match."""
    valid = make_image_folder(tmp_path_factory.mktemp("odd_valid"), 2, classes=ODD_CLASSES)
    return fabricate_run(
        custom_run, custom_run.parent / "odd", None, ODD_CLASSES, DATA_DIR_VALID=str(valid)
    )


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def last_weights(run: Path) -> Path:
    return sorted((run / "model_logs").glob("weights-*.weights.h5"))[-1]


# --------------------------------------------------------------------------- feature maps


def test_featuremaps_custom_all_conv_layers(custom_run, tiny_data, capsys):
    image = valid_paths(tiny_data)[0]
    code, stdout, stderr = run_main(capsys, "featuremaps", str(custom_run), image)
    assert code == 0, stderr
    assert "best_weights.json not found" in stderr  # falls back to the last epoch, with a note
    folder = custom_run / "explain" / "featuremaps" / Path(image).stem
    files = sorted(folder.glob("*.png"))
    # c8-bn-mp2,c16-bn-mp2: two conv layers with 8 and 16 channels, both 32x32 / 16x16 maps
    assert [f.name for f in files] == ["001_block1_conv.png", "005_block2_conv.png"]
    assert [str(f) for f in files] == [line for line in stdout.splitlines() if line.endswith("png")]
    assert png_size(files[0]) == featuremaps_module.figure_pixels(8)
    assert png_size(files[1]) == featuremaps_module.figure_pixels(16)


def test_featuremaps_imagenet_backbone(mobilenet_model, tiny_data, tmp_path):
    # The function behind the command (the CLI path is tested with the custom run above):
    # building mobilenetv2 again for a CLI call costs seconds.
    image = pixels(valid_paths(tiny_data)[:1])[0]
    paths = featuremaps_module.write_feature_maps(
        mobilenet_model, image, tmp_path / "one", "block_1_expand", max_channels=20
    )
    assert [p.name for p in paths] == ["009_block_1_expand.png"]
    assert png_size(paths[0]) == featuremaps_module.figure_pixels(20)  # 96 channels, 20 shown
    # without --layer: every Conv2D and DepthwiseConv2D of mobilenetv2 (one PNG each)
    layers = conv_layers(mobilenet_model.get_layer("backbone"))
    assert len(layers) == 52 and layers[-1].name == "Conv_1"


def test_feature_maps_are_the_layer_activations(mobilenet_model, tiny_data):
    import keras

    model = mobilenet_model
    image = pixels(valid_paths(tiny_data)[:1])[0]
    backbone = model.get_layer("backbone")
    layer = backbone.get_layer("Conv1")
    (maps,) = featuremaps_module.feature_maps(model, image, [layer])
    # independent: the backbone input is the "tf"-mode preprocessed image, x / 127.5 - 1
    probe = keras.Model(backbone.input, layer.output)
    expected = np.asarray(probe(image[None] / 127.5 - 1.0))[0]
    assert maps.shape == (16, 16, 32)
    np.testing.assert_allclose(maps, expected, atol=1e-4)


def test_featuremaps_unknown_layer(custom_run, tiny_data, capsys):
    args = ["featuremaps", str(custom_run), valid_paths(tiny_data)[0], "--layer", "nope"]
    code, _, stderr = run_main(capsys, *args)
    assert code == 2
    (line,) = error_lines(stderr)
    assert (
        "`--layer` must name" in line and "block1_conv" in line and "Received: layer=nope" in line
    )


# --------------------------------------------------------------------------- Grad-CAM


def test_gradcam_predicted_class(custom_run, tiny_data, capsys):
    run = custom_run
    image = valid_paths(tiny_data)[3]
    code, stdout, stderr = run_main(capsys, "gradcam", str(run), image)
    assert code == 0, stderr
    proba = keras_model(run, last_weights(run)).predict(pixels([image]), verbose=0)[0]
    names = json.loads((run / "index_class_mapping.json").read_text())
    predicted = names[str(int(np.argmax(proba)))]
    path = run / "explain" / "gradcam" / f"{Path(image).stem}_{predicted}.png"
    assert path.is_file() and str(path) in stdout
    assert f"Grad-CAM for {predicted} (p={proba.max():.3f})" in stdout
    assert png_size(path) == gradcam_module.FIGURE_PIXELS


def test_gradcam_named_class_and_heatmap(
    mobilenet_run, mobilenet_model, custom_run, tiny_data, tmp_path, capsys
):
    image = valid_paths(tiny_data)[0]
    out = tmp_path / "cam.png"
    args = ["gradcam", str(mobilenet_run), image, "--class", "stripes", "--out", str(out)]
    code, stdout, stderr = run_main(capsys, *args)
    assert code == 0, stderr
    assert "Grad-CAM for stripes" in stdout and png_size(out) == gradcam_module.FIGURE_PIXELS
    # at 32x32 mobilenetv2 ends in a 1x1 map: the default layer is the last larger one
    assert "at layer block_13_expand_relu (2x2x576)" in stdout
    result = gradcam_module.grad_cam(mobilenet_model, pixels([image])[0])
    assert result.layer == "block_13_expand_relu" and result.layer_shape == (2, 2, 576)
    expected = np.asarray(mobilenet_model(pixels([image]), training=False))[0]
    assert result.class_index == int(np.argmax(expected))
    custom = keras_model(custom_run, last_weights(custom_run))
    result = gradcam_module.grad_cam(custom, pixels([image])[0])
    expected = custom.predict(pixels([image]), verbose=0)[0]
    assert result.class_index == int(np.argmax(expected))
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    assert result.heatmap.shape == (8, 8)  # block2_pool of c8-bn-mp2,c16-bn-mp2 at 32x32
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0


def test_gradcam_unknown_class(custom_run, tiny_data, capsys):
    args = ["gradcam", str(custom_run), valid_paths(tiny_data)[0], "--class", "dog"]
    code, _, stderr = run_main(capsys, *args)
    assert code == 2
    (line,) = error_lines(stderr)
    assert line.startswith("cnnhub gradcam: error: `--class` must be one of")
    assert "circle, square, stripes" in line and "Received: class=dog" in line


def test_gradcam_odd_class_names_render_and_file_name_is_safe(odd_run, tiny_data, capsys):
    image = valid_paths(tiny_data)[0]
    code, stdout, stderr = run_main(
        capsys, "gradcam", str(odd_run), image, "--class", ODD_CLASSES[0]
    )
    assert code == 0, stderr  # an unescaped "$\frac{1}{$" would make matplotlib raise
    (path,) = (odd_run / "explain" / "gradcam").glob("*.png")
    assert "$" not in path.name and "\\" not in path.name and " " not in path.name
    assert png_size(path) == gradcam_module.FIGURE_PIXELS


# --------------------------------------------------------------------------- errors gallery


def test_errors_gallery_matches_independent_predictions(custom_run, tiny_data, capsys):
    code, stdout, stderr = run_main(capsys, "errors", str(custom_run), "--weights", "1")
    assert code == 0, stderr
    weights = sorted((custom_run / "model_logs").glob("weights-001-*.weights.h5"))[0]
    paths = valid_paths(tiny_data)
    labels = np.array([["circle", "square", "stripes"].index(Path(p).parent.name) for p in paths])
    proba = keras_model(custom_run, weights).predict(pixels(paths), verbose=0)
    wrong = np.flatnonzero(proba.argmax(1) != labels)
    stem = weights.name[: -len(".weights.h5")]
    png = custom_run / "explain" / f"errors_{stem}.png"
    if len(wrong) == 0:
        assert "No misclassified" in stdout and not png.exists()
        return
    assert png_size(png) == errors_module.figure_pixels(min(16, len(wrong)))
    frame = pd.read_csv(png.with_suffix(".csv"))
    assert len(frame) == len(wrong)
    expected = {paths[i]: float(proba[i].max()) for i in wrong}
    assert set(frame["image_path"]) == set(expected)
    assert list(frame["confidence"]) == sorted(frame["confidence"], reverse=True)
    for row in frame.itertuples():
        assert row.confidence == pytest.approx(expected[row.image_path], abs=1e-5)
    assert f"{len(wrong)} of {len(paths)} validation images wrong" in stdout


def test_errors_gallery_with_odd_class_names(odd_run, capsys):
    code, stdout, stderr = run_main(capsys, "errors", str(odd_run), "--count", "3")
    assert code == 0, stderr
    png = odd_run / "explain" / "errors_weights-001-0.0000.png"
    csv = png.with_suffix(".csv")
    if "No misclassified" in stdout:  # pragma: no cover - a random net that is always right
        return
    assert png.is_file() and csv.is_file()
    width, _ = png_size(png)
    assert width == errors_module.figure_pixels(3)[0]
    text = csv.read_text(encoding="utf-8")
    assert "'=HYPERLINK(x)" in text or "=HYPERLINK" not in text  # formula cells are escaped


def test_errors_needs_the_validation_folder(custom_run, tmp_path, capsys):
    code, _, stderr = run_main(capsys, "errors", str(custom_run), "--valid", str(tmp_path / "no"))
    assert code == 2
    (line,) = error_lines(stderr)
    assert "validation data given is not there" in line and "--valid" in line


def test_explain_missing_run(tmp_path, capsys):
    for command in (["featuremaps", "x.png"], ["gradcam", "x.png"], []):
        name = command[0] if command else "errors"
        code, _, stderr = run_main(capsys, name, str(tmp_path / "missing"), *command[1:])
        assert code == 2
        (line,) = error_lines(stderr)
        assert line.startswith(f"cnnhub {name}: error: Run folder not found")
