"""Scan speed: the decode check and content hashes of N small JPEGs, first (cold) vs cached.

    python benchmarks/bench_scan.py [--n 20000] [--workdir DIR] [--keep]

Writes N 28x28 JPEGs (Fashion-MNIST images when ../shared/datasets/fashion-mnist is there,
else noise) into 10 class folders under a temporary folder, then times, each with a fresh
cache folder for the first pass:

* ``scan_images`` (cnnhub.data.images: every file decoded by the decoder the pipeline will use,
  sizes, modes; what every run does first),
* the content hashes of ``cnnhub inspect`` / training-start duplicate checks,
* the whole ``load_splits`` (listing + scan + hashes + inspection) of the folder as -dtrain
  with ``--val_split 0.2``.

Prints one table; writing the files is not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FASHION = ROOT.parent / "shared" / "datasets" / "fashion-mnist" / "train-images-idx3-ubyte.gz"


def write_jpegs(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    if FASHION.is_file():
        from cnnhub.data.sources import read_idx

        source = read_idx(FASHION)
        images, labels = source.images[:n, :, :, 0], source.labels[:n]
    else:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
    for cls in range(10):
        (folder / f"class_{cls}").mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(folder / f"class_{label}" / f"{i:06d}.jpg", quality=90)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--workdir", default="")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cnnhub-bench-scan-"))
    data = work / "jpegs"
    if not data.is_dir():
        print(f"writing {args.n} JPEGs to {data} ...", flush=True)
        write_jpegs(data, args.n)

    # The scan decodes with TensorFlow (cnnhub.data.tf_images): its import is timed on its own, as
    # training has paid it already while `cnnhub inspect` pays it on a first (uncached) scan.
    import_seconds, _ = timed(lambda: __import__("tensorflow"))

    from cnnhub.data.images import list_class_folder
    from cnnhub.data.scan import cache_file, file_hashes, scan_images
    from cnnhub.data.sets import DataOptions, load_splits

    _, items = list_class_folder(data)
    paths = [p for p, _ in items]
    rows = []
    for label, cache_name in (("scan_images", "scans"), ("content hashes", "hashes")):
        os.environ["CNNHUB_CACHE_DIR"] = str(work / f"cache-{cache_name}")
        target = cache_file(cache_name, str(data))
        if cache_name == "scans":
            cold, _ = timed(lambda t=target: scan_images(paths, cache_file=t))
            warm, _ = timed(lambda t=target: scan_images(paths, cache_file=t))
        else:
            cold, _ = timed(lambda t=target: file_hashes(paths, t))
            warm, _ = timed(lambda t=target: file_hashes(paths, t))
        rows.append((label, cold, warm))
    os.environ["CNNHUB_CACHE_DIR"] = str(work / "cache-load")
    options = DataOptions(val_split=0.2)
    cold, _ = timed(lambda: load_splits(str(data), options=options))
    warm, _ = timed(lambda: load_splits(str(data), options=options))
    rows.append(("load_splits (all checks)", cold, warm))

    print(
        f"\n{len(paths)} JPEGs 28x28; {os.cpu_count()} CPUs ({_cpu()}); {platform.python_version()}"
    )
    print(f"{'step':<26} {'first s':>8} {'cached s':>9} {'files/s first':>14} {'speed-up':>9}")
    for label, first, second in rows:
        print(
            f"{label:<26} {first:>8.2f} {second:>9.2f} {len(paths) / first:>14,.0f} "
            f"{first / second:>8.1f}x"
        )
    print(f"(import tensorflow, once per process, not in the rows above: {import_seconds:.2f} s)")
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    raise SystemExit(main())
