"""Every command that reads images gives the model the run's own input, for RGB and grayscale.

One tiny grayscale run is trained here, with ``--val_split`` (so its validation data exists only
as the run's ``split.csv``); the RGB run is the session's shared tiny run, copied. Expected
model inputs come from the training pipeline itself (``make_dataset``), not from the commands'
code, so a command that decodes differently from training fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from trained_runs import (
    TINY_FLAGS,
    copy_with_data,
    error_lines,
    keras_model,
    shared_tiny_run,
    valid_paths,
)

from cnnhub.cli import main
from cnnhub.data.pipeline import make_dataset
from cnnhub.data.sets import Split
from cnnhub.evaluation.safe_csv import read_csv_safe

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory) -> dict[str, Path]:
    """``rgb``: a copy of the shared tiny run; ``gray``: a grayscale --val_split run."""
    from cnnhub.commands.train import train_main

    base = tmp_path_factory.mktemp("inputs")
    rgb = base / "rgb"
    shutil.copytree(shared_tiny_run(tiny_data, tmp_path_factory), rgb)
    flags = list(TINY_FLAGS)
    flags[flags.index("-e") + 1] = "2"
    code = train_main(
        ["-dtrain", str(tiny_data["train"]), "--val_split", "0.25", "--color_mode", "grayscale"]
        + ["-sl", str(base), "--run_name", "gray", "-post", "true", *flags]
    )
    assert code == 0
    gray = base / "model_repository" / "gray"
    assert (gray / "split.csv").is_file()
    return {"rgb": rgb, "gray": gray}


def channels(run: Path) -> int:
    config = json.loads((run / "run_config.json").read_text(encoding="utf-8"))
    return 1 if config["COLOR_MODE"] == "grayscale" else 3


def pipeline_inputs(run: Path, paths: list[str]) -> np.ndarray:
    """Model input for ``paths`` as training's tf.data pipeline decodes them."""
    split = Split(labels=np.zeros(len(paths), np.int64), paths=paths, channels=channels(run))
    dataset = make_dataset(split, 3, (32, 32), 4, training=False, seed=0, with_labels=False)
    return np.concatenate(list(dataset.as_numpy_iterator()))


def last_weights(run: Path) -> str:
    return sorted((run / "model_logs").glob("weights-*.weights.h5"))[-1].name


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


KINDS = ["rgb", "gray"]


