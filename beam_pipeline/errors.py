"""Errors raised before a job starts, and the one-line form of any error."""
from __future__ import annotations


class InputError(ValueError):
    """The input cannot be scored at all (a bad flag, a missing column, no files); raised before
    the run, printed as one line."""


def first_line(error: BaseException, max_chars: int = 500) -> str:
    """The first line of an error's message (at most ``max_chars``), or its type's name when the
    message is empty: what goes into one-line errors and dead-letter records. Characters that
    do not print (a corrupt file's bytes can reach a message) are written as escapes."""
    lines = str(error).strip().splitlines()
    line = lines[0].strip() if lines else type(error).__name__
    printable = "".join(char if char.isprintable() else repr(char)[1:-1] for char in line)
    return printable[:max_chars].rstrip()
