"""Shape arithmetic of custom CNNs: every layer's output shape and weight count, no Keras.

Before any layer is built, every output shape is computed; a pool window or a ``valid`` kernel
larger than its input, a conv stride larger than its input, or a residual whose shapes cannot
match raises :class:`~cnnhub.errors.CnnhubError` naming the block, the layer and the shapes.
Blocks are numbered from 1 across all stages; the layer names are those the Keras build gives
(``block{n}_pad``, ``_conv``, ``_bn``, ``_proj``, ``_proj_bn``, ``_add``, ``_act``, ``_pool``,
``_drop``). No TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnhub.custom.grammar import normalize_blocks
from cnnhub.custom.presets import auto_blocks
from cnnhub.custom.spec import CONFIG_NAME, _check_input_shape, _hw, _num, _shape_text
from cnnhub.errors import CnnhubError


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


@dataclass
class _Layer:
    block: int
    name: str
    kind: str  # pad conv bn proj proj_bn add act pool drop
    text: str
    output_shape: tuple[int, int, int]
    params: int = 0
    config: dict[str, Any] = field(default_factory=dict)


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
