"""Input dumps for scoring: good reviews, hostile rows, bad files, SST-2 sentences in several
files and row groups; all built from scratch or from ``../shared/data``."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq

from testkit.models import texts_of_token_lengths

GOOD_REVIEWS = ["a charming , funny film .", "dull and slow .", "the best thing this year",
                "i wanted my money back", "fine acting , thin plot"]


def write_reviews(path: Path, texts: list, row_group_size: Optional[int] = None,
                  **columns) -> Path:
    """A Parquet file with a string ``text`` column (plus any ``columns`` given as lists)."""
    table = pa.table({"text": pa.array(texts, pa.string()), **columns})
    pq.write_table(table, path, row_group_size=row_group_size, write_page_checksum=True)
    return path


def write_bad_file(path: Path, kind: str) -> Path:
    """A bad input file of one kind of `BAD_FILE_KINDS`:

    - ``truncated``: a valid Parquet file cut in half (no footer);
    - ``other_schema``: valid Parquet with a text column and one more column than the reviews;
    - ``no_text_column``: valid Parquet whose text is in a ``review`` column;
    - ``empty``: 0 bytes;
    - ``zero_rows``: valid Parquet with the reviews' schema and no row (not bad: it must work);
    - ``corrupt_row_group``: valid footer, 300 rows in row groups of 100, the text column's
      pages of row group 1 overwritten (the reader's page checksums or decompression fail).
    """
    if kind == "truncated":
        data = write_reviews(path, GOOD_REVIEWS * 20).read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif kind == "other_schema":
        write_reviews(path, GOOD_REVIEWS, stars=[1, 2, 3, 4, 5])
    elif kind == "no_text_column":
        pq.write_table(pa.table({"review": GOOD_REVIEWS}), path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "zero_rows":
        write_reviews(path, [])
    elif kind == "corrupt_row_group":
        write_reviews(path, [f"{GOOD_REVIEWS[i % 5]} ({i})" for i in range(300)],
                      row_group_size=100)
        column = pq.read_metadata(path).row_group(1).column(0)
        start = column.dictionary_page_offset or column.data_page_offset
        data = bytearray(path.read_bytes())
        for offset in range(start + 20, start + column.total_compressed_size - 20):
            data[offset] ^= 0x5A
        path.write_bytes(bytes(data))
    else:
        raise ValueError(f"unknown bad file kind {kind!r}")
    return path


BAD_FILE_KINDS = ("truncated", "other_schema", "no_text_column", "empty", "zero_rows",
                  "corrupt_row_group")


FIVE_MB = 5 * 1024 * 1024


def hostile_texts(tokenizer_json: str, max_length: int) -> dict[str, Optional[str]]:
    """The hostile values a string text column can hold, by case name."""
    at_limit, over_limit = texts_of_token_lengths(tokenizer_json, [max_length, max_length + 1])
    return {
        "null": None,
        "empty": "",
        "whitespace_only": " \t\n\r\u00a0\u3000 ",
        "five_mb": ("a slow , overlong film that never ends . " * (FIVE_MB // 41 + 1))[:FIVE_MB],
        "control_chars": "\x00\x07 a good \x1b[31mfilm\x1b[0m \x7f\x08",
        "zero_width": "great\u200b film\u200c \u200dreally\ufeff",
        "zero_width_only": "\u200b\u200c\u200d\ufeff\u2060",
        "right_to_left": "\u202eالفيلم رائع جدا\u202c \u05d4\u05e1\u05e8\u05d8 \u05d8\u05d5\u05d1",
        "emoji_only": "\U0001F600\U0001F3AC\U0001F37F\U0001F44D",
        "html": "<p>Great <b>film</b>!</p><script>alert('x')</script>&amp; &lt;3",
        "max_length_tokens": at_limit,
        "max_length_plus_one_tokens": over_limit,
    }


def write_hostile_dump(path: Path, good_texts: list[str], tokenizer_json: str,
                       max_length: int, every: int = 50) -> Path:
    """A review dump where one row in ``every`` (2% by default) is hostile, cycling through
    `hostile_texts`; the others are ``good_texts`` in turn. Columns: ``review_id``, ``case``
    (``good`` or the hostile case's name), ``text`` (string)."""
    hostile = list(hostile_texts(tokenizer_json, max_length).items())
    rows = len(hostile) * every * 2  # every hostile case twice
    cases, texts = [], []
    for index in range(rows):
        if index % every == every // 2:
            case, text = hostile[(index // every) % len(hostile)]
        else:
            case, text = "good", good_texts[index % len(good_texts)]
        cases.append(case)
        texts.append(text)
    pq.write_table(pa.table({"review_id": [f"r{index:05d}" for index in range(rows)],
                             "case": cases, "text": pa.array(texts, pa.string())}), path,
                   row_group_size=500)
    return path


def write_typed_dumps(folder: Path, good_texts: list[str]) -> dict[str, Path]:
    """Dumps whose text column is not a string column (Parquet has no union type, so each is its
    own file and run): ``binary`` (valid UTF-8, invalid UTF-8, empty, null), ``numbers``
    (int64) and ``lists`` (list<string>); columns ``review_id``, ``case``, ``text``."""
    values = {
        "binary": (pa.binary(), {
            "good": [text.encode("utf-8") for text in good_texts[:4]],
            "invalid_utf8": [b"\xff\xfe good film", b"caf\xe9", b"\xc3\x28", b"\xed\xa0\x80"],
            "empty": [b"", b" \t "], "null": [None]}),
        "numbers": (pa.int64(), {"number": [0, 7, -3, 2 ** 62], "null": [None]}),
        "lists": (pa.list_(pa.string()), {"list": [["good", "film"], [], [good_texts[0]]],
                                          "null": [None]}),
    }
    paths = {}
    for kind, (text_type, by_case) in values.items():
        cases = [case for case, texts in by_case.items() for _ in texts]
        texts = [text for texts in by_case.values() for text in texts]
        paths[kind] = folder / f"{kind}.parquet"
        pq.write_table(pa.table({"review_id": [f"{kind}-{i}" for i in range(len(texts))],
                                 "case": cases, "text": pa.array(texts, text_type)}),
                       paths[kind])
    return paths


def sst2_sentences(shared_data: Path, count: int) -> list[str]:
    """The first ``count`` SST-2 validation sentences (real review text)."""
    import csv

    with open(shared_data / "sst2" / "validation.tsv", newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row["sentence"] for _, row in zip(range(count), rows)]


DUMP_ROWS, FILE_ROWS, ROW_GROUP_ROWS, BAD_EVERY = 2100, 700, 250, 150


def write_sst2_dump(folder: Path, shared_data: Path) -> list[Path]:
    """The first 2,100 SST-2 training sentences, every 150th replaced by a null, empty or
    whitespace-only text (14 bad rows), in 3 Parquet files of 700 rows (row groups of 250),
    with a ``row`` column; returns the files."""
    with open(shared_data / "sst2" / "train.tsv", newline="") as handle:
        sentences = [row["sentence"] for _, row in
                     zip(range(DUMP_ROWS), csv.DictReader(handle, delimiter="\t",
                                                          quoting=csv.QUOTE_NONE))]
    for bad in range(0, DUMP_ROWS, BAD_EVERY):
        sentences[bad] = [None, "", "   "][bad % 3]
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number, start in enumerate(range(0, DUMP_ROWS, FILE_ROWS)):
        files.append(folder / f"part-{number}.parquet")
        pq.write_table(pa.table({"text": sentences[start:start + FILE_ROWS],
                                 "row": list(range(start, start + FILE_ROWS))}),
                       files[-1], row_group_size=ROW_GROUP_ROWS)
    return files
