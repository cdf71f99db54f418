"""A hostile review dump through the real command (a `sentiment-score` subprocess, tiny bundle):
the job finishes, every row read is scored or dead-lettered with its reason, and scored rows
carry what the model gives for the same cleaned text.

Parquet has no union type, so values that are not strings (numbers, lists, binary with invalid
UTF-8) come in their own files with their own text column type, each scored by its own run."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipeline.model import load_scoring_model
from beam_pipeline.validation import clean_text, default_max_chars
from testkit.dumps import FIVE_MB, sst2_sentences, write_hostile_dump, write_typed_dumps

SENTIMENT_SCORE = str(Path(sys.executable).parent / "sentiment-score")
EXPECTED_REASON = {"null": "null_text", "empty": "empty_text", "whitespace_only": "empty_text",
                   "zero_width_only": "empty_text", "invalid_utf8": "undecodable_bytes",
                   "number": "non_string_text", "list": "non_string_text"}


@pytest.fixture(scope="module")
def dumps(tiny_bundle_dir, shared_data, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    good = sst2_sentences(shared_data, 300)
    manifest = json.loads((tiny_bundle_dir / "bundle.json").read_text())
    hostile = write_hostile_dump(folder / "hostile.parquet", good,
                                 (tiny_bundle_dir / "tokenizer.json").read_text(),
                                 manifest["max_length"])
    return {"hostile": hostile, **write_typed_dumps(folder, good)}


@pytest.fixture(scope="module")
def runs(dumps, tiny_bundle_dir, tmp_path_factory) -> dict[str, tuple]:
    """Each dump scored by its own `sentiment-score` process (run side by side):
    kind -> (completed process, scored table or None, dead-letter table or None)."""
    out = tmp_path_factory.mktemp("hostile_out")
    processes = {kind: subprocess.Popen(
        [SENTIMENT_SCORE, "--input", str(path), "--output", str(out / kind), "--model",
         str(tiny_bundle_dir), "--precision", "fp32", "--id_column", "review_id"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for kind, path in dumps.items()}
    results = {}
    for kind, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        tables = [[pq.read_table(f) for f in sorted(out.glob(f"{kind}{suffix}-part-*"))]
                  for suffix in ("", "-dead-letter")]
        results[kind] = (process.returncode, stdout, stderr,
                         *(pa.concat_tables(parts) if parts else None for parts in tables))
    return results


@pytest.mark.parametrize("kind", ["hostile", "binary", "numbers", "lists"])
def test_every_row_is_scored_or_dead_lettered_with_its_reason(kind, dumps, runs):
    code, stdout, stderr, scored, dead = runs[kind]
    assert code == 0, stderr[-3000:]
    rows = pq.read_table(dumps[kind]).to_pylist()
    read = int(re.search(r"([\d,]+) rows read \(Beam metrics\)", stdout).group(1).replace(",", ""))
    scored_rows = scored.to_pylist() if scored else []
    dead_rows = dead.to_pylist() if dead else []
    assert read == len(rows) == len(scored_rows) + len(dead_rows)
    assert sorted(r["review_id"] for r in scored_rows + dead_rows) == sorted(
        r["review_id"] for r in rows)
    original = {row["review_id"]: row for row in rows}
    for record in dead_rows:
        assert EXPECTED_REASON[record["case"]] == record["reason"]
        assert record["stage"] == "validation"
        assert record["text"] == original[record["review_id"]]["text"]  # kept as read
    for record in scored_rows:
        assert record["case"] not in EXPECTED_REASON
        assert record["text"] == original[record["review_id"]]["text"]  # passed through whole
    assert "WARNING" not in stdout


def test_scored_rows_carry_what_the_model_gives_for_the_cleaned_text(tiny_bundle_dir, runs):
    model = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu")
    max_chars = default_max_chars(model.bundle.max_length)
    scored = runs["hostile"][3].to_pylist() + runs["binary"][3].to_pylist()
    cleaned = [clean_text(record["text"], max_chars)[0] for record in scored]
    expected = model.predict(cleaned)
    got = np.array([[r["probabilities"]["negative"], r["probabilities"]["positive"]]
                    for r in scored])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    cases = {record["case"] for record in scored}
    assert {"five_mb", "control_chars", "zero_width", "right_to_left", "emoji_only", "html",
            "max_length_tokens", "max_length_plus_one_tokens", "good"} <= cases
    five_mb = [text for record, text in zip(scored, cleaned) if record["case"] == "five_mb"]
    assert len(five_mb) == 2 and all(len(text) <= max_chars < FIVE_MB for text in five_mb)
