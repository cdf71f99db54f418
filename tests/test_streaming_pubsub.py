"""End to end: real ReadFromPubSub/WriteToPubSub and the real google-cloud-pubsub client over
gRPC on loopback (Google's emulator when gcloud is on the PATH, else tests/pubsub_server.py).

A few hundred messages, real financial tweets with bursts of malformed ones between them, go
through the streaming pipeline for a bounded time; every message must come out scored or
dead-lettered exactly once. Also: lost acknowledgements and republished payloads (records carry
the Pub/Sub message_id), ``--input_topic``, and the real ``sentiment-score --streaming`` command
hot-swapping its model (``--model_watch``), refusing a tampered bundle, dead-lettering rows ONNX
Runtime fails on, and keeping secrets in payloads out of its logs.
``PUBSUB_TEST_BACKEND=double`` runs them against the test double even where gcloud is installed
(about 1.5 min; with Google's emulator about 4.5 min, as its Pull holds for 30 s when a
subscription is empty and the DirectRunner waits for it).
"""
from __future__ import annotations

import base64
import collections
import contextlib
import json
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.errors import InputError
from beam_pipeline.model import load_scoring_model
from beam_pipeline.streaming.local_pubsub import PubSubTestServer, preferred_backend, pubsub_backend
from beam_pipeline.streaming.pipeline import build_streaming_pipeline, plan_streaming_job
from testkit.models import copy_bundle, texts_of_token_lengths
from testkit.streams import SECRET, StreamingCommand, Streams, malformed_messages, tweets

# Pub/Sub end to end: the real command and pipeline against a Pub/Sub server
pytestmark = pytest.mark.integration

PROJECT = "test-project"
VALID_MESSAGES = 200
RUN_LIMIT_S = 120


@pytest.fixture(scope="module")
def pubsub():
    with pubsub_backend(preferred_backend(), PROJECT) as host_port:
        yield host_port


def streaming_options(model: str, streams: Streams, **extra) -> PipelineOptions:
    settings = dict(
        runner="BundleBasedDirectRunner", streaming=True, model=model,
        input_subscription=streams.subscriptions["in"], output_topic=streams.topics["scored"],
        dead_letter_topic=streams.topics["dead"], aggregates_topic=streams.topics["aggregates"],
        key_attribute="brand", window_seconds=2.0, allowed_lateness_seconds=600,
        alert_negative_share=0.0, alert_min_posts=1, max_message_bytes=2048,
        pubsub_readers=2) | extra
    return PipelineOptions(flags=[], **settings)


@contextlib.contextmanager
def running(options: PipelineOptions):
    """Runs the streaming pipeline in this process until the block ends."""
    pipeline = beam.Pipeline(options=options)
    build_streaming_pipeline(pipeline, plan_streaming_job(options))
    result = pipeline.run()
    try:
        yield result
    finally:
        result.cancel()


