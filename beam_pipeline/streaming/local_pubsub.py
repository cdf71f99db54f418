"""A loopback Pub/Sub server for tests: a TEST DOUBLE, not Google's service nor its emulator.

Tests prefer Google's own emulator (``gcloud beta emulators pubsub start``) when ``gcloud`` is on
the PATH and fall back to this server otherwise (``PUBSUB_TEST_BACKEND=double`` forces this
server, as on CI machines without gcloud); `pubsub_backend` starts whichever is chosen and
yields the ``host:port`` to put in ``PUBSUB_EMULATOR_HOST``.

What this double implements, over gRPC on 127.0.0.1 with the google-cloud-pubsub package's own
message types (``google.pubsub_v1.types``), so that the real client library talks to it unchanged:

* ``google.pubsub.v1.Publisher``: ``CreateTopic`` (ALREADY_EXISTS when it exists), ``GetTopic``,
  ``DeleteTopic``, ``Publish`` (NOT_FOUND for an unknown topic, INVALID_ARGUMENT for an empty
  request or a message with neither data nor attributes). Each published message gets a
  ``message_id`` and a ``publish_time`` and is copied to every subscription the topic has *at
  publish time* (as in Pub/Sub, a subscription sees only messages published after it exists).
* ``google.pubsub.v1.Subscriber``: ``CreateSubscription`` (default ack deadline 10 s, accepted
  range 10–600 s as in Pub/Sub), ``GetSubscription``, ``DeleteSubscription``, ``Pull`` (up to
  ``max_messages``; when nothing is available it waits up to ``empty_pull_wait_s``, 1 s by default,
  never past the caller's deadline, then replies empty), ``Acknowledge``, ``ModifyAckDeadline``
  (0 s hands the message back at once).
* At-least-once delivery: a pulled message that is not acknowledged before its ack deadline is
  delivered again, with a new ack id; acknowledging a stale ack id is ignored, as in Pub/Sub.
* Fault injection for tests: `PubSubTestServer.lose_acks` drops the next N acknowledgements of a
  subscription as if they were lost on the network, so those messages are delivered again (same
  ``message_id``) after their ack deadline.

Not implemented (the client gets UNIMPLEMENTED): ``StreamingPull`` (Beam's DirectRunner and these
tests use unary ``Pull``), ordering keys, filters, dead-letter and retry policies, exactly-once
delivery, snapshots/seek, schemas, IAM, message retention limits and ``List*`` calls.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from google.pubsub_v1 import types

DEFAULT_ACK_DEADLINE_S = 10
MIN_ACK_DEADLINE_S, MAX_ACK_DEADLINE_S = 10, 600


@dataclasses.dataclass
class _Outstanding:
    message: types.PubsubMessage
    deadline: float


@dataclasses.dataclass
class _Subscription:
    proto: types.Subscription
    ready: deque = dataclasses.field(default_factory=deque)
    outstanding: dict[str, _Outstanding] = dataclasses.field(default_factory=dict)

    def requeue_expired(self, now: float) -> None:
        """Puts every message whose ack deadline passed back in front of the queue."""
        expired = [ack_id for ack_id, entry in self.outstanding.items() if entry.deadline <= now]
        for ack_id in reversed(expired):
            self.ready.appendleft(self.outstanding.pop(ack_id).message)

    def next_deadline(self) -> float | None:
        return min((entry.deadline for entry in self.outstanding.values()), default=None)


class PubSubTestServer:
    """In-memory topics and subscriptions served over gRPC on 127.0.0.1 (module docstring)."""

    def __init__(self, empty_pull_wait_s: float = 1.0):
        self.empty_pull_wait_s = empty_pull_wait_s
        self._topics: dict[str, list[str]] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._server: grpc.Server | None = None
        self._acks_to_lose: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        """Starts serving; returns ``127.0.0.1:PORT`` for ``PUBSUB_EMULATOR_HOST``."""
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        self._server.add_generic_rpc_handlers([
            self._service("google.pubsub.v1.Publisher", {
                "CreateTopic": (types.Topic, self._create_topic),
                "GetTopic": (types.GetTopicRequest, self._get_topic),
                "DeleteTopic": (types.DeleteTopicRequest, self._delete_topic),
                "Publish": (types.PublishRequest, self._publish),
            }),
            self._service("google.pubsub.v1.Subscriber", {
                "CreateSubscription": (types.Subscription, self._create_subscription),
                "GetSubscription": (types.GetSubscriptionRequest, self._get_subscription),
                "DeleteSubscription": (types.DeleteSubscriptionRequest, self._delete_subscription),
                "Pull": (types.PullRequest, self._pull),
                "Acknowledge": (types.AcknowledgeRequest, self._acknowledge),
                "ModifyAckDeadline": (types.ModifyAckDeadlineRequest, self._modify_ack_deadline),
            }),
        ])
        bound = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self._server.start()
        return f"127.0.0.1:{bound}"

    def lose_acks(self, subscription: str, count: int) -> None:
        """Drops the next ``count`` ack ids acknowledged on ``subscription``: their messages are
        delivered again after the ack deadline, as when an Acknowledge is lost."""
        with self._changed:
            self._acks_to_lose[subscription] = count

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    @staticmethod
    def _service(name: str, methods: dict[str, tuple[type, Callable]]) -> grpc.GenericRpcHandler:
        def serialize(reply):
            return reply.SerializeToString() if isinstance(reply, empty_pb2.Empty) \
                else type(reply).serialize(reply)

        handlers = {
            method: grpc.unary_unary_rpc_method_handler(
                handler, request_deserializer=request_type.deserialize,
                response_serializer=serialize)
            for method, (request_type, handler) in methods.items()
        }
        return grpc.method_handlers_generic_handler(name, handlers)

    # -- publisher ---------------------------------------------------------------------------
    def _create_topic(self, topic: types.Topic, context) -> types.Topic:
        with self._changed:
            if topic.name in self._topics:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Topic already exists: {topic.name}")
            self._topics[topic.name] = []
        return types.Topic(name=topic.name)

    def _get_topic(self, request: types.GetTopicRequest, context) -> types.Topic:
        with self._changed:
            self._require_topic(request.topic, context)
        return types.Topic(name=request.topic)

    def _delete_topic(self, request: types.DeleteTopicRequest, context) -> empty_pb2.Empty:
        with self._changed:
            self._require_topic(request.topic, context)
            del self._topics[request.topic]
        return empty_pb2.Empty()

    def _publish(self, request: types.PublishRequest, context) -> types.PublishResponse:
        if not request.messages:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "PublishRequest has no messages")
        if any(not message.data and not message.attributes for message in request.messages):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "a message needs data or at least one attribute")
        with self._changed:
            subscriptions = self._require_topic(request.topic, context)
            publish_time = Timestamp()
            publish_time.GetCurrentTime()
            ids = []
            for message in request.messages:
                stored = types.PubsubMessage(data=message.data, attributes=dict(message.attributes),
                                             message_id=str(next(self._ids)),
                                             publish_time=publish_time,
                                             ordering_key=message.ordering_key)
                ids.append(stored.message_id)
                for name in subscriptions:
                    self._subscriptions[name].ready.append(stored)
            self._changed.notify_all()
        return types.PublishResponse(message_ids=ids)

    def _require_topic(self, name: str, context) -> list[str]:
        if name not in self._topics:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found: {name}")
        return self._topics[name]

    # -- subscriber --------------------------------------------------------------------------
    def _create_subscription(self, subscription: types.Subscription, context) -> types.Subscription:
        deadline = subscription.ack_deadline_seconds or DEFAULT_ACK_DEADLINE_S
        if not MIN_ACK_DEADLINE_S <= deadline <= MAX_ACK_DEADLINE_S:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"ack_deadline_seconds must be {MIN_ACK_DEADLINE_S}-{MAX_ACK_DEADLINE_S}")
        with self._changed:
            if subscription.name in self._subscriptions:
                context.abort(grpc.StatusCode.ALREADY_EXISTS,
                              f"Subscription already exists: {subscription.name}")
            self._require_topic(subscription.topic, context).append(subscription.name)
            stored = types.Subscription(name=subscription.name, topic=subscription.topic,
                                        ack_deadline_seconds=deadline)
            self._subscriptions[subscription.name] = _Subscription(proto=stored)
        return stored

    def _get_subscription(self, request: types.GetSubscriptionRequest, context):
        with self._changed:
            return self._require_subscription(request.subscription, context).proto

    def _delete_subscription(self, request: types.DeleteSubscriptionRequest, context):
        with self._changed:
            subscription = self._require_subscription(request.subscription, context)
            del self._subscriptions[request.subscription]
            topic_subscriptions = self._topics.get(subscription.proto.topic, [])
            if request.subscription in topic_subscriptions:
                topic_subscriptions.remove(request.subscription)
        return empty_pb2.Empty()

    def _pull(self, request: types.PullRequest, context) -> types.PullResponse:
        caller_left = context.time_remaining()  # None when the caller set no deadline
        wait = self.empty_pull_wait_s if caller_left is None \
            else min(self.empty_pull_wait_s, max(caller_left - 0.2, 0.0))
        give_up_at = time.monotonic() + wait
        with self._changed:
            while True:
                subscription = self._require_subscription(request.subscription, context)
                now = time.monotonic()
                subscription.requeue_expired(now)
                if subscription.ready or now >= give_up_at:
                    break
                wake = min(give_up_at, subscription.next_deadline() or give_up_at)
                self._changed.wait(timeout=max(wake - now, 0.0))
            received = []
            if not context.is_active():  # the caller gave up: deliver nothing it cannot ack
                return types.PullResponse()
            deadline = now + subscription.proto.ack_deadline_seconds
            while subscription.ready and len(received) < max(request.max_messages, 1):
                message = subscription.ready.popleft()
                ack_id = f"{request.subscription}/{message.message_id}/{next(self._ids)}"
                subscription.outstanding[ack_id] = _Outstanding(message, deadline)
                received.append(types.ReceivedMessage(ack_id=ack_id, message=message))
        return types.PullResponse(received_messages=received)

    def _acknowledge(self, request: types.AcknowledgeRequest, context) -> empty_pb2.Empty:
        with self._changed:
            subscription = self._require_subscription(request.subscription, context)
            for ack_id in request.ack_ids:
                if self._acks_to_lose.get(request.subscription, 0) > 0 \
                        and ack_id in subscription.outstanding:
                    self._acks_to_lose[request.subscription] -= 1
                    continue
                subscription.outstanding.pop(ack_id, None)
        return empty_pb2.Empty()

    def _modify_ack_deadline(self, request: types.ModifyAckDeadlineRequest, context):
        if not 0 <= request.ack_deadline_seconds <= MAX_ACK_DEADLINE_S:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"ack_deadline_seconds must be 0-{MAX_ACK_DEADLINE_S}")
        with self._changed:
            subscription = self._require_subscription(request.subscription, context)
            new_deadline = time.monotonic() + request.ack_deadline_seconds
            for ack_id in request.ack_ids:
                if ack_id in subscription.outstanding:
                    subscription.outstanding[ack_id].deadline = new_deadline
            self._changed.notify_all()
        return empty_pb2.Empty()

    def _require_subscription(self, name: str, context) -> _Subscription:
        if name not in self._subscriptions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription not found: {name}")
        return self._subscriptions[name]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(host_port: str, process: subprocess.Popen, timeout_s: float) -> None:
    host, port = host_port.split(":")
    give_up_at = time.monotonic() + timeout_s
    while time.monotonic() < give_up_at:
        if process.poll() is not None:
            raise RuntimeError(f"Pub/Sub emulator exited early with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"Pub/Sub emulator did not listen on {host_port} within {timeout_s} s")


@contextlib.contextmanager
def google_emulator(project: str) -> Iterator[str]:
    """Runs Google's Pub/Sub emulator through ``gcloud`` in its own process group."""
    host_port = f"127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={host_port}",
         f"--project={project}", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_port(host_port, process, timeout_s=60)
        yield host_port
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


