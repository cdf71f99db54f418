"""Runs a planned stream until it is stopped: SIGINT and SIGTERM stop it at once, without
waiting for the Pub/Sub pull in flight (docs/design.md, "Stopping a stream")."""
from __future__ import annotations

import signal
import sys
import threading

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.options import PROG
from beam_pipeline.streaming import direct_runner_patch
from beam_pipeline.streaming.pipeline import StreamingJob, build_streaming_pipeline


def run_stream(options: PipelineOptions, job: StreamingJob) -> int:
    """Builds and runs the stream of ``job`` until SIGINT or SIGTERM (exit status 0) or until the
    runner stops it (its error is raised)."""
    if job.streaming.cache_dofn_specs:
        direct_runner_patch.install()
        print(f"{PROG}: --cache_dofn_specs: the DirectRunner inspects each DoFn class once "
              f"(apache-beam {direct_runner_patch.PINNED_BEAM_VERSION} patched in this process)",
              file=sys.stderr)
    pipeline = beam.Pipeline(options=options)
    build_streaming_pipeline(pipeline, job)
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
