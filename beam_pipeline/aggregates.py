"""One definition of an aggregate and an alert, for batch (per key and day) and streaming (per key
and window) alike.

An aggregate of the records of one key and window::

    {"type": "aggregate", "key": "acme", "window_start": "...Z", "window_end": "...Z",
     "posts": 20,           # distinct scored posts (text fingerprints): what shares count
     "reach": 25,           # every scored record, copies included
     "counts": {"negative": 12, "positive": 8}, "mean_probabilities": {...},  # over posts
     "negative_share": 0.6, "languages": {"en": 25, "fr": 2}, "unsupported_language": 2}

With labelled posts of the stream in the bundle (``sentiment-export --quantification_dataset``)
it also holds ``corrected_share_<label>`` with ``_low`` / ``_high`` (`quantification`), and
``share_correction`` says which: ``corrected``, ``uncorrected`` (no labelled posts) or
``unreliable`` (too few, or classes the model cannot tell apart); alerts then use the corrected
share (``alert_share``).

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
import numpy as np
import pyarrow as pa

from beam_pipeline.quantification import CORRECTED, UNCORRECTED, Quantifier
from beam_pipeline.vocabulary import SCORED, UNSUPPORTED_LANGUAGE

DEFAULT_KEY = "all"
#: output files of aggregates and alerts: ``PREFIX-aggregates-...``, beside the records' own
AGGREGATES_PART = "aggregates"
AGGREGATE, ALERT = "aggregate", "alert"
#: the fields of a scored record an aggregate reads
AGGREGATED_FIELDS = ("status", "sentiment", "probabilities", "language", "text_fingerprint")


@dataclasses.dataclass(frozen=True)
class AlertRule:
    """When an aggregate is an alert: ``negative_label``'s share (corrected when the bundle allows
    it) above ``threshold`` over at least ``min_posts`` distinct posts."""

    labels: tuple[str, ...]
    negative_label: str
    threshold: float = 0.5
    min_posts: int = 20
    #: the bundle's share correction (`quantification.Quantifier`); None: shares uncorrected
    quantifier: Optional[Quantifier] = None

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

    def __init__(self, rule: AlertRule):
        self._labels = tuple(rule.labels)
        self._negative = self._labels.index(rule.negative_label)
        self._quantifier = rule.quantifier

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
                **self._corrected(posts),
                "languages": dict(languages.most_common()),
                "unsupported_language": unsupported}

    def _corrected(self, posts: dict[str, tuple[int, tuple[float, ...]]]) -> dict[str, Any]:
        """``share_correction`` and, when corrected, ``corrected_share_<label>`` with its
        ``_low`` and ``_high`` interval ends (`quantification`)."""
        if self._quantifier is None:
            return {"share_correction": UNCORRECTED}
        status = self._quantifier.status()
        if status != CORRECTED or not posts:
            return {"share_correction": status if posts else UNCORRECTED}
        probabilities = np.array([post for _, post in posts.values()])
        shares, low, high = self._quantifier.correct(probabilities)
        fields: dict[str, Any] = {"share_correction": CORRECTED}
        for label, share, low_end, high_end in zip(self._labels, shares, low, high):
            fields[f"corrected_share_{label}"] = float(share)
            fields[f"corrected_share_{label}_low"] = float(low_end)
            fields[f"corrected_share_{label}_high"] = float(high_end)
        return fields


def aggregate_record(key: str, window_start: Optional[str], window_end: Optional[str],
                     body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An aggregate record (``extra``: e.g. streaming's ``pane_index`` and ``timing``)."""
    return {"type": AGGREGATE, "key": key, "window_start": window_start,
            "window_end": window_end, **body, **extra}


def alert_share(aggregate: dict[str, Any], rule: AlertRule) -> tuple[float, str]:
    """The negative share alerts compare with the threshold, and which one it is: the corrected
    share when the aggregate has one, else the raw share."""
    corrected = aggregate.get(f"corrected_share_{rule.negative_label}")
    return ((corrected, "corrected") if corrected is not None
            else (aggregate["negative_share"], "raw"))


def alerts_for(aggregate: dict[str, Any], rule: AlertRule) -> Iterator[dict[str, Any]]:
    """An alert record when the aggregate's negative share (`alert_share`) is over the threshold
    with enough distinct posts."""
    share, which = alert_share(aggregate, rule)
    if aggregate["posts"] >= rule.min_posts and share > rule.threshold:
        yield {**aggregate, "type": ALERT, "threshold": rule.threshold,
               "min_posts": rule.min_posts, "alert_share": which}


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
        pa.field("share_correction", pa.string()),
        *[pa.field(f"corrected_share_{label}{end}", pa.float64())
          for label in labels for end in ("", "_low", "_high")],
        pa.field("languages", pa.map_(pa.string(), pa.int64())),
        pa.field("unsupported_language", pa.int64()),
        pa.field("threshold", pa.float64()), pa.field("min_posts", pa.int64()),
        pa.field("alert_share", pa.string())])
