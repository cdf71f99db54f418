"""``sentiment-score`` (also ``python -m beam_pipeline``): score Parquet files, or Pub/Sub with
``--streaming``.

Checks inputs, bundle and output location before the pipeline starts (one error line, exit 2),
runs the pipeline on the chosen runner, and prints a summary. Files that cannot be scored and row
groups that cannot be read are errors (exit 2, one line naming the file); with
``--skip_bad_files`` the other files are scored and the summary lists what was skipped::

    sentiment-score --input 'reviews/*.parquet' --output out/scored --model bundle/

Runner names: without ``--runner`` the FnApiRunner (Beam's DirectRunner for batch, which honours
``--direct_running_mode multi_processing --direct_num_workers N``) runs a batch job and the
BundleBasedDirectRunner a ``--streaming`` one;
``--runner DaskRunner`` is short for Beam's Dask runner (with ``--dask_client_address``).
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import signal
import sys
import threading
import time
from typing import Optional, Sequence

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_pipeline.bundle import BundleError
from beam_pipeline.onnx_handler import METRICS_NAMESPACE
from beam_pipeline.options import ScoringOptions
from beam_pipeline.pipeline import (UNREADABLE_ROW_GROUP, BatchJob, build_batch_pipeline,
                                    count_rows, match_files, open_file, part_pattern,
                                    plan_batch_job)
from beam_pipeline.validation import InputError

PROG = "sentiment-score"
DEFAULT_RUNNER = "FnApiRunner"
DEFAULT_STREAMING_RUNNER = "BundleBasedDirectRunner"  # the FnApiRunner reads nothing from Pub/Sub
RUNNER_ALIASES = {"DaskRunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}


def _help() -> str:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Score text in Parquet files (or Pub/Sub with --streaming) with "
        "a model bundle. Any Beam pipeline option (--runner, --direct_num_workers, "
        "--setup_file, --project, ...) is accepted too.")
    from beam_pipeline.streaming import StreamingOptions

    ScoringOptions._add_argparse_args(parser)  # pylint: disable=protected-access
    StreamingOptions._add_argparse_args(  # pylint: disable=protected-access
        parser.add_argument_group("with --streaming (Pub/Sub in and out)"))
    return parser.format_help()


def dead_letter_counts(prefix: str) -> tuple[dict[str, int], dict[str, int]]:
    """Dead-lettered rows by reason, and the rows of each unreadable row group by its ``error``
    line (which names the file), read from the dead-letter files under ``prefix``."""
    reasons: collections.Counter = collections.Counter()
    unreadable: collections.Counter = collections.Counter()
    for path in match_files(part_pattern(prefix)):
        with open_file(path) as handle:
            table = pq.read_table(handle, columns=["reason", "error"])
        for reason, error in zip(table.column("reason").to_pylist(),
                                 table.column("error").to_pylist()):
            reasons[reason] += 1
            if reason == UNREADABLE_ROW_GROUP:
                unreadable[error] += 1
    return dict(sorted(reasons.items())), dict(sorted(unreadable.items()))


def metric_total(result: beam.runners.runner.PipelineResult, name: str) -> Optional[int]:
    """A counter's committed total, or None where the runner reports no metrics (Dask)."""
    try:
        counters = result.metrics().query(
            MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))["counters"]
    except NotImplementedError:
        return None
    return sum(counter.committed or 0 for counter in counters)


def summary(job: BatchJob, result: beam.runners.runner.PipelineResult, seconds: float,
            reasons: dict[str, int], unreadable: dict[str, int]) -> str:
    """The lines printed after a batch run; counts come from the files written (``reasons`` and
    ``unreadable`` from `dead_letter_counts`)."""
    scored = count_rows(job.output_prefix)
    dead = sum(reasons.values())
    read = metric_total(result, "rows_read")
    read_line = (f"{read:,} rows read (Beam metrics)" if read is not None
                 else "rows read: this runner reports no metrics")
    lines = [f"{PROG}: {read_line} from {len(job.files)} file(s) in {seconds:.1f} s",
             f"  scored        {scored:>10,}  -> {part_pattern(job.output_prefix)}",
             f"  dead-lettered {dead:>10,}  -> {part_pattern(job.dead_letter_prefix)}"
             + (f"  ({', '.join(f'{r}: {n:,}' for r, n in reasons.items())})" if reasons else ""),
             f"  throughput    {(scored + dead) / seconds:>10,.1f} records/s (start-up included)"]
    lines += [f"  skipped file  {line}" for line in job.skipped_files]
    lines += [f"  unreadable    {error} ({rows:,} rows dead-lettered)"
              for error, rows in unreadable.items()]
    if read is not None and read != scored + dead:
        lines.append(f"  WARNING: read {read:,} != scored {scored:,} + dead-lettered {dead:,}")
    return "\n".join(lines)


