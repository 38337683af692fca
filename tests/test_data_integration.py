"""Every data source, split protocol and imbalance option, trained end to end on tiny data."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from cnnhub.cli import main as cnnhub_main
from cnnhub.commands.train import train_main
from cnnhub.data.images import load_image
from cnnhub.data.pipeline import make_dataset
from cnnhub.data.scan import scan_images
from cnnhub.data.sets import DataOptions, Split, load_splits, splits_from_config
from cnnhub.data.sources import read_class_folder
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.safe_csv import read_csv_safe
from conftest import CLASSES, make_image_folder

FAST = ["-e", "1", "-b", "8", "-height", "32", "-width", "32", "--custom_conv_blocks", "c8k3-mp2"]


@pytest.fixture(scope="module", autouse=True)
def scan_cache_in_tmp(tmp_path_factory):
    """Keep the scan/hash cache out of the home folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNHUB_CACHE_DIR", str(tmp_path_factory.mktemp("cnnhub_cache")))
        yield


def train(save: Path, *args: str, post: bool = False, epochs: int = 1) -> tuple[int, Path | None]:
    argv = [*args, "-sl", str(save), *FAST, "-e", str(epochs)]
    code = train_main([*argv, "-post", "true" if post else "false"])
    repo = save / "model_repository"
    runs = sorted(p for p in repo.iterdir() if p.is_dir()) if repo.is_dir() else []
    return code, (runs[-1] if runs else None)


def run_summary(run: Path) -> tuple[list[str], int, int]:
    mapping = json.loads((run / "index_class_mapping.json").read_text(encoding="utf-8"))
    info = json.loads((run / "run_info.json").read_text(encoding="utf-8"))
    names = [mapping[str(i)] for i in range(len(mapping))]
    return names, info["train_images"], info["valid_images"]


# ---------------------------------------------------------------- writing every format


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """3 classes, 4 train / 2 valid images each (32x32 PNG+JPEG), with decoded pixels."""
    base = tmp_path_factory.mktemp("small")
    out = {}
    for role, n, seed in (("train", 4, 5), ("valid", 2, 6)):
        folder = make_image_folder(base / role, n, seed=seed)
        source = read_class_folder(folder)
        pixels = np.stack([load_image(p, channels=3) for p in source.paths])
        out[role] = (folder, pixels, source.labels)
    return base, out


def write_format(fmt: str, base: Path, role: str, pixels, labels) -> Path:
    names = np.array(CLASSES)[labels]
    if fmt == "csv_pixels":
        path = base / f"{role}.csv"
        frame = pd.DataFrame(pixels.reshape(len(pixels), -1))
        frame.insert(0, "label", names)
        frame.to_csv(path, index=False)
    elif fmt == "csv_paths":
        folder = base / role
        path = base / f"{role}_paths.csv"
        rows = [(Path(p).relative_to(base).as_posix(), n) for p, n in zip(_files(folder), names)]
        pd.DataFrame(rows, columns=["path", "label"]).to_csv(path, index=False)
    elif fmt == "npz":
        path = base / f"{role}.npz"
        np.savez(path, x=pixels, y=names.astype(str))
    elif fmt == "idx":
        gray = np.stack([np.asarray(Image.fromarray(p).convert("L")) for p in pixels])
        path = base / f"{role}-images-idx3-ubyte"
        n, h, w = gray.shape
        path.write_bytes(struct.pack(">IIII", 2051, n, h, w) + gray.tobytes())
        labels_file = base / f"{role}-labels-idx1-ubyte"
        labels_file.write_bytes(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())
    elif fmt == "cifar_bin":
        path = base / f"{role}.bin"
        records = [bytes([int(y)]) + p.transpose(2, 0, 1).tobytes() for p, y in zip(pixels, labels)]
        path.write_bytes(b"".join(records))
    else:
        raise AssertionError(fmt)
    return path


def _files(folder: Path) -> list[str]:
    return read_class_folder(folder).paths


