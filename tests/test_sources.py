"""cnnhub.data.sources: one tiny dataset in every supported layout must read back the same."""

from __future__ import annotations

import gzip
import os
import struct
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cnnhub.data.images import load_image
from cnnhub.data.sources import (
    DATA_FORMATS,
    DataSource,
    detect_format,
    idx_labels_candidates,
    load_source,
    read_cifar_bin,
    read_csv_pixels,
    read_idx,
    read_names_file,
    read_npz,
)
from cnnhub.data.splits import apply_split_file, assign_folds, stratified_split, write_split_file
from cnnhub.errors import CnnhubError

N_CLASSES, PER_CLASS = 3, 4


@pytest.fixture(scope="module")
def gray():
    """12 random 8x8 grayscale images, labels 0,0,0,0,1,...,2 (module-wide, read-only)."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (N_CLASSES * PER_CLASS, 8, 8), dtype=np.uint8)
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    return images, labels


@pytest.fixture(scope="module")
def colour():
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (N_CLASSES * PER_CLASS, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    return images, labels


def write_folder(root, images, labels, names=None):
    """PNG files root/<name>/<i>.png (lossless), so folder pixels equal the arrays."""
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / (names[label] if names else str(label))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze()).save(folder / f"{i:02d}.png")
    return root


def contents(source: DataSource) -> Counter:
    """Order-independent multiset of (class name, pixel bytes), decoding files when needed."""
    out = Counter()
    for i, label in enumerate(source.labels):
        if source.images is not None:
            pixels = source.images[i]
        else:
            channels = 1 if Image.open(source.paths[i]).mode == "L" else 3
            pixels = load_image(source.paths[i], channels=channels)
        out[(source.class_names[label], pixels.shape, pixels.tobytes())] += 1
    return out


@pytest.fixture(scope="module")
def gray_folder(gray, tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("gray") / "folder", *gray)


@pytest.fixture(scope="module")
def expected_gray(gray_folder):
    source = load_source(gray_folder)
    assert source.data_format == "folder" and source.class_names == ["0", "1", "2"]
    assert source.paths is not None and source.images is None
    return contents(source)


def _pixel_rows(images, labels):
    return np.column_stack([labels, images.reshape(len(images), -1)])


# --------------------------------------------------------------------------- readers


def test_folder_source(gray_folder, gray):
    source = load_source(gray_folder)
    assert len(source) == 12 and source.num_classes == 3
    assert source.class_counts().tolist() == [4, 4, 4]
    assert source.keys[0] == "0/00.png"  # relative to the folder, with '/'
    assert contents(source) == Counter(
        (str(label), (8, 8, 1), image[..., None].tobytes()) for image, label in zip(*gray)
    )


@pytest.mark.parametrize("header", [True, False])
def test_csv_pixels(tmp_path, gray, expected_gray, header):
    rows = _pixel_rows(*gray)
    path = tmp_path / "pixels.csv"
    columns = ["label"] + [f"pixel{i}" for i in range(64)] if header else None
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False, header=header)
    assert detect_format(path) == "csv_pixels"
    source = load_source(path)
    assert source.data_format == "csv_pixels" and source.images.shape == (12, 8, 8, 1)
    assert contents(source) == expected_gray
    assert source.keys[3] == "pixels.csv#3"


def test_csv_pixels_with_pandas_number_header_and_floats(tmp_path, gray, expected_gray):
    images, labels = gray
    frame = pd.DataFrame(images.reshape(12, -1) / 255.0)  # floats in 0-1, columns named 0..63
    frame.insert(0, "y", labels)
    path = tmp_path / "floats.csv"
    frame.to_csv(path, index=False)
    assert contents(read_csv_pixels(path)) == expected_gray


def test_csv_pixels_shape_rules(tmp_path, colour):
    images, labels = colour
    small = images[:, :2, :2, :]  # 2x2 RGB = 12 values: not a square number
    path = tmp_path / "rgb.csv"
    pd.DataFrame(_pixel_rows(small, labels)).to_csv(path, index=False, header=False)
    with pytest.raises(CnnhubError, match=r"12 pixel values.*image_shape"):
        load_source(path)
    source = load_source(path, image_shape=(2, 2, 3))
    np.testing.assert_array_equal(source.images, small)
    with pytest.raises(CnnhubError, match="holds 16 values"):
        load_source(path, image_shape=(4, 4))
    with pytest.raises(CnnhubError, match="channels 1 or 3"):
        load_source(path, image_shape=(2, 2, 2))


def test_csv_pixels_bad_values(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("0,1,2,3,300\n1,1,2,3,4\n")
    with pytest.raises(CnnhubError, match=r"0-255.*max=300"):
        load_source(path)
    path.write_text("0,1,2,3,4\n1,1,,3,4\n")
    with pytest.raises(CnnhubError, match="empty pixel cells.*line 2"):
        load_source(path)
    path.write_text("0,1,2,3,4\n1,1,two,3,4\n")
    with pytest.raises(CnnhubError, match="every pixel cell a number"):
        load_source(path)


def test_csv_paths(tmp_path, gray_folder, expected_gray):
    source = load_source(gray_folder)
    csv_dir = tmp_path / "lists"
    csv_dir.mkdir()
    rel = [os.path.relpath(p, csv_dir) for p in source.paths]
    path = csv_dir / "train.csv"
    pd.DataFrame({"path": rel, "label": [source.class_names[i] for i in source.labels]}).to_csv(
        path, index=False
    )
    assert detect_format(path) == "csv_paths"
    from_csv = load_source(path)
    assert from_csv.data_format == "csv_paths"
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in from_csv.paths)
    assert contents(from_csv) == expected_gray

    headerless = csv_dir / "noheader.csv"
    pd.DataFrame({"a": rel, "b": source.labels}).to_csv(headerless, index=False, header=False)
    assert detect_format(headerless) == "csv_paths"
    assert contents(load_source(headerless)) == expected_gray

    other_names = csv_dir / "other.csv"
    other_names.write_text("filename,class\n" + "\n".join(f"{r},x" for r in rel) + "\n")
    assert detect_format(other_names) == "csv_paths"
    with pytest.raises(CnnhubError, match="columns `path` and `label`.*filename"):
        load_source(other_names)

    broken = csv_dir / "broken.csv"
    broken.write_text("path,label\n" + "\n".join(f"{r},x" for r in rel[:2]) + "\nnope.png,y\n")
    with pytest.raises(CnnhubError, match=r"1 of 3 image\(s\).*'nope.png'"):
        load_source(broken)


def test_string_labels_sorted_and_names_file(tmp_path, gray):
    images, labels = gray
    words = np.array(["zebra", "ant", "émeu"])[labels]
    np.savez(tmp_path / "words.npz", x=images, y=words)
    source = load_source(tmp_path / "words.npz")
    assert source.class_names == ["ant", "zebra", "émeu"]
    assert [source.class_names[i] for i in source.labels] == words.tolist()

    names = tmp_path / "names.txt"
    names.write_text("zebra\nant\némeu\nunused\n\n", encoding="utf-8")
    assert read_names_file(names) == ["zebra", "ant", "émeu", "unused"]
    named = load_source(tmp_path / "words.npz", names_file=names)
    assert named.class_names == ["zebra", "ant", "émeu", "unused"]
    assert named.labels.tolist() == labels.tolist()
    assert named.class_counts().tolist() == [4, 4, 4, 0]


def _idx_bytes(images, labels):
    n, h, w = images.shape
    return (
        struct.pack(">IIII", 2051, n, h, w) + images.tobytes(),
        struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes(),
    )


@pytest.mark.parametrize(
    ("images_name", "labels_name", "zipped"),
    [
        ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", True),
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", False),
        ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte", False),
    ],
)
def test_idx(tmp_path, gray, expected_gray, images_name, labels_name, zipped):
    image_bytes, label_bytes = _idx_bytes(*gray)
    if zipped:
        image_bytes, label_bytes = gzip.compress(image_bytes), gzip.compress(label_bytes)
    (tmp_path / images_name).write_bytes(image_bytes)
    (tmp_path / labels_name).write_bytes(label_bytes)
    assert detect_format(tmp_path / images_name) == "idx"
    source = load_source(tmp_path / images_name)
    assert source.data_format == "idx" and source.class_names == ["0", "1", "2"]
    assert contents(source) == expected_gray
    assert source.keys[0] == f"{images_name}#0"


def test_idx_validation(tmp_path, gray):
    images, labels = gray
    image_bytes, label_bytes = _idx_bytes(images, labels)
    (tmp_path / "a-images-idx3-ubyte").write_bytes(image_bytes)
    with pytest.raises(CnnhubError, match="No labels file.*a-labels-idx1-ubyte"):
        read_idx(tmp_path / "a-images-idx3-ubyte")
    (tmp_path / "a-labels-idx1-ubyte").write_bytes(label_bytes[:-1])
    with pytest.raises(CnnhubError, match="truncated"):
        read_idx(tmp_path / "a-images-idx3-ubyte")
    short = struct.pack(">II", 2049, 11) + labels[:11].astype(np.uint8).tobytes()
    (tmp_path / "a-labels-idx1-ubyte").write_bytes(short)
    with pytest.raises(CnnhubError, match="12 images but .* 11 labels"):
        read_idx(tmp_path / "a-images-idx3-ubyte")
    with pytest.raises(CnnhubError, match="IDX labels file"):
        load_source(tmp_path / "a-labels-idx1-ubyte")
    with pytest.raises(CnnhubError, match="magic number 2049"):
        read_idx(tmp_path / "a-labels-idx1-ubyte", labels_path=tmp_path / "a-labels-idx1-ubyte")
    assert idx_labels_candidates("d/x-images-idx3-ubyte.gz")[:2] == [
        os.path.join("d", "x-labels-idx1-ubyte.gz"),
        os.path.join("d", "x-labels-idx1-ubyte"),
    ]


def _cifar_bytes(images, labels, coarse=None):
    chw = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    head = [labels[:, None]] if coarse is None else [coarse[:, None], labels[:, None]]
    return np.column_stack([*head, chw]).astype(np.uint8).tobytes()


def test_cifar10_file_and_folder(tmp_path, colour):
    images, labels = colour
    expected = contents(load_source(write_folder(tmp_path / "folder", images, labels)))
    single = tmp_path / "one" / "test_batch.bin"
    single.parent.mkdir()
    single.write_bytes(_cifar_bytes(images, labels))
    assert detect_format(single) == "cifar_bin"
    source = load_source(single)
    assert source.images.shape == (12, 32, 32, 3) and source.class_names == ["0", "1", "2"]
    assert contents(source) == expected

    batches = tmp_path / "cifar-10-batches-bin"
    batches.mkdir()
    (batches / "data_batch_1.bin").write_bytes(_cifar_bytes(images[::2], labels[::2]))
    (batches / "data_batch_2.bin").write_bytes(_cifar_bytes(images[1::2], labels[1::2]))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship"]
    (batches / "batches.meta.txt").write_text("\n".join([*names, "truck"]) + "\n\n")
    assert detect_format(batches) == "cifar_bin"
    from_folder = load_source(batches)
    assert from_folder.class_names[:3] == ["airplane", "automobile", "bird"]
    assert len(from_folder.class_names) == 10
    renamed = Counter(
        {
            (str(["airplane", "automobile", "bird"].index(k[0])), *k[1:]): v
            for k, v in contents(from_folder).items()
        }
    )
    assert renamed == expected
    assert from_folder.keys[:2] == ["data_batch_1.bin#0", "data_batch_1.bin#1"]
    assert from_folder.keys[6] == "data_batch_2.bin#0"


def test_cifar100_uses_fine_labels(tmp_path, colour):
    images, labels = colour
    fine = labels * 30 + 5  # 5, 35, 65
    path = tmp_path / "train.bin"
    path.write_bytes(_cifar_bytes(images, fine, coarse=np.full(12, 19)))
    source = read_cifar_bin(path)
    assert source.class_names == ["5", "35", "65"]
    np.testing.assert_array_equal(source.labels, labels)
    np.testing.assert_array_equal(source.images, images)
    (tmp_path / "fine_label_names.txt").write_text("\n".join(f"n{i}" for i in range(100)))
    named = read_cifar_bin(path)
    assert named.num_classes == 100 and named.class_names[35] == "n35"
    assert named.labels.tolist() == fine.tolist()


def test_cifar_rejects_pickles_and_bad_sizes(tmp_path):
    py = tmp_path / "cifar-10-batches-py"
    py.mkdir()
    (py / "data_batch_1").write_bytes(b"\x80\x02}q\x00(X\x04\x00\x00\x00data" + b"\x00" * 64)
    with pytest.raises(CnnhubError, match=r"pickle.*never.*binary version"):
        load_source(py)
    with pytest.raises(CnnhubError, match="pickle"):
        load_source(py / "data_batch_1")
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"\x00" * 1000)
    with pytest.raises(CnnhubError, match="not a multiple of 3073"):
        load_source(odd)


def test_npz_layouts(tmp_path, gray, expected_gray):
    images, labels = gray
    variants = {
        "nhw.npz": {"x": images, "y": labels},
        "nhwc.npz": {"x": images[..., None], "y": labels[:, None]},
        "float01.npz": {"x": images.astype(np.float32) / 255.0, "y": labels},
        "float255.npz": {"x": images.astype(np.float64), "y": labels.astype(np.float32)},
        "nchw.npz": {"x": images[:, None], "y": np.eye(3, dtype=np.uint8)[labels]},
        "flat.npz": {"x": images.reshape(12, 64).astype(np.int16), "y": labels},
    }
    for name, arrays in variants.items():
        np.savez(tmp_path / name, **arrays)
        assert detect_format(tmp_path / name) == "npz"
        source = load_source(tmp_path / name)
        assert source.images.dtype == np.uint8, name
        assert contents(source) == expected_gray, name


def test_npz_rgba_and_refusals(tmp_path):
    x = np.zeros((2, 1, 2, 4), dtype=np.uint8)
    x[:, 0, 0] = (255, 0, 0, 255)
    x[:, 0, 1] = (255, 0, 0, 0)
    np.savez(tmp_path / "rgba.npz", x=x, y=np.array([0, 1]))
    out = read_npz(tmp_path / "rgba.npz").images
    assert out.shape == (2, 1, 2, 3)
    assert tuple(out[0, 0, 0]) == (255, 0, 0) and tuple(out[0, 0, 1]) == (255, 255, 255)

    np.savez(tmp_path / "keras.npz", x_train=x, y_train=np.array([0, 1]))
    with pytest.raises(CnnhubError, match=r"named `x`.*x_train"):
        load_source(tmp_path / "keras.npz")
    np.savez(tmp_path / "objects.npz", x=x, y=np.array(["a", None], dtype=object))
    with pytest.raises(CnnhubError, match="object array.*unpickling"):
        load_source(tmp_path / "objects.npz")
    np.savez(tmp_path / "mismatch.npz", x=x, y=np.array([0, 1, 2]))
    with pytest.raises(CnnhubError, match="2 images in `x` but 3 labels"):
        load_source(tmp_path / "mismatch.npz")


def test_names_file_validation(tmp_path, gray):
    images, labels = gray
    np.savez(tmp_path / "d.npz", x=images, y=labels)
    names = tmp_path / "names.txt"
    names.write_text("a\nb\n")
    with pytest.raises(CnnhubError, match=r"must be 0..1.*labels=\[2\]"):
        load_source(tmp_path / "d.npz", names_file=names)
    names.write_text("a\n\nb\nc\n")
    with pytest.raises(CnnhubError, match="blank line"):
        read_names_file(names)
    names.write_text("a\nb\na\n")
    with pytest.raises(CnnhubError, match="repeats 'a'"):
        read_names_file(names)


def test_load_source_argument_errors(tmp_path, gray_folder):
    with pytest.raises(CnnhubError, match="does not exist"):
        load_source(tmp_path / "nothing")
    with pytest.raises(CnnhubError, match=r"`data_format` must be auto or one of folder"):
        load_source(gray_folder, data_format="images")
    with pytest.raises(CnnhubError, match="image_shape` only applies"):
        load_source(gray_folder, image_shape=(8, 8))
    with pytest.raises(CnnhubError, match="`names_file` does not apply"):
        load_source(gray_folder, names_file=tmp_path / "n.txt")
    (tmp_path / "thing.dat").write_bytes(b"random bytes here")
    with pytest.raises(CnnhubError, match="Cannot tell the dataset format"):
        load_source(tmp_path / "thing.dat")
    assert set(DATA_FORMATS) == {"folder", "csv_pixels", "csv_paths", "idx", "cifar_bin", "npz"}


# --------------------------------------------------------------------------- splits


def _sixty(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [30, 20, 10])
    x = rng.integers(0, 256, (60, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "sixty.npz", x=x, y=labels)
    return load_source(tmp_path / "sixty.npz")


def test_stratified_split_is_stratified_seeded_disjoint(tmp_path):
    source = _sixty(tmp_path)
    train, valid, frame = stratified_split(source, 0.2, seed=3)
    assert valid.class_counts().tolist() == [6, 4, 2]
    assert train.class_counts().tolist() == [24, 16, 8]
    assert set(train.keys).isdisjoint(valid.keys)
    assert sorted(train.keys + valid.keys) == sorted(source.keys)
    assert list(frame.columns) == ["path", "label", "split"]
    assert frame["path"].tolist() == source.keys and frame["path"][0] == "sixty.npz#0"
    assert frame.loc[frame.split == "valid", "path"].tolist() == valid.keys
    index = {k: i for i, k in enumerate(source.keys)}
    for part in (train, valid):  # pixels and labels travel with their keys
        rows = [index[k] for k in part.keys]
        np.testing.assert_array_equal(part.images, source.images[rows])
        np.testing.assert_array_equal(part.labels, source.labels[rows])

    again = stratified_split(source, 0.2, seed=3)
    assert again[1].keys == valid.keys
    assert stratified_split(source, 0.2, seed=4)[1].keys != valid.keys


def test_split_keeps_one_of_each_in_train(tmp_path, gray_folder):
    source = load_source(gray_folder)
    train, valid, _ = stratified_split(source, 0.9, seed=0)
    assert train.class_counts().tolist() == [1, 1, 1]
    assert valid.class_counts().tolist() == [3, 3, 3]
    lonely = source.subset([0, 4, 5, 8, 9])  # class 0 has one image: it stays in train
    train, valid, _ = stratified_split(lonely, 0.5, seed=0)
    assert train.class_counts().tolist() == [1, 1, 1] and valid.class_counts().tolist() == [0, 1, 1]
    for bad in (0, 1, 1.5, -0.1, "0.2", True):
        with pytest.raises(CnnhubError, match="`val_fraction` must be"):
            stratified_split(source, bad, seed=0)


@pytest.mark.parametrize(("counts", "k"), [((30, 20, 10), 5), ((7, 3, 4), 3)])
def test_folds_are_stratified_balanced_and_seeded(counts, k):
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]  # folds must not depend on listing order
    fold = assign_folds(labels, k, seed=5)
    assert sorted(set(fold.tolist())) == list(range(k))
    sizes = np.bincount(fold, minlength=k)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == len(labels)
    for cls, count in enumerate(counts):  # each class spread evenly over the folds
        per_fold = np.bincount(fold[labels == cls], minlength=k)
        assert per_fold.max() - per_fold.min() <= 1 and per_fold.min() == count // k
    np.testing.assert_array_equal(assign_folds(labels, k, seed=5), fold)
    assert not np.array_equal(assign_folds(labels, k, seed=6), fold)


def test_split_file_round_trip_folder(tmp_path, gray_folder):
    source = load_source(gray_folder)
    train, valid, frame = stratified_split(source, 0.25, seed=1)
    split_csv = tmp_path / "run" / "split.csv"
    write_split_file(split_csv, frame)
    saved = pd.read_csv(split_csv, dtype=str)
    assert saved["path"].tolist()[:2] == ["0/00.png", "0/01.png"]
    again_train, again_valid = apply_split_file(load_source(gray_folder), split_csv)
    assert again_train.paths == train.paths and again_valid.paths == valid.paths
    assert again_valid.labels.tolist() == valid.labels.tolist()


def test_split_file_round_trip_in_memory_and_errors(tmp_path):
    source = _sixty(tmp_path)
    _, valid, frame = stratified_split(source, 0.3, seed=9)
    split_csv = tmp_path / "split.csv"
    write_split_file(split_csv, frame)
    train2, valid2 = apply_split_file(source, split_csv)
    assert valid2.keys == valid.keys and len(train2) + len(valid2) == 60
    np.testing.assert_array_equal(valid2.images, valid.images)

    frame.drop(index=[5, 7]).to_csv(split_csv, index=False)
    with pytest.raises(CnnhubError, match=r"2 sample\(s\).*'sixty.npz#5', 'sixty.npz#7'"):
        apply_split_file(source, split_csv)
    extra = pd.concat([frame, pd.DataFrame([["other.npz#0", "0", "train"]], columns=frame.columns)])
    extra.to_csv(split_csv, index=False)
    with pytest.raises(CnnhubError, match=r"1 entr\(ies\).*'other.npz#0'"):
        apply_split_file(source, split_csv)
    relabel = frame.copy()
    relabel.loc[0, "label"] = "2"
    relabel.to_csv(split_csv, index=False)
    with pytest.raises(CnnhubError, match="different class.*'sixty.npz#0'"):
        apply_split_file(source, split_csv)
    wrong = frame.copy()
    wrong.loc[0, "split"] = "test"
    wrong.to_csv(split_csv, index=False)
    with pytest.raises(CnnhubError, match="train or valid.*'test'"):
        apply_split_file(source, split_csv)
    frame[["path", "label"]].to_csv(split_csv, index=False)
    with pytest.raises(CnnhubError, match="lacks split"):
        apply_split_file(source, split_csv)


def test_drop_paths_and_subset(gray_folder):
    source = load_source(gray_folder)
    kept = source.drop_paths(source.paths[:2])
    assert len(kept) == 10 and kept.paths == source.paths[2:]
    assert kept.keys == source.keys[2:] and kept.class_names == source.class_names
    with pytest.raises(ValueError, match="exactly one"):
        DataSource(["a"], np.zeros(1))


@pytest.mark.parametrize(
    ("path", "root", "key"),
    [
        ("data/x/cat/1.png", "data/x", "cat/1.png"),
        ("data/x/./cat//2.png", "data/x/", "cat/2.png"),  # normalised, as os.path.relpath does
        ("data/xy/cat/3.png", "data/x", "data/xy/cat/3.png"),  # a sibling folder is outside
        ("elsewhere/4.png", "data/x", "elsewhere/4.png"),  # outside the root: the path itself
        ("data/x/5.png", None, "data/x/5.png"),
    ],
)
def test_file_keys_are_relative_to_the_source_root(path, root, key):
    from cnnhub.data.sources.base import relative_keys

    assert relative_keys([path], root) == [key]
