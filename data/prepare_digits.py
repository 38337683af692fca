"""Write scikit-learn's handwritten digits as folder-per-class PNGs that cnnhub trains on.

    python data/prepare_digits.py                      # data/digits/{train,valid,test}/<digit>/
    python data/prepare_digits.py --out DIR --valid 0.2 --test 0.2 --seed 0

The 1,797 8x8 images of ``sklearn.datasets.load_digits`` (shipped inside scikit-learn, no
download; pixel values 0-16, scaled here to 0-255 grayscale) are split stratified with a fixed
seed into train/valid/test, by ``sklearn.model_selection.train_test_split``. Class folders are
named ``0`` ... ``9``. The data set is the UCI "Optical Recognition of Handwritten Digits" test
set (CC BY 4.0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnnhub.data.splits import refuse_used_split_folders  # noqa: E402
from cnnhub.errors import CnnhubError  # noqa: E402


def split_indices(
    labels: np.ndarray, valid: float, test: float, seed: int
) -> dict[str, np.ndarray]:
    """Stratified, seeded train/valid/test indices (sorted) with the given fractions."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    rest, test_idx = train_test_split(indices, test_size=test, stratify=labels, random_state=seed)
    train_idx, valid_idx = train_test_split(
        rest, test_size=valid / (1 - test), stratify=labels[rest], random_state=seed
    )
    return {"train": np.sort(train_idx), "valid": np.sort(valid_idx), "test": np.sort(test_idx)}


def write_digits(out: Path, valid: float = 0.2, test: float = 0.2, seed: int = 0) -> dict[str, int]:
    """Write the PNG folders under ``out``; returns the image count of each split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)
    counts = {}
    for split, indices in split_indices(digits.target, valid, test, seed).items():
        for c in range(10):
            (out / split / str(c)).mkdir(parents=True, exist_ok=True)
        for i in indices:
            Image.fromarray(pixels[i]).save(
                out / split / str(digits.target[i]) / f"{split}_{i:04d}.png"
            )
        counts[split] = len(indices)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/digits", help="output folder")
    parser.add_argument("--valid", type=float, default=0.2, help="fraction for validation")
    parser.add_argument("--test", type=float, default=0.2, help="fraction for test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (0 < args.valid < 1 and 0 < args.test < 1 and args.valid + args.test < 1):
        parser.error(
            f"--valid and --test must be fractions in (0, 1) with a sum below 1. "
            f"Received: valid={args.valid}, test={args.test}"
        )
    try:
        refuse_used_split_folders(args.out, ["train", "valid", "test"])
    except CnnhubError as exc:
        parser.exit(2, f"error: {exc}\n")
    counts = write_digits(Path(args.out), args.valid, args.test, args.seed)
    print(
        f"Wrote {counts['train']} train, {counts['valid']} valid, {counts['test']} test images "
        f"to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
