"""Helpers shared by the benchmark scripts: machine info, synthetic data, timing, tables, JSON.

Not a benchmark itself. Every script imports it as ``from _common import ...`` (the scripts
put their own folder on ``sys.path``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
WORK = BENCH / "_work"  # git-ignored
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Ten visually distinct classes: (shape, RGB colour). Colour and shape both carry the class, so
# even a random-init backbone's features separate them somewhat.
CLASSES: list[tuple[str, tuple[int, int, int]]] = [
    ("disc", (230, 60, 60)),
    ("square", (60, 200, 60)),
    ("triangle", (70, 90, 235)),
    ("cross", (235, 210, 50)),
    ("ring", (210, 70, 220)),
    ("hstripes", (60, 215, 215)),
    ("vstripes", (245, 140, 40)),
    ("diamond", (150, 150, 150)),
    ("checker", (120, 60, 20)),
    ("bar", (250, 250, 250)),
]


# ---------------------------------------------------------------- machine and environment


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, RAM, load average, versions and the date: recorded with each result."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    except (OSError, ValueError):
        nproc = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": nproc,
        "cpu_model": cpu,
        "ram_gb": ram_gb,
        "loadavg_at_start": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"machine: nproc={info['nproc']}, CPU={info['cpu_model']}, RAM={info['ram_gb']} GB, "
        f"load avg at start={info['loadavg_at_start']}, date={info['date']}"
    )


def child_env(work: Path | None = None) -> dict[str, str]:
    """Environment for cnnhub subprocesses: quiet TF, no GPU, scan cache inside ``work``."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    if work is not None:
        env["CNNHUB_CACHE_DIR"] = str(work / "cnnhub-cache")
    return env


def start_results(name: str, args, tensorflow: bool = True) -> dict[str, Any]:
    """Print the machine line and start a benchmark's results: machine, versions, settings.

    ``tensorflow`` quiets TensorFlow (call this before anything imports it) and records its
    version; benchmarks that only time subprocesses pass False."""
    info = machine_info()
    print(machine_line(info), flush=True)
    results: dict[str, Any] = {"benchmark": name, "machine": info}
    if tensorflow:
        quiet_tensorflow()
        results["versions"] = versions()
    results["settings"] = {k: v for k, v in vars(args).items() if k != "json"}
    return results


def quiet_tensorflow() -> None:
    """Call before importing TensorFlow in a benchmark process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import logging

    from cnnhub.quiet import quiet_tensorflow as quiet_startup

    quiet_startup()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing warnings


@contextmanager
def work_dir(name: str, keep: bool = False) -> Iterator[Path]:
    """A fresh folder under benchmarks/_work/ (git-ignored), removed afterwards."""
    WORK.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=WORK))
    old_cache = os.environ.get("CNNHUB_CACHE_DIR")
    os.environ["CNNHUB_CACHE_DIR"] = str(path / "cnnhub-cache")  # keep ~/.cache clean
    try:
        yield path
    finally:
        if old_cache is None:
            os.environ.pop("CNNHUB_CACHE_DIR", None)
        else:
            os.environ["CNNHUB_CACHE_DIR"] = old_cache
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
            try:
                WORK.rmdir()  # only when empty
            except OSError:
                pass


# ---------------------------------------------------------------- models and timing

# The two models the speed benchmarks train, at their input sizes: a backbone and the custom
# net (preset ``fashion``, the strong small net for 28x28 images).
MODEL_SIZES = {"mobilenetv2": 96, "custom": 28}
CUSTOM_PRESET = "fashion"


def bench_config(model: str, size: int, batch: int, *flags: str) -> dict[str, Any]:
    """cnnhub's resolved config for ``model`` at ``size`` x ``size``, random init, ``batch``."""
    from cnnhub import settings

    argv = ["-m", model, "-w", "none", "-height", str(size), "-width", str(size),
            "-b", str(batch), "--custom_conv_blocks", CUSTOM_PRESET, *flags]  # fmt: skip
    return settings.resolve(argv)[0]


def timer(unit: str = "epoch"):
    """A Keras callback collecting the seconds of each epoch, or each training step (``"step"``).

    Only the hooks of its unit are defined, so an epoch timer leaves Keras's per-step loop as
    it is."""
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def _begin(self):
            self._start = time.perf_counter()

        def _end(self):
            self.seconds.append(time.perf_counter() - self._start)

    class EpochTimer(Timer):
        def on_epoch_begin(self, epoch, logs=None):
            self._begin()

        def on_epoch_end(self, epoch, logs=None):
            self._end()

    class StepTimer(Timer):
        def on_train_batch_begin(self, batch, logs=None):
            self._begin()

        def on_train_batch_end(self, batch, logs=None):
            self._end()

    return {"epoch": EpochTimer, "step": StepTimer}[unit]()


# ---------------------------------------------------------------- synthetic images


