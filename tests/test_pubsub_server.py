"""The loopback Pub/Sub test double, driven by the real google-cloud-pubsub client over gRPC.

Every behaviour test runs against the double and, when ``gcloud`` is on the PATH, against Google's
own emulator too, so the double is checked against the reference it stands in for.
"""
from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1

from beam_pipeline.streaming.local_pubsub import available_backends, pubsub_backend

# a Pub/Sub server (Google's emulator where gcloud exists) driven over gRPC
pytestmark = pytest.mark.integration

PROJECT = "test-project"


@pytest.fixture(scope="module", params=available_backends())
def backend(request):
    with pubsub_backend(request.param, PROJECT):
        yield request.param


@pytest.fixture()
def clients(backend):
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    yield publisher, subscriber
    subscriber.close()


def _topic_and_subscription(publisher, subscriber, name: str) -> tuple[str, str]:
    suffix = f"{name}-{time.monotonic_ns()}"
    topic = publisher.create_topic(name=publisher.topic_path(PROJECT, f"t-{suffix}")).name
    subscription = subscriber.subscription_path(PROJECT, f"s-{suffix}")
    subscriber.create_subscription(name=subscription, topic=topic)
    return topic, subscription


def _pull(subscriber, subscription: str, max_messages: int = 10, timeout_s: float = 15):
    """One Pull; Google's emulator holds an empty Pull open until the call's timeout."""
    try:
        return list(subscriber.pull(subscription=subscription, max_messages=max_messages,
                                    timeout=timeout_s).received_messages)
    except exceptions.DeadlineExceeded:
        return []


def _pull_until(subscriber, subscription: str, count: int, timeout_s: float = 15):
    received = []
    give_up_at = time.monotonic() + timeout_s
    while len(received) < count and (left := give_up_at - time.monotonic()) > 0:
        received += _pull(subscriber, subscription, count - len(received), timeout_s=left)
    return received


def test_publish_pull_acknowledge_keeps_data_attributes_and_sets_publish_time(clients):
    publisher, subscriber = clients
    topic, subscription = _topic_and_subscription(publisher, subscriber, "roundtrip")
    before = time.time()
    ids = [publisher.publish(topic, f"m{i}".encode(), source="test", n=str(i)).result(timeout=15)
           for i in range(3)]
    received = _pull_until(subscriber, subscription, 3)
    assert sorted(m.message.data for m in received) == [b"m0", b"m1", b"m2"]
    assert sorted(m.message.message_id for m in received) == sorted(ids)
    for message in received:
        assert message.message.attributes["source"] == "test"
        assert message.message.attributes["n"] == message.message.data.decode()[1:]
        assert before - 1 <= message.message.publish_time.timestamp() <= time.time() + 1
    subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in received])
    subscriber.modify_ack_deadline(subscription=subscription,
                                   ack_ids=[m.ack_id for m in received], ack_deadline_seconds=0)
    assert _pull_until(subscriber, subscription, 1, timeout_s=2.5) == []


def test_subscription_sees_only_messages_published_after_it_exists(clients):
    publisher, subscriber = clients
    topic, first = _topic_and_subscription(publisher, subscriber, "late-sub")
    publisher.publish(topic, b"early").result(timeout=15)
    second = subscriber.subscription_path(PROJECT, f"second-{time.monotonic_ns()}")
    subscriber.create_subscription(name=second, topic=topic)
    publisher.publish(topic, b"late").result(timeout=15)
    assert sorted(m.message.data for m in _pull_until(subscriber, first, 2)) == [b"early", b"late"]
    assert [m.message.data for m in _pull_until(subscriber, second, 2, timeout_s=2)] == [b"late"]


def test_unacknowledged_message_is_redelivered_after_its_ack_deadline(clients):
    publisher, subscriber = clients
    topic, subscription = _topic_and_subscription(publisher, subscriber, "redeliver")
    publisher.publish(topic, b"kept").result(timeout=15)
    publisher.publish(topic, b"acked").result(timeout=15)
    first = _pull_until(subscriber, subscription, 2)
    by_data = {m.message.data: m for m in first}
    subscriber.acknowledge(subscription=subscription, ack_ids=[by_data[b"acked"].ack_id])
    subscriber.modify_ack_deadline(subscription=subscription, ack_ids=[by_data[b"kept"].ack_id],
                                   ack_deadline_seconds=1)
    assert _pull(subscriber, subscription, timeout_s=0.5) == []  # not before the deadline
    again = _pull_until(subscriber, subscription, 1)
    assert [m.message.data for m in again] == [b"kept"]
    assert again[0].message.message_id == by_data[b"kept"].message.message_id
    assert again[0].ack_id != by_data[b"kept"].ack_id
    subscriber.acknowledge(subscription=subscription, ack_ids=[by_data[b"kept"].ack_id])
    subscriber.modify_ack_deadline(subscription=subscription, ack_ids=[again[0].ack_id],
                                   ack_deadline_seconds=0)
    assert [m.message.data for m in _pull_until(subscriber, subscription, 1)] == [b"kept"]


def test_errors_use_pubsub_status_codes(clients):
    publisher, subscriber = clients
    topic, subscription = _topic_and_subscription(publisher, subscriber, "errors")
    with pytest.raises(exceptions.AlreadyExists):
        publisher.create_topic(name=topic)
    with pytest.raises(exceptions.NotFound):
        publisher.publish(publisher.topic_path(PROJECT, "no-such-topic"), b"x").result(timeout=15)
    subscriber.delete_subscription(subscription=subscription)
    with pytest.raises(exceptions.NotFound):
        subscriber.pull(subscription=subscription, max_messages=1, timeout=15)


def test_double_waits_about_a_second_on_an_empty_pull_and_checks_ack_deadlines():
    with pubsub_backend("double", PROJECT):
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic, subscription = _topic_and_subscription(publisher, subscriber, "empty")
        started = time.monotonic()
        assert _pull(subscriber, subscription) == []
        assert 0.8 <= time.monotonic() - started < 5
        with pytest.raises(exceptions.InvalidArgument):
            subscriber.create_subscription(name=f"{subscription}-short", topic=topic,
                                           ack_deadline_seconds=5)
        subscriber.close()
