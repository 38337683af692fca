"""Issue 8: what a tf.distribute strategy costs on one device.

    python benchmarks/bench_strategy.py [--quick] [--json OUT]

On one device ``run_training.py`` trains under TensorFlow's default strategy
(``cnnhub.devices.setup_devices``). This measures why: the same custom net (the Fashion-MNIST
recipe's, 28x28 grayscale, batch 256) trained on the same ``make_dataset`` pipeline of
synthetic PNGs, built and trained under

* the default strategy (what cnnhub uses on one device),
* ``OneDeviceStrategy("/cpu:0")`` (what cnnhub used before),
* ``MirroredStrategy`` over that one CPU (what ``--strategy mirrored`` gives on a one-device
  machine).

The models take turns epoch by epoch (order rotated each round), so load changes on the
shared machine hit all alike. Two figures, from rounds 2..N (round 1: tracing, cache fill):
images/second per epoch (median), and per training step (median step time, timed by a batch
callback), which leaves out the stalls some epochs have at their start.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_common_args,
    list_folder,
    machine_info,
    machine_line,
    median,
    quiet_tensorflow,
    table,
    timer,
    versions,
    work_dir,
    write_image_folder,
    write_json,
)

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "fashion_mnist.yaml"


def strategies() -> dict:
    import tensorflow as tf

    return {
        "default": tf.distribute.get_strategy(),
        "OneDeviceStrategy": tf.distribute.OneDeviceStrategy("/cpu:0"),
        "MirroredStrategy (1 CPU)": tf.distribute.MirroredStrategy(["/cpu:0"]),
    }


def measure(folder: Path, args) -> dict:
    import keras
    import numpy as np

    from cnnhub import settings
    from cnnhub.data import Split, build_augmenter, make_dataset
    from cnnhub.model_factory import build_model
    from cnnhub.training import make_loss, make_optimizer

    config = settings.resolve(["-c", str(RECIPE), "-b", str(args.batch)])[0]
    size = (config["IMG_HEIGHT"], config["IMG_WIDTH"])
    _, paths, labels = list_folder(folder)
    split = Split(labels=np.asarray(labels, dtype=np.int64), paths=paths, channels=1)
    seed = config["SEED"]
    data = make_dataset(split, 10, size, args.batch, training=True, seed=seed, cache=True,
                        augmenter=build_augmenter(config, seed))  # fmt: skip
    models, seconds, steps = {}, {}, {}
    for label, strategy in strategies().items():
        with strategy.scope():
            keras.utils.set_random_seed(seed)
            model = build_model(config, 10)
            model.compile(optimizer=make_optimizer(config, config["LEARNING_RATE"]),
                          loss=make_loss(config), metrics=["accuracy"])  # fmt: skip
        models[label], seconds[label], steps[label] = (model, strategy), [], timer("step")
    order = list(models)
    for epoch in range(args.epochs):
        for label in order:
            model, strategy = models[label]
            step_timer = steps[label] if epoch else None  # round 1 traces
            with strategy.scope():
                start = time.perf_counter()
                model.fit(data, epochs=epoch + 1, initial_epoch=epoch, verbose=0,
                          callbacks=[step_timer] if step_timer else [])  # fmt: skip
                seconds[label].append(time.perf_counter() - start)
            print(f"  round {epoch + 1} {label}: {seconds[label][-1]:.1f} s", flush=True)
        order = order[1:] + order[:1]
    rates = {k: [len(split) / s for s in v[1:]] for k, v in seconds.items()}
    med = {k: median(v) for k, v in rates.items()}
    per_step = {k: args.batch / median(t.seconds) for k, t in steps.items()}
    keras.backend.clear_session()
    return {
        "images": len(split),
        "input": f"{size[0]}x{size[1]}x1",
        "batch": args.batch,
        "custom_conv_blocks": config["CUSTOM_CONV_BLOCKS"],
        "epoch_seconds": seconds,
        "images_per_s_median": med,
        "speed_vs_default": {k: v / med["default"] for k, v in med.items()},
        "images_per_s_per_step": per_step,
        "step_speed_vs_default": {k: v / per_step["default"] for k, v in per_step.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    if args.quick:
        args.images, args.epochs = 2_000, 3
    info = machine_info()
    print(machine_line(info), flush=True)
    quiet_tensorflow()
    results: dict = {"benchmark": "strategy", "machine": info, "versions": versions()}
    results["settings"] = {k: v for k, v in vars(args).items() if k != "json"}
    with work_dir("strategy", args.keep) as work:
        folder = work / "pngs"
        write_image_folder(folder, args.images // 10, 28, "png", seed=8)
        results.update(measure(folder, args))
    print()
    print(machine_line(info))
    print(f"recipe net, {results['images']} PNGs {results['input']}, batch {args.batch}; "
          "img/s = median over rounds 2..N")  # fmt: skip
    rows = [[k, v, results["speed_vs_default"][k], results["images_per_s_per_step"][k],
             results["step_speed_vs_default"][k]]
            for k, v in results["images_per_s_median"].items()]  # fmt: skip
    print(table(["strategy", "img/s (epochs)", "vs default", "img/s (steps)", "vs default"], rows))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
