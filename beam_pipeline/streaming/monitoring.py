"""Monitoring of a stream: per key and event-time window, aggregates and alerts.

`MonitorSentiment` takes scored records (dicts as built by `records.scored_record`, stamped with
their event time) and returns three PCollections:

* ``aggregates``: one `aggregates.aggregate_record` per key, window and pane, with
  ``pane_index`` and ``timing`` added. The key is `aggregates.record_key`'s. Windows are fixed
  (``window_seconds``) or sliding (``window_period_seconds``). Each window fires once when the
  watermark passes its end (``ON_TIME``, pane 0) and once more for every record that arrives
  later, within the allowed lateness (``LATE``, pane 1, 2, ...; panes accumulate, so a late pane
  is the window's updated total).
* ``alerts``: `aggregates.alerts_for` every aggregate pane.
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

from beam_pipeline.aggregates import (
    AlertRule,
    SentimentAggregateFn,
    aggregate_record,
    aggregated_fields,
    alerts_for,
    record_key,
)
from beam_pipeline.records import ID
from beam_pipeline.vocabulary import METRICS_NAMESPACE, RECORDS_TOO_LATE

TOO_LATE_TAG = "too_late"
_ONE_MICRO = Duration(micros=1)


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """Monitoring settings: what is an alert (`aggregates.AlertRule`), the key, the windows."""

    rule: AlertRule
    key_name: str | None = None
    window_seconds: float = 60.0
    window_period_seconds: float | None = None
    allowed_lateness_seconds: float = 300.0

    def __post_init__(self):
        if self.window_seconds <= 0 or (self.window_period_seconds is not None
                                        and not 0 < self.window_period_seconds
                                        <= self.window_seconds):
            raise ValueError("window_seconds must be > 0 and window_period_seconds in "
                             "(0, window_seconds]")
        if self.allowed_lateness_seconds < 0:
            raise ValueError("allowed_lateness_seconds must be >= 0")

    def window_fn(self) -> window.WindowFn:
        """Fixed windows, or sliding ones when a period is set."""
        if self.window_period_seconds is None:
            return window.FixedWindows(self.window_seconds)
        return window.SlidingWindows(self.window_seconds, self.window_period_seconds)


def _bounds(bounded: window.BoundedWindow) -> dict[str, str]:
    return {"window_start": bounded.start.to_rfc3339(), "window_end": bounded.end.to_rfc3339()}


class _LatenessGate(beam.DoFn):
    """Per key, in the global window: drops (and counts) records whose windows have all expired,
    as far as this key's expiry timers prove it (see the module docstring), and passes on the
    others' `aggregates.aggregated_fields` only: the windows hold what they pass on until their
    allowed lateness has passed (minutes of a stream), so they hold the few fields an aggregate
    reads, not the whole records."""

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
            yield key, aggregated_fields(record)

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
        key, body = keyed
        yield aggregate_record(key, **_bounds(bounded), body=body, pane_index=pane.index,
                               timing=PaneInfoTiming.to_string(pane.timing))


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
                     lambda record: (record_key(record, config.key_name), record))
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
                          SentimentAggregateFn(config.rule))
                      | "Format" >> beam.ParDo(_FormatAggregate()))
        alerts = aggregates | "Alerts" >> beam.FlatMap(alerts_for, config.rule)
        return {"aggregates": aggregates, "alerts": alerts, "too_late": gated[TOO_LATE_TAG]}
