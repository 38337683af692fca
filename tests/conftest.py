"""Shared fixtures: an offline guard for every test, and tiny synthetic image datasets."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
NETGUARD = Path(__file__).resolve().parent / "netguard"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Scan caches of the tests' throw-away datasets stay out of the user's ~/.cache.
os.environ["CNNHUB_CACHE_DIR"] = tempfile.mkdtemp(prefix="cnnhub-test-cache-")
sys.path.insert(0, str(NETGUARD))
import no_network  # noqa: E402,F401  (installs the network guard in this process)

CLASSES = ("circle", "square", "stripes")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """``-n 2`` alone means xdist's ``--dist load``, which spreads one module's tests over the
    workers, so every worker runs that module's fixtures (trained runs) again. Make it
    ``loadscope`` (one module, one worker) unless ``--dist`` was given. Here and not in
    pyproject's addopts: there ``--dist`` would break ``-p no:xdist`` and runs without xdist."""
    given = any(arg.startswith(("--dist", "-d")) for arg in config.invocation_params.args)
    is_worker = hasattr(config, "workerinput")
    if getattr(config.option, "dist", "no") == "load" and not given and not is_worker:
        config.option.dist = "loadscope"


# The modules that take longest (trained runs, a browser, several processes), longest first.
# Under loadscope a worker takes the next module when it is free, in collection order; these
# come last alphabetically, so one worker was left running the studio's browser test alone
# for its last ~100 s. Started first, the short modules fill in around them.
LONGEST_MODULES = (
    "test_studio_browser.py",
    "test_resume.py",
    "test_train_run.py",
    "test_tune.py",
    "test_scale.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest modules first (see LONGEST_MODULES); the rest keep their order."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_MODULES.index(name) if name in LONGEST_MODULES else len(LONGEST_MODULES)

    items.sort(key=rank)


def _draw(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A noisy image whose class is visible: a disc, a filled square, or horizontal stripes."""
    y, x = np.mgrid[:size, :size]
    c = size / 2 + rng.uniform(-size / 8, size / 8, 2)
    if kind == "circle":
        mask = (y - c[0]) ** 2 + (x - c[1]) ** 2 < (size / 3) ** 2
    elif kind == "square":
        mask = (abs(y - c[0]) < size / 3) & (abs(x - c[1]) < size / 3)
    else:
        mask = (y // max(size // 8, 1)) % 2 == 0
    colour = rng.uniform(150, 255, 3)
    image = rng.normal(40, 20, (size, size, 3))
    image[mask] = colour
    return np.clip(image, 0, 255).astype(np.uint8)


def make_image_folder(
    root: Path, per_class: int, size: int = 32, seed: int = 0, classes=CLASSES
) -> Path:
    """Write ``per_class`` PNG/JPEG images per class under ``root/<class>/``."""
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = Image.fromarray(_draw(name, size, rng))
            suffix = ".png" if i % 2 else ".jpg"
            image.save(folder / f"{name}_{i:03d}{suffix}")
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """3 classes, 16 train / 6 valid images each, 32x32 (read-only: copy before changing)."""
    base = tmp_path_factory.mktemp("tiny_data")
    return {
        "train": make_image_folder(base / "train", 16, seed=1),
        "valid": make_image_folder(base / "valid", 6, seed=2),
    }


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(NETGUARD), str(ROOT)])
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def run_cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python run_training.py ARGS`` in ``cwd`` with the network guard; capture output."""
    return subprocess.run(
        [sys.executable, str(ROOT / "run_training.py"), *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
