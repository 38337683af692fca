"""report.html, MODEL_CARD.md, calibration (ECE, temperature) and export decision checks.

The page is parsed (every section there, numbers equal to the run's CSVs) and opened in
headless Chromium (Debian's chromium + chromedriver; a missing browser fails the test). Runs are
fabricated (tests/trained_runs.py) or copied from the session's one tiny training.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.optimize import minimize_scalar
from sklearn.metrics import log_loss
from trained_runs import error_lines, fabricate_evaluated_run, shared_tiny_run, valid_paths

from cnnhub.cli import main
from cnnhub.evaluation.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)
from cnnhub.evaluation.safe_csv import read_csv_safe
from cnnhub.report import page, write_report

HOSTILE = "<img src=x onerror=alert(1)>"
CLASSES = [f"class{i}" for i in range(9)] + [HOSTILE]


# --------------------------------------------------------------------------- helpers


class Tables(HTMLParser):
    """Every <table id=...> of a page as rows of cell texts; section ids; img sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.sections: list[str] = []
        self.images: list[str] = []
        self.chosen_rows: dict[str, list[int]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "table":
            self._table = attrs["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            if attrs.get("class") == "chosen":
                self.chosen_rows.setdefault(self._table, []).append(len(self.tables[self._table]))
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> Tables:
    parser = Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def as_frame(rows: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(rows[1:], columns=rows[0])


def shown(value) -> str:
    """A CSV value as the page prints it."""
    return page.number(value)


def write_images(root: Path, names: list[str], count: int) -> dict[str, list[str]]:
    """``count`` noisy 32 px PNGs per class (folders named by index: names may be hostile)."""
    rng = np.random.default_rng(0)
    images = {}
    for index, name in enumerate(names):
        folder = root / f"c{index}"
        folder.mkdir(parents=True)
        images[name] = []
        for i in range(count):
            path = folder / f"{i}.png"
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
            images[name].append(str(path))
    return images


@pytest.fixture(scope="module")
def big_run(tmp_path_factory) -> Path:
    """20 epochs, 10 classes (one named like an HTML tag), 10 real validation images each."""
    base = tmp_path_factory.mktemp("big_run")
    images = write_images(base / "valid", CLASSES, 10)
    run = fabricate_evaluated_run(base / "run", CLASSES, epochs=20, images=images)
    write_report(run)
    return run


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    return shared_tiny_run(tiny_data, tmp_path_factory)


@pytest.fixture(scope="module")
def calibrated_run(tiny_run, tmp_path_factory) -> Path:
    """A copy of the tiny run finished again with CALIBRATE temperature (no new training)."""
    from cnnhub.evaluation.run_evaluation import finalize

    run = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "run_config.json").read_text(encoding="utf-8"))
    config["CALIBRATE"] = "temperature"
    (run / "run_config.json").write_text(json.dumps(config), encoding="utf-8")
    finalize(run, config)
    return run


# --------------------------------------------------------------------------- calibration


def independent_ece(labels, proba, bins=15):
    confidence, predicted = proba.max(axis=1), proba.argmax(axis=1)
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs((predicted[inside] == labels[inside]).mean() - confidence[inside].mean())
            total += inside.sum() / len(labels) * gap
    return total


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_ece_matches_an_independent_computation():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 500)
    proba = softmax(rng.normal(size=(500, 4)) * 3)
    assert expected_calibration_error(labels, proba) == pytest.approx(
        independent_ece(labels, proba), abs=1e-12
    )
    perfect = np.eye(4)[labels]
    assert expected_calibration_error(labels, perfect) == 0.0


