"""Random-init (``-w none``) training of keras.applications and cnnhub backbones on small data.

    python benchmarks/bench_scratch.py                       # the five models, 10 epochs, 32 px
    python benchmarks/bench_scratch.py --models squeezenet --epochs 3 --json out.json
    python benchmarks/bench_scratch.py --lr_schedule constant --batch_size 32  # cnnhub's defaults

Data: the first ``--train_per_class`` / ``--valid_per_class`` images of each class of
Fashion-MNIST's training IDX file (``../shared/datasets/fashion-mnist/`` beside the checkout,
read with ``cnnhub.data.sources.read_idx``), stratified with a fixed seed and written as two .npz
files. Each model trains in its own ``run_training.py`` process (``benchmarks/_child.py``), one
after another. Target (issue 13): every model ends with validation accuracy at least 0.7 and
within 0.1 of its training accuracy (the last epoch of ``training.log``). Defaults: Adam at
``--lr`` 1e-3, ``--batch_size`` 16, ``--lr_schedule cosine`` (the rate falls from 1e-3 to ~0
over the run). With run_training.py's own defaults (batch 32, constant rate) MobileNetV2,
EfficientNetB0 and SqueezeNet ended just under 0.7; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT,
    add_common_args,
    child_env,
    run_child,
    start_results,
    table,
    work_dir,
    write_json,
)

MODELS = ["mobilenetv2", "resnet50", "efficientnetb0", "densenet121", "squeezenet"]
IDX = ROOT.parent / "shared" / "datasets" / "fashion-mnist" / "train-images-idx3-ubyte.gz"
MIN_VAL_ACCURACY = 0.7
MAX_GAP = 0.1


def write_splits(folder: Path, train_per_class: int, valid_per_class: int, seed: int = 0):
    """Stratified train/valid .npz files (``x``: uint8 N x 28 x 28 x 1, ``y``) from the IDX file."""
    from cnnhub.data.sources import read_idx

    source = read_idx(IDX)
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for label in range(source.num_classes):
        indices = rng.permutation(np.flatnonzero(source.labels == label))
        valid.extend(indices[:valid_per_class])
        train.extend(indices[valid_per_class : valid_per_class + train_per_class])
    paths = {}
    for split, indices in (("train", train), ("valid", valid)):
        indices = np.sort(indices)
        paths[split] = folder / f"{split}.npz"
        np.savez(paths[split], x=source.images[indices], y=source.labels[indices])
    return paths


def last_epoch(run_dir: str) -> dict:
    """Training and validation accuracy of the last epoch in a run's ``training.log``."""
    import pandas as pd

    row = pd.read_csv(Path(run_dir) / "training.log").iloc[-1]
    return {"accuracy": float(row["accuracy"]), "val_accuracy": float(row["val_accuracy"])}


def seconds_per_epoch(run_dir: str) -> float:
    """Median seconds per epoch in a run's ``training.log`` (the first epoch also builds the
    graph, so the mean would overstate it)."""
    import pandas as pd

    return float(pd.read_csv(Path(run_dir) / "training.log")["seconds"].median())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train_per_class", type=int, default=300)
    parser.add_argument("--valid_per_class", type=int, default=100)
    parser.add_argument(
        "--lr_schedule",
        default="cosine",
        help="run_training.py --lr_schedule: constant, step, cosine or plateau",
    )
    parser.add_argument("--lr", default="0.001", help="learning rate")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--extra", default="", help="more run_training.py flags, space-separated")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train_per_class, args.valid_per_class = 2, 30, 10
    results = start_results("scratch", args, tensorflow=False)
    rows, results["runs"] = [], []
    with work_dir("scratch", keep=args.keep) as work:
        paths = write_splits(work, args.train_per_class, args.valid_per_class)
        env = child_env(work)
        for model in args.models.split(","):
            flags = ["-dtrain", str(paths["train"]), "-dvalid", str(paths["valid"]),
                     "-m", model, "-w", "none", "-height", str(args.size), "-width",
                     str(args.size), "-e", str(args.epochs), "-post", "false",
                     "-sl", str(work / "runs"), "--run_name", model, "--lr_schedule",
                     args.lr_schedule, "-lr", args.lr, "-b", str(args.batch_size),
                     *args.extra.split()]  # fmt: skip
            result = run_child(flags, env, timeout=3600)
            final = last_epoch(result["run_dir"])
            gap = final["accuracy"] - final["val_accuracy"]
            met = final["val_accuracy"] >= MIN_VAL_ACCURACY and abs(gap) <= MAX_GAP
            per_epoch = seconds_per_epoch(result["run_dir"])
            run = dict(model=model, **final, gap=gap, met=met, seconds=result["seconds"],
                       seconds_per_epoch=per_epoch)  # fmt: skip
            results["runs"].append(run)
            rows.append([model, final["accuracy"], final["val_accuracy"], gap,
                         "met" if met else "NOT met", per_epoch, result["seconds"]])  # fmt: skip
            print(f"{model}: train {final['accuracy']:.3f}, valid {final['val_accuracy']:.3f}, "
                  f"{result['seconds']:.0f} s", flush=True)  # fmt: skip
    print(table(["model", "train acc", "val acc", "gap", "target", "s/epoch", "seconds"], rows))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
