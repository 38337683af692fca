"""Tiny run folders for the tests of predict, explain and export.

``shared_tiny_run`` trains one run per session (see there); ``train_tiny_run`` trains a small
custom CNN for a few epochs (seconds); ``fabricate_run`` writes a run folder for another
backbone or other class names from an untrained model of the same config, for tests that need
the architecture but not a trained model (training a keras.applications backbone even for one
epoch costs far more than the whole test budget).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

TINY_FLAGS = [
    "-e", "6", "-b", "8", "-height", "32", "-width", "32", "-lr", "0.01", "--seed", "7",
    "-m", "custom", "--custom_conv_blocks", "c8-bn-mp2,c16-bn-mp2",
    "--num_nodes", "32", "--num_dropouts", "0",
    "--aug_horizontal_flip", "false", "--aug_zoom", "0", "--aug_translation", "0",
]  # fmt: skip


def train_tiny_run(tiny_data, save: Path, name: str, post: bool = True) -> Path:
    """Train the tiny custom CNN on ``tiny_data`` into ``save/model_repository/<name>``."""
    from cnnhub.commands.train import train_main

    code = train_main(
        ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
        + ["-sl", str(save), "--run_name", name, "-post", "true" if post else "false"]
        + TINY_FLAGS
    )
    assert code == 0
    return save / "model_repository" / name


_SHARED: dict[str, Path] = {}
FABRICATED_MODELS: dict[str, object] = {}
"""The model whose (random) weights :func:`fabricate_run` saved, by run folder."""


def shared_tiny_run(tiny_data, tmp_path_factory) -> Path:
    """One trained tiny run (with post-evaluation) per test session, for module fixtures.

    Training is most of these tests' time, so the predict, explain and export modules share
    the run; they only add files to it (``explain/``) or copy it before changing anything.
    """
    key = str(tiny_data["train"])
    if key not in _SHARED or not _SHARED[key].is_dir():
        _SHARED[key] = train_tiny_run(tiny_data, tmp_path_factory.mktemp("tiny_run"), "tiny")
    return _SHARED[key]


def copy_without_best(run: Path, target: Path) -> Path:
    """A copy of ``run`` as if trained without post-evaluation (no best_weights.json)."""
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("best_*", "*.csv", "*.png"))
    return target


def copy_with_data(run: Path, target: Path, **data: object) -> Path:
    """A copy of ``run`` whose run_config.json names other data (``data`` overrides keys)."""
    shutil.copytree(run, target)
    path = target / "run_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(data)
    path.write_text(json.dumps(config), encoding="utf-8")
    return target


def fabricate_run(
    source: Path,
    target: Path,
    model_name: str | None = None,
    class_names: list[str] | None = None,
    **config: object,
) -> Path:
    """A run folder like ``source`` with another backbone and/or classes, random weights.

    Writes run_config.json, index_class_mapping.json and model_logs/weights-001-0.0000...;
    ``config`` overrides run_config keys (e.g. DATA_DIR_VALID).
    """
    from cnnhub.model_factory import build_model

    run_config = json.loads((source / "run_config.json").read_text(encoding="utf-8"))
    mapping = json.loads((source / "index_class_mapping.json").read_text(encoding="utf-8"))
    names = class_names or [mapping[str(i)] for i in range(len(mapping))]
    if model_name:
        run_config["MODEL_NAME"] = model_name
    run_config.update(config)
    run_config["ITERATION_NAME"] = target.name
    if target.exists():
        shutil.rmtree(target)
    (target / "model_logs").mkdir(parents=True)
    (target / "run_config.json").write_text(json.dumps(run_config), encoding="utf-8")
    (target / "index_class_mapping.json").write_text(
        json.dumps({str(i): n for i, n in enumerate(names)}, ensure_ascii=False), encoding="utf-8"
    )
    model = build_model(dict(run_config, WEIGHTS="none"), len(names))
    model.save_weights(target / "model_logs" / "weights-001-0.0000.weights.h5")
    FABRICATED_MODELS[str(target)] = model
    return target


def keras_model(run: Path, weights_file: str | Path):
    """The run's model built independently of cnnhub.run_loading, with ``weights_file``."""
    from cnnhub.model_factory import build_model

    config = json.loads((run / "run_config.json").read_text(encoding="utf-8"))
    mapping = json.loads((run / "index_class_mapping.json").read_text(encoding="utf-8"))
    model = build_model(dict(config, WEIGHTS="none"), len(mapping))
    path = Path(weights_file)
    model.load_weights(path if path.is_absolute() else run / "model_logs" / path)
    return model


def best_weights_file(run: Path) -> str:
    return json.loads((run / "best_weights.json").read_text(encoding="utf-8"))["weights"]


