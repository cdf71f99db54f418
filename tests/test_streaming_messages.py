"""Pub/Sub message parsing: rows, event times, dead-letter reasons, JSON output."""
from __future__ import annotations

import base64
import datetime
import json

import apache_beam as beam
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_pipeline import vocabulary as vocab
from beam_pipeline.streaming import messages as sm
from beam_pipeline.vocabulary import (
    EMPTY_TEXT,
    NON_STRING_TEXT,
    UNDECODABLE_BYTES,
    VALIDATION_REASONS,
)

PUBLISHED = datetime.datetime(2026, 11, 23, 13, 0, 0, tzinfo=datetime.UTC)
FORMAT = sm.MessageFormat(text_field="text", max_message_bytes=1000, max_chars=50)


def message(data: bytes, message_id: str = "m1", **attributes: str) -> PubsubMessage:
    return PubsubMessage(data, attributes, message_id=message_id, publish_time=PUBLISHED)


def as_json(**fields) -> bytes:
    return json.dumps(fields).encode("utf-8")


def test_full_message_keeps_fields_attributes_and_uses_created_at_as_event_time():
    parsed = sm.parse_message(
        message(as_json(text="  Stocks rally  ", id=42, created_at="2026-11-23T14:00:05+01:00",
                        brand="acme", nested={"a": [1, 2]}), brand_attr="x"),
        FORMAT)
    assert parsed.record_id == "42"
    assert parsed.text == "Stocks rally"
    assert parsed.event_time == Timestamp.from_rfc3339("2026-11-23T13:00:05Z")
    assert parsed.row == {"text": "  Stocks rally  ", "created_at": "2026-11-23T14:00:05+01:00",
                          "brand": "acme", "nested": {"a": [1, 2]},
                          "attributes": {"brand_attr": "x"},
                          "publish_time": "2026-11-23T13:00:00+00:00", "message_id": "m1"}


def test_minimal_message_uses_message_id_and_publish_time():
    parsed = sm.parse_message(message(as_json(text="hello"), message_id="987"), FORMAT)
    assert (parsed.record_id, parsed.event_time, parsed.text) == ("987", None, "hello")


def test_custom_text_field_and_character_cap():
    parsed = sm.parse_message(message(as_json(body="x" * 80)),
                              sm.MessageFormat(text_field="body", max_chars=50))
    assert parsed.text == "x" * 50


@pytest.mark.parametrize("data, reason, stage", [
    (b"x" * 1001, vocab.TOO_LARGE, vocab.PARSE_STAGE),
    (b'{"text": "caf\xe9"}', UNDECODABLE_BYTES, vocab.PARSE_STAGE),
    (b"not json at all", vocab.NOT_JSON, vocab.PARSE_STAGE),
    (b"", vocab.NOT_JSON, vocab.PARSE_STAGE),
    (b'["text"]', vocab.NOT_JSON_OBJECT, vocab.PARSE_STAGE),
    (as_json(body="no text field"), vocab.MISSING_TEXT_FIELD, vocab.PARSE_STAGE),
    (as_json(text="ok", id=None), vocab.INVALID_ID, vocab.PARSE_STAGE),
    (as_json(text="ok", id=True), vocab.INVALID_ID, vocab.PARSE_STAGE),
    (as_json(text="ok", created_at="yesterday"), vocab.INVALID_CREATED_AT, vocab.PARSE_STAGE),
    (as_json(text="ok", created_at="2026-11-23T13:00:00"), vocab.INVALID_CREATED_AT,
     vocab.PARSE_STAGE),
    (as_json(text="ok", created_at=1700000000), vocab.INVALID_CREATED_AT, vocab.PARSE_STAGE),
    (as_json(text="ok", score=1), vocab.RESERVED_FIELD, vocab.PARSE_STAGE),
    (as_json(text="ok", attributes={}), vocab.RESERVED_FIELD, vocab.PARSE_STAGE),
    (as_json(text="ok", message_id="forged"), vocab.RESERVED_FIELD, vocab.PARSE_STAGE),
    (as_json(text="   "), EMPTY_TEXT, "validation"),
    (as_json(text=12), NON_STRING_TEXT, "validation"),
])
def test_rejections_name_their_reason(data, reason, stage):
    with pytest.raises(sm.Rejected) as caught:
        sm.parse_message(message(data), FORMAT)
    assert (caught.value.reason, caught.value.stage) == (reason, stage)


