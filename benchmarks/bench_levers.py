"""Issue 20's levers, each alone on the Fashion-MNIST recipe: test accuracy and time.

    python benchmarks/bench_levers.py            # 400 images per class, 3 epochs (~15 min idle)
    python benchmarks/bench_levers.py --quick    # 60 per class, 1 epoch: a smoke run
    python benchmarks/bench_levers.py --levers baseline,ema --dev 1000 --epochs 5

A REDUCED measurement: the recipe (``recipes/fashion_mnist.yaml``) on a seeded subset of the
Fashion-MNIST IDX files (``--dev`` images per class of the training and test files, 10% of
the training subset held out for validation) for a few epochs, every variant in its own
``benchmarks/_child.py`` process, one after the other, with the same seed and data.
Regularisers (RandAugment, MixUp, ...) usually need long runs to pay off, so a short run
understates them; the table says what each lever costs and does on a short budget, not what it
buys on the full 14-epoch recipe. The 1-minute load average is printed before and after each
run: on a shared machine the times are inflated, compare them within one table only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT,
    add_common_args,
    child_env,
    run_children,
    start_results,
    table,
    work_dir,
    write_json,
)

LEVERS: dict[str, list[str]] = {
    "baseline": [],
    "randaugment": ["--aug_randaugment", "2"],
    "augmix": ["--aug_augmix", "0.3"],
    "erasing": ["--aug_erasing", "0.25"],
    "mixup": ["--aug_mixup", "0.2", "--mix_off_epochs", "1"],
    "cutmix": ["--aug_cutmix", "1.0", "--mix_off_epochs", "1"],
    "ema": ["--ema", "true"],
    "ema_0.9": ["--ema", "true", "--ema_momentum", "0.9"],
    "tta_flip": ["--tta", "flip"],
}


def idx_folder() -> Path:
    """The Fashion-MNIST IDX files, as data/prepare_fashion_mnist.py looks for them."""
    for folder in (ROOT.parent / "shared" / "datasets" / "fashion-mnist",
                   Path("/usr/share/datasets/fashion-mnist")):  # fmt: skip
        if (folder / "train-images-idx3-ubyte.gz").is_file():
            return folder
    raise SystemExit("Fashion-MNIST IDX files not found (see data/prepare_fashion_mnist.py)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", type=int, default=400, help="images per class (train, test)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--levers", default=",".join(LEVERS), help="comma-separated subset")
    add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.dev, args.epochs = 60, 2
    names = [n.strip() for n in args.levers.split(",") if n.strip()]
    results = start_results("levers", args, tensorflow=False)
    idx = idx_folder()
    with work_dir("levers", args.keep) as work:
        base = [
            "-c", str(ROOT / "recipes" / "fashion_mnist.yaml"),
            "-dtrain", str(idx / "train-images-idx3-ubyte.gz"), "-dvalid", "",
            "--val_split", "0.1", "-dtest", str(idx / "t10k-images-idx3-ubyte.gz"),
            "--dev", str(args.dev), "-e", str(args.epochs), "-sl", str(work),
        ]  # fmt: skip
        runs = [[*base, "--run_name", name, *LEVERS[name]] for name in names]
        rows, records = [], []
        for name, run in zip(names, runs):
            load_before = round(os.getloadavg()[0], 2)
            result = run_children([run], child_env(work), timeout=3600)[0]
            load_after = round(os.getloadavg()[0], 2)
            run_dir = Path(result["run_dir"])
            summary = next((run_dir / "evaluations").glob("*/summary.json"))
            test = json.loads(summary.read_text(encoding="utf-8"))
            best = json.loads((run_dir / "best_weights.json").read_text(encoding="utf-8"))
            epochs = result["epoch_seconds"]
            record = {
                "lever": name,
                "flags": " ".join(LEVERS[name]) or "(recipe)",
                "test_accuracy": test["accuracy@0"],
                "test_images": test["images"],
                "best_epoch": best["epoch"],
                "train_seconds": round(result["seconds"], 1),
                "epoch_seconds": [round(e, 1) for e in epochs],
                "validation_seconds": [round(v, 1) for v in result["validation_seconds"]],
                "load_1min": [load_before, load_after],
            }
            records.append(record)
            rows.append([
                name, record["flags"], record["test_accuracy"], record["best_epoch"],
                record["train_seconds"], sum(epochs) / max(len(epochs), 1),
                f"{load_before} / {load_after}",
            ])  # fmt: skip
            print(table(["lever", "flags", "test acc", "epoch", "train s", "s/epoch", "load"],
                        rows[-1:]), flush=True)  # fmt: skip
    results["runs"] = records
    print(table(["lever", "flags", "test acc", "best epoch", "train+test s", "s/epoch",
                 "load 1-min before / after"], rows))  # fmt: skip
    write_json(args.json, results)


if __name__ == "__main__":
    main()
