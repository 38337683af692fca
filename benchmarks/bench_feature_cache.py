"""Issue 8: ``freeze_all`` with the frozen-backbone feature cache on versus off.

    python benchmarks/bench_feature_cache.py [--quick] [--json OUT]

Writes a synthetic 10-class dataset (PNG, ``--size`` px, class-dependent shapes and colours)
and runs, each as its own ``run_training.py`` process (an instrumented copy,
``benchmarks/_child.py``, whose timers do not change what runs):

    -m mobilenetv2 -w none -height 128 -width 128 -tt freeze_all -e 10 -post false
    --aug_horizontal_flip false --aug_zoom 0 --aug_translation 0 --feature_cache true|false

alternating true/false for ``--repeats`` pairs. Reports the end-to-end wall time of each
process (Python and TensorFlow start-up included), the time inside training (epochs +
validation passes + the one-off feature computation), the last epoch's validation accuracy,
and the ratio off/on. Target: >= 5x faster, same accuracy within noise.

The default is 500 training / 150 validation images, not the issue's 2,000 (the no-cache run
would take ~10 minutes on a loaded 2-core machine). The ratio grows with the image count (the
fixed start-up cost is the same for both), so the result also gives a *projection* to
``--project_to`` images (default 2,000 / 500): each run's time split into a fixed part (wall
minus the parts below), per-image parts (epochs 2..N training and validation, and the one-off
feature pass, divided by their image counts) and epoch 1's extra (tracing), then recombined
for the larger counts. It is a linear model of this run's measurements, labelled as such.

With ``-w none`` a frozen random mobilenetv2 gives the head nothing to learn from (validation
accuracy stays at chance, 0.1, with the cache on or off), so "same accuracy" is also checked
where the frozen random features do carry information: a small custom CNN
(``--accuracy_blocks``, no batch norm) at 32x32 on the same images, cache on vs off, 10 epochs,
both runs in one process (``--accuracy_check false`` skips it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_common_args,
    child_env,
    machine_line,
    median,
    run_child,
    start_results,
    table,
    verdict,
    work_dir,
    write_image_folder,
    write_json,
)

TARGET = 5.0


def project(on: list[dict], off: list[dict], args) -> dict:
    """End-to-end seconds for ``args.project_to`` images, from this run's components."""
    n_tr, n_va = args.train_images, args.valid_images
    big_tr, big_va = args.project_to
    e = args.epochs

    def parts(r: dict) -> dict:
        epoch = (
            median(r["epoch_seconds"][1:]) if len(r["epoch_seconds"]) > 1 else r["epoch_seconds"][0]
        )
        valid = (
            median(r["validation_seconds"][1:])
            if len(r["validation_seconds"]) > 1
            else r["validation_seconds"][0]
        )
        features = r["feature_cache_seconds"] or 0.0
        first_extra = (r["epoch_seconds"][0] - epoch) + (r["validation_seconds"][0] - valid)
        fixed = r["wall"] - sum(r["epoch_seconds"]) - sum(r["validation_seconds"]) - features
        return {
            "fixed": fixed + first_extra,
            "train_per_image": epoch / n_tr,
            "valid_per_image": valid / n_va,
            "features_per_image": features / (n_tr + n_va),
        }

    def total(p: dict) -> float:
        return (
            p["fixed"]
            + (big_tr + big_va) * p["features_per_image"]
            + e * (big_tr * p["train_per_image"] + big_va * p["valid_per_image"])
        )

    p_on = {k: median([parts(r)[k] for r in on]) for k in parts(on[0])}
    p_off = {k: median([parts(r)[k] for r in off]) for k in parts(off[0])}
    t_on, t_off = total(p_on), total(p_off)
    return {
        "train_images": big_tr,
        "valid_images": big_va,
        "on_parts": p_on,
        "off_parts": p_off,
        "on_s": t_on,
        "off_s": t_off,
        "ratio_off_over_on": t_off / t_on,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--model", default="mobilenetv2")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--train_images", type=int, default=500)
    parser.add_argument("--valid_images", type=int, default=150)
    parser.add_argument(
        "--project_to",
        type=int,
        nargs=2,
        default=[2000, 500],
        metavar=("TRAIN", "VALID"),
        help="image counts of the projection",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1, help="on/off pairs")
    parser.add_argument("--custom_conv_blocks", default="auto", help="for --model custom")
    parser.add_argument("--accuracy_check", default="true", choices=["true", "false"])
    parser.add_argument("--accuracy_blocks", default="c32k3-mp2,c64k3-mp2")
    args = parser.parse_args()
    if args.quick:  # the custom net traces in seconds; mobilenetv2 takes ~30-50 s per process
        args.model, args.size, args.custom_conv_blocks = "custom", 32, "fashion"
        args.train_images, args.valid_images, args.epochs = 300, 100, 3
    results = start_results("feature_cache", args, tensorflow=False)
    info = results["machine"]
    runs: dict[str, list[dict]] = {"true": [], "false": []}
    with work_dir("feature-cache", args.keep) as work:
        env = child_env(work)
        data = work / "data"
        write_image_folder(data / "train", args.train_images // 10, args.size, "png", seed=4)
        write_image_folder(data / "valid", args.valid_images // 10, args.size, "png", seed=5)
        for r in range(args.repeats):
            for flag in ("false", "true") if r % 2 == 0 else ("true", "false"):
                argv = [
                    "-m", args.model, "-w", "none", "-height", str(args.size),
                    "-width", str(args.size), "-tt", "freeze_all", "-e", str(args.epochs),
                    "-post", "false", "-dtrain", str(data / "train"),
                    "-dvalid", str(data / "valid"), "-sl", str(work / "save"),
                    "--aug_horizontal_flip", "false", "--aug_zoom", "0", "--aug_translation", "0",
                    "--feature_cache", flag, "--custom_conv_blocks", args.custom_conv_blocks,
                ]  # fmt: skip
                print(f"feature_cache {flag} (repeat {r + 1}) ...", flush=True)
                result = run_child(argv, env)
                if result["code"] != 0:
                    raise RuntimeError(f"run failed: {result}")
                log = Path(result["run_dir"]) / "training.log"
                import pandas as pd

                frame = pd.read_csv(log)
                result["final_val_accuracy"] = float(frame["val_accuracy"].iloc[-1])
                result["best_val_accuracy"] = float(frame["val_accuracy"].max())
                result["in_training_s"] = (
                    sum(result["epoch_seconds"])
                    + sum(result["validation_seconds"])
                    + (result["feature_cache_seconds"] or 0.0)
                )
                print(f"  wall {result['wall']:.0f} s, val_accuracy "
                      f"{result['final_val_accuracy']:.3f}", flush=True)  # fmt: skip
                runs[flag].append(result)
        if args.accuracy_check == "true":
            print("accuracy check: custom net, cache off then on ...", flush=True)
            check = []
            for flag in ("false", "true"):
                check.append([
                    "-m", "custom", "--custom_conv_blocks", args.accuracy_blocks, "-w", "none",
                    "-height", "32", "-width", "32", "-tt", "freeze_all", "-e", str(args.epochs),
                    "-post", "false", "-dtrain", str(data / "train"),
                    "-dvalid", str(data / "valid"), "-sl", str(work / "save"),
                    "--aug_horizontal_flip", "false", "--aug_zoom", "0", "--aug_translation", "0",
                    "--feature_cache", flag, "--run_name", f"accuracy-{flag}",
                ])  # fmt: skip
            import pandas as pd
            from _common import run_children

            accuracy = {}
            for flag, r in zip(("false", "true"), run_children(check, env)):
                frame = pd.read_csv(Path(r["run_dir"]) / "training.log")
                accuracy[flag] = {
                    "final_val_accuracy": float(frame["val_accuracy"].iloc[-1]),
                    "best_val_accuracy": float(frame["val_accuracy"].max()),
                    "val_accuracy_by_epoch": frame["val_accuracy"].round(4).tolist(),
                    "in_training_s": sum(r["epoch_seconds"])
                    + sum(r["validation_seconds"])
                    + (r["feature_cache_seconds"] or 0.0),
                }
            results["accuracy_check"] = {"blocks": args.accuracy_blocks, **accuracy}
    results["runs"] = runs
    on, off = runs["true"], runs["false"]
    summary = {}
    for key in ("wall", "in_training_s", "seconds", "first_batch_s", "final_val_accuracy",
                "best_val_accuracy", "feature_cache_seconds"):  # fmt: skip
        summary[key] = {"on": median([r[key] for r in on if r[key] is not None]),
                        "off": median([r[key] for r in off if r[key] is not None])}  # fmt: skip
    epoch_on = median([s for r in on for s in r["epoch_seconds"][1:]])
    epoch_off = median([s for r in off for s in r["epoch_seconds"][1:]])
    summary["epoch_2_on_s"] = {"on": epoch_on, "off": epoch_off}
    ratio_wall = summary["wall"]["off"] / summary["wall"]["on"]
    ratio_train = summary["in_training_s"]["off"] / summary["in_training_s"]["on"]
    results["summary"] = summary
    results["projection"] = project(on, off, args)
    results["ratio_wall_off_over_on"] = ratio_wall
    results["ratio_in_training_off_over_on"] = ratio_train
    results["accuracy_difference"] = (
        summary["final_val_accuracy"]["on"] - summary["final_val_accuracy"]["off"]
    )
    results["target"] = TARGET
    results["target_met"] = ratio_wall >= TARGET
    print()
    print(machine_line(info))
    print(f"{args.model} {args.size}x{args.size} -w none, freeze_all, {args.epochs} epochs, "
          f"{args.train_images} train / {args.valid_images} valid images, no augmentation; "
          f"medians of {args.repeats} run(s) each")  # fmt: skip
    labels = {
        "wall": "end-to-end wall s (process)",
        "in_training_s": "inside training s (epochs + validation + features)",
        "feature_cache_seconds": "one-off feature computation s",
        "epoch_2_on_s": "one epoch s (epochs 2..N, median)",
        "first_batch_s": "first training batch after start-up s",
        "final_val_accuracy": "final val_accuracy",
        "best_val_accuracy": "best val_accuracy",
    }
    rows = []
    for key, label in labels.items():
        on_v, off_v = summary[key]["on"], summary[key]["off"]
        ratio = off_v / on_v if "accuracy" not in key and on_v == on_v and on_v else ""
        rows.append([label, off_v, on_v, ratio])
    print(table(["", "feature_cache false", "feature_cache true", "off/on"], rows))
    pr = results["projection"]
    print(f"projection to {pr['train_images']} / {pr['valid_images']} images (linear model of "
          f"this run): off {pr['off_s']:.0f} s, on {pr['on_s']:.0f} s -> "
          f"{pr['ratio_off_over_on']:.2f}x")  # fmt: skip
    print(
        f"end-to-end speed-up off/on = {verdict(ratio_wall, TARGET, True)}; inside training "
        f"{ratio_train:.2f}x; accuracy on - off = {results['accuracy_difference']:+.3f}"
    )
    if "accuracy_check" in results:
        a = results["accuracy_check"]
        print(table(
            [f"accuracy check: custom {a['blocks']} 32x32, {args.epochs} epochs",
             "feature_cache false", "feature_cache true"],
            [["final val_accuracy", a["false"]["final_val_accuracy"], a["true"]["final_val_accuracy"]],
             ["best val_accuracy", a["false"]["best_val_accuracy"], a["true"]["best_val_accuracy"]],
             ["inside training s", a["false"]["in_training_s"], a["true"]["in_training_s"]]],
        ))  # fmt: skip
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
