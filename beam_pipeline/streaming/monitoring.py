"""Monitoring of scored records: per key and window, label counts, mean probabilities, alerts.

`MonitorSentiment` takes scored records (dicts as built by `records.scored_record`, stamped with
their event time) and returns three PCollections:

* ``aggregates``: one record per key, window and pane::

      {"type": "aggregate", "key": "acme", "window_start": "...Z", "window_end": "...Z",
       "count": 25, "counts": {"negative": 15, "positive": 10},
       "mean_probabilities": {"negative": 0.58, "positive": 0.42}, "negative_share": 0.6,
       "pane_index": 0, "timing": "ON_TIME"}

  The key is the value of the message attribute ``key_name`` or else the record field of that
  name, ``all`` when neither is present (or no key name is configured). Windows are fixed
  (``window_seconds``) or sliding (``window_period_seconds``). Each window fires once when the
  watermark passes its end (``ON_TIME``, pane 0) and once more for every record that arrives
  later, within the allowed lateness (``LATE``, pane 1, 2, ...; panes accumulate, so a late pane
  is the window's updated total).
* ``alerts``: for every aggregate pane whose negative share exceeds ``alert_negative_share`` with
  at least ``alert_min_count`` records, ``{"type": "alert", ...the aggregate's fields...,
  "threshold": ..., "min_count": ...}``.
* ``too_late``: records that arrive after their window's allowed lateness, one per record and
  expired window: ``{"type": "too_late", "id", "key", "window_start", "window_end",
  "event_time"}``. They are left out of the aggregates and counted in the Beam counter
  ``sentiment_scoring/records_too_late``.

How too-late records are found (a stateful gate with expiry timers): docs/design.md,
"Too-late records".
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam import coders
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, userstate, window
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import PaneInfoTiming

from beam_pipeline.records import ID
from beam_pipeline.streaming.messages import ATTRIBUTES
from beam_pipeline.vocabulary import METRICS_NAMESPACE, RECORDS_TOO_LATE

DEFAULT_KEY = "all"
TOO_LATE_TAG = "too_late"
_ONE_MICRO = Duration(micros=1)


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """Monitoring settings; ``negative_label`` must be one of ``labels``."""

    labels: tuple[str, ...]
    negative_label: str
    key_name: str | None = None
    window_seconds: float = 60.0
    window_period_seconds: float | None = None
    allowed_lateness_seconds: float = 300.0
    alert_negative_share: float = 0.5
    alert_min_count: int = 20

    def __post_init__(self):
        if self.negative_label not in self.labels:
            raise ValueError(f"negative label {self.negative_label!r} is not one of the model's "
                             f"labels {list(self.labels)}")
        if self.window_seconds <= 0 or (self.window_period_seconds is not None
                                        and not 0 < self.window_period_seconds
                                        <= self.window_seconds):
            raise ValueError("window_seconds must be > 0 and window_period_seconds in "
                             "(0, window_seconds]")
        if self.allowed_lateness_seconds < 0 or self.alert_min_count < 1:
            raise ValueError("allowed_lateness_seconds must be >= 0 and alert_min_count >= 1")

    def window_fn(self) -> window.WindowFn:
        """Fixed windows, or sliding ones when a period is set."""
        if self.window_period_seconds is None:
            return window.FixedWindows(self.window_seconds)
        return window.SlidingWindows(self.window_seconds, self.window_period_seconds)


def monitor_key(record: dict[str, Any], key_name: str | None) -> str:
    """The record's monitoring key: attribute ``key_name``, else field ``key_name``, else
    ``all``."""
    if key_name is None:
        return DEFAULT_KEY
    value = (record.get(ATTRIBUTES) or {}).get(key_name, record.get(key_name))
    return DEFAULT_KEY if value is None or value == "" else str(value)


def _bounds(bounded: window.BoundedWindow) -> dict[str, str]:
    return {"window_start": bounded.start.to_rfc3339(), "window_end": bounded.end.to_rfc3339()}


class SentimentAggregateFn(beam.CombineFn):
    """Scored records -> count, count per label, mean probability per label, negative share."""

    def __init__(self, labels: tuple[str, ...], negative_label: str):
        self._labels = labels
        self._negative = labels.index(negative_label)

    def create_accumulator(self) -> tuple[int, list[int], list[float]]:
        return 0, [0] * len(self._labels), [0.0] * len(self._labels)

    def add_input(self, accumulator, record: dict[str, Any]):
        count, counts, sums = accumulator
        counts[self._labels.index(record["sentiment"])] += 1
        for index, label in enumerate(self._labels):
            sums[index] += record["probabilities"][label]
        return count + 1, counts, sums

    def merge_accumulators(self, accumulators):
        count, counts, sums = self.create_accumulator()
        for other_count, other_counts, other_sums in accumulators:
            count += other_count
            counts = [a + b for a, b in zip(counts, other_counts)]
            sums = [a + b for a, b in zip(sums, other_sums)]
        return count, counts, sums

    def extract_output(self, accumulator) -> dict[str, Any]:
        count, counts, sums = accumulator
        return {"count": count, "counts": dict(zip(self._labels, counts)),
                "mean_probabilities": {label: total / count if count else 0.0
                                       for label, total in zip(self._labels, sums)},
                "negative_share": counts[self._negative] / count if count else 0.0}


class _LatenessGate(beam.DoFn):
    """Per key, in the global window: drops (and counts) records whose windows have all expired,
    as far as this key's expiry timers prove it (see the module docstring)."""

    PENDING = userstate.SetStateSpec("pending_expiries", coders.VarIntCoder())
    PASSED = userstate.ReadModifyWriteStateSpec("passed_expiry", coders.VarIntCoder())
    EXPIRY = userstate.TimerSpec("expiry", userstate.TimeDomain.WATERMARK)

    def __init__(self, window_fn: window.WindowFn, allowed_lateness: Duration):
        self._window_fn = window_fn
        self._lateness = allowed_lateness
        self._too_late = Metrics.counter(METRICS_NAMESPACE, RECORDS_TOO_LATE)

    def process(self, keyed: tuple[str, dict[str, Any]],
                timestamp=beam.DoFn.TimestampParam,
                pending=beam.DoFn.StateParam(PENDING),
                passed=beam.DoFn.StateParam(PASSED),
                expiry_timer=beam.DoFn.TimerParam(EXPIRY)) -> Iterator[Any]:
        key, record = keyed
        passed_micros = passed.read()
        live = False
        for assigned in self._window_fn.assign(window.WindowFn.AssignContext(timestamp)):
            expiry = assigned.end + self._lateness
            if passed_micros is not None and expiry.micros <= passed_micros:
                self._too_late.inc()
                yield beam.pvalue.TaggedOutput(TOO_LATE_TAG, {
                    "type": "too_late", "id": record.get(ID), "key": key, **_bounds(assigned),
                    "event_time": timestamp.to_rfc3339()})
                continue
            live = True
            pending.add(expiry.micros)
        if live:
            expiry_timer.set(Timestamp(micros=min(pending.read())) + _ONE_MICRO)
            yield keyed

    @userstate.on_timer(EXPIRY)
    def on_expiry(self, fired=beam.DoFn.TimestampParam,
                  pending=beam.DoFn.StateParam(PENDING),
                  passed=beam.DoFn.StateParam(PASSED),
                  expiry_timer=beam.DoFn.TimerParam(EXPIRY)) -> None:
        expired = [micros for micros in pending.read() if micros < fired.micros]
        previous = passed.read()
        if expired or previous is not None:
            passed.write(max(expired + ([previous] if previous is not None else [])))
        remaining = [micros for micros in pending.read() if micros >= fired.micros]
        pending.clear()
        for micros in remaining:
            pending.add(micros)
        if remaining:
            expiry_timer.set(Timestamp(micros=min(remaining)) + _ONE_MICRO)


