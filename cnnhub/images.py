"""Find, check and decode image files so that one bad file never crashes a run.

The training pipeline decodes most files with TensorFlow (fast, in graph) and sends the rest
through :func:`load_image` (Pillow). :func:`needs_pil` decides which way a file goes from its
header alone; :func:`scan_images` checks a whole dataset once, in parallel, remembers the
verdicts in a JSON cache, and lists the files to skip with a reason.

What TensorFlow 2.21's ``tf.io.decode_image(data, channels=C, expand_animations=False)`` gets
wrong (each case checked against Pillow 13), and so what :func:`needs_pil` routes to Pillow:

* EXIF orientation (JPEG, PNG eXIf, WEBP): ignored, the picture comes out unrotated.
* Transparency (RGBA/LA PNG, palette or colour-key ``tRNS``, GIF transparency, WEBP alpha):
  with ``channels=3`` TF drops alpha and keeps whatever colour hides under transparent pixels
  (GIF: black); :func:`load_image` composites on white instead. WEBP with alpha fails outright
  ("Number of channels requested does not match input").
* Animated WEBP fails ("WebP Animation must be 4 channel RGBA"). Animated GIF is fine (frame 0).
* BMP with 8 bits or fewer per pixel: palette BMPs decode to palette *indices* instead of
  colours, 1-bit BMPs fail; RLE-compressed and 16-bit BMPs likewise go to Pillow.
* ``channels=1``: GIF, BMP and WEBP fail ("channels must be 0 or 3 for GIF", ...).
* 16-bit grayscale PNG: TF keeps the high byte (``v >> 8``), off by one from ``round(v / 257)``.
* CMYK JPEG: TF converts correctly (within 1 of Pillow when using accurate DCT), but these files
  are rare, so they go to Pillow to keep one well-tested conversion.
* Formats outside JPEG/PNG/GIF/BMP/WEBP (say a TIFF saved with a ``.jpg`` name) fail in TF.

TF's plain ``decode_image`` JPEG path uses a fast integer IDCT (up to about 6 levels off
Pillow); ``tf.io.decode_jpeg(..., dct_method="INTEGER_ACCURATE")`` matches Pillow exactly.
Truncated JPEGs and PNGs (even just a missing end marker) make TF raise, which is why the scan
decodes JPEGs fully and verifies PNG chunk CRCs before a run starts.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from PIL import Image, ImageOps

from cnnhub.atomic import write_csv, write_json
from cnnhub.errors import CnnhubError

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
"""File name endings treated as images (compared lower-cased, so ``.JPG`` counts)."""

IGNORED_FOLDERS: frozenset[str] = frozenset({"__MACOSX"})
"""Folder names skipped besides hidden ones (macOS zip archives carry a ``__MACOSX`` folder)."""

_SPLIT_FOLDER_NAMES = frozenset(
    {"train", "training", "test", "testing", "val", "valid", "validation"}
)

_ORIENTATION_TAG = 0x0112
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
# (format, mode) pairs TF decodes like Pillow when nothing else (alpha, orientation) applies.
_TF_MODES = {
    "JPEG": {"RGB", "L"},
    "MPO": {"RGB", "L"},  # multi-picture JPEG from cameras; TF reads the first picture
    "PNG": {"RGB", "L", "P", "1"},
    "GIF": {"P", "L", "RGB"},
    "BMP": {"RGB"},
    "WEBP": {"RGB"},
}
_CACHE_VERSION = 1


class UnreadableImage(CnnhubError):
    """An image file that cannot be decoded; ``reason`` says why in a few words."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        if self.path is None:
            message = f"Cannot decode image: {reason}."
        else:
            message = (
                f"Cannot decode image file `{self.path}`: {reason}. Replace or remove the file. "
                f"Received: path={self.path!r}"
            )
        super().__init__(message)


def is_image_file(name: str | os.PathLike) -> bool:
    """Whether a file name has an image extension and is not hidden (``.``-prefixed)."""
    base = os.path.basename(os.fspath(name))
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def _skip_entry(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_FOLDERS


def _walk_images(folder: str) -> list[str]:
    """Every image file under ``folder`` (following folder symlinks once), sorted."""
    found: list[str] = []
    seen: set[str] = set()
    stack = [folder]
    while stack:
        current = stack.pop()
        real = os.path.realpath(current)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = list(os.scandir(current))
        except OSError as exc:
            raise CnnhubError(
                f"Cannot list the folder `{current}`: {exc.strerror or exc}. Check that it exists "
                f"and is readable. Received: folder={current!r}"
            ) from exc
        for entry in entries:
            if _skip_entry(entry.name):
                continue
            if entry.is_dir():
                stack.append(entry.path)
            elif entry.is_file() and is_image_file(entry.name):
                found.append(entry.path)
    return sorted(found)


def list_class_folder(root: str | os.PathLike) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names (sorted subfolder names) and ``(path, class index)`` for every image under them.

    Images are collected recursively inside each class folder. Hidden files and folders (names
    starting with ``.``, e.g. ``.ipynb_checkpoints``, ``.DS_Store``), ``__MACOSX`` and files
    without an image extension are ignored; so are files lying directly in ``root``. Paths are
    ``os.path.join(root, ...)`` of the ``root`` given, sorted within each class.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise CnnhubError(
            f"The image folder `{root}` does not exist or is not a folder. Pass a folder with one "
            f"subfolder of images per class. Received: root={root!r}"
        )
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise CnnhubError(f"Cannot list `{root}`: {exc}. Received: root={root!r}") from exc
    class_names = [e.name for e in entries if e.is_dir() and not _skip_entry(e.name)]
    if not class_names:
        loose = sum(1 for e in entries if e.is_file() and is_image_file(e.name))
        hint = f" It holds {loose} image files directly;" if loose else ""
        raise CnnhubError(
            f"The image folder `{root}` has no class subfolders.{hint} put the images of each "
            f"class in their own subfolder (root/cat/1.jpg, root/dog/2.jpg). "
            f"Received: root={root!r}"
        )
    if {name.lower() for name in class_names} <= _SPLIT_FOLDER_NAMES:
        raise CnnhubError(
            f"The subfolders of `{root}` look like dataset splits ({', '.join(class_names)}), not "
            f"classes. Pass the folder of one split instead, e.g. "
            f"`{os.path.join(root, class_names[0])}`. Received: root={root!r}"
        )
    samples: list[tuple[str, int]] = []
    empty: list[str] = []
    for index, name in enumerate(class_names):
        files = _walk_images(os.path.join(root, name))
        if not files:
            empty.append(name)
        samples.extend((path, index) for path in files)
    if empty:
        allowed = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise CnnhubError(
            f"Class folder(s) {', '.join(repr(n) for n in empty)} in `{root}` contain no image "
            f"files (allowed extensions: {allowed}). Add images or remove the folder(s). "
            f"Received: root={root!r}"
        )
    return class_names, samples


# --------------------------------------------------------------------------- header inspection


def _orientation(img: Image.Image) -> int | None:
    """EXIF orientation from the header, without decoding pixels (None when absent or broken)."""
    if "exif" not in img.info:  # PNG's getexif() would decode the whole image to look further
        return None
    try:
        value = img.getexif().get(_ORIENTATION_TAG)
    except Exception:  # noqa: BLE001 - malformed EXIF: treat as absent, like exif_transpose fails
        return None
    return int(value) if isinstance(value, int) else None


def _header_info(img: Image.Image) -> dict[str, Any]:
    """What :func:`needs_pil` looks at, read from an opened (not yet decoded) image."""
    info: dict[str, Any] = {
        "format": img.format or "",
        "mode": img.mode,
        "height": img.size[1],
        "width": img.size[0],
        "orientation": _orientation(img),
        "transparency": img.mode in _ALPHA_MODES or "transparency" in img.info,
        "animated": bool(getattr(img, "is_animated", False)),
        "plain_bmp": False,
    }
    if info["format"] == "BMP" and len(img.tile) == 1:
        codec, _, _, args = img.tile[0]  # a plain tuple before Pillow 11
        rawmode = args[0] if isinstance(args, tuple) and args else args
        info["plain_bmp"] = codec == "raw" and rawmode in ("BGR", "BGRX")
    return info


def _info_needs_pil(info: dict[str, Any], channels: int) -> bool:
    fmt, mode = info["format"], info["mode"]
    if mode not in _TF_MODES.get(fmt, ()):
        return True  # unknown format, CMYK JPEG, 16-bit or alpha modes, palette BMP, ...
    if info["orientation"] not in (None, 1):
        return True
    if info["transparency"]:
        return True
    if fmt == "BMP" and not info["plain_bmp"]:
        return True
    if fmt == "WEBP" and info["animated"]:
        return True
    return channels == 1 and fmt in ("GIF", "BMP", "WEBP")


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise CnnhubError(f"`channels` must be 1 or 3. Received: channels={channels!r}")


def needs_pil(path: str | os.PathLike, channels: int = 3) -> bool:
    """Whether TF's ``decode_image(..., channels, expand_animations=False)`` gets this file wrong.

    Reads the header only. True for EXIF-rotated files, anything with transparency, CMYK JPEG,
    16-bit grayscale PNG, palette/RLE/16-bit BMP, animated WEBP, GIF/BMP/WEBP with
    ``channels=1`` and any format TF does not know. Raises :class:`UnreadableImage` when Pillow
    cannot even open the file.
    """
    _check_channels(channels)
    try:
        with Image.open(path) as img:
            info = _header_info(img)
    except Exception as exc:
        raise UnreadableImage(_reason_from_exception(path, exc), path) from exc
    return _info_needs_pil(info, channels)


# --------------------------------------------------------------------------- decoding


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """16-bit (or 32-bit int / float holding 16-bit data) grayscale -> 8-bit: round(v / 257)."""
    values = np.asarray(img, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), mode="L")


