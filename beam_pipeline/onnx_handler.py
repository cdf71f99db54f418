"""Beam's `ModelHandler` contract over `model.ScoringModel`: texts in, probabilities out.

Use it like any Beam model handler::

    handler = OnnxSentimentModelHandler("gs://bucket/bundle", precision="auto", device="auto")
    texts | RunInference(handler)   # -> PredictionResult(example=text,
                                    #     inference=float32 probabilities in label order,
                                    #     model_id=model version)

The session is created once per worker process in `load_model` (shared across the worker's
processes on CUDA); everything else is `model.ScoringModel`'s.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from beam_pipeline.model import ScoringModel, load_scoring_model
from beam_pipeline.vocabulary import METRICS_NAMESPACE


class OnnxSentimentModelHandler(ModelHandler[str, PredictionResult, ScoringModel]):
    """RunInference handler: texts in, `PredictionResult` (probabilities in label order) out."""

    def __init__(self, bundle_root: str, *, precision: str = "auto", device: str = "auto",
                 max_batch_size: int = 64, max_length: Optional[int] = None,
                 long_text: str = "sentences", intra_op_threads: int = 0,
                 pinned_sha256: Optional[Mapping[str, str]] = None,
                 window_weighting: str = "most_confident", allow_spinning: bool = True,
                 **batching_kwargs):
        """``max_batch_size`` bounds both Beam's batches and the ONNX sub-batches;
        ``max_length`` defaults to the bundle's; ``pinned_sha256`` makes workers refuse bundle
        files other than the planned ones; ``allow_spinning`` as `load_scoring_model`'s;
        ``batching_kwargs`` go to `ModelHandler` (e.g. ``max_batch_duration_secs`` for
        streaming)."""
        super().__init__(max_batch_size=max_batch_size, large_model=device == "cuda",
                         **batching_kwargs)
        self._load_args = dict(bundle_root=bundle_root, precision=precision, device=device,
                               max_batch_size=max_batch_size, max_length=max_length,
                               long_text=long_text, intra_op_threads=intra_op_threads,
                               pinned_sha256=pinned_sha256, window_weighting=window_weighting,
                               allow_spinning=allow_spinning)

    @classmethod
    def from_plan(cls, options: Any, plan: Any, **kwargs):
        """The handler a `ScoringOptions` view describes (bundle, precision, device, batch size,
        long-text mode, threads), for a `planning.ModelPlan` (its max_length, its pinned
        checksums)."""
        return cls(options.model, precision=options.precision, device=options.device,
                   max_batch_size=options.max_batch_size, max_length=plan.max_length,
                   long_text=options.long_text, intra_op_threads=options.ort_threads,
                   pinned_sha256=plan.pinned_sha256,
                   window_weighting=options.window_weighting, **kwargs)

    def load_model(self) -> ScoringModel:
        """Creates the ONNX Runtime session (once per worker process, or once per worker when
        shared across processes on GPU)."""
        return load_scoring_model(**self._load_args)

    def run_inference(self, batch: Sequence[str], model: ScoringModel,
                      inference_args: Optional[dict[str, Any]] = None) -> list[PredictionResult]:
        """Scores a batch of cleaned texts (see validation.clean_text)."""
        probabilities = model.predict(list(batch))
        version = model.version()
        return [PredictionResult(example=text, inference=probs, model_id=version)
                for text, probs in zip(batch, probabilities)]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        """Size of the batch's text in bytes (cheaper than Beam's default of pickling it)."""
        return sum(len(text.encode("utf-8")) for text in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE
