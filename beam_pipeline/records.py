"""Scored and dead-letter records: their Arrow schemas, their ids, and how they are built.

A scored record is the input row with these columns added (the input's columns keep their
names, types and order)::

    id             string     the --id_column value as text, else row_id(source, row_index);
                              an id column named ``id`` is itself the id (its type kept)
    <input columns>           passed through unchanged
    status         string     ``scored``, or why valid input was left unscored
                              (``unsupported_language``: the next three are then null)
    sentiment      string     label with the highest probability
    score          float32    that probability
    probabilities  struct     one float32 field per label, in the bundle's label order
    language       string     ISO 639-1 code of the text's language (`language.LanguageGate`)
    language_confidence float32  the identifier's probability for it
    text_fingerprint string   shared by a post and its copies (`social_text.fingerprint`)
    model_version  string     sha256 prefix of the ONNX file that scored (Bundle.model_version)
    scored_at      timestamp[us, UTC]

A dead-letter record is ``id``, the original columns, ``reason``, ``stage`` (where it was
rejected) and ``error`` (null, except: for ``inference_error`` the error's type and the first
line of its message; for ``unreadable_row_group`` the file, row group and error); reasons and
stages are `vocabulary`'s. Both are plain dicts, so the streaming pipeline builds them with
`scored_record` and `dead_letter_record` from rows parsed from messages.
"""
from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pyarrow as pa

from beam_pipeline.errors import InputError

if TYPE_CHECKING:
    from beam_pipeline.model import RowResult

ID = "id"
ADDED_SCORED = ("status", "sentiment", "score", "probabilities", "language",
                "language_confidence", "text_fingerprint", "model_version", "scored_at")
ADDED_DEAD_LETTER = ("reason", "stage", "error")
TIMESTAMP = pa.timestamp("us", tz="UTC")


def row_id(source: str, row_index: int) -> str:
    """Stable id of a row that has no id column: a hash of its file and its position in it."""
    return hashlib.sha256(f"{source}#{row_index}".encode()).hexdigest()[:20]


def _id_and_input_fields(input_schema: pa.Schema, added: Sequence[str],
                         id_column: Optional[str]) -> list[pa.Field]:
    """The ``id`` field followed by the input's fields; an input column named ``id`` is allowed
    only as the id column, and then it is the id (type kept, in its place)."""
    own_id = id_column == ID
    clashes = [name for name in ((*added,) if own_id else (ID, *added))
               if name in input_schema.names]
    if clashes:
        raise InputError(f"input columns {clashes} clash with columns the output adds "
                         f"({[ID, *added]}); rename them in the input"
                         + (" or pass --id_column id" if clashes[0] == ID else ""))
    return [*input_schema] if own_id else [pa.field(ID, pa.string()), *input_schema]


def scored_schema(input_schema: pa.Schema, labels: Sequence[str],
                  id_column: Optional[str] = None) -> pa.Schema:
    """Arrow schema of scored records for input rows of ``input_schema``."""
    probabilities = pa.struct([pa.field(label, pa.float32()) for label in labels])
    return pa.schema([*_id_and_input_fields(input_schema, ADDED_SCORED, id_column),
                      pa.field("status", pa.string()),
                      pa.field("sentiment", pa.string()), pa.field("score", pa.float32()),
                      pa.field("probabilities", probabilities),
                      pa.field("language", pa.string()),
                      pa.field("language_confidence", pa.float32()),
                      pa.field("text_fingerprint", pa.string()),
                      pa.field("model_version", pa.string()), pa.field("scored_at", TIMESTAMP)])


def dead_letter_schema(input_schema: pa.Schema, id_column: Optional[str] = None) -> pa.Schema:
    """Arrow schema of dead-letter records for input rows of ``input_schema``."""
    return pa.schema([*_id_and_input_fields(input_schema, ADDED_DEAD_LETTER, id_column),
                      pa.field("reason", pa.string()), pa.field("stage", pa.string()),
                      pa.field("error", pa.string())])


def utc_now() -> datetime.datetime:
    """The time stamp written to ``scored_at``."""
    return datetime.datetime.now(datetime.UTC)


def scored_record(row: dict[str, Any], record_id: str, result: RowResult,
                  labels: Sequence[str], model_version: str,
                  scored_at: datetime.datetime) -> dict[str, Any]:
    """The output record of one row the model read (`model.RowResult`): scored, with
    ``probabilities`` in label order, or left unscored with its ``status`` and ``sentiment``,
    ``score`` and ``probabilities`` null. A row's own ``id`` column, allowed only as the id
    column, takes precedence over ``record_id``."""
    record = {ID: record_id, **row, "status": result.status, "sentiment": None, "score": None,
              "probabilities": None, "language": result.language,
              "language_confidence": result.language_confidence,
              "text_fingerprint": result.fingerprint, "model_version": model_version,
              "scored_at": scored_at}
    if result.probabilities is not None:
        probabilities = result.probabilities
        best = int(np.argmax(probabilities))
        record.update(sentiment=labels[best], score=float(probabilities[best]),
                      probabilities={label: float(p) for label, p in zip(labels, probabilities)})
    return record


def dead_letter_record(row: dict[str, Any], record_id: str | None, reason: str, stage: str,
                       error: Optional[str] = None) -> dict[str, Any]:
    """The dead-letter record of one rejected row, keeping the row as it was read; ``error``
    (what went wrong, without the row's text) is added only when given."""
    record = {ID: record_id, **row, "reason": reason, "stage": stage}
    if error is not None:
        record["error"] = error
    return record
