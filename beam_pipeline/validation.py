"""Row checks before scoring: each row's text is either cleaned for the model or given a reason.

Used by the batch pipeline (Parquet rows) and the streaming pipeline (Pub/Sub messages) alike::

    text, reason = clean_text(value, max_chars=50 * 128)
    if reason is not None:
        ...  # dead-letter the row with `reason` (vocabulary.VALIDATION_REASONS), stage
             # vocabulary.VALIDATION_STAGE

`check_columns` is the check made before a pipeline starts: the text (and id) column must exist.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from beam_pipeline.errors import InputError
from beam_pipeline.vocabulary import (
    EMPTY_TEXT,
    INVALID_UNICODE,
    NON_STRING_TEXT,
    NULL_TEXT,
    UNDECODABLE_BYTES,
)

CHARS_PER_TOKEN_CAP = 50


def default_max_chars(max_length: int) -> int:
    """Character cap applied before tokenisation: generous for `max_length` tokens, but bounded
    so that one huge row cannot stall a worker."""
    return CHARS_PER_TOKEN_CAP * max_length


def _visible(char: str) -> bool:
    """A letter, mark, number, punctuation or symbol (not a separator, control, format,
    surrogate, private-use or unassigned code point)."""
    return unicodedata.category(char)[0] not in "CZ"


def clean_text(value: Any, max_chars: int) -> tuple[str | None, str | None]:
    """Returns ``(text, None)`` for a scorable value, else ``(None, reason)``; never raises.

    Accepts ``str`` and UTF-8 ``bytes``; strips surrounding whitespace and cuts the text to
    ``max_chars`` characters before any per-character work, so a huge value costs little. A text
    without a visible character within the cap (only whitespace, zero-width or control
    characters) is ``empty_text``; a ``str`` holding lone surrogates (possible from JSON, never
    from Parquet) is ``invalid_unicode``.
    """
    if value is None:
        return None, NULL_TEXT
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, UNDECODABLE_BYTES
    if not isinstance(value, str):
        return None, NON_STRING_TEXT
    text = value.strip()[:max_chars].rstrip()
    if not any(map(_visible, text)):
        return None, EMPTY_TEXT
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None, INVALID_UNICODE
    return text, None


def check_columns(source: str, columns: Iterable[str],
                  required: dict[str, str | None]) -> None:
    """Raises `InputError` naming ``source`` and its columns when a required column (``required``:
    its role, such as text or id, -> its name; None: not asked for) is absent."""
    columns = list(columns)
    for role, name in required.items():
        if name is not None and name not in columns:
            raise InputError(f"{source}: no {role} column {name!r}; its columns are {columns}")
