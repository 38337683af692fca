"""fastai's learning-rate finder: train briefly while the rate grows exponentially, record the
loss, and suggest the rate where the smoothed loss falls fastest.

The sweep trains an in-memory copy of the run's model (same data, augmentation, training type's
frozen layers, optimizer and loss as training's first epoch) and saves no weights: nothing in a
model repository changes. Its result is the curve (CSV), its plot (PNG) and a one-key config
file with the suggestion, which ``run_training.py -c`` accepts next to the run's own config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnnhub import atomic
from cnnhub.errors import CnnhubError

SMOOTHING = 0.98  # fastai's: an exponential moving average of the loss, bias-corrected
DIVERGENCE = 4.0  # stop once the smoothed loss exceeds DIVERGENCE x its minimum so far
SKIP_START = 0.1  # the first steps' slopes are noise (tiny rates): not suggested


@dataclass
class Sweep:
    """The recorded curve: one row per step (``learning_rate``, ``loss``, ``smoothed_loss``),
    whether it stopped on divergence, and the suggested rate."""

    curve: pd.DataFrame
    diverged: bool
    suggestion: float


def sweep_rates(start: float, end: float, steps: int) -> np.ndarray:
    """The rates of an exponential sweep: ``start x (end / start) ^ (i / (steps - 1))``."""
    return start * (end / start) ** (np.arange(steps) / max(steps - 1, 1))


def smooth(losses: np.ndarray, beta: float = SMOOTHING) -> np.ndarray:
    """fastai's bias-corrected exponential moving average of ``losses``."""
    average, out = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return np.array(out)


def local_slopes(rates: np.ndarray, losses: np.ndarray, window: int) -> np.ndarray:
    """Least-squares slope of ``losses`` per decade of rate over a centred ``window`` of steps
    (a single step's slope is noise)."""
    frame = pd.DataFrame({"x": np.log10(rates), "y": losses})
    rolling = frame.rolling(window, center=True, min_periods=2)
    return (rolling.cov()["y"].xs("x", level=1) / rolling.var()["x"]).to_numpy()


