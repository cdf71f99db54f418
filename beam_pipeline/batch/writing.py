"""Writing and reading back output files: one Parquet file per chunk and kind, named after the
chunk (``PREFIX-part-<chunk>.parquet``), appearing whole by rename."""
from __future__ import annotations

import collections
import json
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from beam_pipeline.files import match_files, open_file, write_atomically
from beam_pipeline.vocabulary import UNREADABLE_ROW_GROUP

PART = "part"
STATS = "stats"


def part_path(prefix: str, name: str) -> str:
    """Path of one output file under ``prefix``."""
    return f"{prefix}-{PART}-{name}.parquet"


def part_pattern(prefix: str) -> str:
    """Glob matching every output file under ``prefix`` (and none of another prefix's)."""
    return f"{prefix}-{PART}-*.parquet"


def stats_path(prefix: str, name: str) -> str:
    """Path of one chunk's statistics under the scored output ``prefix``."""
    return f"{prefix}-{STATS}-{name}.json"


def stats_pattern(prefix: str) -> str:
    """Glob matching every chunk's statistics under ``prefix``."""
    return f"{prefix}-{STATS}-*.json"


def read_stats(prefix: str) -> list[dict[str, Any]]:
    """Every chunk's statistics under ``prefix``."""
    stats = []
    for path in match_files(stats_pattern(prefix)):
        with open_file(path) as handle:
            stats.append(json.loads(handle.read()))
    return stats


def count_rows(prefix: str) -> int:
    """Rows in all output files under ``prefix`` (read from the Parquet footers)."""
    total = 0
    for path in match_files(part_pattern(prefix)):
        with open_file(path) as handle:
            total += pq.read_metadata(handle).num_rows
    return total


class WriteParquetFiles(beam.DoFn):
    """Writes each ``(name, records)`` as ``part_path(prefix, name)`` with ``schema``; yields the
    path. The file appears whole or not at all (written under a temporary name, then renamed)."""

    def __init__(self, prefix: str, schema: pa.Schema):
        self._prefix = prefix
        self._schema = schema

    def process(self, named_records: tuple[str, list[dict[str, Any]]]):
        name, records = named_records
        table = pa.Table.from_pylist(records, schema=self._schema)
        yield write_atomically(part_path(self._prefix, name),
                               lambda handle: pq.write_table(table, handle))


def dead_letter_counts(prefix: str) -> tuple[dict[str, int], dict[str, int]]:
    """Dead-lettered rows by reason, and the rows of each unreadable row group by its ``error``
    line (which names the file), read from the dead-letter files under ``prefix``."""
    reasons: collections.Counter = collections.Counter()
    unreadable: collections.Counter = collections.Counter()
    for path in match_files(part_pattern(prefix)):
        with open_file(path) as handle:
            table = pq.read_table(handle, columns=["reason", "error"])
        for reason, error in zip(table.column("reason").to_pylist(),
                                 table.column("error").to_pylist()):
            reasons[reason] += 1
            if reason == UNREADABLE_ROW_GROUP:
                unreadable[error] += 1
    return dict(sorted(reasons.items())), dict(sorted(unreadable.items()))


class WriteStatsFiles(beam.DoFn):
    """Writes each ``(chunk name, statistics)`` as ``stats_path(prefix, name)``; yields the
    path."""

    def __init__(self, prefix: str):
        self._prefix = prefix

    def process(self, named_stats: tuple[str, dict[str, Any]]):
        name, stats = named_stats
        data = json.dumps(stats).encode("utf-8")
        yield write_atomically(stats_path(self._prefix, name), lambda handle: handle.write(data))
