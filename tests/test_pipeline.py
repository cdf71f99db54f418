"""Batch scoring end to end on the DirectRunner (FnApiRunner) with the tiny bundle: Parquet in,
scored and dead-letter Parquet out, and the sentiment-score command."""
import datetime
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipeline.bundle import sha256_of
from beam_pipeline.cli import main
from beam_pipeline.model import load_scoring_model
from testkit.outputs import by_id, comparable, counters, expected_id, read_parts, score

GOOD_TEXTS = [f"review {i}: "
              + ("a charming , funny film . " if i % 2 else "dull and slow . ") * (i % 5 + 1)
              for i in range(40)]


@pytest.fixture(scope="module")
def review_dump(tmp_path_factory) -> tuple[Path, list[dict]]:
    """40 good rows and 3 bad ones (null, empty, whitespace) with typed pass-through columns,
    written in row groups of 10."""
    texts = GOOD_TEXTS[:13] + [None] + GOOD_TEXTS[13:27] + [""] + GOOD_TEXTS[27:] + [" \t\n"]
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    table = pa.table({
        "text": pa.array(texts, pa.string()),
        "stars": pa.array([i % 5 + 1 for i in range(len(texts))], pa.int32()),
        "created": pa.array([created + datetime.timedelta(hours=i) for i in range(len(texts))],
                            pa.timestamp("ms", tz="UTC")),
        "tags": pa.array([["a", str(i)] for i in range(len(texts))], pa.list_(pa.string())),
    })
    path = tmp_path_factory.mktemp("dump") / "reviews.parquet"
    pq.write_table(table, path, row_group_size=10)
    return path, table.to_pylist()


def test_end_to_end_schema_pass_through_ids_probabilities_and_counts(tiny_bundle_dir, review_dump,
                                                                     tmp_path):
    path, rows = review_dump
    run = score(tiny_bundle_dir, path, tmp_path, "--precision", "fp32", "--chunk_rows", "7")
    assert run.scored.schema == pa.schema([
        ("id", pa.string()), ("text", pa.string()), ("stars", pa.int32()),
        ("created", pa.timestamp("ms", tz="UTC")), ("tags", pa.list_(pa.string())),
        ("status", pa.string()), ("sentiment", pa.string()), ("score", pa.float32()),
        ("probabilities", pa.struct([("negative", pa.float32()), ("positive", pa.float32())])),
        ("language", pa.string()), ("language_confidence", pa.float32()),
        ("text_fingerprint", pa.string()),
        ("model_version", pa.string()), ("scored_at", pa.timestamp("us", tz="UTC"))])
    good = {expected_id(path, i): row for i, row in enumerate(rows) if row["text"] in GOOD_TEXTS}
    scored = by_id(run.scored)
    assert scored.keys() == good.keys() and run.scored.num_rows == 40
    model = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu")
    expected = dict(zip(GOOD_TEXTS, model.predict(GOOD_TEXTS)))
    for record_id, record in scored.items():
        assert {name: record[name] for name in rows[0]} == good[record_id]
        probabilities = np.array([record["probabilities"]["negative"],
                                  record["probabilities"]["positive"]])
        np.testing.assert_allclose(probabilities, expected[record["text"]], atol=1e-5)
        assert record["sentiment"] == ["negative", "positive"][int(np.argmax(probabilities))]
        assert record["score"] == pytest.approx(probabilities.max())
        assert record["model_version"] == sha256_of(str(tiny_bundle_dir / "model_fp32.onnx"))[:16]
    assert {(r["id"], r["reason"], r["stage"], r["stars"]) for r in run.dead.to_pylist()} == {
        (expected_id(path, 13), "null_text", "validation", rows[13]["stars"]),
        (expected_id(path, 28), "empty_text", "validation", rows[28]["stars"]),
        (expected_id(path, 42), "empty_text", "validation", rows[42]["stars"])}
    totals = counters(run.result)
    assert {name: totals[name] for name in totals if name.startswith(("rows_", "dead_"))} == {
        "rows_read": 43, "rows_scored": 40, "dead_lettered_null_text": 1,
        "dead_lettered_empty_text": 2, "dead_lettered_inference_error": 0}
    assert totals["num_inferences"] == 9  # chunks of <= 7 rows within row groups of 10


