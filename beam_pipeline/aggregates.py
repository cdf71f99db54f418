"""One definition of an aggregate and an alert, for batch (per key and day) and streaming (per key
and window) alike.

An aggregate of the records of one key and window::

    {"type": "aggregate", "key": "acme", "window_start": "...Z", "window_end": "...Z",
     "posts": 20,           # distinct scored posts (text fingerprints): what shares count
     "reach": 25,           # every scored record, copies included
     "counts": {"negative": 12, "positive": 8}, "mean_probabilities": {...},  # over posts
     "negative_share": 0.6, "languages": {"en": 25, "fr": 2}, "unsupported_language": 2}

Copies of a post (a retweet storm) count once in ``counts`` and the shares, so one post copied a
thousand times cannot raise an alert alone; ``reach`` says how far it went. Records left
unscored are left out of the shares and counted (``unsupported_language``); ``languages`` counts
every record. An alert is an aggregate whose negative share exceeds the threshold with at least
the minimum number of posts: its fields plus ``"type": "alert"``, ``threshold``, ``min_posts``.
"""
from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, Optional

import apache_beam as beam
import pyarrow as pa

from beam_pipeline.vocabulary import SCORED, UNSUPPORTED_LANGUAGE

DEFAULT_KEY = "all"
#: output files of aggregates and alerts: ``PREFIX-aggregates-...``, beside the records' own
AGGREGATES_PART = "aggregates"
AGGREGATE, ALERT = "aggregate", "alert"
#: the fields of a scored record an aggregate reads
AGGREGATED_FIELDS = ("status", "sentiment", "probabilities", "language", "text_fingerprint")


@dataclasses.dataclass(frozen=True)
class AlertRule:
    """When an aggregate is an alert: ``negative_label``'s share above ``threshold`` over at
    least ``min_posts`` distinct posts."""

    labels: tuple[str, ...]
    negative_label: str
    threshold: float = 0.5
    min_posts: int = 20

    def __post_init__(self):
        if self.negative_label not in self.labels:
            raise ValueError(f"negative label {self.negative_label!r} is not one of the model's "
                             f"labels {list(self.labels)}")
        if self.min_posts < 1:
            raise ValueError("the minimum number of posts for an alert must be at least 1")


def record_key(record: dict[str, Any], key_name: Optional[str]) -> str:
    """A record's key: attribute ``key_name`` (Pub/Sub messages), else field ``key_name``, else
    `DEFAULT_KEY`."""
    if key_name is None:
        return DEFAULT_KEY
    value = (record.get("attributes") or {}).get(key_name, record.get(key_name))
    return DEFAULT_KEY if value is None or value == "" else str(value)


def aggregated_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a scored record an aggregate needs (what batch shuffles)."""
    return {name: record.get(name) for name in AGGREGATED_FIELDS}


class SentimentAggregateFn(beam.CombineFn):
    """Scored records -> the body of an aggregate (posts, reach, counts, mean probabilities,
    negative share, languages, unsupported_language). The accumulator keeps one entry per
    distinct post: ``(posts by fingerprint, reach, languages, unsupported)``."""

    def __init__(self, labels: Sequence[str], negative_label: str):
        self._labels = tuple(labels)
        self._negative = self._labels.index(negative_label)

    def create_accumulator(self):
        return {}, 0, collections.Counter(), 0

    def add_input(self, accumulator, record: dict[str, Any]):
        posts, reach, languages, unsupported = accumulator
        if record.get("language"):
            languages[record["language"]] += 1
        if record["status"] == UNSUPPORTED_LANGUAGE:
            return posts, reach, languages, unsupported + 1
        if record["status"] == SCORED:
            reach += 1
            probabilities = record["probabilities"]
            posts.setdefault(record["text_fingerprint"], (
                self._labels.index(record["sentiment"]),
                tuple(probabilities[label] for label in self._labels)))
        return posts, reach, languages, unsupported

    def merge_accumulators(self, accumulators):
        posts, reach, languages, unsupported = self.create_accumulator()
        for other_posts, other_reach, other_languages, other_unsupported in accumulators:
            for fingerprint, post in other_posts.items():
                posts.setdefault(fingerprint, post)
            reach += other_reach
            languages.update(other_languages)
            unsupported += other_unsupported
        return posts, reach, languages, unsupported

    def extract_output(self, accumulator) -> dict[str, Any]:
        posts, reach, languages, unsupported = accumulator
        counts = [0] * len(self._labels)
        sums = [0.0] * len(self._labels)
        for label, probabilities in posts.values():
            counts[label] += 1
            sums = [total + value for total, value in zip(sums, probabilities)]
        total = len(posts)
        return {"posts": total, "reach": reach, "counts": dict(zip(self._labels, counts)),
                "mean_probabilities": {label: value / total if total else 0.0
                                       for label, value in zip(self._labels, sums)},
                "negative_share": counts[self._negative] / total if total else 0.0,
                "languages": dict(languages.most_common()),
                "unsupported_language": unsupported}


def aggregate_record(key: str, window_start: Optional[str], window_end: Optional[str],
                     body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An aggregate record (``extra``: e.g. streaming's ``pane_index`` and ``timing``)."""
    return {"type": AGGREGATE, "key": key, "window_start": window_start,
            "window_end": window_end, **body, **extra}


def alerts_for(aggregate: dict[str, Any], rule: AlertRule) -> Iterator[dict[str, Any]]:
    """An alert record when the aggregate's negative share is over the threshold with enough
    distinct posts."""
    if aggregate["posts"] >= rule.min_posts and aggregate["negative_share"] > rule.threshold:
        yield {**aggregate, "type": ALERT, "threshold": rule.threshold,
               "min_posts": rule.min_posts}


def with_alerts(aggregate: dict[str, Any], rule: AlertRule) -> Iterator[dict[str, Any]]:
    """The aggregate, then its alert if it is one."""
    yield aggregate
    yield from alerts_for(aggregate, rule)


def aggregates_schema(labels: Sequence[str]) -> pa.Schema:
    """Arrow schema of aggregate and alert records in Parquet (batch)."""

    def per_label(kind: pa.DataType) -> pa.DataType:
        return pa.struct([pa.field(label, kind) for label in labels])

    return pa.schema([
        pa.field("type", pa.string()), pa.field("key", pa.string()),
        pa.field("window_start", pa.string()), pa.field("window_end", pa.string()),
        pa.field("posts", pa.int64()), pa.field("reach", pa.int64()),
        pa.field("counts", per_label(pa.int64())),
        pa.field("mean_probabilities", per_label(pa.float64())),
        pa.field("negative_share", pa.float64()),
        pa.field("languages", pa.map_(pa.string(), pa.int64())),
        pa.field("unsupported_language", pa.int64()),
        pa.field("threshold", pa.float64()), pa.field("min_posts", pa.int64())])
