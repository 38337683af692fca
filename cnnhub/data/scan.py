"""Check a dataset's files once and remember it: the decode check (every file through the
decoder the pipeline will use), file hashes, and their caches.

:func:`scan_source` is the decode check of a :class:`~cnnhub.data.sources.DataSource`, used by
training, evaluation and :mod:`cnnhub.data.inspect` alike.

Duplicates are exact: the SHA-1 of a file's bytes, or of the pixel array (with its shape) for
in-memory sources (CSV pixels, IDX, CIFAR, .npz). Two files with the same pixels but different
encodings are not found.

Caches: the decode check (:func:`cnnhub.data.scan.scan_images`) and the file hashes are remembered
per dataset in ``$CNNHUB_CACHE_DIR`` (default ``$XDG_CACHE_HOME/cnnhub``, i.e.
``~/.cache/cnnhub``), under ``scans/`` and ``hashes/``, one JSON file per dataset path named by
the SHA-1 of its absolute path. Entries are keyed by absolute file path, size and mtime, so a
changed file is checked again. Delete the folder to forget everything; a cache folder that
cannot be written only costs a rescan.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from stat import S_ISREG
from typing import Any

import pandas as pd
import PIL
from PIL import Image

from cnnhub.atomic import write_csv, write_json
from cnnhub.data import tf_images
from cnnhub.data.images import (
    UnreadableImage,
    _check_channels,
    _header_info,
    _info_needs_pil,
    _reason_from_exception,
    load_image,
    not_regular_reason,
)
from cnnhub.errors import CnnhubError

_CACHE_VERSION = 2


CACHE_ENV = "CNNHUB_CACHE_DIR"
_HASH_CACHE_VERSION = 1


# ---------------------------------------------------------------- caches


def cache_root() -> Path:
    """``$CNNHUB_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnnhub``, else ``~/.cache/cnnhub``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "cnnhub"


def cache_file(kind: str, origin: str | os.PathLike) -> Path | None:
    """The cache file of ``kind`` (``scans`` or ``hashes``) for the dataset at ``origin``.

    None when the cache folder cannot be created or written (caching is then skipped).
    """
    key = hashlib.sha1(os.fsencode(os.path.abspath(os.fspath(origin)))).hexdigest()[:20]
    folder = cache_root() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return folder / f"{key}.json"


def scan_source_files(paths: Sequence[str], origin: str, use_cache: bool, channels: int = 3):
    """:func:`cnnhub.data.scan.scan_images` with the per-dataset cache (module docstring)."""

    target = cache_file("scans", origin) if use_cache else None
    try:
        return scan_images(paths, cache_file=target, channels=channels)
    except OSError:  # the cache could not be written after all: scan without it
        return scan_images(paths, channels=channels)


def _sha1_file(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_hash_cache(path: Path | None) -> dict[str, list]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _HASH_CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def file_hashes(
    paths: Sequence[str], cache: Path | None = None, workers: int | None = None
) -> list[str | None]:
    """SHA-1 of each file's bytes (None for a file that cannot be read or is not a regular
    file), cached by size+mtime."""
    entries = _read_hash_cache(cache)
    out: list[str | None] = [None] * len(paths)
    todo: list[tuple[int, str, list[int]]] = []
    for i, path in enumerate(paths):
        try:
            stat = os.stat(path)
        except OSError:
            continue
        if not S_ISREG(stat.st_mode):
            continue  # a FIFO would block the read (scans skip these files anyway)
        key = [stat.st_size, stat.st_mtime_ns]
        cached = entries.get(os.path.abspath(path))
        if isinstance(cached, list) and len(cached) == 3 and cached[:2] == key:
            out[i] = cached[2]
        else:
            todo.append((i, path, key))
    if not todo:
        return out

    def one(path: str) -> str | None:
        try:
            return _sha1_file(path)
        except OSError:
            return None

    n_workers = workers or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=n_workers) as pool:
        digests = list(pool.map(one, [p for _, p, _ in todo]))
    for (i, path, key), digest in zip(todo, digests):
        out[i] = digest
        if digest is not None:
            entries[os.path.abspath(path)] = [*key, digest]
    if cache is not None:
        try:
            write_json(cache, {"version": _HASH_CACHE_VERSION, "entries": entries})
        except OSError:
            pass  # an unwritable cache only costs hashing again next time
    return out


