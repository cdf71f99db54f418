"""Batch scoring: Parquet files in, scored Parquet and dead-letter Parquet out.

One design for every runner, the DirectRunner and Beam's DaskRunner included::

    Create(row groups: listed from the footers as the pipeline is built) -> Reshuffle
      -> ParDo(ReadChunks): a row group read in chunks of --chunk_rows rows, each row validated
      -> RunInference(ChunkModelHandler(...).with_no_batching()): a chunk is one batch
      -> ParDo(ToChunkRecords): scored records, and dead letters (validation and inference)
      |-> FlatMap(scored_records) ---------------------------> ParDo(WriteParquetFiles) --.
      '-> FlatMap(dead_letter_records) ----------------------> ParDo(WriteParquetFiles) --+
                                                               Flatten(paths written) <---'

Why this shape:

- The DaskRunner translates only Create, ParDo, GroupByKey and Flatten, and it drops whatever a
  DoFn emits from ``finish_bundle``. Beam's ``ReadFromParquet`` does not run there, and
  ``BatchElements`` (which ``RunInference`` uses to batch) and Beam's file sinks
  (``WriteToParquet``) emit their last batch or their file names from ``finish_bundle``: rows are
  lost. So every step here emits from ``process`` only: chunks are formed while reading, handed
  to ``RunInference`` as ready batches (``with_no_batching``), and each chunk's records are
  written as one Parquet file from ``process``.
- Beam's Parquet source yields row-group tables without their position in the file, and the
  stable id of a row without an id column is a hash of its file and row number. So files are
  read with pyarrow through Beam's ``FileSystems`` (local, ``gs://``, any Beam file system), one
  row group at a time and in chunks within it: on the DirectRunner (and Dataflow) memory stays
  bounded by a chunk, never the dump. The DaskRunner holds a whole Dask partition's outputs in a
  list, so there memory grows with the rows per partition: one row group by default.
- Beam's Reshuffle does nothing on the DaskRunner: the Dask partitions of ``Create`` are the
  only parallelism there. So row groups, not files, are created, each its own Dask partition
  (`one_row_group_per_dask_partition`): two workers share even a one-file dump.
- Output files are named after their chunk (input file hash, row group, chunk number) and
  written to a temporary name then renamed: a retried chunk overwrites its own file, nothing is
  written twice.
- The DaskRunner computes only the last step of the pipeline (and what it depends on), so both
  branches end in one Flatten of the written file paths.
- The DaskRunner hands every output of a multi-output ParDo to every consumer, so nothing here
  uses tagged outputs: a chunk carries its dead letters through scoring, and two FlatMaps split
  them off at the end.
- Bad files are found before the run from their footers (`check_input_files`: unreadable,
  a column missing, another schema): an error, or left out with ``--skip_bad_files``. A row
  group whose pages cannot be read is found while reading: its rows are dead-lettered
  (``unreadable_row_group``, stage ``read``, see `ReadChunks`), and the command exits 2 unless
  ``--skip_bad_files``.
- An error ONNX Runtime raises while scoring a chunk loses no row: `ScoringModel.predict_rows`
  bisects the failing sub-batch, the rows that fail alone become dead letters (reason
  ``inference_error``, stage ``inference``, the error's type and first line in ``error``), the
  rest are scored.
- Each chunk is sorted by token length inside the handler, so a chunk of 4,096 rows gives
  sub-batches with little padding.

Counts: ``rows_read`` = ``rows_scored`` + the ``dead_lettered_<reason>`` counters (Beam metrics,
namespace ``sentiment_scoring``); the files written hold the same counts (`count_rows`), which
is how a runner without metrics (Dask) is summarised.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import uuid
from typing import Any, Iterator, Optional, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from beam_pipeline.bundle import pinned_checksums
from beam_pipeline.onnx_handler import (INFERENCE_ERROR, INFERENCE_STAGE, METRICS_NAMESPACE,
                                        InferenceFailure, OnnxSentimentModelHandler, ScoringModel,
                                        check_bundle_of_options)
from beam_pipeline.options import ScoringOptions
from beam_pipeline.records import (dead_letter_record, dead_letter_schema, row_id, scored_record,
                                   scored_schema, utc_now)
from beam_pipeline.validation import (MISSING_ID, VALIDATION_STAGE, InputError, check_columns,
                                      clean_text, default_max_chars, first_line)

PART = "part"
UNREADABLE_ROW_GROUP = "unreadable_row_group"
READ_STAGE = "read"


def open_file(path: str):
    """Opens a file on any Beam file system as stored (no decompression by extension)."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def part_path(prefix: str, name: str) -> str:
    """Path of one output file under ``prefix``."""
    return f"{prefix}-{PART}-{name}.parquet"


