"""Scoring chunks: `ChunkModelHandler` runs a whole chunk as one RunInference batch, and
`ToChunkRecords` turns the result into scored and dead-letter records."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from beam_pipeline.batch.reading import Chunk
from beam_pipeline.batch.stats import chunk_stats
from beam_pipeline.model import ScoringModel
from beam_pipeline.onnx_handler import OnnxSentimentModelHandler
from beam_pipeline.records import dead_letter_record, scored_record, utc_now
from beam_pipeline.vocabulary import (
    INFERENCE_ERROR,
    INFERENCE_STAGE,
    METRICS_NAMESPACE,
    ROWS_SCORED,
    SCORED,
    dead_lettered_counter,
    unscored_counter,
)


@dataclasses.dataclass
class ChunkRecords:
    """A scored chunk's output: its records (scored or unscored), its dead-letter records and
    its statistics (`stats.chunk_stats`), each written as one file named after the chunk."""

    name: str
    scored: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    stats: dict[str, Any]


def as_inference_batch(chunk: Chunk) -> list[Chunk]:
    """The chunk as a ready inference batch (RunInference ``with_no_batching``)."""
    return [chunk]


def scored_records(records: ChunkRecords) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(chunk name, scored records)``, when the chunk scored rows."""
    if records.scored:
        yield records.name, records.scored


def dead_letter_records(records: ChunkRecords) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(chunk name, dead-letter records)``, when the chunk rejected rows."""
    if records.dead_letters:
        yield records.name, records.dead_letters


def chunk_statistics(records: ChunkRecords) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(chunk name, statistics)``, for every chunk."""
    yield records.name, records.stats


class ChunkModelHandler(ModelHandler[Chunk, PredictionResult, ScoringModel]):
    """Scores whole chunks with an `OnnxSentimentModelHandler`'s model: one `PredictionResult`
    per chunk (``inference`` holds a `model.RowResult` per chunk row, see
    `ScoringModel.score_rows`). Use it with ``with_no_batching()``: chunks are formed while
    reading, not by ``BatchElements``."""

    def __init__(self, base: OnnxSentimentModelHandler):
        super().__init__()
        self._base = base

    def load_model(self) -> ScoringModel:
        return self._base.load_model()

    def run_inference(self, batch: Sequence[Chunk], model: ScoringModel,
                      inference_args: Optional[dict[str, Any]] = None) -> list[PredictionResult]:
        version = model.version()
        return [PredictionResult(example=chunk, inference=model.score_rows(chunk.texts),
                                 model_id=version) for chunk in batch]

    def get_num_bytes(self, batch: Sequence[Chunk]) -> int:
        return sum(self._base.get_num_bytes(chunk.texts) for chunk in batch)

    def get_metrics_namespace(self) -> str:
        return self._base.get_metrics_namespace()

    def share_model_across_processes(self) -> bool:
        return self._base.share_model_across_processes()

    def model_copies(self) -> int:
        return self._base.model_copies()


class ToChunkRecords(beam.DoFn):
    """Turns a scored chunk into its `ChunkRecords`: a record per row the model read (scored,
    or unscored with its status), a dead-letter record per row rejected while reading or
    failing in ONNX Runtime, and the chunk's statistics."""

    def __init__(self, labels: Sequence[str]):
        self._labels = list(labels)
        self._scored = Metrics.counter(METRICS_NAMESPACE, ROWS_SCORED)
        self._failed = Metrics.counter(METRICS_NAMESPACE,
                                       dead_lettered_counter(INFERENCE_ERROR))

    def process(self, result: PredictionResult):
        chunk, scored_at = result.example, utc_now()
        records, dead = [], list(chunk.dead_letters)
        tokens, cut = [], 0
        for row, record_id, outcome in zip(chunk.rows, chunk.ids, result.inference):
            if outcome.failure is not None:
                dead.append(dead_letter_record(row, record_id, INFERENCE_ERROR, INFERENCE_STAGE,
                                               str(outcome.failure)))
                continue
            records.append(scored_record(row, record_id, outcome, self._labels,
                                         result.model_id, scored_at))
            if outcome.tokens is not None:
                tokens.append(outcome.tokens)
                cut += outcome.cut
            if outcome.status != SCORED:
                Metrics.counter(METRICS_NAMESPACE, unscored_counter(outcome.status)).inc()
        self._scored.inc(sum(record["status"] == SCORED for record in records))
        self._failed.inc(len(dead) - len(chunk.dead_letters))
        yield ChunkRecords(chunk.name, records, dead,
                           chunk_stats(chunk.path, self._labels, records, dead, tokens, cut))