def _on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    ok = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size
        )
    )
    if not ok:
        raise CnnhubError(
            "`size` must be None or a (height, width) pair of positive integers. "
            f"Received: size={size!r}"
        )
    return int(size[0]), int(size[1])


def load_image(
    path: str | os.PathLike, size: tuple[int, int] | None = None, channels: int = 3
) -> np.ndarray:
    """Decode one image to a uint8 array of shape (H, W, channels) with Pillow.

    * EXIF orientation is applied (``ImageOps.exif_transpose``); an animated GIF/WEBP gives its
      first frame.
    * Transparency (RGBA, LA, palette or colour-key ``tRNS``) is composited on **white**, so
      cut-out objects do not sit on whatever colour hides under transparent pixels.
    * CMYK JPEG -> RGB (Pillow's conversion); 16-bit grayscale PNG (mode ``I;16``, or ``I``)
      -> 8 bits as ``round(v / 257)``, so 65535 -> 255 and 257*k -> k.
    * ``channels=3`` turns grayscale into RGB; ``channels=1`` turns colour into luma (``L``).
    * ``size=(height, width)`` resizes with bilinear filtering. Pillow's bilinear filter widens
      when shrinking, so it matches ``tf.image.resize(..., "bilinear", antialias=True)`` to
      within about one grey level (not bit-exactly); with ``antialias=False`` TF aliases badly
      when shrinking more than 2x. For JPEGs, ``Image.draft`` first lets libjpeg decode at
      1/2, 1/4 or 1/8 scale (never below ``size``), so a 6000x4000 photo loads fast.

    Raises :class:`UnreadableImage` for a file that cannot be decoded.
    """
    _check_channels(channels)
    size = _check_size(size)
    try:
        with Image.open(path) as img:
            if img.format in ("JPEG", "MPO"):
                draft_size = None
                if size is not None:
                    height, width = size
                    if _orientation(img) in (5, 6, 7, 8):  # stored sideways: swap the target
                        height, width = width, height
                    draft_size = (width, height)
                img.draft("L" if channels == 1 else "RGB", draft_size)
            try:
                out = ImageOps.exif_transpose(img)
            except Exception:  # noqa: BLE001 - malformed EXIF: keep the image as stored
                out = img
            out.load()
            out = _to_mode(out, channels)
            if size is not None and out.size != (size[1], size[0]):
                out = out.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(out, dtype=np.uint8)
    except UnreadableImage:
        raise
    except Exception as exc:
        raise UnreadableImage(_reason_from_exception(path, exc), path) from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    if img.mode in _SIXTEEN_BIT_MODES:
        img = _to_8bit_gray(img)
    elif img.mode in _ALPHA_MODES or "transparency" in img.info:
        img = _on_white(img)
    target = "L" if channels == 1 else "RGB"
    if img.mode != target:
        img = img.convert(target)
    return img


# --------------------------------------------------------------------------- scanning


