"""TensorFlow's side of image decoding: the one decode op of the training pipeline, and the
scan's check that this op accepts a file.

Pillow and TensorFlow's libjpeg/libpng wrappers disagree on damaged files: in a seeded fuzz of
corrupted noise JPEGs about half of those Pillow decodes make ``tf.io.decode_jpeg`` fail with
``jpeg::Uncompress failed``, which would stop training mid-epoch. So
:func:`cnnhub.data.scan.scan_images` decodes every file the pipeline sends to TensorFlow with
:func:`decode_bytes` itself (:func:`rejected`) and leaves out those it rejects.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence


def decode_bytes(raw, channels: int):
    """Decode an encoded image (a scalar string tensor) to uint8 (H, W, channels).

    JPEG goes through ``decode_jpeg`` with ``INTEGER_ACCURATE``, which matches Pillow
    (:func:`cnnhub.data.images.load_image`) exactly, so training, prediction and export all see the
    same pixels; PNG, GIF, BMP and WEBP through ``decode_image`` (first frame of an animation).
    """
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    return tf.cond(
        tf.io.is_jpeg(raw),
        lambda: tf.io.decode_jpeg(raw, channels=channels, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(raw, channels=channels, expand_animations=False),
    )


def path_tensor_values(paths: Sequence[str]) -> list[bytes]:
    """File paths as the bytes TensorFlow must open: ``os.fsencode``, so names that are not
    valid UTF-8 (held as lone surrogates in Python) reach the file system unchanged."""
    return [os.fsencode(p) for p in paths]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (libjpeg prints "Corrupt JPEG data: ..." there for each bad
    file it is shown; the scan reports those files itself)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded use): nothing to silence
        yield
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _message(exc: Exception) -> str:
    """TensorFlow's message without the op decoration (``{{function_node ...}}``, ``[Op:...]``)."""
    text = getattr(exc, "message", "") or str(exc)
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\].*$", "", text)
    return " ".join(text.split()) or type(exc).__name__


def rejected(paths: Sequence[str], channels: int) -> dict[str, str]:
    """The files among ``paths`` that :func:`decode_bytes` fails on, with TensorFlow's message.

    All files are decoded in parallel through ``tf.data``; ``ignore_errors`` drops the failing
    ones from the stream, which names them by their missing index. Those few are decoded again
    one by one for the message.
    """
    if not paths:
        return {}  # without importing TensorFlow (a fully cached scan needs none)
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    encoded = path_tensor_values(paths)

    def check(index, path):
        image = decode_bytes(tf.io.read_file(path), channels)
        return index, tf.shape(image)[0]

    dataset = (
        tf.data.Dataset.from_tensor_slices(encoded)
        .enumerate()
        .map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
        .batch(1024)
    )
    decoded: set[int] = set()
    with _quiet_stderr():
        for indices, _ in prefetched(dataset).as_numpy_iterator():
            decoded.update(int(i) for i in indices)
        out: dict[str, str] = {}
        for i in sorted(set(range(len(paths))) - decoded):
            try:
                decode_bytes(tf.io.read_file(encoded[i]), channels)
            except (tf.errors.OpError, ValueError) as exc:
                out[paths[i]] = _message(exc)
    return out


def prefetched(dataset):
    """``dataset`` with prefetching, and without tf.data's autotuning model thread.

    Keras makes a new iterator every epoch and destroying the old one joins its autotuning
    thread, which (TensorFlow 2.21) first sleeps out its optimisation period: up to 50 s of
    idle machine at every epoch start of the Fashion-MNIST recipe (benchmarks/README.md,
    "Epoch stalls"). Without the model thread an ``AUTOTUNE`` map runs one call per core (at
    most 16) and prefetch buffers still grow when the consumer waits.
    """
    import tensorflow as tf  # lazy: keeps --help free of TensorFlow

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