@pytest.mark.parametrize("kind", KINDS)
def test_predict_gives_the_pipeline_input(kind, runs, tiny_data, tmp_path, capsys):
    run, paths = runs[kind], valid_paths(tiny_data)[::3]
    out = tmp_path / "p.csv"
    code, _, stderr = cli(
        capsys, "predict", str(run), *paths, "--out", str(out), "--weights", "last",
        "--top_k", "3", "--threshold", "0",
    )  # fmt: skip
    assert code == 0, stderr
    frame = read_csv_safe(out).set_index("image_path")
    expected = keras_model(run, last_weights(run)).predict(pipeline_inputs(run, paths), verbose=0)
    names = json.loads((run / "index_class_mapping.json").read_text(encoding="utf-8"))
    for path, proba in zip(paths, expected):
        row = frame.loc[path]
        got = {row[f"class_{k}"]: row[f"prob_{k}"] for k in (1, 2, 3)}
        np.testing.assert_allclose([got[names[str(i)]] for i in range(3)], proba, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcam_and_featuremaps_run(kind, runs, tiny_data, tmp_path, capsys):
    run, image = runs[kind], valid_paths(tiny_data)[0]
    png = tmp_path / "cam.png"
    code, stdout, stderr = cli(capsys, "gradcam", str(run), image, "--out", str(png))
    assert code == 0, stderr
    assert png.is_file() and "Grad-CAM for" in stdout
    code, stdout, stderr = cli(capsys, "featuremaps", str(run), image, "--out", str(tmp_path))
    assert code == 0, stderr
    # one map per conv layer of the tiny net's custom blocks, "c8-bn-mp2,c16-bn-mp2"
    maps = sorted(p.name for p in tmp_path.glob("*.png") if p != png)
    assert len(maps) == 2 and maps[0].endswith("_block1_conv.png"), maps
    assert maps[1].endswith("_block2_conv.png")


def validation_of(run: Path, tiny_data) -> tuple[list[str], np.ndarray]:
    """The run's validation files and labels, rebuilt without cnnhub.data: split.csv or folder."""
    import pandas as pd

    names = json.loads((run / "index_class_mapping.json").read_text(encoding="utf-8"))
    index = {name: int(i) for i, name in names.items()}
    if (run / "split.csv").is_file():
        frame = pd.read_csv(run / "split.csv")
        frame = frame[frame["split"] == "valid"]
        paths = [str(Path(tiny_data["train"]) / p) for p in frame["path"]]
        return paths, np.array([index[label] for label in frame["label"]])
    paths = valid_paths(tiny_data)
    return paths, np.array([index[Path(p).parent.name] for p in paths])


@pytest.mark.parametrize("kind", KINDS)
def test_errors_scores_the_runs_own_validation_data(kind, runs, tiny_data, tmp_path, capsys):
    run = runs[kind]
    png = tmp_path / "errors.png"
    code, stdout, stderr = cli(
        capsys, "errors", str(run), "--weights", "1", "--out", str(png)
    )  # epoch 1: some mistakes left
    assert code == 0, stderr
    paths, labels = validation_of(run, tiny_data)
    weights = next((run / "model_logs").glob("weights-001-*.weights.h5")).name
    proba = keras_model(run, weights).predict(pipeline_inputs(run, paths), verbose=0)
    wrong = {p for p, y, row in zip(paths, labels, proba) if row.argmax() != y}
    if not wrong:
        assert "No misclassified validation images" in stdout
        return
    frame = read_csv_safe(png.with_suffix(".csv"))
    assert {str(Path(p).resolve()) for p in frame["image_path"]} == {
        str(Path(p).resolve()) for p in wrong
    }
    assert png.is_file() and f"of {len(paths)} validation images wrong" in stdout


@pytest.mark.parametrize("kind", KINDS)
def test_export_checks_on_the_runs_validation_data(kind, runs, tmp_path, capsys):
    run = runs[kind]
    code, stdout, stderr = cli(
        capsys, "export", str(run), "--format", "keras", "--out", str(tmp_path / "k")
    )
    assert code == 0, stderr
    metadata = json.loads((tmp_path / "k" / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["input"]["shape"] == [None, 32, 32, channels(run)]
    assert metadata["input"]["channels"] == ("grayscale" if kind == "gray" else "RGB")
    valid_count = 12 if kind == "gray" else 18  # 25% of 3 x 16 training images, or the folder
    assert metadata["verification"]["images"] == valid_count
    assert metadata["verification"]["source"].startswith(f"{valid_count} validation image(s)")
    assert "random" not in stdout + stderr.lower()


def test_export_int8_calibrates_and_onnx_takes_one_channel(runs, tmp_path, capsys):
    pytest.importorskip("tf2onnx")
    run = runs["gray"]
    for fmt in ("tflite-int8", "onnx"):
        code, _, stderr = cli(
            capsys, "export", str(run), "--format", fmt, "--out", str(tmp_path / fmt),
            "--calibration_images", "8",
        )  # fmt: skip
        assert code == 0, stderr
        metadata = json.loads((tmp_path / fmt / "metadata.json").read_text(encoding="utf-8"))
        assert metadata["input"]["shape"][1:] == [32, 32, 1]


def test_export_says_clearly_when_it_checks_on_random_images(runs, tmp_path, capsys):
    run = copy_with_data(runs["rgb"], tmp_path / "moved", DATA_DIR_VALID=str(tmp_path / "gone"))
    code, stdout, stderr = cli(
        capsys, "export", str(run), "--format", "keras", "--out", str(tmp_path / "k")
    )
    assert code == 0, stderr
    assert "RANDOM images" in stderr and "gone" in stderr
    assert "random images (no validation data" in stdout
    metadata = json.loads((tmp_path / "k" / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["verification"]["source"].startswith("64 random images (no validation data")


@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_runs(kind, runs, tmp_path, capsys):
    run = tmp_path / kind
    shutil.copytree(runs[kind], run)
    code, _, stderr = cli(capsys, "evaluate", str(run))
    assert code == 0, stderr
    assert (run / "best_weights.json").is_file()


def test_errors_and_export_on_in_memory_validation_data(runs, tiny_data, tmp_path, capsys):
    """A run validated on a .npz (no image files): errors draws the arrays themselves."""
    from PIL import Image

    paths = valid_paths(tiny_data)
    x = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    y = np.array([Path(p).parent.name for p in paths])
    np.savez(tmp_path / "valid.npz", x=x, y=y)
    run = copy_with_data(
        runs["rgb"], tmp_path / "npz_run", DATA_DIR_VALID=str(tmp_path / "valid.npz")
    )
    code, stdout, stderr = cli(
        capsys, "errors", str(run), "--weights", "1", "--out", str(tmp_path / "e.png")
    )
    assert code == 0, stderr
    assert "validation images" in stdout
    code, _, stderr = cli(capsys, "export", str(run), "--format", "keras", "--out", str(tmp_path))
    assert code == 0, stderr
    metadata = json.loads((tmp_path / "metadata.json").read_text(encoding="utf-8"))
    source = f"18 validation image(s) from {tmp_path / 'valid.npz'}"
    assert metadata["verification"]["source"] == source
    assert not error_lines(stderr)
