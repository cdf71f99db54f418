"""Classification metrics (scikit-learn) shared by training, evaluation and export."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from beam_pipeline.model import softmax


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` over the last axis: the scoring path's own, so that
    training, evaluation and scoring turn logits into the same probabilities."""
    return softmax(logits, temperature)


def summary_metrics(labels: Sequence[int], predictions: Sequence[int],
                    num_labels: int) -> dict[str, float]:
    """Accuracy and macro precision/recall/F1 (classes absent from both count as 0)."""
    class_ids = list(range(num_labels))
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=class_ids, average="macro", zero_division=0)
    return {"accuracy": float(accuracy_score(labels, predictions)),
            "macro_precision": float(precision), "macro_recall": float(recall),
            "macro_f1": float(f1)}


def classification_metrics(labels: Sequence[int], predictions: Sequence[int],
                           label_names: Sequence[str]) -> dict[str, Any]:
    """Summary metrics plus per-class precision/recall/F1/support and the confusion matrix.

    ``confusion_matrix[i][j]`` counts rows of true class ``i`` predicted as class ``j``.
    """
    class_ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=class_ids, average=None, zero_division=0)
    per_class = {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                        "f1": float(f1[i]), "support": int(support[i])}
                 for i, name in enumerate(label_names)}
    matrix = confusion_matrix(labels, predictions, labels=class_ids)
    return {**summary_metrics(labels, predictions, len(label_names)), "per_class": per_class,
            "confusion_matrix": matrix.tolist()}


def trainer_metrics(num_labels: int) -> Callable[[Any], dict[str, float]]:
    """A ``compute_metrics`` function for the Hugging Face Trainer (scalar metrics only)."""
    def compute(eval_prediction) -> dict[str, float]:
        predictions = np.argmax(eval_prediction.predictions, axis=-1)
        return summary_metrics(eval_prediction.label_ids, predictions, num_labels)
    return compute
