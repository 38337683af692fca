"""Learning-rate warm-up and schedules: per-step values against independent formulas, exact
after a restart, and bad values refused before training."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnhub import settings
from cnnhub.commands.train import train_main
from cnnhub.schedules import learning_rate_factor, make_step_schedule

BASE = 0.01
STEPS = 3  # batches per epoch in the fit tests


def config_of(**keys) -> dict:
    config = dict(settings.load_defaults(user_config=False)[0])
    config.update({key.upper(): value for key, value in keys.items()})
    return config


def pytorch_one_cycle(total: int, peak: float) -> np.ndarray:
    """torch.optim.lr_scheduler.OneCycleLR(max_lr=peak, total_steps=total) with its defaults
    (pct_start 0.3, div_factor 25, final_div_factor 1e4, anneal cos, two phases), written out
    from its documented definition, one rate per step."""
    initial, final = peak / 25, peak / 25 / 1e4
    end_up, end_down = 0.3 * total - 1, total - 1
    steps = np.arange(total, dtype=float)
    up = initial + (peak - initial) * (1 - np.cos(np.pi * steps / end_up)) / 2
    frac = (steps - end_up) / (end_down - end_up)
    down = final + (peak - final) * (1 + np.cos(np.pi * frac)) / 2
    return np.where(steps <= end_up, up, down)


def expected_rates(kind: str, epochs: int, warmup: int, steps: int) -> np.ndarray:
    """Linear warm-up over ``warmup`` epochs, then the schedule over the remaining epochs."""
    rates = []
    warm = warmup * steps
    cycle = pytorch_one_cycle((epochs - warmup) * steps, BASE)
    for step in range(epochs * steps):
        epoch = step // steps
        if step < warm:
            rates.append(BASE * (step + 1) / warm)
        elif kind == "onecycle":
            rates.append(cycle[step - warm])
        elif kind == "cosine":
            rates.append(BASE * (1 + np.cos(np.pi * (epoch - warmup) / (epochs - warmup))) / 2)
        else:
            rates.append(BASE)
    return np.array(rates)


@pytest.mark.parametrize("total", [7, 10, 101])
def test_one_cycle_is_pytorchs(total):
    config = config_of(lr_schedule="onecycle", epochs=total, warmup_epochs=0)
    ours = [BASE * learning_rate_factor(config, s, 1) for s in range(total)]
    np.testing.assert_allclose(ours, pytorch_one_cycle(total, BASE), rtol=1e-9)
    assert ours[0] == pytest.approx(BASE / 25) and ours[-1] == pytest.approx(BASE / 25 / 1e4)
    assert BASE * 0.97 < max(ours) <= BASE


class RateRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def fit_rates(config: dict, first_epoch: int = 0) -> list[float]:
    """The rate of every step that a fit from ``first_epoch`` to EPOCHS used."""
    x = np.random.default_rng(0).normal(size=(STEPS * 4, 2)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(4)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(BASE), loss="mse")
    recorder = RateRecorder()
    schedule = make_step_schedule(config, BASE, int(data.cardinality()))
    model.fit(
        data,
        epochs=config["EPOCHS"],
        initial_epoch=first_epoch,
        callbacks=[schedule, recorder],
        verbose=0,
    )
    return recorder.rates


@pytest.mark.parametrize(
    "kind,warmup", [("onecycle", 1), ("onecycle", 0), ("cosine", 2), ("plateau", 1)]
)
def test_rate_per_step_in_training_and_after_a_restart(kind, warmup):
    """What the optimizer used at every step of a Keras fit, and of a fit restarted at epoch 2
    with a fresh model and optimizer (as --resume does): the same formula, step by step."""
    config = config_of(lr_schedule=kind, epochs=4, warmup_epochs=warmup)
    expected = expected_rates(kind, 4, warmup, STEPS)
    np.testing.assert_allclose(fit_rates(config), expected, rtol=1e-6)
    np.testing.assert_allclose(fit_rates(config, first_epoch=2), expected[2 * STEPS :], rtol=1e-6)


def test_no_schedule_callback_when_the_rate_is_the_optimizers():
    assert make_step_schedule(config_of(lr_schedule="constant"), BASE, 3) is None
    assert make_step_schedule(config_of(lr_schedule="plateau"), BASE, 3) is None


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--warmup_epochs", "3", "-e", "3"], "`warmup_epochs` must be less than `epochs`"),
        (["--warmup_epochs", "-1"], "`warmup_epochs` must be a number in [0, 100000]"),
        (["--lr_schedule", "onecycles"], "argument --lr_schedule: invalid choice"),
    ],
)
def test_bad_schedule_values_stop_before_training(tmp_path, capsys, flags, message):
    assert train_main(["-sl", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "model_repository").exists()
