"""Issue 8: training speed with --mixed_precision, --jit_compile and --deterministic on this CPU.

    python benchmarks/bench_precision.py [--quick] [--json OUT]

For mobilenetv2 (96x96, ``-w none``, train_all) and the custom net (preset ``fashion``, 28x28)
on synthetic PNGs, trains one model per configuration:

    --mixed_precision false|true  x  --jit_compile false|true      (4 combinations)
    --deterministic true  vs  false  (both others false)

Each configuration is set up with cnnhub's own code, as ``run_training.py`` does for the flag:
the precision policy by ``cnnhub.devices`` (float32, or ``mixed_bfloat16`` on a CPU) before
``build_model``; ``compile(jit_compile=...)``; for ``--deterministic``,
``cnnhub.reproducibility.seed_run`` (TensorFlow op determinism) at process start and
``make_dataset(..., deterministic=True)`` (single-threaded augmentation). All use cnnhub's
augmentation (default flip, zoom, translation) and in-memory cache. One ``fit`` call per
epoch, timed by a Keras callback; images/second = median over epochs 2..N (epoch 1: tracing,
XLA compilation, cache fill; reported separately).

The load of this shared machine swings by 2x within minutes, so:

* the 4 precision/XLA combinations train side by side in one process, taking turns epoch by
  epoch (order rotated each round);
* determinism is process-wide and toggling it inside a process makes the next call of every
  compiled function slow (measured: a few seconds per model), so ``--deterministic`` false and
  true run as separate processes (this script re-run with ``--det_child``), alternating
  false/true for ``--det_pairs`` pairs; the ratio uses the pooled epochs 2..N.

Mixed precision on a CPU means bfloat16 compute; fast only on CPUs with native bf16
instructions (AVX512-BF16 / AMX), so the CPU's AVX/AMX flags are recorded too.
``--cli_check`` also runs each configuration once through ``run_training.py`` (1 epoch) to
show the flags work end to end.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CUSTOM_PRESET,
    MODEL_SIZES,
    add_common_args,
    bench_config,
    child_env,
    list_folder,
    machine_line,
    median,
    quiet_tensorflow,
    run_child,
    start_results,
    table,
    timed_run,
    timer,
    work_dir,
    write_image_folder,
    write_json,
)

CONFIGS = [  # (label, mixed_precision, jit_compile, deterministic)
    ("float32", False, False, False),
    ("mixed_bf16", True, False, False),
    ("float32 + XLA", False, True, False),
    ("mixed_bf16 + XLA", True, True, False),
    ("float32 + deterministic", False, False, True),
]


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    return []


def measure(model_name: str, size: int, folder: Path, args, configs) -> dict:
    """Train one model per configuration in ``configs``, epoch by epoch in turn.

    A deterministic configuration must be alone in its process (``--det_child``)."""
    import keras
    import numpy as np

    from cnnhub.data.augment import build_augmenter
    from cnnhub.data.pipeline import make_dataset
    from cnnhub.data.sets import Split
    from cnnhub.devices import _set_precision
    from cnnhub.model_factory import build_model
    from cnnhub.reproducibility import seed_run
    from cnnhub.training import make_loss, make_optimizer

    base = bench_config(model_name, size, args.batch)
    seed = base["SEED"]
    _, paths, labels = list_folder(folder)
    split = Split(labels=np.asarray(labels, dtype=np.int64), paths=paths)
    n = len(split)
    deterministic = any(det for _, _, _, det in configs)
    if deterministic:
        assert len(configs) == 1, "determinism is process-wide"
        seed_run(dict(base, DETERMINISTIC=True))
    shared = make_dataset(split, 10, (size, size), args.batch, training=True, seed=seed,
                          cache=True, augmenter=build_augmenter(base, seed),
                          deterministic=deterministic)  # fmt: skip
    variants = {}
    for label, mp, jit, det in configs:
        config = dict(base, MIXED_PRECISION=mp, JIT_COMPILE=jit, DETERMINISTIC=det)
        _set_precision(config, [])  # what setup_devices does on a machine without GPUs
        keras.utils.set_random_seed(seed)
        model = build_model(config, 10)
        model.compile(optimizer=make_optimizer(config, config["LEARNING_RATE"]),
                      loss=make_loss(config), metrics=["accuracy"], jit_compile=jit)  # fmt: skip
        variants[label] = {"model": model, "timer": timer(), "history": {}}
    _set_precision(dict(base, MIXED_PRECISION=False), [])
    order = list(variants)
    for epoch in range(args.epochs):
        for label in order:
            v = variants[label]
            h = v["model"].fit(shared, epochs=epoch + 1, initial_epoch=epoch,
                               callbacks=[v["timer"]], verbose=0)  # fmt: skip
            v["history"] = {k: float(x[-1]) for k, x in h.history.items()}
            print(f"  {model_name} epoch {epoch + 1} {label}: {v['timer'].seconds[-1]:.1f} s "
                  f"({n / v['timer'].seconds[-1]:.0f} img/s)", flush=True)  # fmt: skip
        order = order[1:] + order[:1]
    out = {}
    for label, v in variants.items():
        rates = [n / s for s in v["timer"].seconds[1:]]
        out[label] = {
            "epoch_seconds": v["timer"].seconds,
            "images_per_s": rates,
            "images_per_s_median": median(rates),
            "first_epoch_s": v["timer"].seconds[0],
            "final_loss": v["history"].get("loss"),
            "final_accuracy": v["history"].get("accuracy"),
            "compute_dtype": v["model"].get_layer("backbone").compute_dtype,
        }
    keras.backend.clear_session()
    return {"images": n, "input": f"{size}x{size}", "configs": out}


def det_child(args) -> int:
    """``--det_child``: one float32 model, deterministic or not, alone in this process."""
    quiet_tensorflow()
    config = CONFIGS[4] if args.det == "true" else CONFIGS[0]
    result = measure(args.model, MODEL_SIZES[args.model], Path(args.folder), args, [config])
    print("RESULT " + json.dumps(result["configs"][config[0]]), flush=True)
    return 0


def determinism(model: str, folder: Path, args, env) -> dict:
    """Alternate --deterministic false/true processes; pool epochs 2..N of each side."""
    runs: dict[str, list[dict]] = {"false": [], "true": []}
    for pair in range(args.det_pairs):
        for det in ("false", "true") if pair % 2 == 0 else ("true", "false"):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--det_child", "--det", det, "--model", model,
                   "--folder", str(folder), "--epochs", str(args.epochs),
                   "--batch", str(args.batch)]  # fmt: skip
            _, out = timed_run(cmd, env)
            line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
            runs[det].append(json.loads(line[7:]))
            print(f"  {model} --deterministic {det}: "
                  f"{[round(r) for r in runs[det][-1]['images_per_s']]} img/s", flush=True)  # fmt: skip
    out = {}
    for det, label in (("false", "float32 (own process)"), ("true", "float32 + deterministic")):
        rates = [r for run in runs[det] for r in run["images_per_s"]]
        out[label] = {
            "images_per_s": rates,
            "images_per_s_median": median(rates),
            "first_epoch_s": median([run["first_epoch_s"] for run in runs[det]]),
            "final_loss": median([run["final_loss"] for run in runs[det]]),
            "compute_dtype": "float32",
            "processes": len(runs[det]),
        }
    return out


def cli_check(model: str, size: int, folder: Path, work: Path, args) -> dict:
    """One epoch of run_training.py per configuration: the flags work end to end."""
    env = child_env(work)
    runs = []
    for i, (label, mp, jit, det) in enumerate(CONFIGS):
        runs.append([
            "-m", model, "-w", "none", "-height", str(size), "-width", str(size),
            "-dtrain", str(folder), "-dvalid", str(folder), "-sl", str(work / "save"), "-e", "1",
            "-b", str(args.batch), "-post", "false", "--custom_conv_blocks", CUSTOM_PRESET,
            "--mixed_precision", str(mp).lower(), "--jit_compile", str(jit).lower(),
            "--deterministic", str(det).lower(), "--run_name", f"cli-{model}-{i}",
        ])  # fmt: skip
    plan = runs[-1:] + runs[:-1]  # deterministic first: each run its own process
    return {CONFIGS[(i - 1) % len(CONFIGS)][0]: run_child(r, env)["code"]
            for i, r in enumerate(plan)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--models", nargs="+", default=["mobilenetv2", "custom"])
    parser.add_argument("--mobilenet_images", type=int, default=64)
    parser.add_argument("--custom_images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--det_pairs",
        type=int,
        default=2,
        help="--deterministic false/true process pairs per model",
    )
    parser.add_argument("--cli_check", action="store_true")
    parser.add_argument("--det_child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--det", choices=["true", "false"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.det_child:
        return det_child(args)
    if args.quick:
        args.models, args.custom_images, args.epochs, args.det_pairs = ["custom"], 160, 2, 1
    results = start_results("precision", args)
    info = results["machine"]
    info["cpu_flags"] = cpu_flags()
    print("CPU flags:", " ".join(info["cpu_flags"]), flush=True)
    results["models"] = {}
    with work_dir("precision", args.keep) as work:
        for model in args.models:
            n = args.mobilenet_images if model == "mobilenetv2" else args.custom_images
            folder = work / f"data-{model}"
            write_image_folder(folder, n // 10, MODEL_SIZES[model], "png", seed=6)
            print(f"{model}: {len(CONFIGS)} configurations x {args.epochs} epochs on {n} "
                  "images ...", flush=True)  # fmt: skip
            results["models"][model] = measure(model, MODEL_SIZES[model], folder, args, CONFIGS[:4])
            configs = results["models"][model]["configs"]
            configs.update(determinism(model, folder, args, child_env(work)))
            shared = configs["float32"]["images_per_s_median"]
            own = configs["float32 (own process)"]["images_per_s_median"]
            for label, entry in configs.items():
                # determinism against its own-process float32 baseline, the rest the shared one
                ref = own if label == "float32 + deterministic" else shared
                entry["speed_vs_float32"] = entry["images_per_s_median"] / ref
            if args.cli_check:
                results["models"][model]["cli_exit_codes"] = cli_check(
                    model, MODEL_SIZES[model], folder, work, args
                )
    print()
    print(machine_line(info))
    print(f"train_all, batch {args.batch}, {args.epochs} epochs, augmentation and cache on; "
          "img/s = median over epochs 2..N")  # fmt: skip
    rows = []
    for model, r in results["models"].items():
        for label, e in r["configs"].items():
            rows.append([model, r["input"], r["images"], label, e["compute_dtype"],
                         e["images_per_s_median"], e["speed_vs_float32"], e["first_epoch_s"],
                         e["final_loss"]])  # fmt: skip
    print(table(["model", "input", "images", "configuration", "compute dtype", "img/s",
                 "vs float32", "epoch 1 s", "final train loss"], rows))  # fmt: skip
    print(
        "(the 4 combinations: one process, vs its float32 row; deterministic: own processes, "
        "vs 'float32 (own process)')"
    )
    for model, r in results["models"].items():
        if "cli_exit_codes" in r:
            print(f"{model}: run_training.py exit codes per configuration: {r['cli_exit_codes']}")
        combos = [label for label, *_ in CONFIGS[:4]]
        fastest = max(combos, key=lambda k: r["configs"][k]["images_per_s_median"])
        det = r["configs"]["float32 + deterministic"]["speed_vs_float32"]
        print(f"{model}: fastest = {fastest}; deterministic costs "
              f"{(1 / det - 1) * 100:+.0f}% time per epoch")  # fmt: skip
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