def _reason_from_exception(path: str | os.PathLike, exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
    except OSError:
        pass
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large to decode safely ({text})"
    if isinstance(exc, PIL.UnidentifiedImageError):
        try:
            with open(path, "rb") as handle:
                head = handle.read(512)
        except OSError:
            head = b""
        if _looks_like_text(head):
            return "not an image: the file contains text"
        return "not a recognised image format (JPEG, PNG, GIF, BMP, WEBP)"
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"corrupt or truncated image ({detail})"


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t\f" for ch in decoded)


def _inspect_file(path: str) -> dict[str, Any]:
    """Open and decode enough of ``path`` to be sure a decoder will not fail on it.

    JPEG: fully entropy-decoded at 1/8 scale (``draft``), which catches truncation cheaply.
    PNG: ``verify()`` walks every chunk and checks its CRC. Others: the first frame is loaded.
    Returns the header info plus ``ok`` and ``reason``.
    """
    try:
        if os.path.getsize(path) == 0:
            return {"ok": False, "reason": "empty file (0 bytes)"}
        with Image.open(path) as img:
            info = _header_info(img)
            if info["format"] == "PNG":
                img.verify()
            else:
                if info["format"] in ("JPEG", "MPO"):
                    img.draft(None, (1, 1))
                img.load()
    except Exception as exc:  # noqa: BLE001 - every decoder failure becomes a skip reason
        return {"ok": False, "reason": _reason_from_exception(path, exc)}
    info.update(ok=True, reason=None)
    return info


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
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _read_cache(cache_file: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
    if cache_file is None or not os.path.isfile(cache_file):
        return {}
    try:
        with open(cache_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}  # a damaged cache only costs a rescan
    if (
        not isinstance(data, dict)
        or data.get("version") != _CACHE_VERSION
        or data.get("pillow") != PIL.__version__
        or not isinstance(data.get("entries"), dict)
    ):
        return {}
    return data["entries"]


def scan_images(
    paths: Iterable[str | os.PathLike],
    workers: int | None = None,
    cache_file: str | os.PathLike | None = None,
    channels: int = 3,
) -> ScanResult:
    """Check every file once, in a thread pool, and sort it into ok / skipped / needs-Pillow.

    Missing, empty, text and truncated files land in ``skipped`` with a reason. ``workers``
    defaults to ``min(8, cpu count)``; Pillow releases the GIL while decoding. With
    ``cache_file`` (JSON), verdicts are stored per absolute path with the file's size and
    mtime, and a later scan decodes only files that are new or changed. ``channels`` is what
    the pipeline will ask TF for; it changes which files need Pillow.
    """
    _check_channels(channels)
    paths = [os.fspath(p) for p in paths]
    entries = _read_cache(cache_file)
    verdicts: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, str, tuple[int, int] | None]] = []
    for i, path in enumerate(paths):
        stat = _stat_key(path)
        if stat is None:
            verdicts[i] = {"ok": False, "reason": "file not found"}
            continue
        cached = entries.get(os.path.abspath(path))
        if cached is not None and [cached.get("bytes"), cached.get("mtime_ns")] == list(stat):
            verdicts[i] = cached
        else:
            todo.append((i, path, stat))
    if todo:
        n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
        if n_workers < 1:
            raise CnnhubError(
                f"`workers` must be a positive integer. Received: workers={workers!r}"
            )
        if n_workers == 1 or len(todo) == 1:
            results = [_inspect_file(path) for _, path, _ in todo]
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=n_workers) as pool:
                results = list(pool.map(_inspect_file, [path for _, path, _ in todo]))
        for (i, path, stat), verdict in zip(todo, results):
            verdict = dict(verdict, bytes=stat[0], mtime_ns=stat[1])
            verdicts[i] = verdict
            entries[os.path.abspath(path)] = verdict
        if cache_file is not None:
            write_json(
                cache_file,
                {"version": _CACHE_VERSION, "pillow": PIL.__version__, "entries": entries},
            )
    result = ScanResult()
    for i, path in enumerate(paths):
        verdict = verdicts[i]
        if not verdict["ok"]:
            result.skipped.append((path, verdict["reason"]))
            continue
        result.ok.append(path)
        result.sizes[path] = (verdict["height"], verdict["width"])
        result.modes[path] = verdict["mode"]
        result.formats[path] = verdict["format"]
        if _info_needs_pil(verdict, channels):
            result.needs_pil.add(path)
    return result


def write_skipped(run_dir: str | os.PathLike, skipped: Sequence[tuple[str, str]]) -> Path:
    """Write ``<run_dir>/skipped_files.csv`` (columns ``path,reason``; header only when none)."""
    import pandas as pd

    frame = pd.DataFrame([(str(p), str(r)) for p, r in skipped], columns=["path", "reason"])
    target = Path(run_dir) / "skipped_files.csv"
    write_csv(target, frame)
    return target
