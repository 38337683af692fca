"""``cnnhub export``: each format reloads in its own runtime and matches the Keras model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trained_runs import (
    best_weights_file,
    error_lines,
    keras_model,
    pixels,
    shared_tiny_run,
    valid_paths,
)

from cnnhub.cli import main

FLOAT_FORMATS = ["keras", "savedmodel", "tflite", "onnx"]


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory) -> Path:
    return shared_tiny_run(tiny_data, tmp_path_factory)


@pytest.fixture(scope="module")
def images(tiny_data) -> np.ndarray:
    return pixels(valid_paths(tiny_data))


@pytest.fixture(scope="module")
def reference(run, images) -> np.ndarray:
    """The Keras model's probabilities with the best weights, built by the test itself."""
    return keras_model(run, best_weights_file(run)).predict(images, verbose=0)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tflite_predict(path: Path, images: np.ndarray) -> np.ndarray:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - TensorFlow's own interpreter
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    assert source["dtype"] == np.float32 and list(source["shape"]) == [1, 32, 32, 3]
    outputs = []
    for image in images:
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"])[0].copy())
    return np.stack(outputs)


def predict_with_own_runtime(fmt: str, path: Path, images: np.ndarray) -> np.ndarray:
    """Run the exported model in its runtime, independently of cnnhub.export."""
    if fmt == "keras":
        import keras

        return keras.saving.load_model(path, safe_mode=True).predict(images, verbose=0)
    if fmt == "savedmodel":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures["serve"]
        return serve(image=tf.constant(images))["output_0"].numpy()
    if fmt.startswith("tflite"):
        return tflite_predict(path, images)
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    return session.run(["probabilities"], {"image": images})[0]


@pytest.mark.parametrize("fmt", [*FLOAT_FORMATS, "tflite-int8"])
def test_export_loads_in_its_runtime_and_matches_keras(
    fmt, run, images, reference, tmp_path, capsys
):
    out = tmp_path / fmt
    code, stdout, stderr = run_main(capsys, "export", str(run), "--format", fmt, "--out", str(out))
    assert code == 0, stderr
    metadata = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    path = out / metadata["model_file"]
    assert path.exists() and metadata["format"] == fmt
    outputs = predict_with_own_runtime(fmt, path, images)
    assert outputs.shape == reference.shape
    diff = float(np.abs(outputs - reference).max())
    agreement = float(np.mean(outputs.argmax(1) == reference.argmax(1)))
    if fmt == "tflite-int8":
        assert agreement >= 0.95 and diff < 0.1
    else:
        assert diff <= 1e-4
    names = json.loads((run / "index_class_mapping.json").read_text())
    labels = [names[str(i)] for i in range(len(names))]
    assert (out / "labels.txt").read_text(encoding="utf-8").splitlines() == labels
    best = json.loads((run / "best_weights.json").read_text())
    assert metadata["labels"] == labels and metadata["threshold"] == best["threshold"]
    assert metadata["weights"] == best["weights"]
    assert metadata["verification"]["images"] == len(images)
    assert metadata["size_bytes"] > 0 and metadata["latency_ms_per_image"] > 0
    assert "ms per image" in stdout and "bytes" in stdout and "max |p - keras|" in stdout
    assert not list(out.glob(".export-*"))  # the staging folder is gone
    check_decisions(out, reference, outputs, metadata["threshold"])
    print(
        f"\n[export] {fmt}: {metadata['size_bytes']} bytes, "
        f"{metadata['latency_ms_per_image']:.3f} ms/image, max diff {diff:.3g} (tool: "
        f"{metadata['verification']['max_abs_diff']:.3g}), top-1 agreement {agreement:.0%}"
    )


