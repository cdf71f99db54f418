"""Aggregates of a batch run (``--key_column [--time_column --window_seconds]``): the streaming
pipeline's aggregates and alerts (`beam_pipeline.aggregates`), per key and, with a time column,
per fixed window of it, written to ``PREFIX-aggregates-part-00000.parquet``::

    chunk records -> FlatMap((key, window), aggregated fields)
      -> CombinePerKey(SentimentAggregateFn) -> FlatMap(aggregate record, its alert)
      -> (one key) GroupByKey -> WriteParquetFiles

Windows are computed from the time column rather than with Beam's windowing, which the
DaskRunner does not support reliably; rows without a time value form a window of their own
(``window_start`` null).
"""
from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any, Optional

import pyarrow.parquet as pq

from beam_pipeline.aggregates import (
    AGGREGATES_PART,
    aggregate_record,
    aggregated_fields,
    record_key,
    with_alerts,
)
from beam_pipeline.batch.planning import Aggregation
from beam_pipeline.batch.scoring import ChunkRecords
from beam_pipeline.batch.writing import part_pattern
from beam_pipeline.files import match_files, open_file

WindowKey = tuple[str, Optional[str], Optional[str]]


def aggregates_prefix(output_prefix: str) -> str:
    """Prefix of a run's aggregate files (``PREFIX-aggregates``)."""
    return f"{output_prefix}-{AGGREGATES_PART}"


def _moment(value: Any) -> Optional[datetime.datetime]:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
    return None


def window_of(value: Any, seconds: float) -> tuple[Optional[str], Optional[str]]:
    """The RFC 3339 bounds of the fixed window (epoch-aligned, ``seconds`` long) holding a time
    value (a timestamp, a date or an ISO 8601 string); ``(None, None)`` for no or an unreadable
    value."""
    moment = _moment(value)
    if moment is None:
        return None, None
    start = moment.timestamp() // seconds * seconds
    bounds = (datetime.datetime.fromtimestamp(edge, datetime.UTC) for edge in
              (start, start + seconds))
    return tuple(bound.isoformat().replace("+00:00", "Z") for bound in bounds)


def keyed_for_aggregation(records: ChunkRecords,
                          aggregation: Aggregation) -> Iterator[tuple[WindowKey, dict]]:
    """Each record of a chunk keyed by (key, window start, window end)."""
    for record in records.scored:
        window = ((None, None) if aggregation.time_column is None else
                  window_of(record.get(aggregation.time_column), aggregation.window_seconds))
        yield (record_key(record, aggregation.key_column), *window), aggregated_fields(record)


def aggregate_and_alert(keyed: tuple[WindowKey, dict[str, Any]],
                        aggregation: Aggregation) -> Iterator[dict[str, Any]]:
    """The aggregate record of one key and window, then its alert if it is one."""
    (key, start, end), body = keyed
    yield from with_alerts(aggregate_record(key, start, end, body), aggregation.rule)


def as_one_file(records: tuple[Any, Any]) -> tuple[str, list[dict[str, Any]]]:
    """All aggregate and alert records as the one file ``00000``, languages as map entries."""
    _, grouped = records
    rows = [{**record, "languages": list(record["languages"].items())}
            for record in sorted(grouped, key=lambda r: (r["key"], r["window_start"] or "",
                                                          r["type"]))]
    return "00000", rows


def read_aggregates(output_prefix: str) -> list[dict[str, Any]]:
    """The aggregate and alert records a run wrote (languages as a dict), empty when none."""
    records = []
    for path in match_files(part_pattern(aggregates_prefix(output_prefix))):
        with open_file(path) as handle:
            for record in pq.read_table(handle).to_pylist():
                records.append({name: value for name, value in record.items()
                                if value is not None or name.startswith("window")}
                               | {"languages": dict(record["languages"] or [])})
    return records
