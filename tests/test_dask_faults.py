"""A Dask worker process killed in the middle of a batch job (issue 6), on a LocalCluster with 2
worker processes under nannies.

What Beam 2.77 on Dask gives: the job completes (exit 0) and the output holds every row exactly
once. The scheduler hands the tasks the killed worker was running, and the results it held, to
the other worker, which computes them again; each chunk's output file is named after the chunk
and appears by rename, so a chunk computed twice overwrites its own file with the same rows, and
a file the killed worker had half written stays under a temporary name that the output glob
(``PREFIX-part-*.parquet``) does not match.

The kill does not depend on timing: once the first output file appears, both workers are stopped
(SIGSTOP); with the cluster frozen, the scheduler says which worker holds tasks and the output
is checked to be unfinished; that worker is killed (SIGKILL) and the other one resumed.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from beam_pipeline.pipeline import match_files, part_pattern
from beam_pipeline.run import main
from test_dask import DUMP_ROWS, every_expected_id, write_sst2_dump
from test_pipeline import comparable, read_parts, score

CHUNK_ROWS = 16  # 135 output files for the 2,100-row dump: the kill lands long before the end


@dataclasses.dataclass(frozen=True)
class WorkerKill:
    """The worker killed, and the job's state when it was: scored files written, tasks the
    scheduler had on that worker."""

    address: str
    pid: int
    files_written: int
    tasks_on_worker: int


def kill_busy_worker_once_output_appears(client: Client, output_prefix: str,
                                         job_done: threading.Event) -> WorkerKill:
    """Waits for the first file under ``output_prefix``, then stops every worker, SIGKILLs one
    the scheduler has tasks on and resumes the others. Tries again (after resuming all) while
    no worker holds a task; raises RuntimeError if ``job_done`` is set first."""
    pids = client.run(os.getpid)  # {worker address: pid}, asked while the workers can answer
    while not job_done.is_set():
        if not match_files(part_pattern(output_prefix)):
            time.sleep(0.01)
            continue
        for pid in pids.values():
            os.kill(pid, signal.SIGSTOP)
        killed = None
        try:
            busy = sorted((address, len(tasks)) for address, tasks in client.processing().items()
                          if tasks and address in pids)
            if busy:
                address, tasks = busy[0]
                os.kill(pids[address], signal.SIGKILL)
                killed = WorkerKill(address, pids[address],
                                    len(match_files(part_pattern(output_prefix))), tasks)
                return killed
        finally:
            for pid in pids.values():
                if killed is None or pid != killed.pid:
                    os.kill(pid, signal.SIGCONT)
        time.sleep(0.01)
    raise RuntimeError("the job ended before a worker holding its tasks could be killed")


def score_on_dask_killing_a_worker(command, output_prefix: str):
    """Runs ``command(scheduler_address)`` (a scoring job on the DaskRunner) against a fresh
    2-worker LocalCluster while `kill_busy_worker_once_output_appears` kills a worker; returns
    (the command's result, the `WorkerKill`, pids of the workers alive afterwards)."""
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client, \
            ThreadPoolExecutor(1) as pool:
        job_done = threading.Event()
        kill = pool.submit(kill_busy_worker_once_output_appears, client, output_prefix, job_done)
        try:
            result = command(cluster.scheduler_address)
        finally:
            job_done.set()
        killed = kill.result()
        return result, killed, set(client.run(os.getpid).values())


@pytest.mark.timeout(400)
def test_a_worker_killed_mid_job_the_job_completes_with_every_row_exactly_once(
        tiny_bundle_dir, shared_data, tmp_path):
    files = write_sst2_dump(tmp_path / "in", shared_data)
    pattern, prefix = tmp_path / "in" / "*.parquet", tmp_path / "dask" / "scored"
    prefix.parent.mkdir()

    def sentiment_score(scheduler_address: str) -> int:
        return main(["--input", str(pattern), "--output", str(prefix),
                     "--model", str(tiny_bundle_dir), "--chunk_rows", str(CHUNK_ROWS),
                     "--runner", "DaskRunner", "--dask_client_address", scheduler_address])

    exit_code, killed, workers_after = score_on_dask_killing_a_worker(sentiment_score,
                                                                      str(prefix))
    direct = score(tiny_bundle_dir, pattern, tmp_path / "direct", "--chunk_rows",
                   str(CHUNK_ROWS))
    scored, dead = read_parts(prefix), read_parts(Path(f"{prefix}-dead-letter"))

    assert exit_code == 0
    # the kill hit a worker holding work, in the middle of the job
    assert killed.tasks_on_worker >= 1
    assert killed.pid not in workers_after
    assert 0 < killed.files_written < len(match_files(part_pattern(str(prefix))))
    # every row exactly once, scored as the DirectRunner scores it
    ids = scored.column("id").to_pylist() + dead.column("id").to_pylist()
    assert len(ids) == DUMP_ROWS == len(set(ids))
    assert set(ids) == every_expected_id(files)
    assert comparable(scored) == comparable(direct.scored)
    assert comparable(dead) == comparable(direct.dead)
