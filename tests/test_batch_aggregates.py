"""Aggregates in batch (``--key_column --time_column --window_seconds``): the same aggregates and
alerts as the stream computes from the same records; the summary and the report a run writes,
checked in Chromium against the summary; what changed since an earlier run."""
from __future__ import annotations

import datetime
import json

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from beam_pipeline.aggregates import AlertRule
from beam_pipeline.batch.aggregation import window_of
from beam_pipeline.cli import main
from beam_pipeline.model import RowResult
from beam_pipeline.records import scored_record
from beam_pipeline.reports import browser
from beam_pipeline.streaming.monitoring import MonitorConfig, MonitorSentiment
from beam_pipeline.vocabulary import SCORED, UNSUPPORTED_LANGUAGE

LABELS = ("negative", "positive")
DAY = 86400
START = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)


def test_windows_of_time_values_are_epoch_aligned():
    assert window_of(START + datetime.timedelta(hours=5), DAY) == (
        "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z")
    assert window_of("2026-11-30T23:59:59+00:00", 3600) == (
        "2026-11-30T23:00:00Z", "2026-12-01T00:00:00Z")
    assert window_of(datetime.date(2026, 12, 1), DAY)[0] == "2026-12-01T00:00:00Z"
    assert window_of(None, DAY) == window_of("yesterday", DAY) == (None, None)


def posts() -> list[dict]:
    """Scored records of two brands over two days: copies of one post, a French post."""
    rows = []
    for day, brand, text, sentiment in [
            (0, "acme", "late again", "negative"), (0, "acme", "late again", "negative"),
            (0, "acme", "great crew", "positive"), (0, "acme", "lost my bag", "negative"),
            (0, "acme", "bonjour", None), (0, "globex", "fine", "positive"),
            (1, "acme", "great crew", "positive"), (1, "globex", "awful", "negative")]:
        negative = 0.9 if sentiment == "negative" else 0.2
        result = RowResult(
            probabilities=None if sentiment is None else np.array([negative, 1 - negative]),
            failure=None, status=SCORED if sentiment else UNSUPPORTED_LANGUAGE,
            language="fr" if sentiment is None else "en", language_confidence=0.9,
            fingerprint=f"fp-{text}", tokens=4, cut=False)
        created = START + datetime.timedelta(days=day, hours=len(rows))
        rows.append(scored_record({"text": text, "brand": brand, "created_at": created},
                                  str(len(rows)), result, LABELS, "v1", START))
    return rows


def batch_aggregates(tmp_path, records: list[dict]) -> list[dict]:
    """The batch pipeline's aggregation steps (as `build_batch_pipeline` applies them) on these
    records, on the FnApiRunner."""
    from beam_pipeline.aggregates import SentimentAggregateFn
    from beam_pipeline.batch.aggregation import aggregate_and_alert, keyed_for_aggregation
    from beam_pipeline.batch.planning import Aggregation
    from beam_pipeline.batch.scoring import ChunkRecords

    aggregation = Aggregation("brand", "created_at", DAY, AlertRule(LABELS, "negative", 0.5, 2))
    with beam.Pipeline("FnApiRunner", options=PipelineOptions(flags=[])) as pipeline:
        out = (pipeline | beam.Create([ChunkRecords("c", records, [], {})])
               | beam.FlatMap(keyed_for_aggregation, aggregation)
               | beam.CombinePerKey(SentimentAggregateFn(aggregation.rule))
               | beam.FlatMap(aggregate_and_alert, aggregation)
               | beam.Map(json.dumps, sort_keys=True))
        out | beam.io.WriteToText(str(tmp_path / "batch"), shard_name_template="")
    return [json.loads(line) for line in (tmp_path / "batch").read_text().splitlines()]