@pytest.mark.parametrize("fmt", ["csv_pixels", "csv_paths", "idx", "cifar_bin", "npz"])
def test_each_format_trains_like_the_folder(fmt, small, tmp_path):
    base, data = small
    paths = {role: write_format(fmt, base, role, *data[role][1:]) for role in data}
    names_file = base / "names.txt"
    names_file.write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    extra = []
    if fmt == "csv_pixels":
        extra = ["--image_shape", "32", "32", "3"]
    if fmt in ("idx", "cifar_bin"):
        extra = ["--class_names_file", str(names_file)]
    post = fmt == "npz"  # one in-memory source through post-evaluation: keys as image ids
    code, run = train(
        tmp_path, "-dtrain", str(paths["train"]), "-dvalid", str(paths["valid"]), *extra, post=post
    )
    assert code == 0
    folder_splits = load_splits(str(data["train"][0]), str(data["valid"][0]), inspect=False)
    expected = (folder_splits.class_names, len(folder_splits.train), len(folder_splits.valid))
    assert run_summary(run) == expected == (list(CLASSES), 12, 6)
    config = json.loads((run / "run_config.json").read_text())
    assert config["DATA_FORMAT"] == "auto"
    if post:
        per_image = read_csv_safe(next((run / "model_logs").glob("weights-001-*[0-9].csv")))
        assert per_image["image_path"].tolist() == [f"valid.npz#{i}" for i in range(6)]
        assert not list(base.rglob("*#*"))  # in-memory images were never written out


@pytest.mark.parametrize("seed", ["0", "4294967295"])  # SEED's range, both ends
def test_every_seed_in_range_trains(seed, small, tmp_path):
    # TensorFlow's seed check failed on the epoch-keyed shuffle when SEED was 0.
    base, _ = small
    code, run = train(tmp_path, "-dtrain", str(base / "train"), "-dvalid", str(base / "valid"),
                      "--seed", seed)  # fmt: skip
    assert code == 0
    assert pd.read_csv(run / "training.log")["epoch"].tolist() == [1]


@pytest.mark.parametrize("global_seed", [0, 2**31 - 1, 42])
def test_epoch_keyed_shuffle_under_any_global_seed(global_seed):
    from cnnhub.data.pipeline import shuffle_by_epoch

    keras.utils.set_random_seed(global_seed)
    epoch = tf.Variable(0, dtype=tf.int64)
    ds = shuffle_by_epoch(tf.data.Dataset.range(50), 50, seed=3, epoch=epoch)

    def order(k: int) -> list[int]:
        epoch.assign(k)
        return [int(i) for i in ds.as_numpy_iterator()]

    first = order(0)
    assert sorted(first) == list(range(50))
    assert order(1) != first and order(0) == first  # a new order per epoch, repeatable


def test_grayscale_in_memory_images_become_rgb():
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    split = Split(labels=np.array([0, 1]), paths=["a#0", "a#1"], images=images)
    ds = make_dataset(split, 2, (4, 4), 2, training=False, seed=0, cache=False)
    x, y = next(iter(ds))
    assert x.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(x.numpy()[..., 0], x.numpy()[..., 2])
    np.testing.assert_array_equal(x.numpy()[..., 1], images[..., 0].astype("float32"))


@pytest.mark.parametrize("channels", [1, 3])
def test_files_at_the_model_size_skip_the_resize_and_keep_a_static_shape(tmp_path, channels):
    """A file already at the model's size is decoded without the resize (its pixels exactly),
    a file of another size is resized; either way the dataset's shape is static, which
    batching and the augmentation layers (random erasing) need."""
    from cnnhub.data.augment import build_augmenter
    from cnnhub.settings import load_defaults

    rng = np.random.default_rng(0)
    mode = "L" if channels == 1 else "RGB"
    shapes = {"same.png": (8, 6), "other.png": (12, 9)}
    paths = []
    for name, (h, w) in shapes.items():
        pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8).squeeze()
        Image.fromarray(pixels, mode).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    split = Split(labels=np.array([0, 1]), paths=paths, channels=channels)
    ds = make_dataset(split, 2, (8, 6), 2, training=False, seed=0, with_labels=False)
    assert tuple(ds.element_spec.shape) == (None, 8, 6, channels)
    batch = next(iter(ds)).numpy()
    expected = [load_image(p, (8, 6), channels=channels) for p in paths]
    np.testing.assert_array_equal(batch[0], expected[0])  # unresized: the file's pixels
    np.testing.assert_allclose(batch[1], expected[1], atol=1)  # resized as Pillow does
    config = dict(load_defaults(False)[0], AUG_ERASING=0.5, COLOR_MODE="rgb")
    erasing = make_dataset(split, 2, (8, 6), 2, training=True, seed=0,
                           augmenter=build_augmenter(config, 0))  # fmt: skip
    assert next(iter(erasing))[0].shape == (2, 8, 6, channels)


