"""Pub/Sub streams for pipeline runs (topics, subscriptions, what came out), hostile payloads,
and ``sentiment-score --streaming`` run as a process."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from google.cloud import pubsub_v1

from beam_pipeline.vocabulary import (
    EMPTY_TEXT,
    MISSING_TEXT_FIELD,
    NOT_JSON,
    NOT_JSON_OBJECT,
    TOO_LARGE,
    UNDECODABLE_BYTES,
)

SECRET = "sk_live_51HxQjz7Y3uPq9TESTSECRETabcdef0123456789"


def tweets(shared_data: Path, count: int) -> list[str]:
    """The first ``count`` financial tweets of the validation split."""
    with open(shared_data / "financial_tweets" / "validation.csv", newline="",
              encoding="utf-8") as handle:
        return [row["text"] for _, row in zip(range(count), csv.DictReader(handle))]


def malformed_messages(scale: int = 1) -> list[tuple[bytes, str, str | None]]:
    """(payload, expected dead-letter reason, the payload's own id when it has one); a
    ``max_message_bytes`` of 2048 makes the large ones ``too_large``."""
    return ([(b"not json %d" % i, NOT_JSON, None) for i in range(10 * scale)]
            + [(b'{"text": "caf\xe9 %d"}' % i, UNDECODABLE_BYTES, None) for i in range(8 * scale)]
            + [(json.dumps({"body": f"no text {i}"}).encode(), MISSING_TEXT_FIELD, None)
               for i in range(8 * scale)]
            + [(json.dumps({"text": "x" * 3000, "n": i}).encode(), TOO_LARGE, None)
               for i in range(6 * scale)]
            + [(json.dumps({"text": "  ", "id": f"empty-{i}"}).encode(), EMPTY_TEXT, f"empty-{i}")
               for i in range(6 * scale)]
            + [(b"[1, 2, %d]" % i, NOT_JSON_OBJECT, None) for i in range(6 * scale)])


class Streams:
    """Input, scored, dead-letter and aggregates topics with one subscription each (names made
    unique by ``name``) on the Pub/Sub server at ``PUBSUB_EMULATOR_HOST``, and what was pulled
    from the output subscriptions so far."""

    OUTPUTS = ("scored", "dead", "aggregates")

    def __init__(self, project: str, name: str):
        self.publisher, self.subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        self.topics, self.subscriptions = {}, {}
        for kind in ("in", *self.OUTPUTS):
            self.topics[kind] = self.publisher.create_topic(
                name=self.publisher.topic_path(project, f"{name}-{kind}")).name
            self.subscriptions[kind] = self.subscriber.subscription_path(project,
                                                                         f"{name}-{kind}-sub")
            self.subscriber.create_subscription(name=self.subscriptions[kind],
                                                topic=self.topics[kind])
        self.received: dict[str, list] = {kind: [] for kind in self.OUTPUTS}

    def publish(self, payloads: list[bytes], topic: str | None = None,
                **attributes: str) -> list[str]:
        """Publishes each payload (to the input topic by default); their message ids."""
        futures = [self.publisher.publish(topic or self.topics["in"], payload, **attributes)
                   for payload in payloads]
        return [future.result(timeout=60) for future in futures]

    def drain(self, kind: str, timeout_s: float = 2) -> list:
        """Pulls and acknowledges what ``kind``'s subscription holds now; the new messages."""
        try:
            response = self.subscriber.pull(subscription=self.subscriptions[kind],
                                            max_messages=500, timeout=timeout_s)
        except Exception:  # DeadlineExceeded: Google's emulator holds empty pulls open
            return []
        messages = [received.message for received in response.received_messages]
        if messages:
            self.subscriber.acknowledge(subscription=self.subscriptions[kind],
                                        ack_ids=[m.ack_id for m in response.received_messages])
        self.received[kind] += messages
        return messages

    def records(self, kind: str) -> list[dict]:
        """The JSON records pulled from ``kind`` so far."""
        return [json.loads(message.data) for message in self.received[kind]]

    def collect_until(self, done, limit_s: float, kinds: tuple[str, ...] = ("scored", "dead"),
                      settle_s: float = 0) -> bool:
        """Drains ``kinds`` until ``done()`` or ``limit_s``; then ``settle_s`` more seconds (to
        catch duplicates). Whether ``done()`` was reached."""
        give_up_at = time.monotonic() + limit_s
        while not done() and time.monotonic() < give_up_at:
            for kind in kinds:
                self.drain(kind)
        reached = done()
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            for kind in kinds:
                self.drain(kind, timeout_s=1)
        return reached

    def close(self) -> None:
        self.subscriber.close()


class PipelineProcess:
    """A pipeline command as a subprocess (offline, stdout and stderr to ``log_path``); stop it
    with `stop` (Ctrl-C, as a user would)."""

    def __init__(self, command: list[str], log_path: Path, cwd: Path | None = None):
        self.command = command
        self.log_path = log_path
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, env=env, cwd=cwd, stdout=log,
                                            stderr=subprocess.STDOUT)

    def stop(self) -> int:
        """Interrupts the command (SIGINT) and returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        """Everything the command printed and logged."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class StreamingCommand(PipelineProcess):
    """``sentiment-score --streaming`` (the installed console script) reading ``streams``' input
    subscription and writing its output topics."""

    def __init__(self, streams: Streams, project: str, model: str, log_path: Path,
                 *flags: str):
        super().__init__([str(Path(sys.executable).parent / "sentiment-score"), "--streaming",
                          "--project", project,
                          "--input_subscription", streams.subscriptions["in"],
                          "--output_topic", streams.topics["scored"],
                          "--dead_letter_topic", streams.topics["dead"],
                          "--aggregates_topic", streams.topics["aggregates"],
                          "--model", model, *flags], log_path)
