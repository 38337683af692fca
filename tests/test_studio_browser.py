"""The studio end to end in a real headless Chromium (Debian's chromium + chromedriver, Selenium).

One browser session walks the whole flow on a tiny data set: inspect the data, build a custom
CNN (a block that does not fit shows its shape error), train 2 epochs while the per-epoch table
fills, open the run, upload an image and read its prediction, export to ONNX and download it.
A screenshot of each page is saved under the test's tmp folder; with
``CNNHUB_STUDIO_SCREENSHOTS=docs/studio`` they are also copied there (the README's pictures).
Every request the page makes must stay on this machine.

A missing browser fails the test (it is never skipped): ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, cli_env, make_image_folder

# Gradio's own use of pandas, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:'future.no_silent_downcasting'", "ignore:The copy keyword is deprecated"
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ODD_CLASS = "<b>dog"  # shown as text, never as a bold tag
WAIT = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A workspace with a tiny 2-class data set, served by the studio on a free port."""
    from cnnhub.studio.app import launch
    from cnnhub.studio.process import Trainer
    from cnnhub.studio.workspace import Workspace

    root = tmp_path_factory.mktemp("studio")
    classes = ("cat", ODD_CLASS)
    make_image_folder(root / "data" / "train", 4, size=16, seed=1, classes=classes)
    make_image_folder(root / "data" / "valid", 2, size=16, seed=2, classes=classes)
    workspace = Workspace(root)
    port = _free_port()
    trainer = Trainer(env=cli_env(), cwd=root)
    app = launch(workspace, "127.0.0.1", port, block=False, trainer=trainer)
    yield {"root": root, "url": f"http://127.0.0.1:{port}/", "port": port}
    trainer.stop_all()
    app.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with its performance log (every request the page makes)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver; .ci/run does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--window-size=1280,800", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps",
        "--disable-extensions", "--force-device-scale-factor=1",
        # Anything not on loopback (which Chromium never proxies) goes to a dead proxy.
        "--proxy-server=127.0.0.1:9",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1280, 800)
    # The page itself 1280x800 (the window size includes the browser's own frame).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.implicitly_wait(WAIT)  # elements appear as Gradio renders the page
    yield driver
    driver.quit()


# ---------------------------------------------------------------------------- page helpers


def _value(driver, elem_id: str) -> str:
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.value : null;",
        f"#{elem_id} textarea, #{elem_id} input",
    ) or ""


def _wait_value(driver, elem_id: str, text: str, timeout: float = WAIT) -> str:
    end = time.monotonic() + timeout
    value = ""
    while time.monotonic() < end:
        value = _value(driver, elem_id)
        if text in value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"#{elem_id} never showed {text!r}; it shows {value!r}")


def _type(driver, selector: str, text: str, enter: bool = False) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, selector)
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)
    if enter:
        box.send_keys(Keys.ENTER)
    else:
        box.send_keys(Keys.TAB)  # blur: Gradio takes the value


def _click(driver, elem_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, elem_id).click()


def _tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//button[@role='tab' and normalize-space()='{name}']").click()
    time.sleep(0.5)


