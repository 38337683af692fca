"""ImageNet weights: which file Keras fetches for a backbone, whether it is cached, fetching it.

``keras.applications`` constructors download their weights with
``keras.src.utils.file_utils.get_file(fname, origin, cache_subdir="models", file_hash=...)``
into Keras's cache (``$KERAS_HOME`` or ``~/.keras``, ``/tmp/.keras`` when that is not
writable). :func:`planned_download` learns the exact arguments of that call for a backbone and
input shape by running the constructor with ``get_file`` replaced by a recorder that stops it
there (the architecture is built, nothing is downloaded or loaded). :func:`fetch_imagenet`
then calls Keras's own ``get_file`` with them, before a run writes anything: a machine without
network fails in one line naming the URL, the file to place in the cache and ``-w none``.

:func:`cache_table` tells, per registry model, whether its file is in the cache
(:data:`IMAGENET_FILES`, the file names ``get_file`` uses at the models' default input sizes),
and :func:`fetch_imagenet` fetches one (``cnnhub weights`` and its ``--download``), so a
cache filled on a connected machine can be copied to an air-gapped one.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnhub.errors import CnnhubError
from cnnhub.keras_hooks import keras_file_utils, keras_home
from cnnhub.registry import BACKBONES, BackboneSpec

_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"
_EFFNET = "https://storage.googleapis.com/keras-applications/"

# Registry name -> (file name in the cache, URL) of the include_top=False ImageNet weights that
# keras.applications fetches at the model's default input size (Keras 3; checked against the
# constructors by tests/test_pretrained.py). NASNet's cached name differs from its URL's.
IMAGENET_FILES: dict[str, tuple[str, str]] = {
    "vgg16": ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg16/"),
    "vgg19": ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg19/"),
    "resnet50": ("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet/"),
    "resnet101": ("resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet/"),
    "resnet152": ("resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet/"),
    "resnet50v2": ("resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet/"),
    "resnet101v2": ("resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet/"),
    "resnet152v2": ("resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet/"),
    "xception": ("xception_weights_tf_dim_ordering_tf_kernels_notop.h5", "xception/"),
    "inceptionv3": ("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "inception_v3/"),
    "inceptionresnetv2": (
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "inception_resnet_v2/",
    ),
    "mobilenet": ("mobilenet_1_0_224_tf_no_top.h5", "mobilenet/"),
    "mobilenetv2": (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        "mobilenet_v2/",
    ),
    "mobilenetv3small": ("weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", "mobilenet_v3/"),
    "mobilenetv3large": ("weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", "mobilenet_v3/"),
    "densenet121": ("densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", "densenet/"),
    "densenet169": ("densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5", "densenet/"),
    "densenet201": ("densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5", "densenet/"),
    "nasnet_small": ("nasnet_mobile_no_top.h5", "nasnet/NASNet-mobile-no-top.h5"),
    "nasnet_large": ("nasnet_large_no_top.h5", "nasnet/NASNet-large-no-top.h5"),
    **{f"efficientnetb{i}": (f"efficientnetb{i}_notop.h5", "") for i in range(8)},
    **{
        f"efficientnetv2{v}": (f"efficientnetv2-{v}_notop.h5", "efficientnet_v2/")
        for v in ("b0", "b1", "b2", "b3", "s", "m", "l")
    },
    **{
        f"convnext_{v}": (f"convnext_{v}_notop.h5", "convnext/")
        for v in ("tiny", "small", "base", "large", "xlarge")
    },
}


def imagenet_url(name: str) -> str:
    """The URL Keras downloads ``name``'s ImageNet weights from (default input size)."""
    file_name, where = IMAGENET_FILES[name]
    if name.startswith("efficientnetb"):
        return _EFFNET + file_name
    return _KERAS_APPS + (where if where.endswith(".h5") else where + file_name)


def keras_cache_dir() -> Path:
    """Where ``keras.utils.get_file`` keeps downloads: $KERAS_HOME or ~/.keras (or /tmp/.keras).

    Keras fixes its folder when it is imported (``keras.src.backend.config.keras_home()``):
    once Keras is loaded that value is used, else the same rule is applied to the environment,
    so that listing the cache does not load TensorFlow. Like ``get_file``, a folder that is not
    writable is replaced by /tmp/.keras.
    """
    home = keras_home()
    if home is None and "KERAS_HOME" in os.environ:
        home = os.environ["KERAS_HOME"]
    elif home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    if not os.access(os.path.expanduser(home), os.W_OK):
        home = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return Path(home)


