"""cnnhub.data.images: every fixture is generated here with Pillow/numpy (no downloads)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import PIL
import pytest
import tensorflow as tf
from PIL import Image, JpegImagePlugin

from cnnhub.data import scan, tf_images
from cnnhub.data.images import (
    IMAGE_EXTENSIONS,
    UnreadableImage,
    is_image_file,
    list_class_folder,
    load_image,
    needs_pil,
)
from cnnhub.data.scan import ScanResult, scan_images, write_skipped
from cnnhub.errors import CnnhubError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _rgb(path, size=(8, 6), colour=RED, fmt=None, **kwargs):
    Image.new("RGB", size, colour).save(path, fmt, **kwargs)
    return str(path)


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _marked_jpeg(path, orientation: int) -> str:
    """32 wide x 16 high, black, with a white 8x4 block in the stored top-left corner."""
    img = Image.new("RGB", (32, 16), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 8, 4))
    img.save(path, "JPEG", quality=100, exif=_exif(orientation))
    return str(path)


def _truncated_jpeg(path) -> str:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, "JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return str(path)


# --------------------------------------------------------------------------- listing


def test_extensions_case_insensitive_and_hidden_files():
    assert IMAGE_EXTENSIONS == {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
    assert is_image_file("a/B.JPG") and is_image_file("x.WebP") and is_image_file("y.jpeg")
    assert not is_image_file("notes.txt") and not is_image_file(".hidden.png")
    assert not is_image_file("scan.tiff")


def test_list_class_folder_sorted_recursive_and_ignores_junk(tmp_path):
    for cls in ("zebra", "café au lait", "猫"):
        (tmp_path / cls / "nested" / "deeper").mkdir(parents=True)
        _rgb(tmp_path / cls / "b.png")
        _rgb(tmp_path / cls / "A.JPG", fmt="JPEG")
        _rgb(tmp_path / cls / "nested" / "deeper" / "c.bmp")
        (tmp_path / cls / "notes.txt").write_text("not an image")
        (tmp_path / cls / ".DS_Store").write_bytes(b"\x00\x01")
        (tmp_path / cls / ".ipynb_checkpoints").mkdir()
        _rgb(tmp_path / cls / ".ipynb_checkpoints" / "b-checkpoint.png")
        _rgb(tmp_path / cls / "._resource.png")
    (tmp_path / ".hidden_class").mkdir()
    _rgb(tmp_path / ".hidden_class" / "x.png")
    (tmp_path / "__MACOSX").mkdir()
    _rgb(tmp_path / "loose.png")

    classes, samples = list_class_folder(tmp_path)

    assert classes == sorted(["zebra", "café au lait", "猫"])
    assert len(samples) == 9
    for index, cls in enumerate(classes):
        mine = [os.path.relpath(p, tmp_path) for p, label in samples if label == index]
        assert mine == [
            os.path.join(cls, "A.JPG"),
            os.path.join(cls, "b.png"),
            os.path.join(cls, "nested", "deeper", "c.bmp"),
        ]
    assert all(os.path.isfile(p) for p, _ in samples)


def test_list_class_folder_errors(tmp_path):
    with pytest.raises(CnnhubError, match="does not exist"):
        list_class_folder(tmp_path / "missing")
    _rgb(tmp_path / "flat.png")
    with pytest.raises(CnnhubError, match="no class subfolders.*1 image files"):
        list_class_folder(tmp_path)
    (tmp_path / "cat").mkdir()
    _rgb(tmp_path / "cat" / "1.png")
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "readme.txt").write_text("x")
    with pytest.raises(CnnhubError, match=r"'dog'.*no image files.*Received: root="):
        list_class_folder(tmp_path)
    splits = tmp_path / "splits"
    for name in ("train", "test"):
        (splits / name / "cat").mkdir(parents=True)
        _rgb(splits / name / "cat" / "1.png")
    with pytest.raises(CnnhubError, match="look like dataset splits"):
        list_class_folder(splits)


# --------------------------------------------------------------------------- decoding


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.shape == (8, 16, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - RED).max() <= 3
    assert needs_pil(path)


def test_grayscale_jpeg_channels(tmp_path):
    path = tmp_path / "gray.jpg"
    Image.new("L", (10, 6), 100).save(path, "JPEG", quality=100)
    rgb = load_image(path)
    assert rgb.shape == (6, 10, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert abs(int(rgb[0, 0, 0]) - 100) <= 1
    gray = load_image(path, channels=1)
    assert gray.shape == (6, 10, 1) and abs(int(gray[0, 0, 0]) - 100) <= 1
    assert not needs_pil(path)


def test_rgb_to_single_channel(tmp_path):
    path = _rgb(tmp_path / "g.png", colour=(0, 255, 0))
    out = load_image(path, channels=1)
    assert out.shape == (6, 8, 1)
    assert out[0, 0, 0] == 150  # ITU-R 601 luma: 0.587 * 255, rounded by Pillow
    assert not needs_pil(path, channels=1)


def test_sixteen_bit_png_divides_by_257(tmp_path):
    values = np.array([[0, 128, 129, 257 * 100], [257 * 100 + 128, 257 * 100 + 129, 65280, 65535]])
    path = tmp_path / "deep.png"
    Image.fromarray(values.astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    out = load_image(path)
    assert out.shape == (2, 4, 3)
    expected = np.array([[0, 0, 1, 100], [100, 101, 254, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    np.testing.assert_array_equal(out[..., 2], expected)
    np.testing.assert_array_equal(load_image(path, channels=1)[..., 0], expected)
    assert needs_pil(path)


def test_palette_png_transparency_composited_on_white(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((1, 2), 1)
    path = tmp_path / "pal.png"
    img.save(path, transparency=0)
    out = load_image(path)
    assert tuple(out[2, 1]) == BLUE
    assert tuple(out[0, 0]) == (255, 255, 255)  # transparent red -> white
    assert needs_pil(path)


def test_rgba_composited_on_white(tmp_path):
    array = np.zeros((2, 3, 4), dtype=np.uint8)
    array[0, 0] = (255, 0, 0, 255)  # opaque red
    array[0, 1] = (255, 0, 0, 0)  # fully transparent red
    array[0, 2] = (0, 0, 0, 128)  # half-transparent black
    array[1] = (0, 255, 0, 255)
    path = tmp_path / "rgba.png"
    Image.fromarray(array, "RGBA").save(path)
    out = load_image(path)
    assert tuple(out[0, 0]) == RED
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert all(abs(int(v) - 127) <= 1 for v in out[0, 2])
    assert tuple(out[1, 1]) == GREEN
    assert needs_pil(path)


@pytest.mark.parametrize(
    ("orientation", "rows", "cols"),
    [(6, slice(0, 8), slice(12, 16)), (8, slice(24, 32), slice(0, 4))],
)
def test_exif_orientation_applied(tmp_path, orientation, rows, cols):
    path = _marked_jpeg(tmp_path / f"rot{orientation}.jpg", orientation)
    out = load_image(path)
    assert out.shape == (32, 16, 3)  # stored 32 wide x 16 high, shown rotated a quarter turn
    marker = np.zeros(out.shape[:2], dtype=bool)
    marker[rows, cols] = True
    assert out[marker].mean() > 200
    assert out[~marker].mean() < 40
    assert needs_pil(path)
    resized = load_image(path, size=(16, 8))  # draft target is swapped for sideways storage
    assert resized.shape == (16, 8, 3)


def test_exif_orientation_one_is_tf_safe(tmp_path):
    path = _marked_jpeg(tmp_path / "upright.jpg", 1)
    assert load_image(path).shape == (16, 32, 3)
    assert not needs_pil(path)


def test_bmp_variants(tmp_path):
    rgb = _rgb(tmp_path / "rgb.bmp", colour=(10, 20, 30))
    assert tuple(load_image(rgb)[0, 0]) == (10, 20, 30)
    assert not needs_pil(rgb)
    assert needs_pil(rgb, channels=1)
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    pal.save(tmp_path / "pal.bmp")
    assert tuple(load_image(tmp_path / "pal.bmp")[0, 0]) == (200, 100, 50)
    assert needs_pil(tmp_path / "pal.bmp")  # TF reads palette indices, not colours
    Image.new("1", (4, 4), 1).save(tmp_path / "bits.bmp")
    assert needs_pil(tmp_path / "bits.bmp")  # TF fails on 1-bit BMP
    assert load_image(tmp_path / "bits.bmp").max() == 255


def test_webp(tmp_path):
    plain = _rgb(tmp_path / "p.webp", colour=(0, 0, 255), lossless=True)
    assert tuple(load_image(plain)[2, 3]) == BLUE
    assert not needs_pil(plain)
    assert needs_pil(plain, channels=1)  # TF: "WebP only supports 3 or 4 channels"
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "a.webp", lossless=True)
    assert tuple(load_image(tmp_path / "a.webp")[0, 0]) == (255, 255, 255)
    assert needs_pil(tmp_path / "a.webp")
    frames = [Image.new("RGB", (4, 4), c) for c in (RED, GREEN)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], lossless=True)
    assert tuple(load_image(tmp_path / "anim.webp")[0, 0]) == RED
    assert needs_pil(tmp_path / "anim.webp")


def test_animated_gif_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (6, 4), c) for c in (RED, GREEN, BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    out = load_image(path)
    assert out.shape == (4, 6, 3)
    assert (out.reshape(-1, 3) == RED).all()
    assert not needs_pil(path)
    assert needs_pil(path, channels=1)
    trns = Image.new("P", (4, 4), 0)
    trns.putpalette([0, 255, 0] * 256)
    trns.save(tmp_path / "trns.gif", transparency=0)
    assert tuple(load_image(tmp_path / "trns.gif")[0, 0]) == (255, 255, 255)
    assert needs_pil(tmp_path / "trns.gif")


def test_plain_files_are_tf_safe(tmp_path):
    assert not needs_pil(_rgb(tmp_path / "a.jpg", fmt="JPEG"))
    assert not needs_pil(_rgb(tmp_path / "a.png"))
    Image.new("L", (4, 4), 9).save(tmp_path / "l.png")
    assert not needs_pil(tmp_path / "l.png", channels=1)


def test_tiff_named_jpg_goes_to_pil(tmp_path):
    path = _rgb(tmp_path / "actually_tiff.jpg", fmt="TIFF", colour=GREEN)
    assert needs_pil(path)
    assert tuple(load_image(path)[0, 0]) == GREEN


def test_large_jpeg_uses_draft(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    img = Image.new("RGB", (6000, 4000), RED)
    img.paste(BLUE, (3000, 0, 6000, 4000))
    img.save(path, "JPEG", quality=75)
    drafted = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    out = load_image(path, size=(64, 64))
    assert out.shape == (64, 64, 3)
    assert drafted == [(750, 500)]  # decoded at 1/8 scale, never below the target
    assert np.abs(out[:, :20].astype(int) - RED).max() <= 8
    assert np.abs(out[:, -20:].astype(int) - BLUE).max() <= 8


def test_resize_shape_and_bilinear(tmp_path):
    path = _rgb(tmp_path / "r.png", size=(40, 20), colour=(30, 60, 90))
    out = load_image(path, size=(10, 5))
    assert out.shape == (10, 5, 3)
    assert (out == (30, 60, 90)).all()
    with pytest.raises(CnnhubError, match="`size` must be"):
        load_image(path, size=(10,))
    with pytest.raises(CnnhubError, match="`channels` must be 1 or 3"):
        load_image(path, channels=4)


def test_unreadable_files_raise_specific_error(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello, I am not a picture\n")
    broken = _truncated_jpeg(tmp_path / "cut.jpg")
    for path in (tmp_path / "empty.png", tmp_path / "text.jpg", broken, tmp_path / "gone.png"):
        with pytest.raises(UnreadableImage) as info:
            load_image(path)
        assert isinstance(info.value, CnnhubError)
        assert info.value.reason and str(path) in str(info.value)
    with pytest.raises(UnreadableImage, match="contains text"):
        needs_pil(tmp_path / "text.jpg")
    with pytest.raises(UnreadableImage, match=r"empty file \(0 bytes\)"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(UnreadableImage, match="truncated"):
        load_image(broken, size=(8, 8))


# --------------------------------------------------------------------------- scanning


def _scan_fixture(tmp_path):
    good = [
        _rgb(tmp_path / "ok.jpg", fmt="JPEG"),
        _marked_jpeg(tmp_path / "rotated.jpg", 6),
        _rgb(tmp_path / "ok.png", size=(5, 7)),
    ]
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("definitely,not,an,image\n1,2,3\n")
    bad = [
        _truncated_jpeg(tmp_path / "truncated.jpg"),
        str(tmp_path / "zero.png"),
        str(tmp_path / "text.jpg"),
        str(tmp_path / "missing.png"),
    ]
    return good, bad


def test_scan_sorts_files_and_gives_reasons(tmp_path):
    good, bad = _scan_fixture(tmp_path)
    order = [bad[0], good[0], bad[1], good[1], bad[2], good[2], bad[3]]
    result = scan_images(order, workers=2)
    assert isinstance(result, ScanResult)
    assert result.ok == good
    reasons = dict(result.skipped)
    assert list(reasons) == bad
    assert "truncated" in reasons[bad[0]]
    assert reasons[bad[1]] == "empty file (0 bytes)"
    assert "text" in reasons[bad[2]]
    assert reasons[bad[3]] == "file not found"
    assert result.needs_pil == {good[1]}
    assert result.sizes[good[2]] == (7, 5)
    assert result.modes[good[0]] == "RGB" and result.formats[good[0]] == "JPEG"


def test_scan_png_truncation_detected(tmp_path):
    path = tmp_path / "cut.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-20])
    result = scan_images([str(path)])
    assert result.ok == [] and "truncated" in result.skipped[0][1].lower()


def test_scan_cache_skips_unchanged_files(tmp_path, monkeypatch):
    good, bad = _scan_fixture(tmp_path)
    calls = []
    original = scan._inspect_file

    def counting(path):
        calls.append(path)
        return original(path)

    decoded = []  # files fully decoded by the pipeline's decoder (TF or Pillow)
    real_rejected, real_pillow = tf_images.rejected, scan._pillow_reason
    monkeypatch.setattr(scan, "_inspect_file", counting)
    monkeypatch.setattr(
        tf_images, "rejected", lambda paths, ch: decoded.extend(paths) or real_rejected(paths, ch)
    )
    monkeypatch.setattr(
        scan, "_pillow_reason", lambda p, ch, **kw: decoded.append(p) or real_pillow(p, ch, **kw)
    )
    cache = tmp_path / "cache" / "scan.json"
    first = scan_images(good + bad, cache_file=cache)
    assert len(calls) == len(good) + len(bad) - 1  # the missing file is never opened
    assert sorted(good) == sorted(p for p in decoded if p in good)  # each good file decoded
    stamp = json.loads(cache.read_text())
    assert stamp["version"] == scan._CACHE_VERSION
    assert stamp["pillow"] == PIL.__version__ and stamp["tensorflow"] == tf.__version__

    calls.clear()
    decoded.clear()
    second = scan_images(good + bad, cache_file=cache)
    assert calls == [] and decoded == []
    assert (second.ok, second.skipped, second.needs_pil) == (
        first.ok,
        first.skipped,
        first.needs_pil,
    )
    assert (second.sizes, second.modes) == (first.sizes, first.modes)

    Image.new("RGB", (9, 9), GREEN).save(good[2])  # changed size -> decoded again
    calls.clear()
    third = scan_images(good + bad, cache_file=cache)
    assert calls == [good[2]]
    assert third.sizes[good[2]] == (9, 9)

    cache.write_text("{ not json")  # a damaged cache is ignored, then rewritten
    calls.clear()
    assert scan_images(good, cache_file=cache).ok == good
    assert len(calls) == len(good)


def test_scan_needs_pil_depends_on_channels(tmp_path):
    gif = tmp_path / "g.gif"
    Image.new("RGB", (4, 4), RED).save(gif)
    assert scan_images([str(gif)]).needs_pil == set()
    assert scan_images([str(gif)], channels=1).needs_pil == {str(gif)}


def test_write_skipped(tmp_path):
    run = tmp_path / "run"
    target = run / "skipped_files.csv"
    assert write_skipped(target, [("data/ünïcode, name.jpg", "empty file (0 bytes)")]) == target
    frame = pd.read_csv(target)
    assert list(frame.columns) == ["path", "reason"]
    assert frame.values.tolist() == [["data/ünïcode, name.jpg", "empty file (0 bytes)"]]
    assert [p.name for p in run.iterdir()] == ["skipped_files.csv"]  # no temp file left
    write_skipped(target, [])
    assert pd.read_csv(target).empty