def draw_image(cls: int, size: int, rng) -> Any:
    """A noisy ``size`` x ``size`` RGB image of class ``cls``: its shape in its colour, jittered."""
    import numpy as np
    from PIL import Image, ImageDraw

    shape, colour = CLASSES[cls % len(CLASSES)]
    base = rng.normal(60, 25, (size, size, 3)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    jitter = np.clip(rng.normal(0, 18, 3), -40, 40)
    fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter))
    r = size * rng.uniform(0.22, 0.36)
    cx, cy = size / 2 + rng.uniform(-size / 8, size / 8, 2)
    box = (cx - r, cy - r, cx + r, cy + r)
    w = max(2, int(size / 12))
    if shape == "disc":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "cross":
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=w)
    elif shape == "hstripes":
        for y in range(int(cy - r), int(cy + r), 2 * w):
            draw.rectangle((cx - r, y, cx + r, y + w - 1), fill=fill)
    elif shape == "vstripes":
        for x in range(int(cx - r), int(cx + r), 2 * w):
            draw.rectangle((x, cy - r, x + w - 1, cy + r), fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    elif shape == "checker":
        step = max(2, int(r / 2))
        for i, y in enumerate(range(int(cy - r), int(cy + r), step)):
            for j, x in enumerate(range(int(cx - r), int(cx + r), step)):
                if (i + j) % 2 == 0:
                    draw.rectangle((x, y, x + step - 1, y + step - 1), fill=fill)
    else:  # bar
        draw.rectangle((cx - r, cy - r / 4, cx + r, cy + r / 4), fill=fill)
    return img


def write_image_folder(
    root: Path, per_class: int, size: int, fmt: str = "png", seed: int = 0, classes: int = 10
) -> Path:
    """``per_class`` images of each of ``classes`` classes under ``root/<class>/``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for cls in range(classes):
        folder = root / f"{cls:02d}_{CLASSES[cls][0]}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = draw_image(cls, size, rng)
            if fmt == "jpg":
                img.save(folder / f"{i:05d}.jpg", quality=90)
            else:
                img.save(folder / f"{i:05d}.png")
    return root


def list_folder(root: Path) -> tuple[list[str], list[str], list[int]]:
    """(class names, file paths, labels) of a class-folder tree, sorted (cnnhub's order)."""
    from cnnhub.data.images import list_class_folder

    names, items = list_class_folder(root)
    return names, [p for p, _ in items], [label for _, label in items]


# ---------------------------------------------------------------- timing and subprocesses


def median(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def timed_run(cmd: list[str], env: dict[str, str], cwd: Path | None = None, timeout=1800):
    """Run ``cmd``; return (wall seconds, CompletedProcess). Raises on a non-zero exit."""
    start = time.perf_counter()
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=timeout
    )
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(
            f"command failed ({out.returncode}): {' '.join(cmd)}\n{out.stdout[-3000:]}\n"
            f"{out.stderr[-3000:]}"
        )
    return wall, out


def run_child(argv: list[str], env: dict[str, str], timeout=1800) -> dict[str, Any]:
    """Run ``benchmarks/_child.py`` (an instrumented ``run_training.py``) with ``argv``.

    Returns its RESULT dict plus ``wall`` (the whole subprocess, start-up included)."""
    return run_children([argv], env, timeout)[0]


def run_children(runs: list[list[str]], env: dict[str, str], timeout=3600) -> list[dict[str, Any]]:
    """Several instrumented training runs, in order, in one ``_child.py`` process.

    Each RESULT dict gets ``wall`` only for a single run (the whole subprocess)."""
    argv = [token for i, run in enumerate(runs) for token in ([] if i == 0 else ["---"]) + run]
    wall, out = timed_run([sys.executable, str(BENCH / "_child.py"), *argv], env, timeout=timeout)
    results = [
        json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")
    ]
    if len(results) != len(runs):
        raise RuntimeError(
            f"expected {len(runs)} RESULT lines from _child.py\n{out.stdout[-3000:]}\n"
            f"{out.stderr[-3000:]}"
        )
    if len(runs) == 1:
        results[0]["wall"] = wall
    return results


def run_folder_of(stdout: str) -> Path:
    for line in reversed(stdout.splitlines()):
        if line.startswith("Run folder: "):
            return Path(line[len("Run folder: ") :].strip())
    raise RuntimeError("no 'Run folder:' line in the output")


# ---------------------------------------------------------------- output


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (also valid Markdown)."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            if value != value:  # nan
                return "n/a"
            if abs(value) >= 100:
                return f"{value:,.0f}"
            if abs(value) >= 10:
                return f"{value:.1f}"
            return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
        return str(value)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines)


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"{value:.3g} (target {sign} {target:g}: {'met' if ok else 'NOT met'})"


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results written to {path}")


def add_common_args(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes (< ~1 minute)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
