"""Reliability cases of the Dask area: a worker process killed in the middle of a batch job.

The job is the real command (``sentiment-score --runner DaskRunner``, a subprocess) against a
2-worker LocalCluster; the dump, the kill and the cluster are the tests' (`testkit.dumps`,
`testkit.dask_faults`: see its docstring for how the kill is made independent of timing).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from beam_pipeline.batch.writing import part_pattern
from beam_pipeline.files import match_files
from benchmarks.benchlib import SHARED_DATA
from testkit.dask_faults import CHUNK_ROWS, score_on_dask_killing_a_worker
from testkit.dumps import DUMP_ROWS, write_sst2_dump
from testkit.outputs import every_expected_id, read_parts

COMMAND = Path(sys.executable).parent / "sentiment-score"


def worker_killed_mid_job(workdir: Path, bundle: str) -> dict:
    """SIGKILL of the worker holding tasks once the first output file is written."""
    files = write_sst2_dump(workdir / "in", SHARED_DATA)
    prefix = workdir / "out" / "scored"
    prefix.parent.mkdir()
    args = ["--input", str(workdir / "in" / "*.parquet"), "--output", str(prefix),
            "--model", bundle, "--chunk_rows", str(CHUNK_ROWS), "--runner", "DaskRunner",
            "--dask_client_address"]

    def sentiment_score(scheduler_address: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(COMMAND), *args, scheduler_address], capture_output=True,
                              text=True, check=False)

    finished, killed, _ = score_on_dask_killing_a_worker(sentiment_score, str(prefix))
    scored, dead = read_parts(prefix), read_parts(Path(f"{prefix}-dead-letter"))
    ids = (scored.column("id").to_pylist() if scored else []) + \
        (dead.column("id").to_pylist() if dead else [])
    exactly_once = len(ids) == len(set(ids)) and set(ids) == every_expected_id(files)
    leftovers = len(list(prefix.parent.glob("*.tmp-*")))
    error = finished.stderr.strip().splitlines()[-1:] if finished.returncode else []
    once = "exactly once" if exactly_once else "NOT exactly once"
    outcome = (f"exit {finished.returncode}{': ' + error[0] if error else ''}; worker killed "
               f"(SIGKILL) holding {killed.tasks_on_worker} task(s) after {killed.files_written} "
               f"of {len(match_files(part_pattern(str(prefix))))} scored files; the scheduler "
               f"recomputed its tasks on the other worker; every row {once}; {leftovers} "
               "temporary file(s) of the killed worker left (not matched by the output glob)")
    return {"area": "dask", "case": "worker killed mid-job",
            "input": f"{DUMP_ROWS:,} SST-2 rows (14 empty/null), 3 files, --chunk_rows "
                     f"{CHUNK_ROWS}; LocalCluster 2 worker processes (nannies)",
            "command": "sentiment-score --input in/*.parquet --output out/scored --model BUNDLE "
                       f"--chunk_rows {CHUNK_ROWS} --runner DaskRunner --dask_client_address "
                       "tcp://127.0.0.1:PORT",
            "rows_in": DUMP_ROWS, "scored": scored.num_rows if scored else 0,
            "dead_lettered": dead.num_rows if dead else 0, "outcome": outcome,
            "every_row_accounted": finished.returncode == 0 and exactly_once
            and len(ids) == DUMP_ROWS}


def run_cases(workdir: Path, bundle: str) -> list[dict]:
    """Runs each hostile case of this area through the real command; one dict per case."""
    return [worker_killed_mid_job(workdir, bundle)]
