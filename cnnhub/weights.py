"""Load saved weights into a model, and explain exactly what does not fit when they do not.

Keras's own ``load_weights`` reports a shape mismatch without naming the layer. Before loading,
cnnhub reads the file's variable table (Keras 3 ``.weights.h5`` layout, or the one inside a
``.keras`` archive) and compares it with the model's, layer by layer, so the error names the
first mismatched layer and both shapes.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import h5py

from cnnhub.errors import CnnhubError


def _snake_case(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def expected_variables(model, prefix: str = "layers") -> dict[str, tuple[str, tuple]]:
    """Map each variable's path in a Keras 3 weights file to (layer name, shape) for ``model``.

    Keras names the entries of a model's layer list by snake-cased class name, numbered by
    occurrence (``dense``, ``dense_1``), and nests sub-models under their own ``layers``.
    """
    table: dict[str, tuple[str, tuple]] = {}
    seen: Counter = Counter()
    for layer in model.layers:
        base = _snake_case(type(layer).__name__)
        key = base if seen[base] == 0 else f"{base}_{seen[base]}"
        seen[base] += 1
        path = f"{prefix}/{key}"
        if hasattr(layer, "layers") and getattr(layer, "layers", None):
            for sub_path, (name, shape) in expected_variables(layer, f"{path}/layers").items():
                table[sub_path] = (f"{layer.name}/{name}", shape)
            continue
        own = [*layer._trainable_variables, *layer._non_trainable_variables]
        for i, variable in enumerate(own):
            table[f"{path}/vars/{i}"] = (layer.name, tuple(variable.shape))
    return table


def _file_variables(h5_path: Path) -> dict[str, tuple]:
    found: dict[str, tuple] = {}
    with h5py.File(h5_path, "r") as handle:
        handle.visititems(
            lambda name, obj: (
                found.__setitem__(name, tuple(obj.shape))
                if isinstance(obj, h5py.Dataset) and name.startswith("layers/")
                else None
            )
        )
    return found


def _describe(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def check_compatible(model, h5_path: Path, shown_name: str) -> None:
    """Raise CnnhubError naming the first layer whose weights in ``h5_path`` do not fit."""
    expected = expected_variables(model)
    actual = _file_variables(h5_path)
    for path, (layer_name, shape) in expected.items():
        if path not in actual:
            raise CnnhubError(
                f"Weights file {shown_name} does not fit this model: layer `{layer_name}` "
                f"expects a weight of shape {_describe(shape)} that the file does not have. "
                "Use weights saved from the same model architecture and settings."
            )
        if actual[path] != shape:
            raise CnnhubError(
                f"Weights file {shown_name} does not fit this model: layer `{layer_name}` "
                f"expects shape {_describe(shape)} but the file has {_describe(actual[path])}. "
                "Use weights saved from the same model architecture and settings."
            )
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise CnnhubError(
            f"Weights file {shown_name} does not fit this model: it has {len(extra)} weight(s) "
            f"the model lacks, the first at {extra[0]} with shape {_describe(actual[extra[0]])}. "
            "Use weights saved from the same model architecture and settings."
        )


WEIGHTS_FILE_SUFFIXES = (".weights.h5", ".keras")
"""File names a weights file may end with: Keras 3 weights, or a whole saved model."""


@contextlib.contextmanager
def _weights_table(path: Path) -> Iterator[Path]:
    """The ``.weights.h5`` file of ``path`` (extracted from a ``.keras`` archive when needed).

    Unreadable files (not HDF5, not a zip, truncated) become a CnnhubError naming the file.
    """
    try:
        if path.name.endswith(".keras"):
            with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as archive:
                archive.extract("model.weights.h5", tmp)
                yield Path(tmp) / "model.weights.h5"
        else:
            yield path
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CnnhubError(
            f"Cannot read weights file {path}: {exc}. Pass a Keras .weights.h5 or .keras file."
        ) from None


def check_weights_file(model, path: str | Path) -> None:
    """Check, without loading, that ``path`` (``.weights.h5`` or ``.keras``) fits ``model``.

    Raises:
        CnnhubError: the file is unreadable or its weights do not fit ``model``.
    """
    path = Path(path)
    with _weights_table(path) as h5_path:
        check_compatible(model, h5_path, str(path))


def load_weights_checked(model, path: str | Path, check: bool = True) -> None:
    """Load a ``.weights.h5`` file or the weights of a ``.keras`` model into ``model``.

    ``check=False`` skips the layer-by-layer comparison, for a file already checked with
    :func:`check_weights_file`.

    Raises:
        CnnhubError: the file is unreadable or its weights do not fit ``model`` (the message
            names the first mismatched layer and both shapes).
    """
    path = Path(path)
    with _weights_table(path) as h5_path:
        if check:
            check_compatible(model, h5_path, str(path))
        model.load_weights(h5_path)
