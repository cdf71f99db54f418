"""The review queue (issue #14): sampling counts and determinism, reading posts from scored
Parquet, stream JSON lines and raw dumps scored by a real bundle, and the round trips through
sentiment-sample's JSON lines, Label Studio's import and export JSON and Argilla's records back
to a file that training reads."""
from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipeline.errors import InputError
from beam_pipeline.model import RowResult, load_scoring_model
from beam_pipeline.records import row_id, scored_record, scored_schema, utc_now
from beam_pipeline.streaming.messages import to_json_bytes
from beam_pipeline.vocabulary import SCORED, UNSUPPORTED_LANGUAGE
from labelling import cli, formats, sources
from labelling.sampling import (
    RANDOM,
    STRATUM,
    UNCERTAIN,
    Candidate,
    allocate,
    sample,
    uncertain_count,
)
from testkit.dumps import GOOD_REVIEWS, write_bad_file, write_reviews
from training.data import load_labelled_set

LABELS = ["negative", "positive"]
VERSION = "0123abcd4567ef89"


def candidate(post_id: str, key: str, positive: float) -> Candidate:
    return Candidate(post_id, f"post {post_id}", key,
                     {"negative": 1 - positive, "positive": positive}, VERSION)


def result(positive: float | None, status: str = SCORED) -> RowResult:
    probabilities = None if positive is None else np.array([1 - positive, positive], np.float32)
    return RowResult(probabilities, None, status, "en", 0.99, "fingerprint", 6, False)


def write_scored_parquet(path: Path, input_path: str, rows: list[tuple[str, str, float | None]]
                         ) -> list[str]:
    """A batch run's scored output for input rows ``(text, brand, p_positive)`` (None: left
    unscored as unsupported_language); returns the ids the batch scorer gave them."""
    schema = scored_schema(pa.schema([("text", pa.string()), ("brand", pa.string())]), LABELS)
    ids = [row_id(input_path, index) for index in range(len(rows))]
    records = [scored_record({"text": text, "brand": brand}, record_id,
                             result(positive, SCORED if positive is not None
                                    else UNSUPPORTED_LANGUAGE), LABELS, VERSION, utc_now())
               for record_id, (text, brand, positive) in zip(ids, rows)]
    pq.write_table(pa.Table.from_pylist(records, schema=schema), path)
    return ids


SCORED_ROWS = [("great phone", "acme", 0.9), ("awful support", "acme", 0.2),
               ("battery died", "acme", 0.4), ("love it", "zenith", 0.8),
               ("never again", "zenith", 0.1), ("bonjour", "zenith", None),
               ("works fine", "zenith", 0.6)]
EXPECTED_PROBABILITIES = {text: {"negative": round(1 - positive, 4), "positive": positive}
                          for text, _, positive in SCORED_ROWS if positive is not None}


@pytest.fixture
def scored_output(tmp_path) -> tuple[Path, list[str]]:
    """``scored-part-00000.parquet`` (7 rows, one unsupported_language) beside an aggregates
    file that must be left out."""
    ids = write_scored_parquet(tmp_path / "scored-part-00000.parquet", "/dumps/posts.parquet",
                               SCORED_ROWS)
    pq.write_table(pa.table({"key": ["acme"], "posts": [6]}),
                   tmp_path / "scored-aggregates-part-00000.parquet")
    return tmp_path, ids


@pytest.fixture(scope="module")
def tiny_model(tiny_bundle_dir):
    return load_scoring_model(str(tiny_bundle_dir), device="cpu")


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(("sizes", "n", "expected"), [
    ([80, 15, 5], 20, [16, 3, 1]),      # proportional
    ([90, 9, 1], 10, [8, 1, 1]),        # the small strata get one each, the rest shares the rest
    ([50, 30, 20], 7, [4, 2, 1]),       # largest remainders: 3.5, 2.1, 1.4 -> 4, 2, 1
    ([5, 3, 1], 2, [1, 1, 0]),          # fewer posts than strata: the largest get one
    ([0, 4, 6], 5, [0, 2, 3]),          # an empty stratum gets none
    ([3, 2], 10, [3, 2]),               # fewer posts than asked: all of them
])
def test_allocate(sizes, n, expected):
    allocation = allocate(sizes, n)
    assert allocation == expected
    assert sum(allocation) == min(n, sum(sizes))