def test_every_bad_row_kind_lands_in_dead_letter_with_its_reason(tiny_bundle_dir, tmp_path):
    table = pa.table({
        "body": pa.array([b"fine film", b"\xff\xfe broken", None, b"", b"   ", b"ok",
                          "caf\u00e9 au lait".encode()], pa.binary()),
        "review_id": pa.array(["r1", "r2", "r3", "r4", "r5", None, "r7"]),
    })
    pq.write_table(table, tmp_path / "bytes.parquet")
    run = score(tiny_bundle_dir, tmp_path / "bytes.parquet", tmp_path / "out", "--text_column",
                "body", "--id_column", "review_id")
    assert sorted(run.scored.column("id").to_pylist()) == ["r1", "r7"]
    assert run.scored.column("body").to_pylist() == [b"fine film", "caf\u00e9 au lait".encode()]
    dead = {(r["review_id"], r["reason"]): r["body"] for r in run.dead.to_pylist()}
    assert dead == {("r2", "undecodable_bytes"): b"\xff\xfe broken", ("r3", "null_text"): None,
                    ("r4", "empty_text"): b"", ("r5", "empty_text"): b"   ",
                    (None, "missing_id"): b"ok"}
    assert counters(run.result)["rows_read"] == run.scored.num_rows + run.dead.num_rows == 7

    pq.write_table(pa.table({"text": [1, 2, 3]}), tmp_path / "numbers.parquet")
    run = score(tiny_bundle_dir, tmp_path / "numbers.parquet", tmp_path / "out2")
    assert run.scored is None
    assert run.dead.column("reason").to_pylist() == ["non_string_text"] * 3
    assert run.dead.column("text").to_pylist() == [1, 2, 3]


def test_long_text_chunk_mode_and_character_cap(tiny_bundle_dir, tmp_path):
    long_text = " ".join(GOOD_TEXTS)
    texts = [long_text, GOOD_TEXTS[3]]
    pq.write_table(pa.table({"text": texts}), tmp_path / "long.parquet")
    run = score(tiny_bundle_dir, tmp_path / "long.parquet", tmp_path / "out", "--precision",
                "fp32", "--long_text", "chunk", "--max_length", "32", "--max_chars", "400")
    model = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu",
                               max_length=32, long_text="chunk")
    expected = model.predict([long_text[:400].rstrip(), GOOD_TEXTS[3]])
    scored = {row["text"]: row["probabilities"] for row in run.scored.to_pylist()}
    assert scored.keys() == set(texts)  # the text passed through is the original, uncut
    for text, probabilities in zip(texts, expected):
        np.testing.assert_allclose([scored[text]["negative"], scored[text]["positive"]],
                                   probabilities, atol=1e-5)


def test_an_id_column_named_id_is_the_id_with_its_type(tiny_bundle_dir, tmp_path):
    pq.write_table(pa.table({"id": pa.array([7, 8, None], pa.int64()),
                             "text": ["good", "bad", "no id"]}), tmp_path / "ids.parquet")
    run = score(tiny_bundle_dir, tmp_path / "ids.parquet", tmp_path / "out", "--id_column", "id")
    assert run.scored.schema.names[:2] == ["id", "text"]
    assert run.scored.schema.field("id").type == pa.int64()
    assert sorted(run.scored.column("id").to_pylist()) == [7, 8]
    assert run.dead.to_pylist() == [{"id": None, "text": "no id", "reason": "missing_id",
                                     "stage": "validation", "error": None}]


@pytest.mark.integration  # the multi-process DirectRunner
def test_multi_process_direct_runner_writes_what_the_in_memory_one_writes(tiny_bundle_dir,
                                                                          review_dump, tmp_path):
    path, _ = review_dump
    single = score(tiny_bundle_dir, path, tmp_path / "one", "--chunk_rows", "8")
    multi = score(tiny_bundle_dir, path, tmp_path / "two", "--chunk_rows", "8",
                  direct_running_mode="multi_processing", direct_num_workers=2)
    assert comparable(multi.scored) == comparable(single.scored)
    assert comparable(multi.dead) == comparable(single.dead)


