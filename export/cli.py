"""``sentiment-export``: a fine-tuned classifier folder -> an ONNX model bundle.

Progress goes to stderr, one line per step; a bad folder, option or parity failure ends with one
``sentiment-export: error: ...`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from beam_pipeline.bundle import PRECISIONS
from export.exporter import OPTIMIZATION_LEVELS, ExportError, export_bundle


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of sentiment-export."""
    parser = argparse.ArgumentParser(
        prog="sentiment-export", description="Export a fine-tuned sequence classifier to an ONNX "
        "model bundle (Optimum export, ONNX Runtime optimisation/quantisation, parity check).")
    parser.add_argument("--model_dir", required=True,
                        help="folder written by sentiment-train or save_pretrained (safetensors)")
    parser.add_argument("--output_dir", required=True,
                        help="bundle folder to write (local path or a Beam file system, e.g. gs://)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="comma-separated subset of %(default)s")
    parser.add_argument("--optimization_level", default="O2", choices=OPTIMIZATION_LEVELS,
                        help="ONNX Runtime graph optimisation level for fp32/fp16 "
                             "(default %(default)s)")
    parser.add_argument("--eval_dataset",
                        help="labelled source (hub id, csv/tsv/parquet/jsonl file or folder) whose "
                        "validation rows the parity check uses; default: 256 built-in sentences")
    parser.add_argument("--eval_text_column", default="text",
                        help="text column of --eval_dataset (default %(default)s; 'sentence' is "
                        "picked when 'text' is absent)")
    parser.add_argument("--eval_label_column", default="label",
                        help="label column of --eval_dataset (default %(default)s)")
    parser.add_argument("--max_length", type=int, default=128,
                        help="tokens per text; longer texts are truncated (default %(default)s)")
    parser.add_argument("--quantification_dataset",
                        help="labelled posts of the stream (e.g. sentiment-labels output; not used "
                        "for training): bundle.json stores the model's confusion matrix on them, "
                        "and aggregates report corrected shares with 90%% intervals")
    parser.add_argument("--allow_parity_failure", action="store_true",
                        help="keep a precision that misses its parity bound, with a warning")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the export; returns the exit status (0 ok, 2 for a user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    precisions = [name.strip() for name in args.precisions.split(",") if name.strip()]
    warnings.filterwarnings("ignore", module=r"torch\..*|transformers\..*|optimum\..*")
    try:
        export_bundle(args.model_dir, args.output_dir, precisions=precisions,
                      optimization_level=args.optimization_level, eval_dataset=args.eval_dataset,
                      max_length=args.max_length, allow_parity_failure=args.allow_parity_failure,
                      eval_text_column=args.eval_text_column,
                      eval_label_column=args.eval_label_column,
                      quantification_dataset=args.quantification_dataset)
    except ExportError as error:
        print(f"sentiment-export: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
