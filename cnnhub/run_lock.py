"""One writer per run folder: an advisory lock that a killed process never leaves stuck.

The lock is ``fcntl.flock`` on ``<run>/.cnnhub.lock``. The kernel drops a flock when its holder
exits, however it exits (SIGKILL, OOM killer, power loss), so a stale lock file is harmless: the
next command locks it again. The file holds the holder's PID, for the refusal message only.

A command holds the lock from before it writes anything until it ends (``release_all``); a
process may take the same folder's lock again (training scores its test data while it holds
its run's lock). Releasing removes the file (while still holding the lock), so a finished
command leaves the folder as it found it; ``acquire`` checks that the file it locked is still
the one on disk, which closes the race with such a removal.

Where ``fcntl`` does not exist (Windows) locking is skipped.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from cnnhub.errors import CnnhubError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".cnnhub.lock"

_held: dict[Path, tuple[int, int]] = {}  # folder -> (file descriptor, times acquired)


def _key(folder: str | os.PathLike) -> Path:
    return Path(folder).resolve()


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


def _refuse(folder: Path, lock: Path) -> CnnhubError:
    return CnnhubError(
        f"Run folder {folder} is in use by {_holder(lock)} (one command writes a run at a time). "
        f"Wait for it to finish, or stop it first. Received: run={str(folder)!r}"
    )


def acquire(folder: str | os.PathLike) -> None:
    """Lock ``folder`` for this process, or raise CnnhubError when another process holds it."""
    key = _key(folder)
    if key in _held:
        fd, count = _held[key]
        _held[key] = (fd, count + 1)
        return
    if fcntl is None:  # pragma: no cover
        _held[key] = (-1, 1)
        return
    lock = key / LOCK_FILE
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            raise CnnhubError(
                f"Run folder not found: {key}. Received: run={str(folder)!r}"
            ) from None
        except OSError as exc:
            raise CnnhubError(
                f"Cannot lock run folder {key}: {exc.strerror or exc}. Pass a writable run "
                f"folder. Received: run={str(folder)!r}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _refuse(key, lock) from None
            raise
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode("ascii"))
    _held[key] = (fd, 1)


def release(folder: str | os.PathLike) -> None:
    """Undo one ``acquire``; the last one removes the lock file and unlocks."""
    key = _key(folder)
    if key not in _held:
        return
    fd, count = _held.pop(key)
    if count > 1:
        _held[key] = (fd, count - 1)
        return
    if fd >= 0:
        (key / LOCK_FILE).unlink(missing_ok=True)
        os.close(fd)


def release_all() -> None:
    """Release every lock this process holds (a command's end)."""
    for key in list(_held):
        _held[key] = (_held[key][0], 1)
        release(key)


def forget(folder: str | os.PathLike) -> None:
    """Drop the lock of a folder this process has deleted (``--overwrite``)."""
    key = _key(folder)
    if key in _held:
        fd, _ = _held.pop(key)
        if fd >= 0:
            os.close(fd)


@contextlib.contextmanager
def locked(folder: str | os.PathLike) -> Iterator[None]:
    """Hold ``folder``'s lock for the block (re-entrant within one process)."""
    acquire(folder)
    try:
        yield
    finally:
        release(folder)


def lock_tree(folder: str | os.PathLike) -> None:
    """Lock ``folder`` and every run folder under it (a cross-validation parent), all or none."""
    root = Path(folder)
    taken: list[Path] = []
    try:
        for path in [root, *(p.parent for p in sorted(root.rglob(LOCK_FILE)) if p.parent != root)]:
            acquire(path)
            taken.append(path)
    except CnnhubError:
        for path in taken:
            release(path)
        raise
