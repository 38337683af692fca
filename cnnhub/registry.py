"""The model registry: every backbone cnnhub can build, with the facts needed to use it.

One table, ``BACKBONES``, filled from ``_TABLE`` below. Each entry knows how it is built (a
``keras.applications`` constructor, or cnnhub's own build function such as SqueezeNet's and the
custom CNN's), its default and minimum input size, the preprocessing its input needs, whether
Keras publishes ImageNet weights for it, and its parameter count without the ImageNet
classifier (``include_top=False``). Looking names up (``get_backbone``) is case-insensitive and
tolerant of ``-``/``_`` (``resnet-50``, ``inception_v3``).

This module imports no TensorFlow (``--list_models`` and the command-line checks need only
this table), so cnnhub's own build functions are named ``"module:function"`` and imported when
a backbone is built (:meth:`BackboneSpec.build_function`).
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnhub.errors import CnnhubError

# ImageNet preprocessing modes (see cnnhub/layers.py): caffe = RGB->BGR minus the ImageNet mean;
# tf = scale to [-1, 1]; torch = scale to [0, 1] then ImageNet mean/std; none = the Keras
# model normalises 0-255 input itself.
PREPROCESSING_MODES = ("caffe", "tf", "torch", "none")

RESCALE = "rescale"
"""Preprocessing of cnnhub's custom CNNs: 0-255 pixels divided by 255 (no ImageNet statistics)."""

BuildFunction = Callable[..., Any]
"""``build(input_shape, config, num_classes, name) -> keras.Model``: a headless backbone."""


@dataclass(frozen=True)
class BackboneSpec:
    """What cnnhub knows about one backbone."""

    name: str
    constructor: str  # attribute of keras.applications, or "module:function" (cnnhub's own)
    default_size: int
    min_size: int
    preprocessing: str  # one of PREPROCESSING_MODES, or RESCALE
    params: int  # backbone parameters with include_top=False (0: depends on the config)
    imagenet: bool = True  # Keras publishes ImageNet weights for it

    @property
    def family(self) -> str:
        """``keras.applications`` or ``cnnhub`` (a backbone cnnhub builds itself)."""
        return "cnnhub" if ":" in self.constructor else "keras.applications"

    def build_function(self) -> BuildFunction | None:
        """cnnhub's own build function for this backbone; ``None`` for keras.applications ones.

        Imported here, on first use, so that reading the registry never loads TensorFlow.
        """
        if self.family != "cnnhub":
            return None
        module, function = self.constructor.split(":")
        return getattr(importlib.import_module(module), function)


# name, constructor or build function, default size, min size, preprocessing, params
# (include_top=False); ImageNet weights exactly for the keras.applications entries.
_TABLE: list[tuple[str, str, int, int, str, int]] = [
    ("vgg16", "VGG16", 224, 32, "caffe", 14714688),
    ("vgg19", "VGG19", 224, 32, "caffe", 20024384),
    ("resnet50", "ResNet50", 224, 32, "caffe", 23587712),
    ("resnet101", "ResNet101", 224, 32, "caffe", 42658176),
    ("resnet152", "ResNet152", 224, 32, "caffe", 58370944),
    ("resnet50v2", "ResNet50V2", 224, 32, "tf", 23564800),
    ("resnet101v2", "ResNet101V2", 224, 32, "tf", 42626560),
    ("resnet152v2", "ResNet152V2", 224, 32, "tf", 58331648),
    ("xception", "Xception", 299, 71, "tf", 20861480),
    ("inceptionv3", "InceptionV3", 299, 75, "tf", 21802784),
    ("inceptionresnetv2", "InceptionResNetV2", 299, 75, "tf", 54336736),
    ("mobilenet", "MobileNet", 224, 32, "tf", 3228864),
    ("mobilenetv2", "MobileNetV2", 224, 32, "tf", 2257984),
    ("mobilenetv3small", "MobileNetV3Small", 224, 32, "none", 939120),
    ("mobilenetv3large", "MobileNetV3Large", 224, 32, "none", 2996352),
    ("densenet121", "DenseNet121", 224, 32, "torch", 7037504),
    ("densenet169", "DenseNet169", 224, 32, "torch", 12642880),
    ("densenet201", "DenseNet201", 224, 32, "torch", 18321984),
    ("nasnet_small", "NASNetMobile", 224, 32, "tf", 4269716),
    ("nasnet_large", "NASNetLarge", 331, 32, "tf", 84916818),
    ("efficientnetb0", "EfficientNetB0", 224, 32, "none", 4049571),
    ("efficientnetb1", "EfficientNetB1", 240, 32, "none", 6575239),
    ("efficientnetb2", "EfficientNetB2", 260, 32, "none", 7768569),
    ("efficientnetb3", "EfficientNetB3", 300, 32, "none", 10783535),
    ("efficientnetb4", "EfficientNetB4", 380, 32, "none", 17673823),
    ("efficientnetb5", "EfficientNetB5", 456, 32, "none", 28513527),
    ("efficientnetb6", "EfficientNetB6", 528, 32, "none", 40960143),
    ("efficientnetb7", "EfficientNetB7", 600, 32, "none", 64097687),
    ("efficientnetv2b0", "EfficientNetV2B0", 224, 32, "none", 5919312),
    ("efficientnetv2b1", "EfficientNetV2B1", 240, 32, "none", 6931124),
    ("efficientnetv2b2", "EfficientNetV2B2", 260, 32, "none", 8769374),
    ("efficientnetv2b3", "EfficientNetV2B3", 300, 32, "none", 12930622),
    ("efficientnetv2s", "EfficientNetV2S", 384, 32, "none", 20331360),
    ("efficientnetv2m", "EfficientNetV2M", 480, 32, "none", 53150388),
    ("efficientnetv2l", "EfficientNetV2L", 480, 32, "none", 117746848),
    ("convnext_tiny", "ConvNeXtTiny", 224, 32, "none", 27820128),
    ("convnext_small", "ConvNeXtSmall", 224, 32, "none", 49454688),
    ("convnext_base", "ConvNeXtBase", 224, 32, "none", 87566464),
    ("convnext_large", "ConvNeXtLarge", 224, 32, "none", 196230336),
    ("convnext_xlarge", "ConvNeXtXLarge", 224, 32, "none", 348147968),
    ("squeezenet", "cnnhub.backbones.squeezenet:build", 224, 32, "caffe", 722496),
    ("custom", "cnnhub.custom.build:build_backbone", 32, 8, RESCALE, 0),
]

