"""The ``custom`` backbone: a small CNN described in config (``CUSTOM_CONV_BLOCKS``), not code.

A *block* is one convolution with its companions, applied in this order::

    [ZeroPadding2D] -> Conv2D -> [BatchNormalization] -> [+ residual] -> activation
        -> [pool] -> [Dropout]

As a mapping (YAML list item), with defaults::

    filters: 32            # required, integer >= 1
    kernel_size: 3         # int or [height, width]
    strides: 1             # int or [height, width]
    padding: same          # same | valid | [top, bottom, left, right] explicit zero padding
                           #   (also an int n = [n, n, n, n], or [vertical, horizontal])
    activation: relu       # none relu leaky_relu prelu elu gelu swish sigmoid tanh softmax
    batch_norm: false      # BatchNormalization after the conv (the conv then has no bias)
    dropout: 0.0           # 0 <= rate < 1, after the pool
    pool: none             # none | max | avg   (always "valid" pooling)
    pool_size: 2           # int or [height, width]
    pool_strides: null     # defaults to pool_size
    residual: false        # shortcut around conv (+BN): identity when the shapes are equal,
                           # else a 1x1 conv projection with the block's strides (+BN if batch_norm)

``CUSTOM_CONV_BLOCKS`` is a list of such mappings (items may also be compact strings), a compact
one-line string, or a preset name (``PRESETS``; ``auto`` is derived from the input size and the
number of classes by :func:`auto_blocks`).

Compact grammar (case-insensitive, spaces around tokens ignored)::

    spec   := stage ("," stage)*
    stage  := conv ("-" (conv | token))*    a stage is one or more blocks: every conv token
                                             starts a new block, the other tokens modify the
                                             block of the conv token before them
    conv   := "c" F ["k" SIZE] ["s" SIZE]     F filters, kernel (default 3), strides (default 1)
    SIZE   := N | N "x" N                    square or height x width, e.g. k3, k1x7, s2
    token  := "bn"                           batch norm
            | "a" NAME                       activation: arelu anone aleaky_relu aprelu aelu
                                             agelu aswish asigmoid atanh asoftmax (default relu)
            | "pv" | "ps"                    padding valid | same (default same)
            | "pad" N ["." N ["." N "." N]]  explicit zero padding: all sides | vertical.horizontal
                                             | top.bottom.left.right, e.g. pad1, pad1.2, pad0.1.0.1
            | "mp" SIZE ["s" SIZE]           max pool, strides default to the size: mp2, mp3s2
            | "p" SIZE ["s" SIZE]            same as mp (max pool)
            | "ap" SIZE ["s" SIZE]           average pool: ap2
            | "d" RATE                       dropout after the pool: d0.25
            | "r"                            residual shortcut

Example: ``"c32k3-bn-c32k3-bn-mp2-d0.25,c64k3-bn-c64k3-bn-mp2-d0.25"`` is four blocks; the pool
and dropout of each stage belong to its second conv.  :func:`format_layers` writes the canonical
form (kernel always written, defaults otherwise left out, a new stage after every pooled block),
and ``parse_layers(format_layers(b)) == normalize_blocks(b)``.

Dense head grammar (:func:`parse_dense`): units and dropouts separated by ``-``, each ``dN``
applying to the dense layer before it: ``"256-d0.5"``, ``"512-d0.5-256-d0.3"``; ``""`` or
``"none"`` for no hidden dense layer.

Blocks are numbered from 1 across all stages; layers are named ``block{n}_pad``, ``_conv``,
``_bn``, ``_proj``, ``_proj_bn``, ``_add``, ``_act``, ``_pool``, ``_drop``.  Only standard Keras
layers are used (no ``Lambda``), so saved models load with ``safe_mode=True``: leaky_relu is
``LeakyReLU()`` (Keras' slope 0.3), prelu is ``PReLU(shared_axes=[1, 2])`` (one slope per
channel), the others ``Activation(name)``; BatchNormalization uses momentum ``BN_MOMENTUM``.

Before any layer is built, every output shape is computed; a pool window or a ``valid`` kernel
larger than its input, a conv stride larger than its input, or a residual whose shapes cannot
match raises :class:`~cnnhub.errors.CnnhubError` naming the block, the layer and the shapes.

Parsing, validation and the shape arithmetic need no TensorFlow; only
:func:`build_custom_backbone` imports Keras.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cnnhub.errors import CnnhubError

__all__ = [
    "ACTIVATIONS",
    "BLOCK_DEFAULTS",
    "PADDINGS",
    "POOLS",
    "PRESETS",
    "auto_blocks",
    "build_custom_backbone",
    "count_params",
    "describe_blocks",
    "format_block",
    "format_dense",
    "format_layers",
    "normalize_blocks",
    "output_shape",
    "parse_dense",
    "parse_layers",
    "resolve_blocks",
]

CONFIG_NAME = "custom_conv_blocks"
DENSE_NAME = "dense_layers"

#: Moving-statistics momentum of every BatchNormalization (Keras defaults to 0.99, which needs
#: hundreds of steps before inference matches training: too slow for small folder datasets).
BN_MOMENTUM = 0.9

ACTIVATIONS = (
    "none",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "gelu",
    "swish",
    "sigmoid",
    "tanh",
    "softmax",
)
PADDINGS = ("same", "valid")
POOLS = ("none", "max", "avg")

#: Every key of a normalized block with its default (``filters`` has none; ``pool_strides``
#: defaults to ``pool_size``).
BLOCK_DEFAULTS: dict[str, Any] = {
    "filters": None,
    "kernel_size": [3, 3],
    "strides": [1, 1],
    "padding": "same",
    "activation": "relu",
    "batch_norm": False,
    "dropout": 0.0,
    "pool": "none",
    "pool_size": [2, 2],
    "pool_strides": None,
    "residual": False,
}
BLOCK_KEYS = tuple(BLOCK_DEFAULTS)

#: Presets by name.  ``auto`` maps to ``None``: it depends on the input shape and the number of
#: classes and is computed by :func:`auto_blocks` (through :func:`resolve_blocks`).
PRESETS: dict[str, str | None] = {
    # LeNet-5 layout (6 and 16 filters of 5x5, the second conv unpadded) with ReLU and max pool.
    "lenet": "c6k5-mp2,c16k5-pv-mp2",
    # Three VGG stages of two 3x3 convs with batch norm, 32/64/128 filters.
    "vgg_small": (
        "c32k3-bn-c32k3-bn-mp2-d0.2,c64k3-bn-c64k3-bn-mp2-d0.3,c128k3-bn-c128k3-bn-mp2-d0.4"
    ),
    # Strong small net for 28x28 grayscale (Fashion-MNIST): 28 -> 14 -> 7 -> 3, light dropout so
    # that it fits in 10-15 epochs (vgg_small is the same shape, regularized for longer runs).
    "fashion": (
        "c32k3-bn-c32k3-bn-mp2-d0.1,c64k3-bn-c64k3-bn-mp2-d0.2,c128k3-bn-c128k3-bn-mp2-d0.3"
    ),
    # AlexNet layout scaled down: 5x5 convs, overlapping 3x3/2 max pools, three 3x3 convs.
    "alexnet_small": "c32k5-bn-mp3s2,c64k5-bn-mp3s2,c96k3-bn-c96k3-bn-c64k3-bn-mp3s2",
    "auto": None,
}


# --------------------------------------------------------------------------- errors and helpers


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "none"}


def _show(value: Any) -> str:
    """A value as the user wrote it: bare for plain words and numbers, repr otherwise."""
    if isinstance(value, str):
        bare = re.fullmatch(r"[A-Za-z_][\w.\-,]*", value) and value.lower() not in _YAML_WORDS
        return value if bare else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _pair(value: Any, key: str, where: str) -> list[int]:
    """An int or [height, width] of ints >= 1, as a list of two ints."""
    if _is_int(value):
        items = [value, value]
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        items = list(value)
    else:
        items = None
    if items is None or not all(_is_int(v) and v >= 1 for v in items):
        raise CnnhubError(
            f"{where}: `{key}` must be an integer >= 1 or a list [height, width] of them. "
            f"Received: {key}={_show(value)}"
        )
    return [int(v) for v in items]


def _hw(pair: Sequence[int]) -> str:
    return f"{pair[0]}x{pair[1]}"


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in shape)


# --------------------------------------------------------------------------- normalization


def _normalize_padding(value: Any, where: str) -> str | list[int]:
    if isinstance(value, str) and value.strip().lower() in PADDINGS:
        return value.strip().lower()
    items: list[Any] | None = None
    if _is_int(value):
        items = [value] * 4
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 2:
            items = [value[0], value[0], value[1], value[1]]
        elif len(value) == 4:
            items = list(value)
    if items is None or not all(_is_int(v) and v >= 0 for v in items):
        raise CnnhubError(
            f"{where}: `padding` must be one of same, valid, or a list [top, bottom, left, right] "
            f"of integers >= 0 (explicit zero padding). Received: padding={_show(value)}"
        )
    return [int(v) for v in items]


def _normalize_choice(value: Any, key: str, choices: Sequence[str], where: str) -> str:
    if value is None and "none" in choices:
        return "none"
    word = value.strip().lower() if isinstance(value, str) else value
    if isinstance(word, str) and word in choices:
        return word
    hint = _did_you_mean(word, choices) if isinstance(word, str) else ""
    raise CnnhubError(
        f"{where}: `{key}` must be one of {', '.join(choices)}.{hint} "
        f"Received: {key}={_show(value)}"
    )


def _normalize_block(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise CnnhubError(
            f"{where}: a block must be a mapping with at least `filters` (or a compact string "
            f"like c32k3-bn-mp2). Received: {_show(raw)}"
        )
    for key in raw:
        if key not in BLOCK_DEFAULTS:
            raise CnnhubError(
                f"{where}: unknown key `{key}`.{_did_you_mean(str(key), BLOCK_KEYS)} Allowed keys: "
                f"{', '.join(BLOCK_KEYS)}. Received: {key}={_show(raw[key])}"
            )
    if "filters" not in raw:
        raise CnnhubError(
            f"{where}: `filters` is required (an integer >= 1). Received: {_show(dict(raw))}"
        )

    def get(key: str) -> Any:
        value = raw.get(key, BLOCK_DEFAULTS[key])
        return BLOCK_DEFAULTS[key] if value is None and key != "activation" else value

    filters = raw["filters"]
    if not (_is_int(filters) and filters >= 1):
        raise CnnhubError(
            f"{where}: `filters` must be an integer >= 1. Received: filters={_show(filters)}"
        )
    block: dict[str, Any] = {"filters": int(filters)}
    block["kernel_size"] = _pair(get("kernel_size"), "kernel_size", where)
    block["strides"] = _pair(get("strides"), "strides", where)
    block["padding"] = _normalize_padding(get("padding"), where)
    block["activation"] = _normalize_choice(
        raw.get("activation", "relu"), "activation", ACTIVATIONS, where
    )
    for key in ("batch_norm", "residual"):
        value = get(key)
        if not isinstance(value, bool):
            raise CnnhubError(
                f"{where}: `{key}` must be true or false. Received: {key}={_show(value)}"
            )
        block[key] = value
    dropout = get("dropout")
    if not (_is_real(dropout) and 0 <= dropout < 1):
        raise CnnhubError(
            f"{where}: `dropout` must be a number >= 0 and < 1. Received: dropout={_show(dropout)}"
        )
    block["dropout"] = float(dropout)
    block["pool"] = _normalize_choice(raw.get("pool", "none"), "pool", POOLS, where)
    pool_size = _pair(get("pool_size"), "pool_size", where)
    strides_raw = raw.get("pool_strides")
    pool_strides = pool_size if strides_raw is None else _pair(strides_raw, "pool_strides", where)
    if block["pool"] == "none":
        # Without a pool these mean nothing; keep the defaults so that equal nets compare equal.
        pool_size, pool_strides = [2, 2], [2, 2]
    block["pool_size"] = pool_size
    block["pool_strides"] = list(pool_strides)
    return {key: block[key] for key in BLOCK_KEYS}


def normalize_blocks(spec: Any, name: str = CONFIG_NAME) -> list[dict[str, Any]]:
    """Validate a block spec and return full block dicts with every default filled in.

    ``spec`` is a list (items: block mappings or compact strings), a compact string, or a preset
    name other than ``auto`` (use :func:`resolve_blocks` for that).  Raises :class:`CnnhubError`.
    """
    if isinstance(spec, str):
        word = spec.strip().lower()
        if word in PRESETS:
            if PRESETS[word] is None:
                raise CnnhubError(
                    f"`{name}` preset auto depends on the input shape and the number of classes; "
                    f"resolve it with resolve_blocks(). Received: {name}={spec}"
                )
            return parse_layers(PRESETS[word], name=name)
        return parse_layers(spec, name=name)
    if isinstance(spec, Mapping) or not isinstance(spec, Sequence):
        raise CnnhubError(
            f"`{name}` must be a list of blocks (mappings with `filters`, ...), a compact string "
            f"like c32k3-bn-mp2,c64k3-bn-mp2, or a preset name ({', '.join(PRESETS)}). "
            f"Received: {name}={_show(spec)}"
        )
    blocks: list[dict[str, Any]] = []
    for item in spec:
        if isinstance(item, str):
            blocks.extend(_parse(item, name, first_block=len(blocks) + 1))
        else:
            blocks.append(_normalize_block(item, f"{name} block {len(blocks) + 1}"))
    if not blocks:
        raise CnnhubError(f"`{name}` must have at least one block. Received: {name}={_show(spec)}")
    return blocks


# --------------------------------------------------------------------------- compact grammar

_SIZE = r"\d+(?:x\d+)?"
_CONV_RE = re.compile(rf"c(\d+)(?:k({_SIZE}))?(?:s({_SIZE}))?")
_POOL_RE = re.compile(rf"(mp|ap|p)({_SIZE})(?:s({_SIZE}))?")
_PAD_RE = re.compile(r"pad(\d+(?:\.\d+)*)")
_DROP_RE = re.compile(r"d(\d+(?:\.\d*)?|\.\d+)")
_TOKEN_HELP = (
    "c<filters>[k<size>][s<stride>], bn, a<activation>, pv, ps, pad<n>[.<n>[.<n>.<n>]], "
    "mp<size>[s<stride>], ap<size>[s<stride>], d<rate>, r"
)


def _size(text: str) -> list[int]:
    parts = [int(p) for p in text.split("x")]
    return parts * 2 if len(parts) == 1 else parts


def _parse(text: str, name: str, first_block: int = 1) -> list[dict[str, Any]]:
    if not isinstance(text, str):
        raise CnnhubError(f"`{name}` must be a string. Received: {name}={_show(text)}")
    raws: list[tuple[dict[str, Any], str]] = []
    stages = text.strip().lower().split(",")
    for stage_no, stage in enumerate(stages, 1):
        where_stage = f"{name} stage {stage_no}"
        current: dict[str, Any] | None = None
        tokens = [t.strip() for t in stage.split("-")]
        for token in tokens:
            if not token:
                raise CnnhubError(
                    f"{where_stage}: empty token (stages are separated by ',', tokens by '-'). "
                    f"Received: {name}={_show(text)}"
                )
            match = _CONV_RE.fullmatch(token)
            if match:
                current = {"filters": int(match[1])}
                if match[2]:
                    current["kernel_size"] = _size(match[2])
                if match[3]:
                    current["strides"] = _size(match[3])
                raws.append((current, f"{name} block {first_block + len(raws)} ({token})"))
                continue
            if current is None:
                raise CnnhubError(
                    f"{where_stage}: must start with a conv token c<filters>[k<size>][s<stride>] "
                    f"(e.g. c32k3). Received: {token}"
                )
            key, value = _parse_modifier(token, where_stage)
            if key in current:
                raise CnnhubError(
                    f"{where_stage}: `{key}` is given twice for one conv (each c token starts a "
                    f"new block). Received: {token}"
                )
            if key == "pool":
                current["pool"], current["pool_size"], current["pool_strides"] = value
            else:
                current[key] = value
    return [_normalize_block(raw, where) for raw, where in raws]


def _parse_modifier(token: str, where: str) -> tuple[str, Any]:
    if token == "bn":
        return "batch_norm", True
    if token == "r":
        return "residual", True
    if token in ("pv", "valid"):
        return "padding", "valid"
    if token in ("ps", "same"):
        return "padding", "same"
    match = _PAD_RE.fullmatch(token)
    if match:
        values = [int(v) for v in match[1].split(".")]
        if len(values) not in (1, 2, 4):
            raise CnnhubError(
                f"{where}: explicit padding takes 1, 2 or 4 numbers separated by '.': pad<all>, "
                f"pad<vertical>.<horizontal>, pad<top>.<bottom>.<left>.<right>. Received: {token}"
            )
        return "padding", values if len(values) == 4 else values[0] if len(values) == 1 else values
    match = _POOL_RE.fullmatch(token)
    if match:
        size = _size(match[2])
        strides = _size(match[3]) if match[3] else None
        return "pool", ("avg" if match[1] == "ap" else "max", size, strides)
    match = _DROP_RE.fullmatch(token)
    if match:
        return "dropout", float(match[1])
    if token.startswith("a") and re.fullmatch(r"a[a-z_]+", token):
        word = token[1:]
        if word in ACTIVATIONS:
            return "activation", word
        hint = _did_you_mean(word, ACTIVATIONS)
        raise CnnhubError(
            f"{where}: unknown activation `{word}` in token a<activation>; allowed: "
            f"{', '.join(ACTIVATIONS)}.{hint} Received: {token}"
        )
    raise CnnhubError(f"{where}: unknown token; allowed tokens: {_TOKEN_HELP}. Received: {token}")


def parse_layers(text: str, name: str = CONFIG_NAME) -> list[dict[str, Any]]:
    """Parse the compact one-line grammar (module docstring) into normalized blocks."""
    return _parse(text, name)


def _num(value: float) -> str:
    """Shortest exact positional form of a float (no exponent: '-' separates tokens)."""
    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _size_token(pair: Sequence[int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else _hw(pair)


def format_block(block: Mapping[str, Any]) -> str:
    """The compact tokens of one block, e.g. ``c64k3s2-bn-r-mp2-d0.25``."""
    b = _normalize_block(block, f"{CONFIG_NAME} block")
    conv = f"c{b['filters']}k{_size_token(b['kernel_size'])}"
    if b["strides"] != [1, 1]:
        conv += f"s{_size_token(b['strides'])}"
    tokens = [conv]
    padding = b["padding"]
    if padding == "valid":
        tokens.append("pv")
    elif isinstance(padding, list):
        if len(set(padding)) == 1:
            tokens.append(f"pad{padding[0]}")
        elif padding[0] == padding[1] and padding[2] == padding[3]:
            tokens.append(f"pad{padding[0]}.{padding[2]}")
        else:
            tokens.append("pad" + ".".join(str(v) for v in padding))
    if b["batch_norm"]:
        tokens.append("bn")
    if b["activation"] != "relu":
        tokens.append(f"a{b['activation']}")
    if b["residual"]:
        tokens.append("r")
    if b["pool"] != "none":
        pool = ("mp" if b["pool"] == "max" else "ap") + _size_token(b["pool_size"])
        if b["pool_strides"] != b["pool_size"]:
            pool += f"s{_size_token(b['pool_strides'])}"
        tokens.append(pool)
    if b["dropout"]:
        tokens.append(f"d{_num(b['dropout'])}")
    return "-".join(tokens)


def format_layers(blocks: Any) -> str:
    """Canonical compact string of a block spec; a new stage starts after every pooled block."""
    stages: list[list[str]] = [[]]
    for block in normalize_blocks(blocks):
        stages[-1].append(format_block(block))
        if block["pool"] != "none":
            stages.append([])
    return ",".join("-".join(stage) for stage in stages if stage)


def parse_dense(text: str | int, name: str = DENSE_NAME) -> tuple[list[int], list[float]]:
    """Parse a dense head: ``"512-d0.5-256-d0.3"`` -> ``([512, 256], [0.5, 0.3])``.

    Every ``d<rate>`` applies to the dense layer before it (rate 0 where none is given);
    ``""``, ``"none"`` or ``0`` mean no hidden dense layer; a bare int is one layer.
    """
    if _is_int(text):
        text = str(text)
    if not isinstance(text, str):
        raise CnnhubError(
            f"`{name}` must be a string like 256-d0.5 or 512-d0.5-256-d0.3. "
            f"Received: {name}={_show(text)}"
        )
    units: list[int] = []
    dropouts: list[float] = []
    body = text.strip().lower()
    if body in ("", "none", "0"):
        return units, dropouts
    for token in (t.strip() for t in body.split("-")):
        match = _DROP_RE.fullmatch(token)
        if token.isdigit() and int(token) >= 1:
            units.append(int(token))
            dropouts.append(0.0)
        elif match and units and dropouts[-1] == 0.0 and float(match[1]) < 1:
            dropouts[-1] = float(match[1])
        else:
            why = (
                "a dropout rate must be >= 0 and < 1, at most one after each dense layer"
                if match
                else "tokens are units (integers >= 1) and d<rate> after a dense layer"
            )
            raise CnnhubError(
                f"`{name}`: {why}, e.g. 512-d0.5-256-d0.3. Received: {name}={_show(text)} "
                f"(token {token or repr(token)})"
            )
    return units, dropouts


def format_dense(units: Sequence[int], dropouts: Sequence[float] | None = None) -> str:
    """Inverse of :func:`parse_dense`: ``([512, 256], [0.5, 0.0])`` -> ``"512-d0.5-256"``."""
    dropouts = list(dropouts) if dropouts is not None else [0.0] * len(units)
    if len(dropouts) != len(units):
        raise ValueError(f"units and dropouts differ in length: {list(units)} vs {dropouts}")
    tokens: list[str] = []
    for unit, rate in zip(units, dropouts):
        tokens.append(str(int(unit)))
        if rate:
            tokens.append(f"d{_num(rate)}")
    return "-".join(tokens) if tokens else "none"


# --------------------------------------------------------------------------- presets


def auto_blocks(input_shape: Sequence[int], num_classes: int) -> list[dict[str, Any]]:
    """A conv stack derived from the input size and the number of classes.

    Stages of two 3x3 conv + BN blocks (one block while the map is larger than 64 px, to keep
    CPU cost down), each followed by a 2x2 max pool and dropout 0.25, halving the map while it
    stays >= 3 px (so it ends at about 4x4: 28 -> 3, 32 -> 4, 224 -> 3), at least one stage.
    Filters start at 32 (64 for 65-128 classes, 128 above) and double per stage, capped at 256.
    """
    height, width, _ = _check_input_shape(input_shape)
    if not (_is_int(num_classes) and num_classes >= 1):
        raise CnnhubError(
            f"`num_classes` must be an integer >= 1. Received: num_classes={_show(num_classes)}"
        )
    side = min(height, width)
    start = min(128, max(32, 2 ** math.ceil(math.log2(num_classes / 2))))
    stages = []
    while side // 2 >= 3 or not stages:
        pool = side >= 2
        stages.append((side, pool))
        side = side // 2 if pool else side
        if not pool:
            break
    blocks: list[dict[str, Any]] = []
    for i, (stage_side, pool) in enumerate(stages):
        filters = min(256, start * 2**i)
        convs = 1 if stage_side > 64 else 2
        for j in range(convs):
            raw: dict[str, Any] = {"filters": filters, "batch_norm": True}
            if j == convs - 1:
                raw["dropout"] = 0.25
                if pool:
                    raw["pool"] = "max"
            blocks.append(raw)
    return normalize_blocks(blocks)


def resolve_blocks(
    spec: Any, input_shape: Sequence[int], num_classes: int, name: str = CONFIG_NAME
) -> list[dict[str, Any]]:
    """Normalized blocks for ``spec`` (``auto``, another preset, a compact string or a list),
    checked against ``input_shape`` with the shape arithmetic (no TensorFlow needed)."""
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        blocks = auto_blocks(input_shape, num_classes)
    else:
        blocks = normalize_blocks(spec, name=name)
    _plan(blocks, input_shape, name=name)
    return blocks


# --------------------------------------------------------------------------- shape arithmetic


@dataclass
class _Layer:
    block: int
    name: str
    kind: str  # pad conv bn proj proj_bn add act pool drop
    text: str
    output_shape: tuple[int, int, int]
    params: int = 0
    config: dict[str, Any] = field(default_factory=dict)


def _check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    if (
        isinstance(input_shape, Sequence)
        and len(input_shape) == 3
        and all(_is_int(v) and v >= 1 for v in input_shape)
    ):
        return tuple(int(v) for v in input_shape)  # type: ignore[return-value]
    raise CnnhubError(
        "`input_shape` must be (height, width, channels) of integers >= 1. "
        f"Received: input_shape={_show(input_shape)}"
    )


def _plan(blocks: Any, input_shape: Sequence[int], name: str = CONFIG_NAME) -> list[_Layer]:
    """Every layer of the backbone with its output shape; raises CnnhubError when it cannot fit."""
    blocks = normalize_blocks(blocks, name=name)
    shape = _check_input_shape(input_shape)
    bigger = "or use a larger input (IMG_HEIGHT/IMG_WIDTH)."
    layers: list[_Layer] = []
    for n, b in enumerate(blocks, 1):
        p = f"block{n}_"
        where = f"{name} block {n}"
        block_in = shape
        h, w, c = shape
        kh, kw = b["kernel_size"]
        sh, sw = b["strides"]
        f = b["filters"]
        padding = b["padding"]
        if isinstance(padding, list):
            top, bottom, left, right = padding
            h, w = h + top + bottom, w + left + right
            layers.append(
                _Layer(
                    n,
                    p + "pad",
                    "pad",
                    f"zero padding {'.'.join(map(str, padding))}",
                    (h, w, c),
                    config={"padding": ((top, bottom), (left, right))},
                )
            )
            conv_padding = "valid"
        else:
            conv_padding = padding
        pad_text = "explicit padding" if isinstance(padding, list) else f"{padding} padding"
        conv_text = f"conv {kh}x{kw}, {pad_text}" + (
            f", stride {_hw(b['strides'])}" if (sh, sw) != (1, 1) else ""
        )
        if sh > h or sw > w:
            raise CnnhubError(
                f"{where} ({conv_text}): stride {sh}x{sw} is larger than its input "
                f"{_shape_text((h, w, c))}; use smaller strides, remove a downsampling step "
                f"{bigger}"
            )
        if conv_padding == "valid":
            if kh > h or kw > w:
                raise CnnhubError(
                    f"{where} ({conv_text}): input {_shape_text((h, w, c))} is smaller than the "
                    f"{kh}x{kw} kernel; use padding same, a smaller kernel_size, remove a "
                    f"downsampling step {bigger}"
                )
            oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        else:
            oh, ow = -(-h // sh), -(-w // sw)
        shape = (oh, ow, f)
        use_bias = not b["batch_norm"]
        layers.append(
            _Layer(
                n,
                p + "conv",
                "conv",
                conv_text + f", {f} filters",
                shape,
                params=kh * kw * c * f + (f if use_bias else 0),
                config={
                    "filters": f,
                    "kernel_size": (kh, kw),
                    "strides": (sh, sw),
                    "padding": conv_padding,
                    "use_bias": use_bias,
                },
            )
        )
        if b["batch_norm"]:
            layers.append(_Layer(n, p + "bn", "bn", "batch norm", shape, params=4 * f))
        if b["residual"]:
            if block_in == shape and (sh, sw) == (1, 1):
                layers.append(
                    _Layer(
                        n,
                        p + "add",
                        "add",
                        "add identity shortcut",
                        shape,
                        config={"shortcut": None},
                    )
                )
            else:
                ih, iw, ic = block_in
                proj = (-(-ih // sh), -(-iw // sw), f)
                if proj != shape:
                    raise CnnhubError(
                        f"{where} (residual add): the conv output {_shape_text(shape)} cannot be "
                        f"added to the block input {_shape_text(block_in)} (a 1x1 projection with "
                        f"stride {sh}x{sw} gives {_shape_text(proj)}); use padding same or set "
                        f"residual false."
                    )
                layers.append(
                    _Layer(
                        n,
                        p + "proj",
                        "proj",
                        f"shortcut 1x1 conv, stride {sh}x{sw}, {f} filters",
                        proj,
                        params=ic * f + (f if use_bias else 0),
                        config={
                            "filters": f,
                            "kernel_size": (1, 1),
                            "strides": (sh, sw),
                            "padding": "same",
                            "use_bias": use_bias,
                        },
                    )
                )
                if b["batch_norm"]:
                    layers.append(
                        _Layer(
                            n, p + "proj_bn", "proj_bn", "shortcut batch norm", proj, params=4 * f
                        )
                    )
                layers.append(_Layer(n, p + "add", "add", "add projected shortcut", shape))
        if b["activation"] != "none":
            layers.append(
                _Layer(
                    n,
                    p + "act",
                    "act",
                    b["activation"],
                    shape,
                    params=f if b["activation"] == "prelu" else 0,
                    config={"activation": b["activation"]},
                )
            )
        if b["pool"] != "none":
            ph, pw = b["pool_size"]
            psh, psw = b["pool_strides"]
            h, w, c = shape
            pool_text = f"{b['pool']} pool {ph}x{pw}, stride " + (
                str(psh) if psh == psw else f"{psh}x{psw}"
            )
            if ph > h or pw > w:
                raise CnnhubError(
                    f"{where} ({pool_text}): input {_shape_text(shape)} is smaller than the pool "
                    f"window; remove a pooling step {bigger}"
                )
            shape = ((h - ph) // psh + 1, (w - pw) // psw + 1, c)
            layers.append(
                _Layer(
                    n,
                    p + "pool",
                    "pool",
                    pool_text,
                    shape,
                    config={"pool": b["pool"], "pool_size": (ph, pw), "strides": (psh, psw)},
                )
            )
        if b["dropout"]:
            layers.append(
                _Layer(
                    n,
                    p + "drop",
                    "drop",
                    f"dropout {_num(b['dropout'])}",
                    shape,
                    config={"rate": b["dropout"]},
                )
            )
    return layers


def output_shape(blocks: Any, input_shape: Sequence[int]) -> tuple[int, int, int]:
    """(height, width, channels) of the backbone's output, by arithmetic (raises CnnhubError)."""
    return _plan(blocks, input_shape)[-1].output_shape