def part_pattern(prefix: str) -> str:
    """Glob matching every output file under ``prefix`` (and none of another prefix's)."""
    return f"{prefix}-{PART}-*.parquet"


def match_files(pattern: str) -> list[str]:
    """Paths matching a glob on any Beam file system, sorted; empty when none match. Local paths
    come back absolute, so that ids derived from them do not depend on the working folder."""
    local = FileSystems.get_scheme(pattern) is None
    return sorted(os.path.abspath(metadata.path) if local else metadata.path
                  for result in FileSystems.match([pattern]) for metadata in result.metadata_list)


def count_rows(prefix: str) -> int:
    """Rows in all output files under ``prefix`` (read from the Parquet footers)."""
    total = 0
    for path in match_files(part_pattern(prefix)):
        with open_file(path) as handle:
            total += pq.read_metadata(handle).num_rows
    return total


@dataclasses.dataclass(frozen=True)
class BatchJob:
    """Everything checked before a batch run starts."""

    files: tuple[str, ...]
    input_schema: pa.Schema
    labels: tuple[str, ...]
    output_prefix: str
    dead_letter_prefix: str
    text_column: str
    id_column: Optional[str]
    max_chars: int
    chunk_rows: int
    handler: OnnxSentimentModelHandler
    skipped_files: tuple[str, ...] = ()  # with --skip_bad_files: one line per file, naming it


def describe_schema(schema: pa.Schema) -> str:
    """A schema on one line: ``name: type, ...``."""
    return ", ".join(f"{field.name}: {field.type}" for field in schema)


def check_input_files(files: Sequence[str], text_column: str,
                      id_column: Optional[str]) -> tuple[Optional[pa.Schema], dict[str, str]]:
    """The input schema, and for each file that cannot be scored one line naming it and why:
    not a readable Parquet file (empty, truncated, not Parquet), a required column missing, or a
    schema other than the input schema. The input schema is the one most files share (ties: the
    first file's, in sorted order); None when no file is readable with the required columns."""
    schemas, problems = {}, {}
    for path in files:
        try:
            with open_file(path) as handle:
                schemas[path] = pq.read_schema(handle).remove_metadata()
            check_columns(path, schemas[path].names, text_column, id_column)
        except (pa.ArrowException, OSError) as error:
            problems[path] = f"{path}: not a readable Parquet file ({first_line(error)})"
            schemas.pop(path, None)
        except InputError as error:
            problems[path] = str(error)
            del schemas[path]
    if not schemas:
        return None, problems
    files_per_schema = collections.Counter(schemas.values())
    reference = next(path for path, schema in schemas.items()
                     if files_per_schema[schema] == max(files_per_schema.values()))
    for path, schema in schemas.items():
        if schema != schemas[reference]:
            problems[path] = (f"{path}: its schema ({describe_schema(schema)}) differs from "
                              f"{reference}'s ({describe_schema(schemas[reference])})")
    return schemas[reference], dict(sorted(problems.items()))


