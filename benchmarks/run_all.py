"""Run every benchmark, one after another, and print a combined summary.

    python benchmarks/run_all.py --quick          # small sizes: a few minutes in all
    python benchmarks/run_all.py [--json OUT]     # the full measurements (~30 min on 2 cores)
    python benchmarks/run_all.py --only startup pipeline

Each benchmark runs as its own process (its output is streamed) and writes its JSON into a
temporary folder; the summary lists each headline figure against its target. ``--json OUT``
writes all results together. (bench_memory.py, bench_scan.py and bench_transfer.py, which
need the shared Fashion-MNIST files or take no --quick, are not part of this run.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, machine_info, machine_line, table  # noqa: E402

BENCHMARKS = [
    "startup", "evaluate", "feature_cache", "pipeline", "decode", "precision", "training_loop"
]


def summarize(name: str, r: dict) -> list[list]:
    """(benchmark, figure, value, target, result) rows of one benchmark's JSON."""
    rows = []

    def ok(flag: bool) -> str:
        return "met" if flag else "NOT met"

    if name == "startup":
        for cmd in ("run_training.py --help", "run_training.py --list_models"):
            c = r["commands"][cmd]
            rows.append([name, f"{cmd} median s", c["median_s"], "< 0.5", ok(c["target_met"])])
        t = r["tiny_training"]
        rows.append([name, "first training batch after start-up s",
                     t["reported_first_batch_s_median"], "", ""])  # fmt: skip
    elif name == "evaluate":
        for kind, s in r["scoring"].items():
            rows.append([name, f"{kind}: cnnhub / naive re-evaluation time",
                         s["ratio_cnnhub_over_naive"], f"<= {s['target']}",
                         ok(s["target_met"])])  # fmt: skip
        p = r["post_eval_cost"]
        rows.append([name, "-post true: per-epoch reports s/epoch",
                     p["epoch_reports_per_epoch_median_s"], "", ""])  # fmt: skip
        rows.append([name, "-post true: finalize s (once)", min(p["finalize_s"]), "", ""])
    elif name == "feature_cache":
        rows.append([name, "wall time off / on", r["ratio_wall_off_over_on"], ">= 5",
                     ok(r["target_met"])])  # fmt: skip
        rows.append([name, "val accuracy on - off", r["accuracy_difference"], "~0", ""])
    elif name == "pipeline":
        for m in r["models"]:
            rows.append(
                [
                    name,
                    f"{m['model']}: a/b (cnnhub / in-memory tensors)",
                    m["ratio_a_over_b"],
                    ">= 0.95",
                    ok(m["ratio_a_over_b"] >= 0.95),
                ]
            )
            rows.append(
                [
                    name,
                    f"{m['model']}: a/c (cnnhub / PIL PyDataset)",
                    m["ratio_a_over_c"],
                    ">= 3",
                    ok(m["ratio_a_over_c"] >= 3),
                ]
            )
    elif name == "precision":
        for model, m in r["models"].items():
            for label, c in m["configs"].items():
                if label not in ("float32", "float32 (own process)"):
                    rows.append([name, f"{model}: {label} speed vs float32",
                                 c["speed_vs_float32"], "", ""])  # fmt: skip
    elif name == "decode":
        speed = r["speed_vs_cnnhub"]["decode + resize"]
        rows.append([name, "decode + resize every image: speed vs cnnhub", speed, "", ""])
    elif name == "training_loop":
        for label, speed in r["speed_vs_cnnhub"].items():
            if label != r["baseline"]:
                rows.append([name, f"{label}: speed vs cnnhub", speed, "", ""])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS)
    args = parser.parse_args()
    info = machine_info()
    print(machine_line(info), flush=True)
    started = time.perf_counter()
    results, rows, timings, failed = {}, [], {}, []
    with tempfile.TemporaryDirectory(prefix="cnnhub-bench-all-") as tmp:
        for name in args.only:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(BENCH / f"bench_{name}.py"), "--json", str(out)]
            if args.quick:
                cmd.append("--quick")
            print(f"\n===== bench_{name}.py{' --quick' if args.quick else ''}", flush=True)
            start = time.perf_counter()
            code = subprocess.run(cmd).returncode
            timings[name] = time.perf_counter() - start
            if code != 0 or not out.is_file():
                failed.append(name)
                continue
            results[name] = json.loads(out.read_text(encoding="utf-8"))
            rows += summarize(name, results[name])
    total = time.perf_counter() - started
    print(
        "\n===== summary"
        + (" (--quick: small sizes, not the reported results)" if args.quick else "")
    )
    print(machine_line(info))
    print(table(["benchmark", "figure", "value", "target", "result"], rows))
    print()
    print(
        table(["benchmark", "seconds"], [[k, v] for k, v in timings.items()] + [["total", total]])
    )
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": info, "quick": args.quick, "seconds": timings,
                        "total_seconds": total, "results": results}, indent=2, default=str) + "\n",
            encoding="utf-8",
        )  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