def test_stratified_sample_counts_per_key_and_predicted_label():
    candidates = ([candidate(f"a-neg-{i}", "acme", 0.1 + i / 100) for i in range(20)]
                  + [candidate(f"a-pos-{i}", "acme", 0.6 + i / 200) for i in range(60)]
                  + [candidate(f"z-pos-{i}", "zenith", 0.6 + i / 100) for i in range(20)])
    chosen = sample(candidates, 20, seed=7)
    strata = collections.Counter((s.candidate.key, s.candidate.predicted) for s in chosen)
    assert strata == {("acme", "negative"): 4, ("acme", "positive"): 12,
                      ("zenith", "positive"): 4}
    uncertain = collections.Counter((s.candidate.key, s.candidate.predicted) for s in chosen
                                    if s.because == UNCERTAIN)
    assert uncertain == {("acme", "negative"): 1, ("acme", "positive"): 3,
                         ("zenith", "positive"): 1}
    assert uncertain_count(12, 0.25) == 3
    assert len({s.candidate.id for s in chosen}) == 20


def test_uncertain_share_comes_from_the_least_confident():
    # one stratum, positive 0.51 ... 0.90 in shuffled order: 0.51 is p00, 0.52 p33, 0.53 p26
    candidates = [candidate(f"p{i:02d}", "acme", 0.51 + (i * 17 % 40) / 100) for i in range(40)]
    chosen = sample(candidates, 8, seed=3, uncertain_share=0.25)
    assert sorted(s.candidate.id for s in chosen if s.because == UNCERTAIN) == ["p00", "p33"]
    assert sum(s.because == STRATUM for s in chosen) == 6
    least = sample(candidates, 5, strategy="uncertain", seed=3)
    assert sorted(s.candidate.id for s in least) == ["p00", "p12", "p19", "p26", "p33"]


def test_the_same_seed_gives_the_same_sample_and_another_seed_another():
    candidates = [candidate(str(i), "ab"[i % 2], (i * 37 % 100) / 100) for i in range(200)]
    first = [s.candidate.id for s in sample(candidates, 30, seed=42)]
    assert first == [s.candidate.id for s in sample(candidates, 30, seed=42)]
    assert set(first) != {s.candidate.id for s in sample(candidates, 30, seed=43)}


def test_random_strategy_needs_no_probabilities():
    candidates = [Candidate(str(i), f"post {i}", None, {}) for i in range(50)]
    chosen = sample(candidates, 10, strategy=RANDOM, seed=1)
    assert len(chosen) == 10 and {s.because for s in chosen} == {RANDOM}
    assert [s.candidate.id for s in chosen] == [
        s.candidate.id for s in sample(candidates, 10, strategy=RANDOM, seed=1)]
    assert chosen[0].candidate.predicted is None


# --------------------------------------------------------------------------- sources


def test_posts_from_a_batch_runs_scored_output(scored_output):
    folder, ids = scored_output
    posts = sources.read_posts(str(folder / "scored-*.parquet"), key_column="brand")
    assert [c.id for c in posts.candidates] == ids[:5] + ids[6:]
    assert posts.skipped == {UNSUPPORTED_LANGUAGE: 1}
    assert posts.rows == 7
    assert [Path(path).name for path in posts.left_out] == ["scored-aggregates-part-00000.parquet"]
    first = posts.candidates[0]
    assert (first.text, first.key, first.predicted, first.model_version) == (
        "great phone", "acme", "positive", VERSION)
    assert first.probabilities == pytest.approx({"negative": 0.1, "positive": 0.9})


