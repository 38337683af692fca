"""Turn the Fashion-MNIST IDX files into folder-per-class PNGs that cnnhub trains on.

    python data/prepare_fashion_mnist.py   # full: 57.5k train / 2.5k valid / 10k test
    python data/prepare_fashion_mnist.py --out data/fashion_mnist_sample \
        --train_per_class 100 --valid_per_class 30 --no_test  # the small sample shipped in data/

The IDX files are read from --idx_dir, else ../shared/datasets/fashion-mnist/ beside the
checkout, else /usr/share/datasets/fashion-mnist/ (Debian: apt-get install dataset-fashion-mnist).
Train and valid come from the 60,000 training images, split stratified with a fixed seed; the
10,000 test images go to test/ untouched, never used to choose epochs or thresholds.
Fashion-MNIST is (c) Zalando SE, MIT licence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnnhub.data.sources import load_source  # noqa: E402
from cnnhub.data.splits import refuse_used_split_folders  # noqa: E402
from cnnhub.errors import CnnhubError  # noqa: E402

CLASS_NAMES = [
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
_ROOT = Path(__file__).resolve().parent.parent
SEARCH = [
    _ROOT.parent / "shared" / "datasets" / "fashion-mnist",
    Path("/usr/share/datasets/fashion-mnist"),
]


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2 (bad input), nothing written."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def find_idx_dir(given: str | None) -> Path:
    candidates = [Path(given)] if given else SEARCH
    for folder in candidates:
        if (folder / "train-images-idx3-ubyte.gz").is_file():
            return folder
    fail(
        "Fashion-MNIST IDX files not found in "
        + ", ".join(map(str, candidates))
        + "; pass --idx_dir DIR (or apt-get install dataset-fashion-mnist)."
    )


def split_indices(labels: np.ndarray, valid_per_class: int, train_per_class: int | None, seed: int):
    """Stratified, seeded train/valid indices; train takes the rest unless capped."""
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for c in range(len(CLASS_NAMES)):
        idx = rng.permutation(np.flatnonzero(labels == c))
        valid.extend(idx[:valid_per_class])
        rest = idx[valid_per_class:]
        train.extend(rest if train_per_class is None else rest[:train_per_class])
    return np.sort(train), np.sort(valid)


def write_split(out: Path, split: str, images: np.ndarray, labels: np.ndarray, indices) -> None:
    for c in CLASS_NAMES:
        (out / split / c).mkdir(parents=True, exist_ok=True)
    for i in indices:
        path = out / split / CLASS_NAMES[labels[i]] / f"{split}_{i:05d}.png"
        Image.fromarray(images[i].squeeze(-1) if images[i].ndim == 3 else images[i]).save(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options, with their defaults for the full recipe data."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idx_dir", help="folder holding the four *-ubyte.gz files")
    parser.add_argument("--out", default="data/fashion_mnist", help="output folder")
    # 250 per class: 2,500 more to train on and half the recipe's per-epoch scoring, for a
    # noisier epoch choice (issue 20: benchmarks/README.md, "Fashion-MNIST recipe").
    parser.add_argument("--valid_per_class", type=int, default=250, help="valid images per class")
    parser.add_argument("--train_per_class", type=int, help="cap train images per class")
    parser.add_argument("--no_test", action="store_true", help="do not write the test folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    idx_dir = find_idx_dir(args.idx_dir)
    out = Path(args.out)
    try:
        refuse_used_split_folders(out, ["train", "valid"] + ([] if args.no_test else ["test"]))
    except CnnhubError as exc:
        fail(str(exc))
    train_source = load_source(str(idx_dir / "train-images-idx3-ubyte.gz"))
    train_idx, valid_idx = split_indices(
        train_source.labels, args.valid_per_class, args.train_per_class, args.seed
    )
    write_split(out, "train", train_source.images, train_source.labels, train_idx)
    write_split(out, "valid", train_source.images, train_source.labels, valid_idx)
    counts = f"{len(train_idx)} train, {len(valid_idx)} valid"
    if not args.no_test:
        test = load_source(str(idx_dir / "t10k-images-idx3-ubyte.gz"))
        write_split(out, "test", test.images, test.labels, range(len(test.labels)))
        counts += f", {len(test.labels)} test"
    print(f"Wrote {counts} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
