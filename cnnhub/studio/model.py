"""Model page: the registry table, the custom CNN's blocks (add, edit, remove, reorder), and
the forward-pass check after every change.

Blocks are the config's block schema (:mod:`cnnhub.custom`); the check resolves the page's
settings as training does (:func:`cnnhub.model_defaults.resolve_model_config`), runs the shape
arithmetic (which names the block that does not fit), then builds the Keras model
(:func:`cnnhub.model_factory.build_model`) and passes a real image from the data through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnhub.custom import format_block, normalize_blocks, parse_layers, resolve_blocks
from cnnhub.errors import CnnhubError
from cnnhub.registry import BACKBONES, get_backbone

ACTIONS = ("add", "replace", "remove", "up", "down")


def registry_table():
    """One row per backbone: name, default input size, parameters, ImageNet weights cached."""
    import pandas as pd  # lazy: heavy import

    from cnnhub.pretrained import cache_table

    cached = {name: flag for name, flag, _ in cache_table()[0]}
    rows = [
        {
            "model": spec.name,
            "default size": spec.default_size,
            "min size": spec.min_size,
            "parameters": f"{spec.params:,}" if spec.params else "depends on the blocks",
            "ImageNet weights": "none" if not spec.imagenet
            else ("cached" if cached.get(spec.name) == "yes" else "not cached (downloads)"),
        }
        for spec in BACKBONES.values()
    ]
    return pd.DataFrame(rows)


def backbone_at(row: int) -> str:
    """The backbone on row ``row`` of :func:`registry_table` (a click on the table)."""
    names = list(BACKBONES)
    if not 0 <= int(row) < len(names):
        raise CnnhubError(f"No backbone on row {row} of the registry. Received: row={row}")
    return names[int(row)]


def block_from_form(
    filters: Any,
    kernel_size: Any = 3,
    strides: Any = 1,
    padding: str = "same",
    activation: str = "relu",
    batch_norm: bool = False,
    pool: str = "none",
    pool_size: Any = 2,
    dropout: Any = 0.0,
    residual: bool = False,
) -> dict[str, Any]:
    """One normalized block from the page's block form (CnnhubError names a bad value)."""
    raw = {
        "filters": _whole(filters, "filters"),
        "kernel_size": _whole(kernel_size, "kernel_size"),
        "strides": _whole(strides, "strides"),
        "padding": padding,
        "activation": activation,
        "batch_norm": bool(batch_norm),
        "pool": pool,
        "pool_size": _whole(pool_size, "pool_size"),
        "dropout": float(dropout or 0.0),
        "residual": bool(residual),
    }
    return normalize_blocks([raw])[0]


def _whole(value: Any, key: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number.is_integer():
        raise CnnhubError(f"`{key}` must be a whole number. Received: {key}={value!r}")
    return int(number)


def edit_blocks(
    blocks: list[dict[str, Any]], action: str, position: Any, block: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A new block list: ``add`` (at ``position``, 1-based; 0 or past the end appends),
    ``replace``, ``remove``, ``up`` or ``down`` the block at ``position``."""
    blocks = [dict(b) for b in blocks]
    index = int(position or 0) - 1
    if action == "add":
        if block is None:
            raise CnnhubError("Fill in the block form first (at least `filters`).")
        at = index if 0 <= index < len(blocks) else len(blocks)
        blocks.insert(at, block)
        return blocks
    if action not in ACTIONS:
        raise CnnhubError(f"`action` must be one of {', '.join(ACTIONS)}. Received: {action!r}")
    if not 0 <= index < len(blocks):
        raise CnnhubError(
            f"`block` must be a block number from 1 to {len(blocks)}. Received: block={position}"
        )
    if action == "replace":
        if block is None:
            raise CnnhubError("Fill in the block form first (at least `filters`).")
        blocks[index] = block
    elif action == "remove":
        del blocks[index]
    else:
        other = index - 1 if action == "up" else index + 1
        if 0 <= other < len(blocks):
            blocks[index], blocks[other] = blocks[other], blocks[index]
    return blocks


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    """The blocks in the compact grammar, one block per line (editable on the page)."""
    return "\n".join(format_block(b) for b in blocks)


def parse_blocks_text(text: str) -> list[dict[str, Any]]:
    """The page's block text (one compact block or stage per line) as normalized blocks."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return parse_layers(",".join(lines)) if lines else []


def blocks_form_values(blocks: list[dict[str, Any]], position: Any) -> list[Any] | None:
    """The block form's values for block ``position`` (1-based), to edit it; None if none."""
    index = int(position or 0) - 1
    if not 0 <= index < len(blocks):
        return None
    b = blocks[index]
    return [
        b["filters"], b["kernel_size"][0], b["strides"][0],
        b["padding"] if isinstance(b["padding"], str) else "same", b["activation"],
        b["batch_norm"], b["pool"], b["pool_size"][0], b["dropout"], b["residual"],
    ]  # fmt: skip


def check_model(
    config: dict[str, Any], num_classes: int, image_path: str | None, inspection=None
):
    """Build the page's model and pass one real image through it.

    Returns ``(table, message)``: ``table`` a DataFrame with each layer's output shape and
    parameters; ``message`` one line (what went through, or the error naming the block).
    """
    import pandas as pd  # lazy: heavy import

    from cnnhub.data.sets import input_channels
    from cnnhub.model_defaults import resolve_model_config

    empty = pd.DataFrame(columns=["layer", "output shape", "parameters"])
    try:
        spec = get_backbone(config["MODEL_NAME"])
        if "," in str(config["MODEL_NAME"]):
            raise CnnhubError("Check one model at a time.")
        resolved, _ = resolve_model_config(config, spec, inspection)
        # Building never downloads: ImageNet weights only matter for training.
        resolved["WEIGHTS"] = "none"
        shape = (int(resolved["IMG_HEIGHT"]), int(resolved["IMG_WIDTH"]), input_channels(resolved))
        if spec.name == "custom":
            resolve_blocks(resolved["CUSTOM_CONV_BLOCKS"], shape, num_classes)
        rows, output = _forward(resolved, num_classes, shape, image_path)
    except CnnhubError as exc:
        return empty, "error: " + " ".join(str(exc).split())
    total = sum(row["parameters"] for row in rows)
    table = pd.DataFrame(rows, columns=["layer", "output shape", "parameters"])
    source = "a training image" if image_path else "a blank image (inspect the data first)"
    message = (
        f"ok: {spec.name} at {shape[0]}x{shape[1]}x{shape[2]}, {total:,} parameters; "
        f"{source} went through it to {output} class probabilities."
    )
    return table, message


def _forward(config: dict[str, Any], num_classes: int, shape: tuple, image_path: str | None):
    from cnnhub.data.images import load_image
    from cnnhub.model_factory import build_model

    model = build_model(config, num_classes)
    if image_path:
        image = load_image(image_path, size=shape[:2], channels=shape[2]).astype(np.float32)
    else:
        image = np.zeros(shape, np.float32)
    output = np.asarray(model(image[None], training=False))
    return _layer_rows(model), output.shape[-1]


def _layer_rows(model, prefix: str = "") -> list[dict[str, Any]]:
    """Layers in order with output shapes, nested models (the backbone) expanded."""
    rows = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            rows += _layer_rows(layer, prefix=f"{layer.name}/")
            continue
        shape = tuple(layer.output.shape)
        text = "x".join("?" if d is None else str(d) for d in shape[1:])
        rows.append({"layer": prefix + layer.name, "output shape": text,
                     "parameters": int(layer.count_params())})  # fmt: skip
    return rows