def test_posts_from_a_streams_output_files(tmp_path):
    rows = [({"text": "shares jump", "brand": "acme"}, "t-1", 0.9),
            ({"text": "profit warning", "attributes": {"brand": "zenith"}}, "t-2", 0.2),
            ({"text": "shares jump", "brand": "acme"}, "t-1", 0.9),      # delivered twice
            ({"text": "hola", "brand": "acme"}, "t-3", None)]
    lines = [to_json_bytes(scored_record(
        {**row, "publish_time": "2026-11-23T13:00:05Z", "message_id": f"m{index}"}, record_id,
        result(positive, SCORED if positive is not None else UNSUPPORTED_LANGUAGE), LABELS,
        VERSION, utc_now())) for index, (row, record_id, positive) in enumerate(rows)]
    window = "2026-11-23T13:00:00Z-2026-11-23T13:01:00Z-pane0"
    (tmp_path / f"out-{window}.jsonl").write_bytes(b"\n".join([*lines, b"{not json"]) + b"\n")
    (tmp_path / f"out-aggregates-{window}.jsonl").write_text(
        json.dumps({"type": "aggregate", "key": "acme", "posts": 2}) + "\n")
    posts = sources.read_posts(str(tmp_path / "out-*.jsonl"), key_column="brand")
    assert [(c.id, c.key, c.predicted) for c in posts.candidates] == [
        ("t-1", "acme", "positive"), ("t-2", "zenith", "negative")]
    assert posts.skipped == {sources.DUPLICATE_ID: 1, UNSUPPORTED_LANGUAGE: 1, "not_json": 1}
    assert len(posts.files) == 1 and len(posts.left_out) == 1