def suggest(rates: np.ndarray, smoothed: np.ndarray) -> float:
    """The rate where the smoothed loss falls fastest per decade of rate (slopes over a
    window of a tenth of the steps), between the first ``SKIP_START`` of the steps and the
    loss's minimum."""
    window = max(len(rates) // 10, 3)
    slopes = local_slopes(rates, smoothed, window)
    low = min(int(len(rates) * SKIP_START), len(rates) - 1)
    high = max(int(np.argmin(smoothed)), low) + 1
    return float(rates[low + int(np.nanargmin(slopes[low:high]))])


def run_sweep(model, batches, rates: np.ndarray) -> Sweep:
    """Train ``model`` (compiled) on one batch of ``batches`` (an endless iterator of (x, y))
    per rate in ``rates``; stop when the smoothed loss diverges or becomes NaN."""
    losses: list[float] = []
    best = math.inf
    diverged = False
    for rate in rates:
        model.optimizer.learning_rate = float(rate)
        x, y = next(batches)
        loss = float(model.train_on_batch(x, y, return_dict=True)["loss"])
        losses.append(loss)
        current = smooth(np.array(losses))[-1]
        if not math.isfinite(current) or (len(losses) > 1 and current > DIVERGENCE * best):
            diverged = True
            break
        best = min(best, current)
    if len(losses) < 3:
        raise CnnhubError(
            f"The loss diverged after {len(losses)} step(s) of the sweep: lower --start_lr. "
            f"Received: start_lr={rates[0]:g}"
        )
    curve = pd.DataFrame({"learning_rate": rates[: len(losses)], "loss": losses})
    # The step that diverged is recorded but left out of the smoothed curve's suggestion.
    kept = curve.iloc[:-1] if diverged else curve
    curve["smoothed_loss"] = smooth(curve["loss"].to_numpy())
    suggestion = suggest(
        kept["learning_rate"].to_numpy(), curve["smoothed_loss"][: len(kept)].to_numpy()
    )
    return Sweep(curve, diverged, suggestion)


def plot_sweep(sweep: Sweep, path: Path, title: str) -> None:
    """Loss (raw and smoothed) against the learning rate on a log axis, the suggestion marked."""
    import matplotlib  # lazy: heavy import, kept off the --help path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy import, kept off the --help path

    from cnnhub.evaluation.plots import plain_text  # lazy: heavy import

    curve = sweep.curve
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(curve["learning_rate"], curve["loss"], alpha=0.3, label="loss per step")
    ax.plot(curve["learning_rate"], curve["smoothed_loss"], label="smoothed loss")
    ax.axvline(sweep.suggestion, color="tab:red", linestyle="--")
    ax.annotate(
        f"suggested {sweep.suggestion:.2g}",
        (sweep.suggestion, float(curve["smoothed_loss"].min())),
        color="tab:red",
    )
    # The diverging tail would squash the curve: show the range the descent lives in.
    before_minimum = curve["smoothed_loss"][: int(curve["smoothed_loss"].argmin()) + 1]
    low, high = float(curve["loss"].min()), float(before_minimum.max())
    ax.set_ylim(low - 0.05 * (high - low), high + 0.25 * (high - low) + 1e-6)
    ax.set_xscale("log")
    ax.set_xlabel("Learning rate")
    ax.set_ylabel("Training loss")
    ax.set_title(plain_text(title))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    atomic.save_figure(path, fig, dpi=100)
    plt.close(fig)


def rounded(rate: float) -> float:
    """``rate`` to two significant digits, as a config line shows it."""
    return float(f"{rate:.2g}")


def write_results(sweep: Sweep, out: Path, title: str) -> dict[str, Path]:
    """``lr_find.csv``, ``lr_find.png`` and ``lr_find.yaml`` (``learning_rate: <suggestion>``)
    in ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"lr_find.{kind}" for kind in ("csv", "png", "yaml")}
    atomic.write_csv(paths["csv"], sweep.curve)
    plot_sweep(sweep, paths["png"], title)
    atomic.write_text(
        paths["yaml"],
        f"# Suggested by `cnnhub lr_find` ({title}): steepest descent of the smoothed loss.\n"
        f"# Train with -c {paths['yaml'].name}, -lr {rounded(sweep.suggestion):g}, or copy the "
        "line into your config.\n"
        f"learning_rate: {rounded(sweep.suggestion):g}\n",
    )
    return paths


def find_learning_rate(
    config: dict[str, Any], start: float, end: float, steps: int, out: Path
) -> tuple[Sweep, dict[str, Path]]:
    """Sweep the learning rate on ``config``'s data and model (its first training phase).

    Raises:
        CnnhubError: bad data or model settings (as training would), or a sweep that diverges
            at once.
    """
    from cnnhub.data.augment import build_augmenter
    from cnnhub.data.mixing import build_mixer
    from cnnhub.data.pipeline import make_dataset
    from cnnhub.data.sets import splits_from_config
    from cnnhub.fused_batch_norm import use_fused_batch_norm
    from cnnhub.model_factory import build_model, check_weights_setting
    from cnnhub.registry import parse_model_names
    from cnnhub.reproducibility import seed_run
    from cnnhub.runner import resolve_models
    from cnnhub.training import freeze_for_epoch, make_loss, make_optimizer, trainable_summary

    specs = parse_model_names(config["MODEL_NAME"])
    if len(specs) != 1:
        raise CnnhubError(
            "lr_find sweeps one model at a time; pass one name with -m. "
            f"Received: model_name={config['MODEL_NAME']}"
        )
    check_weights_setting(specs[0], config["WEIGHTS"])
    if config["FOLDS"]:  # the sweep trains on one fold's training part
        config = dict(config, FOLDS=0, VAL_SPLIT=config["VAL_SPLIT"] or 1 / config["FOLDS"])
    splits = splits_from_config(config)
    (config,) = resolve_models(config, specs, splits.inspection)
    seed_run(config)  # as training: with DETERMINISTIC, the same curve on every sweep
    model = build_model(config, splits.num_classes, class_names=splits.class_names)
    freeze_for_epoch(model, config, 0)
    print(f"{config['MODEL_NAME']} ({config['TRAINING_TYPE']}): " + trainable_summary(model))
    use_fused_batch_norm(model)  # the training steps of a run (cnnhub.training.fit)
    model.compile(optimizer=make_optimizer(config, start), loss=make_loss(config, model))
    augmenter = build_augmenter(config, config["SEED"])
    train = make_dataset(
        splits.train,
        num_classes=splits.num_classes,
        image_size=(config["IMG_HEIGHT"], config["IMG_WIDTH"]),
        batch_size=config["BATCH_SIZE"],
        training=True,
        seed=config["SEED"],
        cache=config["CACHE"],
        augmenter=augmenter,
        mixer=build_mixer(config, config["SEED"]),  # MixUp/CutMix: the loss training sees
        deterministic=config["DETERMINISTIC"],
    )
    batches = iter(train.repeat())
    print(f"Sweeping the learning rate from {start:g} to {end:g} over at most {steps} steps")
    sweep = run_sweep(model, batches, sweep_rates(start, end, steps))
    title = f"{config['MODEL_NAME']}, {config['TRAINING_TYPE']}, batch {config['BATCH_SIZE']}"
    return sweep, write_results(sweep, out, title)