def content_hashes(source, use_cache: bool = True) -> list[str | None]:
    """One content hash per sample of a :class:`cnnhub.data.sources.DataSource`."""
    if source.in_memory:
        shape = ",".join(map(str, source.images.shape[1:])).encode()
        return [hashlib.sha1(shape + image.tobytes()).hexdigest() for image in source.images]
    cache = cache_file("hashes", source.origin) if use_cache else None
    return file_hashes(source.paths, cache)


def _inspect_file(path: str) -> dict[str, Any]:
    """The header of ``path`` as Pillow reads it (no pixels decoded), with ``ok``/``reason``."""
    try:
        if os.path.getsize(path) == 0:
            return {"ok": False, "reason": "empty file (0 bytes)"}
        with Image.open(path) as img:
            info = _header_info(img)
    except Exception as exc:  # noqa: BLE001 - every opener failure becomes a skip reason
        return {"ok": False, "reason": _reason_from_exception(path, exc)}
    info.update(ok=True, reason=None)
    return info


def _pillow_reason(path: str, channels: int, strict: bool = False) -> str | None:
    """Why :func:`load_image` fails on ``path`` (the pipeline's Pillow path), or None.

    ``strict`` also checks a PNG's chunk CRCs and end marker, which decoding ignores: it names
    the damage in a file TensorFlow rejected.
    """
    try:
        if strict:
            with Image.open(path) as img:
                if img.format == "PNG":
                    img.verify()
        load_image(path, channels=channels)
    except UnreadableImage as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - every decoder failure becomes a skip reason
        return _reason_from_exception(path, exc)
    return None


def _decoder(info: dict[str, Any], channels: int) -> str:
    """The decoder the pipeline uses for a file with this header, and the cache key of its
    verdict: ``pillow-3``, ``tensorflow-1``, ..."""
    return f"{'pillow' if _info_needs_pil(info, channels) else 'tensorflow'}-{channels}"


@dataclass
class ScanResult:
    """Outcome of :func:`scan_images`.

    ``ok`` keeps the input order; ``skipped`` holds ``(path, reason)``; ``needs_pil`` the good
    files TF would decode wrongly; ``sizes`` maps each good path to ``(height, width)`` as
    stored (before EXIF rotation), ``modes`` to Pillow's mode and ``formats`` to its format.
    """

    ok: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    needs_pil: set[str] = field(default_factory=set)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        stat_result = os.stat(path)
    except OSError:
        return None
    return stat_result.st_size, stat_result.st_mtime_ns


def _tensorflow_version() -> str:
    """TensorFlow's version without importing it (its decoder's verdicts are cached)."""

    if "tensorflow" in sys.modules:
        return str(getattr(sys.modules["tensorflow"], "__version__", "unknown"))
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    names = metadata.packages_distributions().get("tensorflow") or []
    return metadata.version(names[0]) if names else "unknown"


def _cache_stamp() -> dict[str, Any]:
    return {
        "version": _CACHE_VERSION,
        "pillow": PIL.__version__,
        "tensorflow": _tensorflow_version(),
    }


