"""Posts to sample from, as `sampling.Candidate` s: Parquet files (raw dumps, or a batch run's
scored output ``PREFIX-part-*.parquet``) and JSON-lines files (a stream's ``--output_files``;
its ``-aggregates-`` files are left out), local or on a Beam file system.

Probabilities are the rows' own (columns ``status`` and ``probabilities`` of scored records, see
`beam_pipeline.records`: rows whose status is not ``scored`` are skipped) or, with a model, the
model's (`beam_pipeline.model.ScoringModel.score_rows`). Ids are the batch scorer's: the
``--id_column`` value as text, else an ``id`` column, else `records.row_id` of file and row. The
key is `aggregates.record_key`'s (a message attribute, else the field). Rows that cannot be
sampled are skipped and counted by reason: a text `validation.clean_text` refuses, a null id, an
id seen before (a stream delivers at least once), a status other than ``scored``, a line that is
not a JSON object. A file that cannot be used raises `InputError` with one line.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import posixpath
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from beam_pipeline.aggregates import AGGREGATES_PART, record_key
from beam_pipeline.errors import InputError, first_line
from beam_pipeline.files import match_files, open_file
from beam_pipeline.records import ID, row_id
from beam_pipeline.streaming.messages import ATTRIBUTES
from beam_pipeline.validation import check_columns, clean_text
from beam_pipeline.vocabulary import (
    INFERENCE_ERROR,
    MISSING_ID,
    NOT_JSON,
    NOT_JSON_OBJECT,
    SCORED,
)
from labelling.sampling import Candidate

if TYPE_CHECKING:
    from beam_pipeline.model import ScoringModel

PARQUET_SUFFIXES = (".parquet",)
JSON_LINES_SUFFIXES = (".jsonl", ".json")
PROBABILITIES, STATUS, MODEL_VERSION = "probabilities", "status", "model_version"
DUPLICATE_ID = "duplicate_id"
#: texts scored per `ScoringModel.score_rows` call
SCORING_BATCH_ROWS = 1024


@dataclasses.dataclass
class Posts:
    """What the files gave: the candidates in file and row order, the rows read, the rows
    skipped by reason, and the files read and left out (aggregates)."""

    candidates: list[Candidate]
    rows: int
    skipped: collections.Counter
    files: list[str]
    left_out: list[str]


@dataclasses.dataclass(frozen=True)
class _Columns:
    text: str
    key: Optional[str]
    id: Optional[str]


def read_posts(pattern: str, text_column: str = "text", key_column: Optional[str] = None,
               id_column: Optional[str] = None, model: Optional[ScoringModel] = None,
               need_probabilities: bool = True) -> Posts:
    """The posts of every file matching ``pattern`` (in path order). With ``model`` the texts are
    scored by it; without, rows without probabilities raise `InputError` when
    ``need_probabilities`` (stratified and uncertain sampling), else they are read without."""
    try:
        paths = match_files(pattern)
    except Exception as error:  # Beam raises BeamIOError, or ValueError for an unknown scheme
        raise InputError(f"cannot list {pattern}: {first_line(error)}") from error
    if not paths:
        raise InputError(f"no file matches {pattern}")
    left_out = [path for path in paths
                if f"-{AGGREGATES_PART}-" in posixpath.basename(path)]
    files = [path for path in paths if path not in left_out]
    if not files:
        raise InputError(f"only aggregates files match {pattern} ({len(left_out)}); give the "
                          "scored records' files")
    posts = Posts([], 0, collections.Counter(), files, left_out)
    columns = _Columns(text_column, key_column, id_column)
    seen: set[str] = set()
    for path in files:
        names, rows, unreadable = _read_file(path, columns)
        posts.skipped.update(unreadable)
        posts.rows += len(rows) + sum(unreadable.values())
        own_probabilities = PROBABILITIES in names
        if model is None and not own_probabilities and need_probabilities:
            raise InputError(f"{path}: no {PROBABILITIES!r} column (not a scored output; its "
                              f"columns are {names}): stratified and uncertain sampling need "
                              "a model's probabilities; pass --model BUNDLE, or --strategy "
                              "random")
        pending = []
        for row_index, row in enumerate(rows):
            post = _post(path, row_index, row, names, columns, posts.skipped, seen)
            if post is None:
                continue
            if model is not None:
                pending.append(post)
            elif own_probabilities:
                candidate = _scored_candidate(post, row, posts.skipped)
                if candidate is not None:
                    posts.candidates.append(candidate)
            else:
                posts.candidates.append(Candidate(*post, probabilities={}))
        for start in range(0, len(pending), SCORING_BATCH_ROWS):
            posts.candidates += _score(model, pending[start:start + SCORING_BATCH_ROWS],
                                       posts.skipped)
    return posts


def _read_file(path: str, columns: _Columns) -> tuple[list[str], list[dict[str, Any]],
                                                       collections.Counter]:
    """The file's column names, its rows (only the columns needed) and its unreadable lines by
    reason; the required columns checked."""
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in PARQUET_SUFFIXES:
        names, rows, unreadable = *_read_parquet(path, columns), collections.Counter()
        available = names
    elif suffix in JSON_LINES_SUFFIXES:
        rows, unreadable = _read_json_lines(path)
        names = list(dict.fromkeys(name for row in rows for name in row))
        attributes = {name for row in rows for name in (row.get(ATTRIBUTES) or {})}
        available = [*names, *sorted(attributes - set(names))]
        if not rows:
            return names, rows, unreadable
    else:
        raise InputError(f"{path}: not a Parquet ({', '.join(PARQUET_SUFFIXES)}) or JSON-lines "
                          f"({', '.join(JSON_LINES_SUFFIXES)}) file")
    check_columns(path, names, {"text": columns.text, "id": columns.id})
    check_columns(path, available, {"key": columns.key})
    return names, rows, unreadable


def _read_parquet(path: str, columns: _Columns) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        with open_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            names = parquet.schema_arrow.names
            wanted = [name for name in dict.fromkeys(
                (columns.id or ID, columns.text, columns.key, ATTRIBUTES, STATUS, PROBABILITIES,
                 MODEL_VERSION)) if name in names]
            return names, parquet.read(columns=wanted).to_pylist()
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"cannot read {path}: {first_line(error)}") from error


def _read_json_lines(path: str) -> tuple[list[dict[str, Any]], collections.Counter]:
    try:
        with open_file(path) as handle:
            content = handle.read()
    except OSError as error:
        raise InputError(f"cannot read {path}: {first_line(error)}") from error
    rows, unreadable = [], collections.Counter()
    for line in content.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:  # also UnicodeDecodeError
            unreadable[NOT_JSON] += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            unreadable[NOT_JSON_OBJECT] += 1
    return rows, unreadable


def _post(path: str, row_index: int, row: dict[str, Any], names: Sequence[str],
          columns: _Columns, skipped: collections.Counter,
          seen: set[str]) -> Optional[tuple[str, str, Optional[str]]]:
    """``(id, text, key)`` of a row, or None (counted in ``skipped``) when it cannot be sampled."""
    if columns.id is not None or ID in names:
        value = row.get(columns.id or ID)
        post_id = None if value is None else str(value)
    else:
        post_id = row_id(path, row_index)
    text, reason = clean_text(row.get(columns.text), sys.maxsize)
    if reason is None and post_id is None:
        reason = MISSING_ID
    if reason is None and post_id in seen:
        reason = DUPLICATE_ID
    if reason is not None:
        skipped[reason] += 1
        return None
    seen.add(post_id)
    return post_id, text, record_key(row, columns.key) if columns.key else None


def _scored_candidate(post: tuple[str, str, Optional[str]], row: dict[str, Any],
                      skipped: collections.Counter) -> Optional[Candidate]:
    """The candidate of a scored record, or None when it was left unscored."""
    probabilities = row.get(PROBABILITIES)
    if row.get(STATUS, SCORED) != SCORED or not probabilities:
        skipped[str(row.get(STATUS))] += 1
        return None
    return Candidate(*post, probabilities={label: float(value)
                                           for label, value in probabilities.items()},
                     model_version=row.get(MODEL_VERSION))


def _score(model: ScoringModel, posts: list[tuple[str, str, Optional[str]]],
           skipped: collections.Counter) -> Iterator[Candidate]:
    labels = model.bundle.labels
    results = model.score_rows([text for _, text, _ in posts])
    for post, result in zip(posts, results):
        if result.status != SCORED:
            skipped[result.status] += 1
        elif result.probabilities is None:
            skipped[INFERENCE_ERROR] += 1
        else:
            yield Candidate(*post, probabilities=dict(zip(labels, map(float,
                                                                      result.probabilities))),
                            model_version=model.version())
