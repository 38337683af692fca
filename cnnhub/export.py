"""A run's model in a deployable format, checked before it is kept.

The library behind ``cnnhub export``; :mod:`cnnhub.commands.export` parses its
flags and writes its files.

Every format takes raw pixels (0-255, float32, NHWC) of the run's image size and channels (RGB,
or one channel for a ``--color_mode grayscale`` run) and returns class probabilities: cnnhub
models carry their preprocessing inside. Resizing to the run's
size is the caller's job (cnnhub resizes bilinearly with antialiasing).

Output folder (``--out``, default ``RUN/export/<format>/``):

===============  =====================================================================
format           model file, runtime used for the check
===============  =====================================================================
``keras``        ``model.keras``; ``keras.saving.load_model`` (Keras built-in layers
                 only: loads without cnnhub)
``savedmodel``   ``saved_model/`` (``model.export``); ``tf.saved_model.load``, signature
                 ``serve`` (input ``image``, output ``output_0``)
``tflite``       ``model.tflite`` (float32, converted from the SavedModel); LiteRT
                 (``ai_edge_litert``) or else ``tf.lite.Interpreter``
``tflite-int8``  ``model_int8.tflite``: weights and activations quantised to int8 with a
                 representative sample of the training images (``DATA_DIR_TRAIN`` or
                 ``--calibration``), float32 input and output kept; LiteRT as above
``onnx``         ``model.onnx`` (tf2onnx, opset ``--opset``; input ``image``, output
                 ``probabilities``; labels and threshold also in its metadata_props);
                 onnxruntime
===============  =====================================================================

Next to the model: ``labels.txt`` (one class name per line, in output order),
``check.json`` (the decision-level check) and ``metadata.json`` (labels, threshold,
input/output description, weights used, verification result, size, latency, versions).
The threshold is the one of ``best_weights.json`` unless ``--threshold`` says otherwise: a
top-1 probability below it means "uncertain".

The export is written to a hidden staging folder inside ``--out`` first. It is then reloaded
with its own runtime and run on up to 400 validation images: the run's validation data rebuilt
exactly as ``evaluate`` rebuilds it (``split.csv`` of a ``--val_split`` run, DATA_DIR_VALID in
any layout), or ``--valid`` (any layout). When the run's data cannot be read, 64 random images
are used instead, with a note, and the printed check and ``metadata.json`` say so. The
largest absolute difference from the Keras model's probabilities must be at most 1e-4 (float
formats) or, for ``tflite-int8``, the top-1 class must agree on at least 95% of the images.
The decisions at the threshold are compared too (:mod:`cnnhub.export_check`: images that go
from accepted to abstained or back, or change class, overall and per class; ``check.json``):
a ``tflite-int8`` export whose decisions change on more than 1% of the images fails unless
``allow_flips``. Only then is it moved into place; otherwise the staging folder is removed
and the command fails (exit 2). The file size and the median batch-1 latency per image on
this machine are printed and recorded.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnhub import atomic
from cnnhub.data.images import UnreadableImage
from cnnhub.data.pipeline import evaluation_dataset
from cnnhub.data.sets import DataOptions, evaluation_source, read_source, split_of_source
from cnnhub.errors import CnnhubError
from cnnhub.run_folder import EXPORT_CHECK
from cnnhub.run_loading import (
    Run,
    WeightsChoice,
    note,
    printable,
    spread,
    walk_images,
)
from cnnhub.tasks import get_task

FORMATS: dict[str, str] = {
    "keras": "model.keras",
    "savedmodel": "saved_model",
    "tflite": "model.tflite",
    "tflite-int8": "model_int8.tflite",
    "onnx": "model.onnx",
}
"""Export formats and the name of the model file (or folder) each writes."""

FLOAT_TOLERANCE = 1e-4
"""Largest allowed |probability difference| from the Keras model for the float formats."""
INT8_MIN_AGREEMENT = 0.95
"""Smallest allowed top-1 agreement with the Keras model for ``tflite-int8``."""
VERIFY_IMAGES = 400
"""Most validation images an export is checked on (spread over the set: every class)."""
RANDOM_IMAGES = 64
"""Random images an export is checked on when the run's data cannot be read (outputs only:
random images have no decisions worth counting, so fewer are enough)."""
LATENCY_RUNS = 30
LATENCY_SECONDS = 3.0
ONNX_OUTPUT = "probabilities"


@dataclass
class ExportResult:
    """What :func:`export_run` wrote and measured."""

    format: str
    path: Path
    labels_path: Path
    metadata_path: Path
    check_path: Path
    size_bytes: int
    max_abs_diff: float
    top1_agreement: float
    images_checked: int
    latency_ms: float
    runtime: str
    metadata: dict[str, Any] = field(default_factory=dict)
    check_text: str = ""  # the verification in words (the task's)


# --------------------------------------------------------------------------- runtimes


def tflite_interpreter_class():
    """LiteRT's Interpreter when ``ai_edge_litert`` is installed, else ``tf.lite.Interpreter``.

    Returns ``(class, runtime description)``.
    """
    try:
        # lazy: heavy import, kept off the --help path
        from ai_edge_litert import __version__ as litert_version

        # lazy: heavy import, kept off the --help path
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, f"LiteRT {litert_version}"
    except ImportError:
        import tensorflow as tf  # lazy: heavy import, kept off the --help path

        return tf.lite.Interpreter, f"tf.lite.Interpreter (TensorFlow {tf.__version__})"


@dataclass
class Runtime:
    """An exported model loaded in its own runtime.

    ``predict`` maps a float32 batch (N, H, W, C) of raw 0-255 pixels to probabilities (N, K).
    """

    predict: Callable[[np.ndarray], np.ndarray]
    name: str
    input_name: str
    output_name: str


def load_runtime(fmt: str, path: Path) -> Runtime:
    """Load the export at ``path`` (format ``fmt``) with its own runtime."""
    if fmt == "keras":
        import keras  # lazy: heavy import, kept off the --help path

        model = keras.saving.load_model(path, safe_mode=True, compile=False)
        return Runtime(
            lambda x: np.asarray(model.predict_on_batch(x)),
            f"keras.saving.load_model (Keras {keras.__version__})",
            model.inputs[0].name,
            model.output_names[0] if getattr(model, "output_names", None) else "output",
        )
    if fmt == "savedmodel":
        import tensorflow as tf  # lazy: heavy import, kept off the --help path

        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serve"]
        (input_name,) = signature.structured_input_signature[1]
        (output_name,) = signature.structured_outputs

        def serve(x: np.ndarray) -> np.ndarray:
            return signature(**{input_name: tf.constant(x)})[output_name].numpy()

        return Runtime(
            serve,
            f"tf.saved_model.load, signature serve (TensorFlow {tf.__version__})",
            input_name,
            output_name,
        )
    if fmt in ("tflite", "tflite-int8"):
        interpreter_class, runtime = tflite_interpreter_class()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            interpreter = interpreter_class(model_path=str(path))
        interpreter.allocate_tensors()
        source = interpreter.get_input_details()[0]
        target = interpreter.get_output_details()[0]

        def invoke(x: np.ndarray) -> np.ndarray:
            outputs = []
            for image in x:  # batch 1, as on a device
                interpreter.set_tensor(source["index"], image[None].astype(source["dtype"]))
                interpreter.invoke()
                outputs.append(interpreter.get_tensor(target["index"])[0].copy())
            return np.stack(outputs)

        return Runtime(invoke, runtime, source["name"], target["name"])
    if fmt == "onnx":
        import onnxruntime as ort  # lazy: heavy import, kept off the --help path

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        return Runtime(
            lambda x: session.run(None, {input_name: x})[0],
            f"onnxruntime {ort.__version__} (CPUExecutionProvider)",
            input_name,
            session.get_outputs()[0].name,
        )
    raise AssertionError(fmt)


def check_dependencies(fmt: str) -> None:
    """Fail early, with the install command, when a format's converter or runtime is missing."""
    needed = {"onnx": ("tf2onnx", "onnx", "onnxruntime")}.get(fmt, ())
    missing = []
    for module in needed:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise CnnhubError(
            f"Exporting to {fmt} needs {', '.join(missing)}: pip install {' '.join(missing)} "
            f"(or pip install -r requirements.txt). Received: format={fmt}"
        )