def decide(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Class index per image, -1 when the top probability is under the threshold."""
    return np.where(proba.max(axis=1) >= threshold, proba.argmax(axis=1), -1)


def check_decisions(out: Path, reference, outputs, threshold: float) -> dict:
    """check.json counts the decision changes that the test counts itself."""
    check = json.loads((out / "check.json").read_text(encoding="utf-8"))
    before, after = decide(reference, threshold), decide(outputs, threshold)
    assert check["threshold"] == threshold and check["images"] == len(reference)
    assert check["accepted_to_abstained"] == int(((before >= 0) & (after < 0)).sum())
    assert check["abstained_to_accepted"] == int(((before < 0) & (after >= 0)).sum())
    changed = (before >= 0) & (after >= 0) & (before != after)
    assert check["class_changed"] == int(changed.sum())
    assert check["flipped"] == int((before != after).sum())
    assert check["flip_rate"] == pytest.approx(check["flipped"] / len(reference))
    assert sum(c["flipped"] for c in check["per_class"]) == check["flipped"]
    assert sum(c["images"] for c in check["per_class"]) == len(reference)
    return check


def test_int8_export_whose_decisions_flip_fails_unless_allowed(run, tmp_path, capsys, monkeypatch):
    """Two images of 18 (11%) go from accepted to abstained, top class unchanged (so top-1
    agreement stays 100%): the int8 export is refused (exit 2, one line, nothing kept), and kept
    with --allow_flips, its check.json counting both."""
    import cnnhub.export

    real = cnnhub.export.load_runtime

    def flipping(fmt, path):
        runtime = real(fmt, path)
        inner = runtime.predict

        def predict(x):
            p = np.asarray(inner(x), dtype=np.float32).copy()
            for row in np.flatnonzero(p.max(axis=1) >= 0.5)[:2]:  # under 0.5, same top class
                top = p[row].argmax()
                p[row] = 0.6 / (p.shape[1] - 1)
                p[row, top] = 0.4
            return p

        runtime.predict = predict
        return runtime

    monkeypatch.setattr(cnnhub.export, "load_runtime", flipping)
    out = tmp_path / "int8"
    args = ["export", str(run), "--format", "tflite-int8", "--out", str(out), "--threshold", "0.5"]
    code, _, stderr = run_main(capsys, *args)
    assert code == 2
    (line,) = error_lines(stderr)
    assert "decisions at threshold 0.5 change on 2 of 18 images" in line
    assert "--allow_flips" in line and "The export was removed" in line
    assert not out.exists()
    code, stdout, stderr = run_main(capsys, *args, "--allow_flips")
    assert code == 0, stderr
    check = json.loads((out / "check.json").read_text(encoding="utf-8"))
    assert check["accepted_to_abstained"] == 2 and check["flipped"] == 2
    assert check["class_changed"] == 0 and "waived" in check["limit"]
    assert "2 of 18 images change" in stdout


def test_onnx_metadata_carries_labels_and_threshold(run, tmp_path, capsys):
    import onnx

    out = tmp_path / "onnx"
    code, _, stderr = run_main(
        capsys, "export", str(run), "--format", "onnx", "--out", str(out), "--threshold", "0.7"
    )
    assert code == 0, stderr
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert json.loads(props["cnnhub_labels"]) == ["circle", "square", "stripes"]
    assert float(props["cnnhub_threshold"]) == 0.7
    assert json.loads((out / "metadata.json").read_text())["threshold"] == 0.7


def test_failed_check_removes_the_export(run, tmp_path, capsys, monkeypatch):
    import cnnhub.export

    monkeypatch.setattr(cnnhub.export, "FLOAT_TOLERANCE", -1.0)  # nothing can pass
    out = tmp_path / "bad"
    code, _, stderr = run_main(capsys, "export", str(run), "--format", "keras", "--out", str(out))
    assert code == 2
    (line,) = error_lines(stderr)
    assert "failed its check" in line and "The export was removed" in line
    assert not out.exists()  # not even the folder the command created


def test_default_folder_and_epoch_weights(run, tmp_path, capsys):
    code, stdout, stderr = run_main(
        capsys, "export", str(run), "--format", "keras", "--weights", "2"
    )
    assert code == 0, stderr
    out = run / "export" / "keras"
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["epoch"] == 2 and metadata["weights"].startswith("weights-002-")
    assert "note: threshold" in stderr  # best's threshold, but not the best weights
    assert str(out / "model.keras") in stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["{missing}", "--format", "onnx"], "Run folder not found"),
        (["{run}", "--format", "pytorch"], "`--format` must be one of keras, savedmodel"),
        (["{run}"], "--format"),
        (["{run}", "--format", "keras", "--weights", "42"], "epoch 42"),
        (["{run}", "--format", "keras", "--out", "{file}"], "is a file"),
        (["{run}", "--format", "tflite-int8", "--calibration", "{missing}"], "calibrat"),
        (["{run}", "--format", "tflite", "--out", "{keras_out}"], "already holds a keras export"),
        (["{run}", "--format", "onnx", "--opset", "3"], "`--opset` must be an ONNX opset from 7"),
        (["{run}", "--format", "onnx", "--opset", "99"], "Received: opset=99"),
    ],
)
def test_bad_input_exits_2_with_one_line(run, tmp_path, capsys, args, fragment):
    file = tmp_path / "a_file"
    file.write_text("x")
    keras_out = tmp_path / "keras_out"
    keras_out.mkdir()
    (keras_out / "metadata.json").write_text(json.dumps({"format": "keras"}))
    values = {
        "run": str(run),
        "missing": str(tmp_path / "missing"),
        "file": str(file),
        "keras_out": str(keras_out),
    }
    code, _, stderr = run_main(capsys, "export", *[a.format(**values) for a in args])
    assert code == 2
    (line,) = error_lines(stderr)
    assert line.startswith("cnnhub export: error:") and fragment in line
