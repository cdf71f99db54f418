"""Defensive readers for the JSON the reports consume (summaries written by older versions lack
fields): a field that is missing or of the wrong type reads as absent, never as zero."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_number(value: Any) -> float | None:
    """A finite int or float (not a bool) as float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def as_count(value: Any) -> int | None:
    """A non-negative whole number (``3`` or ``3.0``) as int, else None."""
    number = as_number(value)
    if number is None or number < 0 or not number.is_integer():
        return None
    return int(number)


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_texts(value: Any) -> list[str]:
    """The strings of a list (others dropped); [] for anything but a list."""
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def as_counts(value: Any) -> dict[str, int]:
    """The entries of a mapping whose values are counts."""
    counts = {str(name): as_count(item) for name, item in as_mapping(value).items()}
    return {name: count for name, count in counts.items() if count is not None}


def as_numbers(value: Any) -> dict[str, float]:
    """The entries of a mapping whose values are numbers."""
    numbers = {str(name): as_number(item) for name, item in as_mapping(value).items()}
    return {name: number for name, number in numbers.items() if number is not None}
