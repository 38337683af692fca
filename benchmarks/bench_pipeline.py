"""Issue 8: training throughput of cnnhub's input pipeline versus in-memory tensors and PIL.

    python benchmarks/bench_pipeline.py [--quick] [--json OUT]

Writes ``--images`` JPEGs (``--jpeg_size`` px square, 10 classes, class-dependent shapes and
colours) and trains, ``train_all`` from random init, on them three ways:

(a) cnnhub: ``cnnhub.data.pipeline.make_dataset`` on the JPEG files with the run's augmentation
    (``build_augmenter``: default flip, zoom 0.1, translation 0.1) and the in-memory cache on
    (what ``run_training.py`` does);
(a0) the same without augmentation (``--aug_* off``), to tell augmentation compute from
    pipeline overhead;
(b) the compute bound: the same images, already decoded (by cnnhub's pipeline, beforehand, not
    timed) as a uint8 tensor: ``from_tensor_slices`` -> cache -> shuffle -> batch -> cast to
    float32 -> prefetch; no augmentation;
(c) the old Keras 2 way: a ``keras.utils.PyDataset`` (default ``workers=1``: batches are made
    in the training loop's thread) that opens, converts, resizes (PIL, bilinear) and stacks
    each batch's images one by one; no augmentation; shuffled each epoch.

Models: mobilenetv2 at 96x96 (``-w none``; on a random ``--mobilenet_images`` of the files) and the
custom net (preset ``fashion``) at 28x28 (all files); Adam 1e-3, batch 32. One model per
architecture is trained by all three pipelines in turn, one epoch per ``fit`` call, timed by a
Keras callback (``on_epoch_begin`` to ``on_epoch_end``); the pipelines take turns epoch by
epoch (order rotated each round), so load changes on the shared machine hit all three alike,
and the train step is traced once. Throughput does not depend on the weights' values. Round 1
(tracing, cache fill) is left out; images/second is the median over rounds 2..N. Also measured:
PIL open+convert+resize time per image, single-threaded (what (c) adds per image).
Targets: a/b >= 0.95, a/c >= 3.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    MODEL_SIZES,
    add_common_args,
    bench_config,
    list_folder,
    machine_line,
    median,
    start_results,
    table,
    timer,
    verdict,
    work_dir,
    write_image_folder,
    write_json,
)

TARGET_AB, TARGET_AC = 0.95, 3.0


def pil_dataset(paths, labels, size, batch, num_classes, seed):
    """(c): a PyDataset that loads each batch with PIL, image by image."""
    import keras
    import numpy as np
    from PIL import Image

    class PilBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()  # workers=1, no multiprocessing: Keras 3's default
            self.paths = np.asarray(paths)
            self.labels = np.asarray(labels)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(self.paths))

        def __len__(self):
            return -(-len(self.paths) // batch)

        def __getitem__(self, index):
            chosen = self.order[index * batch : (index + 1) * batch]
            images = []
            for i in chosen:
                with Image.open(self.paths[i]) as img:
                    img = img.convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
                    images.append(np.asarray(img, dtype="float32"))
            y = np.eye(num_classes, dtype="float32")[self.labels[chosen]]
            return np.stack(images), y

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(self.paths))

    return PilBatches()


def measure_model(name: str, model_name: str, size: int, n: int, args, folder: Path) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from cnnhub.data.augment import build_augmenter
    from cnnhub.data.pipeline import make_dataset
    from cnnhub.data.sets import Split
    from cnnhub.model_factory import build_model
    from cnnhub.training import make_loss, make_optimizer

    config = bench_config(model_name, size, args.batch)
    class_names, paths, labels = list_folder(folder)
    if n < len(paths):  # a random subset, file order kept
        idx = np.sort(np.random.default_rng(0).permutation(len(paths))[:n])
        paths, labels = [paths[i] for i in idx], [labels[i] for i in idx]
    labels = np.asarray(labels, dtype=np.int64)
    classes, image_size, seed, batch = len(class_names), (size, size), config["SEED"], args.batch
    split = Split(labels=labels, paths=paths)

    # (a) cnnhub's pipeline, as runner.train_one builds it (augmentation on, memory cache on)
    augmenter = build_augmenter(config, seed)
    ds_a = make_dataset(split, classes, image_size, batch, training=True, seed=seed,
                        cache=True, augmenter=augmenter)  # fmt: skip
    ds_a0 = make_dataset(split, classes, image_size, batch, training=True, seed=seed,
                         cache=True, augmenter=None)  # fmt: skip
    # (b) decoded beforehand (untimed) -> in-memory tensors
    start = time.perf_counter()
    decoded = make_dataset(split, classes, image_size, 256, training=False, seed=seed,
                           cache=False, with_labels=False)  # fmt: skip
    x = np.concatenate([b.numpy().astype(np.uint8) for b in decoded])
    decode_s = time.perf_counter() - start
    y = np.eye(classes, dtype="float32")[labels]
    ds_b = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .cache()
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch)
        .map(lambda xb, yb: (tf.cast(xb, tf.float32), yb), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    # (c) PIL one by one
    ds_c = pil_dataset(paths, labels, image_size, batch, classes, seed)

    # PIL cost per image, single-threaded (what (c) pays per image on top of the compute)
    from PIL import Image

    sample = paths[: min(200, len(paths))]
    start = time.perf_counter()
    for p in sample:
        with Image.open(p) as img:
            np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR), dtype="float32")
    pil_ms = (time.perf_counter() - start) / len(sample) * 1000

    variants = {"a_cnnhub": ds_a, "a0_cnnhub_no_aug": ds_a0, "b_tensors": ds_b, "c_pil": ds_c}
    keras.utils.set_random_seed(seed)
    model = build_model(config, classes)
    model.compile(optimizer=make_optimizer(config, config["LEARNING_RATE"]),
                  loss=make_loss(config), metrics=["accuracy"],
                  jit_compile=config["JIT_COMPILE"])  # fmt: skip
    timers = {key: timer() for key in variants}
    order = list(variants)
    for epoch in range(args.epochs):
        for key in order:
            model.fit(variants[key], epochs=epoch + 1, initial_epoch=epoch,
                      callbacks=[timers[key]], verbose=0)  # fmt: skip
            print(f"  {name} round {epoch + 1} {key}: {timers[key].seconds[-1]:.1f} s", flush=True)
        order = order[1:] + order[:1]
    rates = {k: [len(paths) / s for s in t.seconds[1:]] for k, t in timers.items()}
    med = {k: median(v) for k, v in rates.items()}
    del model
    keras.backend.clear_session()
    return {
        "model": model_name,
        "input": f"{size}x{size}",
        "custom_conv_blocks": config["CUSTOM_CONV_BLOCKS"] if model_name == "custom" else None,
        "images": len(paths),
        "epochs": args.epochs,
        "epoch_seconds": {k: t.seconds for k, t in timers.items()},
        "images_per_s_epochs_2_on": rates,
        "images_per_s_median": med,
        "pil_load_resize_ms_per_image": pil_ms,
        "compute_ms_per_image_b": 1000 / med["b_tensors"],
        "untimed_decode_for_b_s": decode_s,
        "ratio_a_over_b": med["a_cnnhub"] / med["b_tensors"],
        "ratio_a0_over_b": med["a0_cnnhub_no_aug"] / med["b_tensors"],
        "ratio_a_over_c": med["a_cnnhub"] / med["c_pil"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--images", type=int, default=5000, help="JPEGs written (custom net)")
    parser.add_argument(
        "--mobilenet_images",
        type=int,
        default=1000,
        help="of those, how many mobilenetv2 trains on (~5x slower per image)",
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--jpeg_size", type=int, default=800, help="side of the square JPEGs (photo-sized)"
    )
    parser.add_argument("--models", nargs="+", default=["mobilenetv2", "custom"])
    args = parser.parse_args()
    if args.quick:
        args.models, args.images, args.epochs, args.jpeg_size = ["custom"], 300, 3, 128
    results = start_results("pipeline", args)
    info = results["machine"]
    with work_dir("pipeline", args.keep) as work:
        folder = work / "jpegs"
        start = time.perf_counter()
        write_image_folder(folder, args.images // 10, args.jpeg_size, "jpg", seed=3)
        print(f"wrote {args.images} JPEGs in {time.perf_counter() - start:.0f} s", flush=True)
        runs = []
        for model_name in args.models:
            n = args.mobilenet_images if model_name == "mobilenetv2" else args.images
            runs.append(
                measure_model(model_name, model_name, MODEL_SIZES[model_name], n, args, folder)
            )
    results["models"] = runs
    print()
    print(machine_line(info))
    print(f"train_all, batch {args.batch}, -w none, {args.jpeg_size}x{args.jpeg_size} JPEGs; "
          "images/s = median over epochs 2..N")  # fmt: skip
    rows = []
    for r in runs:
        m = r["images_per_s_median"]
        name = r["model"] + (f" ({r['custom_conv_blocks']})" if r["custom_conv_blocks"] else "")
        rows.append([
            name, r["input"], r["images"], r["epochs"], m["a_cnnhub"], m["a0_cnnhub_no_aug"],
            m["b_tensors"], m["c_pil"],
            r["pil_load_resize_ms_per_image"], r["compute_ms_per_image_b"],
            r["ratio_a_over_b"], "met" if r["ratio_a_over_b"] >= TARGET_AB else "NOT met",
            r["ratio_a0_over_b"],
            r["ratio_a_over_c"], "met" if r["ratio_a_over_c"] >= TARGET_AC else "NOT met",
        ])  # fmt: skip
    print(table(
        ["model", "input", "images", "epochs", "(a) cnnhub img/s", "(a0) no aug img/s",
         "(b) tensors img/s", "(c) PIL img/s", "PIL ms/img", "compute ms/img (b)", "a/b",
         "a/b >= 0.95", "a0/b", "a/c", "a/c >= 3"],
        rows,
    ))  # fmt: skip
    for r in runs:
        print(f"{r['model']}: a/b = {verdict(r['ratio_a_over_b'], TARGET_AB, True)}; "
              f"a/c = {verdict(r['ratio_a_over_c'], TARGET_AC, True)}")  # fmt: skip
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