BACKBONES: dict[str, BackboneSpec] = {
    row[0]: BackboneSpec(*row, imagenet=":" not in row[1]) for row in _TABLE
}

# Extra spellings users type, beyond the automatic case/-/_ folding.
_ALIASES = {
    "nasnetmobile": "nasnet_small",
    "nasnetlarge": "nasnet_large",
    "nasnet": "nasnet_small",
    "efficientnet": "efficientnetb0",
    "efficientnetv2": "efficientnetv2b0",
    "convnext": "convnext_tiny",
    "inception": "inceptionv3",
    "resnet": "resnet50",
    "vgg": "vgg16",
    "mobilenetv1": "mobilenet",
    "mobilenetv3": "mobilenetv3large",
}


def _fold(name: str) -> str:
    return re.sub(r"[-_\s.]", "", name.lower())


_LOOKUP = {_fold(name): name for name in BACKBONES} | {_fold(a): n for a, n in _ALIASES.items()}


def get_backbone(name: str) -> BackboneSpec:
    """Look ``name`` up in the registry; unknown names fail with the closest matches."""
    key = _LOOKUP.get(_fold(name))
    if key is not None:
        return BACKBONES[key]
    close = difflib.get_close_matches(_fold(name), list(_LOOKUP), n=3, cutoff=0.5)
    suggestions = sorted({_LOOKUP[c] for c in close})
    hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
    raise CnnhubError(
        f"Unknown model `{name}`.{hint} See `python run_training.py --list_models` for all "
        f"names. Received: model_name={name}"
    )


def parse_model_names(text: str) -> list[BackboneSpec]:
    """Split a comma-separated MODEL_NAME (``mobilenetv2,resnet50,custom``) into specs."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise CnnhubError("`model_name` must name at least one model. Received: model_name=''")
    return [get_backbone(name) for name in names]


def format_table() -> str:
    """The registry as a fixed-width text table, for ``--list_models``."""
    header = ("name", "input", "min", "preprocessing", "params", "imagenet", "source")
    rows = [
        (
            s.name,
            f"{s.default_size}x{s.default_size}",
            str(s.min_size),
            s.preprocessing,
            f"{s.params / 1e6:.1f}M" if s.params else "config",
            "yes" if s.imagenet else "no",
            s.family,
        )
        for s in BACKBONES.values()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    aliases = ", ".join(f"{a} -> {n}" for a, n in sorted(_ALIASES.items()))
    lines.append("")
    lines.append(f"Names are case-insensitive; '-' and '_' are optional. Aliases: {aliases}")
    return "\n".join(lines)


def check_input_size(spec: BackboneSpec, height: int | str, width: int | str) -> None:
    """Fail with the model's minimum when the image size is too small for it (``auto`` passes)."""
    sides = [side for side in (height, width) if isinstance(side, int)]
    if sides and min(sides) < spec.min_size:
        raise CnnhubError(
            f"Image size {height}x{width} is below the minimum input size of `{spec.name}`, "
            f"{spec.min_size}x{spec.min_size}; set IMG_HEIGHT/IMG_WIDTH (-height/-width) to at "
            f"least {spec.min_size}, or auto. Received: height={height}, width={width}"
        )
