"""Write files so that a crash leaves each one either complete or absent.

Every file cnnhub writes goes to a temporary name in the destination folder and is renamed
into place; ``os.replace`` is atomic on POSIX and Windows when both names share a folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    ``suffix`` defaults to the destination's full suffix (``.weights.h5``, ``.png``), because
    some writers (Keras, matplotlib) choose their format from the file name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(path.suffixes)
    tmp_path = _create_temporary(path.parent, f".{path.stem}.", f".tmp{suffix}")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def new_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Create the folder ``path`` (and missing parents) for the block's output; when the block
    fails, remove the folders created here again, so a failed command leaves nothing behind."""
    path = Path(path)
    top = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        top = candidate
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)
        raise


def _create_temporary(folder: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file with a random name in ``folder``, permissions 0666 less the umask.

    Not ``tempfile.mkstemp``: it creates files with mode 0600 whatever the umask, and the file
    is renamed into place, so every result would be readable by its owner only.
    """
    for _ in range(100):
        candidate = folder / f"{prefix}{uuid.uuid4().hex[:8]}{suffix}"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"No free temporary file name in {folder}")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``.

    File names that are not valid UTF-8 (lone surrogates from ``surrogateescape``) are written
    as their original bytes, so the text names the same file; read such a file back with
    ``errors="surrogateescape"``.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _mapping_as_dict(value: Any) -> dict:
    """JSON for a read-only mapping (e.g. :class:`cnnhub.configuration.Config`): its dict."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Atomically write ``data`` as indented UTF-8 JSON (non-ASCII kept readable).

    Lone surrogates (file names that are not valid UTF-8) are written as ``\\udcXX`` escapes:
    the file stays valid UTF-8 and ``json.load`` gives back the same string.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False, default=_mapping_as_dict)
    # Surrogates can only occur inside JSON strings, where the escape means the same code point.
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    write_text(path, text + "\n")


def write_csv(path: str | os.PathLike, frame: Any) -> None:
    """Atomically write a pandas DataFrame as CSV without its index (UTF-8; file names that
    are not valid UTF-8 as their original bytes, see :func:`write_text`)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8", errors="surrogateescape")


def save_figure(path: str | os.PathLike, figure: Any, **kwargs: Any) -> None:
    """Atomically save a matplotlib figure (format from ``path``'s suffix)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=Path(path).suffix.lstrip("."), **kwargs)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty hidden folder beside ``path``; when the block succeeds it replaces
    ``path`` and everything in it, so no file of an earlier version stays mixed in.

    A failure inside the block leaves ``path`` as it was. The swap is two renames: a crash
    between them leaves the earlier version under a hidden ``.<name>.old-*`` name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = path.parent / f".{path.name}.tmp-{tag}"
    tmp.mkdir()  # plain mkdir: the folder's mode follows the umask
    try:
        yield tmp
        old = path.parent / f".{path.name}.old-{tag}"
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
