"""The ``custom`` backbone: a small CNN described in config (``CUSTOM_CONV_BLOCKS``), not code.

``CUSTOM_CONV_BLOCKS`` is a list of block mappings (items may also be compact strings), a
compact one-line string, or a preset name (``PRESETS``; ``auto`` is derived from the input size
and the number of classes by :func:`auto_blocks`). The modules, each with one job:

* :mod:`~cnnhub.custom.spec` - the block schema (keys, defaults, allowed values) and its
  validation;
* :mod:`~cnnhub.custom.grammar` - the one-line grammar (``"c32k3-bn-mp2,c64k3-bn-mp2"``), every
  written form to blocks (:func:`normalize_blocks`), and the dense-head grammar
  (:func:`parse_dense`);
* :mod:`~cnnhub.custom.presets` - the named presets and ``auto``;
* :mod:`~cnnhub.custom.plan` - shape arithmetic: output shapes, weight counts, the ``--summary``
  lines, and :func:`resolve_blocks` (blocks checked against the input before anything is built);
* :mod:`~cnnhub.custom.build` - the Keras build (the only module that imports TensorFlow).

Importing this package loads no TensorFlow: the settings check a spec on the command line
before TensorFlow starts. :func:`build_custom_backbone` and :func:`build_backbone` (the
registry's build function) load :mod:`~cnnhub.custom.build` when first asked for.
"""

from __future__ import annotations

from typing import Any

from cnnhub.custom.grammar import (
    format_block,
    format_dense,
    format_layers,
    normalize_blocks,
    parse_dense,
    parse_layers,
)
from cnnhub.custom.plan import count_params, describe_blocks, output_shape, resolve_blocks
from cnnhub.custom.presets import PRESETS, auto_blocks
from cnnhub.custom.spec import ACTIVATIONS, BLOCK_DEFAULTS, PADDINGS, POOLS

__all__ = [
    "ACTIVATIONS",
    "BLOCK_DEFAULTS",
    "PADDINGS",
    "POOLS",
    "PRESETS",
    "auto_blocks",
    "build_backbone",
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

_KERAS_BUILD = ("build_backbone", "build_custom_backbone")


def __getattr__(name: str) -> Any:
    """The Keras build's names, imported on first use (they load TensorFlow)."""
    if name in _KERAS_BUILD:
        from cnnhub.custom import build  # lazy: heavy import, kept off the --help path

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
