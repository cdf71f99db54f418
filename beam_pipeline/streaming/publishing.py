"""Records to a Pub/Sub topic: one step on the DirectRunner, Beam's ``WriteToPubSub`` elsewhere.

On the DirectRunner `PublishRecords` is a single ParDo that turns each record into its message and
publishes it with the process's one `publisher_client`, waiting for every publish at the end of
the bundle (a failed publish fails the bundle, as ``WriteToPubSub``'s does). Beam's
``WriteToPubSub`` costs that runner three scheduled steps per bundle (a ``Map`` to the message,
its protobuf ``Map``, its writer) and builds a new publisher client for each, because the
DirectRunner sets a DoFn up again for every bundle. On Dataflow and other runners it is
``Map(to_message) | WriteToPubSub``, unchanged: Dataflow replaces that sink with its native one.
Why a module-level client and not ``apache_beam.utils.shared``: docs/design.md, "Streaming
pipeline".
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Optional

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, WriteToPubSub, parse_topic

#: how long the end of a bundle waits for one publish before it fails the bundle
PUBLISH_TIMEOUT_S = 300
#: the client sends a batch after this long (its default, 10 ms, would idle the runner's one
#: worker thread that long at the end of every bundle, as it waits for its publishes)
PUBLISH_MAX_LATENCY_S = 0.001


def publisher_client():
    """The process's Pub/Sub publisher client (created on first use, one per emulator host in
    ``PUBSUB_EMULATOR_HOST``, which the client reads when it is built; thread-safe)."""
    return _publisher_client(os.environ.get("PUBSUB_EMULATOR_HOST"))


@functools.cache
def _publisher_client(_emulator_host: Optional[str]):
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_latency=PUBLISH_MAX_LATENCY_S))


class _PublishRecords(beam.DoFn):
    """Publishes ``to_message(record)`` for each record; the bundle ends when all are sent."""

    def __init__(self, topic: str, to_message: Callable[[Any], PubsubMessage]):
        parse_topic(topic)  # a malformed topic fails at construction, as WriteToPubSub's does
        self._topic, self._to_message = topic, to_message

    def start_bundle(self) -> None:
        self._client = publisher_client()
        self._pending: list[Future] = []

    def process(self, record: Any) -> None:
        message = self._to_message(record)
        self._pending.append(self._client.publish(
            self._topic, message.data, **(message.attributes or {})))

    def finish_bundle(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result(timeout=PUBLISH_TIMEOUT_S)


def on_direct_runner(pipeline: beam.Pipeline) -> bool:
    """Whether ``pipeline`` runs on one of Beam's DirectRunners."""
    return "DirectRunner" in type(pipeline.runner).__name__


class PublishRecords(beam.PTransform):
    """Writes each record as ``to_message(record)`` to ``topic`` (``projects/P/topics/T``)."""

    def __init__(self, topic: str, to_message: Callable[[Any], PubsubMessage]):
        super().__init__()
        self._topic, self._to_message = topic, to_message

    def expand(self, records: beam.PCollection) -> beam.pvalue.PDone:
        if on_direct_runner(records.pipeline):
            _ = records | "Publish" >> beam.ParDo(_PublishRecords(self._topic, self._to_message))
        else:
            _ = (records | "ToMessage" >> beam.Map(self._to_message)
                 | "Write" >> WriteToPubSub(self._topic, with_attributes=True))
        return beam.pvalue.PDone(records.pipeline)
