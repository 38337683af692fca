"""The run folder: ``<save_location>/model_repository/<run name>/`` and the files in it."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cnnhub.errors import CnnhubError

REPOSITORY = "model_repository"


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run's files; see the README's "Run folder" section for what each holds."""

    path: Path
    model_name: str

    @property
    def model_logs(self) -> Path:
        return self.path / "model_logs"

    @property
    def tensor_logs(self) -> Path:
        return self.path / "tensor_logs"

    @property
    def training_log(self) -> Path:
        return self.path / "training.log"

    @property
    def stats_png(self) -> Path:
        return self.path / f"{self.model_name}_stats.png"

    @property
    def class_mapping(self) -> Path:
        return self.path / "index_class_mapping.json"

    @property
    def run_config(self) -> Path:
        return self.path / "run_config.json"

    @property
    def run_info(self) -> Path:
        return self.path / "run_info.json"

    @property
    def final_model(self) -> Path:
        return self.path / "final_model.keras"

    @property
    def skipped_files(self) -> Path:
        return self.path / "skipped_files.csv"


def repository_root(save_location: str) -> Path:
    """``<save_location>/model_repository``, created and checked writable."""
    root = Path(save_location or ".") / REPOSITORY
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise CnnhubError(
            f"Cannot write run folders under {root}: {exc.strerror or exc}. Pass a writable "
            f"folder with -sl/--save_loc. Received: save_location={save_location}"
        ) from None
    return root


def _safe_run_name(name: str) -> str:
    if name in (".", "..") or "/" in name or "\\" in name or os.sep in name or "\0" in name:
        raise CnnhubError(
            "`run_name` must be a plain folder name (no path separators, not . or ..). "
            f"Received: run_name={name!r}"
        )
    return name


def check_run_name(save_location: str, run_name: str, overwrite: bool = False) -> None:
    """Fail early when an explicitly named run folder already exists (never mix runs)."""
    path = Path(save_location or ".") / REPOSITORY / _safe_run_name(run_name) if run_name else None
    if path is not None and path.exists() and not overwrite:
        raise CnnhubError(
            f"Run folder {path} already exists. Continue it with --resume {path}, replace it "
            "with --overwrite, or choose another --run_name (empty numbers runs automatically). "
            f"Received: run_name={run_name}"
        )


def check_free_space(save_location: str, params: int, epochs: int) -> None:
    """Fail early when the disk cannot hold the run's checkpoints.

    Estimate: float32 weights for every epoch, plus optimizer state (up to 2 slots), final and
    best models, and 10% slack for logs and reports.
    """
    root = repository_root(save_location)
    need = int(params * 4 * (epochs + 2 + 2) * 1.1)
    free = shutil.disk_usage(root).free
    if free < need:
        raise CnnhubError(
            f"Not enough disk space under {root}: about {need / 1e6:,.0f} MB needed for "
            f"{epochs} epochs of a {params:,}-parameter model, {free / 1e6:,.0f} MB free. Free "
            f"space, pass another -sl/--save_loc, or train fewer epochs. Received: "
            f"save_location={save_location}"
        )


def create_run_folder(
    save_location: str, run_name: str, model_name: str, overwrite: bool = False
) -> RunFolder:
    """Create a new, empty run folder; an automatic name never reuses an existing folder.

    With ``overwrite``, an existing folder of the explicit ``run_name`` is deleted first.
    """
    root = repository_root(save_location)
    if run_name:
        path = root / _safe_run_name(run_name)
        if overwrite and path.exists():
            shutil.rmtree(path)
        path.mkdir()
    else:
        for n in range(1, 100_000):
            path = root / (model_name if n == 1 else f"{model_name}-{n}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
    run = RunFolder(path, model_name)
    run.model_logs.mkdir()
    run.tensor_logs.mkdir()
    return run
