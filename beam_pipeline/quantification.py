"""Corrected label shares: probabilistic adjusted classify-and-count (PACC; Bella et al. 2010)
with a bootstrap interval, from labelled posts of the same stream stored in the bundle.

With C[k][j] the mean probability of label k over the labelled posts whose true label is j, and
q the mean probabilities over a window's posts, the true shares p satisfy q = C p: p is solved
by least squares, clipped to [0, 1] and renormalised. The 90 % interval is the 5th and 95th
percentile of that solution over bootstrap rounds that resample both the labelled posts (to
rebuild C) and the window's posts (to rebuild q). A matrix too close to singular (a class the
model cannot tell from another: the solution would be wild) gives no correction, said so.
``sentiment-export --quantification_dataset`` writes the labelled posts' probabilities into
``bundle.json`` under ``quantification`` (`quantification_entry`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

METHOD = "pacc"
LEVEL = 0.9
ROUNDS = 200
SEED = 20261201
#: fewer labelled posts of a class than this, or a matrix this badly conditioned: no correction
MIN_POSTS_PER_CLASS = 10
MAX_CONDITION = 20.0
CORRECTED, UNCORRECTED, UNRELIABLE = "corrected", "uncorrected", "unreliable"


def pacc(mean_probabilities: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The shares ``p`` solving ``matrix @ p = mean_probabilities`` (least squares), clipped to
    [0, 1] and renormalised."""
    shares, *_ = np.linalg.lstsq(matrix, mean_probabilities, rcond=None)
    shares = np.clip(shares, 0.0, 1.0)
    total = shares.sum()
    return shares / total if total > 0 else np.full_like(shares, 1.0 / len(shares))


def confusion_matrix(true: np.ndarray, probabilities: np.ndarray, classes: int) -> np.ndarray:
    """C[k][j]: mean probability of label k over the posts whose true label is j (NaN columns
    for a class without posts)."""
    matrix = np.full((classes, classes), np.nan)
    for label in range(classes):
        chosen = probabilities[true == label]
        if len(chosen):
            matrix[:, label] = chosen.mean(axis=0)
    return matrix


@dataclasses.dataclass(frozen=True, eq=False)
class Quantifier:
    """Labelled posts of the stream (their true label ids and the model's probabilities) and what
    they allow: `correct` a window's shares, with an interval."""

    labels: tuple[str, ...]
    true: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Optional[Quantifier]:
        """The bundle's quantifier, or None when it has no ``quantification``."""
        entry = manifest.get("quantification")
        if not entry:
            return None
        labels = tuple(manifest["labels"])
        index = {label: position for position, label in enumerate(labels)}
        return cls(labels, np.array([index[label] for label in entry["true_labels"]]),
                   np.asarray(entry["probabilities"], dtype=np.float64))

    @property
    def matrix(self) -> np.ndarray:
        return confusion_matrix(self.true, self.probabilities, len(self.labels))

    def status(self) -> str:
        """`CORRECTED` when the labelled posts allow a correction, else `UNRELIABLE`."""
        counts = np.bincount(self.true, minlength=len(self.labels))
        if counts.min() < MIN_POSTS_PER_CLASS or np.linalg.cond(self.matrix) > MAX_CONDITION:
            return UNRELIABLE
        return CORRECTED

    def correct(self, window_probabilities: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Corrected shares of a window's posts (rows: posts, columns: labels), and the low and
        high ends of their interval."""
        shares = pacc(window_probabilities.mean(axis=0), self.matrix)
        generator = np.random.default_rng(SEED)
        rounds = np.empty((ROUNDS, len(self.labels)))
        for round_index in range(ROUNDS):
            labelled = generator.integers(0, len(self.true), len(self.true))
            window = generator.integers(0, len(window_probabilities), len(window_probabilities))
            matrix = confusion_matrix(self.true[labelled], self.probabilities[labelled],
                                      len(self.labels))
            if np.isnan(matrix).any():  # a class missing from this resample: its own matrix
                matrix = np.where(np.isnan(matrix), self.matrix, matrix)
            rounds[round_index] = pacc(window_probabilities[window].mean(axis=0), matrix)
        tail = (1 - LEVEL) / 2
        return shares, np.quantile(rounds, tail, axis=0), np.quantile(rounds, 1 - tail, axis=0)


def quantification_entry(labels: Sequence[str], true_labels: Sequence[int],
                         probabilities: np.ndarray, data: str) -> dict[str, Any]:
    """What ``bundle.json`` holds under ``quantification``: the labelled posts (true label,
    probabilities), their probabilistic confusion matrix and per-class probability means, and
    whether they allow a correction."""
    true = np.asarray(true_labels)
    quantifier = Quantifier(tuple(labels), true, np.asarray(probabilities, dtype=np.float64))
    matrix = quantifier.matrix
    return {"method": METHOD, "data": data, "rows": int(len(true)),
            "class_counts": dict(zip(labels, np.bincount(true, minlength=len(labels)).tolist())),
            "confusion_matrix": np.round(matrix, 6).tolist(),  # [predicted k][true j]
            "mean_probabilities_by_class": {
                label: np.round(matrix[:, column], 6).tolist()
                for column, label in enumerate(labels)},
            "status": quantifier.status(), "interval": f"{LEVEL:.0%} bootstrap, {ROUNDS} rounds",
            "true_labels": [labels[label] for label in true],
            "probabilities": np.round(quantifier.probabilities, 5).tolist()}
