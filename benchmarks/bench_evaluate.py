"""Issue 3: re-scoring every epoch's weights, cnnhub versus the old hub's per-file reload.

    python benchmarks/bench_evaluate.py [--quick] [--json OUT]

Writes a synthetic 10-class dataset (64x64 PNGs, class-dependent shapes and colours): a
validation set of ``--valid_per_class`` x 10 images (default 500) and a small training set.
Trains mobilenetv2 (64x64, ``-w none``; ``--quick``: the custom LeNet at 32x32) for ``--epochs`` epochs with ``-post false``, once with
``-tt freeze_all`` and once with ``-tt train_all``, then times scoring all saved weights on the
validation set:

* cnnhub: ``evaluate_run(run)`` in this process (median of ``--repeats``), and
  ``python -m cnnhub evaluate RUN`` as a subprocess (TensorFlow start-up included);
* naive (the old hub): for each weights file, build the model from run_config.json, load the
  weights, then for each image: PIL open, resize, ``model.predict`` on a batch of 1.

The naive baseline costs ~0.1-0.3 s per image on a loaded 2-core machine, so by default it is
*measured* on ``--naive_files`` weights files (first, middle, last) x ``--naive_images``
images (a class-balanced sample) and *extrapolated* linearly to all files x all images:
``files x (per-file setup + images x mean per-image time)``, where the per-file setup is build
+ load weights + the first (tracing) predict. ``--naive_full`` measures it all instead.

Also the cost of the default path, per-epoch reports written during training (``-post
true``): the same train_all run with ``-post true``; reported as the directly timed
``EpochReports`` callback per epoch, the post-training ``finalize`` time, and the end-to-end
wall-time difference per epoch (noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_common_args,
    child_env,
    machine_line,
    median,
    run_children,
    start_results,
    table,
    timed_run,
    verdict,
    work_dir,
    write_image_folder,
    write_json,
)

TARGETS = {"freeze_all": 0.1, "train_all": 0.3}


def train_argv(kind: str, post: bool, data: Path, save: Path, args, name: str) -> list[str]:
    return [
        "-m", args.model, "-w", "none", "-height", str(args.size), "-width", str(args.size),
        "-dtrain", str(data / "train"), "-dvalid", str(data / "valid"), "-sl", str(save),
        "-e", str(args.epochs), "-b", "32", "-tt", kind, "-post", str(post).lower(),
        "--run_name", name, "--custom_conv_blocks", args.custom_conv_blocks,
    ]  # fmt: skip


def naive_score(run_dir: Path, weights: list[Path], paths: list[str], labels: list[int]) -> dict:
    """The old hub: rebuild the model per weights file, predict image by image."""
    import numpy as np
    from PIL import Image

    from cnnhub.model_factory import build_model

    config = json.loads((run_dir / "run_config.json").read_text(encoding="utf-8"))
    config["WEIGHTS"] = "none"
    classes = len(json.loads((run_dir / "index_class_mapping.json").read_text(encoding="utf-8")))
    size = (config["IMG_WIDTH"], config["IMG_HEIGHT"])
    setups, per_image, accuracies = [], [], []
    for path in weights:
        start = time.perf_counter()
        model = build_model(config, classes)
        model.load_weights(path)
        correct = 0
        for i, (image_path, label) in enumerate(zip(paths, labels)):
            t0 = time.perf_counter()
            with Image.open(image_path) as img:
                x = np.asarray(img.convert("RGB").resize(size, Image.BILINEAR), dtype="float32")
            proba = model.predict(x[None], verbose=0)
            correct += int(proba[0].argmax() == label)
            if i == 0:  # build + load + first (tracing) predict: the per-file setup
                setups.append(time.perf_counter() - start)
            else:
                per_image.append(time.perf_counter() - t0)
        accuracies.append(correct / len(paths))
        del model
    return {"setups": setups, "per_image": per_image, "accuracies": accuracies}


def class_sample(paths: list[str], labels: list[int], n: int) -> tuple[list[str], list[int]]:
    """About ``n`` images, the same number from each class, in file order."""
    classes = sorted(set(labels))
    per = max(1, n // len(classes))
    seen: dict[int, int] = {}
    out_p, out_l = [], []
    for p, label in zip(paths, labels):
        if seen.get(label, 0) < per:
            seen[label] = seen.get(label, 0) + 1
            out_p.append(p)
            out_l.append(label)
    return out_p, out_l


def cnnhub_inprocess(run_dir: Path, breakdown: dict | None = None) -> float:
    """Seconds of one ``evaluate_run(run_dir)``; with ``breakdown``, also where they went."""
    from cnnhub.evaluation import run_evaluation

    patches = []
    if breakdown is not None:  # wrap what evaluate_run calls, restore afterwards
        import keras

        from cnnhub import data, model_factory, weights

        targets = [
            (model_factory, "build_model", "build model"),
            (data, "split_of_source", "list + decode-check images"),
            (weights, "check_compatible", "check weights files fit (all)"),
            (keras.Model, "load_weights", "load weights (all files)"),
            (data, "make_dataset", "make dataset"),
            (run_evaluation.BatchedScorer, "predict", "predict (all weights files)"),
            (run_evaluation, "write_weight_reports", "per-weights reports (CSV)"),
            (run_evaluation, "finalize", "finalize (best choice, plots, best_model.keras)"),
        ]
        for owner, name, label in targets:
            original = getattr(owner, name)

            def wrapper(*args, _original=original, _label=label, **kwargs):
                t0 = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    breakdown[_label] = breakdown.get(_label, 0.0) + time.perf_counter() - t0

            setattr(owner, name, wrapper)
            patches.append((owner, name, original))
    start = time.perf_counter()
    try:
        with redirect_stdout(io.StringIO()):
            run_evaluation.evaluate_run(run_dir)
    finally:
        for owner, name, original in patches:
            setattr(owner, name, original)
    seconds = time.perf_counter() - start
    if breakdown is not None:
        breakdown["total"] = seconds
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--model", default="mobilenetv2")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--valid_per_class", type=int, default=50)
    parser.add_argument("--train_per_class", type=int, default=5)
    parser.add_argument("--custom_conv_blocks", default="auto", help="for --model custom")
    parser.add_argument("--repeats", type=int, default=3, help="cnnhub evaluate repeats")
    parser.add_argument("--naive_files", type=int, default=2)
    parser.add_argument("--naive_images", type=int, default=100)
    parser.add_argument("--naive_full", action="store_true", help="no extrapolation")
    parser.add_argument("--post_repeats", type=int, default=1, help="-post true/false pairs")
    args = parser.parse_args()
    if args.quick:
        # The custom LeNet at 32x32 traces in seconds (mobilenetv2 takes ~30-50 s per model).
        args.model, args.size, args.custom_conv_blocks = "custom", 32, "lenet"
        args.epochs, args.valid_per_class, args.train_per_class = 3, 10, 3
        args.repeats, args.naive_files, args.naive_images = 2, 2, 20
    results = start_results("evaluate", args)
    info = results["machine"]
    with work_dir("evaluate", args.keep) as work:
        env = child_env(work)
        data = work / "data"
        write_image_folder(data / "valid", args.valid_per_class, args.size, "png", seed=1)
        write_image_folder(data / "train", args.train_per_class, args.size, "png", seed=2)
        from _common import list_folder

        _, valid_paths, valid_labels = list_folder(data / "valid")
        n_valid = len(valid_paths)
        save = work / "save"
        # All training runs in one instrumented process (TensorFlow imported once): freeze_all
        # and train_all with -post false (scored below), then -post true/false pairs of
        # train_all for the cost of the default path.
        plan = [("freeze_all", False, "freeze_all"), ("train_all", False, "train_all")]
        for r in range(args.post_repeats):
            pair = [("train_all", True, f"post-true-{r}")]
            if r:
                pair.append(("train_all", False, f"post-false-{r}"))
            plan += pair if r % 2 == 0 else pair[::-1]
        print(f"training {len(plan)} runs ({args.epochs} epochs each) ...", flush=True)
        trained_runs = run_children(
            [train_argv(kind, post, data, save, args, name) for kind, post, name in plan], env
        )
        for (kind, post, name), result in zip(plan, trained_runs):
            if result["code"] != 0:
                raise RuntimeError(f"training {name} failed: {result}")
            print(f"  {name}: {result['seconds']:.0f} s", flush=True)
        rows, per_kind = [], {}
        for kind, trained in zip(("freeze_all", "train_all"), trained_runs):
            run_dir = Path(trained["run_dir"])
            weights = sorted((run_dir / "model_logs").glob("weights-*.weights.h5"))
            n_files = len(weights)
            print(f"  scoring {kind}: {n_files} weights files ...", flush=True)
            ours = [cnnhub_inprocess(run_dir)]
            cli_wall, _ = timed_run([sys.executable, "-m", "cnnhub", "evaluate", str(run_dir)], env)
            if args.naive_full:
                pick_w, (pick_p, pick_l) = weights, (valid_paths, valid_labels)
            else:
                k = min(args.naive_files, n_files)
                idx = sorted({round(i * (n_files - 1) / max(k - 1, 1)) for i in range(k)})
                pick_w = [weights[i] for i in idx]
                pick_p, pick_l = class_sample(valid_paths, valid_labels, args.naive_images)
            naive = naive_score(run_dir, pick_w, pick_p, pick_l)
            breakdown: dict = {}
            ours += [cnnhub_inprocess(run_dir) for _ in range(args.repeats - 2)]
            if args.repeats > 1:  # the last repeat also says where the time goes
                ours.append(cnnhub_inprocess(run_dir, breakdown))
            setup_mean = sum(naive["setups"]) / len(naive["setups"])
            image_mean = sum(naive["per_image"]) / max(len(naive["per_image"]), 1)
            naive_total = n_files * (setup_mean + (n_valid - 1) * image_mean)
            measured = sum(naive["setups"]) + sum(naive["per_image"])
            ours_med = median(ours)
            ratio = ours_med / naive_total
            cli_ratio = cli_wall / naive_total
            per_kind[kind] = {
                "weights_files": n_files,
                "valid_images": n_valid,
                "train_main_s": trained["seconds"],
                "cnnhub_evaluate_run_s": ours,
                "cnnhub_evaluate_run_median_s": ours_med,
                "cnnhub_cli_s": cli_wall,
                "naive_files_measured": len(pick_w),
                "naive_images_measured_per_file": len(pick_p),
                "naive_measured_s": measured,
                "naive_setup_per_file_median_s": median(naive["setups"]),
                "naive_setup_per_file_mean_s": setup_mean,
                "naive_per_image_median_s": median(naive["per_image"]),
                "naive_per_image_mean_s": image_mean,
                "naive_total_s": naive_total,
                "naive_extrapolated": not args.naive_full,
                "ratio_cnnhub_over_naive": ratio,
                "ratio_cli_over_naive": cli_ratio,
                "cnnhub_breakdown_last_repeat_s": breakdown,
                "target": TARGETS[kind],
                "target_met": ratio <= TARGETS[kind],
            }
            rows.append([
                kind, n_files, n_valid, ours_med, cli_wall, naive_total,
                median(naive["per_image"]) * 1000, median(naive["setups"]),
                ratio, cli_ratio, f"<= {TARGETS[kind]}", "met" if ratio <= TARGETS[kind] else "NOT met",
            ])  # fmt: skip
            print(f"  {kind}: cnnhub {ours_med:.1f} s, naive {naive_total:.0f} s -> {ratio:.3f}")
        results["scoring"] = per_kind

        # ---- cost of the default path: per-epoch reports during training (-post true)
        post = {"false": [], "true": []}
        for (kind, flag, name), result in list(zip(plan, trained_runs))[1:]:
            post["true" if flag else "false"].append(result)
        walls_false = [p["seconds"] for p in post["false"]]
        walls_true = [p["seconds"] for p in post["true"]]
        report_s = [s for p in post["true"] for s in p["reports_seconds"]]
        finalize_s = [p["finalize_seconds"] for p in post["true"]]
        epoch_train_s = [s for p in post["true"] for s in p["epoch_seconds"]]
        epoch_val_s = [s for p in post["true"] for s in p["validation_seconds"]]
        wall_diff = (median(walls_true) - median(walls_false)) / args.epochs
        results["post_eval_cost"] = {
            "epochs": args.epochs,
            "train_main_post_false_s": walls_false,
            "train_main_post_true_s": walls_true,
            "wall_difference_per_epoch_s": wall_diff,
            "epoch_reports_per_epoch_median_s": median(report_s),
            "epoch_reports_per_epoch_all_s": report_s,
            "finalize_s": finalize_s,
            "training_part_per_epoch_median_s": median(epoch_train_s),
            "validation_pass_per_epoch_median_s": median(epoch_val_s),
        }

    print()
    print(machine_line(info))
    print(
        f"{args.model} {args.size}x{args.size} -w none, {args.epochs} epochs, "
        f"{n_valid} validation images; naive "
        + ("measured in full" if args.naive_full else
           f"measured on {args.naive_files} files x {args.naive_images} images, extrapolated")
    )  # fmt: skip
    print(table(
        ["training", "files", "images", "cnnhub s (median)", "cnnhub CLI s", "naive s",
         "naive ms/image", "naive setup s/file", "cnnhub/naive", "CLI/naive", "target", "result"],
        rows,
    ))  # fmt: skip
    labels = sorted({k for r in per_kind.values() for k in r["cnnhub_breakdown_last_repeat_s"]})
    if labels:
        print()
        print(table(
            ["evaluate_run, last repeat: seconds in", *per_kind],
            [[k, *[r["cnnhub_breakdown_last_repeat_s"].get(k, float("nan")) for r in per_kind.values()]]
             for k in labels],
        ))  # fmt: skip
    p = results["post_eval_cost"]
    print()
    print(table(
        ["train_all, -post true vs false", "value"],
        [
            ["per-epoch reports (EpochReports), median s/epoch", p["epoch_reports_per_epoch_median_s"]],
            ["finalize after training (best choice, plots, best_model.keras), s", median(p["finalize_s"])],
            ["train_main difference per epoch, s (finalize included; noisy)", p["wall_difference_per_epoch_s"]],
            ["training part of an epoch, median s", p["training_part_per_epoch_median_s"]],
            ["validation pass of an epoch, median s", p["validation_pass_per_epoch_median_s"]],
            ["train_main -post false (s)", ", ".join(f"{w:.1f}" for w in p["train_main_post_false_s"])],
            ["train_main -post true (s)", ", ".join(f"{w:.1f}" for w in p["train_main_post_true_s"])],
        ],
    ))  # fmt: skip
    for kind, r in per_kind.items():
        print(f"{kind}: cnnhub/naive = {verdict(r['ratio_cnnhub_over_naive'], r['target'], False)}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
