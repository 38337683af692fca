"""Peak memory of a 1-epoch training: 6,000 vs 60,000 Fashion-MNIST images, cache in memory vs
``--cache_dir``.

    python benchmarks/bench_memory.py [--sizes 6000 60000] [--batch 128]

The data is Fashion-MNIST's training IDX file (``../shared/datasets/fashion-mnist/``, read by
``cnnhub.data.sources.read_idx``); the 6,000 subset is its first 6,000 images saved as .npz (an
in-memory source too, never image files). Each measurement is one fresh process running
``run_training.py``-equivalent ``train_main`` with ``--val_split 0.1``, 28x28 input, a small
custom CNN, 1 epoch, no post-evaluation; peak RSS is the child's ``ru_maxrss``. Prints one table.

``--pipeline_size S`` measures only the training input pipeline (decode/resize to SxS, cache,
shuffle, batch; 2 epochs, no model), where the cache's own cost shows: at 28x28 the decoded
cache (~140 MB for 60,000 images) is small next to TensorFlow's ~700 MB baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FASHION = ROOT.parent / "shared" / "datasets" / "fashion-mnist" / "train-images-idx3-ubyte.gz"

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from cnnhub.commands.train import train_main
start = time.perf_counter()
code = train_main({argv!r})
print("RESULT " + json.dumps({{
    "code": code,
    "seconds": time.perf_counter() - start,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}}))
"""


PIPELINE_CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from cnnhub.data.pipeline import make_dataset
from cnnhub.data.sets import Split
from cnnhub.data.sources import read_idx
source = read_idx({data!r})
n = {n}
split = Split(labels=source.labels[:n], paths=list(source.keys[:n]), images=source.images[:n],
              cache_file={cache!r} or None)
ds = make_dataset(split, 10, ({size}, {size}), 128, training=True, seed=1, cache=True)
start = time.perf_counter()
for epoch in range(2):
    for batch in ds:
        pass
print("RESULT " + json.dumps({{
    "code": 0,
    "seconds": time.perf_counter() - start,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}}))
"""


def subset_npz(n: int, folder: Path) -> Path:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from cnnhub.data.sources import read_idx

    source = read_idx(FASHION)
    path = folder / f"fashion-{n}.npz"
    np.savez(path, x=source.images[:n, :, :, 0], y=source.labels[:n])
    return path


def run_pipeline(n: int, cache_dir: str, size: int) -> dict:
    """Only the training tf.data pipeline (decode/resize to size x size, cache, shuffle,
    batch), 2 epochs, no model: what the cache itself costs."""
    cache = str(Path(cache_dir) / "train") if cache_dir else ""
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    script = PIPELINE_CHILD.format(root=str(ROOT), data=str(FASHION), n=n, cache=cache, size=size)
    return _child(script)


def _child(script: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(out.stderr[-2000:])


def run(data: Path, save: Path, cache_dir: str, batch: int) -> dict:
    argv = [
        "-dtrain", str(data), "--val_split", "0.1", "-sl", str(save), "-e", "1",
        "-b", str(batch), "-height", "28", "-width", "28", "-post", "false",
        "--custom_conv_blocks", "c16k3-mp2,c32k3-mp2", "--num_nodes", "64",
        "--num_dropouts", "0.2", "--scan_cache", "false",
    ]  # fmt: skip
    if cache_dir:
        argv += ["--cache_dir", cache_dir]
    return _child(CHILD.format(root=str(ROOT), argv=argv))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[6_000, 60_000])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--pipeline_size",
        type=int,
        default=0,
        help="instead of training, time only the input pipeline at this image size (2 epochs)",
    )
    args = parser.parse_args()
    if not FASHION.is_file():
        print(f"Fashion-MNIST not found at {FASHION}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnhub-bench-mem-") as tmp:
        work = Path(tmp)
        for n in args.sizes:
            data = FASHION if n >= 60_000 or args.pipeline_size else subset_npz(n, work)
            for mode in ("memory", "cache_dir"):
                cache = str(work / f"tfcache-{n}") if mode == "cache_dir" else ""
                started = time.perf_counter()
                if args.pipeline_size:
                    result = run_pipeline(n, cache, args.pipeline_size)
                else:
                    result = run(data, work / f"save-{n}-{mode}", cache, args.batch)
                result["wall"] = time.perf_counter() - started
                rows.append((n, mode, result))
                print(f"  {n} {mode}: {result}", flush=True)
    if args.pipeline_size:
        size = args.pipeline_size
        print(f"\ninput pipeline only, {size}x{size}x3, 2 epochs; {os.cpu_count()} CPUs")
        what = "pipeline s"
    else:
        print(f"\n1 epoch, batch {args.batch}, 28x28, val_split 0.1; {os.cpu_count()} CPUs")
        what = "train_main s"
    print(f"{'images':>7} {'cache':<10} {'peak RSS MB':>12} {what:>13} {'exit':>5}")
    for n, mode, r in rows:
        print(f"{n:>7} {mode:<10} {r['peak_rss_mb']:>12.0f} {r['seconds']:>13.1f} {r['code']:>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