def _table_rows(driver, elem_id: str) -> list[list[str]]:
    """The rows of a Gradio Dataframe as text, in row order (its grid of cells)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".sort((a, b) => a.dataset.index - b.dataset.index).map("
        "r => Array.from(r.querySelectorAll('[role=gridcell]')).map(c => c.textContent.trim()));",
        f"#{elem_id} [role=row][data-index]",
    )


def _shot(driver, folder: Path, name: str, anchor: str | None = None) -> Path:
    """A screenshot of the page, scrolled to the top or to element ``anchor``."""
    driver.execute_script(
        "const e = arguments[0] && document.getElementById(arguments[0]);"
        "if (e) { e.scrollIntoView({block: 'start'}); } else { window.scrollTo(0, 0); }",
        anchor,
    )
    time.sleep(0.3)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _copy_screenshots(shots: list[Path]) -> None:
    """With CNNHUB_STUDIO_SCREENSHOTS set, optimised copies of the screenshots go there."""
    target = os.environ.get("CNNHUB_STUDIO_SCREENSHOTS")
    if not target:
        return
    folder = Path(target) if Path(target).is_absolute() else ROOT / target
    folder.mkdir(parents=True, exist_ok=True)
    for shot in shots:
        image = Image.open(shot).convert("RGB").quantize(colors=128, dither=Image.Dither.NONE)
        image.save(folder / shot.name, optimize=True)


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


# ---------------------------------------------------------------------------- the flow


def test_studio_end_to_end(studio, browser, tmp_path):
    from selenium.webdriver.common.by import By

    driver, root, shots = browser, studio["root"], []
    driver.get(studio["url"])
    _wait_value(driver, "studio-title", "cnnhub studio")

    # Data: pick the folders under the root, inspect.
    _type(driver, "#data-train input", "data/train", enter=True)
    _type(driver, "#data-valid input", "data/valid", enter=True)
    _click(driver, "data-inspect")
    _wait_value(driver, "data-status", "2 classes; train 8 images, valid 4 images")
    counts = _table_rows(driver, "data-counts")
    assert [row[:3] for row in counts] == [[ODD_CLASS, "4", "2"], ["cat", "4", "2"]]
    assert not driver.find_elements(By.CSS_SELECTOR, "#data-counts b")  # a name is text
    shots.append(_shot(driver, tmp_path, "data"))

    # Model: 16x16 custom CNN; a block from the form, then a block that does not fit.
    _tab(driver, "Model")
    for elem, value in (("model-height", "16"), ("model-width", "16"), ("model-dense", "16")):
        _type(driver, f"#{elem} textarea, #{elem} input", value)
    _type(driver, "#model-epochs input", "2")
    _type(driver, "#model-batch input", "4")
    # A row of the registry table chooses its backbone; vgg16 cannot take 16x16 images.
    driver.execute_script("document.querySelector('#model-registry-box button').click()")
    driver.find_element(By.CSS_SELECTOR, "#model-registry [data-testid='cell-0-0']").click()
    assert "vgg16" in _wait_value(driver, "model-status", "error:")
    assert _value(driver, "model-name") == "vgg16"
    _type(driver, "#model-name input", "custom", enter=True)
    _wait_value(driver, "model-status", "ok: custom at 16x16x3")
    _type(driver, "#block-filters input", "8")
    _click(driver, "block-add")
    _wait_value(driver, "model-status", "ok: custom at 16x16x3")
    assert _value(driver, "model-blocks") == "c8k3-mp2"
    _type(driver, "#model-blocks textarea", "c8-mp2\nc8-mp2\nc8-mp2\nc8k5-pv")
    _click(driver, "model-apply-text")
    error = _wait_value(driver, "model-status", "error:")
    assert "block 4" in error and "smaller than the 5x5 kernel" in error, error
    _type(driver, "#model-blocks textarea", "c8-mp2\nc16-mp2")
    _click(driver, "model-apply-text")
    _wait_value(driver, "model-status", "ok: custom at 16x16x3")
    layers = _table_rows(driver, "model-layers")
    assert ["backbone/block2_pool", "4x4x16", "0"] in [row[:3] for row in layers], layers
    shots.append(_shot(driver, tmp_path, "model", "model-blocks"))

    # Train 2 epochs: the per-epoch table fills as epochs end.
    _tab(driver, "Train")
    _click(driver, "train-start")
    _wait_value(driver, "train-status", "custom: ")
    seen: list[tuple[int, bool]] = []  # (rows shown, still running) as the page changes
    end = time.monotonic() + 240
    while time.monotonic() < end and "finished" not in _value(driver, "train-status"):
        running = "running" in _value(driver, "train-status")
        state = (len(_table_rows(driver, "train-epochs")), running)
        if not seen or state != seen[-1]:
            seen.append(state)
        time.sleep(0.3)
    status = _value(driver, "train-status")
    assert "finished" in status, (status, _value(driver, "train-console")[-2000:])
    time.sleep(1.5)  # the last tick shows the final table
    epochs = _table_rows(driver, "train-epochs")
    assert [row[0] for row in epochs] == ["1", "2"]
    # The table filled while the run was still going (live), never shrank, and ended full.
    rows = [count for count, _ in seen]
    assert rows == sorted(rows) and any(count and running for count, running in seen), seen
    assert "Run folder:" in _value(driver, "train-console")
    run = root / "model_repository" / "custom"
    logged = (run / "training.log").read_text(encoding="utf-8").splitlines()
    assert len(logged) == 3  # header + the 2 epochs the table showed
    shots.append(_shot(driver, tmp_path, "train"))

    # Runs: the run opens with its best weights and per-class table.
    _tab(driver, "Runs")
    best = _wait_value(driver, "runs-best", "Best weights:")
    expected = json.loads((run / "best_weights.json").read_text(encoding="utf-8"))
    assert expected["weights"] in best
    assert {row[0] for row in _table_rows(driver, "runs-board")} >= {"custom"}
    shots.append(_shot(driver, tmp_path, "runs"))

    # Try: upload a validation image, read its prediction.
    _tab(driver, "Try")
    image = next((root / "data" / "valid" / "cat").iterdir())
    driver.find_element(By.CSS_SELECTOR, "#try-upload input[type=file]").send_keys(str(image))
    time.sleep(1.0)
    _click(driver, "try-predict")
    prediction = _wait_value(driver, "try-status", "confidence")
    top = _table_rows(driver, "try-top")
    assert {row[0] for row in top} == {"cat", ODD_CLASS}
    label = prediction.split(" (confidence")[0]
    assert label in ("cat", ODD_CLASS, "uncertain")
    shots.append(_shot(driver, tmp_path, "try"))

    # Export to ONNX and download the file.
    _tab(driver, "Export")
    _click(driver, "export-button")
    _wait_value(driver, "export-status", "Exported custom", timeout=120)
    link = driver.find_element(By.CSS_SELECTOR, "#export-file a").get_attribute("href")
    assert link.startswith(studio["url"]), link
    with urllib.request.urlopen(link) as response:
        downloaded = response.read()
    assert downloaded == (run / "export" / "onnx" / "model.onnx").read_bytes()
    shots.append(_shot(driver, tmp_path, "export"))

    # Nothing left this machine: every request went to the studio (or was inline data).
    requests = _requests(driver)
    outside = [u for u in requests if not u.startswith((studio["url"], "data:", "blob:"))]
    assert requests and not outside, outside[:5]
    _copy_screenshots(shots)
    assert all(shot.stat().st_size > 0 for shot in shots)
    shutil.rmtree(run / "export", ignore_errors=True)
