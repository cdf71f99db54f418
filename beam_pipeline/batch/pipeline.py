"""Batch scoring: Parquet files in, scored Parquet and dead-letter Parquet out, on any runner
(the DirectRunner, Beam's DaskRunner, Dataflow)::

    Create(row groups, listed from the footers when the job is planned) -> Reshuffle
      -> ParDo(ReadChunks): a row group read in chunks of --chunk_rows rows, each row validated
      -> RunInference(ChunkModelHandler(...).with_no_batching()): a chunk is one batch
      -> ParDo(ToChunkRecords): scored records, and dead letters (validation and inference)
      |-> FlatMap(scored_records) ------> ParDo(WriteParquetFiles) --.
      '-> FlatMap(dead_letter_records) -> ParDo(WriteParquetFiles) --+-> Flatten(paths written)

Every step emits from ``process``, no step uses tagged outputs, and the pipeline ends in one
step: what the DaskRunner needs to keep every row (docs/design.md, "Batch pipeline").
Counts: ``rows_read`` = ``rows_scored`` + the ``dead_lettered_<reason>`` counters, and the
files written hold the same counts (`writing.count_rows`), which is how a runner without
metrics (Dask) is summarised.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from beam_pipeline.batch.planning import BatchJob, list_row_groups
from beam_pipeline.batch.reading import ReadChunks
from beam_pipeline.batch.scoring import (
    ChunkModelHandler,
    ToChunkRecords,
    as_inference_batch,
    dead_letter_records,
    scored_records,
)
from beam_pipeline.batch.writing import WriteParquetFiles
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
    return (scored_files, dead_letter_files) | "FilesWritten" >> beam.Flatten()