# --------------------------------------------------------------------------- converters


def _tflite_from_saved_model(saved_model: Path, target: Path, calibration=None) -> None:
    import tensorflow as tf  # lazy: heavy import, kept off the --help path

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative():
            for image in calibration:
                yield [image[None].astype(np.float32)]

        converter.representative_dataset = representative
    target.write_bytes(converter.convert())


ONNX_OPSETS = (7, 18)
"""The --opset values accepted: onnxruntime runs opset 7 and above, tf2onnx 1.17 converts up to
18 (checked before any work, so a bad value never reaches the converter or the runtime)."""


def _onnx(model, target: Path, image_size: tuple[int, int], opset: int, props: dict) -> None:

    import onnx  # lazy: heavy import, kept off the --help path
    import tensorflow as tf  # lazy: heavy import, kept off the --help path

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    import tf2onnx  # lazy: heavy import, kept off the --help path

    channels = int(model.input_shape[-1])  # 1 for a grayscale run
    spec = tf.TensorSpec((None, *image_size, channels), tf.float32, name="image")
    forward = tf.function(lambda image: model(image, training=False))
    proto, _ = tf2onnx.convert.from_function(forward, input_signature=[spec], opset=opset)
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [ONNX_OUTPUT if name == old else name for name in node.output]
        node.input[:] = [ONNX_OUTPUT if name == old else name for name in node.input]
    proto.graph.output[0].name = ONNX_OUTPUT
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(target))


