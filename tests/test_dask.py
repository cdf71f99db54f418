"""The batch pipeline on Beam's DaskRunner against a LocalCluster with 2 worker processes: every
row survives (the DaskRunner drops finish_bundle output, so a design relying on it loses rows),
the files written equal the DirectRunner's on the same input, and both workers score a one-file
dump (Beam's Reshuffle does nothing on Dask: each row group must be its own partition)."""

import pytest
from dask.utils import key_split
from distributed import Client, LocalCluster, get_task_stream

from testkit.dumps import FILE_ROWS, write_sst2_dump
from testkit.outputs import comparable, every_expected_id, score

# Dask clusters of worker processes
pytestmark = pytest.mark.integration

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


@pytest.fixture(scope="module")
def dask_cluster():
    """2 worker processes, one thread each; pass ``--dask_client_address`` as a flag (Beam
    ignores a ``dask_client_address=`` keyword: the option's dest is ``address``)."""
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                           dashboard_address=None)
    yield cluster
    cluster.close()


@pytest.mark.timeout(300)
def test_dask_runner_keeps_every_row_and_equals_the_direct_runner(tiny_bundle_dir, shared_data,
                                                                  dask_cluster, tmp_path):
    files = write_sst2_dump(tmp_path / "in", shared_data)
    pattern = tmp_path / "in" / "*.parquet"

    dask = score(tiny_bundle_dir, pattern, tmp_path / "dask", "--chunk_rows", "64",
                 "--dask_client_address", dask_cluster.scheduler_address, runner=DASK_RUNNER)
    direct = score(tiny_bundle_dir, pattern, tmp_path / "direct", "--chunk_rows", "64")

    assert dask.scored.num_rows + dask.dead.num_rows == 2100
    assert set(dask.scored.column("id").to_pylist()) | set(dask.dead.column("id").to_pylist()) \
        == every_expected_id(files)
    assert dask.dead.num_rows == 14
    assert comparable(dask.scored) == comparable(direct.scored)
    assert comparable(dask.dead) == comparable(direct.dead)


@pytest.mark.timeout(300)
def test_dask_runner_shares_the_row_groups_of_one_file_between_both_workers(
        tiny_bundle_dir, shared_data, dask_cluster, tmp_path):
    one_file = write_sst2_dump(tmp_path / "in", shared_data)[0]  # 3 row groups
    with Client(dask_cluster) as client, get_task_stream(client) as task_stream:
        run = score(tiny_bundle_dir, one_file, tmp_path / "out", "--chunk_rows", "64",
                    "--dask_client_address", dask_cluster.scheduler_address, runner=DASK_RUNNER)

    # a Dask partition of Create (fused with the steps after it) runs as one "from_sequence" task
    reading = [task for task in task_stream.data
               if key_split(task["key"]).startswith("from_sequence")]
    assert len(reading) == 3
    assert len({task["worker"] for task in reading}) == 2
    assert run.scored.num_rows + run.dead.num_rows == FILE_ROWS
