"""Streaming scoring: Pub/Sub messages in; scored records, dead letters and monitoring out::

    ReadFromPubSub(subscription or topic, with_attributes)  (x --pubsub_readers, flattened)
      -> ParDo(ParseMessages): JSON object, id, created_at -> event time,  --> dead letters
                               keyed by the message for RunInference
      -> RunInference(KeyedModelHandler(StreamingModelHandler))  (kept loaded; hot-swapped
                                                                  with --model_watch)
      -> ParDo(ToScoredRecord), re-stamped with event time  (ONNX Runtime fails -> dead letters)
           |-> PublishRecords(--output_topic)           JSON, input attributes kept
           |-> windowed JSON-lines files                (--output_files)
           '-> MonitorSentiment -> aggregates + alerts -> PublishRecords(--aggregates_topic)
    dead letters -> PublishRecords(--dead_letter_topic)  (else counted and logged: id and reason)

`publishing.PublishRecords` is one step on the DirectRunner and Beam's ``WriteToPubSub``
elsewhere. Every message pulled is written once, scored or dead-lettered with a reason; delivery
is at-least-once (records carry the Pub/Sub ``message_id``). Runner behaviour this shape follows
(one worker thread, acks before processing, per-bundle DoFn set-up, watermarks):
docs/design.md, "Streaming pipeline".
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any, Optional

import apache_beam as beam
from apache_beam.io.gcp.pubsub import ReadFromPubSub, parse_subscription, parse_topic
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms import trigger, window

from beam_pipeline.aggregates import AGGREGATES_PART
from beam_pipeline.errors import InputError
from beam_pipeline.files import write_atomically
from beam_pipeline.options import ScoringOptions
from beam_pipeline.planning import plan_alert_rule, plan_model
from beam_pipeline.records import dead_letter_record, scored_record, utc_now
from beam_pipeline.streaming.messages import (
    DEAD_LETTER_TAG,
    MessageFormat,
    ParsedMessage,
    ParseMessages,
    to_json_bytes,
    to_pubsub_message,
)
from beam_pipeline.streaming.model_watch import StreamingModelHandler, watched_manifests
from beam_pipeline.streaming.monitoring import MonitorConfig, MonitorSentiment
from beam_pipeline.streaming.options import StreamingOptions
from beam_pipeline.streaming.publishing import PublishRecords
from beam_pipeline.vocabulary import (
    INFERENCE_ERROR,
    INFERENCE_STAGE,
    METRICS_NAMESPACE,
    ROWS_SCORED,
    SCORED,
    dead_lettered_counter,
    unscored_counter,
)


@dataclasses.dataclass(frozen=True)
class StreamingJob:
    """Everything checked before a streaming run starts."""

    scoring: ScoringOptions
    streaming: StreamingOptions
    labels: tuple[str, ...]
    message_format: MessageFormat
    monitor: MonitorConfig
    handler: StreamingModelHandler


def plan_streaming_job(options: PipelineOptions) -> StreamingJob:
    """Checks the flags and the bundle; raises `InputError` or `BundleError` with one line."""
    options.view_as(StandardOptions).streaming = True
    scoring, streaming = options.view_as(ScoringOptions), options.view_as(StreamingOptions)
    if str(options.view_as(StandardOptions).runner).endswith("FnApiRunner"):
        raise InputError("--streaming does not run on the FnApiRunner (it reads nothing from "
                         "Pub/Sub); use --runner BundleBasedDirectRunner locally, or Dataflow")
    if streaming.cache_dofn_specs and "DirectRunner" not in str(
            options.view_as(StandardOptions).runner or "DirectRunner"):
        raise InputError("--cache_dofn_specs is for the DirectRunner (other runners set DoFns "
                         "up once, not per bundle)")
    if bool(streaming.input_subscription) == bool(streaming.input_topic):
        raise InputError("give exactly one of --input_subscription and --input_topic")
    missing = [flag for flag, value in (("--output_topic", streaming.output_topic),
                                        ("--model", scoring.model)) if not value]
    if missing:
        raise InputError(f"missing required flags: {' '.join(missing)}")
    try:
        if streaming.input_subscription:
            parse_subscription(streaming.input_subscription)
        for topic in (streaming.input_topic, streaming.output_topic, streaming.aggregates_topic,
                      streaming.dead_letter_topic):
            if topic:
                parse_topic(topic)
    except ValueError as error:
        raise InputError(str(error)) from None
    model = plan_model(scoring)
    if streaming.model_watch:
        watched_manifests(streaming.model_watch)  # an unknown file system fails here
    labels = model.labels
    try:
        monitor = MonitorConfig(
            rule=plan_alert_rule(scoring, model), key_name=streaming.key_attribute,
            window_seconds=(DEFAULT_WINDOW_SECONDS if scoring.window_seconds is None
                            else scoring.window_seconds),
            window_period_seconds=streaming.window_period_seconds,
            allowed_lateness_seconds=streaming.allowed_lateness_seconds)
    except ValueError as error:
        raise InputError(str(error)) from None
    if streaming.model_watch_interval_s <= 0:
        raise InputError("--model_watch_interval_s must be positive")
    handler = StreamingModelHandler.from_plan(
        scoring, model, max_batch_duration_secs=streaming.max_batch_duration_secs or None,
        model_watch=streaming.model_watch,
        model_watch_interval_s=streaming.model_watch_interval_s)
    message_format = MessageFormat(
        text_field=streaming.text_field, max_message_bytes=streaming.max_message_bytes,
        max_chars=model.max_chars)
    return StreamingJob(scoring, streaming, labels, message_format, monitor, handler)


DEFAULT_WINDOW_SECONDS = 60.0


class ToScoredRecord(beam.DoFn):
    """``(ParsedMessage, PredictionResult)`` -> the record (scored, or unscored with its
    status), stamped with its event time; a message ONNX Runtime failed on goes to the
    ``dead_letter`` output (reason
    ``inference_error``, the error's type and first line in ``error``; logged without text)."""

    def __init__(self, labels: tuple[str, ...]):
        self._labels = list(labels)
        self._scored = Metrics.counter(METRICS_NAMESPACE, ROWS_SCORED)
        self._failed = Metrics.counter(METRICS_NAMESPACE,
                                       dead_lettered_counter(INFERENCE_ERROR))

    def process(self, scored: tuple[ParsedMessage, PredictionResult]) -> Iterator[Any]:
        parsed, result = scored
        outcome = result.inference
        if outcome.failure is not None:
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter_record(
                parsed.row, parsed.record_id, INFERENCE_ERROR, INFERENCE_STAGE,
                str(outcome.failure)))
            return
        record = scored_record(parsed.row, parsed.record_id, outcome, self._labels,
                               result.model_id, utc_now())
        if outcome.status == SCORED:
            self._scored.inc()
        else:
            Metrics.counter(METRICS_NAMESPACE, unscored_counter(outcome.status)).inc()
        yield window.TimestampedValue(record, parsed.event_time)


