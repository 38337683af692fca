"""The Fashion-MNIST recipe works on a few hundred images (the full run is a benchmark)."""

from __future__ import annotations

import json

from cnnhub.commands.train import train_main
from conftest import ROOT

SAMPLE = ROOT / "data" / "fashion_mnist_sample"


def test_recipe_trains_on_the_sample(tmp_path):
    argv = ["-c", str(ROOT / "recipes" / "fashion_mnist.yaml")]
    argv += ["-dtrain", str(SAMPLE / "train"), "-dvalid", str(SAMPLE / "valid")]
    argv += ["-dtest", "", "-sl", str(tmp_path), "-e", "2", "--dev", "20", "--run_name", "recipe"]
    assert train_main(argv) == 0
    run = tmp_path / "model_repository" / "recipe"
    config = json.loads((run / "run_config.json").read_text())
    assert config["COLOR_MODE"] == "grayscale" and config["IMG_HEIGHT"] == 28
    assert config["TIME_BUDGET"] == "590s" and config["TTA"] == "flip"
    info = json.loads((run / "run_info.json").read_text())
    assert info["train_images"] == 200 and info["valid_images"] == 200
    assert (run / "best_weights.json").is_file()
