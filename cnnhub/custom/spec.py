"""The block schema of custom CNNs: keys, defaults, allowed values, and their validation.

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

:func:`_normalize_block` turns one such mapping into a full block dict (every default filled
in) or raises :class:`~cnnhub.errors.CnnhubError` naming the block and the key. The small
helpers here (value display, did-you-mean, integer pairs, shape text) are shared by the other
modules of :mod:`cnnhub.custom`. No TensorFlow.
"""

from __future__ import annotations

import difflib
import numbers
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from cnnhub.errors import CnnhubError

CONFIG_NAME = "custom_conv_blocks"
DENSE_NAME = "dense_layers"

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


def _num(value: float) -> str:
    """Shortest exact positional form of a float (no exponent: '-' separates tokens)."""
    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


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