@pytest.mark.parametrize("training,cache", [(True, True), (True, False), (False, True)])
def test_datasets_run_without_the_autotuning_thread(training, cache):
    """Destroying an iterator joins tf.data's autotuning thread, which sleeps out its period
    first: seconds of idle machine at every epoch start (benchmarks/README.md)."""
    images = np.zeros((5, 4, 4, 3), dtype=np.uint8)
    split = Split(labels=np.array([0, 1, 0, 1, 0]), paths=[f"a#{i}" for i in range(5)],
                  images=images)  # fmt: skip
    ds = make_dataset(split, 2, (4, 4), 2, training=training, seed=0, cache=cache)
    assert ds.options().autotune.enabled is False
    for _ in range(2):  # a second epoch makes a new iterator, as Keras does
        assert sum(int(x.shape[0]) for x, _ in ds) == 5


# ---------------------------------------------------------------- splits and protocols


def test_val_split_writes_split_csv_and_split_file_reproduces_it(tiny_data, tmp_path):
    code, run = train(tmp_path, "-dtrain", str(tiny_data["train"]), "--val_split", "0.25")
    assert code == 0
    split = pd.read_csv(run / "split.csv", dtype=str, keep_default_na=False)
    assert list(split.columns) == ["path", "label", "split"]
    assert len(split) == 48  # every listed image, train and valid
    valid = split[split["split"] == "valid"]
    assert valid.groupby("label").size().to_dict() == {c: 4 for c in CLASSES}
    names, n_train, n_valid = run_summary(run)
    assert (n_train, n_valid) == (36, 12)
    config = json.loads((run / "run_config.json").read_text())
    assert config["DATA_DIR_VALID"] == "" and config["VAL_SPLIT"] == 0.25
    # --split_file gives exactly the same membership, and so does the same seed again.
    again = dict(config, VAL_SPLIT=0.0, SPLIT_FILE=str(run / "split.csv"))
    for cfg in (again, config):
        splits = splits_from_config(cfg, inspect=False)
        assert sorted(splits.valid.paths) == sorted(
            os.path.join(str(tiny_data["train"]), p) for p in valid["path"]
        )
        assert_frame_same(splits.split_frame, split)
    # `cnnhub evaluate RUN` re-scores on the same held-out part (rebuilt from split.csv).
    assert cnnhub_main(["evaluate", str(run)]) == 0
    best = json.loads((run / "best_weights.json").read_text())
    per_image = read_csv_safe(run / "model_logs" / (best["weights"][:-11] + ".csv"))
    expected = {os.path.join(str(tiny_data["train"]), p) for p in valid["path"]}
    assert set(per_image["image_path"]) == expected


def assert_frame_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["path", "label", "split"]
    pd.testing.assert_frame_equal(
        a[key].sort_values("path").reset_index(drop=True),
        b[key].sort_values("path").reset_index(drop=True),
    )


def test_explicit_valid_folder_with_val_split_is_refused(tiny_data, tmp_path, capsys):
    argv = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    code, run = train(tmp_path, *argv, "--val_split", "0.2")
    assert code == 2 and run is None
    assert "leave `data_dir_valid` empty" in capsys.readouterr().err


