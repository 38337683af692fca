"""The shipped Fashion-MNIST sample is exactly what data/prepare_fashion_mnist.py makes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, cli_env

IDX_DIRS = [ROOT.parent / "shared" / "datasets" / "fashion-mnist"]


@pytest.mark.skipif(
    not any((d / "train-images-idx3-ubyte.gz").is_file() for d in IDX_DIRS),
    reason="Fashion-MNIST IDX files not available beside the checkout",
)
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