class _FormatAggregate(beam.DoFn):
    def process(self, keyed: tuple[str, dict[str, Any]], bounded=beam.DoFn.WindowParam,
                pane=beam.DoFn.PaneInfoParam) -> Iterator[dict[str, Any]]:
        key, summary = keyed
        yield {"type": "aggregate", "key": key, **_bounds(bounded), **summary,
               "pane_index": pane.index, "timing": PaneInfoTiming.to_string(pane.timing)}


def alerts_for(aggregate: dict[str, Any], config: MonitorConfig) -> Iterator[dict[str, Any]]:
    """An alert record when the aggregate's negative share is over the threshold with enough
    records."""
    if (aggregate["count"] >= config.alert_min_count
            and aggregate["negative_share"] > config.alert_negative_share):
        yield {**aggregate, "type": "alert", "threshold": config.alert_negative_share,
               "min_count": config.alert_min_count}


class MonitorSentiment(beam.PTransform):
    """Scored records -> ``{"aggregates", "alerts", "too_late"}`` PCollections (module
    docstring)."""

    def __init__(self, config: MonitorConfig):
        super().__init__()
        self._config = config

    def expand(self, scored):
        config = self._config
        lateness = Duration.of(config.allowed_lateness_seconds)
        gated = (scored
                 | "KeyByMonitorKey" >> beam.Map(
                     lambda record: (monitor_key(record, config.key_name), record))
                 .with_output_types(tuple[str, dict[str, Any]])
                 | "DropTooLate" >> beam.ParDo(_LatenessGate(config.window_fn(), lateness))
                 .with_outputs(TOO_LATE_TAG, main="on_time"))
        aggregates = (gated.on_time
                      | "Window" >> beam.WindowInto(
                          config.window_fn(),
                          trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                          accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
                          allowed_lateness=lateness)
                      | "Aggregate" >> beam.CombinePerKey(
                          SentimentAggregateFn(config.labels, config.negative_label))
                      | "Format" >> beam.ParDo(_FormatAggregate()))
        alerts = aggregates | "Alerts" >> beam.FlatMap(alerts_for, config)
        return {"aggregates": aggregates, "alerts": alerts, "too_late": gated[TOO_LATE_TAG]}