def _read_cache(cache_file: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
    if cache_file is None or not os.path.isfile(cache_file):
        return {}
    try:
        with open(cache_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}  # a damaged cache only costs a rescan
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        return {}
    if any(data.get(key) != value for key, value in _cache_stamp().items()):
        return {}  # another cnnhub, Pillow or TensorFlow may judge files differently
    return data["entries"]


def _map(function, items: list, workers: int) -> list:
    if workers == 1 or len(items) <= 1:
        return [function(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def _tensorflow_reasons(paths: list[str], channels: int, workers: int) -> dict[str, str]:
    """The files TensorFlow's decoder rejects, each with the most useful reason."""

    found = tf_images.rejected(paths, channels)  # via the module: tests count its calls
    pillow = _map(lambda p: _pillow_reason(p, channels, strict=True), list(found), workers)
    return {
        path: own
        or f"TensorFlow's decoder rejects it ({message}) although Pillow reads it; "
        "re-saving the image usually repairs it"
        for (path, message), own in zip(found.items(), pillow)
    }


def scan_images(
    paths: Iterable[str | os.PathLike],
    workers: int | None = None,
    cache_file: str | os.PathLike | None = None,
    channels: int = 3,
) -> ScanResult:
    """Check every file once with the decoder the pipeline will use, and sort it into ok /
    skipped / needs-Pillow.

    Each file's header is read with Pillow (which decides the decoder, see
    :func:`needs_pil`); then the whole file is decoded by that decoder, as training will:
    :func:`cnnhub.data.tf_images.decode_bytes` for most files (in parallel through ``tf.data``,
    so TensorFlow is imported when there is something to check), :func:`load_image` for the
    rest (in a thread pool of ``workers``, default ``min(8, cpu count)``). Missing, empty,
    text, truncated or otherwise undecodable files, and anything that is not a regular file
    (FIFO, socket, device), land in ``skipped`` with a reason, so a run never meets them.

    With ``cache_file`` (JSON), headers and verdicts are stored per absolute path with the
    file's size and mtime, and a later scan decodes only files that are new or changed (or
    now need another decoder: ``channels``, what the pipeline asks for, changes the routing).
    """
    _check_channels(channels)
    paths = [os.fspath(p) for p in paths]
    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    if n_workers < 1:
        raise CnnhubError(f"`workers` must be a positive integer. Received: workers={workers!r}")
    entries = _read_cache(cache_file)
    changed = False
    verdicts: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, str, tuple[int, int]]] = []
    for i, path in enumerate(paths):
        why = not_regular_reason(path)
        stat_key = _stat_key(path) if why is None else None
        if stat_key is None:
            verdicts[i] = {"ok": False, "reason": why or "file not found"}
            continue
        cached = entries.get(os.path.abspath(path))
        if cached is not None and [cached.get("bytes"), cached.get("mtime_ns")] == list(stat_key):
            verdicts[i] = cached
        else:
            todo.append((i, path, stat_key))
    for (i, path, stat_key), header in zip(
        todo, _map(_inspect_file, [path for _, path, _ in todo], n_workers)
    ):
        verdicts[i] = entries[os.path.abspath(path)] = dict(
            header, bytes=stat_key[0], mtime_ns=stat_key[1], decodes={}
        )
        changed = True
    # Decode what has no verdict yet for the decoder the pipeline will use.
    unchecked: dict[str, list[int]] = {"pillow": [], "tensorflow": []}
    for i, verdict in verdicts.items():
        if verdict["ok"] and _decoder(verdict, channels) not in verdict.setdefault("decodes", {}):
            unchecked[_decoder(verdict, channels).split("-")[0]].append(i)
    pillow = _map(lambda i: _pillow_reason(paths[i], channels), unchecked["pillow"], n_workers)
    tensorflow = _tensorflow_reasons(
        [paths[i] for i in unchecked["tensorflow"]], channels, n_workers
    )
    for i, reason in zip(unchecked["pillow"], pillow):
        verdicts[i]["decodes"][_decoder(verdicts[i], channels)] = reason
    for i in unchecked["tensorflow"]:
        verdicts[i]["decodes"][_decoder(verdicts[i], channels)] = tensorflow.get(paths[i])
    changed = changed or any(unchecked.values())
    if cache_file is not None and changed:
        write_json(cache_file, {**_cache_stamp(), "entries": entries})
    result = ScanResult()
    for i, path in enumerate(paths):
        verdict = verdicts[i]
        if verdict["ok"]:
            reason = verdict["decodes"].get(_decoder(verdict, channels))
        else:
            reason = verdict["reason"]
        if reason is not None:
            result.skipped.append((path, reason))
            continue
        result.ok.append(path)
        result.sizes[path] = (verdict["height"], verdict["width"])
        result.modes[path] = verdict["mode"]
        result.formats[path] = verdict["format"]
        if _info_needs_pil(verdict, channels):
            result.needs_pil.add(path)
    return result


def write_skipped(target: str | os.PathLike, skipped: Sequence[tuple[str, str]]) -> Path:
    """Write the list of files left out (a run's ``skipped_files.csv``, see
    :mod:`cnnhub.run_folder`): columns ``path,reason``; header only when none."""

    frame = pd.DataFrame([(str(p), str(r)) for p, r in skipped], columns=["path", "reason"])
    write_csv(target, frame)
    return Path(target)


def scan_source(source, use_cache: bool = True, channels: int = 3):
    """``source`` (a DataSource) after the decode check: its unreadable files left out (listed
    in the result's ``skipped``), ``needs_pil`` and ``scan`` set. In-memory sources need no
    check and are returned as they are."""
    if source.in_memory:
        return source
    scan = scan_source_files(source.paths, source.origin, use_cache, channels)
    kept = source.drop_paths([path for path, _ in scan.skipped])
    return replace(kept, needs_pil=frozenset(scan.needs_pil), scan=scan)
