"""Streaming scoring: Pub/Sub messages in; scored records, dead letters and monitoring out.

::

    ReadFromPubSub(subscription or topic, with_attributes)  (x --pubsub_readers, flattened)
      -> ParDo(ParseMessages): JSON object, id, created_at -> event time  --> dead letters
      -> RunInference(KeyedModelHandler(StreamingModelHandler))  (the batch handler, kept loaded;
                                                 hot-swapped with --model_watch)
      -> scored records (records.scored_record), re-stamped with their event time
                                      (a row ONNX Runtime fails on --> dead letters)
           |-> WriteToPubSub(--output_topic)            JSON, input attributes kept
           |-> windowed JSON-lines files                (--output_files)
           '-> MonitorSentiment -> aggregates + alerts -> WriteToPubSub(--aggregates_topic)
    dead letters -> WriteToPubSub(--dead_letter_topic)  (else counted and logged: id and reason)

Guarantees (what the tests in tests/test_streaming_pubsub.py show, on the DirectRunner):
every message pulled is written once, to ``--output_topic`` scored or to ``--dead_letter_topic``
with a reason, however many malformed messages arrive between good ones; a message whose text
ONNX Runtime fails on is dead-lettered (``inference_error``), not lost. Delivery is
at-least-once: Pub/Sub delivers a message again when its acknowledgement is lost or late, and the
pipeline then scores it again; every record carries the Pub/Sub ``message_id`` (and the payload's
``id``), so consumers de-duplicate on ``message_id``. The DirectRunner acknowledges a pulled
message before it is processed, so a crash of the process loses the messages it held. Dataflow
checkpoints and de-duplicates Pub/Sub reads (exactly-once processing; not tested here).
``id_label`` and ``timestamp_attribute`` are not supported on the DirectRunner and not used.
Payloads appear only in the output and dead-letter topics, never in log lines (which name
message ids and reasons).

One thread on the DirectRunner: the BundleBasedDirectRunner runs every step, and each Pub/Sub
pull (at most 10 messages, waiting up to 30 s while the subscription is empty), on a single
worker thread (``executor._ExecutorServiceParallelExecutor.NUM_WORKERS = 1``). On a quiet
stream nothing else runs while a pull waits, so processing-time timers (late panes, and Beam's
stateful ``BatchElements`` behind ``--max_batch_duration_secs``) fire up to 30 s late: with
Google's emulator a batch waiting 1 s for more messages came out ~30 s later. Hence the default
``--max_batch_duration_secs 0``: the messages of one pull are one inference batch, emitted at
once.

Throughput on the DirectRunner is the runner's, not the model's: each Pub/Sub pull (at most 10
messages) becomes a bundle that passes some 18 ParDo steps, and for every bundle and step the
BundleBasedDirectRunner unpickles a fresh copy of the DoFn, calls its ``setup`` and ``teardown``
(``WriteToPubSub``'s builds a new publisher client each time) and inspects its method signatures
again (``userstate.get_dofn_specs``: about half of the worker thread's time in a py-spy profile).
We timed 4-6 ms per step and bundle, also for the empty bundles of the dead-letter branch. With a
tiny random model whose inference costs nothing, the same command sustains about 45 messages/s
here (benchmarks/results/stream_latency.md, runner-ceiling row). Dataflow reuses set-up DoFns
across bundles; it is the runner for rates above that.

Event time and lateness on the DirectRunner: its Pub/Sub watermark is the wall clock at each
pull (Dataflow's is the oldest unacknowledged publish time). A backlog read after a restart
therefore arrives late: within ``--allowed_lateness_seconds`` it updates its windows in late
panes; beyond it, it is still scored and written to ``--output_topic``, but left out of the
aggregates and the files (counted in ``streaming/records_too_late``).
"""
from __future__ import annotations

import dataclasses
import uuid
from typing import Any, Iterator, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.gcp.pubsub import ReadFromPubSub, WriteToPubSub, parse_subscription, \
    parse_topic
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms import trigger, window

from beam_pipeline.bundle import pinned_checksums
from beam_pipeline.onnx_handler import (INFERENCE_ERROR, INFERENCE_STAGE, InferenceFailure,
                                        check_bundle_of_options)
from beam_pipeline.options import ScoringOptions
from beam_pipeline.records import dead_letter_record, scored_record, utc_now
from beam_pipeline.streaming_messages import (DEAD_LETTER_TAG, DEFAULT_MAX_MESSAGE_BYTES,
                                              MessageFormat, ParsedMessage, ParseMessages,
                                              to_json_bytes, to_pubsub_message)
from beam_pipeline.streaming_models import (DEFAULT_WATCH_INTERVAL_S, StreamingModelHandler,
                                            watched_manifests)