def scored_rows_preview(job: BatchJob, count: int) -> str:
    """The first ``count`` scored rows (id, sentiment, score, start of the text)."""
    lines = []
    for path in match_files(part_pattern(job.output_prefix)):
        with open_file(path) as handle:
            table = pq.read_table(handle, columns=["id", "sentiment", "score", job.text_column])
        for row in table.slice(0, count - len(lines)).to_pylist():
            text = row[job.text_column]
            text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
            text = text if len(text) <= 70 else text[:67] + "..."
            lines.append(f"  {row['id']:<22} {row['sentiment']:<10} {row['score']:.3f}  {text}")
        if len(lines) >= count:
            break
    return "\n".join(lines)


def _run_streaming(options: PipelineOptions) -> int:
    from beam_pipeline.streaming import build_streaming_pipeline

    pipeline = beam.Pipeline(options=options)
    build_streaming_pipeline(pipeline, options)
    print(f"{PROG}: streaming; stop with Ctrl-C", file=sys.stderr)
    result = pipeline.run()
    # Waited for in a helper thread: the DirectRunner's own wait and cancel join its worker
    # thread, which may sit in a Pub/Sub pull for up to 30 s (twice: about a minute). SIGINT and
    # SIGTERM are handled explicitly, so they stop the stream even where a parent made this
    # process ignore SIGINT (as shells do for background jobs).
    outcome: list[BaseException] = []
    done = threading.Event()
    stop_signals: list[str] = []

    def wait() -> None:
        try:
            result.wait_until_finish()
        except BaseException as error:  # pylint: disable=broad-except  (re-raised below)
            outcome.append(error)
        finally:
            done.set()

    def request_stop(signum: int, _frame) -> None:
        stop_signals.append(signal.Signals(signum).name)
        done.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, request_stop)
    threading.Thread(target=wait, name="wait_until_finish", daemon=True).start()
    while not done.wait(timeout=1):
        pass
    if stop_signals:
        print(f"{PROG}: stopped by {stop_signals[0]}; on the DirectRunner, messages already "
              "pulled (acknowledged) but not yet scored are not delivered again", file=sys.stderr)
        threading.Thread(target=result.cancel, name="cancel", daemon=True).start()
        return 0
    if outcome:
        raise outcome[0]
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``sentiment-score``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(_help())
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("beam_pipeline").setLevel(logging.INFO)
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    standard.runner = RUNNER_ALIASES.get(standard.runner, standard.runner) or (
        DEFAULT_STREAMING_RUNNER if standard.streaming else DEFAULT_RUNNER)
    try:
        if standard.streaming:
            return _run_streaming(options)
        job = plan_batch_job(options.view_as(ScoringOptions))
    except (InputError, BundleError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    pipeline = beam.Pipeline(options=options)
    build_batch_pipeline(pipeline, job)
    result = pipeline.run()
    result.wait_until_finish()
    reasons, unreadable = dead_letter_counts(job.dead_letter_prefix)
    print(summary(job, result, time.perf_counter() - start, reasons, unreadable))
    scoring = options.view_as(ScoringOptions)
    if scoring.show_rows > 0:
        print(scored_rows_preview(job, scoring.show_rows))
    if unreadable and not scoring.skip_bad_files:
        print(f"{PROG}: error: unreadable row groups, their rows dead-lettered (pass "
              f"--skip_bad_files to accept): {'; '.join(unreadable)}", file=sys.stderr)
        return 2
    return 0


def console_main() -> None:
    """Console entry point (``sentiment-score``, ``python -m beam_pipeline``): runs `main`, then
    ends the process at once with its status. After a finished job (files written and renamed,
    summary printed) native threads of Beam's runner and ONNX Runtime could abort the
    interpreter's own shutdown ("terminate called without an active exception", exit 134), so
    a successful job could report a crash."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(status)
