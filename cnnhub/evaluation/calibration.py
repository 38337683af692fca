"""Calibration of a classifier's confidences: expected calibration error and temperature scaling.

* :func:`expected_calibration_error` - ECE over :data:`ECE_BINS` equal-width confidence bins:
  ``sum_b |B_b| / N * |accuracy(B_b) - mean confidence(B_b)|``, where an image falls in bin
  ``b`` when its top probability lies in ``(b / 15, (b + 1) / 15]`` (the usual definition,
  Guo et al. 2017); the prediction is the argmax.
* :func:`reliability_table` - the per-bin counts, accuracy and confidence behind it (the
  reliability diagram).
* :func:`fit_temperature` - the temperature ``T`` minimising the validation log loss of
  ``softmax(z / T)``. A cnnhub model ends in a Dense layer with a softmax, so ``softmax(z / T)``
  is the same model with that layer's kernel and bias divided by ``T``
  (:func:`scale_final_layer`): the calibrated model needs no custom layer and loads anywhere.

numpy and SciPy only (no TensorFlow); :func:`scale_final_layer` takes a built Keras model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

ECE_BINS = 15
"""Confidence bins of the expected calibration error."""
TEMPERATURE_RANGE = (0.05, 20.0)
"""The temperatures :func:`fit_temperature` searches (a wider one would only fit noise)."""
FINAL_LAYER = "predictions"
"""Name of the Dense + softmax layer every cnnhub classifier ends in (model_factory.build_head)."""


def _bins(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin index of each confidence: ``(b / bins, (b + 1) / bins]`` is bin ``b``."""
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability_table(
    labels: npt.ArrayLike, proba: npt.ArrayLike, bins: int = ECE_BINS
) -> dict[str, np.ndarray]:
    """Per confidence bin: ``lower``, ``upper``, ``count``, ``accuracy``, ``confidence``.

    ``accuracy`` and ``confidence`` (the mean top probability) are NaN in empty bins.
    """
    array = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    predicted = array.argmax(axis=1)
    confidence = array[np.arange(len(array)), predicted]
    index = _bins(confidence, bins)
    count = np.bincount(index, minlength=bins)
    correct = np.bincount(index, weights=(predicted == labels).astype(np.float64), minlength=bins)
    summed = np.bincount(index, weights=confidence, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(count > 0, correct / count, np.nan)
        mean_confidence = np.where(count > 0, summed / count, np.nan)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {
        "lower": edges[:-1],
        "upper": edges[1:],
        "count": count,
        "accuracy": accuracy,
        "confidence": mean_confidence,
    }


def expected_calibration_error(
    labels: npt.ArrayLike, proba: npt.ArrayLike, bins: int = ECE_BINS
) -> float:
    """Expected calibration error of ``proba`` (N, K) against integer ``labels`` (N,)."""
    table = reliability_table(labels, proba, bins)
    present = table["count"] > 0
    gaps = np.abs(table["accuracy"][present] - table["confidence"][present])
    return float(np.sum(table["count"][present] * gaps) / np.sum(table["count"]))


def logits_of(proba: npt.ArrayLike) -> np.ndarray:
    """Logits (up to a per-row constant, which softmax ignores) of softmax probabilities.

    A probability that underflowed to 0 becomes the smallest positive float64, so its logit is
    very negative but finite.
    """
    array = np.asarray(proba, dtype=np.float64)
    return np.log(np.clip(array, np.finfo(np.float64).tiny, None))


def apply_temperature(proba: npt.ArrayLike, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / temperature)``: probabilities as the scaled model gives them."""
    return softmax(logits_of(proba) / float(temperature), axis=1)


def _log_loss(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    log_proba = log_softmax(logits / temperature, axis=1)
    return float(-log_proba[np.arange(len(labels)), labels].mean())


def fit_temperature(labels: npt.ArrayLike, proba: npt.ArrayLike) -> float:
    """The temperature in :data:`TEMPERATURE_RANGE` that minimises the mean log loss of
    ``softmax(log(proba) / T)`` on ``labels`` (bounded scalar search on ``log T``)."""
    labels = np.asarray(labels, dtype=np.int64)
    logits = logits_of(proba)
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    result = minimize_scalar(
        lambda log_t: _log_loss(logits, labels, float(np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(result.x))


def calibration_summary(
    labels: npt.ArrayLike, before: npt.ArrayLike, after: npt.ArrayLike, temperature: float
) -> dict[str, Any]:
    """What ``best_weights.json`` records of a temperature calibration."""
    labels = np.asarray(labels, dtype=np.int64)
    return {
        "method": "temperature",
        "temperature": float(temperature),
        "ece_before": expected_calibration_error(labels, before),
        "ece_after": expected_calibration_error(labels, after),
        "log_loss_before": _log_loss(logits_of(before), labels, 1.0),
        "log_loss_after": _log_loss(logits_of(after), labels, 1.0),
        "bins": ECE_BINS,
    }


def scale_final_layer(model: Any, temperature: float) -> None:
    """Divide the final Dense layer's kernel and bias by ``temperature``, in place: the model
    then outputs ``softmax(z / T)``, the temperature-calibrated probabilities."""
    layer = model.get_layer(FINAL_LAYER)
    layer.set_weights([np.asarray(w) / float(temperature) for w in layer.get_weights()])
