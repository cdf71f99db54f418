"""Row validation: every kind of bad text gets its reason; good text is stripped and capped;
whatever the value, `clean_text` returns cleaned text within the cap or a known reason."""
import datetime
import decimal
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from beam_pipeline.errors import InputError, first_line
from beam_pipeline.validation import check_columns, clean_text, default_max_chars
from beam_pipeline.vocabulary import (
    EMPTY_TEXT,
    INVALID_UNICODE,
    NON_STRING_TEXT,
    NULL_TEXT,
    UNDECODABLE_BYTES,
    VALIDATION_REASONS,
)


@pytest.mark.parametrize("value, reason", [
    (None, NULL_TEXT), ("", EMPTY_TEXT), (" \t\n ", EMPTY_TEXT), (b"   ", EMPTY_TEXT),
    (b"\xff\xfe bad", UNDECODABLE_BYTES), (42, NON_STRING_TEXT), (3.5, NON_STRING_TEXT),
    (["a list"], NON_STRING_TEXT), ({"a": "dict"}, NON_STRING_TEXT),
    ("\u200b\u200c\u200d\ufeff", EMPTY_TEXT), (" \x00\x07\x1b ", EMPTY_TEXT),
    ("\u2028\u00a0\u3000", EMPTY_TEXT), ("fine \ud800 film", INVALID_UNICODE),
])
def test_bad_values_get_their_reason(value, reason):
    assert clean_text(value, max_chars=100) == (None, reason)


def test_good_values_are_stripped_decoded_and_capped():
    assert clean_text("  fine film \n", 100) == ("fine film", None)
    assert clean_text("café".encode(), 100) == ("café", None)
    assert clean_text("x" * 1000, 10) == ("x" * 10, None)
    assert default_max_chars(128) == 6400
    for text in ("😀🎬🍿", "الفيلم رائع", "<p>great <b>film</b></p>", "a\u200bb", "\x00ok"):
        assert clean_text(text, 100) == (text, None)


def test_cut_text_keeps_no_trailing_whitespace():
    assert clean_text("ab   cd", 4) == ("ab", None)


def test_only_what_lies_within_the_cap_counts():
    assert clean_text(" " * 5 + "\u200b" * 20 + "late text", 10) == (None, EMPTY_TEXT)
    assert clean_text("early" + "\ud800", 5) == ("early", None)


ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.decimals(), st.datetimes(),
    st.dates(), ANY_TEXT, st.binary(max_size=80),
    st.binary(max_size=80).map(bytearray), st.binary(max_size=80).map(memoryview),
    st.text(max_size=80).map(lambda text: text.encode("utf-8")),
    st.text(max_size=80).map(lambda text: text.encode("utf-16")))
ANY_VALUE = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=4),
    st.tuples(children, children)), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(ANY_VALUE, st.integers(1, 60))
@example(" \u200b" * 40 + "x", 5)
@example(b"\xed\xa0\x80", 5)  # a UTF-8 encoded surrogate: undecodable
@example(decimal.Decimal("NaN"), 1)
@example(datetime.datetime(2026, 1, 1), 1)
def test_any_value_is_either_clean_text_within_the_cap_or_a_known_reason(value, max_chars):
    text, reason = clean_text(value, max_chars)
    assert (text is None) != (reason is None)
    if reason is not None:
        assert reason in VALIDATION_REASONS
        return
    assert isinstance(text, str) and 0 < len(text) <= max_chars
    assert text == text.strip()
    assert any(unicodedata.category(char)[0] not in "CZ" for char in text)
    text.encode("utf-8")  # a tokenizer can take it
    original = bytes(value).decode("utf-8") if not isinstance(value, str) else value
    assert original.strip().startswith(text)


@given(st.one_of(st.text(max_size=40), st.binary(max_size=40)))
def test_strings_and_utf8_bytes_get_the_same_answer(text):
    as_bytes = text if isinstance(text, bytes) else text.encode("utf-8")
    try:
        as_str = as_bytes.decode("utf-8")
    except UnicodeDecodeError:
        assert clean_text(as_bytes, 20) == (None, UNDECODABLE_BYTES)
    else:
        assert clean_text(as_bytes, 20) == clean_text(as_str, 20)


def test_missing_column_error_names_the_file_and_its_columns():
    check_columns("a.parquet", ["text", "id"], {"text": "text", "id": "id", "key": None})
    with pytest.raises(InputError, match=r"a\.parquet: no text column 'review'; its columns are "
                                         r"\['text', 'id'\]"):
        check_columns("a.parquet", ["text", "id"], {"text": "review"})
    with pytest.raises(InputError, match="no id column 'key'"):
        check_columns("a.parquet", ["text"], {"text": "text", "id": "key"})
    with pytest.raises(InputError, match="no time column 'created_at'"):
        check_columns("a.parquet", ["text", "brand"], {"key": "brand", "time": "created_at"})


def test_first_line_of_an_error():
    assert first_line(ValueError("  one\ntwo")) == "one"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(ValueError("x" * 900), 10) == "x" * 10
    assert first_line(OSError("don't know what type: \x0f\x00")) == \
        "don't know what type: \\x0f\\x00"
    assert first_line(ValueError("café 😀")) == "café 😀"


COLUMN_NAMES = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


@given(st.lists(COLUMN_NAMES, max_size=6, unique=True), COLUMN_NAMES,
       st.one_of(st.none(), COLUMN_NAMES))
def test_check_columns_passes_or_names_the_file_and_its_columns_on_one_line(columns, text,
                                                                           id_column):
    missing = [name for name in (text, id_column) if name is not None and name not in columns]
    try:
        check_columns("dump/a.parquet", columns, {"text": text, "id": id_column})
    except InputError as error:
        message = str(error)
        assert missing and len(message.splitlines()) == 1
        assert message.startswith("dump/a.parquet: no ") and repr(missing[0]) in message
        assert message.endswith(f"its columns are {columns!r}")
    else:
        assert not missing


@given(ANY_TEXT, st.integers(1, 100))
@example("ab cd\nef", 3)
@example(" \n\u2028", 1)
def test_first_line_is_one_line_within_its_cap(message, max_chars):
    line = first_line(RuntimeError(message), max_chars)
    assert 0 < len(line) <= max_chars and len(line.splitlines()) == 1
    assert line == line.strip() and line.isprintable()
