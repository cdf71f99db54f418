"""Planning a batch job: flags, input files, bundle and output location checked before any data
moves (one error line, exit 2); the row groups to read are listed from the Parquet footers."""
from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq

from beam_pipeline.aggregates import AlertRule
from beam_pipeline.batch.writing import part_pattern
from beam_pipeline.errors import InputError, first_line
from beam_pipeline.files import match_files, open_file
from beam_pipeline.onnx_handler import OnnxSentimentModelHandler
from beam_pipeline.options import ScoringOptions
from beam_pipeline.planning import ModelPlan, plan_alert_rule, plan_model
from beam_pipeline.records import dead_letter_schema, scored_schema
from beam_pipeline.validation import check_columns

DEFAULT_WINDOW_SECONDS = 86400.0  # a day: nightly dumps


@dataclasses.dataclass(frozen=True)
class BatchJob:
    """Everything checked before a batch run starts."""

    files: tuple[str, ...]
    input_schema: pa.Schema
    labels: tuple[str, ...]
    output_prefix: str
    dead_letter_prefix: str
    text_column: str
    id_column: Optional[str]
    max_chars: int
    chunk_rows: int
    handler: OnnxSentimentModelHandler
    model: ModelPlan
    aggregation: Optional[Aggregation] = None  # with --key_column
    skipped_files: tuple[str, ...] = ()  # with --skip_bad_files: one line per file, naming it


@dataclasses.dataclass(frozen=True)
class Aggregation:
    """Aggregates of a batch run: per value of ``key_column``, and per window of
    ``window_seconds`` of ``time_column`` when one is given."""

    key_column: str
    time_column: Optional[str]
    window_seconds: Optional[float]
    rule: AlertRule


def describe_schema(schema: pa.Schema) -> str:
    """A schema on one line: ``name: type, ...``."""
    return ", ".join(f"{field.name}: {field.type}" for field in schema)


def check_input_files(files: Sequence[str], columns: dict[str, Optional[str]]
                      ) -> tuple[Optional[pa.Schema], dict[str, str]]:
    """The input schema, and for each file that cannot be scored one line naming it and why:
    not a readable Parquet file (empty, truncated, not Parquet), a required column (``columns``:
    role -> name, see `validation.check_columns`) missing, or a
    schema other than the input schema. The input schema is the one most files share (ties: the
    first file's, in sorted order); None when no file is readable with the required columns."""
    schemas, problems = {}, {}
    for path in files:
        try:
            with open_file(path) as handle:
                schemas[path] = pq.read_schema(handle).remove_metadata()
            check_columns(path, schemas[path].names, columns)
        except (pa.ArrowException, OSError) as error:
            problems[path] = f"{path}: not a readable Parquet file ({first_line(error)})"
            schemas.pop(path, None)
        except InputError as error:
            problems[path] = str(error)
            del schemas[path]
    if not schemas:
        return None, problems
    files_per_schema = collections.Counter(schemas.values())
    reference = next(path for path, schema in schemas.items()
                     if files_per_schema[schema] == max(files_per_schema.values()))
    for path, schema in schemas.items():
        if schema != schemas[reference]:
            problems[path] = (f"{path}: its schema ({describe_schema(schema)}) differs from "
                              f"{reference}'s ({describe_schema(schemas[reference])})")
    return schemas[reference], dict(sorted(problems.items()))


def plan_batch_job(options: ScoringOptions) -> BatchJob:
    """Checks flags, input files, bundle and output location; raises `InputError` or
    `BundleError` with one clear line before any data moves. A file that cannot be scored (see
    `check_input_files`) is an error, or with ``--skip_bad_files`` left out and listed in
    `BatchJob.skipped_files`; a glob matching no file is always an error."""
    missing = [f"--{name}" for name in ("input", "output", "model")
               if not getattr(options, name)]
    if missing:
        raise InputError(f"missing required flags: {' '.join(missing)}")
    files = match_files(options.input)
    if not files:
        raise InputError(f"--input {options.input}: no file matches")
    if options.time_column and not options.key_column:
        raise InputError("--time_column needs --key_column (aggregates are per key and window)")
    if options.window_seconds is not None and options.window_seconds <= 0:
        raise InputError("--window_seconds must be positive")
    columns = {"text": options.text_column, "id": options.id_column,
               "key": options.key_column, "time": options.time_column}
    input_schema, problems = check_input_files(files, columns)
    if problems and not options.skip_bad_files:
        raise InputError(next(iter(problems.values())))
    if input_schema is None:
        raise InputError(f"--input {options.input}: no file can be scored: "
                         + "; ".join(problems.values()))
    model = plan_model(options)
    dead_letter_prefix = options.dead_letter or f"{options.output}-dead-letter"
    for prefix in (options.output, dead_letter_prefix):
        if match_files(part_pattern(prefix)):
            raise InputError(f"{part_pattern(prefix)}: output of an earlier run is there; "
                             "choose another prefix or delete those files")
    scored_schema(input_schema, model.labels, options.id_column)  # refuses clashing names
    dead_letter_schema(input_schema, options.id_column)
    aggregation = None
    if options.key_column:
        aggregation = Aggregation(
            key_column=options.key_column, time_column=options.time_column,
            window_seconds=(options.window_seconds or DEFAULT_WINDOW_SECONDS
                            if options.time_column else None),
            rule=plan_alert_rule(options, model))
    return BatchJob(files=tuple(path for path in files if path not in problems),
                    input_schema=input_schema, labels=model.labels,
                    output_prefix=options.output, dead_letter_prefix=dead_letter_prefix,
                    text_column=options.text_column, id_column=options.id_column,
                    max_chars=model.max_chars, chunk_rows=options.chunk_rows,
                    handler=OnnxSentimentModelHandler.from_plan(options, model), model=model,
                    aggregation=aggregation, skipped_files=tuple(problems.values()))


@dataclasses.dataclass(frozen=True)
class RowGroup:
    """One row group of one input file: the file row number of its first row, its row count."""

    path: str
    index: int
    first_row: int
    rows: int


def list_row_groups(path: str) -> Iterator[RowGroup]:
    """The non-empty row groups of a Parquet file, from its footer."""
    with open_file(path) as handle:
        metadata = pq.read_metadata(handle)
    first_row = 0
    for index in range(metadata.num_row_groups):
        rows = metadata.row_group(index).num_rows
        if rows:
            yield RowGroup(path, index, first_row, rows)
        first_row += rows
