"""The batch pipeline on Beam's DaskRunner against a LocalCluster with 2 worker processes: every
row survives (the DaskRunner drops finish_bundle output, so a design relying on it loses rows)
and the files written equal the DirectRunner's on the same input."""
import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster

from test_pipeline import comparable, expected_id, score

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


@pytest.fixture(scope="module")
def dask_cluster():
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                           dashboard_address=None)
    yield cluster
    cluster.close()


@pytest.mark.timeout(300)
def test_dask_runner_keeps_every_row_and_equals_the_direct_runner(tiny_bundle_dir, shared_data,
                                                                  dask_cluster, tmp_path):
    with open(shared_data / "sst2" / "train.tsv", newline="") as handle:
        sentences = [row["sentence"] for _, row in
                     zip(range(2100), csv.DictReader(handle, delimiter="\t",
                                                     quoting=csv.QUOTE_NONE))]
    for bad in range(0, 2100, 150):
        sentences[bad] = [None, "", "   "][bad % 3]
    files = []
    for number, start in enumerate(range(0, 2100, 700)):
        files.append(tmp_path / "in" / f"part-{number}.parquet")
        files[-1].parent.mkdir(exist_ok=True)
        pq.write_table(pa.table({"text": sentences[start:start + 700],
                                 "row": list(range(start, start + 700))}),
                       files[-1], row_group_size=250)
    pattern = tmp_path / "in" / "*.parquet"

    dask = score(tiny_bundle_dir, pattern, tmp_path / "dask", "--chunk_rows", "64",
                 runner=DASK_RUNNER, dask_client_address=dask_cluster.scheduler_address)
    direct = score(tiny_bundle_dir, pattern, tmp_path / "direct", "--chunk_rows", "64")

    every_id = {expected_id(path, index) for path in files for index in range(700)}
    assert dask.scored.num_rows + dask.dead.num_rows == 2100
    assert set(dask.scored.column("id").to_pylist()) | set(dask.dead.column("id").to_pylist()) \
        == every_id
    assert dask.dead.num_rows == 14
    assert comparable(dask.scored) == comparable(direct.scored)
    assert comparable(dask.dead) == comparable(direct.dead)
