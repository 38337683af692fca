"""Hostile files and names (issues 13 and 14): JPEGs Pillow decodes but TensorFlow rejects,
names that are not UTF-8, FIFOs, folder links that mix classes, control characters in class
names, run folders inside the data, and folders of splits given to ``inspect``.

One tiny run (1 epoch) is trained on a hostile dataset and then evaluated, inspected and
predicted on; everything else is file-level and needs no training.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from cnnhub.atomic import write_csv, write_json
from cnnhub.cli import main as cnnhub_main
from cnnhub.commands.train import train_main
from cnnhub.data.images import (
    UnreadableImage,
    list_class_folder,
    load_image,
    needs_pil,
    walk_images,
)
from cnnhub.data.scan import file_hashes, scan_images
from cnnhub.data.sources import read_class_folder, read_csv_paths
from cnnhub.data.splits import apply_split_file, stratified_split, write_split_file
from cnnhub.errors import CnnhubError
from cnnhub.evaluation.safe_csv import read_csv_safe
from conftest import ROOT, cli_env, make_image_folder

ESC_CLASS = "evil\x1b]0;pwned\x07"  # retitles a terminal when printed raw
RTL_CLASS = "rtl\u202egnp.exe"  # right-to-left override: shows as "rtlexe.png"
BYTES_CLASS = os.fsdecode(b"caf\xe9")  # Latin-1 e-acute: not valid UTF-8
HOSTILE = (BYTES_CLASS, ESC_CLASS, RTL_CLASS)
BAD_NAME = os.fsdecode(b"bad\xff.png")  # a good image whose name is not valid UTF-8
RAW = ("\x1b", "\x07", "\u202e", "\udce9", "\udcff")  # must never reach the terminal raw


@pytest.fixture(scope="module", autouse=True)
def scan_cache_in_tmp(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNHUB_CACHE_DIR", str(tmp_path_factory.mktemp("cnnhub_cache")))
        yield


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) when the block blocks, e.g. opening a FIFO."""

    def expire(*_):
        raise TimeoutError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- fuzzed JPEGs


