"""The streaming pipeline's shape: on the DirectRunner each topic write is one step with the
process's one publisher client, and messages are keyed for inference as they are parsed; on
other runners the writes are Beam's ``WriteToPubSub`` (Dataflow replaces it with its own sink).
(What the steps write is tested end to end in test_streaming_pubsub.py.)"""
from __future__ import annotations

import collections

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from beam_pipeline.streaming.messages import to_pubsub_message
from beam_pipeline.streaming.pipeline import build_streaming_pipeline, plan_streaming_job
from beam_pipeline.streaming.publishing import PublishRecords, publisher_client

PROJECT = "test-project"
TOPICS = ("scored", "dead", "aggregates")


class _Steps(beam.pipeline.PipelineVisitor):
    def __init__(self):
        self.leaves: list[str] = []
        self.consumers: dict[str, list[str]] = collections.defaultdict(list)

    def visit_transform(self, node):
        self.leaves.append(node.full_label)
        for pcollection in node.inputs:
            if pcollection.producer is not None:
                self.consumers[pcollection.producer.full_label].append(node.full_label)


def steps(tiny_bundle_dir, runner: str) -> _Steps:
    options = PipelineOptions(
        flags=[], runner=runner, streaming=True, project=PROJECT, model=str(tiny_bundle_dir),
        input_subscription=f"projects/{PROJECT}/subscriptions/in",
        output_topic=f"projects/{PROJECT}/topics/scored",
        dead_letter_topic=f"projects/{PROJECT}/topics/dead",
        aggregates_topic=f"projects/{PROJECT}/topics/aggregates", key_attribute="brand")
    pipeline = beam.Pipeline(options=options)
    build_streaming_pipeline(pipeline, plan_streaming_job(options))
    visitor = _Steps()
    pipeline.visit(visitor)
    return visitor


def test_on_the_direct_runner_each_topic_is_written_in_one_step(tiny_bundle_dir):
    found = steps(tiny_bundle_dir, "BundleBasedDirectRunner")
    writes = [label for label in found.leaves if label.startswith("Write")]
    assert writes == ["WriteScored/Publish", "WriteDeadLetters/Publish",
                      "WriteMonitoring/Publish"]
    # parsing keys the messages for RunInference itself; dead letters go straight to their
    # writer (one step per empty dead-letter bundle, not three)
    assert found.consumers["Parse/ParDo(ParseMessages)"] == [
        "Score/BatchElements/ParDo(_GlobalWindowsBatchingDoFn)", "AllDeadLetters"]
    assert found.consumers["AllDeadLetters"] == ["WriteDeadLetters/Publish"]


def test_on_other_runners_the_write_is_beams_write_to_pubsub():
    """Dataflow among them (built here on the FnApiRunner: a DataflowRunner pipeline looks for
    Google credentials for two minutes offline)."""
    pipeline = beam.Pipeline(runner=FnApiRunner())
    _ = (pipeline | beam.Create([{"id": "1"}])
         | "WriteScored" >> PublishRecords(f"projects/{PROJECT}/topics/scored", to_pubsub_message))
    visitor = _Steps()
    pipeline.visit(visitor)
    labels = [label for label in visitor.leaves if label.startswith("WriteScored/")]
    assert labels[0] == "WriteScored/ToMessage"
    assert any("_PubSubWriteDoFn" in label for label in labels), labels


def test_the_process_has_one_publisher_client_per_pubsub_server(monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")  # clients connect on first use
    first = publisher_client()
    assert publisher_client() is first
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:2")
    assert publisher_client() is not first