def plan_batch_job(options: ScoringOptions) -> BatchJob:
    """Checks flags, input files, bundle and output location; raises `InputError` or
    `BundleError` with one clear line before any data moves. A file that cannot be scored (see
    `check_input_files`) is an error, or with ``--skip_bad_files`` left out and listed in
    `BatchJob.skipped_files`; a glob matching no file is always an error."""
    missing = [f"--{name}" for name in ("input", "output", "model")
               if not getattr(options, name)]
    if missing:
        raise InputError(f"missing required flags: {' '.join(missing)}")
    files = match_files(options.input)
    if not files:
        raise InputError(f"--input {options.input}: no file matches")
    input_schema, problems = check_input_files(files, options.text_column, options.id_column)
    if problems and not options.skip_bad_files:
        raise InputError(next(iter(problems.values())))
    if input_schema is None:
        raise InputError(f"--input {options.input}: no file can be scored: "
                         + "; ".join(problems.values()))
    manifest = check_bundle_of_options(options)
    dead_letter_prefix = options.dead_letter or f"{options.output}-dead-letter"
    for prefix in (options.output, dead_letter_prefix):
        if match_files(part_pattern(prefix)):
            raise InputError(f"{part_pattern(prefix)}: output of an earlier run is there; "
                             "choose another prefix or delete those files")
    labels = tuple(manifest["labels"])
    scored_schema(input_schema, labels, options.id_column)  # refuses clashing column names
    dead_letter_schema(input_schema, options.id_column)
    max_length = options.max_length or int(manifest["max_length"])
    handler = OnnxSentimentModelHandler.from_options(options, max_length,
                                                     pinned_checksums(manifest))
    return BatchJob(files=tuple(path for path in files if path not in problems),
                    input_schema=input_schema, labels=labels,
                    output_prefix=options.output, dead_letter_prefix=dead_letter_prefix,
                    text_column=options.text_column, id_column=options.id_column,
                    max_chars=options.max_chars or default_max_chars(max_length),
                    chunk_rows=options.chunk_rows, handler=handler,
                    skipped_files=tuple(problems.values()))


@dataclasses.dataclass(frozen=True)
class RowGroup:
    """One row group of one input file: the file row number of its first row, its row count."""

    path: str
    index: int
    first_row: int
    rows: int


@dataclasses.dataclass
class Chunk:
    """Validated rows read together; scored as one batch and written as one file."""

    name: str
    rows: list[dict[str, Any]]
    ids: list[str]
    texts: list[str]
    dead_letters: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ChunkRecords:
    """A scored chunk's output: scored records and dead-letter records, written as one file
    each (named after the chunk)."""

    name: str
    scored: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]


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


def list_row_groups(path: str) -> Iterator[RowGroup]:
    """The non-empty row groups of a Parquet file, from its footer."""
    with open_file(path) as handle:
        metadata = pq.read_metadata(handle)
    first_row = 0
    for index in range(metadata.num_row_groups):
        rows = metadata.row_group(index).num_rows
        if rows:
            yield RowGroup(path, index, first_row, rows)
        first_row += rows


