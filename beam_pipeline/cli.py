"""``sentiment-score`` (also ``python -m beam_pipeline``): parse the flags, plan the job, build
the pipeline, run it::

    sentiment-score --input 'reviews/*.parquet' --output out/scored --model bundle/
    sentiment-score --streaming --input_subscription projects/P/subscriptions/S ...

Every refusal before the job starts is one error line and exit status 2. Runners: without
``--runner``, the FnApiRunner for batch (it honours ``--direct_running_mode multi_processing
--direct_num_workers N``) and the BundleBasedDirectRunner for ``--streaming`` (the only local
runner that reads Pub/Sub); ``--runner DaskRunner`` is short for Beam's Dask runner.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_pipeline.batch.pipeline import build_batch_pipeline
from beam_pipeline.batch.planning import plan_batch_job
from beam_pipeline.batch.summary import (
    read_summary,
    run_summary,
    scored_rows_preview,
    summary_lines,
    write_report,
    write_summary,
)
from beam_pipeline.batch.writing import dead_letter_counts
from beam_pipeline.bundle import BundleError
from beam_pipeline.errors import InputError
from beam_pipeline.options import PROG, ScoringOptions
from beam_pipeline.streaming.options import StreamingOptions

DEFAULT_RUNNER = "FnApiRunner"
DEFAULT_STREAMING_RUNNER = "BundleBasedDirectRunner"  # the FnApiRunner reads nothing from Pub/Sub
RUNNER_ALIASES = {"DaskRunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}
EXIT_REFUSED = 2


def _help() -> str:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Score text in Parquet files (or Pub/Sub with --streaming) with "
        "a model bundle. Any Beam pipeline option (--runner, --direct_num_workers, "
        "--setup_file, --project, ...) is accepted too.")
    ScoringOptions._add_argparse_args(parser)  # pylint: disable=protected-access
    StreamingOptions._add_argparse_args(  # pylint: disable=protected-access
        parser.add_argument_group("with --streaming (Pub/Sub in and out)"))
    return parser.format_help()


def parse_options(argv: Sequence[str]) -> PipelineOptions:
    """Beam pipeline options from the command line, with this command's runner defaults."""
    options = PipelineOptions(list(argv))
    standard = options.view_as(StandardOptions)
    standard.runner = RUNNER_ALIASES.get(standard.runner, standard.runner) or (
        DEFAULT_STREAMING_RUNNER if standard.streaming else DEFAULT_RUNNER)
    return options


def run_batch(options: PipelineOptions) -> int:
    """Plans, builds and runs a batch job; writes its summary (and report); prints it; returns
    the exit status."""
    scoring = options.view_as(ScoringOptions)
    job = plan_batch_job(scoring)
    if scoring.compare_to:
        read_summary(scoring.compare_to)  # refused before the run when there is none
    started_at, start = datetime.datetime.now(datetime.UTC), time.perf_counter()
    pipeline = beam.Pipeline(options=options)
    build_batch_pipeline(pipeline, job)
    result = pipeline.run()
    result.wait_until_finish()
    summary = run_summary(job, scoring, options.view_as(StandardOptions).runner, started_at,
                          time.perf_counter() - start)
    _, unreadable = dead_letter_counts(job.dead_letter_prefix)
    print(summary_lines(job, summary, result, unreadable))
    print(f"  summary       {write_summary(job.output_prefix, summary)}")
    if not scoring.no_report:
        print(f"  report        {write_report(job.output_prefix, summary, scoring.compare_to)}")
    if scoring.show_rows > 0:
        print(scored_rows_preview(job, scoring.show_rows))
    if unreadable and not scoring.skip_bad_files:
        print(f"{PROG}: error: unreadable row groups, their rows dead-lettered (pass "
              f"--skip_bad_files to accept): {'; '.join(unreadable)}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


def run_streaming(options: PipelineOptions) -> int:
    """Plans a stream, then runs it until it is stopped."""
    from beam_pipeline.streaming.pipeline import plan_streaming_job
    from beam_pipeline.streaming.runner import run_stream

    return run_stream(options, plan_streaming_job(options))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``sentiment-score``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(_help())
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("beam_pipeline").setLevel(logging.INFO)
    options = parse_options(argv)
    try:
        if options.view_as(StandardOptions).streaming:
            return run_streaming(options)
        return run_batch(options)
    except (InputError, BundleError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_REFUSED


def console_main() -> None:
    """Console entry point (``sentiment-score``, ``python -m beam_pipeline``): runs `main`, then
    ends the process at once with its status (docs/design.md, "Exit after a finished job")."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(status)
