"""Flags of ``sentiment-score --streaming`` (the model, window and alert flags are
`options.ScoringOptions`')."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.streaming.messages import DEFAULT_MAX_MESSAGE_BYTES
from beam_pipeline.streaming.model_watch import DEFAULT_WATCH_INTERVAL_S


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
        parser.add_argument("--window_period_seconds", default=None, type=float,
                            help="start a window every N seconds (sliding); default: fixed")
        parser.add_argument("--allowed_lateness_seconds", default=300.0, type=float,
                            help="late records within this time update their window (late "
                                 "pane); later ones are counted and dropped from monitoring")
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
        parser.add_argument("--cache_dofn_specs", action="store_true",
                            help="BundleBasedDirectRunner only, opt-in: inspect each DoFn class "
                                 "once instead of at every bundle and step (patches one "
                                 "function of apache-beam 2.77.0; see README)")
        parser.add_argument("--model_watch_interval_s", default=DEFAULT_WATCH_INTERVAL_S,
                            type=float, help="how often --model_watch looks for a new bundle")