class ReadChunks(beam.DoFn):
    """Reads a row group in chunks of ``chunk_rows`` rows, validating each row: yields one
    `Chunk` each, holding its scorable rows and its dead-letter records.

    A row group that cannot be read (corrupt or truncated pages: decompression fails or a page
    checksum written by the writer does not match) loses no row silently: the rows not read yet
    become dead-letter records with reason ``unreadable_row_group``, stage ``read``, their
    columns null, their id from file and row number (null with ``--id_column``), and ``error``
    naming the file, the row group and the error. ``sentiment-score`` then exits 2 naming the
    file, or with ``--skip_bad_files`` exits 0 and lists it in the summary."""

    def __init__(self, job: BatchJob):
        self._job = job
        self._read = Metrics.counter(METRICS_NAMESPACE, "rows_read")
        self._chunk_rows = Metrics.distribution(METRICS_NAMESPACE, "chunk_rows")

    def _record_id(self, path: str, row_index: int, row: dict[str, Any]) -> Optional[str]:
        if self._job.id_column is None:
            return row_id(path, row_index)
        value = row.get(self._job.id_column)
        return None if value is None else str(value)

    def _validated_chunk(self, name: str, group: RowGroup, first_row: int,
                         rows: list[dict[str, Any]]) -> Chunk:
        chunk = Chunk(name, [], [], [])
        for row_index, row in enumerate(rows, start=first_row):
            record_id = self._record_id(group.path, row_index, row)
            text, reason = clean_text(row[self._job.text_column], self._job.max_chars)
            if reason is None and record_id is None:
                reason = MISSING_ID
            if reason is None:
                chunk.rows.append(row)
                chunk.ids.append(record_id)
                chunk.texts.append(text)
            else:
                Metrics.counter(METRICS_NAMESPACE, f"dead_lettered_{reason}").inc()
                chunk.dead_letters.append(
                    dead_letter_record(row, record_id, reason, VALIDATION_STAGE))
        return chunk

    def _unreadable_chunks(self, name_prefix: str, number: int, group: RowGroup, first_row: int,
                           error: BaseException) -> Iterator[Chunk]:
        """The rows from ``first_row`` to the group's end as dead letters, in chunks."""
        detail = (f"{group.path} row group {group.index}: {type(error).__name__}: "
                  f"{first_line(error)}")
        empty_row = dict.fromkeys(self._job.input_schema.names)
        end = group.first_row + group.rows
        for start in range(first_row, end, self._job.chunk_rows):
            stop = min(end, start + self._job.chunk_rows)
            chunk = Chunk(f"{name_prefix}-{number:05d}", [], [], [])
            chunk.dead_letters = [
                dead_letter_record(empty_row, self._record_id(group.path, index, empty_row),
                                   UNREADABLE_ROW_GROUP, READ_STAGE, detail)
                for index in range(start, stop)]
            Metrics.counter(METRICS_NAMESPACE,
                            f"dead_lettered_{UNREADABLE_ROW_GROUP}").inc(stop - start)
            self._read.inc(stop - start)
            number += 1
            yield chunk

    def process(self, group: RowGroup):
        name_prefix = (f"{hashlib.sha256(group.path.encode('utf-8')).hexdigest()[:12]}"
                       f"-{group.index:05d}")
        row_index, number = group.first_row, 0
        with open_file(group.path) as handle:
            try:
                batches = pq.ParquetFile(handle, page_checksum_verification=True).iter_batches(
                    batch_size=self._job.chunk_rows, row_groups=[group.index])
                for batch in batches:
                    rows = batch.to_pylist()
                    yield self._validated_chunk(f"{name_prefix}-{number:05d}", group, row_index,
                                                rows)
                    self._read.inc(len(rows))
                    self._chunk_rows.update(len(rows))
                    row_index += len(rows)
                    number += 1
            except (pa.ArrowException, OSError) as error:
                yield from self._unreadable_chunks(name_prefix, number, group, row_index, error)


