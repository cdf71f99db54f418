"""Command-line options of ``sentiment-score`` as a Beam `PipelineOptions` subclass.

Because they are pipeline options, every Beam flag (``--runner``, ``--direct_num_workers``,
``--direct_running_mode``, ``--setup_file``, ``--project``, ``--region``, ``--temp_location``,
``--sdk_container_image``, ...) is accepted beside them. The streaming pipeline reads the
model flags from here too and adds only its own (`streaming.options.StreamingOptions`): Beam
registers the flags of all `PipelineOptions` subclasses in one parser, so a flag defined twice
is an error.
"""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.model import DEVICES, LONG_TEXT_MODES, PRECISION_CHOICES, WINDOW_WEIGHTINGS

PROG = "sentiment-score"
DEFAULT_CHUNK_ROWS = 4096


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"expected a positive integer, got {value}")
    return number


class ScoringOptions(PipelineOptions):
    """Flags of the scoring job (batch and streaming share the model flags)."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--input", help="Parquet file or glob (local path or gs://...)")
        parser.add_argument("--output", help="prefix of the scored Parquet files "
                            "(PREFIX-part-<chunk>.parquet)")
        parser.add_argument("--model", help="model bundle folder written by sentiment-export")
        parser.add_argument("--text_column", default="text", help="column holding the text")
        parser.add_argument("--id_column", default=None,
                            help="column holding each row's id (default: hash of file and row)")
        parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                            help="model file to score with; auto: fp16 on cuda, int8 on cpu, "
                                 "else fp32")
        parser.add_argument("--device", default="auto", choices=DEVICES,
                            help="auto/cuda use the GPU when one works, else CPU (logged)")
        parser.add_argument("--max_batch_size", default=64, type=_positive_int,
                            help="rows per ONNX Runtime call")
        parser.add_argument("--max_length", default=None, type=_positive_int,
                            help="tokens per row or window (default: the bundle's max_length)")
        parser.add_argument("--long_text", default="sentences", choices=LONG_TEXT_MODES,
                            help="texts longer than max_length tokens: sentences (each sentence "
                                 "scored, combined by --window_weighting), truncate (first "
                                 "tokens), head_tail (first quarter and last three quarters), "
                                 "chunk (overlapping windows, combined by --window_weighting)")
        parser.add_argument("--window_weighting", default="most_confident",
                            choices=WINDOW_WEIGHTINGS,
                            help="with --long_text sentences or chunk: the most confident "
                                 "window's probabilities, or their mean weighted by length, "
                                 "confidence, or length with the last window counted twice")
        parser.add_argument("--max_chars", default=None, type=_positive_int,
                            help="texts are cut to this many characters before tokenisation "
                                 "(default: 50 x max_length)")
        parser.add_argument("--dead_letter", default=None,
                            help="prefix of the dead-letter Parquet files "
                                 "(default: OUTPUT-dead-letter)")
        parser.add_argument("--skip_bad_files", action="store_true",
                            help="score the other files when some cannot be read (unreadable, "
                                 "a column missing, another schema) or hold unreadable row "
                                 "groups; the summary lists them (default: exit 2)")
        parser.add_argument("--chunk_rows", default=DEFAULT_CHUNK_ROWS, type=_positive_int,
                            help="rows read, scored and written together; one output file each")
        parser.add_argument("--show_rows", default=0, type=int,
                            help="after a batch run, print this many scored rows")
        parser.add_argument("--key_column", default=None,
                            help="batch: aggregate per value of this column into "
                                 "OUTPUT-aggregates-*.parquet (with alerts)")
        parser.add_argument("--time_column", default=None,
                            help="batch: with --key_column, also per window of this time column "
                                 "(timestamps or RFC 3339 strings)")
        parser.add_argument("--window_seconds", default=None, type=float,
                            help="length of the aggregate windows (event time); default 60 for "
                                 "--streaming, 86400 (a day) for --time_column")
        parser.add_argument("--negative_label", default=None,
                            help="label whose share raises alerts (default: the bundle's "
                                 "first label)")
        parser.add_argument("--alert_negative_share", default=0.5, type=float,
                            help="alert when a window's negative share (over distinct posts) "
                                 "exceeds this")
        parser.add_argument("--alert_min_posts", default=20, type=int,
                            help="... and it holds at least this many distinct posts")
        parser.add_argument("--no_report", action="store_true",
                            help="batch: write OUTPUT-summary.json but not OUTPUT-report.html")
        parser.add_argument("--compare_to", default=None,
                            help="batch: output prefix of an earlier run; the report shows what "
                                 "changed since")
        parser.add_argument("--ort_threads", default=0, type=int,
                            help="ONNX Runtime intra-op threads per worker (0: its default)")
