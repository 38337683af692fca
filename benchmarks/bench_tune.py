"""Issue 21: ``cnnhub tune`` on a Fashion-MNIST subset: pruning against none, tuning overhead,
and the feature cache shared by frozen-backbone trials.

    python benchmarks/bench_tune.py [--quick] [--trials 20] [--per_class 40] [--json OUT]

All in one process, through :func:`cnnhub.tuning.study.tune` (what ``cnnhub tune`` runs):

1. Two studies of ``--trials`` trials each with the same seed, search space and data: the median
   pruner against no pruning. A small custom CNN on 28x28 grayscale Fashion-MNIST
   (``--per_class`` training and validation images per class from the shared IDX files,
   ``--epochs`` epochs). Reported: wall time, trials finished per hour, pruned trials, the best
   validation accuracy found, and the tuning overhead per trial (each trial's wall time minus
   the time inside the training entry point: sampling, storage, study.csv, best_config.yaml).
2. What a subprocess per trial would add instead: a fresh Python importing TensorFlow and
   cnnhub's training modules, timed ``--repeats`` times.
3. Frozen-backbone trials (``-tt freeze_all``, mobilenetv2 at 32 px, random init: timing only)
   with only the head searched, the features kept between trials (the default) against
   computed in every trial.

The machine is shared: its load average is printed with the results, and the comparisons are
ratios of runs made side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ROOT,
    add_common_args,
    child_env,
    machine_line,
    median,
    start_results,
    table,
    verdict,
    work_dir,
    write_json,
)

FASHION = ROOT.parent / "shared" / "datasets" / "fashion-mnist"
# No batch normalization in the searched stacks: from scratch, its moving statistics lag behind
# for the few dozen steps of a short trial and validation stays at chance (docs/
# training-from-scratch.md), which would make every trial look alike.
SPACE = """\
learning_rate: {low: 1.0e-3, high: 3.0e-2, log: true}
optimizer: [adam, sgd]
num_nodes: [[], [32], [128]]
num_dropouts: {low: 0.0, high: 0.5}
custom_conv_blocks: ["c8-mp2,c16-mp2", "c16-mp2,c32-mp2", "c32-mp2,c64-mp2"]
batch_size: [8, 16, 32]
"""
HEAD_SPACE = """\
learning_rate: {low: 1.0e-4, high: 3.0e-2, log: true}
num_nodes: [[], [32], [128]]
"""
TARGET_OVERHEAD = 2.0


def fashion_flags(args, save: Path) -> list[str]:
    data = Path(args.data)
    return [
        "-dtrain", str(data / "train-images-idx3-ubyte.gz"),
        "-dvalid", str(data / "t10k-images-idx3-ubyte.gz"),
        "--dev", str(args.per_class), "-sl", str(save), "-e", str(args.epochs),
        "-m", "custom", "--color_mode", "grayscale", "-height", "28", "-width", "28",
        "--aug_horizontal_flip", "false", "--aug_zoom", "0", "--aug_translation", "0",
        "--seed", "1", "-post", "false",
    ]  # fmt: skip


def run_study(flags: list[str], space: Path, name: str, trials: int, pruner: str) -> dict:
    from cnnhub import settings
    from cnnhub.tuning.study import TuneOptions, tune

    config, _ = settings.resolve(flags)
    options = TuneOptions(space=str(space), trials=trials, study=name, pruner=pruner)
    started = time.perf_counter()
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        result = tune(config, options)
    wall = time.perf_counter() - started
    import pandas as pd

    frame = pd.read_csv(result.study_dir / "study.csv")
    finished = frame["state"].isin(["COMPLETE", "PRUNED"]).sum()
    return {
        "study": name,
        "pruner": pruner,
        "wall_seconds": round(wall, 1),
        "trials": int(len(frame)),
        "finished": int(finished),
        "pruned": int((frame["state"] == "PRUNED").sum()),
        "trials_per_hour": round(finished / wall * 3600, 1),
        "best_val_accuracy": float(
            frame.loc[frame["state"] == "COMPLETE", "best_val_accuracy"].max()
        ),
        "epochs_trained": int(frame["epochs"].sum()),
        "overhead_per_trial": round(result.overhead_seconds, 3),
        "train_seconds": {n: round(t, 2) for n, t in sorted(result.train_seconds.items())},
    }


def subprocess_start(repeats: int) -> list[float]:
    code = "import tensorflow, keras; import cnnhub.runner, cnnhub.commands.train"
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=child_env(), check=True)
        times.append(time.perf_counter() - started)
    return times


def feature_cache(args, work: Path) -> dict:
    """The head-only study with the features kept between trials, and computed every trial."""
    from cnnhub.tuning import objective

    space = work / "head.yaml"
    space.write_text(HEAD_SPACE, encoding="utf-8")
    flags = fashion_flags(args, work / "fc")
    flags[flags.index("-m") + 1] = "mobilenetv2"
    flags[flags.index("--color_mode") + 1] = "rgb"
    flags[flags.index("-height") + 1] = flags[flags.index("-width") + 1] = "32"
    flags += ["-w", "none", "-tt", "freeze_all", "-e", "2"]
    # Warm-up (imports, first build and tracing of the backbone), so neither measured study
    # pays it; then the training time of trials 1.. (trial 0 computes the features either way).
    run_study(flags, space, "warm-up", 1, "none")
    kept = run_study(flags, space, "features-kept", args.cache_trials, "none")
    memo = objective.run_hooks.feature_memo
    objective.run_hooks.feature_memo = lambda memo: contextlib.nullcontext()
    try:
        every = run_study(flags, space, "features-every-trial", args.cache_trials, "none")
    finally:
        objective.run_hooks.feature_memo = memo
    return {"kept": kept, "every_trial": every}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--per_class", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache_trials", type=int, default=4)
    parser.add_argument("--data", default=str(FASHION))
    args = parser.parse_args()
    if args.quick:
        args.trials, args.per_class, args.epochs, args.cache_trials = 4, 10, 2, 2
    results = start_results("tune", args)
    with work_dir("tune", args.keep) as work:
        space = work / "space.yaml"
        space.write_text(SPACE, encoding="utf-8")
        studies = []
        for pruner in ("median", "none"):
            studies.append(
                run_study(fashion_flags(args, work / pruner), space, pruner, args.trials, pruner)
            )
            print(studies[-1], flush=True)
        results["studies"] = studies
        results["subprocess_start_seconds"] = subprocess_start(args.repeats)
        results["feature_cache"] = feature_cache(args, work)
    results["load_average_after"] = os.getloadavg()
    print(machine_line(results["machine"]))
    print(f"load average after: {results['load_average_after']}")
    keys = ["pruner", "wall_seconds", "finished", "pruned", "epochs_trained", "trials_per_hour",
            "best_val_accuracy", "overhead_per_trial"]  # fmt: skip
    print(table(keys, [[s[k] for k in keys] for s in studies]))
    worst = max(s["overhead_per_trial"] for s in studies)
    print(f"tuning overhead per trial (in-process): {verdict(worst, TARGET_OVERHEAD, False)}")
    start = median(results["subprocess_start_seconds"])
    print(f"a subprocess per trial would add {start:.1f} s (Python + TensorFlow + cnnhub import)")
    cache = results["feature_cache"]
    later = {k: median(list(v["train_seconds"].values())[1:]) for k, v in cache.items()}
    rows = [[k, v["wall_seconds"], v["finished"], later[k]] for k, v in cache.items()]
    print(table(["features", "wall_seconds", "trials", "median_train_s_trials_1+"], rows))
    saved = later["every_trial"] - later["kept"]
    print(
        f"feature cache shared: each trial after the first {saved:.1f} s faster "
        f"({later['every_trial'] / later['kept']:.2f}x)"
    )
    write_json(args.json, results)


if __name__ == "__main__":
    main()
