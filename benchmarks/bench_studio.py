"""Issue 17: the studio's speed - page answers with 100 runs, live curves, training side by side.

    python benchmarks/bench_studio.py [--quick] [--runs 100] [--epochs 3] [--json OUT]

* Training from the studio against the CLI: the same config file, run once as
  ``python run_training.py -c <file>`` and once started by the studio's Trainer (the Train
  page's Start), one after the other; wall time of each and the run's own ``train_seconds``.
  Target: the studio is as fast (ratio ~1; it is the same subprocess).
* Live curves: while the studio's run trains, the Train page's tick (every
  ``app.TICK_SECONDS``) reads the run; for each epoch, the time from ``training.log`` being
  written to the tick that shows it. Target: < 2 s.
* Page answers with ``--runs`` run folders in the repository (copies of the trained run, all
  evaluated, so the leaderboard reads every one): the handler behind each page's answer
  (median of 5) and the page's HTML over HTTP. Target: < 1 s each.

Report the load average next to the numbers (printed first): the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ROOT,
    add_common_args,
    child_env,
    median,
    start_results,
    table,
    verdict,
    work_dir,
    write_image_folder,
    write_json,
)

PAGE_TARGET = 1.0
CURVE_TARGET = 2.0


def _settings(root: Path, epochs: int) -> dict:
    from cnnhub.studio import data, train
    from cnnhub.studio.workspace import Workspace

    workspace = Workspace(root)
    choice = data.choose(workspace, "data/train", "data/valid")
    values = {"MODEL_NAME": "custom", "IMG_HEIGHT": 16, "IMG_WIDTH": 16, "DENSE": "16",
              "EPOCHS": epochs, "BATCH_SIZE": 8, **choice.config()}  # fmt: skip
    return train.page_config(values)


def _train_cli(root: Path, config: dict, name: str) -> float:
    from cnnhub.studio import train
    from cnnhub.studio.workspace import Workspace

    path = train.write_config(Workspace(root), config, name)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "run_training.py"), "-c", str(path)],
        cwd=root, env=child_env(root), check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def _train_studio(root: Path, config: dict, name: str, tick: float) -> tuple[float, list[float]]:
    """Start from the studio; poll like the Train page; (wall seconds, per-epoch latencies)."""
    from cnnhub.studio import train
    from cnnhub.studio.process import Trainer
    from cnnhub.studio.workspace import Workspace

    workspace = Workspace(root)
    trainer = Trainer(env=child_env(root), cwd=root)
    started = time.perf_counter()
    run = train.start(workspace, trainer, config, name)
    seen, latencies = 0, []
    while run.job.running:
        time.sleep(tick)
        view = train.live_view(workspace, trainer, name)
        if len(view.epochs) > seen:
            # The page shows the new row at this tick; the row was written at the log's mtime.
            latencies.append(time.time() - view.updated)
            seen = len(view.epochs)
    assert run.job.wait() == 0, run.job.console_text()[-2000:]
    return time.perf_counter() - started, latencies


def _time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return median(times)


def _pages(root: Path, runs: int) -> list[tuple[str, float]]:
    """Seconds of each page's answer with ``runs`` evaluated runs in the repository."""
    from cnnhub.studio import app, train, try_
    from cnnhub.studio import runs as runs_page
    from cnnhub.studio.process import Trainer
    from cnnhub.studio.workspace import Workspace

    workspace = Workspace(root)
    source = workspace.repository / "studio"
    for i in range(runs - len(workspace.run_folders())):
        shutil.copytree(source, workspace.repository / f"copy-{i:03d}")
    trainer = Trainer(cwd=root)
    image = next((root / "data" / "valid").rglob("*.png"))
    try_.predict(workspace, "studio", str(image))  # the model is loaded once, then cached
    cold = _time(lambda: app._board(workspace), repeats=1)  # every row read once
    rows = [
        ("Data: folder picker", _time(workspace.data_folders)),
        ("Runs: leaderboard, first visit (rows read)", cold),
        ("Runs: leaderboard (tab select)", _time(lambda: app._board(workspace))),
        ("Runs/Try/Export: run list", _time(lambda: app._run_list(workspace, None))),
        ("Runs: one run in detail", _time(lambda: runs_page.run_detail(workspace, "studio"))),
        ("Train: live view tick", _time(lambda: train.live_view(workspace, trainer, "studio"))),
        ("Try: predict one image", _time(lambda: try_.predict(workspace, "studio", str(image)))),
    ]
    server = app.launch(workspace, "127.0.0.1", _free_port(), block=False, trainer=trainer)
    try:
        url = server.local_url
        rows.append(("Page HTML over HTTP", _time(lambda: urllib.request.urlopen(url).read())))
    finally:
        server.close()
    return rows


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--runs", type=int, default=100, help="run folders for the page test")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each training")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.epochs = 20, 2
    results = start_results("studio", args)
    from cnnhub.studio.app import TICK_SECONDS

    with work_dir("studio", args.keep) as root:
        write_image_folder(root / "data" / "train", 8, 16, classes=2)
        write_image_folder(root / "data" / "valid", 4, 16, seed=1, classes=2)
        config = _settings(root, args.epochs)
        cli = _train_cli(root, config, "cli")
        studio, latencies = _train_studio(root, config, "studio", TICK_SECONDS)
        info = {
            name: json.loads((root / "model_repository" / name / "run_info.json").read_text())
            for name in ("cli", "studio")
        }
        pages = _pages(root, args.runs)
    train_rows = [
        ("CLI: run_training.py -c", cli, info["cli"].get("train_seconds")),
        ("studio: Train page Start", studio, info["studio"].get("train_seconds")),
    ]
    print(table(["training", "wall s", "train_seconds"], train_rows))
    print(f"studio / CLI wall time: {studio / cli:.2f}")
    worst = max(latencies) if latencies else float("nan")
    print(f"live curves: epoch written -> shown, per epoch (tick {TICK_SECONDS:g} s): "
          + ", ".join(f"{x:.2f}" for x in latencies)
          + f" s; worst {verdict(worst, CURVE_TARGET, higher_is_better=False)}")  # fmt: skip
    print(table([f"page answer, {args.runs} runs", "seconds (median of 5)"], pages))
    # The first visit is warmed by a thread at start-up, not waited for by a page.
    slowest = max(seconds for name, seconds in pages if "first visit" not in name)
    print(f"slowest page: {verdict(slowest, PAGE_TARGET, higher_is_better=False)}")
    results.update(
        training={name: {"wall_s": wall, "train_seconds": t} for name, wall, t in train_rows},
        studio_over_cli=studio / cli,
        curve_latency_s=latencies,
        pages_s=dict(pages),
        runs=args.runs,
    )
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
