"""What a finished batch run prints: counts from the files written (and Beam metrics where the
runner has them), throughput, what was skipped, and optionally the first scored rows."""
from __future__ import annotations

from typing import Optional

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.metrics.metric import MetricsFilter

from beam_pipeline.batch.planning import BatchJob
from beam_pipeline.batch.writing import count_rows, part_pattern
from beam_pipeline.files import match_files, open_file
from beam_pipeline.options import PROG
from beam_pipeline.vocabulary import METRICS_NAMESPACE, ROWS_READ


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
    read = metric_total(result, ROWS_READ)
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
