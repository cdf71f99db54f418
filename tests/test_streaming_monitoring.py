"""Monitoring on TestStream (BundleBasedDirectRunner): exact aggregates per window and pane,
late firings, records too late, alerts, fixed and sliding windows, copies counted once and
unsupported languages left out of the shares."""
from __future__ import annotations

import datetime

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Duration, Timestamp

from beam_pipeline.aggregates import AlertRule, record_key
from beam_pipeline.model import RowResult
from beam_pipeline.records import scored_record
from beam_pipeline.streaming.monitoring import (
    TOO_LATE_TAG,
    MonitorConfig,
    MonitorSentiment,
    _LatenessGate,
)
from beam_pipeline.vocabulary import SCORED, UNSUPPORTED_LANGUAGE

LABELS = ("negative", "positive")
PROBABILITIES = {"negative": [0.75, 0.25], "positive": [0.25, 0.75]}
EPOCH = datetime.datetime(2026, 11, 23, 13, 0, tzinfo=datetime.UTC)


def record(record_id: str, sentiment: str | None, brand: str | None = None,
           text: str | None = None) -> dict:
    """A scored record (``sentiment`` None: a French post left unscored); its fingerprint is
    its text's, by default unique to the record."""
    row = {"text": text or record_id, "attributes": {"brand": brand} if brand else {}}
    result = RowResult(
        probabilities=None if sentiment is None else np.array(PROBABILITIES[sentiment]),
        failure=None, status=SCORED if sentiment else UNSUPPORTED_LANGUAGE,
        language="en" if sentiment else "fr", language_confidence=0.99,
        fingerprint=f"fp-{row['text']}", tokens=3, cut=False)
    return scored_record(row, record_id, result, LABELS, "v1", EPOCH)


def at(seconds: float, value):
    return beam.window.TimestampedValue(value, Timestamp(seconds))


def iso(seconds: float) -> str:
    return Timestamp(seconds).to_rfc3339()


def aggregate(key, start, end, sentiments, pane_index, timing, reach=None, unsupported=0):
    """The expected aggregate of distinct posts with these ``sentiments``."""
    count = len(sentiments)
    sums = [sum(PROBABILITIES[s][i] for s in sentiments) for i in range(len(LABELS))]
    negatives = sentiments.count("negative")
    reach = count if reach is None else reach
    languages = {"en": reach} | ({"fr": unsupported} if unsupported else {})
    return {"type": "aggregate", "key": key, "window_start": iso(start), "window_end": iso(end),
            "posts": count, "reach": reach,
            "counts": {label: sentiments.count(label) for label in LABELS},
            "mean_probabilities": {label: sums[i] / count for i, label in enumerate(LABELS)},
            "negative_share": negatives / count, "share_correction": "uncorrected",
            "languages": languages,
            "unsupported_language": unsupported, "pane_index": pane_index, "timing": timing}


def run_monitoring(stream, config):
    """Yields MonitorSentiment's outputs for the caller's assertions, then runs the pipeline."""
    options = PipelineOptions(flags=[], runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        outputs = pipeline | stream | MonitorSentiment(config)
        yield outputs


@pytest.mark.usefixtures("dofn_specs")
def test_fixed_windows_on_time_late_and_too_late_panes_and_alerts():
    config = MonitorConfig(AlertRule(LABELS, "negative", threshold=0.5, min_posts=3),
                           key_name="brand", window_seconds=10, allowed_lateness_seconds=5)
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
    expected_alerts = [{**pane, "type": "alert", "threshold": 0.5, "min_posts": 3,
                        "alert_share": "raw"}
                       for pane in (acme_on_time, acme_late)]
    for outputs in run_monitoring(stream, config):
        assert_that(outputs["aggregates"], equal_to(expected_aggregates), label="aggregates")
        assert_that(outputs["alerts"], equal_to(expected_alerts), label="alerts")
        assert_that(outputs["too_late"], equal_to([
            {"type": "too_late", "id": "a6", "key": "acme", "window_start": iso(0),
             "window_end": iso(10), "event_time": iso(6)}]), label="too late")


@pytest.mark.usefixtures("dofn_specs")
def test_the_windows_get_only_the_fields_an_aggregate_reads():
    """The lateness gate passes on a record's aggregated fields, not the whole record: windows
    hold what they get until their allowed lateness has passed (minutes of a stream)."""
    options = PipelineOptions(flags=[], runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    stream = (test_stream.TestStream()
              .advance_watermark_to(Timestamp(0))
              .add_elements([at(1, ("acme", record("a1", "negative", "acme")))])
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=options) as pipeline:
        gated = (pipeline | stream
                 | beam.ParDo(_LatenessGate(beam.window.FixedWindows(10), Duration(5)))
                 .with_outputs(TOO_LATE_TAG, main="on_time"))
        assert_that(gated.on_time, equal_to([("acme", {
            "status": SCORED, "sentiment": "negative",
            "probabilities": {"negative": 0.75, "positive": 0.25}, "language": "en",
            "text_fingerprint": "fp-a1"})]))


@pytest.mark.usefixtures("dofn_specs")
def test_sliding_windows_put_each_record_in_every_window_it_belongs_to():
    config = MonitorConfig(AlertRule(LABELS, "negative", threshold=0.9, min_posts=1),
                           window_seconds=10, window_period_seconds=5, allowed_lateness_seconds=0)
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


def test_a_retweet_storm_counts_once_and_unsupported_posts_stay_out_of_the_shares():
    """One negative post copied 30 times, two positive posts and a French post: the share is
    over 3 distinct posts (1/3, no alert at 0.5), reach counts every copy."""
    config = MonitorConfig(AlertRule(LABELS, "negative", threshold=0.5, min_posts=3),
                           key_name="brand", window_seconds=10, allowed_lateness_seconds=0)
    storm = [at(1, record(f"rt{i}", "negative", "acme", text="awful airline")) for i in range(30)]
    stream = (test_stream.TestStream()
              .advance_watermark_to(Timestamp(0))
              .add_elements([*storm, at(2, record("p1", "positive", "acme")),
                             at(3, record("p2", "positive", "acme")),
                             at(4, record("fr1", None, "acme"))])
              .advance_watermark_to_infinity())
    for outputs in run_monitoring(stream, config):
        assert_that(outputs["aggregates"], equal_to([aggregate(
            "acme", 0, 10, ["negative", "positive", "positive"], 0, "ON_TIME", reach=32,
            unsupported=1)]), label="aggregates")
        assert_that(outputs["alerts"], equal_to([]), label="alerts")


def test_record_key_prefers_attribute_then_field_then_all():
    assert record_key({"attributes": {"brand": "a"}, "brand": "b"}, "brand") == "a"
    assert record_key({"attributes": {}, "brand": "b"}, "brand") == "b"
    assert record_key({"attributes": {}}, "brand") == "all"
    assert record_key({"attributes": {"brand": "a"}}, None) == "all"


@pytest.mark.parametrize("changes, message", [
    ({"negative_label": "bearish"}, "not one of the model's labels"),
    ({"min_posts": 0}, "at least 1"),
])
def test_alert_rule_rejects_impossible_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        AlertRule(**(dict(labels=LABELS, negative_label="negative") | changes))


def test_config_rejects_impossible_windows():
    with pytest.raises(ValueError, match="window_period_seconds"):
        MonitorConfig(AlertRule(LABELS, "negative"), window_seconds=60, window_period_seconds=90)
