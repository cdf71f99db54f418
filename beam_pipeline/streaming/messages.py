"""Pub/Sub messages in, rows to score (or dead-letter records) out; scored records back to messages.

A message's data is a UTF-8 JSON object such as::

    {"text": "Shares of $XYZ jump 12%", "id": "t-1", "created_at": "2026-11-23T13:00:05Z",
     "brand": "xyz"}

* the text field (``--text_field``, default ``text``) is checked with the batch pipeline's
  `validation.clean_text`;
* ``id`` (a string or an integer) becomes the record id; without it, the Pub/Sub message id;
* ``created_at`` (RFC 3339 with a UTC offset) becomes the element's event time; without it the
  publish time (the element time stamp `ReadFromPubSub` gives) stays;
* every other field is passed through, and the message attributes are kept in ``attributes``.

The row handed to `records.scored_record` / `records.dead_letter_record` is the JSON object
without ``id``, plus ``attributes``, ``publish_time`` and ``message_id`` (the Pub/Sub message id:
a message delivered twice, which Pub/Sub's at-least-once delivery allows, gives two records with
the same ``message_id``, so consumers can de-duplicate on it). Rejected messages become dead-letter
records with one of `vocabulary.PARSE_REASONS` (stage ``parse``) or a validation reason (stage
``validation``). A payload that cannot be read as a JSON object is kept as ``payload_base64``
(only when within the size cap) and ``payload_bytes``. Log lines name message ids and reasons,
never payloads.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import logging
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.metrics import Metrics
from apache_beam.utils.timestamp import Timestamp

from beam_pipeline.records import ADDED_SCORED, ID, dead_letter_record
from beam_pipeline.validation import clean_text, default_max_chars
from beam_pipeline.vocabulary import (
    INVALID_CREATED_AT,
    INVALID_ID,
    METRICS_NAMESPACE,
    MISSING_TEXT_FIELD,
    NOT_JSON,
    NOT_JSON_OBJECT,
    PARSE_STAGE,
    RESERVED_FIELD,
    ROWS_READ,
    TOO_LARGE,
    UNDECODABLE_BYTES,
    VALIDATION_STAGE,
    dead_lettered_counter,
)

LOGGER = logging.getLogger(__name__)
DEAD_LETTER_TAG = "dead_letter"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
ATTRIBUTES, PUBLISH_TIME, MESSAGE_ID = "attributes", "publish_time", "message_id"
CREATED_AT = "created_at"
MESSAGE_FIELDS = (ATTRIBUTES, PUBLISH_TIME, MESSAGE_ID)
RESERVED_FIELDS = (*ADDED_SCORED, *MESSAGE_FIELDS)


@dataclasses.dataclass(frozen=True)
class MessageFormat:
    """How messages are read: the text field's name and the caps on payload and text size."""

    text_field: str = "text"
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_chars: int = default_max_chars(128)


@dataclasses.dataclass(frozen=True)
class ParsedMessage:
    """A message ready to score: its record id, its row, its cleaned text and its event time
    (``created_at``; `ParseMessages` puts the publish time there when it is absent)."""

    record_id: str
    row: dict[str, Any]
    text: str
    event_time: Timestamp | None


class Rejected(ValueError):
    """A message that cannot be scored; ``reason`` is a parse or validation reason."""

    def __init__(self, reason: str, stage: str = PARSE_STAGE):
        super().__init__(reason)
        self.reason, self.stage = reason, stage


def parse_created_at(value: Any) -> Timestamp:
    """An RFC 3339 date-time with a UTC offset (``Z`` or ``±HH:MM``) as a Beam time stamp."""
    if not isinstance(value, str) or "T" not in value.upper():
        raise Rejected(INVALID_CREATED_AT)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(INVALID_CREATED_AT) from None
    if moment.tzinfo is None:
        raise Rejected(INVALID_CREATED_AT)
    return Timestamp.from_utc_datetime(moment.astimezone(datetime.UTC))


def _record_id(fields: dict[str, Any], message: PubsubMessage) -> str:
    if ID not in fields:
        return message.message_id
    value = fields[ID]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise Rejected(INVALID_ID)
    return str(value)