@dataclass(frozen=True)
class KerasDownload:
    """The arguments of one ``get_file`` call of a keras.applications constructor."""

    fname: str
    origin: str
    kwargs: dict[str, Any]

    @property
    def cache_path(self) -> Path:
        """Where the file must be for Keras to use it without downloading."""
        subdir = self.kwargs.get("cache_subdir", "datasets")
        return keras_cache_dir() / subdir / self.fname


class _Recorded(Exception):
    """Raised by the recording ``get_file`` to stop the constructor before any download."""


@contextmanager
def _recording_get_file():
    file_utils = keras_file_utils()
    calls: list[KerasDownload] = []
    original = file_utils.get_file

    def record(fname=None, origin=None, **kwargs):
        name = fname or os.path.basename(origin or "")
        calls.append(KerasDownload(name, origin, kwargs))
        raise _Recorded

    file_utils.get_file = record
    try:
        yield calls
    finally:
        file_utils.get_file = original


def planned_download(spec: BackboneSpec, input_shape: tuple) -> KerasDownload:
    """The ``get_file`` call ``spec``'s constructor makes for ImageNet weights at ``input_shape``.

    The backbone's architecture is built (seconds for the largest), its weights are not fetched.
    """
    import keras  # lazy: heavy import, kept off the --help path

    constructor = getattr(keras.applications, spec.constructor)
    with _recording_get_file() as calls:
        try:
            constructor(include_top=False, weights="imagenet", input_shape=input_shape)
        except _Recorded:
            pass
    keras.backend.clear_session()
    if not calls:
        raise RuntimeError(f"keras.applications.{spec.constructor} fetched no weights file")
    return calls[0]


def offline_message(spec: BackboneSpec, download: KerasDownload, reason: str) -> str:
    """The one-line error for ImageNet weights that cannot be downloaded."""
    return (
        f"Cannot download the ImageNet weights of `{spec.name}` ({reason}). On a machine with "
        f"internet run `python -m cnnhub weights --download {spec.name}` (or download "
        f"{download.origin}) and put the file at {download.cache_path}, then run again; or "
        f"train from random weights with -w none. Received: weights=imagenet"
    )


def fetch_imagenet(spec: BackboneSpec, input_shape: tuple) -> Path:
    """Make sure ``spec``'s ImageNet weights for ``input_shape`` are in Keras's cache.

    Uses Keras's own ``get_file`` (a no-op when the file is cached and its hash fits).

    Raises:
        CnnhubError: the file is not cached and cannot be downloaded (one line: URL, cache
            path, ``-w none``).
    """
    download = planned_download(spec, input_shape)
    try:
        get_file = keras_file_utils().get_file
        return Path(get_file(download.fname, download.origin, **download.kwargs))
    except Exception as exc:  # noqa: BLE001 - get_file raises bare Exception on fetch failures
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise CnnhubError(offline_message(spec, download, reason)) from None


# ---------------------------------------------------------------- `cnnhub weights`


def cache_table() -> tuple[list[tuple[str, str, str]], Path]:
    """(model, cached?, file path) per registry model with ImageNet weights, and the cache."""
    folder = keras_cache_dir() / "models"
    rows = []
    for name, spec in BACKBONES.items():
        if not spec.imagenet:
            continue
        path = folder / IMAGENET_FILES[name][0]
        rows.append((name, "yes" if path.is_file() else "no", str(path)))
    return rows, folder


def format_cache_table() -> str:
    """The cache listing printed by ``cnnhub weights``."""
    rows, folder = cache_table()
    header = ("model", "cached", "file")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    lines = [f"Keras weights cache: {folder}"]
    lines += [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in [header, *rows]]
    cached = sum(r[1] == "yes" for r in rows)
    no_weights = [n for n, s in BACKBONES.items() if not s.imagenet]
    lines.append(
        f"{cached} of {len(rows)} cached. No ImageNet weights (random init): "
        f"{', '.join(no_weights)}. Fill the cache with --download NAME[,NAME...] on a machine "
        "with internet, then copy the folder to the same place on the other machine."
    )
    return "\n".join(lines)