from beam_pipeline.streaming_monitoring import MonitorConfig, MonitorSentiment
from beam_pipeline.validation import InputError, default_max_chars


class StreamingOptions(PipelineOptions):
    """Flags of ``sentiment-score --streaming`` (the model flags are `ScoringOptions`')."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--input_subscription", default=None,
                            help="projects/P/subscriptions/S to read (preferred)")
        parser.add_argument("--input_topic", default=None,
                            help="projects/P/topics/T to read through a temporary subscription "
                                 "(misses messages published before the pipeline starts)")
        parser.add_argument("--output_topic", default=None,
                            help="projects/P/topics/T receiving scored records as JSON")
        parser.add_argument("--aggregates_topic", default=None,
                            help="topic receiving window aggregates and alerts as JSON")
        parser.add_argument("--dead_letter_topic", default=None,
                            help="topic receiving rejected messages with a reason "
                                 "(without it they are only counted and logged)")
        parser.add_argument("--output_files", default=None,
                            help="also write scored records as JSON lines, one set of files "
                                 "per window, under this prefix")
        parser.add_argument("--text_field", default="text",
                            help="JSON field of a message holding the text")
        parser.add_argument("--max_message_bytes", default=DEFAULT_MAX_MESSAGE_BYTES, type=int,
                            help="larger payloads are dead-lettered (reason too_large)")
        parser.add_argument("--key_attribute", default=None,
                            help="message attribute (else JSON field) to aggregate by; "
                                 "'all' when absent")
        parser.add_argument("--window_seconds", default=60.0, type=float,
                            help="length of the monitoring windows (event time)")
        parser.add_argument("--window_period_seconds", default=None, type=float,
                            help="start a window every N seconds (sliding); default: fixed")
        parser.add_argument("--allowed_lateness_seconds", default=300.0, type=float,
                            help="late records within this time update their window (late "
                                 "pane); later ones are counted and dropped from monitoring")
        parser.add_argument("--negative_label", default=None,
                            help="label whose share raises alerts (default: the bundle's "
                                 "first label)")
        parser.add_argument("--alert_negative_share", default=0.5, type=float,
                            help="alert when a window's negative share exceeds this")
        parser.add_argument("--alert_min_count", default=20, type=int,
                            help="... and it holds at least this many records")
        parser.add_argument("--pubsub_readers", default=1, type=int,
                            help="parallel reads of --input_subscription (the DirectRunner pulls "
                                 "at most 10 messages per read and step)")
        parser.add_argument("--max_batch_duration_secs", default=0, type=int,
                            help="longest time a record waits for its inference batch to fill "
                                 "(Beam's stateful batching, driven by a processing-time timer); "
                                 "0: no wait, the messages of one Pub/Sub pull are one batch")
        parser.add_argument("--model_watch", default=None,
                            help="glob of bundle folders: a bundle written there later (its "
                                 "bundle.json last) is verified and scores from then on, "
                                 "without a restart; a bad one is refused and logged")
        parser.add_argument("--model_watch_interval_s", default=DEFAULT_WATCH_INTERVAL_S,
                            type=float, help="how often --model_watch looks for a new bundle")


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
    scoring, streaming = options.view_as(ScoringOptions), options.view_as(StreamingOptions)
    if str(options.view_as(StandardOptions).runner).endswith("FnApiRunner"):
        raise InputError("--streaming does not run on the FnApiRunner (it reads nothing from "
                         "Pub/Sub); use --runner BundleBasedDirectRunner locally, or Dataflow")
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
    manifest = check_bundle_of_options(scoring)
    if streaming.model_watch:
        watched_manifests(streaming.model_watch)  # an unknown file system fails here
    labels = tuple(manifest["labels"])
    max_length = scoring.max_length or int(manifest["max_length"])
    try:
        monitor = MonitorConfig(
            labels=labels, negative_label=streaming.negative_label or labels[0],
            key_name=streaming.key_attribute, window_seconds=streaming.window_seconds,
            window_period_seconds=streaming.window_period_seconds,
            allowed_lateness_seconds=streaming.allowed_lateness_seconds,
            alert_negative_share=streaming.alert_negative_share,
            alert_min_count=streaming.alert_min_count)
    except ValueError as error:
        raise InputError(str(error)) from None
    if streaming.model_watch_interval_s <= 0:
        raise InputError("--model_watch_interval_s must be positive")
    handler = StreamingModelHandler.from_options(
        scoring, scoring.max_length, pinned_sha256=pinned_checksums(manifest),
        max_batch_duration_secs=streaming.max_batch_duration_secs or None,
        model_watch=streaming.model_watch,
        model_watch_interval_s=streaming.model_watch_interval_s)
    message_format = MessageFormat(
        text_field=streaming.text_field, max_message_bytes=streaming.max_message_bytes,
        max_chars=scoring.max_chars or default_max_chars(max_length))
    return StreamingJob(scoring, streaming, labels, message_format, monitor, handler)


class ToScoredRecord(beam.DoFn):
    """``(ParsedMessage, PredictionResult)`` -> the scored record, stamped with its event time;
    a message ONNX Runtime failed on goes to the ``dead_letter`` output (reason
    ``inference_error``, the error's type and first line in ``error``; logged without text)."""

    def __init__(self, labels: tuple[str, ...]):
        self._labels = list(labels)
        self._failed = Metrics.counter("streaming", f"dead_letter_{INFERENCE_ERROR}")

    def process(self, scored: tuple[ParsedMessage, PredictionResult]) -> Iterator[Any]:
        parsed, result = scored
        if isinstance(result.inference, InferenceFailure):
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter_record(
                parsed.row, parsed.record_id, INFERENCE_ERROR, INFERENCE_STAGE,
                str(result.inference)))
            return
        record = scored_record(parsed.row, parsed.record_id, result.inference, self._labels,
                               result.model_id, utc_now())
        yield window.TimestampedValue(record, parsed.event_time)