def monitoring_message(record: dict[str, Any]) -> beam.io.gcp.pubsub.PubsubMessage:
    """An aggregate or alert as a Pub/Sub message with ``type`` and ``key`` attributes."""
    return beam.io.gcp.pubsub.PubsubMessage(
        to_json_bytes(record), {"type": record["type"], "key": record["key"]})


@dataclasses.dataclass(frozen=True)
class StreamingOutputs:
    """The pipeline's PCollections of records (before they are written); no monitoring ones
    without ``--aggregates_topic`` or ``--output_files``."""

    scored: beam.PCollection
    dead_letters: beam.PCollection
    aggregates: Optional[beam.PCollection]
    alerts: Optional[beam.PCollection]


class WritePaneFile(beam.DoFn):
    """Writes one window pane's records as ``PREFIX-<start>-<end>-pane<N>.jsonl`` (under a
    temporary name, then renamed: a file appears whole or not at all); yields the path.

    Beam's ``fileio.WriteToFiles`` was tried first: on the DirectRunner it finalised only the
    on-time panes (39 of 260 records of a backlog reached the files; the rest stayed in its
    temporary folder), and it leaves the pane out of file names, so late panes would overwrite
    the on-time file."""

    def __init__(self, prefix: str):
        self._prefix = prefix

    def process(self, keyed: tuple[Any, list[dict[str, Any]]], bounded=beam.DoFn.WindowParam,
                pane=beam.DoFn.PaneInfoParam) -> Iterator[str]:
        _, records = keyed
        path = (f"{self._prefix}-{bounded.start.to_rfc3339()}-{bounded.end.to_rfc3339()}"
                f"-pane{pane.index}.jsonl")

        def write_lines(handle) -> None:
            for record in records:
                handle.write(to_json_bytes(record) + b"\n")

        yield write_atomically(path, write_lines)


