"""Issue 8: start-up time of the command line.

    python benchmarks/bench_startup.py [--quick] [--json OUT]

* Wall time of ``python run_training.py --help`` and ``--list_models`` (and, for context,
  ``python -c pass``, importing TensorFlow and Keras, ``python -m cnnhub --help`` and
  ``python -m cnnhub models``): median of
  ``--repeats`` (default 7) runs each, the commands taking turns. Target: < 0.5 s.
* A tiny training run (the default custom CNN at the default 32x32, 10 classes x 5 synthetic
  PNGs, 1 epoch, ``-post false``), ``--train_repeats`` times: cnnhub's own "First training
  batch done X s after start-up" figure (clock started when ``cnnhub.runner`` is imported),
  the same moment measured from the process launch (when that line reaches this script's
  pipe), and the whole run's wall time.
"""

from __future__ import annotations

import argparse
import re
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
    write_image_folder,
    write_json,
)

TARGET = 0.5
FIRST_BATCH = re.compile(r"First training batch done ([\d.]+) s after start-up")


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {out.stderr[-2000:]}")
    return seconds


def tiny_training(data: Path, save: Path, env: dict[str, str], name: str) -> dict:
    cmd = [sys.executable, "run_training.py", "-dtrain", str(data), "-dvalid", str(data),
           "-sl", str(save), "-e", "1", "-post", "false", "--run_name", name]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)  # fmt: skip
    reported = seen_at = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        match = FIRST_BATCH.search(line)
        if match and reported is None:
            reported, seen_at = float(match.group(1)), time.perf_counter() - start
    code = proc.wait()
    total = time.perf_counter() - start
    if code != 0 or reported is None:
        raise RuntimeError(f"tiny training failed ({code}):\n{''.join(lines[-40:])}")
    return {"reported_first_batch_s": reported, "first_batch_from_launch_s": seen_at,
            "wall_s": total}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train_repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.train_repeats = 3, 1
    results = start_results("startup", args, tensorflow=False)
    info = results["machine"]
    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import tensorflow, keras'": [py, "-c", "import tensorflow, keras"],
        "run_training.py --help": [py, "run_training.py", "--help"],
        "run_training.py --list_models": [py, "run_training.py", "--list_models"],
        "python -m cnnhub --help": [py, "-m", "cnnhub", "--help"],
        "python -m cnnhub models": [py, "-m", "cnnhub", "models"],
    }
    with work_dir("startup", args.keep) as work:
        env = child_env(work)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, cmd in commands.items():  # warm the file cache once, untimed
            wall(cmd, env)
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                times[name].append(wall(cmd, env))
        data = write_image_folder(work / "tiny", 5, 32, "png", seed=8)
        training = [tiny_training(data, work / "save", env, f"tiny-{i}")
                    for i in range(args.train_repeats)]  # fmt: skip
    results["commands"] = {
        name: {"seconds": values, "median_s": median(values), "min_s": min(values)}
        for name, values in times.items()
    }
    results["tiny_training"] = {
        "runs": training,
        **{f"{k}_median": median([t[k] for t in training]) for k in training[0]},
    }
    for name in ("run_training.py --help", "run_training.py --list_models"):
        results["commands"][name]["target_met"] = results["commands"][name]["median_s"] < TARGET
    print()
    print(machine_line(info))
    rows = [[name, r["median_s"], r["min_s"], len(r["seconds"]),
             ("met" if r["median_s"] < TARGET else "NOT met") if "target_met" in r else ""]
            for name, r in results["commands"].items()]  # fmt: skip
    print(table(["command", "median s", "min s", "runs", "< 0.5 s"], rows))
    t = results["tiny_training"]
    print()
    print(table(
        ["tiny training (custom 32x32, 50 images, 1 epoch)", f"median of {len(training)}"],
        [["'First training batch done X s after start-up' (X)", t["reported_first_batch_s_median"]],
         ["same line seen, s after process launch", t["first_batch_from_launch_s_median"]],
         ["whole run wall s", t["wall_s_median"]]],
    ))  # fmt: skip
    for name in ("run_training.py --help", "run_training.py --list_models"):
        print(f"{name}: {verdict(results['commands'][name]['median_s'], TARGET, False)} s")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