@contextlib.contextmanager
def loopback_double() -> Iterator[str]:
    """Runs `PubSubTestServer` in this process."""
    server = PubSubTestServer()
    try:
        yield server.start()
    finally:
        server.stop()


def available_backends() -> list[str]:
    """``emulator`` when gcloud is on the PATH, and always ``double``."""
    return (["emulator"] if shutil.which("gcloud") else []) + ["double"]


def preferred_backend() -> str:
    """``$PUBSUB_TEST_BACKEND`` when set (``emulator`` or ``double``), else Google's emulator when
    gcloud is on the PATH, else the test double."""
    forced = os.environ.get("PUBSUB_TEST_BACKEND")
    if forced and forced not in ("emulator", "double"):
        raise ValueError(f"PUBSUB_TEST_BACKEND={forced!r}: expected 'emulator' or 'double'")
    return forced or available_backends()[0]


@contextlib.contextmanager
def pubsub_backend(backend: str, project: str = "test-project") -> Iterator[str]:
    """Starts ``backend`` (``emulator`` or ``double``) and points ``PUBSUB_EMULATOR_HOST`` at it."""
    starter = google_emulator(project) if backend == "emulator" else loopback_double()
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    with starter as host_port:
        os.environ["PUBSUB_EMULATOR_HOST"] = host_port
        try:
            yield host_port
        finally:
            if previous is None:
                os.environ.pop("PUBSUB_EMULATOR_HOST", None)
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = previous
