"""End to end: real ReadFromPubSub/WriteToPubSub and the real google-cloud-pubsub client over
gRPC on loopback (Google's emulator when gcloud is on the PATH, else tests/pubsub_server.py).

A few hundred messages, real financial tweets plus malformed ones, go through the streaming
pipeline for a bounded time; every message must come out scored or dead-lettered exactly once.
"""
from __future__ import annotations

import csv
import json
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from google.cloud import pubsub_v1

from beam_pipeline import streaming_messages as sm
from beam_pipeline.streaming import build_streaming_pipeline, plan_streaming_job
from beam_pipeline.validation import EMPTY_TEXT, InputError, UNDECODABLE_BYTES
from pubsub_server import preferred_backend, pubsub_backend

PROJECT = "test-project"
VALID_MESSAGES = 200
RUN_LIMIT_S = 120


@pytest.fixture(scope="module")
def pubsub():
    with pubsub_backend(preferred_backend(), PROJECT) as host_port:
        yield host_port


def tweets(shared_data, count: int) -> list[str]:
    with open(shared_data / "financial_tweets" / "validation.csv", newline="",
              encoding="utf-8") as handle:
        return [row["text"] for _, row in zip(range(count), csv.DictReader(handle))]


def malformed_messages() -> list[tuple[bytes, str, str | None]]:
    """(payload, expected dead-letter reason, the payload's own id when it has one)."""
    return ([(b"not json %d" % i, sm.NOT_JSON, None) for i in range(10)]
            + [(b'{"text": "caf\xe9 %d"}' % i, UNDECODABLE_BYTES, None) for i in range(8)]
            + [(json.dumps({"body": f"no text {i}"}).encode(), sm.MISSING_TEXT_FIELD, None)
               for i in range(8)]
            + [(json.dumps({"text": "x" * 3000, "n": i}).encode(), sm.TOO_LARGE, None)
               for i in range(6)]
            + [(json.dumps({"text": "  ", "id": f"empty-{i}"}).encode(), EMPTY_TEXT, f"empty-{i}")
               for i in range(6)]
            + [(b"[1, 2, %d]" % i, sm.NOT_JSON_OBJECT, None) for i in range(6)])


def streaming_options(model: str, topics: dict[str, str], subscription: str,
                      **extra) -> PipelineOptions:
    return PipelineOptions(
        flags=[], runner="BundleBasedDirectRunner", streaming=True, model=model,
        input_subscription=subscription, output_topic=topics["scored"],
        dead_letter_topic=topics["dead"], aggregates_topic=topics["aggregates"],
        key_attribute="brand", window_seconds=2, allowed_lateness_seconds=600,
        alert_negative_share=0.0, alert_min_count=1, max_message_bytes=2048,
        max_batch_duration_secs=1, pubsub_readers=2, **extra)


def drain(subscriber, subscription: str) -> list:
    try:
        response = subscriber.pull(subscription=subscription, max_messages=500, timeout=2)
    except Exception:  # DeadlineExceeded: Google's emulator holds empty pulls open
        return []
    if response.received_messages:
        subscriber.acknowledge(subscription=subscription,
                               ack_ids=[m.ack_id for m in response.received_messages])
    return [m.message for m in response.received_messages]