class ChunkModelHandler(ModelHandler[Chunk, PredictionResult, ScoringModel]):
    """Scores whole chunks with an `OnnxSentimentModelHandler`'s model: one `PredictionResult`
    per chunk (``inference`` holds, per chunk row, its probabilities or its `InferenceFailure`;
    see `ScoringModel.predict_rows`). Use it with ``with_no_batching()``: chunks are formed while
    reading, not by ``BatchElements``."""

    def __init__(self, base: OnnxSentimentModelHandler):
        super().__init__()
        self._base = base

    def load_model(self) -> ScoringModel:
        return self._base.load_model()

    def run_inference(self, batch: Sequence[Chunk], model: ScoringModel,
                      inference_args: Optional[dict[str, Any]] = None) -> list[PredictionResult]:
        version = model.version()
        return [PredictionResult(example=chunk, inference=model.predict_rows(chunk.texts),
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
    """Turns a scored chunk into its `ChunkRecords`: a scored record per scored row, a
    dead-letter record per row rejected while reading or failing in ONNX Runtime."""

    def __init__(self, labels: Sequence[str]):
        self._labels = list(labels)
        self._scored = Metrics.counter(METRICS_NAMESPACE, "rows_scored")
        self._failed = Metrics.counter(METRICS_NAMESPACE, f"dead_lettered_{INFERENCE_ERROR}")

    def process(self, result: PredictionResult):
        chunk, scored_at = result.example, utc_now()
        scored, dead = [], list(chunk.dead_letters)
        for row, record_id, outcome in zip(chunk.rows, chunk.ids, result.inference):
            if isinstance(outcome, InferenceFailure):
                dead.append(dead_letter_record(row, record_id, INFERENCE_ERROR, INFERENCE_STAGE,
                                               str(outcome)))
            else:
                scored.append(scored_record(row, record_id, outcome, self._labels,
                                            result.model_id, scored_at))
        self._scored.inc(len(scored))
        self._failed.inc(len(dead) - len(chunk.dead_letters))
        yield ChunkRecords(chunk.name, scored, dead)


class WriteParquetFiles(beam.DoFn):
    """Writes each ``(name, records)`` as ``part_path(prefix, name)`` with ``schema``; yields the
    path. The file appears whole or not at all (written under a temporary name, then renamed)."""

    def __init__(self, prefix: str, schema: pa.Schema):
        self._prefix = prefix
        self._schema = schema

    def process(self, named_records: tuple[str, list[dict[str, Any]]]):
        name, records = named_records
        path = part_path(self._prefix, name)
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        table = pa.Table.from_pylist(records, schema=self._schema)
        with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            pq.write_table(table, out)
        FileSystems.rename([temporary], [path])
        yield path


def one_row_group_per_dask_partition(pipeline: beam.Pipeline) -> None:
    """On the DaskRunner, makes each row group its own Dask partition unless
    ``--dask_npartitions`` or ``--dask_partition_size`` is given. Beam's Reshuffle does nothing
    there, so the partitions of ``Create`` are the job's only parallelism, and its default (128
    elements a partition) puts a dump's row groups in one partition, scored by one worker."""
    if not type(pipeline.runner).__module__.startswith("apache_beam.runners.dask"):
        return
    from apache_beam.runners.dask.dask_runner import DaskOptions

    dask_options = pipeline.options.view_as(DaskOptions)
    if dask_options.npartitions is None and dask_options.partition_size is None:
        dask_options.partition_size = 1


def build_batch_pipeline(pipeline: beam.Pipeline, job: BatchJob) -> beam.PCollection:
    """Adds the batch scoring steps for ``job`` (see `plan_batch_job`) to ``pipeline``; returns
    the paths of all files written. Apply nothing after it: the DaskRunner computes only the
    last step added and what it depends on."""
    one_row_group_per_dask_partition(pipeline)
    records = (pipeline
               | "RowGroups" >> beam.Create([group for path in job.files
                                            for group in list_row_groups(path)])
               | "SpreadRowGroups" >> beam.Reshuffle()
               | "ReadAndValidate" >> beam.ParDo(ReadChunks(job))
               | "InferenceBatches" >> beam.Map(as_inference_batch)
               | "Score" >> RunInference(ChunkModelHandler(job.handler).with_no_batching())
               | "ChunkRecords" >> beam.ParDo(ToChunkRecords(job.labels)))
    scored_files = (records
                    | "ScoredRecords" >> beam.FlatMap(scored_records)
                    | "WriteScored" >> beam.ParDo(WriteParquetFiles(
                        job.output_prefix,
                        scored_schema(job.input_schema, job.labels, job.id_column))))
    dead_letter_files = (records
                         | "DeadLetters" >> beam.FlatMap(dead_letter_records)
                         | "WriteDeadLetters" >> beam.ParDo(WriteParquetFiles(
                             job.dead_letter_prefix,
                             dead_letter_schema(job.input_schema, job.id_column))))
    return (scored_files, dead_letter_files) | "FilesWritten" >> beam.Flatten()
