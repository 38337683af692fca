"""The shipped Fashion-MNIST sample is exactly what data/prepare_fashion_mnist.py makes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, cli_env

IDX_DIRS = [ROOT.parent / "shared" / "datasets" / "fashion-mnist"]


needs_idx = pytest.mark.skipif(
    not any((d / "train-images-idx3-ubyte.gz").is_file() for d in IDX_DIRS),
    reason="Fashion-MNIST IDX files not available beside the checkout",
)


@needs_idx
def test_sample_is_reproducible(tmp_path):
    out = tmp_path / "sample"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "data" / "prepare_fashion_mnist.py"),
            "--out",
            str(out),
            "--train_per_class",
            "100",
            "--valid_per_class",
            "30",
            "--no_test",
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Wrote 1000 train, 300 valid images to {out}"
    shipped = ROOT / "data" / "fashion_mnist_sample"
    made = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert made == sorted(p.relative_to(shipped) for p in shipped.rglob("*.png"))
    assert len(made) == 1300
    for name in made:
        assert (out / name).read_bytes() == (shipped / name).read_bytes(), name


def test_sample_layout():
    for split, per_class in (("train", 100), ("valid", 30)):
        classes = sorted(p.name for p in (ROOT / "data" / "fashion_mnist_sample" / split).iterdir())
        assert classes == sorted(
            [
                "tshirt_top",
                "trouser",
                "pullover",
                "dress",
                "coat",
                "sandal",
                "shirt",
                "sneaker",
                "bag",
                "ankle_boot",
            ]
        )
        for name in classes:
            folder = ROOT / "data" / "fashion_mnist_sample" / split / name
            assert len(list(folder.glob("*.png"))) == per_class


PREPARE = {  # each data script, a small split, and another split of the same images
    "prepare_fashion_mnist.py": (
        ["--no_test", "--train_per_class", "2", "--valid_per_class", "1"],
        ["--valid_per_class", "2"],
    ),
    "prepare_digits.py": (["--valid", "0.2", "--test", "0.2"], ["--valid", "0.3"]),
}


@pytest.mark.parametrize(
    "script",
    [pytest.param("prepare_fashion_mnist.py", marks=needs_idx), "prepare_digits.py"],
)
def test_a_used_output_folder_is_refused(tmp_path, script):
    """Preparing again into the same folder, with another split, would put images in two
    splits: refused, one line and status 2, before anything is written."""
    first_args, other = PREPARE[script]
    command = [sys.executable, str(ROOT / "data" / script), "--out", str(tmp_path / "out")]
    first = subprocess.run([*command, *first_args], env=cli_env(), capture_output=True)
    assert first.returncode == 0, first.stderr
    files = {p: p.read_bytes() for p in tmp_path.rglob("*.png")}
    assert files
    again = subprocess.run(
        [*command, *first_args, *other], env=cli_env(), capture_output=True, text=True
    )
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr == (
        f"error: {tmp_path / 'out' / 'train'} already holds files; remove {tmp_path / 'out'} (or "
        "pass another --out) to prepare the data again, so that no image ends up in two splits.\n"
    )
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.png")} == files


@needs_idx
def test_default_split_is_the_recipes():
    """The recipe's data (docs/custom-cnns.md): 57,500 train and 2,500 valid images, 250 of each
    class in valid, disjoint, together the 60,000 training images."""
    spec = importlib.util.spec_from_file_location(
        "prep", ROOT / "data" / "prepare_fashion_mnist.py"
    )
    prep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prep)
    from cnnhub.data.sources import load_source

    labels = load_source(str(IDX_DIRS[0] / "train-images-idx3-ubyte.gz")).labels
    args = prep.parse_args([])
    train, valid = prep.split_indices(labels, args.valid_per_class, args.train_per_class, args.seed)
    assert (len(train), len(valid)) == (57_500, 2_500)
    assert np.bincount(labels[valid], minlength=10).tolist() == [250] * 10
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(60_000))