def test_folds_are_stratified_disjoint_and_summarized(tiny_data, tmp_path):
    code = train_main(
        ["-dtrain", str(tiny_data["train"]), "--folds", "2", "-sl", str(tmp_path), *FAST]
    )
    assert code == 0
    parent = tmp_path / "model_repository" / "custom-2fold"
    folds = pd.read_csv(parent / "folds.csv", dtype=str)
    assert len(folds) == 48 and set(folds["fold"]) == {"1", "2"}
    assert folds.groupby(["label", "fold"]).size().tolist() == [8] * 6  # stratified
    valid_sets = []
    for k in (1, 2):
        run = parent / "model_repository" / f"fold_{k}"
        split = pd.read_csv(run / "split.csv", dtype=str)
        valid = set(split.loc[split["split"] == "valid", "path"])
        assert valid == set(folds.loc[folds["fold"] == str(k), "path"])
        valid_sets.append(valid)
        assert run_summary(run)[1:] == (24, 24)
    assert not valid_sets[0] & valid_sets[1] and len(valid_sets[0] | valid_sets[1]) == 48
    summary = read_csv_safe(parent / "folds_summary.csv", dtype={"fold": str})
    assert summary["fold"].tolist() == ["1", "2", "mean", "std"]
    for column in ("best_epoch", "deploy_threshold", "accuracy@0", "f1_macro@deploy", "val_loss"):
        assert summary[column].notna().all(), column
    first = summary.iloc[0]
    run = parent / "model_repository" / "fold_1"
    best = json.loads((run / "best_weights.json").read_text())
    report = read_csv_safe(run / "analysis_report.csv")
    at_zero = report[(report["weights_name"] == best["weights"]) & (report["threshold"] == 0)]
    assert first["accuracy@0"] == pytest.approx(at_zero["accuracy"].iloc[0])
    assert first["f1_macro@0"] == pytest.approx(at_zero["f1_macro"].iloc[0])
    log = pd.read_csv(run / "training.log")
    assert first["val_loss"] == pytest.approx(log["val_loss"].iloc[0])
    assert summary.iloc[2]["accuracy@0"] == pytest.approx(summary["accuracy@0"][:2].mean())
    assert summary.iloc[3]["accuracy@0"] == pytest.approx(summary["accuracy@0"][:2].std(ddof=1))


def test_dev_test_set_and_file_cache(tiny_data, tmp_path, capsys):
    holdout = shutil.copytree(tiny_data["valid"], tmp_path / "holdout")
    cache = tmp_path / "tfcache"
    argv = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv += ["-dtest", str(holdout), "--dev", "2", "--cache_dir", str(cache)]
    code, run = train(tmp_path / "save", *argv, post=True, epochs=2)
    assert code == 0
    assert run_summary(run) == (list(CLASSES), 6, 6)
    (folder,) = (run / "evaluations").glob("holdout-*")
    summary = json.loads((folder / "summary.json").read_text())
    best = json.loads((run / "best_weights.json").read_text())
    assert summary["weights"] == best["weights"] and 0 <= summary["accuracy@0"] <= 1
    # the chosen weights alone, not EVAL_WEIGHTS (all): the test set is not for choosing
    assert [row["weights"] for row in summary["scored"]] == [best["weights"]]
    assert summary["source"] == str(holdout.resolve())
    per_image = read_csv_safe(folder / (best["weights"][:-11] + ".csv"))
    assert len(per_image) == 6  # --dev applies to the test data too
    assert list(cache.iterdir()) == []  # the tf.data cache files are removed after the run
    # The test data is a copy of the validation folder: the images both --dev picks share are
    # reported as leakage (a warning; the run went on).
    valid_used = read_csv_safe(run / "model_logs" / (best["weights"][:-11] + ".csv"))
    shared = {Path(p).name for p in valid_used["image_path"]} & {
        Path(p).name for p in per_image["image_path"]
    }
    out = capsys.readouterr().out
    if shared:
        message = f"WARNING: {len(shared)} image(s) of test are exact copies of valid images"
        assert message in out
    else:
        assert "WARNING" not in out


