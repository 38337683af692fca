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
Truncated JPEGs and PNGs (even just a missing end marker) make TF raise, and so do many
damaged JPEGs that Pillow decodes without complaint; that is why the scan decodes every file
with the decoder the pipeline will use for it (:mod:`cnnhub.data.tf_images` or :func:`load_image`)
before a run starts.

Paths are ``str`` as ``os.scandir`` gives them: a name that is not valid UTF-8 holds lone
surrogates (``surrogateescape``), goes to TensorFlow as ``os.fsencode`` bytes, to files as
its original bytes (:mod:`cnnhub.atomic`) and to the terminal escaped
(:func:`cnnhub.display.printable`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL
from PIL import Image, ImageOps

from cnnhub.display import warn
from cnnhub.errors import CnnhubError

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
"""File name endings treated as images (compared lower-cased, so ``.JPG`` counts)."""

IGNORED_FOLDERS: frozenset[str] = frozenset({"__MACOSX"})
"""Folder names skipped besides hidden ones (macOS zip archives carry a ``__MACOSX`` folder)."""

SPLIT_ROLES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "valid",
    "valid": "valid",
    "validation": "valid",
    "test": "test",
    "testing": "test",
}
"""Folder names (lower-cased) that name a dataset split, and the split each one is."""

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


def within(path: str, folder: str) -> bool:
    """Whether the real path ``path`` is ``folder`` or lies inside it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def walk_images(folder: str | os.PathLike, others: Sequence[str | os.PathLike] = ()) -> list[str]:
    """Every image file under ``folder``, recursively, sorted: the one walk of every command.

    Only regular files count (a FIFO, socket or device named ``x.jpg`` would block or fail
    the decoder); hidden files and folders (``.``-prefixed) and ``__MACOSX`` are skipped.
    Folder links are followed, each real folder once, so link loops end. A folder is skipped
    with a warning when it leads outside the tree in a way that would mix classes: a link to
    a parent of ``folder`` (the whole dataset would come in), or a folder whose real path is
    inside one of ``others`` (the other class folders: those images belong to that class).

    Raises:
        CnnhubError: a folder cannot be listed.
    """

    folder = os.fspath(folder)
    top = os.path.realpath(folder)
    other_reals = [os.path.realpath(os.fspath(o)) for o in others]
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
                target = os.path.realpath(entry.path)
                if target != top and within(top, target):
                    warn(
                        f"skipped the folder link {entry.path} -> {target}: it leads back to a "
                        f"parent of {folder} and would bring in the whole tree above it."
                    )
                    continue
                inside = next((o for o in other_reals if within(target, o)), None)
                if inside is not None:
                    warn(
                        f"skipped the folder {entry.path}: it leads into {inside}, another class "
                        "folder; an image belongs to one class only."
                    )
                    continue
                stack.append(entry.path)
            elif entry.is_file() and is_image_file(entry.name):  # is_file: regular files only
                found.append(entry.path)
    return sorted(found)


def split_folders(root: str | os.PathLike) -> dict[str, str]:
    """``{folder name: path}`` of the splits when every subfolder of ``root`` is named like one
    (``train``, ``valid``/``validation``/``val``, ``test``, ...; see :data:`SPLIT_ROLES`),
    training first, then validation, then test; empty otherwise (classes, or no subfolders)."""
    root = os.fspath(root)
    try:
        names = [e.name for e in os.scandir(root) if e.is_dir() and not _skip_entry(e.name)]
    except OSError:
        return {}
    if not names or any(name.lower() not in SPLIT_ROLES for name in names):
        return {}
    order = {"train": 0, "valid": 1, "test": 2}
    names.sort(key=lambda name: (order[SPLIT_ROLES[name.lower()]], name))
    return {name: os.path.join(root, name) for name in names}


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
    if split_folders(root):
        raise CnnhubError(
            f"The subfolders of `{root}` look like dataset splits ({', '.join(class_names)}), not "
            f"classes. Pass the folder of one split instead, e.g. "
            f"`{os.path.join(root, class_names[0])}`. Received: root={root!r}"
        )
    folders = [os.path.join(root, name) for name in class_names]
    _check_distinct_class_folders(root, class_names, folders)
    samples: list[tuple[str, int]] = []
    empty: list[str] = []
    for index, name in enumerate(class_names):
        others = folders[:index] + folders[index + 1 :]
        files = walk_images(folders[index], others)
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


def _check_distinct_class_folders(root: str, names: list[str], folders: list[str]) -> None:
    """Refuse class folders that are (links to) the data folder, a parent, or each other."""
    root_real = os.path.realpath(root)
    by_real: dict[str, str] = {}
    for name, folder in zip(names, folders):
        real = os.path.realpath(folder)
        if within(root_real, real):
            raise CnnhubError(
                f"The class folder `{folder}` is a link to `{real}`, the data folder itself or a "
                f"parent of it, so it is not a class. Remove the link. Received: root={root!r}"
            )
        if real in by_real:
            raise CnnhubError(
                f"The class folders {by_real[real]!r} and {name!r} in `{root}` are the same "
                f"folder `{real}` (a link); an image belongs to one class only. Remove one. "
                f"Received: root={root!r}"
            )
        by_real[real] = name


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
    cannot even open the file, or it is not a regular file (a FIFO would block the opening).
    """
    _check_channels(channels)
    why = not_regular_reason(path)
    if why is not None:  # opening a FIFO would block
        raise UnreadableImage(why, path)
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
    why = not_regular_reason(path)
    if why is not None:
        raise UnreadableImage(why, path)
    try:
        try:
            array = _pillow_decode(path, size, channels, scaled=size is not None)
        except Exception:
            if size is None:
                raise
            # libjpeg's scaled decoding fails on some damaged files that it decodes at full
            # size, which is what the scan checks (scan_images): fall back to that.
            array = _pillow_decode(path, size, channels, scaled=False)
    except Exception as exc:
        raise UnreadableImage(_reason_from_exception(path, exc), path) from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def _pillow_decode(
    path: str | os.PathLike, size: tuple[int, int] | None, channels: int, scaled: bool
) -> np.ndarray:
    """:func:`load_image`'s decoding; ``scaled`` lets libjpeg decode a JPEG at a reduced size."""
    with Image.open(path) as img:
        if img.format in ("JPEG", "MPO"):
            draft_size = None
            if size is not None and scaled:
                height, width = size
                if _orientation(img) in (5, 6, 7, 8):  # stored sideways: swap the target
                    height, width = width, height
                draft_size = (width, height)
            img.draft("L" if channels == 1 else "RGB", draft_size)
        # Decode first, so that a damaged file fails here: exif_transpose decodes too, and
        # after its failure (taken below for malformed EXIF) a second load() returns the
        # partly decoded pixels without complaint.
        img.load()
        try:
            out = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - malformed EXIF: keep the image as stored
            out = img
        out = _to_mode(out, channels)
        if size is not None and out.size != (size[1], size[0]):
            out = out.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(out, dtype=np.uint8)


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


def not_regular_reason(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be opened as an image without risk, or None for a regular file.

    Opening a FIFO blocks until something writes to it, and a device may never end, so every
    decode checks this first (links are followed).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
    return f"not a regular file ({kind})"
