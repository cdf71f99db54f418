"""Killing a Dask worker in the middle of a batch job, without depending on timing."""
from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from distributed import Client, LocalCluster

from beam_pipeline.batch.writing import part_pattern
from beam_pipeline.files import match_files

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
