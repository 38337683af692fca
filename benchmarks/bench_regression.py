"""Issue 18: regression on real images, and what per-epoch scoring costs against single-label.

    python benchmarks/bench_regression.py [--train 3000] [--valid 1000] [--epochs 3]

Data: the first ``--train`` + ``--valid`` Fashion-MNIST training images
(``../shared/datasets/fashion-mnist``), each rotated by a seeded random whole angle in
[-45, 45] degrees (bilinear, black corners); the angle is the regression target. The same
rotated images with their Fashion-MNIST classes are the single-label baseline at the same size.
Both are .npz files (in memory, no decoding), trained in this process one after the other with
the same custom CNN at 28x28, batch 64, ``--epochs`` epochs, ``-w none``.

Reported per task: median seconds per epoch (training.log, epochs after the first), the time
of the per-epoch scoring callback (``EpochReports``: per-image CSV and metrics for regression,
threshold reports for single-label; measured by wrapping it) as a share of the epoch, and the
final validation figures (regression: MAE in degrees, RMSE, R2; single-label: accuracy).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import statistics
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine_info  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "fashion-mnist"


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def rotated(images: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image rotated by a seeded whole angle in [-45, 45] degrees; (images, angles)."""
    from PIL import Image

    angles = np.random.default_rng(seed).integers(-45, 46, len(images))
    out = np.stack(
        [
            np.asarray(Image.fromarray(x).rotate(int(a), resample=Image.Resampling.BILINEAR))
            for x, a in zip(images, angles)
        ]
    )
    return out[..., None], angles


def train(task: str, folder: Path, epochs: int) -> dict:
    """Train one task's run; return its per-epoch and scoring times and final figures."""
    from cnnhub.commands.train import train_main
    from cnnhub.evaluation import run_evaluation

    spent: list[float] = []
    original = run_evaluation.EpochReports.on_epoch_end

    def timed(self, epoch, logs=None):
        started = time.perf_counter()
        original(self, epoch, logs)
        spent.append(time.perf_counter() - started)

    run_evaluation.EpochReports.on_epoch_end = timed
    try:
        suffix = "angle" if task == "regression" else "class"
        argv = [
            "--task", task, "-dtrain", str(folder / f"train_{suffix}.npz"),
            "-dvalid", str(folder / f"valid_{suffix}.npz"), "-sl", str(folder),
            "--run_name", task, "-m", "custom", "-height", "28", "-width", "28",
            "--color_mode", "grayscale", "-e", str(epochs), "-b", "64", "-w", "none",
            "--custom_conv_blocks", "c32-bn-mp2,c64-bn-mp2", "--aug_horizontal_flip", "false",
            "--aug_zoom", "0", "--aug_translation", "0",
        ]  # fmt: skip
        with redirect_stdout(io.StringIO()):
            assert train_main(argv) == 0
    finally:
        run_evaluation.EpochReports.on_epoch_end = original
    import pandas as pd

    run = folder / "model_repository" / task
    log = pd.read_csv(run / "training.log")
    epoch_s = statistics.median(log["seconds"].iloc[1:] if len(log) > 1 else log["seconds"])
    scoring = statistics.median(spent[1:] if len(spent) > 1 else spent)
    report = pd.read_csv(run / "analysis_report.csv")
    last = report[report["epoch"] == report["epoch"].max()].iloc[0]
    figures = (
        {k: round(float(last[k]), 4) for k in ("mae", "rmse", "r2")}
        if task == "regression"
        else {"accuracy": round(float(last["accuracy"]), 4)}
    )
    return {
        "task": task,
        "epoch_s": round(epoch_s, 2),
        "scoring_s": round(scoring, 3),
        "scoring_share": round(scoring / epoch_s, 4),
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--valid", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tempfile

    n = args.train + args.valid
    images = read_idx(DATA / "train-images-idx3-ubyte.gz")[:n]
    classes = read_idx(DATA / "train-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    x, angles = rotated(images, seed=0)
    info = machine_info()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_regression-") as tmp:
        folder = Path(tmp)
        for part, sl in (("train", slice(0, args.train)), ("valid", slice(args.train, n))):
            np.savez(folder / f"{part}_angle.npz", x=x[sl], y=angles[sl])
            np.savez(folder / f"{part}_class.npz", x=x[sl], y=classes[sl])
        for task in ("single_label", "regression"):
            results.append(train(task, folder, args.epochs))
    info["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(f"{info['date']}, nproc {info['nproc']}, load average {info['loadavg_at_start']} at "
          f"start, {info['loadavg_at_end']} at end; {args.train} train / {args.valid} valid "
          f"images, {args.epochs} epochs")  # fmt: skip
    print("| task | s / epoch | scoring s / epoch | scoring share | final validation |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        final = ", ".join(
            f"{k} {r[k]}" for k in ("mae", "rmse", "r2", "accuracy") if k in r
        )
        print(f"| {r['task']} | {r['epoch_s']} | {r['scoring_s']} | "
              f"{r['scoring_share']:.1%} | {final} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
