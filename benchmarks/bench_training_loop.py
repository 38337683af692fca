"""Issue 8: what the training loop costs on one device besides the steps themselves.

    python benchmarks/bench_training_loop.py [--quick] [--json OUT]

The same custom net (the Fashion-MNIST recipe's, 28x28 grayscale, batch 256) trained on the
same ``make_dataset`` pipeline of synthetic PNGs, one model per variant:

* cnnhub as it is: TensorFlow's default strategy (``cnnhub.devices.setup_devices`` on one
  device), tf.data's autotuning model thread off (``cnnhub.data.tf_images.prefetched``);
* the autotuning model thread on (tf.data's default, cnnhub before): destroying each epoch's
  iterator joins that thread, which first sleeps out its optimisation period;
* ``OneDeviceStrategy("/cpu:0")`` (what cnnhub used before on one device);
* ``MirroredStrategy`` over that one CPU (what ``--strategy mirrored`` gives on a one-device
  machine);
* Keras's own BatchNormalization (cnnhub trains it with TensorFlow's fused kernel,
  ``cnnhub.fused_batch_norm``).

The models take turns epoch by epoch (order rotated each round), so load changes on the
shared machine hit all alike. Figures from rounds 2..N (round 1: tracing, cache fill):
images/second per epoch (median), per training step (median step time, timed by a batch
callback), and the epoch's seconds outside its steps (median), where the stalls show.
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
    machine_line,
    median,
    start_results,
    table,
    timer,
    work_dir,
    write_image_folder,
    write_json,
)

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "fashion_mnist.yaml"
BASELINE = "cnnhub"  # the variant the others are compared with


def variants(data) -> dict:
    """label -> (strategy, dataset, fused batch norm)."""
    import tensorflow as tf

    default = tf.distribute.get_strategy()
    autotune = tf.data.Options()
    autotune.autotune.enabled = True
    return {
        BASELINE: (default, data, True),
        "autotune thread on": (default, data.with_options(autotune), True),
        "OneDeviceStrategy": (tf.distribute.OneDeviceStrategy("/cpu:0"), data, True),
        "MirroredStrategy (1 CPU)": (tf.distribute.MirroredStrategy(["/cpu:0"]), data, True),
        "Keras BatchNormalization (unfused)": (default, data, False),
    }


def measure(folder: Path, args) -> dict:
    import keras
    import numpy as np

    from cnnhub import settings
    from cnnhub.data.augment import build_augmenter
    from cnnhub.data.pipeline import make_dataset
    from cnnhub.data.sets import Split
    from cnnhub.fused_batch_norm import use_fused_batch_norm
    from cnnhub.model_factory import build_model
    from cnnhub.training import make_loss, make_optimizer

    config = settings.resolve(["-c", str(RECIPE), "-b", str(args.batch), "-w", "none"])[0]
    size = (config["IMG_HEIGHT"], config["IMG_WIDTH"])
    _, paths, labels = list_folder(folder)
    split = Split(labels=np.asarray(labels, dtype=np.int64), paths=paths, channels=1)
    seed = config["SEED"]
    data = make_dataset(split, 10, size, args.batch, training=True, seed=seed, cache=True,
                        augmenter=build_augmenter(config, seed))  # fmt: skip
    models, seconds, steps, outside = {}, {}, {}, {}
    for label, (strategy, dataset, fused) in variants(data).items():
        with strategy.scope():
            keras.utils.set_random_seed(seed)
            model = build_model(config, 10)
            if fused:  # as cnnhub.training.fit does
                use_fused_batch_norm(model)
            model.compile(optimizer=make_optimizer(config, config["LEARNING_RATE"]),
                          loss=make_loss(config), metrics=["accuracy"])  # fmt: skip
        models[label] = (model, strategy, dataset)
        seconds[label], steps[label], outside[label] = [], timer("step"), []
    order = list(models)
    for epoch in range(args.epochs):
        for label in order:
            model, strategy, dataset = models[label]
            step_timer = steps[label]
            done = len(step_timer.seconds)
            with strategy.scope():
                start = time.perf_counter()
                model.fit(dataset, epochs=epoch + 1, initial_epoch=epoch, verbose=0,
                          callbacks=[step_timer])  # fmt: skip
                seconds[label].append(time.perf_counter() - start)
            outside[label].append(seconds[label][-1] - sum(step_timer.seconds[done:]))
            print(f"  round {epoch + 1} {label}: {seconds[label][-1]:.1f} s "
                  f"({outside[label][-1]:.1f} s outside steps)", flush=True)  # fmt: skip
        order = order[1:] + order[:1]
    per_epoch = len(steps[BASELINE].seconds) // args.epochs
    rates = {k: [len(split) / s for s in v[1:]] for k, v in seconds.items()}
    med = {k: median(v) for k, v in rates.items()}
    # Round 1's steps include tracing: left out, as its epochs are.
    per_step = {k: args.batch / median(t.seconds[per_epoch:]) for k, t in steps.items()}
    keras.backend.clear_session()
    return {
        "baseline": BASELINE,
        "images": len(split),
        "input": f"{size[0]}x{size[1]}x1",
        "batch": args.batch,
        "custom_conv_blocks": config["CUSTOM_CONV_BLOCKS"],
        "epoch_seconds": seconds,
        "seconds_outside_steps": outside,
        "seconds_outside_steps_median": {k: median(v[1:]) for k, v in outside.items()},
        "images_per_s_median": med,
        "speed_vs_cnnhub": {k: v / med[BASELINE] for k, v in med.items()},
        "images_per_s_per_step": per_step,
        "step_speed_vs_cnnhub": {k: v / per_step[BASELINE] for k, v in per_step.items()},
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
    results = start_results("training_loop", args)
    info = results["machine"]
    with work_dir("training_loop", args.keep) as work:
        folder = work / "pngs"
        write_image_folder(folder, args.images // 10, 28, "png", seed=8)
        results.update(measure(folder, args))
    print()
    print(machine_line(info))
    print(f"recipe net, {results['images']} PNGs {results['input']}, batch {args.batch}; "
          "img/s = median over rounds 2..N")  # fmt: skip
    rows = [[k, v, results["speed_vs_cnnhub"][k], results["seconds_outside_steps_median"][k],
             results["images_per_s_per_step"][k], results["step_speed_vs_cnnhub"][k]]
            for k, v in results["images_per_s_median"].items()]  # fmt: skip
    headers = ["variant", "img/s (epochs)", "vs cnnhub", "s outside steps", "img/s (steps)",
               "vs cnnhub"]  # fmt: skip
    print(table(headers, rows))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