def test_every_message_is_scored_or_dead_lettered_exactly_once(pubsub, tiny_bundle_dir,
                                                               shared_data, tmp_path, dofn_specs):
    """Bursts of malformed messages (3 x 44, six kinds) between groups of 20 real tweets; with
    Beam's DoFn inspection as it is, and with ``--cache_dofn_specs``' patch."""
    streams = Streams(PROJECT, f"flood-{dofn_specs}")
    malformed = malformed_messages(scale=3)
    bursts = [malformed[start::10] for start in range(10)]  # each burst mixes every kind
    valid, message_ids, expected_reasons = {}, {}, {}  # dead letters: id -> reason
    for index, text in enumerate(tweets(shared_data, VALID_MESSAGES)):
        fields = {"text": text, "id": f"tweet-{index}", "lang": "en"}
        valid[fields["id"]] = fields
        [message_ids[fields["id"]]] = streams.publish([json.dumps(fields).encode("utf-8")],
                                                      brand=["acme", "globex"][index % 2])
        if index % 20 == 19:
            burst = bursts[index // 20]
            for (_, reason, own_id), message_id in zip(
                    burst, streams.publish([payload for payload, _, _ in burst])):
                expected_reasons[own_id or message_id] = reason
                message_ids[own_id or message_id] = message_id
    assert len(expected_reasons) == len(malformed) == 132

    files = tmp_path / "files" / "scored"

    def complete() -> bool:
        return (len(streams.received["scored"]) + len(streams.received["dead"])
                >= VALID_MESSAGES + len(expected_reasons)
                and sum(latest["reach"] for latest in latest_panes(
                    streams.received["aggregates"]).values()) >= VALID_MESSAGES
                and len(file_records(files.parent)) >= VALID_MESSAGES)

    def pane_ids(records) -> list[tuple]:
        return sorted((r["type"], r["key"], r["window_start"], r["pane_index"], r["reach"])
                      for r in records)

    def topic_panes_in_files() -> bool:  # the two sinks of one PCollection, written apart
        return set(pane_ids(streams.records("aggregates"))) <= set(
            pane_ids(file_records(files.parent, "aggregates")))

    with running(streaming_options(str(tiny_bundle_dir), streams, output_files=str(files))):
        streams.collect_until(complete, RUN_LIMIT_S, kinds=Streams.OUTPUTS, settle_s=2)
        streams.collect_until(topic_panes_in_files, 30, kinds=Streams.OUTPUTS)
    streams.close()

    scored, scored_records = streams.received["scored"], streams.records("scored")
    assert sorted(record["id"] for record in scored_records) == sorted(valid)
    for message, record in zip(scored, scored_records):
        source = valid[record["id"]]
        assert record["text"] == source["text"] and record["lang"] == "en"
        assert record["message_id"] == message_ids[record["id"]]
        assert record["attributes"] == dict(message.attributes)
        assert record["attributes"]["brand"] in ("acme", "globex")
        assert record["sentiment"] in ("negative", "positive")
        assert set(record["probabilities"]) == {"negative", "positive"}
        assert record["score"] == max(record["probabilities"].values())
    dead_records = streams.records("dead")
    assert sorted((record["id"], record["reason"]) for record in dead_records) == \
        sorted(expected_reasons.items())
    assert all(record["message_id"] == message_ids[record["id"]] for record in dead_records)

    # Every record is within the allowed lateness (the DirectRunner's Pub/Sub watermark is the
    # wall clock, so the backlog arrives late): each window's latest pane counts all its records.
    monitoring = streams.received["aggregates"]
    latest = latest_panes(monitoring)
    assert {key for key, _ in latest} == {"acme", "globex"}
    assert sum(pane["reach"] for pane in latest.values()) == VALID_MESSAGES
    for pane in latest.values():
        assert sum(pane["counts"].values()) == pane["posts"] <= pane["reach"]
        assert pane["unsupported_language"] == 0
    panes = [json.loads(message.data) for message in monitoring]
    aggregates = [pane for pane in panes if pane["type"] == "aggregate"]
    alerts = [pane for pane in panes if pane["type"] == "alert"]
    assert sorted((a["key"], a["window_start"], a["pane_index"]) for a in alerts) == sorted(
        (a["key"], a["window_start"], a["pane_index"]) for a in aggregates
        if a["negative_share"] > 0)

    assert sorted(record["id"] for record in file_records(files.parent)) == sorted(valid)
    # the aggregate files (what sentiment-report renders) hold what the aggregates topic got
    assert pane_ids(file_records(files.parent, "aggregates")) == pane_ids(panes)


LOST_ACKS = 5


def test_redelivered_and_republished_messages_carry_their_message_id(tiny_bundle_dir,
                                                                     monkeypatch):
    """At-least-once delivery, on the test double (Google's emulator cannot lose an ack): the
    pipeline's first 5 acknowledgements are lost, so those messages come again after the 10 s
    ack deadline with the same message_id and are scored twice; a payload published twice is two
    messages (two message_ids, one payload id). De-duplicating on message_id leaves every
    published message exactly once."""
    server = PubSubTestServer()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", server.start())
    try:
        streams = Streams(PROJECT, "duplicates")
        server.lose_acks(streams.subscriptions["in"], LOST_ACKS)
        payloads = [json.dumps({"text": f"message {i}", "id": f"m-{i}"}).encode()
                    for i in range(20)]
        published = streams.publish(payloads + payloads[:5])
        expected = len(published) + LOST_ACKS
        with running(streaming_options(str(tiny_bundle_dir), streams, pubsub_readers=1)):
            streams.collect_until(lambda: len(streams.received["scored"]) >= expected,
                                  RUN_LIMIT_S, kinds=("scored",), settle_s=2)
        streams.close()
    finally:
        server.stop()
    records = streams.records("scored")
    per_message = collections.Counter(record["message_id"] for record in records)
    assert set(per_message) == set(published)
    assert sorted(per_message.values()) == [1] * (len(published) - LOST_ACKS) + [2] * LOST_ACKS
    message_ids_per_payload = collections.defaultdict(set)
    for record in records:
        message_ids_per_payload[record["id"]].add(record["message_id"])
    assert {payload_id: len(ids) for payload_id, ids in message_ids_per_payload.items()} == \
        {f"m-{i}": 2 if i < 5 else 1 for i in range(20)}
    assert streams.received["dead"] == []


def test_input_topic_scores_what_is_published_once_its_subscription_exists(pubsub,
                                                                           tiny_bundle_dir):
    """--input_topic reads through a subscription the pipeline creates when it starts; as in
    Pub/Sub, messages published before it exists are not delivered, so the test publishes probes
    until one comes out scored, then the messages it checks."""
    streams = Streams(PROJECT, "from-topic")
    options = streaming_options(str(tiny_bundle_dir), streams, input_subscription=None,
                                input_topic=streams.topics["in"], pubsub_readers=1)
    expected = {f"t-{i}": f"topic message {i}" for i in range(30)}
    with running(options):
        probes = 0
        while not streams.records("scored") and probes < 60:
            streams.publish([json.dumps({"text": "probe", "id": f"probe-{probes}"}).encode()])
            probes += 1
            streams.drain("scored")
        assert streams.records("scored"), "the pipeline's subscription never delivered a probe"
        streams.publish([json.dumps({"text": text, "id": key}).encode()
                         for key, text in expected.items()])
        streams.collect_until(
            lambda: len([r for r in streams.records("scored") if r["id"] in expected])
            >= len(expected), RUN_LIMIT_S, kinds=("scored",), settle_s=2)
    streams.close()
    records = streams.records("scored")
    assert sorted(r["id"] for r in records if r["id"] in expected) == sorted(expected)
    assert all(r["text"] == expected[r["id"]] for r in records if r["id"] in expected)
    probe_ids = [r["id"] for r in records if r["id"] not in expected]
    assert len(set(probe_ids)) == len(probe_ids) <= probes


SWAP_INTERVAL_S = 1.0


@pytest.fixture(scope="module")
def watched_run(pubsub, tiny_bundle_dir, short_position_bundle, tmp_path_factory):
    """The real command, with --model_watch, fed in three phases: first with its start bundle (a
    BERT with 16 positions, scored at --max_length 64, so ONNX Runtime fails on long texts);
    then after a new bundle (the tiny BERT, 512 positions) was written to the watched folder;
    then after a tampered bundle was written there. Each phase holds short and long texts, a
    scored message with a secret in a passed-through field, and malformed messages holding the
    secret; the next phase starts once every message of the last one came out."""
    work = tmp_path_factory.mktemp("watched_run")
    start_bundle = short_position_bundle
    watched = work / "watched"
    watched.mkdir()
    streams = Streams(PROJECT, "watched")
    command = StreamingCommand(
        streams, PROJECT, str(start_bundle), work / "command.log",
        "--model_watch", f"{watched}/*", "--model_watch_interval_s", str(SWAP_INTERVAL_S),
        "--max_length", "64", "--max_message_bytes", "2048", "--window_seconds", "60",
        "--cache_dofn_specs")  # the opt-in runner patch, through the command's own path
    tokenizer = (start_bundle / "tokenizer.json").read_text()
    phases = {}
    try:
        for phase, new_bundle in (("start", None), ("swapped", watched / "v2"),
                                  ("refused", watched / "v3-tampered")):
            if new_bundle is not None:
                copy_bundle(tiny_bundle_dir, new_bundle, tamper=phase == "refused")
                time.sleep(SWAP_INTERVAL_S + 0.5)
            short = texts_of_token_lengths(tokenizer, [4, 6, 8, 10, 12, 14])
            long = texts_of_token_lengths(tokenizer, [30, 50])
            messages = ([{"text": text, "id": f"{phase}-short-{i}"} for i, text in enumerate(short)]
                        + [{"text": text, "id": f"{phase}-long-{i}"} for i, text in enumerate(long)]
                        + [{"text": f"{long[0]} {SECRET}", "id": f"{phase}-long-secret"},
                           {"text": "film", "id": f"{phase}-field-secret", "api_key": SECRET}])
            payloads = [json.dumps(message).encode() for message in messages] + [
                f"token={SECRET}".encode(),
                json.dumps({"body": "no text", "api_key": SECRET}).encode(),
                json.dumps({"text": "   ", "password": SECRET}).encode(),
                json.dumps({"text": "x" * 3000 + SECRET}).encode()]
            phases[phase] = {"messages": messages, "message_ids": streams.publish(payloads)}
            published = sum(len(p["message_ids"]) for p in phases.values())
            assert streams.collect_until(
                lambda published=published: len(streams.received["scored"])
                + len(streams.received["dead"]) >= published,
                RUN_LIMIT_S), f"phase {phase}: not every message came out"
            phases[phase]["records"] = {kind: streams.records(kind) for kind in ("scored", "dead")}
        streams.collect_until(lambda: False, 0, settle_s=2)  # anything more is a duplicate
    finally:
        exit_status = command.stop()
        streams.close()
    return {"phases": phases, "streams": streams, "log": command.log(), "exit": exit_status,
            "watched": watched, "versions": {
                "start": load_scoring_model(str(start_bundle), device="cpu").version(),
                "new": load_scoring_model(str(tiny_bundle_dir), device="cpu").version()}}


def _phase_records(run, phase: str, kind: str) -> list[dict]:
    """The records of ``kind`` whose message was published in ``phase``."""
    ids = set(run["phases"][phase]["message_ids"])
    return [record for record in run["streams"].records(kind) if record["message_id"] in ids]


def test_a_new_bundle_scores_without_restart_and_a_tampered_one_is_refused(watched_run):
    versions = watched_run["versions"]
    assert versions["start"] != versions["new"]
    every_id = [message_id for phase in watched_run["phases"].values()
                for message_id in phase["message_ids"]]
    out = [record["message_id"] for kind in ("scored", "dead")
           for record in watched_run["streams"].records(kind)]
    assert sorted(out) == sorted(every_id)  # none lost, none twice
    for phase, version in (("start", versions["start"]), ("swapped", versions["new"]),
                           ("refused", versions["new"])):
        scored = _phase_records(watched_run, phase, "scored")
        assert scored and {record["model_version"] for record in scored} == {version}
    log, watched = watched_run["log"], watched_run["watched"]
    assert "--cache_dofn_specs: the DirectRunner inspects each DoFn class once" in log
    assert f"model watch: now scoring with bundle {watched / 'v2'}, model version " \
           f"{versions['new']} (was {versions['start']})" in log
    [refusal] = [line for line in log.splitlines() if "refused bundle" in line]
    assert refusal.startswith(f"ERROR beam_pipeline.streaming.model_watch: model watch: refused "
                              f"bundle {watched / 'v3-tampered'} (BundleError: ")
    assert "sha256 mismatch" in refusal and "Traceback" not in log
    assert watched_run["exit"] == 0


def test_rows_onnx_runtime_fails_on_are_dead_lettered_not_lost(watched_run):
    """Long texts fail in ONNX Runtime with the start bundle (16 positions): dead-lettered with
    the error; the same texts are scored once the new bundle (512 positions) is in."""
    failed = _phase_records(watched_run, "start", "dead")
    long_ids = {m["id"] for m in watched_run["phases"]["start"]["messages"] if "long" in m["id"]}
    inference_errors = [record for record in failed if record["reason"] == "inference_error"]
    assert {record["id"] for record in inference_errors} == long_ids
    for record in inference_errors:
        assert record["stage"] == "inference"
        assert record["error"].startswith("Fail: [ONNXRuntimeError]")
    assert {r["id"] for r in _phase_records(watched_run, "start", "scored")} == {
        m["id"] for m in watched_run["phases"]["start"]["messages"]} - long_ids
    assert {r["id"] for r in _phase_records(watched_run, "swapped", "scored")} == {
        m["id"] for m in watched_run["phases"]["swapped"]["messages"]}


def test_secrets_reach_the_topics_but_no_log_line(watched_run):
    log = watched_run["log"]
    assert "dead-lettered: not_json" in log  # the pipeline did log about these messages
    assert SECRET not in log
    dead = _phase_records(watched_run, "start", "dead")
    reasons = collections.Counter(record["reason"] for record in dead)
    assert reasons == {"inference_error": 3, "not_json": 1, "missing_text_field": 1,
                       "empty_text": 1, "too_large": 1}
    holding_secret = {record["reason"] for record in dead
                      if SECRET in json.dumps(record)
                      or SECRET.encode() in base64.b64decode(record.get("payload_base64", ""))}
    assert holding_secret == {"inference_error", "not_json", "missing_text_field", "empty_text"}
    scored = _phase_records(watched_run, "start", "scored")
    assert [r["api_key"] for r in scored if r["id"] == "start-field-secret"] == [SECRET]


def latest_panes(messages) -> dict[tuple[str, str], dict]:
    """The aggregate with the highest pane index of each (key, window start)."""
    latest = {}
    for record in (json.loads(message.data) for message in messages):
        slot = (record["key"], record["window_start"])
        if record["type"] == "aggregate" and (
                slot not in latest or record["pane_index"] > latest[slot]["pane_index"]):
            latest[slot] = record
    return latest


def file_records(folder, kind: str = "scored") -> list[dict]:
    """Records in the finished JSON-lines files (not temporary ones): the scored records, or
    with kind ``aggregates`` the aggregates and alerts."""
    return [json.loads(line) for path in folder.glob("scored-*.jsonl")
            if path.name.startswith("scored-aggregates-") == (kind == "aggregates")
            for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize("changes, message", [
    ({"input_subscription": None}, "exactly one of --input_subscription and --input_topic"),
    ({"output_topic": None}, "missing required flags: --output_topic"),
    ({"output_topic": "topics/x"}, "topic"),
    ({"window_seconds": 0}, "window_seconds"),
    ({"negative_label": "bearish"}, "not one of the model's labels"),
    ({"runner": "FnApiRunner"}, "does not run on the FnApiRunner"),
    ({"runner": "DataflowRunner", "cache_dofn_specs": True},
     "--cache_dofn_specs is for the DirectRunner"),
])
def test_bad_flags_fail_before_the_run_with_one_line(tiny_bundle_dir, changes, message):
    settings = dict(runner="BundleBasedDirectRunner", model=str(tiny_bundle_dir),
                    input_subscription=f"projects/{PROJECT}/subscriptions/in",
                    output_topic=f"projects/{PROJECT}/topics/out") | changes
    with pytest.raises(InputError, match=message) as caught:
        plan_streaming_job(PipelineOptions(flags=[], **settings))
    assert "\n" not in str(caught.value)