def test_temperature_minimises_the_log_loss():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(4000, 5)) * 1.5
    # labels drawn from softmax(logits): those probabilities are calibrated, so the fitted
    # temperature of softmax(2.5 * logits) is about 2.5
    cumulative = softmax(logits).cumsum(axis=1)
    labels = np.minimum((rng.random((4000, 1)) > cumulative).sum(axis=1), 4)
    overconfident = softmax(logits * 2.5)
    found = fit_temperature(labels, overconfident)
    reference = minimize_scalar(
        lambda t: log_loss(labels, softmax(np.log(overconfident) / t), labels=range(5)),
        bounds=(0.1, 10),
        method="bounded",
    ).x
    assert found == pytest.approx(reference, rel=1e-3)
    assert found == pytest.approx(2.5, rel=0.1)
    calibrated = apply_temperature(overconfident, found)
    assert independent_ece(labels, calibrated) < independent_ece(labels, overconfident)


def test_every_epoch_reports_ece(big_run):
    report = read_csv_safe(big_run / "analysis_report.csv")
    name = report[report["epoch"] == 3]["weights_name"].iloc[0]
    predictions = read_csv_safe(big_run / "model_logs" / name.replace(".weights.h5", ".csv"))
    proba = predictions[[f"p_{n}" for n in CLASSES]].to_numpy(np.float64)
    labels = predictions["actual"].map({n: i for i, n in enumerate(CLASSES)}).to_numpy()
    # the CSV holds the float32 probabilities in shortest float32 form: equal to 1e-6
    assert report[report["epoch"] == 3]["ece"].iloc[0] == pytest.approx(
        independent_ece(labels, proba), abs=1e-6
    )


