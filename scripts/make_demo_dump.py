"""Writes a sample review dump for the scoring demo: SST-2 validation sentences, some long reviews
made of many sentences, and a few bad rows.

    python scripts/make_demo_dump.py --sst2 ../shared/data/sst2 --output demo_output/reviews.parquet

Columns: ``review_id`` (string), ``product`` (one of three; the blender gets most of the negative
reviews, so its daily alert fires), ``reviewed_at`` (a timestamp over the week before
2026-11-30), ``text``, ``source`` (sst2_validation, long_review, bad_row) and ``label`` (the SST-2
label, 0 negative / 1 positive; null for bad rows). ``--sst2`` is a folder
holding ``validation.tsv``, or a hub dataset id (``glue/sst2``) read with `datasets`.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

LONG_REVIEWS = 24
SENTENCES_PER_LONG_REVIEW = 30
BAD_TEXTS = [None, "", "   \t ", None, "\n"]
PRODUCTS = ("kettle", "toaster", "blender")
WEEK_START = datetime.datetime(2026, 11, 23, tzinfo=datetime.UTC)


def validation_rows(source: str) -> list[tuple[str, int]]:
    """(sentence, label) rows of SST-2 validation, from a folder or the hub."""
    folder = Path(source)
    if folder.is_dir() or source.startswith((".", "/")):
        with open(folder / "validation.tsv", newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            return [(row["sentence"], int(row["label"])) for row in reader]
    from datasets import load_dataset

    name, _, config = source.partition("/")
    split = load_dataset(name, config or None, split="validation")
    return [(row["sentence"], int(row["label"])) for row in split]


def long_reviews(rows: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Reviews of many sentences sharing one label (mostly longer than 512 tokens)."""
    by_label = {label: [text for text, row_label in rows if row_label == label] for label in (0, 1)}
    reviews = []
    for number in range(LONG_REVIEWS):
        label = number % 2
        pool = by_label[label]
        start = (number // 2) * SENTENCES_PER_LONG_REVIEW % len(pool)
        sentences = (pool * 2)[start:start + SENTENCES_PER_LONG_REVIEW]
        reviews.append((" ".join(sentences), label))
    return reviews


def product_of(number: int, label: int | None) -> str:
    """Negative reviews go to the blender six times in ten, the rest evenly."""
    if label == 0 and number % 10 < 6:
        return PRODUCTS[2]
    return PRODUCTS[number % 3]


def build_dump(rows: list[tuple[str, int]]) -> pa.Table:
    """The demo table: validation sentences, long reviews, bad rows."""
    records = [(text, "sst2_validation", label) for text, label in rows]
    records += [(text, "long_review", label) for text, label in long_reviews(rows)]
    records += [(text, "bad_row", None) for text in BAD_TEXTS]
    return pa.table({
        "review_id": [f"r{number:05d}" for number in range(len(records))],
        "product": [product_of(number, label) for number, (_, _, label) in enumerate(records)],
        "reviewed_at": pa.array([WEEK_START + datetime.timedelta(minutes=number * 47 % 10080)
                                 for number in range(len(records))], pa.timestamp("us", "UTC")),
        "text": pa.array([text for text, _, _ in records], pa.string()),
        "source": [source for _, source, _ in records],
        "label": pa.array([label for _, _, label in records], pa.int8()),
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst2", default="../shared/data/sst2",
                        help="folder with validation.tsv, or hub id glue/sst2")
    parser.add_argument("--output", required=True, help="Parquet file to write")
    args = parser.parse_args(argv)
    try:
        rows = validation_rows(args.sst2)
    except Exception as error:  # the hub or the folder: one line either way
        print(f"make_demo_dump: cannot read SST-2 validation from {args.sst2}: {error}",
              file=sys.stderr)
        return 2
    table = build_dump(rows)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.output, row_group_size=256)
    counts = {source: table.column("source").to_pylist().count(source)
              for source in ("sst2_validation", "long_review", "bad_row")}
    print(f"make_demo_dump: wrote {table.num_rows} rows to {args.output} ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