def _message_row(message: PubsubMessage) -> dict[str, Any]:
    publish_time = message.publish_time.isoformat() if message.publish_time else None
    return {ATTRIBUTES: dict(message.attributes or {}), PUBLISH_TIME: publish_time,
            MESSAGE_ID: message.message_id}


def parse_message(message: PubsubMessage, message_format: MessageFormat) -> ParsedMessage:
    """Reads one message; raises `Rejected` with the reason when it cannot be scored."""
    payload = message.data or b""
    if len(payload) > message_format.max_message_bytes:
        raise Rejected(TOO_LARGE)
    try:
        fields = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise Rejected(UNDECODABLE_BYTES) from None
    except json.JSONDecodeError:
        raise Rejected(NOT_JSON) from None
    if not isinstance(fields, dict):
        raise Rejected(NOT_JSON_OBJECT)
    if any(name in fields for name in RESERVED_FIELDS):
        raise Rejected(RESERVED_FIELD)
    if message_format.text_field not in fields:
        raise Rejected(MISSING_TEXT_FIELD)
    record_id = _record_id(fields, message)
    event_time = parse_created_at(fields[CREATED_AT]) if CREATED_AT in fields else None
    text, reason = clean_text(fields[message_format.text_field], message_format.max_chars)
    if reason is not None:
        raise Rejected(reason, stage=VALIDATION_STAGE)
    row = {name: value for name, value in fields.items() if name != ID}
    return ParsedMessage(record_id, {**row, **_message_row(message)}, text, event_time)


def rejected_record(message: PubsubMessage, rejection: Rejected,
                    message_format: MessageFormat) -> dict[str, Any]:
    """The dead-letter record of a rejected message (the row as far as it could be read)."""
    payload = message.data or b""
    try:
        fields = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        fields = None
    if rejection.reason != TOO_LARGE and isinstance(fields, dict):
        record_id = fields.get(ID) if isinstance(fields.get(ID), (str, int)) else None
        row = {name: value for name, value in fields.items()
               if name not in (ID, *MESSAGE_FIELDS)}
    else:
        record_id = None
        row = {"payload_bytes": len(payload)}
        if len(payload) <= message_format.max_message_bytes:
            row["payload_base64"] = base64.b64encode(payload).decode("ascii")
    return dead_letter_record({**row, **_message_row(message)},
                              str(record_id if record_id is not None else message.message_id),
                              rejection.reason, rejection.stage)


class ParseMessages(beam.DoFn):
    """PubsubMessage -> ``(ParsedMessage, text)`` stamped with its event time, keyed for
    ``RunInference(KeyedModelHandler(...))`` (one step less per bundle than keying apart);
    rejected messages go to the ``dead_letter`` output as dead-letter records (counted per
    reason in Beam metrics)."""

    def __init__(self, message_format: MessageFormat):
        self._format = message_format
        self._read = Metrics.counter(METRICS_NAMESPACE, ROWS_READ)

    def process(self, message: PubsubMessage,
                timestamp=beam.DoFn.TimestampParam) -> Iterator[Any]:
        self._read.inc()
        try:
            parsed = parse_message(message, self._format)
        except Rejected as rejection:
            Metrics.counter(METRICS_NAMESPACE, dead_lettered_counter(rejection.reason)).inc()
            LOGGER.info("message %s dead-lettered: %s", message.message_id, rejection.reason)
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG,
                                           rejected_record(message, rejection, self._format))
            return
        if parsed.event_time is None:
            yield dataclasses.replace(parsed, event_time=timestamp), parsed.text
        else:
            yield beam.window.TimestampedValue((parsed, parsed.text), parsed.event_time)


def to_json_bytes(record: dict[str, Any]) -> bytes:
    """A scored, dead-letter, aggregate or alert record as compact UTF-8 JSON (time stamps in
    ISO 8601)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"),
                      default=_json_default).encode("utf-8")


def _json_default(value: Any) -> str:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_pubsub_message(record: dict[str, Any]) -> PubsubMessage:
    """An output message: the record as JSON, carrying the input message's attributes."""
    return PubsubMessage(to_json_bytes(record), dict(record.get(ATTRIBUTES) or {}))
