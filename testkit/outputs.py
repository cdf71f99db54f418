"""Reading what a batch run wrote, and running the batch pipeline as ``sentiment-score`` would."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.batch.pipeline import build_batch_pipeline
from beam_pipeline.batch.planning import plan_batch_job
from beam_pipeline.options import ScoringOptions
from beam_pipeline.vocabulary import METRICS_NAMESPACE
from testkit.dumps import FILE_ROWS


@dataclasses.dataclass
class ScoringRun:
    scored: pa.Table
    dead: pa.Table
    result: beam.runners.runner.PipelineResult


def read_parts(prefix: Path) -> pa.Table:
    files = sorted(prefix.parent.glob(f"{prefix.name}-part-*.parquet"))
    return pa.concat_tables(pq.read_table(f) for f in files) if files else None


def score(bundle_dir, input_path, output_dir, *flags, runner="FnApiRunner", **beam_options):
    """Runs the batch pipeline as sentiment-score would, returns what it wrote."""
    options = PipelineOptions(flags=["--input", str(input_path), "--output",
                                     str(output_dir / "scored"), "--model", str(bundle_dir),
                                     *flags], runner=runner, **beam_options)
    job = plan_batch_job(options.view_as(ScoringOptions))
    pipeline = beam.Pipeline(options=options)
    build_batch_pipeline(pipeline, job)
    result = pipeline.run()
    result.wait_until_finish()
    return ScoringRun(read_parts(output_dir / "scored"),
                      read_parts(output_dir / "scored-dead-letter"), result)


def counters(result) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    totals = {}
    for counter in query["counters"]:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + counter.committed
    return totals


def expected_id(path: Path, row: int) -> str:
    return hashlib.sha256(f"{path}#{row}".encode()).hexdigest()[:20]


def by_id(table: pa.Table) -> dict:
    return {row["id"]: row for row in table.to_pylist()}


def comparable(table: pa.Table) -> list[dict]:
    """Rows sorted by id, without the time they were scored."""
    rows = [{k: v for k, v in row.items() if k != "scored_at"} for row in table.to_pylist()]
    return sorted(rows, key=lambda row: row["id"])


def every_expected_id(files: list[Path]) -> set[str]:
    """The stable id of every row of ``write_sst2_dump``'s files."""
    return {expected_id(path, index) for path in files for index in range(FILE_ROWS)}
