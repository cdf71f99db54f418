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

from pathlib import Path

import pytest

from beam_pipeline.batch.writing import part_pattern
from beam_pipeline.cli import main
from beam_pipeline.files import match_files
from testkit.dask_faults import CHUNK_ROWS, score_on_dask_killing_a_worker
from testkit.dumps import DUMP_ROWS, write_sst2_dump
from testkit.outputs import comparable, every_expected_id, read_parts, score

# Dask clusters of worker processes, one killed
pytestmark = pytest.mark.integration


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