def test_command_prints_summary_and_uses_the_id_column(tiny_bundle_dir, review_dump, tmp_path,
                                                       capsys):
    path, rows = review_dump
    table = pq.read_table(path).append_column("key", pa.array([f"k{i}" for i in range(len(rows))]))
    pq.write_table(table, tmp_path / "keyed.parquet")
    output = tmp_path / "out" / "scored"
    assert main(["--input", str(tmp_path / "*.parquet"), "--output", str(output), "--model",
                 str(tiny_bundle_dir), "--id_column", "key"]) == 0
    printed = capsys.readouterr().out
    assert "43 rows read (Beam metrics) from 1 file(s)" in printed
    assert "scored                40" in printed
    assert "dead-lettered          3" in printed and "empty_text: 2, null_text: 1" in printed
    scored = read_parts(output)
    assert set(scored.column("id").to_pylist()) == {
        f"k{i}" for i, row in enumerate(rows) if row["text"] in GOOD_TEXTS}
    assert set(scored.column("model_version").to_pylist()) == {
        sha256_of(str(tiny_bundle_dir / "model_int8.onnx"))[:16]}  # auto on CPU: int8
    assert read_parts(tmp_path / "out" / "scored-dead-letter").num_rows == 3

    assert main(["--input", str(tmp_path / "*.parquet"), "--output", str(output), "--model",
                 str(tiny_bundle_dir)]) == 2
    assert "output of an earlier run is there" in capsys.readouterr().err


@pytest.fixture(scope="module")
def broken_bundles(tiny_bundle_dir, tmp_path_factory) -> dict[str, Path]:
    """Copies of the tiny bundle: one without fp16, one whose int8 file was cut short."""
    root = tmp_path_factory.mktemp("broken_bundles")
    no_fp16, truncated = root / "no_fp16", root / "truncated_int8"
    shutil.copytree(tiny_bundle_dir, no_fp16)
    manifest = json.loads((no_fp16 / "bundle.json").read_text())
    del manifest["precisions"]["fp16"]
    (no_fp16 / "bundle.json").write_text(json.dumps(manifest))
    shutil.copytree(tiny_bundle_dir, truncated)
    int8 = truncated / "model_int8.onnx"
    int8.write_bytes(int8.read_bytes()[:1000])
    return {"no_fp16": no_fp16, "truncated": truncated}


@pytest.mark.parametrize("columns, flags, message", [
    ({"review": ["x"]}, [], r"{input}: no text column 'text'; its columns are \['review'\]"),
    ({"text": ["x"]}, ["--id_column", "key"], r"no id column 'key'"),
    ({"text": ["x"], "sentiment": ["y"]}, [], r"input columns \['sentiment'\] clash"),
    ({"text": ["x"], "id": [7]}, [], r"input columns \['id'\] clash .* or pass --id_column id"),
    ({"text": ["x"]}, ["--precision", "fp16", "--model", "{no_fp16}"],
     r"precision 'fp16' not in bundle"),
    ({"text": ["x"]}, ["--model", "{truncated}"], r"model_int8\.onnx: sha256 mismatch"),
])
def test_command_refuses_bad_input_with_one_line_before_starting(tiny_bundle_dir, broken_bundles,
                                                                 tmp_path, capsys, columns, flags,
                                                                 message):
    input_path = tmp_path / "in.parquet"
    pq.write_table(pa.table(columns), input_path)
    flags = [flag.format(**broken_bundles) for flag in flags]
    code = main(["--input", str(input_path), "--output", str(tmp_path / "out"), "--model",
                 str(tiny_bundle_dir), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("sentiment-score: error: ")
    assert re.search(message.format(input=re.escape(str(input_path))), err)
    assert not list(tmp_path.glob("out*"))
