"""Row validation: every kind of bad text gets its reason; good text is stripped and capped."""
import pytest
from hypothesis import given, strategies as st

from beam_pipeline.validation import (EMPTY_TEXT, NON_STRING_TEXT, NULL_TEXT, UNDECODABLE_BYTES,
                                      InputError, check_columns, clean_text, default_max_chars)


@pytest.mark.parametrize("value, reason", [
    (None, NULL_TEXT), ("", EMPTY_TEXT), (" \t\n ", EMPTY_TEXT), (b"   ", EMPTY_TEXT),
    (b"\xff\xfe bad", UNDECODABLE_BYTES), (42, NON_STRING_TEXT), (3.5, NON_STRING_TEXT),
    (["a list"], NON_STRING_TEXT), ({"a": "dict"}, NON_STRING_TEXT),
])
def test_bad_values_get_their_reason(value, reason):
    assert clean_text(value, max_chars=100) == (None, reason)


def test_good_values_are_stripped_decoded_and_capped():
    assert clean_text("  fine film \n", 100) == ("fine film", None)
    assert clean_text("café".encode("utf-8"), 100) == ("café", None)
    assert clean_text("x" * 1000, 10) == ("x" * 10, None)
    assert default_max_chars(128) == 6400


@given(st.one_of(st.none(), st.text(), st.binary(), st.integers()), st.integers(1, 50))
def test_any_value_is_either_clean_text_or_a_reason(value, max_chars):
    text, reason = clean_text(value, max_chars)
    assert (text is None) != (reason is None)
    if text is not None:
        assert text == text.strip() and 0 < len(text) <= max_chars


def test_missing_column_error_names_the_file_and_its_columns():
    check_columns("a.parquet", ["text", "id"], "text", "id")
    with pytest.raises(InputError, match=r"a\.parquet: no text column 'review'; its columns are "
                                         r"\['text', 'id'\]"):
        check_columns("a.parquet", ["text", "id"], "review")
    with pytest.raises(InputError, match="no id column 'key'"):
        check_columns("a.parquet", ["text"], "text", "key")


def test_cut_text_keeps_no_trailing_whitespace():
    assert clean_text("ab   cd", 4) == ("ab", None)
