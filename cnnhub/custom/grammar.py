"""The one-line grammar of custom CNN blocks, and the dense-head grammar.

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

:func:`normalize_blocks` accepts every written form of ``CUSTOM_CONV_BLOCKS``: a list (of block
mappings or compact strings), a compact string, or a preset name. No TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cnnhub.custom.presets import PRESETS
from cnnhub.custom.spec import (
    ACTIVATIONS,
    CONFIG_NAME,
    DENSE_NAME,
    _did_you_mean,
    _hw,
    _is_int,
    _normalize_block,
    _num,
    _show,
)
from cnnhub.errors import CnnhubError


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
