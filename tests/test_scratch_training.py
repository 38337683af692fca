"""Random-init training: the chance-level warning's rule, and SqueezeNet's initialisation.

(Every registry entry's scratch BatchNormalization momentum is checked by
tests/test_registry.py, where each entry is built anyway.)
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from cnnhub.callbacks import ChanceLevelWarning, chance_accuracy, stuck_at_chance
from cnnhub.model_factory import build_model, split_at_backbone
from cnnhub.settings import load_defaults


@pytest.mark.parametrize(
    "labels",
    [np.repeat(np.arange(10), 5), np.array([0, 0, 0, 1, 2, 2]), np.array([3, 3, 1])],
)
def test_chance_accuracy_is_the_most_frequent_class_baseline(labels):
    x = np.zeros((len(labels), 1))
    baseline = DummyClassifier(strategy="most_frequent").fit(x, labels).score(x, labels)
    assert chance_accuracy(labels) == pytest.approx(baseline)


@pytest.mark.parametrize(
    "epoch, accuracy, val_accuracy, chance, stuck",
    [
        (2, 0.90, 0.100, 0.1, True),  # the MobileNetV2-on-digits case
        (1, 0.90, 0.100, 0.1, False),  # epoch 1: too early to tell
        (2, 0.90, 0.120, 0.1, True),  # within 0.02 of chance
        (2, 0.90, 0.125, 0.1, False),  # beyond 0.02
        (2, 0.90, 0.050, 0.1, True),  # below chance
        (2, 0.325, 0.10, 0.1, True),  # training closed a quarter of the gap: 0.1 + 0.225
        (2, 0.32, 0.10, 0.1, False),  # not yet
        (3, 0.62, 0.50, 0.5, False),  # two classes: needs 0.5 + 0.125 = 0.625
        (3, 0.63, 0.50, 0.5, True),
    ],
)
def test_stuck_at_chance_rule(epoch, accuracy, val_accuracy, chance, stuck):
    assert stuck_at_chance(epoch, accuracy, val_accuracy, chance) is stuck


def test_chance_warning_is_printed_once_and_kept(capsys):
    warning = ChanceLevelWarning(np.repeat(np.arange(10), 3))
    warning.on_epoch_end(0, {"accuracy": 0.8, "val_accuracy": 0.1})  # epoch 1
    assert warning.message is None and capsys.readouterr().out == ""
    warning.on_epoch_end(1, {"accuracy": 0.5, "val_accuracy": 0.4})  # learning: fine
    assert warning.message is None
    warning.on_epoch_end(2, {"accuracy": 0.86, "val_accuracy": 0.1})
    out = capsys.readouterr().out
    assert out.count("WARNING: epoch 3: validation accuracy 0.100 is at chance (0.100") == 1
    assert "training accuracy is 0.860" in out
    warning.on_epoch_end(3, {"accuracy": 0.9, "val_accuracy": 0.1})
    assert capsys.readouterr().out == "" and warning.message.startswith("epoch 3:")


def test_squeezenet_random_init_keeps_the_signal_scale():
    """Glorot init shrank the signal ~5,000-fold and training stalled at loss ln(K); He init
    (conv1 scaled for the caffe input) keeps the features at unit scale."""
    keras.utils.set_random_seed(0)
    config = dict(load_defaults()[0], MODEL_NAME="squeezenet", WEIGHTS="none")
    model = build_model(dict(config, IMG_HEIGHT=32, IMG_WIDTH=32), num_classes=3)
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    extractor, _ = split_at_backbone(model)  # raw pixels -> preprocessing -> SqueezeNet
    features = extractor.predict(images, verbose=0)
    rms = float(np.sqrt(np.mean(features**2)))
    assert 0.3 < rms < 3.0
    assert 0.3 < np.mean(features > 0) < 0.7  # about half the ReLUs are active