def test_batch_aggregates_equal_streaming_aggregates_on_the_same_records(tmp_path):
    records = posts()
    batch = batch_aggregates(tmp_path, records)
    config = MonitorConfig(AlertRule(LABELS, "negative", 0.5, 2), key_name="brand",
                           window_seconds=DAY, allowed_lateness_seconds=0)
    stream = (test_stream.TestStream().advance_watermark_to(Timestamp(0))
              .add_elements([beam.window.TimestampedValue(
                  record, record["created_at"].timestamp()) for record in records])
              .advance_watermark_to_infinity())
    options = PipelineOptions(flags=[], runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    without_panes = {name for name in ("pane_index", "timing")}
    with beam.Pipeline(options=options) as pipeline:
        monitored = pipeline | stream | MonitorSentiment(config)
        streamed = ((monitored["aggregates"], monitored["alerts"]) | beam.Flatten()
                    | beam.Map(lambda record: json.dumps(
                        {k: v for k, v in record.items() if k not in without_panes},
                        sort_keys=True)))
        assert_that(streamed, equal_to([json.dumps(record, sort_keys=True) for record in batch]))
    acme_day_one = next(record for record in batch if record["type"] == "aggregate"
                        and record["key"] == "acme" and record["window_start"].startswith(
                            "2026-11-30"))
    assert (acme_day_one["posts"], acme_day_one["reach"], acme_day_one["counts"],
            acme_day_one["unsupported_language"]) == (3, 4, {"negative": 2, "positive": 1}, 1)
    assert [(record["key"], record["window_start"][:10]) for record in batch
            if record["type"] == "alert"] == [("acme", "2026-11-30")]


def write_dump(path, texts, brands, days):
    created = [START + datetime.timedelta(days=day, hours=index)
               for index, day in enumerate(days)]
    pq.write_table(pa.table({"text": texts, "brand": brands,
                             "created_at": pa.array(created, pa.timestamp("us", tz="UTC"))}),
                   path)


def test_a_run_writes_its_summary_and_a_report_whose_charts_hold_its_numbers(tiny_bundle_dir,
                                                                             tmp_path, capsys):
    texts = ["a charming , funny film .", "dull and slow .", "", "the best thing this year",
             "dull and slow .", None, "a waste of time", "moving and wise"]
    write_dump(tmp_path / "reviews.parquet", texts, ["a", "a", "a", "b", "a", "b", "b", "a"],
               [0, 0, 0, 0, 1, 1, 1, 1])
    prefix = tmp_path / "out" / "reviews"
    common = ["--model", str(tiny_bundle_dir), "--precision", "fp32", "--key_column", "brand",
              "--time_column", "created_at", "--alert_min_posts", "1"]
    assert main(["--input", str(tmp_path / "reviews.parquet"), "--output", str(prefix),
                 *common]) == 0
    assert main(["--input", str(tmp_path / "reviews.parquet"), "--output", str(prefix) + "2",
                 "--compare_to", str(prefix), *common]) == 0
    printed = capsys.readouterr().out
    assert f"report        {prefix}2-report.html" in printed
    summary = json.loads((tmp_path / "out" / "reviews2-summary.json").read_text())
    assert summary["counts"]["rows_read"] == 8 and summary["counts"]["scored"] == 6
    assert summary["counts"]["dead_letter_reasons"] == {"empty_text": 1, "null_text": 1}
    assert sum(summary["sentiment"]["counts"].values()) == 6
    assert sum(summary["confidence"]["counts"]) == 6 == sum(summary["text_length"]["counts"])
    assert summary["aggregates"]["keys"] == 2 and summary["aggregates"]["windows"] == 2
    assert summary["run"]["compare_to"] == str(prefix)
    with browser.chromium() as driver:
        browser.open_page(driver, tmp_path / "out" / "reviews2-report.html")
        sentiment = driver.execute_script(
            "return document.getElementById('chart-sentiment').data[0]")
        assert dict(zip(sentiment["x"], sentiment["y"])) == summary["sentiment"]["counts"]
        confidence = driver.execute_script(
            "return document.getElementById('chart-confidence').data[0].y")
        assert confidence == summary["confidence"]["counts"]
        keys = driver.execute_script(
            "return document.getElementById('chart-negative-share').data"
            ".filter(t => t.mode && t.mode.includes('lines')).map(t => t.name)")
        assert sorted(keys) == ["a", "b"]
        assert driver.find_elements("id", "chart-compare-sentiment")
        browser.save_screenshot(driver, tmp_path / "report.png")
