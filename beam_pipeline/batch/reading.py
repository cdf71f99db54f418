"""Reading a row group in chunks of validated rows; a row group that cannot be read becomes dead
letters (reason ``unreadable_row_group``, stage ``read``), never a silent loss."""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any, Optional

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from beam_pipeline.batch.planning import BatchJob, RowGroup
from beam_pipeline.errors import first_line
from beam_pipeline.files import open_file
from beam_pipeline.records import dead_letter_record, row_id
from beam_pipeline.validation import clean_text
from beam_pipeline.vocabulary import (
    CHUNK_ROWS,
    METRICS_NAMESPACE,
    MISSING_ID,
    READ_STAGE,
    ROWS_READ,
    UNREADABLE_ROW_GROUP,
    VALIDATION_STAGE,
    dead_lettered_counter,
)


@dataclasses.dataclass
class Chunk:
    """Validated rows read together; scored as one batch and written as one file."""

    name: str
    path: str
    rows: list[dict[str, Any]]
    ids: list[str]
    texts: list[str]
    dead_letters: list[dict[str, Any]] = dataclasses.field(default_factory=list)


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
        self._read = Metrics.counter(METRICS_NAMESPACE, ROWS_READ)
        self._chunk_rows = Metrics.distribution(METRICS_NAMESPACE, CHUNK_ROWS)

    def _record_id(self, path: str, row_index: int, row: dict[str, Any]) -> Optional[str]:
        if self._job.id_column is None:
            return row_id(path, row_index)
        value = row.get(self._job.id_column)
        return None if value is None else str(value)

    def _validated_chunk(self, name: str, group: RowGroup, first_row: int,
                         rows: list[dict[str, Any]]) -> Chunk:
        chunk = Chunk(name, group.path, [], [], [])
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
                Metrics.counter(METRICS_NAMESPACE, dead_lettered_counter(reason)).inc()
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
            chunk = Chunk(f"{name_prefix}-{number:05d}", group.path, [], [], [])
            chunk.dead_letters = [
                dead_letter_record(empty_row, self._record_id(group.path, index, empty_row),
                                   UNREADABLE_ROW_GROUP, READ_STAGE, detail)
                for index in range(start, stop)]
            Metrics.counter(METRICS_NAMESPACE,
                            dead_lettered_counter(UNREADABLE_ROW_GROUP)).inc(stop - start)
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