def test_epoch_tolerance_chooses_the_latest_tied_epoch(tiny_run, tmp_path, capsys):
    """BEST_EPOCH_TOLERANCE end to end: the choice, best_weights.json, the printed line, the
    model card and the page."""
    from cnnhub.evaluation.run_evaluation import finalize

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    report = read_csv_safe(run / "analysis_report.csv")
    report.loc[report["epoch"] == 1, "f1_macro"] = 1.0  # epoch 1 scores best by far
    report.to_csv(run / "analysis_report.csv", index=False)
    config = json.loads((run / "run_config.json").read_text(encoding="utf-8"))
    config["BEST_EPOCH_TOLERANCE"] = 1.0  # every epoch is within 1 of the best
    (run / "run_config.json").write_text(json.dumps(config), encoding="utf-8")
    finalize(run, config)
    best = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))
    last = int(report["epoch"].max())
    assert last > 1 and best["weights"].startswith(f"weights-{last:03d}-")
    assert (best["epoch"], best["epoch_tolerance"]) == (last, 1.0)
    assert (best["best_scoring_epoch"], best["best_scoring_value"]) == (1, 1.0)
    rows = report[report["epoch"] == last]
    top = rows[rows["f1_macro"] == rows["f1_macro"].max()]
    assert best["threshold"] == top["threshold"].max()  # that epoch's best row
    note = "(the latest epoch within 1 of the best score, 1.0000 at epoch 1)"
    assert note in capsys.readouterr().out
    write_report(run)
    assert note in (run / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert note in html.unescape((run / "report.html").read_text(encoding="utf-8"))


def test_calibrate_temperature_is_inside_best_model_and_exports(
    calibrated_run, tiny_data, tmp_path, capsys
):
    import keras

    best = json.loads((calibrated_run / "best_weights.json").read_text(encoding="utf-8"))
    stem = best["weights"].removesuffix(".weights.h5")
    logs = calibrated_run / "model_logs"
    names = ["circle", "square", "stripes"]
    raw = read_csv_safe(logs / f"{stem}.csv")
    proba = raw[[f"p_{n}" for n in names]].to_numpy(np.float64)
    labels = raw["actual"].map({n: i for i, n in enumerate(names)}).to_numpy()
    reference = minimize_scalar(
        lambda t: log_loss(labels, softmax(np.log(proba) / t), labels=range(3)),
        bounds=(0.05, 20),
        method="bounded",
        options={"xatol": 1e-8},
    ).x
    calibration = best["calibration"]
    assert calibration["temperature"] == pytest.approx(reference, rel=1e-3)
    expected = softmax(np.log(proba) / calibration["temperature"])
    assert calibration["ece_before"] == pytest.approx(independent_ece(labels, proba), abs=1e-6)
    assert calibration["ece_after"] == pytest.approx(independent_ece(labels, expected), abs=1e-6)
    # The deploy threshold was chosen (macro_f1) on the calibrated probabilities.
    overall = read_csv_safe(logs / f"{stem}-calibrated-thresholds.csv")
    assert (
        best["threshold"]
        == overall.sort_values(
            ["f1_macro", "threshold"], ascending=[False, False], kind="mergesort"
        )["threshold"].iloc[0]
    )
    # best_model.keras, loaded by Keras alone, gives the calibrated probabilities.
    model = keras.saving.load_model(calibrated_run / "best_model.keras", safe_mode=True)
    by_path = dict(zip(raw["image_path"], expected))
    paths = valid_paths(tiny_data)
    from trained_runs import pixels

    outputs = model.predict(pixels(paths), verbose=0)
    np.testing.assert_allclose(outputs, np.stack([by_path[p] for p in paths]), atol=1e-4)
    # An export of the best weights is calibrated too, its check is written, and the
    # report (rewritten by the export) lists it.
    assert main(["export", str(calibrated_run), "--format", "keras"]) == 0
    out = calibrated_run / "export" / "keras"
    exported = keras.saving.load_model(out / "model.keras", safe_mode=True)
    np.testing.assert_allclose(exported.predict(pixels(paths), verbose=0), outputs, atol=1e-5)
    check = json.loads((out / "check.json").read_text(encoding="utf-8"))
    assert check["flipped"] == 0 and check["images"] == len(paths) and check["passed"]
    exports = as_frame(parse(calibrated_run / "report.html").tables["exports-table"])
    assert exports[["format", "check", "flipped"]].values.tolist() == [["keras", "passed", "0"]]
    # Held-out scoring (here: the validation images again) scores the calibrated model, so its
    # figures at the deploy threshold are the calibrated validation figures.
    assert main(["evaluate", str(calibrated_run), "--data_dir", str(tiny_data["valid"])]) == 0
    ((name, summary),) = [
        (p.parent.name, json.loads(p.read_text()))
        for p in calibrated_run.glob("evaluations/*/*.json")
    ]
    row = overall[overall["threshold"] == best["threshold"]].iloc[0]
    assert summary["coverage@deploy"] == pytest.approx(row["coverage"])
    assert summary["f1_macro@deploy"] == pytest.approx(row["f1_macro"])
    heldout = as_frame(parse(calibrated_run / "report.html").tables["heldout-table"])
    assert heldout["folder"].tolist() == [name]
    # The leaderboard shows the deployed (calibrated) model's figures at its threshold.
    assert main(["compare", str(calibrated_run.parent)]) == 0
    board = read_csv_safe(calibrated_run.parent / "leaderboard.csv")
    assert board["coverage@deploy"].iloc[0] == pytest.approx(row["coverage"])


# --------------------------------------------------------------------------- report.html


def test_report_is_written_at_the_end_of_training(tiny_run):
    tables = parse(tiny_run / "report.html")
    assert tables.sections == list(page.SECTIONS)
    card = (tiny_run / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Evaluation results" in card
    info = json.loads((tiny_run / "run_info.json").read_text(encoding="utf-8"))
    counts = {s["name"]: s["counts"] for s in info["data"]["splits"]}
    assert counts == {"train": dict.fromkeys(["circle", "square", "stripes"], 16),
                      "valid": dict.fromkeys(["circle", "square", "stripes"], 6)}  # fmt: skip
    assert len(info["data"]["content_sha256"]) == 64


def test_report_sections_and_numbers_equal_the_csvs(big_run):
    path = big_run / "report.html"
    text = path.read_text(encoding="utf-8")
    size = path.stat().st_size
    print(f"\n[report] 20 epochs, 10 classes, 12-image gallery: {size:,} bytes")
    assert size < 2_000_000
    tables = parse(path)
    assert tables.sections == list(page.SECTIONS)
    for key in ("heldout", "exports"):  # nothing of the kind in this run
        assert f'<section id="{key}"><h2>' in text
    # self-contained: nothing fetched, no script
    assert "<script" not in text.lower() and "http://" not in text and "https://" not in text
    assert tables.images and all(s.startswith("data:image/png;base64,") for s in tables.images)
    best = json.loads((big_run / "best_weights.json").read_text(encoding="utf-8"))
    stem = best["weights"].removesuffix(".weights.h5")
    wrong = (read_csv_safe(big_run / "model_logs" / f"{stem}.csv")["correct"] == 0).sum()
    assert wrong > 0  # curves, thresholds, reliability, then the gallery's thumbnails:
    assert len(tables.images) == 3 + min(12, wrong)
    # the hostile class name is text
    assert HOSTILE not in text and html.escape(HOSTILE) in text

    log = pd.read_csv(big_run / "training.log")
    report = read_csv_safe(big_run / "analysis_report.csv")
    epochs = as_frame(tables.tables["epochs-table"])
    assert epochs["epoch"].tolist() == [str(e) for e in log["epoch"]]
    assert epochs["val_loss"].tolist() == [shown(v) for v in log["val_loss"]]
    at_zero = report[report["threshold"] == 0.0].sort_values("epoch")
    assert epochs["report_f1_macro"].tolist() == [shown(v) for v in at_zero["f1_macro"]]
    assert epochs["report_ece"].tolist() == [shown(v) for v in at_zero["ece"]]
    assert tables.chosen_rows["epochs-table"] == [best["epoch"]]  # header is row 0

    overall = read_csv_safe(big_run / "model_logs" / f"{stem}-thresholds.csv")
    thresholds = as_frame(tables.tables["thresholds-table"])
    assert thresholds["coverage"].tolist() == [shown(v) for v in overall["coverage"]]
    chosen = tables.chosen_rows["thresholds-table"]
    assert [overall["threshold"].iloc[i - 1] for i in chosen] == [best["threshold"]]

    classes = read_csv_safe(big_run / "model_logs" / f"{stem}-classes.csv")
    at_deploy = classes[classes["threshold"] == best["threshold"]]
    shown_classes = as_frame(tables.tables["classes-table"])
    assert shown_classes["class"].tolist() == CLASSES
    assert shown_classes["recall"].tolist() == [shown(v) for v in at_deploy["recall"]]

    confusion = read_csv_safe(big_run / "model_logs" / f"{stem}-confusion.csv")
    matrix = tables.tables["confusion-table"]
    assert matrix[0][1:] == CLASSES
    assert [[int(c) for c in row[1:]] for row in matrix[1:]] == confusion[CLASSES].values.tolist()

    counts = as_frame(tables.tables["class-counts"])
    assert counts["valid"].tolist()[:-1] == ["10"] * 10
    calibration = dict(tables.tables["calibration-table"][1:])
    row = report[(report["weights_name"] == best["weights"]) & (report["threshold"] == 0)]
    assert calibration["expected calibration error (15 bins)"] == shown(row["ece"].iloc[0])


def test_report_shows_heldout_evaluations_skipped_files_and_exports(big_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(big_run, run)
    summary = {"role": "held-out", "source": "test <b>data</b>", "images": 40,
               "weights": "w.h5", "deploy_threshold": 0.5, "accuracy@0": 0.75}  # fmt: skip
    (run / "evaluations" / "test-1234").mkdir(parents=True)
    (run / "evaluations" / "test-1234" / "summary.json").write_text(json.dumps(summary))
    (run / "skipped_files.csv").write_text("path,reason\nbad <x>.png,cannot be decoded\n")
    export = run / "export" / "tflite-int8"
    export.mkdir(parents=True)
    (export / "metadata.json").write_text(json.dumps({"format": "tflite-int8", "weights": "w"}))
    check = {"images": 100, "flipped": 3, "flip_rate": 0.03, "accepted_to_abstained": 2,
             "abstained_to_accepted": 0, "class_changed": 1, "passed": True,
             "per_class": [{"class": HOSTILE, "images": 10, "flipped": 3}]}  # fmt: skip
    (export / "check.json").write_text(json.dumps(check))
    assert main(["report", str(run)]) == 0
    tables = parse(run / "report.html")
    heldout = as_frame(tables.tables["heldout-table"])
    assert heldout["source"].tolist() == ["test <b>data</b>"]
    assert heldout["accuracy@0"].tolist() == ["0.7500"]
    assert as_frame(tables.tables["skipped-files"])["path"].tolist() == ["bad <x>.png"]
    exports = as_frame(tables.tables["exports-table"])
    assert exports[["format", "flipped", "flip_rate", "class_changed"]].values.tolist() == [
        ["tflite-int8", "3", "0.0300", "1"]
    ]
    assert as_frame(tables.tables["export-tflite-int8-classes"])["class"].tolist() == [HOSTILE]
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "<b>data</b>" not in text and "bad <x>" not in text
    card = (run / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "test &lt;b&gt;data&lt;/b&gt;" in card and "| 40 |" in card


def test_report_in_headless_chromium(big_run, tmp_path):
    """The page renders offline in Chromium with no console error, and the hostile class
    name is text, not an element."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "install chromium and chromium-driver (Debian)"
    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(argument)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException:  # chromedriver slow to start on a loaded machine: once more
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get((big_run / "report.html").resolve().as_uri())
        shot = tmp_path / "report.png"
        assert painted_screenshot(driver, shot) > 10, "the page stayed blank"
        problems = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert problems == []
        assert driver.execute_script("return document.querySelectorAll('section').length") == 11
        assert (
            driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
        )
        assert HOSTILE in driver.execute_script("return document.body.innerText")
        broken = driver.execute_script(
            "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length"
        )
        assert broken == 0
    finally:
        driver.quit()


def painted_screenshot(driver, path: Path, timeout: float = 20.0) -> int:
    """Save a screenshot of the page once it shows more than 10 grey levels (painted), trying
    until ``timeout``; returns its number of grey levels. The load event can come before the
    first paint on a loaded machine: a screenshot taken at once was blank white."""
    deadline = time.monotonic() + timeout
    while True:
        assert driver.save_screenshot(str(path))
        with Image.open(path) as image:
            levels = len(np.unique(np.asarray(image.convert("L"))))
        if levels > 10 or time.monotonic() > deadline:
            return levels
        time.sleep(0.2)


def test_report_command_bad_run_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("cnnhub report: error: Run folder not found")
    assert not (tmp_path / "missing").exists()


# --------------------------------------------------------------------------- model card


def test_model_card_headings_and_contents(big_run):
    card = (big_run / "MODEL_CARD.md").read_text(encoding="utf-8")
    for heading in ("# Model card for", "## Model details", "## Intended uses & limitations",
                    "### Limitations (noted automatically)", "## Training data",
                    "## Evaluation results", "## How to use"):  # fmt: skip
        assert f"\n{heading}" in card
    best = json.loads((big_run / "best_weights.json").read_text(encoding="utf-8"))
    assert f"**Deploy threshold:** {best['threshold']:g}" in card
    assert "**Split seed:** 0" in card and "`" + "0" * 64 + "`" in card
    assert HOSTILE not in card and "&lt;img src=x onerror=alert\\(1\\)&gt;" in card
    assert "Expected calibration error (15 bins, validation)" in card
    # every class has 40 training images (>= 20): only recall can be named
    assert "fewer than 20 training images" not in card
    overall = read_csv_safe(
        big_run / "model_logs" / best["weights"].replace(".weights.h5", "-thresholds.csv")
    )
    row = overall[overall["threshold"] == best["threshold"]].iloc[0]
    validation = next(line for line in card.splitlines() if line.startswith("| validation"))
    assert f"{row['coverage']:.4f}" in validation and f"{row['f1_macro']:.4f}" in validation


def test_model_card_names_small_classes_and_leakage(big_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(big_run, run)
    info = json.loads((run / "run_info.json").read_text(encoding="utf-8"))
    info["data"]["splits"][0]["counts"]["class3"] = 5
    info["data"]["leakage"] = [{"from": "train", "into": "valid", "images": 2, "examples": []}]
    (run / "run_info.json").write_text(json.dumps(info), encoding="utf-8")
    write_report(run)
    card = (run / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "fewer than 20 training images: class3 (5)" in card
    assert "Leakage: 2 image(s) of valid are exact copies of train images" in card
    assert "WARNING: 2 image(s) of valid" in (run / "report.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- other tasks


def fabricate_regression_run(target: Path, images: list[str], epochs: int = 3) -> Path:
    """A post-evaluated regression run folder written by cnnhub's regression writers from
    seeded predictions (no training)."""
    from cnnhub.evaluation.regression import (
        choose_best_regression,
        regression_report,
        write_regression_reports,
    )
    from cnnhub.settings import load_defaults

    rng = np.random.default_rng(1)
    config, _ = load_defaults(user_config=False)
    config.update(TASK="regression", IMG_HEIGHT=32, IMG_WIDTH=32, WEIGHTS="none")
    (target / "model_logs").mkdir(parents=True)
    (target / "run_config.json").write_text(json.dumps(config), encoding="utf-8")
    (target / "index_class_mapping.json").write_text('{"0": "age <years>"}', encoding="utf-8")
    actual = rng.uniform(0, 80, len(images))
    rows, log = [], []
    for epoch in range(1, epochs + 1):
        predicted = actual + rng.normal(0, 30 / epoch, len(actual))
        name = f"weights-{epoch:03d}-{epoch:.4f}.weights.h5"
        rows += write_regression_reports(
            target / "model_logs", name.removesuffix(".weights.h5"), images, actual,
            predicted, ["age <years>"], weights_name=name, epoch=epoch,
        )  # fmt: skip
        log.append([epoch, 9.0 / epoch, 20.0 / epoch, 10.0 / epoch, rows[-1]["mae"], 0.01, 1.0])
    columns = ["epoch", "loss", "mae", "val_loss", "val_mae", "learning_rate", "seconds"]
    pd.DataFrame(log, columns=columns).to_csv(target / "training.log", index=False)
    report = regression_report(rows)
    report.to_csv(target / "analysis_report.csv", index=False)
    best = choose_best_regression(report, "mae")
    (target / "best_weights.json").write_text(json.dumps(best), encoding="utf-8")
    return target


def test_regression_report_and_card(tmp_path):
    images = write_images(tmp_path / "valid", ["a"], 8)["a"]
    run = fabricate_regression_run(tmp_path / "run", images)
    assert main(["report", str(run)]) == 0
    tables = parse(run / "report.html")
    assert tables.sections == list(page.sections_of("regression"))
    report = pd.read_csv(run / "analysis_report.csv")
    epochs = as_frame(tables.tables["epochs-table"])
    assert epochs["report_mae"].tolist() == [shown(v) for v in report["mae"]]
    assert epochs["report_r2"].tolist() == [shown(v) for v in report["r2"]]
    best = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))
    assert tables.chosen_rows["epochs-table"] == [best["epoch"]]
    predictions = read_csv_safe(run / "model_logs" / best["weights"].replace(".weights.h5", ".csv"))
    (target,) = as_frame(tables.tables["targets-table"]).values.tolist()
    assert target[:3] == ["age <years>", shown(predictions["error"].abs().mean()),
                          shown(float(np.sqrt((predictions["error"] ** 2).mean())))]  # fmt: skip
    # the gallery shows the 8 images, largest error first
    assert len(tables.images) == 2 + 8  # curves, predicted against actual, thumbnails
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "age <years>" not in text and "age &lt;years&gt;" in text
    card = (run / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "pipeline_tag" not in card and "1 targets: age &lt;years&gt;" in card
    row = report[report["weights_name"] == best["weights"]].iloc[0]
    validation = next(line for line in card.splitlines() if line.startswith("| validation"))
    assert f"| {row['mae']:.4f} | {row['rmse']:.4f} | {row['r2']:.4f} |" in validation


def test_multi_label_report_and_card(tmp_path):
    """A multi-label run folder written by cnnhub's multi-label writers and its task's choice
    of the best weights (seeded outputs, no training)."""
    from cnnhub.evaluation.multilabel_reports import (
        multilabel_analysis_report,
        write_multilabel_reports,
    )
    from cnnhub.settings import load_defaults
    from cnnhub.tasks import get_task

    names = ["cat", "dog", "<b>bird</b>"]
    images = write_images(tmp_path / "valid", ["x"], 12)["x"]
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, (12, 3))
    config, _ = load_defaults(user_config=False)
    config.update(TASK="multi_label", IMG_HEIGHT=32, IMG_WIDTH=32, WEIGHTS="none")
    run = tmp_path / "run"
    (run / "model_logs").mkdir(parents=True)
    (run / "run_config.json").write_text(json.dumps(config), encoding="utf-8")
    mapping = json.dumps({str(i): n for i, n in enumerate(names)})
    (run / "index_class_mapping.json").write_text(mapping, encoding="utf-8")
    rows, log = [], []
    for epoch in (1, 2):
        proba = np.clip(truth * 0.3 * epoch + rng.uniform(0, 0.6, truth.shape), 0, 1)
        name = f"weights-{epoch:03d}-0.{epoch}000.weights.h5"
        rows += write_multilabel_reports(
            run / "model_logs", name.removesuffix(".weights.h5"), images, truth, proba,
            names, weights_name=name, epoch=epoch,
        )["rows"]  # fmt: skip
        log.append([epoch, 1.0 / epoch, 0.6, 0.9 / epoch, 0.5 + 0.1 * epoch, 0.01, 1.0])
    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
    pd.DataFrame(log, columns=columns).to_csv(run / "training.log", index=False)
    report = multilabel_analysis_report(rows)
    report.to_csv(run / "analysis_report.csv", index=False)
    best = get_task(config).choose_best(report, run / "model_logs", config)
    (run / "best_weights.json").write_text(json.dumps(best), encoding="utf-8")

    assert main(["report", str(run)]) == 0
    tables = parse(run / "report.html")
    assert tables.sections == list(page.sections_of("multi_label"))
    epochs = as_frame(tables.tables["epochs-table"])
    assert epochs["report_map"].tolist() == [shown(v) for v in report["map"]]
    stem = best["weights"].removesuffix(".weights.h5")
    chosen = read_csv_safe(run / "model_logs" / f"{stem}-class_thresholds.csv")
    classes = as_frame(tables.tables["classes-table"])
    assert classes["class"].tolist() == names
    assert classes["threshold"].tolist() == [shown(v) for v in chosen["threshold"]]
    assert classes["f1"].tolist() == [shown(v) for v in chosen["f1"]]
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "<b>bird</b>" not in text and "&lt;b&gt;bird&lt;/b&gt;" in text
    card = (run / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "**Class thresholds** (chosen on validation)" in card
    row = report[report["weights_name"] == best["weights"]].iloc[0]
    validation = next(line for line in card.splitlines() if line.startswith("| validation"))
    assert f"| {row['map']:.4f} | {row['f1_micro']:.4f} |" in validation