def fuzzed_jpegs(count: int, seed: int) -> list[bytes]:
    """``count`` damaged 32x32 noise JPEGs (seeded): by turns, the last 2-24 bytes (the end
    marker with them) or a run of 1-39 bytes in the second half (the entropy-coded data)
    overwritten with random bytes, or one bit flipped anywhere after the start marker."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        buffer = io.BytesIO()
        noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(noise).save(buffer, "JPEG", quality=75)
        data = bytearray(buffer.getvalue())
        if i % 3 == 0:
            length = int(rng.integers(2, 25))
            data[-length:] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        elif i % 3 == 1:
            start, length = (
                int(rng.integers(len(data) // 2, len(data) - 2)),
                int(rng.integers(1, 40)),
            )
            data[start : start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        else:
            data[int(rng.integers(2, len(data)))] ^= 1 << int(rng.integers(0, 8))
        out.append(bytes(data))
    return out


def tensorflow_decodes(data: bytes, channels: int = 3) -> bool:
    """TensorFlow's verdict, computed here directly on the bytes (the pipeline's ops)."""
    raw = tf.constant(data)
    try:
        if tf.io.is_jpeg(raw):
            tf.io.decode_jpeg(raw, channels=channels, dct_method="INTEGER_ACCURATE")
        else:
            tf.io.decode_image(raw, channels=channels, expand_animations=False)
    except (tf.errors.OpError, ValueError):
        return False
    return True


def pillow_decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception:  # noqa: BLE001 - any failure is a "no"
        return False
    return True


def pillow_only(count: int, seed: int) -> list[bytes]:
    """Fuzzed JPEGs that Pillow decodes and TensorFlow rejects (what crashed training), among
    those the pipeline sends to TensorFlow."""
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for i, data in enumerate(fuzzed_jpegs(count, seed)):
            path = Path(folder) / f"{i}.jpg"
            path.write_bytes(data)
            if pillow_decodes(data) and not needs_pil(path) and not tensorflow_decodes(data):
                out.append(data)
    return out


def test_scan_judges_each_file_with_the_decoder_the_pipeline_uses(tmp_path):
    folder = tmp_path / "fuzz"
    folder.mkdir()
    paths = []
    for i, data in enumerate(fuzzed_jpegs(60, seed=14)):
        (folder / f"f{i:02d}.jpg").write_bytes(data)
        paths.append(str(folder / f"f{i:02d}.jpg"))
    blobs = {p: Path(p).read_bytes() for p in paths}
    tf_rejects = {p for p in paths if pillow_decodes(blobs[p]) and not tensorflow_decodes(blobs[p])}
    assert len(tf_rejects) >= 10  # the class of files the old Pillow-only scan let through

    def usable(path: str) -> bool:  # what the pipeline can decode, decided independently
        try:
            if needs_pil(path):
                load_image(path)
                return True
        except UnreadableImage:
            return False
        return tensorflow_decodes(blobs[path])

    cache = tmp_path / "scan.json"
    result = scan_images(paths, cache_file=cache)
    assert result.ok == [p for p in paths if usable(p)]
    reasons = dict(result.skipped)
    assert set(reasons) == set(paths) - set(result.ok)
    assert tf_rejects <= set(reasons)
    assert all("TensorFlow's decoder rejects it" in reasons[p] for p in tf_rejects)
    for path in result.ok:  # both of the pipeline's paths (with a resize) decode what passed
        assert load_image(path, size=(8, 8)).shape == (8, 8, 3)
    again = scan_images(paths, cache_file=cache)  # verdicts come from the cache
    assert (again.ok, again.skipped) == (result.ok, result.skipped)


# --------------------------------------------------------------------------- special files


def test_walks_list_regular_files_only(tmp_path):
    cls = tmp_path / "data" / "cat"
    make_image_folder(tmp_path / "data", 2, classes=("cat", "dog"))
    os.mkfifo(cls / "pipe.jpg")
    os.symlink(cls / "pipe.jpg", cls / "link-to-pipe.png")
    os.symlink(cls / "cat_000.jpg", cls / "link-to-image.jpg")
    expected = sorted(str(cls / n) for n in ("cat_000.jpg", "cat_001.png", "link-to-image.jpg"))
    assert walk_images(cls) == expected
    _, samples = list_class_folder(tmp_path / "data")
    assert [p for p, label in samples if label == 0] == expected
    from cnnhub.run_loading import walk_images as predict_walk  # predict and export

    assert predict_walk(cls) == expected


def test_decoders_refuse_special_files_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with deadline(20):
        for decode in (load_image, needs_pil):
            with pytest.raises(UnreadableImage, match=r"not a regular file \(a FIFO"):
                decode(fifo)
        result = scan_images([str(fifo), str(tmp_path)])
        assert file_hashes([str(fifo)]) == [None]
    assert result.ok == []
    assert dict(result.skipped) == {
        str(fifo): "not a regular file (a FIFO, socket or device)",
        str(tmp_path): "not a regular file (a folder)",
    }


# --------------------------------------------------------------------------- links


def test_links_that_would_mix_classes_are_skipped_with_a_warning(tmp_path, capsys):
    root = make_image_folder(tmp_path / "data", 2, classes=("cat", "dog", "owl"))
    os.symlink(root, root / "cat" / "everything")  # the data root: every class would come in
    os.symlink(root / "owl", root / "dog" / "owls")  # another class folder
    (root / "dog" / "loop").symlink_to(root / "dog")  # a loop: followed once, silently
    names, samples = list_class_folder(root)
    assert names == ["cat", "dog", "owl"]
    by_class = {n: sorted(Path(p).name for p, c in samples if names[c] == n) for n in names}
    assert by_class == {n: [f"{n}_000.jpg", f"{n}_001.png"] for n in names}
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert err[0].startswith(f"warning: skipped the folder link {root / 'cat' / 'everything'}")
    assert "parent of" in err[0]
    assert err[1].startswith(f"warning: skipped the folder {root / 'dog' / 'owls'}")
    assert "another class folder" in err[1]


def test_class_folders_that_are_the_root_or_each_other_are_refused(tmp_path):
    root = make_image_folder(tmp_path / "data", 1, classes=("cat", "dog"))
    os.symlink(root, root / "all")
    with pytest.raises(CnnhubError, match=r"class folder `.*all` is a link to .* not a class"):
        list_class_folder(root)
    (root / "all").unlink()
    os.symlink(root / "dog", root / "hound")
    with pytest.raises(CnnhubError, match=r"'dog' and 'hound' .* are the same folder"):
        list_class_folder(root)


def test_save_location_inside_the_training_data_is_refused(tiny_data, tmp_path, capsys):
    data = shutil.copytree(tiny_data["train"], tmp_path / "train")
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    for save in (data, data / "circle" / "runs"):
        code = train_main(
            ["-dtrain", str(data), "--val_split", "0.2", "-sl", str(save), "-m", "custom"]
        )
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "would be written inside the data folder" in err[0], err
        assert f"Received: save_location='{save}', -dtrain {data}" in err[0]
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # nothing written


# --------------------------------------------------------------------------- names


def test_error_messages_escape_names():
    error = CnnhubError(f"Class {ESC_CLASS} and {RTL_CLASS}\nand {BYTES_CLASS}")
    assert str(error) == r"Class evil\x1b]0;pwned\x07 and rtl\u202egnp.exe and caf\udce9"


def test_names_that_are_not_utf8_survive_caches_and_split_files(tmp_path):
    root = make_image_folder(tmp_path / "data", 3, classes=HOSTILE)
    Image.new("RGB", (8, 8), (9, 9, 9)).save(root / BYTES_CLASS / BAD_NAME)
    source = read_class_folder(root)
    assert str(root / BYTES_CLASS / BAD_NAME) in source.paths
    cache = tmp_path / "cache.json"
    first = scan_images(source.paths, cache_file=cache)
    assert first.ok == source.paths
    cache.read_bytes().decode("utf-8")  # the cache stays valid UTF-8 ...
    assert scan_images(source.paths, cache_file=cache).ok == source.paths  # ... and is reused
    entries = json.loads(cache.read_text(encoding="utf-8"))["entries"]
    assert os.path.abspath(root / BYTES_CLASS / BAD_NAME) in entries
    _, valid, frame = stratified_split(source, 0.5, seed=0)
    write_split_file(tmp_path / "split.csv", frame)
    assert b"bad\xff.png" in (tmp_path / "split.csv").read_bytes()  # the name's own bytes
    _, again = apply_split_file(source, tmp_path / "split.csv")
    assert again.paths == valid.paths
    listing = pd.DataFrame({"path": source.paths, "label": source.labels})
    write_csv(tmp_path / "listing.csv", listing)  # cnnhub's CSV writer: the names' own bytes
    assert read_csv_paths(tmp_path / "listing.csv").paths == source.paths
    write_json(tmp_path / "names.json", list(HOSTILE))
    assert json.loads((tmp_path / "names.json").read_bytes().decode("utf-8")) == list(HOSTILE)


# --------------------------------------------------------------------------- one hostile run


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A tiny run trained on classes named with ESC, U+202E and a non-UTF-8 byte; each class
    also holds a good image named ``bad\\xff.png`` and JPEGs that only Pillow decodes."""
    base = tmp_path_factory.mktemp("hostile")
    data = {"train": make_image_folder(base / "train", 5, seed=1, classes=HOSTILE)}
    data["valid"] = make_image_folder(base / "valid", 3, seed=2, classes=HOSTILE)
    rejected = {"train": [], "valid": []}
    blobs = iter(pillow_only(60, seed=7))
    for split, folder in data.items():
        for k, name in enumerate(HOSTILE):
            Image.fromarray(np.full((32, 32, 3), 60 * k, np.uint8)).save(folder / name / BAD_NAME)
            for i in range(2 if split == "train" else 1):
                path = folder / name / f"damaged_{i}.jpg"
                path.write_bytes(next(blobs))
                rejected[split].append(str(path))
    save = base / "save"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = train_main(
            ["-dtrain", str(data["train"]), "-dvalid", str(data["valid"]), "-sl", str(save)]
            + ["--run_name", "hostile", "-e", "1", "-b", "8", "-height", "32", "-width", "32"]
            + ["-m", "custom", "--custom_conv_blocks", "c8-mp2", "--num_nodes", "8"]
            + ["-post", "true"]
        )
    return {
        "code": code,
        "out": out.getvalue(),
        "err": err.getvalue(),
        "run": save / "model_repository" / "hostile",
        "data": data,
        "rejected": rejected,
    }


