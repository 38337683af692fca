"""The shipped Fashion-MNIST recipe and each issue-20 lever alone on it: test accuracy and wall
time of the real command, against the target (>= 0.940 test accuracy in <= 600 s).

    python benchmarks/bench_recipe_levers.py                    # the full protocol (idle machine)
    python benchmarks/bench_recipe_levers.py --variants recipe,onecycle --repeats 2
    python benchmarks/bench_recipe_levers.py --quick            # 60 images per class, 2 epochs

Full protocol (one command; about 10 minutes per variant on 2 cores): every variant runs
``python run_training.py -c recipes/fashion_mnist.yaml -dtest data/fashion_mnist/test <lever
flags>`` in a fresh process, one after the other; its wall time is training plus the test
evaluation (at the weights and threshold chosen on validation), start-up and data checks
included; the test accuracy is the test summary's ``accuracy@0`` (10,000 images). The data is
prepared once with ``data/prepare_fashion_mnist.py`` if missing (not timed), and every file is
checked once before the runs (``cnnhub inspect``, timed on its own: a dataset's first check,
which the scan cache then keeps for every later run). ``--dev N -e E``
(or ``--quick``) reduce the data (N images per class of each split) and epochs to check that the
script works; reduced numbers say nothing about the target. The 1-minute load average before
and after each run is recorded: measure the target on an idle machine only.

Variants (``VARIANTS``): the recipe as shipped, and the recipe with one of its choices undone
(its network, schedule, warm-up, TTA, time budget), so each choice's share shows; the recipe
before issue 20; and the augmentation / EMA levers of ``bench_levers.py`` (which holds their
flags) added to the recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT,
    add_common_args,
    child_env,
    run_folder_of,
    start_results,
    table,
    timed_run,
    work_dir,
    write_json,
)

from cnnhub.durations import shortened_last_epoch  # noqa: E402

RECIPE = ROOT / "recipes" / "fashion_mnist.yaml"
DATA = ROOT / "data" / "fashion_mnist"
TARGET_ACCURACY, TARGET_SECONDS = 0.940, 600.0

# The recipe before issue 20: one conv per stage, 14 epochs of cosine, no warm-up, budget or TTA.
PREVIOUS_BLOCKS = "c32k3-mp2-d0.1,c64k3-bn-mp2-d0.15,c128k3-bn-mp2-d0.2"
NO_BUDGET = ["--time_budget", ""]
VARIANTS: dict[str, list[str]] = {
    "recipe": [],
    "one_conv_per_stage": ["--custom_conv_blocks", PREVIOUS_BLOCKS],
    # cheaper nets: batch norm after the second conv of a stage only; and 16 filters at 28x28
    "bn_second_conv": [
        "--custom_conv_blocks",
        "c32k3-mp2,c64k3-c64k3-bn-mp2,c128k3-c128k3-bn-mp2-d0.2",
    ],
    "c16_bn_second": [
        "--custom_conv_blocks",
        "c16k3-mp2,c64k3-c64k3-bn-mp2,c128k3-c128k3-bn-mp2-d0.2",
    ],
    "batch_128": ["-b", "128", "-lr", "0.003"],  # the batch before 2026-12-02
    "cosine": ["--lr_schedule", "cosine"],
    "no_warmup": ["--warmup_epochs", "0"],
    "no_tta": ["--tta", "none"],
    "fixed_10_epochs": [*NO_BUDGET, "-e", "10"],
    "previous_recipe": [
        *["--custom_conv_blocks", PREVIOUS_BLOCKS, "--lr_schedule", "cosine"],
        *["--warmup_epochs", "0", *NO_BUDGET, "-e", "14", "--tta", "none"],
    ],
}


def all_variants() -> dict[str, list[str]]:
    """``VARIANTS`` plus the augmentation / EMA / TTA levers of bench_levers.py (when that
    benchmark exists: it is the one place their flags are written)."""
    try:
        from bench_levers import LEVERS
    except ImportError:
        return dict(VARIANTS)
    return {**VARIANTS, **{k: v for k, v in LEVERS.items() if k != "baseline"}}


def prepare_data() -> None:
    if not (DATA / "test").is_dir():
        script = ROOT / "data" / "prepare_fashion_mnist.py"
        subprocess.run([sys.executable, str(script), "--out", str(DATA)], check=True)


def first_scan(work: Path) -> float:
    """Check every file once (``cnnhub inspect``, which fills the scan cache the runs share),
    as any first use of a dataset does; its seconds are reported apart from the runs'."""
    argv = [sys.executable, "-m", "cnnhub", "inspect", str(DATA / "train")]
    argv += ["--valid", str(DATA / "valid"), "--test", str(DATA / "test")]
    # The decode the recipe's runs use (grayscale: 1 channel); the cache keeps one per decoder.
    argv += ["--color_mode", yaml.safe_load(RECIPE.read_text("utf-8"))["color_mode"]]
    wall, _ = timed_run(argv, child_env(work), timeout=3600)
    return round(wall, 1)


def test_summary(run_dir: Path) -> dict:
    return json.loads(next((run_dir / "evaluations").glob("*/summary.json")).read_text("utf-8"))


