"""``cnnhub inspect``: counts, imbalance, sizes, broken files, duplicates and leakage."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import cnnhub.data.scan as scan
from cnnhub.cli import main as cnnhub_main
from conftest import make_image_folder


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNHUB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def dataset(tmp_path):
    """train: 4 circles (+1 copy of a circle, +1 text file), 2 squares, 2 stripes; valid: 1 each,
    one of them a copy of a training image."""
    train = make_image_folder(tmp_path / "train", 2, seed=1)
    make_image_folder(train, 4, seed=9, classes=("circle",))
    shutil.copy(train / "circle" / "circle_000.jpg", train / "circle" / "again.jpg")
    (train / "circle" / "readme.png").write_text("not an image\n")
    valid = make_image_folder(tmp_path / "valid", 1, seed=2)
    shutil.copy(train / "square" / "square_001.png", valid / "square" / "leaked.png")
    return train, valid


def test_inspect_reports_counts_broken_files_duplicates_and_leakage(dataset, capsys):
    train, valid = dataset
    assert cnnhub_main(["inspect", str(train), "--valid", str(valid)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.split() == ["circle", "5", "1"] for line in lines), out
    assert any(line.split() == ["square", "2", "2"] for line in lines), out
    assert "imbalance (largest / smallest class): train 2.50, valid 2.00" in out
    assert f"{train / 'circle' / 'readme.png'}: not an image: the file contains text" in out
    assert "train: 1 exact duplicate(s) in 1 group(s)" in out
    assert "circle/again.jpg = circle/circle_000.jpg" in out or (
        "circle/circle_000.jpg = circle/again.jpg" in out
    )
    assert "WARNING: 1 image(s) of valid are exact copies of train images (leakage" in out
    assert "square/leaked.png = square/square_001.png" in out
    assert "height min 32 / median 32 / max 32" in out
    assert '--class_weight \'{"circle": 0.6, "square": 1.5, "stripes": 1.5}\'' in out


def test_in_memory_duplicates_and_test_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    x[5] = x[0]  # a duplicate inside train
    np.savez(tmp_path / "train.npz", x=x, y=np.array([0, 0, 0, 1, 1, 1]))
    np.savez(tmp_path / "test.npz", x=x[:2], y=np.array([0, 0]))  # both leak from train
    assert cnnhub_main(["inspect", str(tmp_path / "train.npz")]) == 0
    out = capsys.readouterr().out
    assert "Data: 2 classes; data: npz" in out
    assert "data: 1 exact duplicate(s) in 1 group(s):\n    train.npz#0 = train.npz#5" in out
    assert "modes L 6" in out
    assert (
        cnnhub_main(["inspect", str(tmp_path / "train.npz"), "--test", str(tmp_path / "test.npz")])
        == 2
    )
    assert "The training and test data must hold the same classes" in capsys.readouterr().err
    np.savez(tmp_path / "test.npz", x=x[[0, 3]], y=np.array([0, 1]))
    assert (
        cnnhub_main(["inspect", str(tmp_path / "train.npz"), "--test", str(tmp_path / "test.npz")])
        == 0
    )
    out = capsys.readouterr().out
    assert "WARNING: 2 image(s) of test are exact copies of train images" in out


def test_second_inspection_uses_the_caches(dataset, tmp_path, monkeypatch, capsys):
    train, valid = dataset
    decoded, hashed = [], []
    real_inspect, real_hash = scan._inspect_file, scan._sha1_file
    monkeypatch.setattr(scan, "_inspect_file", lambda p: decoded.append(p) or real_inspect(p))
    monkeypatch.setattr(scan, "_sha1_file", lambda p: hashed.append(p) or real_hash(p))
    assert cnnhub_main(["inspect", str(train), "--valid", str(valid)]) == 0
    first = capsys.readouterr().out
    assert len(decoded) == 14 and len(hashed) == 13  # the unreadable file is not hashed
    decoded.clear(), hashed.clear()
    assert cnnhub_main(["inspect", str(train), "--valid", str(valid)]) == 0
    assert decoded == [] and hashed == []
    assert capsys.readouterr().out == first
    cache = tmp_path / "cache"
    assert {p.parent.name for p in cache.rglob("*.json")} == {"scans", "hashes"}
    assert cnnhub_main(["inspect", str(train), "--no_cache"]) == 0
    assert len(decoded) == 10


def test_inspect_bad_input_is_one_line(tmp_path, capsys):
    assert cnnhub_main(["inspect", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err


def test_color_mode_checks_the_decode_a_grayscale_run_uses(dataset, monkeypatch, capsys):
    """The scan cache keeps a verdict per decoder: an RGB inspection leaves the 1-channel
    decode of a grayscale run unchecked; ``--color_mode grayscale`` checks it, and the run's
    own scan (``split_of_source`` with 1 channel, as training calls it) then decodes nothing."""
    from cnnhub.data import tf_images
    from cnnhub.data.sets import DataOptions, read_source, split_of_source

    train, _ = dataset
    decoded: list[tuple[int, int]] = []  # (files, channels) of each TensorFlow decode check
    real = tf_images.rejected

    def counted(paths, channels):
        if paths:
            decoded.append((len(paths), channels))
        return real(paths, channels)

    monkeypatch.setattr(tf_images, "rejected", counted)
    assert cnnhub_main(["inspect", str(train)]) == 0
    assert decoded == [(9, 3)]  # the text file fails its header check before any decode
    assert cnnhub_main(["inspect", str(train), "--color_mode", "grayscale"]) == 0
    assert decoded == [(9, 3), (9, 1)]
    capsys.readouterr()
    source = read_source(str(train), "train", DataOptions())
    split, skipped = split_of_source(source, scan_cache=True, channels=1)
    assert decoded == [(9, 3), (9, 1)]
    assert len(split.paths) == 9 and [Path(p).name for p, _ in skipped] == ["readme.png"]


def test_color_mode_is_one_of_two(dataset, capsys):
    train, _ = dataset
    assert cnnhub_main(["inspect", str(train), "--color_mode", "grey"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --color_mode: invalid choice: 'grey'" in err[0]
