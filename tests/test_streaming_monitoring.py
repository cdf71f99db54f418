"""Monitoring on TestStream (BundleBasedDirectRunner): exact aggregates per window and pane,
late firings, records too late, alerts, fixed and sliding windows."""
from __future__ import annotations

import datetime

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from beam_pipeline.records import scored_record
from beam_pipeline.streaming.monitoring import MonitorConfig, MonitorSentiment, monitor_key

LABELS = ("negative", "positive")
PROBABILITIES = {"negative": [0.75, 0.25], "positive": [0.25, 0.75]}
EPOCH = datetime.datetime(2026, 11, 23, 13, 0, tzinfo=datetime.UTC)


def record(record_id: str, sentiment: str, brand: str | None = None) -> dict:
    row = {"text": "t", "attributes": {"brand": brand} if brand else {}}
    return scored_record(row, record_id, np.array(PROBABILITIES[sentiment]), LABELS,
                         "v1", EPOCH)


def at(seconds: float, value):
    return beam.window.TimestampedValue(value, Timestamp(seconds))


def iso(seconds: float) -> str:
    return Timestamp(seconds).to_rfc3339()


def aggregate(key, start, end, sentiments, pane_index, timing):
    count = len(sentiments)
    sums = [sum(PROBABILITIES[s][i] for s in sentiments) for i in range(len(LABELS))]
    negatives = sentiments.count("negative")
    return {"type": "aggregate", "key": key, "window_start": iso(start), "window_end": iso(end),
            "count": count, "counts": {label: sentiments.count(label) for label in LABELS},
            "mean_probabilities": {label: sums[i] / count for i, label in enumerate(LABELS)},
            "negative_share": negatives / count, "pane_index": pane_index, "timing": timing}


def run_monitoring(stream, config):
    """Yields MonitorSentiment's outputs for the caller's assertions, then runs the pipeline."""
    options = PipelineOptions(flags=[], runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        outputs = pipeline | stream | MonitorSentiment(config)
        yield outputs


def test_fixed_windows_on_time_late_and_too_late_panes_and_alerts():
    config = MonitorConfig(labels=LABELS, negative_label="negative", key_name="brand",
                           window_seconds=10, allowed_lateness_seconds=5,
                           alert_negative_share=0.5, alert_min_count=3)
    stream = (test_stream.TestStream()
              .advance_watermark_to(Timestamp(0))
              .add_elements([at(1, record("a1", "negative", "acme")),
                             at(2, record("a2", "negative", "acme")),
                             at(3, record("a3", "positive", "acme")),
                             at(4, record("n1", "positive")),
                             at(12, record("a4", "positive", "acme"))])
              .advance_watermark_to(Timestamp(10))
              .add_elements([at(5, record("a5", "negative", "acme"))])    # late, within 5 s
              .advance_watermark_to(Timestamp(16))
              .add_elements([at(6, record("a6", "negative", "acme"))])    # after the lateness
              .advance_watermark_to_infinity())
    expected_aggregates = [
        aggregate("acme", 0, 10, ["negative", "negative", "positive"], 0, "ON_TIME"),
        aggregate("all", 0, 10, ["positive"], 0, "ON_TIME"),
        aggregate("acme", 0, 10, ["negative", "negative", "positive", "negative"], 1, "LATE"),
        aggregate("acme", 10, 20, ["positive"], 0, "ON_TIME"),
    ]
    acme_on_time, acme_late = expected_aggregates[0], expected_aggregates[2]
    expected_alerts = [{**pane, "type": "alert", "threshold": 0.5, "min_count": 3}
                       for pane in (acme_on_time, acme_late)]
    for outputs in run_monitoring(stream, config):
        assert_that(outputs["aggregates"], equal_to(expected_aggregates), label="aggregates")
        assert_that(outputs["alerts"], equal_to(expected_alerts), label="alerts")
        assert_that(outputs["too_late"], equal_to([
            {"type": "too_late", "id": "a6", "key": "acme", "window_start": iso(0),
             "window_end": iso(10), "event_time": iso(6)}]), label="too late")


def test_sliding_windows_put_each_record_in_every_window_it_belongs_to():
    config = MonitorConfig(labels=LABELS, negative_label="negative", window_seconds=10,
                           window_period_seconds=5, allowed_lateness_seconds=0,
                           alert_negative_share=0.9, alert_min_count=1)
    stream = (test_stream.TestStream()
              .advance_watermark_to(Timestamp(0))
              .add_elements([at(1, record("x1", "negative")), at(7, record("x2", "positive"))])
              .advance_watermark_to_infinity())
    for outputs in run_monitoring(stream, config):
        assert_that(outputs["aggregates"], equal_to([
            aggregate("all", -5, 5, ["negative"], 0, "ON_TIME"),
            aggregate("all", 0, 10, ["negative", "positive"], 0, "ON_TIME"),
            aggregate("all", 5, 15, ["positive"], 0, "ON_TIME"),
        ]), label="aggregates")
        assert_that(outputs["alerts"] | beam.Map(lambda alert: alert["window_start"]),
                    equal_to([iso(-5)]), label="alerts")


def test_monitor_key_prefers_attribute_then_field_then_all():
    assert monitor_key({"attributes": {"brand": "a"}, "brand": "b"}, "brand") == "a"
    assert monitor_key({"attributes": {}, "brand": "b"}, "brand") == "b"
    assert monitor_key({"attributes": {}}, "brand") == "all"
    assert monitor_key({"attributes": {"brand": "a"}}, None) == "all"


@pytest.mark.parametrize("changes, message", [
    ({"negative_label": "bearish"}, "not one of the model's labels"),
    ({"window_period_seconds": 90}, "window_period_seconds"),
    ({"alert_min_count": 0}, "alert_min_count"),
])
def test_config_rejects_impossible_settings(changes, message):
    settings = dict(labels=LABELS, negative_label="negative") | changes
    with pytest.raises(ValueError, match=message):
        MonitorConfig(**settings)