def _write_windowed_files(records: beam.PCollection, prefix: str, window_seconds: float,
                          allowed_lateness_seconds: float, name: str) -> None:
    """Records as JSON lines, one file per window and pane: the on-time pane when the watermark
    passes the window's end, then a late pane a window length after the first record arriving
    late (within the allowed lateness)."""
    (records
     | f"{name}Window" >> beam.WindowInto(
         window.FixedWindows(window_seconds),
         # Beam wants whole milliseconds here: a float window length failed translation
         trigger=trigger.AfterWatermark(late=trigger.AfterProcessingTime(
             math.ceil(window_seconds))),
         accumulation_mode=trigger.AccumulationMode.DISCARDING,
         allowed_lateness=allowed_lateness_seconds)
     | f"{name}Key" >> beam.Map(lambda record: (None, record))
     | f"{name}Pane" >> beam.GroupByKey()
     | f"Write{name}" >> beam.ParDo(WritePaneFile(prefix)))


def build_streaming_pipeline(pipeline: beam.Pipeline, job: StreamingJob) -> StreamingOutputs:
    """Adds the streaming scoring steps for ``job`` (see `plan_streaming_job`) to ``pipeline``."""
    streaming = job.streaming
    if streaming.input_subscription:
        reads = [pipeline | f"Read{index}" >> ReadFromPubSub(
            subscription=streaming.input_subscription, with_attributes=True)
            for index in range(streaming.pubsub_readers)]
    else:
        reads = [pipeline | "Read" >> ReadFromPubSub(topic=streaming.input_topic,
                                                     with_attributes=True)]
    parsed = (reads
              | "AllMessages" >> beam.Flatten()
              | "Parse" >> beam.ParDo(ParseMessages(job.message_format)).with_outputs(
                  DEAD_LETTER_TAG, main="parsed"))
    outcomes = (parsed.parsed
                | "Score" >> RunInference(KeyedModelHandler(job.handler))
                | "ScoredRecords" >> beam.ParDo(ToScoredRecord(job.labels)).with_outputs(
                    DEAD_LETTER_TAG, main="scored"))
    scored = outcomes.scored
    dead_letters = ((parsed[DEAD_LETTER_TAG], outcomes[DEAD_LETTER_TAG])
                    | "AllDeadLetters" >> beam.Flatten())

    _ = scored | "WriteScored" >> PublishRecords(streaming.output_topic, to_pubsub_message)
    if streaming.dead_letter_topic:
        _ = dead_letters | "WriteDeadLetters" >> PublishRecords(streaming.dead_letter_topic,
                                                                 to_pubsub_message)
    monitoring = {"aggregates": None, "alerts": None}
    if streaming.aggregates_topic or streaming.output_files:
        monitoring = scored | "Monitor" >> MonitorSentiment(job.monitor)
        all_monitoring = ((monitoring["aggregates"], monitoring["alerts"])
                          | "AllMonitoring" >> beam.Flatten())
    if streaming.aggregates_topic:
        _ = all_monitoring | "WriteMonitoring" >> PublishRecords(streaming.aggregates_topic,
                                                                 monitoring_message)
    if streaming.output_files:
        lateness = streaming.allowed_lateness_seconds
        _write_windowed_files(scored, streaming.output_files, job.monitor.window_seconds,
                              lateness, "Files")
        _write_windowed_files(all_monitoring, f"{streaming.output_files}-{AGGREGATES_PART}",
                              job.monitor.window_seconds, lateness, "AggregateFiles")
    return StreamingOutputs(scored, dead_letters, monitoring["aggregates"], monitoring["alerts"])