def test_accuracy_by_epoch(run_dir: Path, work: Path) -> dict[int, float]:
    """Every epoch's test accuracy (``accuracy@0``) on the whole test folder, scored after the
    timed command: what the epoch chosen on validation gave up against the others. (A reduced
    run's own test score is of its ``--dev`` subset; ``evaluate`` has no such option.)"""
    argv = [sys.executable, "-m", "cnnhub", "evaluate", str(run_dir)]
    argv += ["--data_dir", str(DATA / "test"), "--weights", "all"]
    timed_run(argv, child_env(work), timeout=3600)
    summaries = [
        json.loads(p.read_text("utf-8")) for p in run_dir.glob("evaluations/*/summary.json")
    ]
    scored = max((s.get("scored", []) for s in summaries), key=len)
    return {row["epoch"]: round(row["accuracy@0"], 4) for row in scored}


def measure(
    name: str, flags: list[str], work: Path, reduce: list[str], repeat: int, every_epoch: bool
) -> dict:
    """One variant's run: the command's wall time, the test accuracy, epochs and the load."""
    run_name = f"{name}-{repeat}"
    argv = [sys.executable, str(ROOT / "run_training.py"), "-c", str(RECIPE)]
    argv += ["-dtrain", str(DATA / "train"), "-dvalid", str(DATA / "valid")]
    argv += ["-dtest", str(DATA / "test"), "-sl", str(work), "--run_name", run_name]
    argv += [*flags, *reduce]
    load_before = round(os.getloadavg()[0], 2)
    wall, out = timed_run(argv, child_env(work), timeout=7200)
    load_after = round(os.getloadavg()[0], 2)
    run_dir = run_folder_of(out.stdout)
    if not run_dir.is_absolute():
        run_dir = ROOT / run_dir
    info = json.loads((run_dir / "run_info.json").read_text("utf-8"))
    epochs = sum(1 for _ in open(run_dir / "training.log", encoding="utf-8")) - 1
    short = shortened_last_epoch(info.get("time_budget") or {})
    if short:  # a shorter last epoch: its fraction
        epochs = round(epochs - 1 + short[0] / short[1], 2)
    summary = test_summary(run_dir)
    accuracy = summary["accuracy@0"]
    by_epoch = test_accuracy_by_epoch(run_dir, work) if every_epoch else None
    return {
        "variant": name,
        "repeat": repeat,
        "flags": " ".join(flags) or "(the recipe)",
        "test_accuracy": accuracy,
        "test_images": summary.get("images"),
        "epochs": epochs,
        # The epoch whose weights validation chose: with one-cycle the last, or the one before.
        "chosen_epoch": summary.get("epoch"),
        "test_accuracy_by_epoch": by_epoch,  # --every_epoch, else None
        "wall_seconds": round(wall, 1),
        "startup_seconds": info.get("startup_seconds"),
        "time_budget": info.get("time_budget"),
        "load_1min": [load_before, load_after],
        "target_met": accuracy >= TARGET_ACCURACY and wall <= TARGET_SECONDS,
    }


def main(argv: list[str] | None = None) -> int:
    variants = all_variants()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(variants), help="comma-separated subset")
    parser.add_argument("--repeats", type=int, default=1, help="runs per variant")
    parser.add_argument("--dev", type=int, default=0, help="reduce: images per class per split")
    parser.add_argument("-e", "--epochs", type=int, default=0, help="reduce: epochs (max)")
    parser.add_argument(
        "--every_epoch",
        action="store_true",
        help="after each (timed) run, score every epoch's weights on the test set (untimed)",
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.dev, args.epochs = args.dev or 60, args.epochs or 2
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - set(variants))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(variants)}")
    reduce = (["--dev", str(args.dev)] if args.dev else []) + (
        ["-e", str(args.epochs)] if args.epochs else []
    )
    results = start_results("recipe_levers", args, tensorflow=False)
    results["reduced"] = bool(reduce)
    prepare_data()
    headers = ["variant", "flags", "test acc", "epochs", "wall s", "load before/after", "target"]
    rows, records = [], []
    with work_dir("recipe_levers", args.keep) as work:
        if not reduce:
            results["first_scan_seconds"] = first_scan(work)
            print(
                f"First check of every file (once per dataset): {results['first_scan_seconds']} s"
            )
        for repeat in range(1, args.repeats + 1):
            for name in names:
                # A reduced run keeps its -e: drop the lever's own epoch cap (time budget).
                flags = variants[name]
                if args.epochs and "-e" in flags:
                    at = flags.index("-e")
                    flags = flags[:at] + flags[at + 2 :]
                record = measure(name, flags, work, reduce, repeat, args.every_epoch)
                records.append(record)
                met = "met" if record["target_met"] else "missed"
                rows.append([
                    name, record["flags"], f"{record['test_accuracy']:.4f}", record["epochs"],
                    record["wall_seconds"], "{} / {}".format(*record["load_1min"]),
                    "(reduced)" if reduce else met,
                ])  # fmt: skip
                print(table(headers, rows[-1:]), flush=True)
    results["runs"] = records
    print(f"\nTarget: test accuracy >= {TARGET_ACCURACY} in <= {TARGET_SECONDS:.0f} s wall"
          + (" (REDUCED run: not a measurement of the target)" if reduce else ""))  # fmt: skip
    print(table(headers, rows))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