def test_leakage_is_a_warning_in_the_training_start_report(tiny_data, tmp_path):
    holdout = shutil.copytree(tiny_data["valid"], tmp_path / "holdout")
    splits = load_splits(str(tiny_data["train"]), str(tiny_data["valid"]), str(holdout))
    report = splits.inspection.format(detail=False)
    assert "WARNING: 18 image(s) of test are exact copies of valid images (leakage" in report
    assert len(splits.test) == 18


def test_file_cache_dataset_matches_memory_cache(tiny_data, tmp_path):
    splits = load_splits(str(tiny_data["train"]), str(tiny_data["valid"]), inspect=False)
    kwargs = {"num_classes": 3, "image_size": (32, 32), "batch_size": 8, "seed": 1}
    memory = make_dataset(splits.valid, training=False, **kwargs)
    on_disk = make_dataset(
        splits.valid, training=False, cache_file=str(tmp_path / "valid"), **kwargs
    )
    for _ in range(2):  # second pass reads the cache file
        a = np.concatenate([x.numpy() for x, _ in memory])
        b = np.concatenate([x.numpy() for x, _ in on_disk])
        np.testing.assert_array_equal(a, b)
    train = make_dataset(splits.train, training=True, cache_file=str(tmp_path / "train"), **kwargs)
    epochs = [np.concatenate([y.numpy().argmax(1) for _, y in train]) for _ in range(2)]
    assert sorted(epochs[0]) == sorted(splits.train.labels.tolist())
    assert not np.array_equal(epochs[0], np.sort(epochs[0]))  # shuffled, not class-sorted


# ---------------------------------------------------------------- broken files, names


def _broken(folder: Path) -> list[Path]:
    text = folder / "notes.png"
    text.write_text("this is not an image\n")
    truncated = folder / "cut.jpg"
    data = (next(folder.glob("*.jpg"))).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return [text, truncated]


UNICODE = ("red car", "café", "日本")


def test_unicode_classes_and_broken_files_end_to_end(tmp_path, capsys):
    train_dir = make_image_folder(tmp_path / "train", 6, seed=3, classes=UNICODE)
    valid_dir = make_image_folder(tmp_path / "valid", 3, seed=4, classes=UNICODE)
    broken = _broken(train_dir / "café")
    code, run = train(
        tmp_path / "save", "-dtrain", str(train_dir), "-dvalid", str(valid_dir), post=True
    )
    assert code == 0
    assert "skipped 2 unreadable file(s)" in capsys.readouterr().out
    skipped = pd.read_csv(run / "skipped_files.csv")
    assert sorted(skipped["path"]) == sorted(map(str, broken))
    reasons = dict(zip(skipped["path"], skipped["reason"]))
    assert reasons[str(broken[0])] == "not an image: the file contains text"
    assert "truncated" in reasons[str(broken[1])]
    names = sorted(UNICODE)
    mapping = json.loads((run / "index_class_mapping.json").read_text(encoding="utf-8"))
    assert mapping == {str(i): n for i, n in enumerate(names)}
    assert run_summary(run)[1:] == (18, 9)
    report = read_csv_safe(run / "analysis_report.csv")
    assert len(report) > 0
    best = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))
    per_image = read_csv_safe(run / "model_logs" / (best["weights"][:-11] + ".csv"))
    assert set(per_image["actual"]) == set(names)
    assert all(Path(p).is_file() for p in per_image["image_path"])
    assert {f"p_{n}" for n in names} <= set(per_image.columns)
    classes = read_csv_safe(
        run / "model_logs" / (best["weights"][:-11] + "-classes.csv"), dtype={"class": str}
    )
    assert set(classes["class"]) == set(names)


def test_class_with_only_broken_files_fails_before_training(tiny_data, tmp_path, capsys):
    train_dir = shutil.copytree(tiny_data["train"], tmp_path / "train")
    for image in (train_dir / "square").iterdir():
        image.write_bytes(b"")  # empty files: unreadable
    code, run = train(
        tmp_path / "save", "-dtrain", str(train_dir), "-dvalid", str(tiny_data["valid"])
    )
    err = capsys.readouterr().err
    assert code == 2 and run is None
    assert err.count("\n") == 1 and "['square']" in err and "no readable images" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- imbalance


