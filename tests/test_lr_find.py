"""``cnnhub lr_find``: the sweep covers its range, the plot and config line are written, the
suggestion sits on the curve's steep descent (checked with an independent computation), the
training type's frozen layers stay frozen, and no run folder changes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from trained_runs import keras_model, shared_tiny_run

from cnnhub.cli import main
from cnnhub.lr_finder import SKIP_START
from cnnhub.model_factory import BACKBONE_LAYER

START, END, STEPS = 1e-4, 10.0, 80
# A net small enough to learn the tiny shapes in a few dozen batches: a clear descent. Without
# --deterministic the threaded augmentation draws differ between sweeps, and on 48 images the
# suggestion then ranges over a decade and more.
NET = ["-height", "16", "-width", "16", "-b", "8", "--pooling", "flatten"]
NET += ["--custom_conv_blocks", "c8k3-mp2", "--dense", "none", "--seed", "3"]
NET += ["--deterministic", "true"]
SWEEP = ["--start_lr", str(START), "--end_lr", str(END), "--steps", str(STEPS)]


@pytest.fixture(scope="module")
def sweep(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("lr_find") / "out"
    data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    assert main(["lr_find", *data, *NET, *SWEEP, "--out", str(out)]) == 0
    return out


def window_slope(curve: pd.DataFrame, centre: int, half: int) -> float:
    """Least-squares slope of the smoothed loss per decade of rate around step ``centre``."""
    part = curve.iloc[max(centre - half, 0) : centre + half + 1]
    return float(np.polyfit(np.log10(part["learning_rate"]), part["smoothed_loss"], 1)[0])


def test_sweep_covers_the_range_and_writes_plot_and_config(sweep):
    curve = pd.read_csv(sweep / "lr_find.csv")
    expected = np.geomspace(START, END, STEPS)[: len(curve)]
    np.testing.assert_allclose(curve["learning_rate"], expected, rtol=1e-9)
    # It ran to the end, or stopped only because the loss diverged (4x its minimum).
    smoothed = curve["smoothed_loss"].to_numpy()
    assert len(curve) == STEPS or smoothed[-1] > 4 * smoothed[:-1].min()
    assert curve["learning_rate"].iloc[-1] > 1.0  # past the useful range
    # fastai's bias-corrected moving average is pandas' adjusted EWM with alpha = 1 - 0.98.
    np.testing.assert_allclose(smoothed, curve["loss"].ewm(alpha=0.02, adjust=True).mean())
    with Image.open(sweep / "lr_find.png") as image:
        assert image.format == "PNG" and image.size[0] > 300
    assert set(p.name for p in sweep.iterdir()) == {"lr_find.csv", "lr_find.png", "lr_find.yaml"}


def test_suggestion_is_in_range_on_a_steep_descent(sweep):
    curve = pd.read_csv(sweep / "lr_find.csv")
    suggested = yaml.safe_load((sweep / "lr_find.yaml").read_text())["learning_rate"]
    assert START < suggested < END
    at = int(np.argmin(np.abs(np.log(curve["learning_rate"] / suggested))))
    minimum = int(curve["smoothed_loss"].idxmin())
    assert at < minimum, "the suggestion lies on the way down, before the loss's minimum"
    half = STEPS // 20
    # The documented range: from the first SKIP_START of the steps (tiny rates, noise) to the
    # loss's minimum.
    low = max(half, int(STEPS * SKIP_START))
    slopes = [window_slope(curve, i, half) for i in range(low, minimum + 1)]
    here = window_slope(curve, at, half)
    assert here < 0 and here <= 0.5 * min(slopes), (here, min(slopes))
    # And the loss truly fell there: the descent from the start to the minimum is real.
    assert curve["smoothed_loss"].iloc[minimum] < 0.9 * curve["smoothed_loss"].iloc[0]


def test_deterministic_sweeps_repeat_exactly(sweep, tiny_data, tmp_path):
    data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    assert main(["lr_find", *data, *NET, *SWEEP, "--out", str(tmp_path)]) == 0
    for name in ("lr_find.csv", "lr_find.yaml"):
        assert (tmp_path / name).read_bytes() == (sweep / name).read_bytes()


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_frozen_backbone_stays_frozen_and_the_source_run_is_untouched(
    tiny_data, tmp_path_factory, tmp_path, capsys
):
    run = shared_tiny_run(tiny_data, tmp_path_factory)
    before = _digest(run.parent)
    capsys.readouterr()  # the shared run's training output, when this test trained it
    data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv = ["lr_find", *data, "-w", str(run), "-tt", "freeze_all", "-b", "8"]
    argv += ["--custom_conv_blocks", "c8-bn-mp2,c16-bn-mp2", "--num_nodes", "32"]
    argv += ["--steps", "12", "--start_lr", "1e-4", "--end_lr", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    total, trainable = (
        int(n.replace(",", ""))
        for n in re.search(r"Total params: ([\d,]+) \| Trainable params: ([\d,]+)", out).groups()
    )
    # freeze_all trains the head only: every parameter outside the backbone.
    weights = sorted((run / "model_logs").glob("*.weights.h5"))[0]
    backbone = keras_model(run, weights).get_layer(BACKBONE_LAYER)
    assert total == backbone.count_params() + trainable and trainable > 0
    assert _digest(run.parent) == before  # nothing in the model repository changed
    assert (tmp_path / "lr_find.yaml").is_file()


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--start_lr", "0"], "0 < start_lr < end_lr"),
        (["--start_lr", "1", "--end_lr", "0.1"], "0 < start_lr < end_lr"),
        (["--steps", "2"], "`--steps` must be in [3, 100000]"),
        (["-m", "custom,custom"], "lr_find sweeps one model at a time"),
        (["--resume", "x"], "not its actions"),
        (["--warmup_epochs", "-2"], "`warmup_epochs` must be a number"),
    ],
)
def test_bad_values_one_line_exit_2(tiny_data, tmp_path, capsys, flags, message):
    data = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    assert main(["lr_find", *data, *flags, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cnnhub lr_find: error:") and message in err[0]
    assert not (tmp_path / "out").exists()