def read_skipped(path: Path) -> dict[str, str]:
    frame = pd.read_csv(path, encoding_errors="surrogateescape")
    return dict(zip(frame["path"], frame["reason"]))


def assert_escaped(text: str) -> None:
    assert not any(raw in text for raw in RAW), [line for line in text.splitlines()][:5]


def test_training_skips_and_reports_what_tensorflow_rejects(hostile):
    assert hostile["code"] == 0, hostile["err"][-2000:]
    run = hostile["run"]
    skipped = read_skipped(run / "skipped_files.csv")
    assert sorted(skipped) == sorted(hostile["rejected"]["train"] + hostile["rejected"]["valid"])
    assert all("TensorFlow's decoder rejects it" in reason for reason in skipped.values())
    info = json.loads((run / "run_info.json").read_text(encoding="utf-8"))
    assert (info["train_images"], info["valid_images"]) == (18, 12)  # (5+1)x3, (3+1)x3
    for name in ("final_model.keras", "best_model.keras", "best_weights.json"):
        assert (run / name).is_file()


def test_training_prints_names_escaped(hostile):
    assert_escaped(hostile["out"] + hostile["err"])
    table = [line.split() for line in hostile["out"].splitlines()]
    assert [r"caf\udce9", "6", "4"] in table
    assert [r"evil\x1b]0;pwned\x07", "6", "4"] in table
    assert [r"rtl\u202egnp.exe", "6", "4"] in table