def pixels(paths, size=(32, 32)) -> np.ndarray:
    """Raw float32 0-255 pixels of image files, decoded as cnnhub decodes them."""
    from cnnhub.data.images import load_image

    return np.stack([load_image(p, size=size) for p in paths]).astype(np.float32)


def valid_paths(tiny_data) -> list[str]:
    return sorted(str(p) for p in Path(tiny_data["valid"]).rglob("*.*"))


def error_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not notes."""
    return [line for line in stderr.splitlines() if line and not line.startswith("note:")]


def fabricate_evaluated_run(
    target: Path,
    class_names: list[str],
    epochs: int = 3,
    images: dict[str, list[str]] | None = None,
    per_class: int = 6,
    seed: int = 0,
    **config: object,
) -> Path:
    """A post-evaluated run folder without training: packaged-default config (``config``
    overrides keys), training.log, every epoch's validation reports from seeded random
    probabilities that sharpen with the epochs (written by cnnhub's own report writers),
    analysis_report.csv, best_weights.json (cnnhub's rule) and run_info.json. No weights.

    ``images`` maps each class to its validation image paths (default: ``per_class`` made-up
    paths per class that do not exist).
    """
    from cnnhub.evaluation.run_evaluation import append_report, thresholds_of
    from cnnhub.evaluation.selection import choose_best
    from cnnhub.evaluation.writer import write_weight_reports
    from cnnhub.run_folder import LOG_COLUMNS
    from cnnhub.settings import load_defaults

    rng = np.random.default_rng(seed)
    defaults, _ = load_defaults(user_config=False)
    run_config = dict(defaults, IMG_HEIGHT=32, IMG_WIDTH=32, WEIGHTS="none", SEED=seed)
    run_config.update(config)
    if target.exists():
        shutil.rmtree(target)
    logs = target / "model_logs"
    logs.mkdir(parents=True)
    (target / "run_config.json").write_text(json.dumps(run_config), encoding="utf-8")
    (target / "index_class_mapping.json").write_text(
        json.dumps({str(i): n for i, n in enumerate(class_names)}, ensure_ascii=False),
        encoding="utf-8",
    )
    images = images or {n: [f"valid/{n}/{i}.png" for i in range(per_class)] for n in class_names}
    paths = [p for n in class_names for p in images[n]]
    labels = np.array([i for i, n in enumerate(class_names) for _ in images[n]])
    log_rows = []
    for epoch in range(1, epochs + 1):
        logits = rng.normal(size=(len(labels), len(class_names)))
        logits[np.arange(len(labels)), labels] += 0.15 * epoch
        proba = np.exp(logits * 2) / np.exp(logits * 2).sum(axis=1, keepdims=True)
        accuracy = float((proba.argmax(1) == labels).mean())
        name = f"weights-{epoch:03d}-{accuracy:.4f}.weights.h5"
        result = write_weight_reports(
            logs, name[: -len(".weights.h5")], paths, labels, proba.astype(np.float32),
            class_names, thresholds_of(run_config), weights_name=name, epoch=epoch,
        )  # fmt: skip
        append_report(target / "analysis_report.csv", result["rows"], epoch)
        log_rows.append(
            [epoch, 1.5 / epoch, 0.5 + 0.04 * epoch, result["log_loss"], accuracy, 0.001, 1.0]
        )
    log = pd.DataFrame(log_rows, columns=LOG_COLUMNS)
    log.to_csv(target / "training.log", index=False)
    from cnnhub.evaluation.safe_csv import read_csv_safe

    report = read_csv_safe(target / "analysis_report.csv")
    rule = run_config["BEST_WEIGHT_RULE"]
    best = choose_best(report, None, "macro_f1" if rule == "auto" else rule)
    (target / "best_weights.json").write_text(json.dumps(best), encoding="utf-8")
    counts = {n: len(images[n]) for n in class_names}
    info = {
        "run_name": target.name,
        "model_name": run_config["MODEL_NAME"],
        "class_names": class_names,
        "train_images": 4 * len(labels),
        "valid_images": len(labels),
        "params": 1234,
        "skipped_files": 0,
        "environment": {"python": "3.11", "platform": "test", "cpu_count": 2, "gpus": []},
        "data": {
            "splits": [
                {"name": "train", "origin": "train", "format": "folder", "duplicates": 0,
                 "counts": {n: 4 * k for n, k in counts.items()}},
                {"name": "valid", "origin": "valid", "format": "folder", "duplicates": 0,
                 "counts": counts},
            ],  # fmt: skip
            "leakage": [],
            "content_sha256": "0" * 64,
        },
        "train_seconds": 12.5,
    }
    (target / "run_info.json").write_text(json.dumps(info), encoding="utf-8")
    return target
