"""The first pass over PNGs already at the model's size: cnnhub's decode against decode + resize.

    python benchmarks/bench_decode.py [--images 20000] [--rounds 3] [--quick] [--json OUT]

Writes ``--images`` 28x28 PNGs (10 classes), then times passes of a ``tf.data`` map over their
paths (parallel, batched, as the training pipeline's first, cache-filling pass), taking turns
round by round so the machine's load changes hit both alike:

* ``cnnhub``: ``cnnhub.data.pipeline``'s decode, which skips the resize when an image is
  already at the requested size (a same-size antialiased bilinear resize returns its pixels);
* ``decode + resize``: the same decode followed by that resize every time (cnnhub before).

Both produce the same pixels (checked on every image). Prints images/second (median of the
rounds) and the ratio.
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
    work_dir,
    write_image_folder,
    write_json,
)

SIZE = 28


def measure(paths: list[str], rounds: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from cnnhub.data.pipeline import _decode_tf, resize_pixels
    from cnnhub.data.tf_images import decode_bytes, prefetched

    def always_resized(path):
        return resize_pixels(decode_bytes(tf.io.read_file(path), 1), (SIZE, SIZE))

    decoders = {"cnnhub": lambda p: _decode_tf(p, (SIZE, SIZE), 1), "decode + resize": always_resized}
    datasets = {
        label: prefetched(
            tf.data.Dataset.from_tensor_slices(paths)
            .map(fn, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(256)
        )
        for label, fn in decoders.items()
    }
    outputs = {label: np.concatenate(list(ds.as_numpy_iterator())) for label, ds in datasets.items()}
    assert np.array_equal(outputs["cnnhub"], outputs["decode + resize"]), "pixels differ"
    rates: dict[str, list[float]] = {label: [] for label in datasets}
    order = list(datasets)
    for _ in range(rounds):
        for label in order:
            start = time.perf_counter()
            for _batch in datasets[label]:
                pass
            rates[label].append(len(paths) / (time.perf_counter() - start))
        order = order[1:] + order[:1]
    med = {label: median(r) for label, r in rates.items()}
    return {"images": len(paths), "rates": rates, "images_per_s_median": med,
            "speed_vs_cnnhub": {k: v / med["cnnhub"] for k, v in med.items()}}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds = 2_000, 2
    results = start_results("decode", args)
    with work_dir("decode", args.keep) as work:
        folder = write_image_folder(work / "pngs", args.images // 10, SIZE, "png", seed=4)
        results.update(measure(list_folder(folder)[1], args.rounds))
    print()
    print(machine_line(results["machine"]))
    print(f"{results['images']} PNGs {SIZE}x{SIZE} (RGB files read as 1 channel); median of rounds")
    rows = [[k, v, results["speed_vs_cnnhub"][k]] for k, v in results["images_per_s_median"].items()]
    print(table(["decode", "img/s", "vs cnnhub"], rows))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
