"""EMA (the averaged weights are the ones saved, scored and kept) and test-time augmentation
(views averaged in evaluate, predict and training's scoring; bad view names refused)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from trained_runs import best_weights_file, error_lines, keras_model, pixels, shared_tiny_run

from cnnhub.cli import main
from cnnhub.ema import ema_callbacks
from cnnhub.evaluation.safe_csv import read_csv_safe
from cnnhub.evaluation.tta import parse_tta, with_tta

MOMENTUM = 0.9


def _data():
    rng = np.random.default_rng(0)
    x = rng.random((64, 4)).astype("float32")
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, 64)]
    return x, y


def _dense():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])


def _averages_by_hand(initial, epochs: int) -> list[list[np.ndarray]]:
    """Plain SGD step by step, with the moving average kept in numpy: one list per epoch."""
    x, y = _data()
    model = _dense()
    model.set_weights(initial)
    model.compile(keras.optimizers.SGD(0.5), "categorical_crossentropy")
    average, per_epoch = None, []
    for _ in range(epochs):
        for start in range(0, len(x), 16):
            model.train_on_batch(x[start : start + 16], y[start : start + 16])
            now = model.get_weights()
            average = (
                now
                if average is None
                else [MOMENTUM * a + (1 - MOMENTUM) * w for a, w in zip(average, now)]
            )
        per_epoch.append([a.copy() for a in average])
    return per_epoch


class _Record(keras.callbacks.Callback):
    """What the per-epoch scoring and checkpoint see: the model's weights at epoch end."""

    def __init__(self, stop_after: int | None = None):
        super().__init__()
        self.seen: list[list[np.ndarray]] = []
        self.stop_after = stop_after

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(self.model.get_weights())
        if self.stop_after is not None and epoch + 1 == self.stop_after:
            self.model.stop_training = True  # as early stopping does


def _assert_same(weights, expected):
    for got, want in zip(weights, expected):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("stop_after", [None, 2])
def test_ema_epoch_weights_and_final_weights_are_the_average(stop_after):
    keras.utils.set_random_seed(0)
    x, y = _data()
    model = _dense()
    initial = model.get_weights()
    model.compile(
        keras.optimizers.SGD(0.5, use_ema=True, ema_momentum=MOMENTUM), "categorical_crossentropy"
    )
    first, last = ema_callbacks(True, resumed=False)
    record = _Record(stop_after)
    model.fit(
        x, y, batch_size=16, epochs=3, shuffle=False, callbacks=[*first, record, *last], verbose=0
    )
    expected = _averages_by_hand(initial, 3)
    assert len(record.seen) == (stop_after or 3)
    for seen, average in zip(record.seen, expected):
        _assert_same(seen, average)
    # Training ends with the average in the model, also when stopped early.
    _assert_same(model.get_weights(), expected[len(record.seen) - 1])


def test_ema_off_adds_no_callbacks():
    assert ema_callbacks(False, resumed=True) == ([], [])


@pytest.mark.parametrize("text", ["mirror", "flip,flip", "none,flip", "flip;crop"])
def test_unknown_or_repeated_tta_views_are_refused(text):
    with pytest.raises(Exception) as error:
        parse_tta(text)
    assert "`tta` must be none, or views" in str(error.value)
    assert "flip, vflip, crop" in str(error.value) and f"Received: tta={text!r}" in str(error.value)


def test_tta_model_averages_the_views():
    keras.utils.set_random_seed(1)
    base = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.random.default_rng(1).random((5, 8, 8, 3)).astype("float32") * 255
    assert with_tta(base, []) is base
    flipped = base.predict(x[:, :, ::-1], verbose=0)
    vflipped = base.predict(x[:, ::-1], verbose=0)
    plain = base.predict(x, verbose=0)
    got = with_tta(base, ["flip", "vflip"]).predict(x, verbose=0)
    np.testing.assert_allclose(got, (plain + flipped + vflipped) / 3, atol=1e-6)
    # crop: the centre 7x7 (90% of 8, rounded) resized back to 8x8
    import tensorflow as tf

    centre = tf.image.resize(x[:, 0:7, 0:7], (8, 8), method="bilinear").numpy()
    got = with_tta(base, ["crop"]).predict(x, verbose=0)
    np.testing.assert_allclose(got, (plain + base.predict(centre, verbose=0)) / 2, atol=1e-5)


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory) -> Path:
    return shared_tiny_run(tiny_data, tmp_path_factory)


def _flip_reference(run: Path, paths: list[str]) -> np.ndarray:
    model = keras_model(run, best_weights_file(run))
    images = pixels(paths)
    return (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2


def test_predict_tta_flip_averages_original_and_mirror(run, tiny_data, tmp_path, capsys):
    paths = sorted(str(p) for p in Path(tiny_data["valid"]).rglob("*.*"))[:5]
    out = tmp_path / "p.csv"
    code = main(["predict", str(run), *paths, "--tta", "flip", "--top_k", "3", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    frame = read_csv_safe(out).set_index("image_path")
    reference = _flip_reference(run, paths)
    names = json.loads((run / "index_class_mapping.json").read_text())
    for path, proba in zip(paths, reference):
        row = frame.loc[path]
        got = {row[f"class_{r}"]: row[f"prob_{r}"] for r in (1, 2, 3)}
        np.testing.assert_allclose([got[names[str(i)]] for i in range(3)], proba, atol=1e-5)
    assert "test-time augmentation original+flip" in stdout


def test_evaluate_tta_reports_it_and_scores_the_average(run, tiny_data, tmp_path, capsys):
    run = shutil.copytree(run, tmp_path / "tiny")  # evaluate writes into the run: a private copy
    code = main(["evaluate", str(run), "--data_dir", str(tiny_data["valid"]), "--tta", "flip"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "Test-time augmentation: probabilities averaged over original+flip." in stdout
    folder = next(
        p
        for p in (run / "evaluations").iterdir()
        if (p / "summary.json").is_file() and p.name != "validation"
    )
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["tta"] == "original+flip"
    best = best_weights_file(run)
    frame = read_csv_safe(folder / best.replace(".weights.h5", ".csv"))
    paths = [
        str(Path(tiny_data["valid"]) / Path(p).relative_to(Path(p).parents[1]))
        for p in frame["image_path"]
    ]
    reference = _flip_reference(run, paths)
    columns = [c for c in frame.columns if c.startswith("p_")]
    np.testing.assert_allclose(frame[columns].to_numpy(), reference, atol=1e-5)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_bad_tta_flag_is_one_line_and_exit_2(command, run, tiny_data, capsys):
    extra = [str(tiny_data["valid"])] if command == "predict" else []
    assert main([command, str(run), *extra, "--tta", "flip,mirror"]) == 2
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1
    assert "`tta` must be none, or views" in err and "Received: tta='flip,mirror'" in err
