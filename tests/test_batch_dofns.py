"""The batch pipeline's steps one by one on Beam's TestPipeline, with a fake scoring model (as
Beam tests RunInference with a FakeModelHandler): reading and validating chunks, scoring a chunk
as one batch, turning results into records, writing a chunk's file."""
from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipeline.batch.planning import BatchJob, RowGroup, list_row_groups
from beam_pipeline.batch.reading import Chunk, ReadChunks
from beam_pipeline.batch.scoring import ChunkModelHandler, ToChunkRecords, as_inference_batch
from beam_pipeline.batch.writing import WriteParquetFiles, part_path
from beam_pipeline.model import InferenceFailure, RowResult
from beam_pipeline.planning import ModelPlan
from beam_pipeline.records import row_id, scored_schema
from beam_pipeline.vocabulary import (
    EMPTY_TEXT,
    INFERENCE_ERROR,
    INFERENCE_STAGE,
    MISSING_ID,
    NULL_TEXT,
    SCORED,
    UNSUPPORTED_LANGUAGE,
    VALIDATION_STAGE,
)

LABELS = ("negative", "positive")
FAILING = "FAIL"  # the fake model fails on texts holding this
FRENCH = "bonjour"  # ... and leaves these unscored


class FakeScoringModel:
    """`model.ScoringModel`'s interface: the positive probability is a function of the text's
    length; a text holding `FAILING` fails as ONNX Runtime would; one holding `FRENCH` is in a
    language the model does not read."""

    def version(self) -> str:
        return "fake-model-v1"

    @staticmethod
    def probabilities(text: str) -> np.ndarray:
        positive = (len(text) % 10) / 10
        return np.array([1 - positive, positive], np.float32)

    def score_rows(self, texts):
        return [self.result(text) for text in texts]

    def result(self, text: str) -> RowResult:
        unsupported = FRENCH in text
        failure = InferenceFailure("Fail", "fake failure") if FAILING in text else None
        return RowResult(
            probabilities=None if failure or unsupported else self.probabilities(text),
            failure=failure, status=UNSUPPORTED_LANGUAGE if unsupported else SCORED,
            language="fr" if unsupported else "en", language_confidence=0.99,
            fingerprint=f"fp-{text}", tokens=None if unsupported else len(text.split()) + 2,
            cut=False)


class FakeModelHandler(ModelHandler):
    """The base handler `ChunkModelHandler` wraps, loading the fake model."""

    def load_model(self) -> FakeScoringModel:
        return FakeScoringModel()

    def run_inference(self, batch, model, inference_args=None):
        raise NotImplementedError("ChunkModelHandler scores chunks itself")

    def get_num_bytes(self, batch) -> int:
        return sum(len(text) for text in batch)


def write_dump(path: Path, texts: list, ids: list | None = None) -> Path:
    columns = {"text": texts, **({"review_id": ids} if ids is not None else {})}
    pq.write_table(pa.table(columns), path, row_group_size=len(texts))
    return path


def batch_job(path: Path, chunk_rows: int, id_column: str | None = None) -> BatchJob:
    schema = pq.read_schema(path)
    return BatchJob(files=(str(path),), input_schema=schema, labels=LABELS,
                    output_prefix=str(path.parent / "out"),
                    dead_letter_prefix=str(path.parent / "out-dead-letter"), text_column="text",
                    id_column=id_column, max_chars=50, chunk_rows=chunk_rows,
                    handler=FakeModelHandler(),
                    model=ModelPlan(manifest={}, labels=LABELS, max_length=32, max_chars=50,
                                    pinned_sha256={}))


def chunk_summary(chunk: Chunk) -> tuple:
    return (chunk.name.rsplit("-", 1)[1], chunk.ids, chunk.texts,
            [(record["id"], record["reason"], record["stage"]) for record in chunk.dead_letters])


def test_read_chunks_cuts_a_row_group_into_validated_chunks(tmp_path):
    texts = ["good one", None, "  ", "x" * 80, "fine", "also fine", "   last  "]
    path = write_dump(tmp_path / "dump.parquet", texts)
    job = batch_job(path, chunk_rows=3)
    [group] = list_row_groups(str(path))
    assert group == RowGroup(str(path), 0, 0, 7)
    ids = [row_id(str(path), index) for index in range(7)]
    with test_pipeline.TestPipeline() as pipeline:
        chunks = (pipeline | beam.Create([group]) | beam.ParDo(ReadChunks(job))
                  | beam.Map(chunk_summary))
        assert_that(chunks, equal_to([
            ("00000", [ids[0]], ["good one"],
             [(ids[1], NULL_TEXT, VALIDATION_STAGE), (ids[2], EMPTY_TEXT, VALIDATION_STAGE)]),
            ("00001", [ids[3], ids[4], ids[5]], ["x" * 50, "fine", "also fine"], []),
            ("00002", [ids[6]], ["last"], []),
        ]))


