"""What a finished batch run says: ``PREFIX-summary.json`` (the chunks' statistics merged, the
model, the run), the lines printed (with Beam metrics where the runner has them) and optionally
the first scored rows."""
from __future__ import annotations

import datetime
import json
from typing import Any, Optional

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from beam_pipeline.aggregates import ALERT
from beam_pipeline.batch import stats
from beam_pipeline.batch.aggregation import aggregates_prefix, read_aggregates
from beam_pipeline.batch.planning import BatchJob
from beam_pipeline.batch.writing import part_pattern, read_stats
from beam_pipeline.errors import InputError
from beam_pipeline.files import match_files, open_file, write_atomically
from beam_pipeline.model import WINDOWED_MODES, choose_precision
from beam_pipeline.options import PROG
from beam_pipeline.vocabulary import METRICS_NAMESPACE, ROWS_READ, SCORED

SUMMARY_FORMAT = 1


def metric_total(result: beam.runners.runner.PipelineResult, name: str) -> Optional[int]:
    """A counter's committed total, or None where the runner reports no metrics (Dask)."""
    try:
        counters = result.metrics().query(
            MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))["counters"]
    except NotImplementedError:
        return None
    return sum(counter.committed or 0 for counter in counters)


def run_summary(job: BatchJob, options: Any, runner: str, started_at: datetime.datetime,
                seconds: float) -> dict[str, Any]:
    """The figures of a finished run, as written to ``PREFIX-summary.json``: the merged chunk
    statistics (`stats.merge`), the model and the run."""
    figures = stats.merge(read_stats(job.output_prefix), job.labels, SCORED)
    manifest = job.model.manifest
    precision = choose_precision(options.precision,
                                 "cuda" if options.device == "cuda" else "cpu",
                                 manifest["precisions"])
    cut = figures["text_length"].pop("cut")
    windowed = options.long_text in WINDOWED_MODES
    figures["text_length"].update(truncated=0 if windowed else cut, chunked=cut if windowed else 0)
    counts = figures["counts"]
    aggregation = job.aggregation
    aggregates = read_aggregates(job.output_prefix) if aggregation is not None else []
    return {
        "format_version": SUMMARY_FORMAT,
        "run": {"started_at": started_at.isoformat(timespec="seconds"),
                "seconds": round(seconds, 2),
                "records_per_second": round(counts["rows_read"] / seconds, 1) if seconds else None,
                "runner": runner, "input": options.input, "output_prefix": job.output_prefix,
                "compare_to": options.compare_to},
        "model": {"bundle": options.model,
                  "model_version": manifest["precisions"][precision]["sha256"][:16],
                  "precision": precision, "device": options.device,
                  "labels": list(job.labels), "base_model": manifest.get("base_model"),
                  "max_length": job.model.max_length, "long_text": options.long_text,
                  "text_normalization": manifest.get("text_normalization") or [],
                  "languages": manifest.get("languages")},
        **figures,
        "skipped_files": list(job.skipped_files),
        "aggregates": None if aggregation is None else {
            "key_column": aggregation.key_column, "time_column": aggregation.time_column,
            "window_seconds": aggregation.window_seconds,
            "files": part_pattern(aggregates_prefix(job.output_prefix)),
            "keys": len({record["key"] for record in aggregates}),
            "windows": len({record["window_start"] for record in aggregates}),
            "alerts": sum(record["type"] == ALERT for record in aggregates)},
    }


def summary_lines(job: BatchJob, summary: dict[str, Any],
                  result: beam.runners.runner.PipelineResult,
                  unreadable: dict[str, int]) -> str:
    """The lines printed after a batch run (``unreadable`` from `dead_letter_counts`)."""
    counts, seconds = summary["counts"], summary["run"]["seconds"]
    reasons, statuses = counts["dead_letter_reasons"], counts["unscored_statuses"]
    read = metric_total(result, ROWS_READ)
    read_line = (f"{read:,} rows read (Beam metrics)" if read is not None
                 else "rows read: this runner reports no metrics")
    lines = [f"{PROG}: {read_line} from {len(job.files)} file(s) in {seconds:.1f} s",
             f"  scored        {counts['scored']:>10,}  -> {part_pattern(job.output_prefix)}",
             f"  unscored      {counts['unscored']:>10,}  (in the same files, sentiment null)"
             + (f"  ({', '.join(f'{s}: {n:,}' for s, n in statuses.items())})"
                if statuses else ""),
             f"  dead-lettered {counts['dead_lettered']:>10,}  -> "
             f"{part_pattern(job.dead_letter_prefix)}"
             + (f"  ({', '.join(f'{r}: {n:,}' for r, n in reasons.items())})" if reasons else ""),
             f"  throughput    {counts['rows_read'] / seconds:>10,.1f} records/s (start-up "
             "included)"]
    lines += [f"  skipped file  {line}" for line in job.skipped_files]
    lines += [f"  unreadable    {error} ({rows:,} rows dead-lettered)"
              for error, rows in unreadable.items()]
    if summary["aggregates"] is not None:
        lines.append(f"  aggregates    {summary['aggregates']['files']}")
    accounted = counts["scored"] + counts["unscored"] + counts["dead_lettered"]
    if read is not None and read != accounted:
        lines.append(f"  WARNING: read {read:,} != scored {counts['scored']:,} + unscored "
                     f"{counts['unscored']:,} + dead-lettered {counts['dead_lettered']:,}")
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
            score = "  -  " if row["score"] is None else f"{row['score']:.3f}"
            lines.append(f"  {row['id']:<22} {row['sentiment'] or 'unscored':<10} {score}  {text}")
        if len(lines) >= count:
            break
    return "\n".join(lines)


def summary_path(prefix: str) -> str:
    """Where a run's summary is written: ``PREFIX-summary.json``."""
    return f"{prefix}-summary.json"


def report_path(prefix: str) -> str:
    """Where a run's report is written: ``PREFIX-report.html``."""
    return f"{prefix}-report.html"


def write_summary(prefix: str, summary: dict[str, Any]) -> str:
    """Writes ``PREFIX-summary.json``; returns its path."""
    data = json.dumps(summary, indent=2).encode("utf-8")
    return write_atomically(summary_path(prefix), lambda handle: handle.write(data))


def read_summary(prefix: str) -> dict[str, Any]:
    """The summary of an earlier run (raises `InputError` when there is none)."""
    path = summary_path(prefix)
    if not FileSystems.exists(path):
        raise InputError(f"--compare_to {prefix}: {path} not found; give the --output prefix of "
                         "an earlier sentiment-score run")
    with open_file(path) as handle:
        return json.loads(handle.read())


def write_report(prefix: str, summary: dict[str, Any],
                 compare_to: Optional[str] = None) -> str:
    """Writes ``PREFIX-report.html`` for a run (and what changed since the run at
    ``compare_to``); returns its path."""
    from beam_pipeline.reports.batch import render_batch_report

    aggregates = read_aggregates(prefix) if summary["aggregates"] is not None else None
    previous = previous_aggregates = None
    if compare_to:
        previous = read_summary(compare_to)
        previous_aggregates = read_aggregates(compare_to) if previous.get("aggregates") else None
    page = render_batch_report(summary, aggregates, previous,
                               previous_aggregates=previous_aggregates).encode("utf-8")
    return write_atomically(report_path(prefix), lambda handle: handle.write(page))
