"""Parity of exported ONNX models with the PyTorch model they came from.

Every precision is run on the same token ids (encoded with the bundle's own ``tokenizer.json``, as
the pipeline will) and compared with PyTorch's probabilities. Bounds, from issue 3:

* ``fp32``: max |Δprobability| ≤ 1e-4
* ``fp16``: max |Δprobability| ≤ 1e-2
* ``int8``: predicted-label agreement ≥ 99 %, and with labelled rows an accuracy drop of at most
  0.5 point (an int8 model that scores *higher* than PyTorch is not a failure).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnxruntime
import torch
from sklearn.metrics import accuracy_score, f1_score
from tokenizers import Tokenizer

from beam_pipeline.bundle import MIN_INT8_LABEL_AGREEMENT
from beam_pipeline.model import softmax

MAX_PROB_DIFF = {"fp32": 1e-4, "fp16": 1e-2}
MAX_INT8_ACCURACY_DROP = 0.005
BATCH_SIZE = 32
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def encode_batches(tokenizer: Tokenizer, texts: Sequence[str],
                   input_names: Sequence[str]) -> list[dict[str, np.ndarray]]:
    """Tokenises ``texts`` in batches of `BATCH_SIZE`, each padded to its own longest row.

    ``tokenizer`` must already truncate and pad (the bundle's tokenizer.json does). Returns one
    int64 feed per batch holding exactly ``input_names``.
    """
    fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
    unknown = [name for name in input_names if name not in fields]
    if unknown:
        raise ValueError(f"model inputs {unknown} are not produced by a tokenizer")
    feeds = []
    for start in range(0, len(texts), BATCH_SIZE):
        encodings = tokenizer.encode_batch(list(texts[start:start + BATCH_SIZE]))
        feeds.append({name: np.array([getattr(e, fields[name]) for e in encodings], dtype=np.int64)
                      for name in input_names})
    return feeds


@contextlib.contextmanager
def quiet_onnxruntime() -> Iterator[None]:
    """Silences ONNX Runtime's global logger (e.g. its error when CUDA libraries are absent)."""
    onnxruntime.set_default_logger_severity(4)
    try:
        yield
    finally:
        onnxruntime.set_default_logger_severity(2)


def open_session(model_path: str, precision: str) -> onnxruntime.InferenceSession:
    """A session for checking ``precision``: fp16 on CUDA when it really runs there, else the
    CPU."""
    providers = [CPU]
    if precision == "fp16" and CUDA in onnxruntime.get_available_providers():
        providers = [CUDA, CPU]
    with quiet_onnxruntime():
        return onnxruntime.InferenceSession(model_path, providers=providers)


def onnx_probabilities(session: onnxruntime.InferenceSession,
                       feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Softmax probabilities of an ONNX Runtime session over all batches."""
    return np.concatenate([softmax(session.run(None, feed)[0]) for feed in feeds])


def torch_probabilities(model: torch.nn.Module, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Softmax probabilities of the PyTorch classifier on the same feeds (inference mode)."""
    with torch.inference_mode():
        return np.concatenate([
            softmax(model(**{name: torch.from_numpy(array) for name, array in feed.items()})
                    .logits.float().numpy())
            for feed in feeds])


def label_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (scikit-learn)."""
    return {"accuracy": float(accuracy_score(labels, predictions)),
            "macro_f1": float(f1_score(labels, predictions, average="macro"))}


def compare(precision: str, reference: np.ndarray, candidate: np.ndarray,
            labels: np.ndarray | None) -> dict[str, Any]:
    """Parity figures of ``candidate`` against ``reference`` probabilities, and whether they pass.

    The result has ``passed`` and, when not, ``failure``: one sentence saying which bound missed.
    """
    difference = np.abs(candidate - reference)
    predicted, expected = candidate.argmax(axis=1), reference.argmax(axis=1)
    result: dict[str, Any] = {
        "rows": int(len(reference)),
        "max_abs_prob_diff": float(difference.max()),
        "mean_abs_prob_diff": float(difference.mean()),
        "label_agreement": float((predicted == expected).mean()),
    }
    if labels is not None:
        result["accuracy"] = float(accuracy_score(labels, predicted))
        result["pytorch_accuracy"] = float(accuracy_score(labels, expected))
    failures = []
    if precision in MAX_PROB_DIFF:
        bound = MAX_PROB_DIFF[precision]
        result["bound"] = f"max_abs_prob_diff <= {bound:g}"
        if result["max_abs_prob_diff"] > bound:
            failures.append(f"max |Δprob| {result['max_abs_prob_diff']:.3g} > {bound:g}")
    else:
        result["bound"] = (f"label_agreement >= {MIN_INT8_LABEL_AGREEMENT:g}"
                           + (f", accuracy drop <= {MAX_INT8_ACCURACY_DROP:g}"
                              if labels is not None else ""))
        if result["label_agreement"] < MIN_INT8_LABEL_AGREEMENT:
            failures.append(f"label agreement {result['label_agreement']:.4f} < "
                            f"{MIN_INT8_LABEL_AGREEMENT:g}")
        if labels is not None:
            drop = result["pytorch_accuracy"] - result["accuracy"]
            if drop > MAX_INT8_ACCURACY_DROP:
                failures.append(f"accuracy drop {drop:.4f} > {MAX_INT8_ACCURACY_DROP:g}")
    result["passed"] = not failures
    if failures:
        result["failure"] = f"{precision} misses its parity bound: {'; '.join(failures)}"
    return result