def test_run_files_keep_names_that_are_not_utf8(hostile):
    run = hostile["run"]
    mapping = json.loads((run / "index_class_mapping.json").read_bytes().decode("utf-8"))
    assert [mapping[str(i)] for i in range(3)] == sorted(HOSTILE)
    best = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))["weights"]
    per_image = read_csv_safe(run / "model_logs" / best.replace(".weights.h5", ".csv"))
    assert str(hostile["data"]["valid"] / BYTES_CLASS / BAD_NAME) in set(per_image["image_path"])
    assert all(os.path.isfile(p) for p in per_image["image_path"])


def test_evaluate_data_dir_skips_and_reports_what_tensorflow_rejects(hostile, tmp_path, capsys):
    other = shutil.copytree(hostile["data"]["valid"], tmp_path / "heldout")
    assert cnnhub_main(["evaluate", str(hostile["run"]), "--data_dir", str(other)]) == 0
    captured = capsys.readouterr()
    assert_escaped(captured.out + captured.err)
    folders = [p for p in (hostile["run"] / "evaluations").iterdir() if p.is_dir()]
    (folder,) = [p for p in folders if p.name.startswith("heldout")]
    expected = [p.replace(str(hostile["data"]["valid"]), str(other)) for p in
                hostile["rejected"]["valid"]]  # fmt: skip
    assert sorted(read_skipped(folder / "skipped_files.csv")) == sorted(expected)
    per_image = [p for p in folder.glob("weights-*.csv") if p.stem.count("-") == 2]
    paths = set(read_csv_safe(per_image[0])["image_path"])
    assert str(other / RTL_CLASS / BAD_NAME) in paths and len(paths) == 12


def test_inspect_prints_names_escaped(hostile, capsys):
    train = hostile["data"]["train"]
    assert cnnhub_main(["inspect", str(train)]) == 0
    out = capsys.readouterr().out
    assert_escaped(out)
    assert r"  evil\x1b]0;pwned\x07        6" in out
    damaged = os.path.join(str(train), r"evil\x1b]0;pwned\x07", "damaged_0.jpg")
    assert f"    {damaged}: TensorFlow's decoder rejects it" in out, out


def test_predict_skips_fifos_and_writes_names_that_are_not_utf8(hostile, tmp_path):
    images = shutil.copytree(hostile["data"]["valid"], tmp_path / "images")
    os.mkfifo(images / ESC_CLASS / "pipe.jpg")  # found by the walk: must be skipped
    os.mkfifo(tmp_path / "named.png")  # named on the command line: an error row
    out_csv = tmp_path / "predictions.csv"
    result = subprocess.run(
        [sys.executable, "-m", "cnnhub", "predict", str(hostile["run"]), str(images)]
        + [str(tmp_path / "named.png"), "--out", str(out_csv)],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        timeout=300,  # a FIFO that is opened blocks for ever: fail instead
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert_escaped((result.stdout + result.stderr).decode("utf-8", "surrogateescape"))
    frame = pd.read_csv(out_csv, encoding_errors="surrogateescape", keep_default_na=False)
    rows = dict(zip(frame["image_path"], frame["error"]))
    assert len(rows) == 12 + 3 + 1  # images, damaged JPEGs (Pillow reads them), the FIFO
    assert rows[str(tmp_path / "named.png")] == "not a regular file (a FIFO, socket or device)"
    assert rows[str(images / BYTES_CLASS / BAD_NAME)] == ""
    assert set(frame["label"]) - {""} <= {*HOSTILE, "uncertain"}


# --------------------------------------------------------------------------- folders of splits


def test_inspect_takes_a_folder_of_splits(tmp_path, capsys):
    root = tmp_path / "dataset"
    make_image_folder(root / "train", 3, seed=1)
    make_image_folder(root / "valid", 1, seed=2)
    make_image_folder(root / "validation", 1, seed=3)
    make_image_folder(root / "test", 2, seed=4)
    shutil.copy(root / "train" / "circle" / "circle_000.jpg", root / "test" / "circle" / "x.jpg")
    assert cnnhub_main(["inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"Data: 3 classes; train: folder `{root / 'train'}`; valid: folder `{root / 'valid'}`; "
        f"validation: folder `{root / 'validation'}`; test: folder `{root / 'test'}`"
    )
    assert out.splitlines()[2].split() == ["circle", "3", "1", "1", "3"]
    assert "WARNING: 1 image(s) of test are exact copies of train images (leakage" in out
    assert "test/circle/x.jpg = train/circle/circle_000.jpg" not in out  # keys are per split
    assert "circle/x.jpg = circle/circle_000.jpg" in out
    assert cnnhub_main(["inspect", str(root), "--test", str(root / "test")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds the splits train, valid, validation, test itself" in err[0]