def monitoring_message(record: dict[str, Any]) -> beam.io.gcp.pubsub.PubsubMessage:
    """An aggregate or alert as a Pub/Sub message with ``type`` and ``key`` attributes."""
    return beam.io.gcp.pubsub.PubsubMessage(
        to_json_bytes(record), {"type": record["type"], "key": record["key"]})


@dataclasses.dataclass(frozen=True)
class StreamingOutputs:
    """The pipeline's PCollections of records (before they are written); no monitoring ones
    without ``--aggregates_topic``."""

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
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        with FileSystems.create(temporary) as handle:
            for record in records:
                handle.write(to_json_bytes(record) + b"\n")
        FileSystems.rename([temporary], [path])
        yield path


def _write_windowed_files(scored: beam.PCollection, streaming: StreamingOptions) -> None:
    """Scored records as JSON lines, one file per window and pane: the on-time pane when the
    watermark passes the window's end, then a late pane a window length after the first record
    arriving late (within the allowed lateness)."""
    (scored
     | "FilesWindow" >> beam.WindowInto(
         window.FixedWindows(streaming.window_seconds),
         trigger=trigger.AfterWatermark(
             late=trigger.AfterProcessingTime(streaming.window_seconds)),
         accumulation_mode=trigger.AccumulationMode.DISCARDING,
         allowed_lateness=streaming.allowed_lateness_seconds)
     | "FilesKey" >> beam.Map(lambda record: (None, record))
     | "FilesPane" >> beam.GroupByKey()
     | "WriteFiles" >> beam.ParDo(WritePaneFile(streaming.output_files)))


def build_streaming_pipeline(pipeline: beam.Pipeline,
                             options: Optional[PipelineOptions] = None) -> StreamingOutputs:
    """Adds the streaming scoring steps to ``pipeline`` (options default to the pipeline's)."""
    options = options or pipeline.options
    options.view_as(StandardOptions).streaming = True
    job = plan_streaming_job(options)
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
                | "KeyByMessage" >> beam.Map(lambda message: (message, message.text))
                | "Score" >> RunInference(KeyedModelHandler(job.handler))
                | "ScoredRecords" >> beam.ParDo(ToScoredRecord(job.labels)).with_outputs(
                    DEAD_LETTER_TAG, main="scored"))
    scored = outcomes.scored
    dead_letters = ((parsed[DEAD_LETTER_TAG], outcomes[DEAD_LETTER_TAG])
                    | "AllDeadLetters" >> beam.Flatten())

    (scored | "ScoredMessages" >> beam.Map(to_pubsub_message)
     | "WriteScored" >> WriteToPubSub(streaming.output_topic, with_attributes=True))
    if streaming.dead_letter_topic:
        (dead_letters | "DeadLetterMessages" >> beam.Map(to_pubsub_message)
         | "WriteDeadLetters" >> WriteToPubSub(streaming.dead_letter_topic, with_attributes=True))
    monitoring = {"aggregates": None, "alerts": None}
    if streaming.aggregates_topic:
        monitoring = scored | "Monitor" >> MonitorSentiment(job.monitor)
        ((monitoring["aggregates"], monitoring["alerts"])
         | "AllMonitoring" >> beam.Flatten()
         | "MonitoringMessages" >> beam.Map(monitoring_message)
         | "WriteMonitoring" >> WriteToPubSub(streaming.aggregates_topic, with_attributes=True))
    if streaming.output_files:
        _write_windowed_files(scored, streaming)
    return StreamingOutputs(scored, dead_letters, monitoring["aggregates"], monitoring["alerts"])
