"""Batch scoring: Parquet files in, scored Parquet and dead-letter Parquet out, on any runner
(the DirectRunner, Beam's DaskRunner, Dataflow)::

    Create(row groups, listed from the footers when the job is planned) -> Reshuffle
      -> ParDo(ReadChunks): a row group read in chunks of --chunk_rows rows, each row validated
      -> RunInference(ChunkModelHandler(...).with_no_batching()): a chunk is one batch
      -> ParDo(ToChunkRecords): scored records, and dead letters (validation and inference)
      |-> FlatMap(scored_records) ------> ParDo(WriteParquetFiles) --.
      |-> FlatMap(dead_letter_records) -> ParDo(WriteParquetFiles) --+
      |-> FlatMap(chunk_statistics) ----> ParDo(WriteStatsFiles) ----+-> Flatten(paths written)
      '-> (--key_column) aggregates and alerts, see `aggregation` ----'

Every step emits from ``process``, no step uses tagged outputs, and the pipeline ends in one
step: what the DaskRunner needs to keep every row (docs/design.md, "Batch pipeline").
Counts: ``rows_read`` = ``rows_scored`` + ``rows_unscored_<status>`` + the
``dead_lettered_<reason>`` counters, and each chunk's statistics file holds the same counts
(`stats`), which is how a runner without metrics (Dask) is summarised.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from beam_pipeline.aggregates import SentimentAggregateFn, aggregates_schema
from beam_pipeline.batch.aggregation import (
    aggregate_and_alert,
    aggregates_prefix,
    as_one_file,
    keyed_for_aggregation,
)
from beam_pipeline.batch.planning import BatchJob, list_row_groups
from beam_pipeline.batch.reading import ReadChunks
from beam_pipeline.batch.scoring import (
    ChunkModelHandler,
    ToChunkRecords,
    as_inference_batch,
    chunk_statistics,
    dead_letter_records,
    scored_records,
)
from beam_pipeline.batch.writing import WriteParquetFiles, WriteStatsFiles
from beam_pipeline.records import dead_letter_schema, scored_schema


def one_row_group_per_dask_partition(pipeline: beam.Pipeline) -> None:
    """On the DaskRunner, makes each row group its own Dask partition unless
    ``--dask_npartitions`` or ``--dask_partition_size`` is given. Beam's Reshuffle does nothing
    there, so the partitions of ``Create`` are the job's only parallelism, and its default (128
    elements a partition) puts a dump's row groups in one partition, scored by one worker."""
    if not type(pipeline.runner).__module__.startswith("apache_beam.runners.dask"):
        return
    from apache_beam.runners.dask.dask_runner import DaskOptions

    dask_options = pipeline.options.view_as(DaskOptions)
    if dask_options.npartitions is None and dask_options.partition_size is None:
        dask_options.partition_size = 1


def build_batch_pipeline(pipeline: beam.Pipeline, job: BatchJob) -> beam.PCollection:
    """Adds the batch scoring steps for ``job`` (see `plan_batch_job`) to ``pipeline``; returns
    the paths of all files written. Apply nothing after it: the DaskRunner computes only the
    last step added and what it depends on."""
    one_row_group_per_dask_partition(pipeline)
    records = (pipeline
               | "RowGroups" >> beam.Create([group for path in job.files
                                            for group in list_row_groups(path)])
               | "SpreadRowGroups" >> beam.Reshuffle()
               | "ReadAndValidate" >> beam.ParDo(ReadChunks(job))
               | "InferenceBatches" >> beam.Map(as_inference_batch)
               | "Score" >> RunInference(ChunkModelHandler(job.handler).with_no_batching())
               | "ChunkRecords" >> beam.ParDo(ToChunkRecords(job.labels)))
    scored_files = (records
                    | "ScoredRecords" >> beam.FlatMap(scored_records)
                    | "WriteScored" >> beam.ParDo(WriteParquetFiles(
                        job.output_prefix,
                        scored_schema(job.input_schema, job.labels, job.id_column))))
    dead_letter_files = (records
                         | "DeadLetters" >> beam.FlatMap(dead_letter_records)
                         | "WriteDeadLetters" >> beam.ParDo(WriteParquetFiles(
                             job.dead_letter_prefix,
                             dead_letter_schema(job.input_schema, job.id_column))))
    stats_files = (records
                   | "Statistics" >> beam.FlatMap(chunk_statistics)
                   | "WriteStatistics" >> beam.ParDo(WriteStatsFiles(job.output_prefix)))
    written = [scored_files, dead_letter_files, stats_files]
    if job.aggregation is not None:
        written.append(records
                       | "KeyAndWindow" >> beam.FlatMap(keyed_for_aggregation, job.aggregation)
                       | "Aggregate" >> beam.CombinePerKey(
                           SentimentAggregateFn(job.aggregation.rule))
                       | "AggregatesAndAlerts" >> beam.FlatMap(aggregate_and_alert,
                                                              job.aggregation)
                       | "OneFile" >> beam.Map(lambda record: (None, record))
                       | "AllAggregates" >> beam.GroupByKey()
                       | "AggregatesFile" >> beam.Map(as_one_file)
                       | "WriteAggregates" >> beam.ParDo(WriteParquetFiles(
                           aggregates_prefix(job.output_prefix), aggregates_schema(job.labels))))
    return written | "FilesWritten" >> beam.Flatten()