def count_params(blocks: Any, input_shape: Sequence[int]) -> int:
    """Number of backbone weights (trainable and not), by arithmetic."""
    return sum(layer.params for layer in _plan(blocks, input_shape))


def describe_blocks(blocks: Any, input_shape: Sequence[int]) -> list[str]:
    """One line per layer with its output shape and weight count (for ``--summary``)."""
    plan = _plan(blocks, input_shape)
    width = max(len(layer.name) for layer in plan)
    lines = [f"{'input':<{width}}  {_shape_text(input_shape):>12}"]
    for layer in plan:
        params = f"  {layer.params:,} params" if layer.params else ""
        lines.append(
            f"{layer.name:<{width}}  {_shape_text(layer.output_shape):>12}  {layer.text}{params}"
        )
    total = sum(layer.params for layer in plan)
    lines.append(f"total {total:,} params, output {_shape_text(plan[-1].output_shape)}")
    return lines


# --------------------------------------------------------------------------- Keras model


def _activation_layer(activation: str, layer_name: str) -> Any:
    from keras import layers

    if activation == "leaky_relu":
        return layers.LeakyReLU(name=layer_name)
    if activation == "prelu":
        # One slope per channel, so the weights do not depend on the input size.
        return layers.PReLU(shared_axes=[1, 2], name=layer_name)
    return layers.Activation(activation, name=layer_name)