def test_read_chunks_dead_letters_rows_without_an_id(tmp_path):
    path = write_dump(tmp_path / "dump.parquet", ["has id", "no id"], ids=["r1", None])
    job = batch_job(path, chunk_rows=10, id_column="review_id")
    with test_pipeline.TestPipeline() as pipeline:
        chunks = (pipeline | beam.Create(list(list_row_groups(str(path))))
                  | beam.ParDo(ReadChunks(job)) | beam.Map(chunk_summary))
        assert_that(chunks, equal_to([
            ("00000", ["r1"], ["has id"], [(None, MISSING_ID, VALIDATION_STAGE)])]))


def test_a_chunk_is_one_inference_batch_and_failures_stay_per_row():
    chunk = Chunk("c-00000", "dump.parquet", rows=[{"text": t} for t in ("abc", "a FAIL b")],
                  ids=["1", "2"], texts=["abc", "a FAIL b"])
    with test_pipeline.TestPipeline() as pipeline:
        results = (pipeline | beam.Create([chunk]) | beam.Map(as_inference_batch)
                   | RunInference(ChunkModelHandler(FakeModelHandler()).with_no_batching()))

        def outcome(result: PredictionResult):
            return (result.example.name, result.model_id,
                    [str(item.failure) if item.failure else round(float(item.probabilities[1]), 3)
                     for item in result.inference])

        assert_that(results | beam.Map(outcome), equal_to([
            ("c-00000", "fake-model-v1", [0.3, "Fail: fake failure"])]))


def test_to_chunk_records_keeps_read_dead_letters_and_adds_inference_failures():
    earlier = {"id": "0", "text": None, "reason": NULL_TEXT, "stage": VALIDATION_STAGE}
    texts = ["abcd", "FAIL", "bonjour"]
    chunk = Chunk("c-00001", "dump.parquet", rows=[{"text": text} for text in texts],
                  ids=["1", "2", "3"], texts=texts, dead_letters=[earlier])
    result = PredictionResult(chunk, FakeScoringModel().score_rows(chunk.texts), "v9")
    records = list(ToChunkRecords(LABELS).process(result))
    assert len(records) == 1 and records[0].name == "c-00001"
    scored, unscored = records[0].scored
    assert scored["id"] == "1" and scored["text"] == "abcd" and scored["model_version"] == "v9"
    assert scored["status"] == SCORED and scored["language"] == "en"
    assert scored["sentiment"] == "negative" and scored["score"] == pytest.approx(0.6)
    assert scored["probabilities"] == pytest.approx({"negative": 0.6, "positive": 0.4})
    assert scored["text_fingerprint"] == "fp-abcd"
    assert (unscored["id"], unscored["status"], unscored["language"]) == (
        "3", UNSUPPORTED_LANGUAGE, "fr")
    assert unscored["sentiment"] is unscored["score"] is unscored["probabilities"] is None
    assert records[0].dead_letters == [earlier, {
        "id": "2", "text": "FAIL", "reason": INFERENCE_ERROR, "stage": INFERENCE_STAGE,
        "error": "Fail: fake failure"}]
    stats = records[0].stats
    assert stats["file"] == "dump.parquet" and stats["rows_read"] == 4
    assert stats["statuses"] == {SCORED: 1, UNSUPPORTED_LANGUAGE: 1}
    assert stats["dead_letter_reasons"] == {NULL_TEXT: 1, INFERENCE_ERROR: 1}
    assert stats["sentiment"] == {"negative": 1} and sum(stats["confidence_counts"]) == 1
    assert stats["languages"] == {"en": 1, "fr": 1} and sum(stats["token_counts"]) == 1


def test_write_parquet_files_writes_one_whole_file_per_chunk_and_a_retry_replaces_it(tmp_path):
    schema = scored_schema(pa.schema([pa.field("text", pa.string())]), LABELS)
    prefix = str(tmp_path / "scored")
    first = FakeScoringModel.probabilities("ab")
    record = {"id": "1", "text": "ab", "status": SCORED, "sentiment": "negative",
              "score": float(first[0]), "probabilities": dict(zip(LABELS, map(float, first))),
              "language": "en", "language_confidence": 0.9, "text_fingerprint": "f",
              "model_version": "v", "scored_at": None}
    for attempt in range(2):  # the second run stands for a retried chunk
        written = list(WriteParquetFiles(prefix, schema).process(
            ("c-00000", [{**record, "text": f"ab{attempt}"}])))
        assert written == [part_path(prefix, "c-00000")]
    table = pq.read_table(written[0])
    assert table.schema == schema and table.column("text").to_pylist() == ["ab1"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scored-part-c-00000.parquet"]


def test_a_bare_relative_glob_matches_local_files(tmp_path, monkeypatch):
    """``--input 'dump-*.parquet'`` from the dump's folder: Beam's local file system matches
    nothing for a bare relative glob, so match_files makes it absolute first."""
    from beam_pipeline.files import match_files

    for name in ("dump-1.parquet", "dump-2.parquet", "other.parquet"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    expected = [str(tmp_path / "dump-1.parquet"), str(tmp_path / "dump-2.parquet")]
    assert match_files("dump-*.parquet") == expected
    assert match_files("./dump-*.parquet") == expected
    assert match_files(str(tmp_path / "dump-*.parquet")) == expected
