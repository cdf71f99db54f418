"""Temperature scaling and expected calibration error (ECE)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import log_loss

from training.metrics import probabilities

ECE_BINS = 15
#: Temperatures searched, as log(T): T between about 0.05 and 20.
LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)


def expected_calibration_error(probs: np.ndarray, labels: Sequence[int],
                               n_bins: int = ECE_BINS) -> float:
    """ECE: the row-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for bin_id in np.unique(bins):
        in_bin = bins == bin_id
        error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def _nll(logits: np.ndarray, labels: Sequence[int], temperature: float) -> float:
    return float(log_loss(labels, probabilities(logits, temperature),
                          labels=list(range(logits.shape[1]))))


def fit_temperature(logits: np.ndarray, labels: Sequence[int]) -> float:
    """The softmax temperature minimising the negative log-likelihood of ``labels``."""
    logits = np.asarray(logits, dtype=np.float64)
    result = minimize_scalar(lambda log_t: _nll(logits, labels, float(np.exp(log_t))),
                             bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
    return float(np.exp(result.x))


def calibrate(logits: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
    """Fits a temperature on validation logits; ECE and NLL before and after."""
    logits = np.asarray(logits, dtype=np.float64)
    temperature = fit_temperature(logits, labels)
    return {"temperature": temperature,
            "ece_before": expected_calibration_error(probabilities(logits), labels),
            "ece_after": expected_calibration_error(probabilities(logits, temperature), labels),
            "nll_before": _nll(logits, labels, 1.0),
            "nll_after": _nll(logits, labels, temperature)}
