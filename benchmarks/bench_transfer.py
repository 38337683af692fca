"""Issue 15: your own run as a pretrained backbone. Fashion-MNIST -> handwritten digits.

    python benchmarks/bench_transfer.py [--quick] [--json OUT]

1. Trains a backbone on a Fashion-MNIST subset (``data/prepare_fashion_mnist.py``, IDX files
   from ../shared/datasets/fashion-mnist): ``--fashion_per_class`` training and 50 validation
   images per class, from random init::

       -m mobilenetv2 -w none -tt train_all -height 64 -width 64 -e FASHION_EPOCHS

2. Trains scikit-learn's handwritten digits (``data/prepare_digits.py``: 8x8 images, seeded
   60/20/20 split, scored on the test split with the weights chosen on validation) three
   ways at equal epochs, same size, batch, seed and (no) augmentation:

   * ``random``:    ``-w none -tt train_all``
   * ``freeze_all``: ``-w <fashion run> -tt freeze_all`` (feature cache on: no augmentation)
   * ``fine_tune``: ``-w <fashion run> -tt fine_tune`` (head for ``--fine_tune_after`` epochs,
     then the whole backbone at 0.1x the learning rate, BatchNorm in inference mode)

   and, since a freeze_all epoch on cached features costs about a second, freeze_all again
   with ``--freeze_all_epochs`` epochs (default 60), which still takes less time than the
   random-init run: the comparison at equal time.

Each run is its own ``run_training.py`` process; its wall time includes Python and TensorFlow
start-up and the post-evaluation. Reports test accuracy and wall time of each. The work folder
(benchmarks/_work/transfer/) is kept, and a finished step is not run again (delete the folder
to start over), so the Fashion backbone can be trained once and the digits runs repeated.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ROOT,
    WORK,
    add_common_args,
    child_env,
    run_folder_of,
    start_results,
    table,
    timed_run,
    write_json,
)

COMMON = ["-m", "mobilenetv2", "-b", "64", "--seed", "1", "-post", "true",
          "--eval_weights", "top:1", "--aug_horizontal_flip", "false", "--aug_zoom", "0",
          "--aug_translation", "0"]  # fmt: skip
WAYS = {
    "random": ["-w", "none", "-tt", "train_all"],
    "freeze_all": ["-w", "{fashion}", "-tt", "freeze_all", "--feature_cache", "true"],
    "fine_tune": ["-w", "{fashion}", "-tt", "fine_tune"],
}


def prepare_data(work: Path, fashion_per_class: int) -> tuple[Path, Path]:
    """The Fashion-MNIST subset and the digits folders under ``work`` (written once)."""
    sys.path.insert(0, str(ROOT / "data"))
    import prepare_digits
    import prepare_fashion_mnist

    fashion, digits = work / "fashion", work / "digits"
    if not (fashion / "valid").is_dir():
        prepare_fashion_mnist.main(
            [
                "--out",
                str(fashion),
                "--train_per_class",
                str(fashion_per_class),
                "--valid_per_class",
                "50",
                "--no_test",
            ]  # fmt: skip
        )
    if not (digits / "test").is_dir():
        prepare_digits.main(["--out", str(digits), "--seed", "0"])
    return fashion, digits


def train(work: Path, name: str, argv: list[str]) -> dict:
    """Run ``run_training.py argv`` once into ``work/model_repository/<name>`` (cached)."""
    record = work / f"{name}.json"
    if record.is_file():
        print(f"{name}: reusing {record}", flush=True)
        return json.loads(record.read_text(encoding="utf-8"))
    cmd = [sys.executable, str(ROOT / "run_training.py"), *argv, "-sl", str(work),
           "--run_name", name, "--overwrite"]  # fmt: skip
    print(f"{name}: {' '.join(argv)}", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, out = timed_run(cmd, child_env(work), timeout=3 * 3600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    run = run_folder_of(out.stdout)
    result = {"name": name, "argv": argv, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
              "run": str(run)}  # fmt: skip
    summaries = sorted(run.glob("evaluations/*/summary.json"))
    if summaries:
        summary = json.loads(summaries[0].read_text(encoding="utf-8"))
        result["test_accuracy"] = summary["accuracy@0"]  # top-1, no threshold
        result["test_weights"] = summary.get("weights")
    log = (run / "training.log").read_text(encoding="utf-8").splitlines()
    header = log[0].split(",")
    rows = [dict(zip(header, map(float, line.split(",")))) for line in log[1:]]
    result["val_accuracy_per_epoch"] = [round(r["val_accuracy"], 4) for r in rows]
    result["epoch_seconds"] = [round(r["seconds"], 1) for r in rows]
    result["last_val_accuracy"] = result["val_accuracy_per_epoch"][-1]
    print(f"{name}: {result}", flush=True)
    record.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--size", type=int, default=64, help="input size of every run")
    parser.add_argument("--fashion_per_class", type=int, default=300)
    parser.add_argument("--fashion_epochs", type=int, default=5)
    parser.add_argument("--digits_epochs", type=int, default=8)
    parser.add_argument("--fine_tune_after", type=int, default=3)
    parser.add_argument(
        "--freeze_all_epochs",
        type=int,
        default=60,
        help="also train freeze_all for this many epochs (its epochs cost ~1 s; 0 = skip)",
    )
    parser.add_argument("--only_fashion", action="store_true", help="stop after step 1")
    args = parser.parse_args(argv)
    if args.quick:
        args.fashion_per_class, args.fashion_epochs, args.digits_epochs = 50, 1, 3
        args.fine_tune_after, args.freeze_all_epochs = 1, 0
    results = start_results("bench_transfer", args, tensorflow=False)
    work = WORK / ("transfer-quick" if args.quick else "transfer")
    work.mkdir(parents=True, exist_ok=True)
    fashion_dir, digits_dir = prepare_data(work, args.fashion_per_class)
    size = ["-height", str(args.size), "-width", str(args.size)]
    fashion = train(
        work, "fashion_mobilenetv2",
        [*COMMON, *WAYS["random"], *size, "-e", str(args.fashion_epochs),
         "-dtrain", str(fashion_dir / "train"), "-dvalid", str(fashion_dir / "valid")],
    )  # fmt: skip
    results["fashion"] = fashion
    if args.only_fashion:
        write_json(args.json, results)
        return 0
    digits = ["-dtrain", str(digits_dir / "train"), "-dvalid", str(digits_dir / "valid"),
              "-dtest", str(digits_dir / "test"), "-e", str(args.digits_epochs),
              "--fine_tune_after", str(args.fine_tune_after)]  # fmt: skip
    rows = []
    for way, flags in WAYS.items():
        flags = [f.format(fashion=fashion["run"]) for f in flags]
        result = train(work, f"digits_{way}", [*COMMON, *flags, *size, *digits])
        results[way] = result
        rows.append([way, " ".join(flags), result.get("test_accuracy"), result["wall_s"],
                     result["cpu_s"]])  # fmt: skip
    if args.freeze_all_epochs:  # the cheap epochs of freeze_all, more of them in equal time
        flags = [f.format(fashion=fashion["run"]) for f in WAYS["freeze_all"]]
        flags += ["-e", str(args.freeze_all_epochs)]  # last: overrides the -e of `digits`
        result = train(work, "digits_freeze_all_long", [*COMMON, *size, *digits, *flags])
        results["freeze_all_long"] = result
        rows.append(["freeze_all, more epochs", " ".join(flags), result.get("test_accuracy"),
                     result["wall_s"], result["cpu_s"]])  # fmt: skip
    print(table(["start", "flags", "test accuracy", "wall s", "CPU s"], rows))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