def convert(
    model,
    fmt: str,
    target: Path,
    staging: Path,
    image_size: tuple[int, int],
    calibration: list[np.ndarray] | None = None,
    onnx_props: dict | None = None,
    opset: int = 17,
) -> None:
    """Write ``model`` in format ``fmt`` to ``target`` (scratch files go to ``staging``)."""
    if fmt == "keras":
        model.save(target)
    elif fmt == "savedmodel":
        model.export(str(target), format="tf_saved_model", verbose=False)
    elif fmt in ("tflite", "tflite-int8"):
        saved = staging / "_saved_model_for_tflite"
        model.export(str(saved), format="tf_saved_model", verbose=False)
        _tflite_from_saved_model(saved, target, calibration if fmt == "tflite-int8" else None)
        shutil.rmtree(saved, ignore_errors=True)
    elif fmt == "onnx":
        _onnx(model, target, image_size, opset, onnx_props or {})
    else:
        raise AssertionError(fmt)


# --------------------------------------------------------------------------- checks


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError


def measure_latency(predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> float:
    """Median milliseconds of ``predict`` on one image (batch 1), after two warm-up runs."""
    batch = image[None].astype(np.float32)
    for _ in range(2):
        predict(batch)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < LATENCY_RUNS and (
        len(times) < 3 or time.perf_counter() - started < LATENCY_SECONDS
    ):
        tick = time.perf_counter()
        predict(batch)
        times.append((time.perf_counter() - tick) * 1000)
    return statistics.median(times)


def folder_inputs(run: Run, folder: str, count: int) -> list[np.ndarray]:
    """Up to ``count`` readable images spread evenly over ``folder``, as the run's model input."""

    images = []
    for path in spread(walk_images(folder), count):
        try:
            images.append(run.load_input(path))
        except UnreadableImage:
            continue
    return images


def source_inputs(run: Run, source, count: int) -> np.ndarray:
    """Up to ``count`` samples spread evenly over a DataSource, as ``evaluate`` feeds them."""

    picked = source.subset(spread(np.arange(len(source)), count))
    split, _ = split_of_source(picked, run.config.get("SCAN_CACHE", True), run.channels)
    if not len(split):
        return np.zeros((0, *run.image_size, run.channels), np.float32)
    dataset = evaluation_dataset(split, run.config, run.num_classes)
    return np.concatenate(list(dataset.as_numpy_iterator())).astype(np.float32)


def random_images(run: Run, why: str) -> tuple[np.ndarray, str]:
    """:data:`RANDOM_IMAGES` random images of the run's input shape, with a note saying why."""
    note(
        f"{why}; checking the export on {RANDOM_IMAGES} RANDOM images instead of validation "
        "images (pass --valid DATA to check on real ones)."
    )
    rng = np.random.default_rng(0)
    shape = (RANDOM_IMAGES, *run.image_size, run.channels)
    source = f"{RANDOM_IMAGES} random images (no validation data: {why})"
    return rng.integers(0, 256, shape).astype(np.float32), source


def verification_images(run: Run, valid: str | None) -> tuple[np.ndarray, str]:
    """The images an export is checked on: the run's validation data, rebuilt as ``evaluate``
    does (or ``valid``, any layout); random ones, with a note, when it cannot be read."""

    try:
        source = evaluation_source(
            run.config, run.folder.split_csv, run.class_names, valid, "--valid", check_classes=False
        )
    except CnnhubError as exc:
        if valid is not None:
            raise
        return random_images(run, f"the run's validation data cannot be read ({exc})")
    images = source_inputs(run, source, VERIFY_IMAGES)
    if not len(images):
        return random_images(run, f"no readable validation image in {source.origin}")
    return images, f"{len(images)} validation image(s) from {source.origin}"


def calibration_images(run: Run, folder: str | None, count: int) -> list[np.ndarray]:
    """The representative sample for int8 quantisation: a folder of images, or else the run's
    training data (DATA_DIR_TRAIN, any layout), as the run's model input."""

    if folder is not None:
        images = folder_inputs(run, folder, count) if Path(folder).is_dir() else []
    else:
        folder = str(run.config.get("DATA_DIR_TRAIN", ""))
        try:
            source = read_source(folder, "train", DataOptions.from_config(run.config))
            images = list(source_inputs(run, source, count))
        except CnnhubError:
            images = []
    if not images:
        raise CnnhubError(
            f"tflite-int8 needs training images to calibrate the quantisation, but "
            f"{folder!r} (--calibration, else DATA_DIR_TRAIN of the run) holds no readable "
            "image. Pass a folder of representative images with --calibration DIR. "
            f"Received: calibration={folder!r}"
        )
    return images


def compare(reference: np.ndarray, exported: np.ndarray) -> tuple[float, float]:
    """(max |difference|, top-1 agreement) of exported probabilities against the reference."""
    exported = np.asarray(exported, dtype=np.float64).reshape(reference.shape)
    if not np.isfinite(exported).all():
        return float("inf"), float(np.mean(exported.argmax(1) == reference.argmax(1)))
    diff = float(np.abs(exported - reference).max())
    return diff, float(np.mean(exported.argmax(axis=1) == reference.argmax(axis=1)))


def check_passes(fmt: str, diff: float, agreement: float) -> str | None:
    """None when the check passes, else why it fails."""
    if fmt == "tflite-int8":
        if agreement < INT8_MIN_AGREEMENT:
            return (
                f"top-1 agreement with the Keras model is {agreement:.1%}, under the "
                f"{INT8_MIN_AGREEMENT:.0%} required"
            )
        return None
    if not diff <= FLOAT_TOLERANCE:
        return (
            f"the largest probability difference from the Keras model is {diff:.3g}, over "
            f"the {FLOAT_TOLERANCE:g} allowed"
        )
    return None


# --------------------------------------------------------------------------- export


def _move_into_place(source: Path, destination: Path, staging: Path) -> None:
    if destination.is_dir() and not destination.is_symlink():
        old = staging / "_replaced"
        os.replace(destination, old)
    os.replace(source, destination)


def _versions(fmt: str) -> dict[str, str]:
    import keras  # lazy: heavy import, kept off the --help path
    import tensorflow as tf  # lazy: heavy import, kept off the --help path

    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    if fmt == "onnx":
        import onnx  # lazy: heavy import, kept off the --help path
        import onnxruntime  # lazy: heavy import, kept off the --help path
        import tf2onnx  # lazy: heavy import, kept off the --help path

        versions.update(
            tf2onnx=tf2onnx.__version__, onnx=onnx.__version__, onnxruntime=onnxruntime.__version__
        )
    return versions


def channel_names(run: Run) -> str:
    """What the model's input channels hold: ``RGB``, or ``grayscale`` for a grayscale run."""
    return "grayscale" if run.channels == 1 else "RGB"


def _io_description(fmt: str, run: Run, runtime: Runtime) -> tuple[dict, dict]:
    height, width = run.image_size
    inputs = {
        "name": runtime.input_name,
        "shape": [1 if fmt.startswith("tflite") else None, height, width, run.channels],
        "dtype": "float32",
        "layout": "NHWC",
        "channels": channel_names(run),
        "range": [0, 255],
        "preprocessing": "none (inside the model); resize to the shape first",
    }
    outputs = {
        "name": runtime.output_name,
        "shape": [1 if fmt.startswith("tflite") else None, run.num_classes],
        "dtype": "float32",
        "meaning": get_task(run.config).export_info(None)["output"],
    }
    return inputs, outputs


def export_run(
    run: Run,
    weights: WeightsChoice,
    fmt: str,
    out_dir: Path,
    threshold: float,
    valid_dir: str | None = None,
    calibration_dir: str | None = None,
    calibration_count: int = 200,
    opset: int = 17,
    allow_flips: bool = False,
) -> ExportResult:
    """Export, verify and, when the check passes, keep the run's model (module docstring).

    Raises:
        CnnhubError: bad input, or the exported model failed its check (nothing is kept, not
            even the ``out_dir`` this call created).
    """
    check_dependencies(fmt)
    with atomic.new_folder(out_dir):
        return _export(
            run, weights, fmt, out_dir, threshold, valid_dir, calibration_dir, calibration_count,
            opset, allow_flips,
        )  # fmt: skip


def _export(
    run: Run,
    weights: WeightsChoice,
    fmt: str,
    out_dir: Path,
    threshold: float,
    valid_dir: str | None,
    calibration_dir: str | None,
    calibration_count: int,
    opset: int,
    allow_flips: bool = False,
) -> ExportResult:
    _check_out_dir(out_dir, fmt)
    calibration = (
        calibration_images(run, calibration_dir, calibration_count)
        if fmt == "tflite-int8"
        else None
    )
    images, source = verification_images(run, valid_dir)
    from cnnhub.model_factory import build_run_model  # lazy: keeps --help free of TensorFlow

    model = build_run_model(run, weights)
    reference = np.asarray(model.predict(images, batch_size=32, verbose=0), dtype=np.float64)
    name = FORMATS[fmt]
    task = get_task(run.config)
    props = {
        "cnnhub_task": task.name,
        "cnnhub_labels": json.dumps(run.class_names, ensure_ascii=False),
        # multi_label: {"class_thresholds": {...}, "label_separator": ...} as JSON
        "cnnhub_threshold": (
            json.dumps(threshold, ensure_ascii=False)
            if isinstance(threshold, dict)
            else repr(None if threshold is None else float(threshold))
        ),
        "cnnhub_input": (
            f"float32 NHWC {channel_names(run)} 0-255, {run.image_size[0]}x{run.image_size[1]}"
        ),
    }
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        staged = staging / name
        try:
            convert(model, fmt, staged, staging, run.image_size, calibration, props, opset)
        except CnnhubError:
            raise
        except Exception as exc:  # noqa: BLE001 - converters raise anything; report on one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CnnhubError(
                f"Converting {run.name} to {fmt} failed: {type(exc).__name__}: {first[:300]}. "
                f"Nothing was written. Received: format={fmt}"
            ) from exc
        try:
            runtime = load_runtime(fmt, staged)
            outputs = np.concatenate(
                [runtime.predict(images[i : i + 32]) for i in range(0, len(images), 32)], axis=0
            )
        except Exception as exc:  # noqa: BLE001 - runtimes raise anything; report on one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CnnhubError(
                f"The {fmt} export does not run in its runtime: {type(exc).__name__}: "
                f"{first[:300]}. The export was removed. Received: format={fmt}"
            ) from exc
        verdict = task.export_check(
            fmt, reference, outputs, threshold, run.class_names, allow_flips
        )
        diff, agreement, problem = (verdict[k] for k in ("max_abs_diff", "agreement", "problem"))
        if problem is not None:
            raise CnnhubError(
                f"The {fmt} export failed its check on {source} with {runtime.name}: {problem}. "
                f"The export was removed. Received: format={fmt}"
            )
        latency = measure_latency(runtime.predict, images[0])
        size = _size(staged)
        target = out_dir / name
        _move_into_place(staged, target, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    labels_path = out_dir / "labels.txt"
    atomic.write_text(labels_path, "".join(f"{printable(c)}\n" for c in run.class_names))
    check = {
        "format": fmt,
        "weights": weights.path.name,
        "source": source,
        "runtime": runtime.name,
        "max_abs_diff": diff,
        verdict["agreement_name"]: agreement,
        **verdict["check"],
        "passed": True,
    }
    atomic.write_json(out_dir / EXPORT_CHECK, check)
    inputs, outputs_info = _io_description(fmt, run, runtime)
    metadata = {
        "format": fmt,
        "model_file": name,
        "run": run.name,
        "run_path": str(run.path.resolve()),
        "model_name": run.config.get("MODEL_NAME"),
        "weights": weights.path.name,
        "weights_choice": weights.how,
        "epoch": weights.epoch,
        "task": task.name,
        "labels": run.class_names,
        "threshold": threshold,
        "decision": task.export_info(threshold)["decision"],
        "input": inputs,
        "output": outputs_info,
        "verification": {
            "images": len(images),
            "source": source,
            "runtime": runtime.name,
            "max_abs_diff": diff,
            verdict["agreement_name"]: agreement,
            **verdict["verification"],
            "limit": verdict["limit"],
        },
        "size_bytes": size,
        "latency_ms_per_image": round(latency, 4),
        "latency_note": "median of batch-1 runs on the exporting machine",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(fmt),
    }
    metadata_path = out_dir / "metadata.json"
    atomic.write_json(metadata_path, metadata)
    return ExportResult(
        fmt, target, labels_path, metadata_path, out_dir / EXPORT_CHECK, size, diff, agreement,
        len(images), latency, runtime.name, metadata, verdict["text"],
    )  # fmt: skip


def _check_out_dir(out_dir: Path, fmt: str) -> None:
    """Refuse to mix two formats' metadata in one folder."""
    existing = out_dir / "metadata.json"
    if not existing.is_file():
        return
    try:
        previous = json.loads(existing.read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        previous = None
    if previous not in (None, fmt):
        raise CnnhubError(
            f"{out_dir} already holds a {previous} export (metadata.json); use one folder per "
            f"format: pass another --out. Received: out={str(out_dir)!r}, format={fmt}"
        )