def test_posts_of_a_raw_dump_scored_with_a_bundle(tmp_path, tiny_model):
    dump = write_reviews(tmp_path / "dump.parquet", [*GOOD_REVIEWS, "   ", None])
    posts = sources.read_posts(str(dump), model=tiny_model)
    assert [c.id for c in posts.candidates] == [row_id(str(dump), i) for i in range(5)]
    assert posts.skipped == {"empty_text": 1, "null_text": 1}
    for post in posts.candidates:
        assert list(post.probabilities) == LABELS
        assert sum(post.probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert post.model_version == tiny_model.version()
    expected = tiny_model.predict(GOOD_REVIEWS)
    assert [c.probabilities["positive"] for c in posts.candidates] == pytest.approx(
        expected[:, 1].tolist(), abs=1e-6)


def test_a_raw_dump_without_a_model_is_sampled_only_at_random(tmp_path):
    dump = write_reviews(tmp_path / "dump.parquet", GOOD_REVIEWS, post_id=[10, 11, 12, 13, 14])
    with pytest.raises(InputError, match="no 'probabilities' column .* --model BUNDLE"):
        sources.read_posts(str(dump))
    posts = sources.read_posts(str(dump), id_column="post_id", need_probabilities=False)
    assert [c.id for c in posts.candidates] == ["10", "11", "12", "13", "14"]
    assert all(c.probabilities == {} for c in posts.candidates)


@pytest.mark.parametrize(("flags", "message"), [
    (["--input", "{tmp}/nothing-*.parquet"], "error: no file matches .*nothing-"),
    (["--input", "{tmp}/dump.parquet", "--text_column", "body", "--strategy", "random"],
     r"no text column 'body'; its columns are \['text', 'brand'\]"),
    (["--input", "{tmp}/dump.parquet", "--key_column", "shop", "--strategy", "random"],
     r"no key column 'shop'; its columns are \['text', 'brand'\]"),
    (["--input", "{tmp}/dump.parquet", "--id_column", "post_id", "--strategy", "random"],
     "no id column 'post_id'"),
    (["--input", "{tmp}/truncated.parquet", "--strategy", "random"],
     "error: cannot read .*truncated.parquet: "),
    (["--input", "{tmp}/notes.txt"], "notes.txt: not a Parquet"),
    (["--input", "{tmp}/empty.parquet", "--strategy", "random"],
     r"no post to sample among 2 rows of .*empty.parquet \(empty_text 1, null_text 1\)"),
    (["--input", "{tmp}/dump.parquet", "--strategy", "random", "--format", "label-studio"],
     "--format label-studio lists the model's labels as choices: pass --model BUNDLE"),
])
def test_sample_errors_are_one_line_and_exit_2(tmp_path, capsys, flags, message):
    write_reviews(tmp_path / "dump.parquet", GOOD_REVIEWS, brand=["acme"] * 5)
    write_bad_file(tmp_path / "truncated.parquet", "truncated")
    (tmp_path / "notes.txt").write_text("hello\n")
    write_reviews(tmp_path / "empty.parquet", ["  ", None])
    argv = [flag.format(tmp=tmp_path) for flag in flags] + ["--output", str(tmp_path / "o.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sentiment-sample: error: ") and len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert not list(tmp_path.glob("o.*"))


# --------------------------------------------------------------------------- CLI round trips


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sample_to_json_lines_and_back(scored_output, tmp_path, capsys):
    folder, ids = scored_output
    review = tmp_path / "review.jsonl"
    argv = ["--input", str(folder / "scored-*.parquet"), "--output", str(review), "--n", "4",
            "--key_column", "brand", "--seed", "5"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert err.startswith("sentiment-sample: read 7 rows from 1 file(s), 1 aggregates file(s) "
                          "left out: 6 candidates, skipped 1 (unsupported_language 1); "
                          f"wrote 4 posts to {review}: acme/negative 1, acme/positive 1, "
                          "zenith/negative 1, zenith/positive 1")
    records = read_jsonl(review)
    assert len(records) == 4
    assert all(list(record) == ["id", "text", "brand", "probabilities", "predicted",
                                "sampled_because", "model_version", "label"]
               for record in records)
    assert {record["id"] for record in records} <= set(ids)
    assert collections.Counter((r["brand"], r["predicted"]) for r in records) == {
        ("acme", "negative"): 1, ("acme", "positive"): 1, ("zenith", "negative"): 1,
        ("zenith", "positive"): 1}
    assert all(record["label"] == "" and record["model_version"] == VERSION
               for record in records)
    assert all(record["probabilities"] == EXPECTED_PROBABILITIES[record["text"]]
               for record in records)
    first_run = review.read_bytes()
    assert cli.main(argv) == 0 and review.read_bytes() == first_run   # same seed, same file
    capsys.readouterr()

    records[0]["label"], records[1]["label"] = "negative", "positive"
    review.write_text("".join(json.dumps(record) + "\n" for record in records))
    reviewed = tmp_path / "reviewed.jsonl"
    assert cli.labels_main(["--input", str(review), "--output", str(reviewed)]) == 0
    assert capsys.readouterr().err.startswith(
        f"sentiment-labels: read 4 jsonl records from {review}; 2 labelled posts (")
    assert read_jsonl(reviewed) == [
        {"brand": r["brand"], "id": r["id"], "text": r["text"], "label": r["label"]}
        for r in records[:2]]


def label_studio_export(tasks: list[dict]) -> list[dict]:
    """Label Studio's JSON export of the imported tasks after labelling: task 1 labelled
    positive, corrected to negative by a newer annotation (listed after it), then a newer still
    cancelled one; task 2 the same correction listed newest first; task 3 only cancelled; task 4
    never opened; task 5 labelled neutral, a label the model does not have."""

    def annotation(number: int, choice: str, minute: int, cancelled: bool = False) -> dict:
        return {"id": number, "completed_by": 1, "was_cancelled": cancelled,
                "ground_truth": False, "lead_time": 4.2, "task": number // 10,
                "created_at": f"2026-12-01T10:{minute:02d}:00.000000Z",
                "updated_at": f"2026-12-01T10:{minute:02d}:30.000000Z",
                "result": [] if cancelled else [{
                    "id": f"r{number}", "from_name": "sentiment", "to_name": "text",
                    "type": "choices", "origin": "manual", "value": {"choices": [choice]}}]}

    annotations = [[annotation(13, "positive", 0), annotation(11, "negative", 1),
                    annotation(12, "positive", 9, True)],
                   [annotation(22, "negative", 8), annotation(21, "positive", 2)],
                   [annotation(31, "positive", 3, True)],
                   [],
                   [annotation(51, "neutral", 5)]]
    return [{"id": index + 1, "project": 7, "data": task["data"], "annotations": done,
             "predictions": [{**task["predictions"][0], "id": index + 100, "task": index + 1}],
             "drafts": [], "created_at": "2026-12-01T09:00:00.000000Z",
             "updated_at": "2026-12-01T10:10:00.000000Z", "inner_id": index + 1,
             "total_annotations": len(done), "cancelled_annotations": 0}
            for index, (task, done) in enumerate(zip(tasks, annotations))]


def test_label_studio_round_trip_to_a_training_set(scored_output, tmp_path, capsys,
                                                   tiny_bundle_dir):
    folder, ids = scored_output
    tasks_path = tmp_path / "review.json"
    assert cli.main(["--input", str(folder / "scored-*.parquet"), "--output", str(tasks_path),
                     "--n", "5", "--key_column", "brand", "--format", "label-studio"]) == 0
    assert "(labelling config " in capsys.readouterr().err
    tasks = json.loads(tasks_path.read_text())
    assert len(tasks) == 5
    for task in tasks:
        assert set(task) == {"data", "predictions"}
        assert set(task["data"]) == {"id", "text", "brand"}
        [prediction] = task["predictions"]
        assert prediction["model_version"] == VERSION
        [choice] = prediction["result"]
        assert {key: choice[key] for key in ("from_name", "to_name", "type")} == {
            "from_name": "sentiment", "to_name": "text", "type": "choices"}
        probabilities = EXPECTED_PROBABILITIES[task["data"]["text"]]
        assert choice["value"] == {"choices": [max(probabilities, key=probabilities.get)]}
        assert prediction["score"] == max(probabilities.values())
    config = ElementTree.parse(tmp_path / "review.label_config.xml").getroot()
    assert config.tag == "View"
    assert config.find("Text").attrib == {"name": "text", "value": "$text"}
    choices = config.find("Choices")
    assert choices.attrib == {"name": "sentiment", "toName": "text", "choice": "single"}
    assert [choice.get("value") for choice in choices] == LABELS

    export = tmp_path / "project-7-at-2026-12-01.json"
    export.write_text(json.dumps(label_studio_export(tasks)))
    reviewed = tmp_path / "reviewed.jsonl"
    assert cli.labels_main(["--input", str(export), "--output", str(reviewed),
                            "--model", str(tiny_bundle_dir)]) == 0
    err = capsys.readouterr().err
    assert (f"read 5 label-studio records from {export}; 3 labelled posts "
            "(negative 2, neutral 1 not among the model's labels): wrote 3 to "
            f"{reviewed}; skipped 2 (not labelled yet 2)") in err
    records = read_jsonl(reviewed)
    assert [(r["id"], r["label"]) for r in records] == [
        (tasks[0]["data"]["id"], "negative"), (tasks[1]["data"]["id"], "negative"),
        (tasks[4]["data"]["id"], "neutral")]
    assert [r["brand"] for r in records] == [tasks[i]["data"]["brand"] for i in (0, 1, 4)]
    loaded = load_labelled_set(reviewed)
    assert loaded.label_names == ["negative", "neutral"]
    assert list(loaded.dataset["text"]) == [tasks[i]["data"]["text"] for i in (0, 1, 4)]
    assert list(loaded.dataset["label"]) == [0, 0, 1]


ARGILLA_RECORDS = [
    # id, brand, responses to question "label": (value, status)
    ("p1", "acme", [("positive", "submitted"), ("positive", "submitted"),
                    ("negative", "submitted")]),
    ("p2", "acme", [("positive", "submitted"), ("negative", "submitted")]),     # a tie
    ("p3", "zenith", [("negative", "draft")]),
    ("p4", "zenith", []),
    ("p5", "zenith", [("positive", "discarded"), ("negative", "submitted")]),
]


def argilla_nested(with_status: bool = True) -> list[dict]:
    """As ``dataset.records.to_json(path)`` writes them (Argilla 2.x)."""
    records = []
    for post_id, brand, answers in ARGILLA_RECORDS:
        responses = {"label": [{"value": value, "user_id": f"user-{index}",
                                **({"status": status} if with_status else {})}
                               for index, (value, status) in enumerate(answers)]}
        records.append({"id": post_id, "fields": {"text": f"post {post_id}"},
                        "metadata": {"brand": brand},
                        "suggestions": {"label": {"value": "positive", "score": 0.7,
                                                  "agent": VERSION}},
                        "responses": responses if answers else {}, "vectors": {},
                        "_server_id": f"server-{post_id}"})
    return records


def argilla_flattened() -> list[dict]:
    """As ``dataset.records.to_list(flatten=True)`` gives them (missing keys set to None)."""
    records = []
    for post_id, brand, answers in ARGILLA_RECORDS:
        record = {"id": post_id, "_server_id": f"server-{post_id}", "text": f"post {post_id}",
                  "brand": brand, "label.suggestion": "positive", "label.suggestion.score": 0.7,
                  "label.suggestion.agent": VERSION}
        record.update({"label.responses": [value for value, _ in answers],
                       "label.responses.users": [f"user-{i}" for i in range(len(answers))],
                       "label.responses.status": [status for _, status in answers]}
                      if answers else dict.fromkeys(
            ("label.responses", "label.responses.users", "label.responses.status")))
        records.append(record)
    return records


@pytest.mark.parametrize("shape", ["nested", "flattened", "flattened-jsonl"])
def test_argilla_records_to_labels(tmp_path, capsys, shape):
    path = tmp_path / "records.json"
    if shape == "nested":
        path.write_text(json.dumps(argilla_nested()))
    elif shape == "flattened":
        path.write_text(json.dumps(argilla_flattened()))
    else:
        path.write_text("".join(json.dumps(record) + "\n" for record in argilla_flattened()))
    reviewed = tmp_path / "reviewed.jsonl"
    assert cli.labels_main(["--input", str(path), "--output", str(reviewed)]) == 0
    assert ("2 labelled posts" in capsys.readouterr().err)
    assert read_jsonl(reviewed) == [
        {"brand": "acme", "id": "p1", "text": "post p1", "label": "positive"},
        {"brand": "zenith", "id": "p5", "text": "post p5", "label": "negative"}]
    labels = formats.read_labels(str(path))
    assert labels.format == "argilla"
    assert labels.skipped == {formats.DISAGREE: 1, formats.NOT_LABELLED: 2}


def test_argilla_responses_without_status_count_as_submitted(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps(argilla_nested(with_status=False)))
    labels = formats.read_labels(str(path), "argilla", label_question="label")
    assert [(post.id, post.label) for post in labels.posts] == [
        ("p1", "positive"), ("p3", "negative")]
    assert labels.skipped == {formats.DISAGREE: 2, formats.NOT_LABELLED: 1}


def test_labels_errors(tmp_path, capsys):
    unlabelled = tmp_path / "review.jsonl"
    unlabelled.write_text(json.dumps({"id": "1", "text": "post", "label": ""}) + "\n")
    assert cli.labels_main(["--input", str(unlabelled), "--output",
                            str(tmp_path / "out.jsonl")]) == 2
    assert "no labelled post among 1 jsonl records (not labelled yet 1)" in (
        capsys.readouterr().err)
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"sentence": "post", "stars": 4}]))
    assert cli.labels_main(["--input", str(other), "--output", str(tmp_path / "out.jsonl")]) == 2
    assert "cannot tell the format from the first record (['sentence', 'stars'])" in (
        capsys.readouterr().err)
    assert not (tmp_path / "out.jsonl").exists()


