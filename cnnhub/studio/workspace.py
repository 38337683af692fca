"""The studio's workspace: one root folder; every path the pages accept must lie inside it.

Data folders are chosen under the root, runs live in ``<root>/model_repository/`` (the
``SAVE_LOCATION`` of every run the studio starts) and the studio's own files (the configs it
writes, uploads) in ``<root>/.cnnhub-studio/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnhub.errors import CnnhubError
from cnnhub.run_folder import REPOSITORY

STUDIO_DIR = ".cnnhub-studio"
SKIPPED_FOLDERS = {REPOSITORY, STUDIO_DIR, "__pycache__", "node_modules"}
MAX_FOLDERS = 500  # the folder picker lists at most this many
# Dataset files the picker lists besides folders (CSV, NumPy, CIFAR binary, IDX).
DATA_FILE_ENDINGS = (".csv", ".npz", ".bin", "-ubyte", "-ubyte.gz", ".idx", ".idx.gz")


class Workspace:
    """The root folder of a studio session and the paths derived from it."""

    def __init__(self, root: str | os.PathLike) -> None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise CnnhubError(
                f"`--root` must be an existing folder. Received: root={str(root)!r}"
            )
        self.root = path.resolve()

    @property
    def repository(self) -> Path:
        """``<root>/model_repository``: where the studio's runs are written and listed."""
        return self.root / REPOSITORY

    @property
    def studio_dir(self) -> Path:
        """``<root>/.cnnhub-studio``, created on first use."""
        folder = self.root / STUDIO_DIR
        folder.mkdir(exist_ok=True)
        return folder

    def resolve(self, path: str | os.PathLike, what: str = "path") -> Path:
        """``path`` (relative to the root, or absolute) as an absolute path inside the root.

        Symbolic links are followed first, so a link pointing out of the root is refused too.

        Raises:
            CnnhubError: the path lies outside the root.
        """
        text = str(path).strip()
        if not text:
            raise CnnhubError(f"`{what}` is empty: choose a path under {self.root}.")
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = candidate.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise CnnhubError(
                f"`{what}` must lie inside the studio's root folder {self.root}. "
                f"Received: {what}={text!r}"
            )
        return resolved

    def folder(self, path: str | os.PathLike, what: str = "folder") -> Path:
        """:meth:`resolve`, and the path must be an existing folder."""
        resolved = self.resolve(path, what)
        if not resolved.is_dir():
            raise CnnhubError(
                f"`{what}` must be an existing folder under {self.root}. Received: {what}={path!r}"
            )
        return resolved

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the root (``.`` for the root itself), for display."""
        rel = Path(path).resolve().relative_to(self.root)
        return str(rel) if str(rel) != "." else "."

    def data_folders(self, depth: int = 3) -> list[str]:
        """Folders and dataset files (CSV, NPZ, CIFAR, IDX) under the root, relative, up to
        ``depth`` levels: the data picker's choices.

        Hidden folders, the model repository and the studio's own folder are left out.
        """
        found: list[str] = []
        for current, dirs, files in os.walk(self.root):
            level = len(Path(current).relative_to(self.root).parts)
            dirs[:] = sorted(
                d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS
            )
            if level >= depth:
                dirs[:] = []
            data_files = [f for f in sorted(files) if f.lower().endswith(DATA_FILE_ENDINGS)]
            for name in [*dirs, *data_files]:
                found.append(self.relative(Path(current) / name))
                if len(found) >= MAX_FOLDERS:
                    return found
        return found

    def run_folders(self) -> list[Path]:
        """Every run folder in the repository (folders with ``run_config.json``), by name."""
        from cnnhub.run_folder import RUN_CONFIG

        if not self.repository.is_dir():
            return []
        return sorted(
            p for p in self.repository.iterdir() if p.is_dir() and (p / RUN_CONFIG).exists()
        )

    def run(self, name: str) -> Path:
        """The run folder ``name`` of the repository (a name, not a path)."""
        text = str(name or "").strip()
        if not text or "/" in text or "\\" in text or text in (".", ".."):
            raise CnnhubError(f"Choose a run first. Received: run={text!r}")
        path = self.resolve(self.repository / text, "run")
        if not path.is_dir():
            raise CnnhubError(f"Run folder not found: {path}. Received: run={text!r}")
        return path