def test_rejected_records_keep_what_could_be_read():
    bad_text = message(as_json(text="", id="t9", brand="acme"), message_id="55", k="v")
    record = sm.rejected_record(bad_text, sm.Rejected(EMPTY_TEXT, "validation"), FORMAT)
    assert record == {"id": "t9", "text": "", "brand": "acme", "attributes": {"k": "v"},
                      "publish_time": "2026-11-23T13:00:00+00:00", "message_id": "55",
                      "reason": EMPTY_TEXT, "stage": "validation"}
    garbage = message(b"\xff\xfe", message_id="56")
    record = sm.rejected_record(garbage, sm.Rejected(UNDECODABLE_BYTES), FORMAT)
    assert record["id"] == "56" and record["payload_bytes"] == 2
    assert base64.b64decode(record["payload_base64"]) == b"\xff\xfe"
    huge = message(b"y" * 1001, message_id="57")
    record = sm.rejected_record(huge, sm.Rejected(vocab.TOO_LARGE), FORMAT)
    assert record["payload_bytes"] == 1001 and "payload_base64" not in record


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=3)
                              | st.dictionaries(st.sampled_from(
                                  ["text", "id", "created_at", "score", "x"]), inner, max_size=4),
                              max_leaves=8).map(lambda value: json.dumps(value).encode())))
def test_any_payload_is_either_parsed_or_rejected_with_a_known_reason(data):
    try:
        parsed = sm.parse_message(message(data), FORMAT)
    except sm.Rejected as rejection:
        assert rejection.reason in vocab.PARSE_REASONS + VALIDATION_REASONS
        record = sm.rejected_record(message(data), rejection, FORMAT)
        assert record["reason"] == rejection.reason
        json.loads(sm.to_json_bytes(record))
    else:
        assert parsed.text and len(parsed.text) <= FORMAT.max_chars


def test_output_messages_are_json_with_the_input_attributes():
    record = {"id": "1", "attributes": {"brand": "acme"}, "scored_at": PUBLISHED, "score": 0.5}
    out = sm.to_pubsub_message(record)
    assert out.attributes == {"brand": "acme"}
    assert json.loads(out.data) == {"id": "1", "attributes": {"brand": "acme"},
                                    "scored_at": "2026-11-23T13:00:00+00:00", "score": 0.5}


def test_parse_messages_dofn_keys_by_message_stamps_event_time_and_splits_dead_letters():
    published = Timestamp.from_utc_datetime(PUBLISHED)
    stream = (test_stream.TestStream()
              .advance_watermark_to(published)
              .add_elements([beam.window.TimestampedValue(m, published) for m in [
                  message(as_json(text="a", created_at="2026-11-23T12:59:00Z"), "1"),
                  message(as_json(text="b"), "2"),
                  message(b"{oops", "3")]])
              .advance_watermark_to_infinity())
    options = PipelineOptions(flags=[], runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        outputs = (pipeline | stream
                   | beam.ParDo(sm.ParseMessages(FORMAT)).with_outputs(sm.DEAD_LETTER_TAG,
                                                                        main="parsed"))
        stamped = outputs.parsed | beam.Map(
            lambda keyed, timestamp=beam.DoFn.TimestampParam: (
                keyed[0].record_id, keyed[0].event_time, keyed[1], timestamp))
        created = Timestamp.from_rfc3339("2026-11-23T12:59:00Z")
        assert_that(stamped, equal_to([("1", created, "a", created),
                                       ("2", published, "b", published)]), label="parsed")
        assert_that(outputs[sm.DEAD_LETTER_TAG] | beam.Map(lambda r: (r["id"], r["reason"])),
                    equal_to([("3", vocab.NOT_JSON)]), label="dead letters")