def test_every_message_is_scored_or_dead_lettered_exactly_once(pubsub, tiny_bundle_dir,
                                                               shared_data, tmp_path):
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topics = {name: publisher.create_topic(name=publisher.topic_path(PROJECT, name)).name
              for name in ("tweets", "scored", "dead", "aggregates")}
    subscriptions = {}
    for name, topic in topics.items():
        subscriptions[name] = subscriber.subscription_path(PROJECT, f"{name}-sub")
        subscriber.create_subscription(name=subscriptions[name], topic=topic)

    valid = {}
    for index, text in enumerate(tweets(shared_data, VALID_MESSAGES)):
        fields = {"text": text, "id": f"tweet-{index}", "lang": "en"}
        valid[fields["id"]] = fields
        publisher.publish(topics["tweets"], json.dumps(fields).encode("utf-8"),
                          brand=["acme", "globex"][index % 2])
    expected_reasons = {}  # dead-letter id (own id, else message id) -> reason
    for payload, reason, own_id in malformed_messages():
        message_id = publisher.publish(topics["tweets"], payload).result(timeout=30)
        expected_reasons[own_id or message_id] = reason

    files = tmp_path / "files" / "scored"
    pipeline = beam.Pipeline(options=streaming_options(
        str(tiny_bundle_dir), topics, subscriptions["tweets"], output_files=str(files)))
    build_streaming_pipeline(pipeline)
    result = pipeline.run()
    scored, dead, monitoring = [], [], []

    def complete() -> bool:
        return (len(scored) + len(dead) >= VALID_MESSAGES + len(expected_reasons)
                and sum(latest["count"] for latest in latest_panes(monitoring).values())
                >= VALID_MESSAGES
                and len(file_records(files.parent)) >= VALID_MESSAGES)

    deadline = time.monotonic() + RUN_LIMIT_S
    try:
        while not complete() and time.monotonic() < deadline:
            scored += drain(subscriber, subscriptions["scored"])
            dead += drain(subscriber, subscriptions["dead"])
            monitoring += drain(subscriber, subscriptions["aggregates"])
        time.sleep(2)  # anything arriving now would be a duplicate
        scored += drain(subscriber, subscriptions["scored"])
        dead += drain(subscriber, subscriptions["dead"])
    finally:
        result.cancel()
        subscriber.close()

    scored_records = [json.loads(message.data) for message in scored]
    assert sorted(record["id"] for record in scored_records) == sorted(valid)
    for message, record in zip(scored, scored_records):
        source = valid[record["id"]]
        assert record["text"] == source["text"] and record["lang"] == "en"
        assert record["attributes"] == dict(message.attributes)
        assert record["attributes"]["brand"] in ("acme", "globex")
        assert record["sentiment"] in ("negative", "positive")
        assert set(record["probabilities"]) == {"negative", "positive"}
        assert record["score"] == max(record["probabilities"].values())
    dead_records = [json.loads(message.data) for message in dead]
    assert sorted((record["id"], record["reason"]) for record in dead_records) == \
        sorted(expected_reasons.items())

    # Every record is within the allowed lateness (the DirectRunner's Pub/Sub watermark is the
    # wall clock, so the backlog arrives late): each window's latest pane counts all its records.
    latest = latest_panes(monitoring)
    assert {key for key, _ in latest} == {"acme", "globex"}
    assert sum(pane["count"] for pane in latest.values()) == VALID_MESSAGES
    for (key, _), pane in latest.items():
        assert sum(pane["counts"].values()) == pane["count"]
    panes = [json.loads(message.data) for message in monitoring]
    aggregates = [pane for pane in panes if pane["type"] == "aggregate"]
    alerts = [pane for pane in panes if pane["type"] == "alert"]
    assert sorted((a["key"], a["window_start"], a["pane_index"]) for a in alerts) == sorted(
        (a["key"], a["window_start"], a["pane_index"]) for a in aggregates
        if a["negative_share"] > 0)

    assert sorted(record["id"] for record in file_records(files.parent)) == sorted(valid)


def latest_panes(messages) -> dict[tuple[str, str], dict]:
    """The aggregate with the highest pane index of each (key, window start)."""
    latest = {}
    for record in (json.loads(message.data) for message in messages):
        slot = (record["key"], record["window_start"])
        if record["type"] == "aggregate" and (
                slot not in latest or record["pane_index"] > latest[slot]["pane_index"]):
            latest[slot] = record
    return latest


def file_records(folder) -> list[dict]:
    """Scored records in the finished JSON-lines files (not temporary ones)."""
    return [json.loads(line) for path in folder.glob("scored-*.jsonl")
            for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize("changes, message", [
    ({"input_subscription": None}, "exactly one of --input_subscription and --input_topic"),
    ({"output_topic": None}, "missing required flags: --output_topic"),
    ({"output_topic": "topics/x"}, "topic"),
    ({"window_seconds": 0}, "window_seconds"),
    ({"negative_label": "bearish"}, "not one of the model's labels"),
    ({"runner": "FnApiRunner"}, "does not run on the FnApiRunner"),
])
def test_bad_flags_fail_before_the_run_with_one_line(tiny_bundle_dir, changes, message):
    settings = dict(runner="BundleBasedDirectRunner", model=str(tiny_bundle_dir),
                    input_subscription=f"projects/{PROJECT}/subscriptions/in",
                    output_topic=f"projects/{PROJECT}/topics/out") | changes
    with pytest.raises(InputError, match=message) as caught:
        plan_streaming_job(PipelineOptions(flags=[], **settings))
    assert "\n" not in str(caught.value)