def build_custom_backbone(input_shape: Sequence[int], blocks: Any, name: str = "custom") -> Any:
    """A functional ``keras.Model`` from ``Input(shape=input_shape)`` to the last block's map.

    ``blocks``: anything :func:`normalize_blocks` accepts.  Every layer's output shape is
    computed first (CnnhubError naming the block when the net does not fit the input); after
    building, a forward pass on a dummy batch of zeros checks the model end to end.
    """
    plan = _plan(blocks, input_shape)
    input_shape = _check_input_shape(input_shape)

    import keras
    import numpy as np
    from keras import layers

    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = block_input = inputs
    block = 0
    shortcut = None
    for layer in plan:
        kind, cfg = layer.kind, layer.config
        if layer.block != block:
            block, block_input = layer.block, x
        if kind == "pad":
            x = layers.ZeroPadding2D(cfg["padding"], name=layer.name)(x)
        elif kind == "conv":
            x = layers.Conv2D(**cfg, name=layer.name)(x)
        elif kind == "bn":
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=layer.name)(x)
        elif kind == "proj":
            shortcut = layers.Conv2D(**cfg, name=layer.name)(block_input)
        elif kind == "proj_bn":
            shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=layer.name)(shortcut)
        elif kind == "add":
            x = layers.Add(name=layer.name)([x, block_input if shortcut is None else shortcut])
            shortcut = None
        elif kind == "act":
            x = _activation_layer(cfg["activation"], layer.name)(x)
        elif kind == "pool":
            pool_cls = layers.MaxPooling2D if cfg["pool"] == "max" else layers.AveragePooling2D
            x = pool_cls(
                pool_size=cfg["pool_size"], strides=cfg["strides"], padding="valid", name=layer.name
            )(x)
        elif kind == "drop":
            x = layers.Dropout(cfg["rate"], name=layer.name)(x)
        else:  # pragma: no cover - _plan only makes the kinds above
            raise AssertionError(kind)
    model = keras.Model(inputs, x, name=name)

    expected = (1, *plan[-1].output_shape)
    try:
        out = model(np.zeros((1, *input_shape), dtype="float32"), training=False)
        got = tuple(int(v) for v in out.shape)
    except Exception as exc:  # reported to the user on one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CnnhubError(
            f"{CONFIG_NAME}: the built model failed a forward pass on a dummy batch of shape "
            f"{_shape_text((1, *input_shape))}: {first}"
        ) from exc
    if got != expected:
        raise RuntimeError(f"custom backbone output {got} differs from the computed {expected}")
    return model


def build_backbone(
    input_shape: Sequence[int], config: Mapping[str, Any], num_classes: int, name: str = "custom"
) -> Any:
    """The registry's build function: the blocks of ``CUSTOM_CONV_BLOCKS``, built for the input.

    ``num_classes`` matters to the ``auto`` preset (:func:`auto_blocks`).
    """
    blocks = resolve_blocks(config["CUSTOM_CONV_BLOCKS"], input_shape, num_classes)
    return build_custom_backbone(input_shape, blocks, name=name)