def test_class_weight_changes_the_loss_as_computed_by_hand():
    """Keras applies class_weight to make_dataset's (x, one-hot y) batches: the epoch loss of a
    single batch is sum(w_i * loss_i) / batch size (learning rate 0, so weights do not move)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    labels = np.array([0, 0, 0, 0, 1, 2])
    split = Split(labels=labels, paths=[f"x#{i}" for i in range(6)], images=images)
    ds = make_dataset(split, 3, (4, 4), 6, training=True, seed=1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="categorical_crossentropy")
    proba = model.predict(images.astype("float32"), verbose=0)
    losses = -np.log(proba[np.arange(6), labels])
    weights = {0: 0.5, 1: 2.0, 2: 3.0}
    w = np.array([weights[y] for y in labels])
    plain = model.fit(ds, epochs=1, verbose=0).history["loss"][0]
    weighted = model.fit(ds, epochs=1, verbose=0, class_weight=weights).history["loss"][0]
    assert plain == pytest.approx(losses.mean(), rel=1e-5)
    assert weighted == pytest.approx((w * losses).sum() / len(w), rel=1e-5)
    assert abs(weighted - plain) > 0.05


def _imbalanced(tmp_path) -> tuple[Path, Path]:
    train_dir = make_image_folder(tmp_path / "train", 2, seed=3)
    make_image_folder(train_dir, 6, seed=4, classes=("circle",))  # circle: 6 (overwrites 2)
    valid_dir = make_image_folder(tmp_path / "valid", 1, seed=5)
    return train_dir, valid_dir


def test_balanced_weights_named_weights_and_oversampling(tmp_path):
    train_dir, valid_dir = _imbalanced(tmp_path)
    base = DataOptions(scan_cache=False)

    def load(**changes):
        options = DataOptions(**{**base.__dict__, **changes})
        return load_splits(str(train_dir), str(valid_dir), options=options, inspect=False)

    splits = load(class_weight="balanced")
    assert splits.train.counts(3).tolist() == [6, 2, 2]
    assert splits.class_weight == pytest.approx({0: 10 / 18, 1: 10 / 6, 2: 10 / 6})
    assert load(class_weight='{"square": 3}').class_weight == {0: 1.0, 1: 3.0, 2: 1.0}
    with pytest.raises(CnnhubError, match=r"names class\(es\) \['cat'\]"):
        load(class_weight='{"cat": 2}')
    over = load(oversample=True)
    assert over.class_weight is None
    assert over.train.counts(3).tolist() == [6, 6, 6]
    assert set(over.train.paths) == set(splits.train.paths)
    assert len(over.valid) == 3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--folds", "1"], "`folds` must be 0 (off) or at least 2"),
        (["--val_split", "1.5"], "`val_split` must be a number in [0, 1)"),
        (["--class_weight", "{oops"], "`class_weight` must be none, balanced, or a JSON"),
        (["--class_weight", '{"a": -1}'], "must be positive numbers"),
        (["--oversample", "true", "--class_weight", "balanced"], "use one"),
        (["--cache", "false", "--cache_dir", "x"], "`cache_dir` says where the cache goes"),
        (["--image_shape", "28"], "`image_shape` must be empty"),
        (["--folds", "2", "--val_split", "0.2"], "`folds` makes its own validation sets"),
        (["--data_format", "tiff"], "invalid choice"),
    ],
)
def test_bad_data_keys_are_refused(flags, message, capsys):
    assert train_main(flags) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_scan_results_are_cached_between_runs(tiny_data, monkeypatch, tmp_path):
    import cnnhub.data.scan as scan

    monkeypatch.setenv("CNNHUB_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = scan._inspect_file
    monkeypatch.setattr(scan, "_inspect_file", lambda p: calls.append(p) or real(p))
    load_splits(str(tiny_data["train"]), str(tiny_data["valid"]))
    assert len(calls) == 66
    calls.clear()
    load_splits(str(tiny_data["train"]), str(tiny_data["valid"]))
    assert calls == []
    assert len(list((tmp_path / "cache" / "scans").glob("*.json"))) == 2
    assert scan_images  # (imported for the monkeypatched module)
