"""--summary and the parameter line printed before training show what will actually train."""

from __future__ import annotations

import math
import re

import pytest

from cnnhub import settings
from cnnhub.model_factory import BACKBONE_LAYER, build_model
from cnnhub.runner import train_models
from cnnhub.training import freeze_for_epoch, trainable_summary


def head_params(model) -> int:
    """Parameters of the layers after the backbone (the head), counted layer by layer."""
    position = [layer.name for layer in model.layers].index(BACKBONE_LAYER)
    return sum(layer.count_params() for layer in model.layers[position + 1 :])


def config_for(tiny_data, training_type: str) -> dict:
    argv = ["-dtrain", str(tiny_data["train"]), "-dvalid", str(tiny_data["valid"])]
    argv += ["-m", "custom", "-w", "none", "-height", "32", "-width", "32", "-tt", training_type]
    argv += ["--num_nodes", "8", "--num_dropouts", "0.1", "--fine_tune_after", "1", "-e", "2"]
    return settings.resolve(argv)[0]


def test_summary_counts_only_the_head_with_freeze_all(tiny_data, capsys):
    config = config_for(tiny_data, "freeze_all")
    assert train_models(config, summary_only=True) == []
    out = capsys.readouterr().out
    model = build_model(config, 3)
    expected = head_params(model)
    assert 0 < expected < model.count_params()
    # Keras's own summary and cnnhub's one-line count agree with the head's size.
    keras_line = re.search(r"Trainable params: ([\d,]+)", out).group(1)
    assert int(keras_line.replace(",", "")) == expected
    assert f"Trainable params: {expected:,}" in out.splitlines()[-1]


@pytest.mark.parametrize(
    "training_type, epoch, expected",
    [("train_all", 0, "all"), ("freeze_all", 0, "head"), ("fine_tune", 0, "head"),
     ("fine_tune", 1, "more")],
)  # fmt: skip
def test_freeze_for_epoch_matches_the_phase(tiny_data, training_type, epoch, expected):
    config = config_for(tiny_data, training_type)
    model = build_model(config, 3)
    freeze_for_epoch(model, config, epoch)
    trainable = int(trainable_summary(model).rsplit(" ", 1)[1].replace(",", ""))
    statistics = sum(math.prod(w.shape) for w in model.weights if "moving" in w.path)
    if expected == "all":
        assert trainable == model.count_params() - statistics
    elif expected == "head":
        assert trainable == head_params(model)
    else:  # fine_tune phase 2: the backbone trains too (its BatchNorm layers stay frozen)
        assert head_params(model) < trainable < model.count_params() - statistics