def test_holdout_keeps_labelled_posts_for_the_share_correction_apart(tmp_path, capsys):
    """``--holdout 0.4``: 40 % of each label's posts (rounded half up) go to the hold-out file,
    the rest to the training file, no post in both, the same draw for the same seed."""
    posts = [{"id": f"p{index}", "text": f"post {index}",
              "label": ("negative", "neutral", "positive")[index % 3] if index < 25 else ""}
             for index in range(30)]
    labelled = tmp_path / "review.jsonl"
    labelled.write_text("".join(json.dumps(post) + "\n" for post in posts))
    reviewed = tmp_path / "reviewed.jsonl"
    argv = ["--input", str(labelled), "--output", str(reviewed), "--holdout", "0.4"]
    assert cli.labels_main(argv) == 0
    held_path = tmp_path / "reviewed-holdout.jsonl"
    assert f"held out 10 for --quantification_dataset in {held_path}" in capsys.readouterr().err
    kept, held = read_jsonl(reviewed), read_jsonl(held_path)
    assert len(kept) == 15 and len(held) == 10
    assert collections.Counter(post["label"] for post in held) == {
        "negative": 4, "neutral": 3, "positive": 3}     # 9, 8, 8 labelled: 3.6, 3.2, 3.2 -> half up
    assert not {post["id"] for post in kept} & {post["id"] for post in held}
    first = held_path.read_bytes()
    assert cli.labels_main(argv) == 0 and held_path.read_bytes() == first
    assert cli.labels_main([*argv, "--seed", "7"]) == 0 and held_path.read_bytes() != first
    assert cli.labels_main([*argv[:-1], "1.5"]) == 2
