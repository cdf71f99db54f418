"""The words records and metrics use, in one place: stages, dead-letter reasons, counter names.

Every input row or message ends in exactly one outcome: scored; valid but left unscored with one
of `UNSCORED_STATUSES` (in the scored output, ``sentiment`` null); or dead-lettered with one of
`DEAD_LETTER_REASONS` at one of `STAGES`. Batch and streaming count them in one Beam metrics
namespace, `METRICS_NAMESPACE`, under the same counter names.
"""
from __future__ import annotations

METRICS_NAMESPACE = "sentiment_scoring"

# stages: where a row was rejected
READ_STAGE = "read"
PARSE_STAGE = "parse"
VALIDATION_STAGE = "validation"
INFERENCE_STAGE = "inference"
STAGES = (READ_STAGE, PARSE_STAGE, VALIDATION_STAGE, INFERENCE_STAGE)

# validation (batch rows and message texts alike)
NULL_TEXT = "null_text"
NON_STRING_TEXT = "non_string_text"
UNDECODABLE_BYTES = "undecodable_bytes"
EMPTY_TEXT = "empty_text"
INVALID_UNICODE = "invalid_unicode"
MISSING_ID = "missing_id"
VALIDATION_REASONS = (NULL_TEXT, NON_STRING_TEXT, UNDECODABLE_BYTES, EMPTY_TEXT,
                      INVALID_UNICODE, MISSING_ID)

# reading Parquet (batch)
UNREADABLE_ROW_GROUP = "unreadable_row_group"

# parsing Pub/Sub messages (streaming); UNDECODABLE_BYTES is also one
TOO_LARGE = "too_large"
NOT_JSON = "not_json"
NOT_JSON_OBJECT = "not_json_object"
MISSING_TEXT_FIELD = "missing_text_field"
INVALID_ID = "invalid_id"
INVALID_CREATED_AT = "invalid_created_at"
RESERVED_FIELD = "reserved_field"
PARSE_REASONS = (TOO_LARGE, UNDECODABLE_BYTES, NOT_JSON, NOT_JSON_OBJECT, MISSING_TEXT_FIELD,
                 INVALID_ID, INVALID_CREATED_AT, RESERVED_FIELD)

# scoring
INFERENCE_ERROR = "inference_error"

DEAD_LETTER_REASONS = tuple(dict.fromkeys(
    (*VALIDATION_REASONS, UNREADABLE_ROW_GROUP, *PARSE_REASONS, INFERENCE_ERROR)))

# statuses of the rows in the scored output: scored, or valid input left unscored
SCORED = "scored"
UNSUPPORTED_LANGUAGE = "unsupported_language"
UNSCORED_STATUSES = (UNSUPPORTED_LANGUAGE,)

# counters (namespace METRICS_NAMESPACE)
ROWS_READ = "rows_read"              # batch rows read, and streaming messages pulled
ROWS_SCORED = "rows_scored"
ROWS_UNSCORED = "rows_unscored"        # rows_unscored_<status> per status
RECORDS_TOO_LATE = "records_too_late"
# distributions
CHUNK_ROWS = "chunk_rows"
ONNX_BATCH_ROWS = "onnx_batch_rows"


def dead_lettered_counter(reason: str) -> str:
    """Name of the counter of rows dead-lettered for ``reason``."""
    return f"dead_lettered_{reason}"


def unscored_counter(status: str) -> str:
    """Name of the counter of rows left unscored with ``status``."""
    return f"{ROWS_UNSCORED}_{status}"
