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
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from cnnhub.errors import CnnhubError
from cnnhub.keras_hooks import own_variables
from cnnhub.registry import get_backbone


def _snake_case(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def model_variables(model, prefix: str = "layers") -> dict[str, tuple[str, object]]:
    """Map each variable's path in a Keras 3 weights file to (layer name, variable) for ``model``.

    Keras names the entries of a model's layer list by snake-cased class name, numbered by
    occurrence (``dense``, ``dense_1``), and nests sub-models under their own ``layers``; a
    nested layer's name is given as ``<sub-model>/<layer>``.
    """
    table: dict[str, tuple[str, object]] = {}
    seen: Counter = Counter()
    for layer in model.layers:
        base = _snake_case(type(layer).__name__)
        key = base if seen[base] == 0 else f"{base}_{seen[base]}"
        seen[base] += 1
        path = f"{prefix}/{key}"
        if hasattr(layer, "layers") and getattr(layer, "layers", None):
            for sub_path, (name, variable) in model_variables(layer, f"{path}/layers").items():
                table[sub_path] = (f"{layer.name}/{name}", variable)
            continue
        for i, variable in enumerate(own_variables(layer)):
            table[f"{path}/vars/{i}"] = (layer.name, variable)
    return table


def expected_variables(model, prefix: str = "layers") -> dict[str, tuple[str, tuple]]:
    """Map each variable's path in a Keras 3 weights file to (layer name, shape) for ``model``."""
    return {
        path: (name, tuple(variable.shape))
        for path, (name, variable) in model_variables(model, prefix).items()
    }


def _fixed_layers(model) -> set[str]:
    """Names of the model's fixed preprocessing layers (constant weights, never loaded)."""
    from cnnhub.layers import is_fixed_preprocessing  # lazy: heavy import, kept off the --help path

    return {layer.name for layer in model.layers if is_fixed_preprocessing(layer)}


def _fixed_variables(model) -> set[str]:
    """Paths of the fixed preprocessing weights: constants that older weights files lack."""
    names = _fixed_layers(model)
    return {path for path, (name, _) in expected_variables(model).items() if name in names}


def file_variables(h5_path: Path) -> dict[str, tuple]:
    """Variable path -> shape of every weight in a Keras 3 ``.weights.h5`` file."""
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
    """Raise CnnhubError naming the first layer whose weights in ``h5_path`` do not fit.

    A file without the model's fixed preprocessing weights (saved before :mod:`cnnhub.layers`
    made them a layer) fits: loading keeps the model's own constants.
    """
    expected = expected_variables(model)
    actual = file_variables(h5_path)
    fixed = _fixed_variables(model)
    missing_fixed = bool(fixed) and not fixed & set(actual)
    for path, (layer_name, shape) in expected.items():
        if path in fixed and missing_fixed:
            continue
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


def _lacks_fixed(model, h5_path: Path) -> bool:
    """Whether the file was saved without the model's fixed preprocessing weights."""
    fixed = _fixed_variables(model)
    return bool(fixed) and not fixed & set(file_variables(h5_path))


def _load(model, h5_path: Path) -> None:
    if not _lacks_fixed(model, h5_path):
        model.load_weights(h5_path)
        return
    # The model keeps its own (constant) preprocessing weights; everything else is loaded.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about the skipped preprocessing layer
        model.load_weights(h5_path, skip_mismatch=True)


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
        _load(model, h5_path)


# ---------------------------------------------------------------- pretrained starts (-w <run>)


def _backbone_paths(model) -> dict[str, tuple[str, object]]:
    from cnnhub.layers import BACKBONE_LAYER  # lazy: keeps --help free of TensorFlow

    return {
        path: (name, variable)
        for path, (name, variable) in model_variables(model).items()
        if name.startswith(f"{BACKBONE_LAYER}/")
    }


def _has_imagenet(model_name: str) -> bool:

    try:
        return get_backbone(model_name).imagenet
    except CnnhubError:
        return False


def _color_hint(model, source_config: dict | None) -> str:
    """A hint when the source run's images had another number of channels than this model's."""
    mode = (source_config or {}).get("COLOR_MODE")
    if mode and (mode == "grayscale") != (model.input_shape[-1] == 1):
        return f" The file's run was trained with --color_mode {mode}: pass the same here."
    return ""


def _check_backbone(
    model, actual: dict[str, tuple], shown: str, source_config: dict | None
) -> None:
    """Raise CnnhubError on the first backbone weight of ``model`` the file lacks or shapes
    differently (and on backbone weights of the file the model lacks)."""
    backbone = _backbone_paths(model)
    source = str((source_config or {}).get("MODEL_NAME", ""))
    hint = (
        f" The file comes from a `{source}` run, this run builds `{model.name}`."
        if source and source != model.name
        else ""
    )
    # -w imagenet is only advice for a model that has ImageNet weights (custom has none)
    other = "-w imagenet / -w none" if _has_imagenet(model.name) else "-w none"
    hint += _color_hint(model, source_config)
    advice = f"{hint} Pass weights of the same backbone, or {other}."
    for path, (name, variable) in backbone.items():
        shape = tuple(variable.shape)
        if path not in actual:
            raise CnnhubError(
                f"The backbone in {shown} does not fit this model: layer `{name}` has a weight "
                f"of shape {_describe(shape)} that the file lacks.{advice} Received: "
                f"weights={shown}"
            )
        if actual[path] != shape:
            raise CnnhubError(
                f"The backbone in {shown} does not fit this model: layer `{name}` expects shape "
                f"{_describe(shape)} but the file has {_describe(actual[path])}.{advice} "
                f"Received: weights={shown}"
            )
    prefix = next(iter(backbone)).split("/layers/")[0] + "/layers/" if backbone else None
    extra = sorted(p for p in actual if prefix and p.startswith(prefix) and p not in backbone)
    if extra:
        raise CnnhubError(
            f"The backbone in {shown} does not fit this model: it has {len(extra)} backbone "
            f"weight(s) the model lacks, the first at {extra[0]} with shape "
            f"{_describe(actual[extra[0]])}.{advice} Received: weights={shown}"
        )


def load_pretrained(
    model, path: Path, run=None, class_names: list[str] | None = None, weights: str | Path = ""
) -> str:
    """Start ``model`` from the weights file ``path`` of an earlier run (``-w`` a run folder or
    weights file, resolved by :func:`cnnhub.run_loading.weights_source`, which also gives that
    ``run`` when the file is in one; ``weights``: the ``-w`` value, named in errors).

    Same architecture and classes: every weight loads (:func:`load_weights_checked`). Otherwise
    (other classes, another head) only the backbone's weights load and the head keeps its fresh
    initial values. The classes are compared by name when both ``class_names`` (this run's) and
    the source run's are known, else a head that fits is taken for the same classes. Returns
    the report printed at the start of the run (what was loaded and what was not).

    Raises:
        CnnhubError: the file is unreadable, or its backbone does not fit ``model`` (the message
            names the first mismatched layer and both shapes).
    """

    other_classes = (
        run is not None and class_names is not None and run.class_names != list(class_names)
    )
    if not other_classes:
        try:
            load_weights_checked(model, path)
            return f"Weights from {path}: all layers loaded (same architecture and classes)."
        except CnnhubError:
            pass  # another head, other classes, or another backbone: checked below
    backbone = _backbone_paths(model)
    try:
        with _weights_table(path) as h5_path:
            _check_backbone(model, file_variables(h5_path), str(path), run.config if run else None)
            with h5py.File(h5_path, "r") as handle:
                for entry, (_, variable) in backbone.items():
                    variable.assign(np.asarray(handle[entry]))
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise CnnhubError(
            f"Cannot read weights file {path}: {exc}. Pass a run folder, a Keras .weights.h5 "
            f"or a .keras file. Received: weights={weights}"
        ) from None
    loaded = {name for name, _ in backbone.values()}
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    fresh = sorted(
        {name for name, _ in expected_variables(model).values()} - loaded - _fixed_layers(model),
        key=lambda name: order.get(name, len(order)),
    )
    return (
        f"Weights from {path}: loaded the backbone ({len(loaded)} layers with weights, "
        f"{len(backbone)} tensors); not loaded (another head or other classes), starting "
        f"fresh: {', '.join(fresh)}."
    )
