"""Reliability cases of the streaming area, through the real command: one ``sentiment-score
--streaming`` subprocess reading a subscription of the loopback Pub/Sub test double
(`beam_pipeline.streaming.local_pubsub`, in this process, so that it can lose acknowledgements on
purpose), fed one case after the other. Each case's messages carry a ``case`` attribute, which the
scored and dead-letter records keep; counts are read from the records pulled from the output
topics and are counted per Pub/Sub message id (a message delivered twice is one row in). The
builders are the tests' (`testkit.streams`, `testkit.models`)."""
from __future__ import annotations

import base64
import collections
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from beam_pipeline.streaming.local_pubsub import PubSubTestServer
from benchmarks.benchlib import SHARED_DATA
from testkit.models import copy_bundle
from testkit.streams import SECRET, StreamingCommand, Streams, malformed_messages, tweets

AREA = "streaming"
PROJECT = "reliability-project"
LOST_ACKS = 5
MAX_LENGTH = 1024  # above MiniLM's 512 positions: a text of more tokens fails in ONNX Runtime
MAX_MESSAGE_BYTES = 2048  # malformed_messages' 3,000-character texts are too large
CASE_LIMIT_S = 90


def good_payloads(texts: list[str], prefix: str) -> list[bytes]:
    return [json.dumps({"text": text, "id": f"{prefix}-{i}"}).encode()
            for i, text in enumerate(texts)]


def cases(texts: list[str]) -> list[tuple[str, str, list[bytes], int]]:
    """(case, input description, payloads, expected extra deliveries), in publishing order."""
    flood = good_payloads(texts[:100], "flood")
    malformed = [payload for payload, _, _ in malformed_messages(scale=7)]
    mixed = []
    for start in range(0, 100, 10):  # bursts of ~31 malformed between groups of 10 good
        mixed += flood[start:start + 10] + malformed[start * 308 // 100:(start + 10) * 308 // 100]
    duplicates = good_payloads(texts[100:120], "dup")
    return [
        ("duplicate deliveries", f"20 tweets, 5 of them published twice; the first {LOST_ACKS} "
         "acks lost (redelivered after the 10 s ack deadline)",
         duplicates + duplicates[:5], LOST_ACKS),
        ("malformed flood", "100 tweets with 308 malformed messages in bursts between them "
         "(not JSON, not UTF-8, no text field, too large, empty text, JSON array)", mixed, 0),
        ("oversized", f"5 messages of 100 KB (cap --max_message_bytes {MAX_MESSAGE_BYTES})",
         [json.dumps({"text": "y" * 100_000, "id": f"big-{i}"}).encode() for i in range(5)], 0),
        ("not JSON", "5 plain-text payloads", [b"plain text %d" % i for i in range(5)], 0),
        ("not UTF-8", "5 JSON payloads with Latin-1 bytes",
         [b'{"text": "r\xe9sum\xe9 %d"}' % i for i in range(5)], 0),
        ("missing text field", "5 JSON objects without 'text'",
         [json.dumps({"body": f"no text {i}"}).encode() for i in range(5)], 0),
        ("inference error", f"3 texts of 602 tokens scored at --max_length {MAX_LENGTH} "
         "(MiniLM has 512 positions) among 7 tweets",
         good_payloads(texts[120:127], "fits") + good_payloads([" ".join("a" * 600)] * 3,
                                                               "too-long"), 0),
        ("secret in payload", "3 dead-lettered payloads holding an API key",
         [f"token={SECRET}".encode(), json.dumps({"body": 1, "api_key": SECRET}).encode(),
          json.dumps({"text": " ", "password": SECRET}).encode()], 0),
    ]


def holds_secret(record: dict) -> bool:
    """Whether a dead-letter record holds the secret (as a field, or in the kept payload)."""
    return (SECRET in json.dumps(record)
            or SECRET.encode() in base64.b64decode(record.get("payload_base64", "")))


def wait_for(streams: Streams, done: Callable[[], bool], limit_s: float = CASE_LIMIT_S) -> None:
    streams.collect_until(done, limit_s)


def outputs_of(streams: Streams, case: str) -> dict[str, list[dict]]:
    return {kind: [record for record in streams.records(kind)
                   if record.get("attributes", {}).get("case") == case]
            for kind in ("scored", "dead")}


def run_cases(workdir: Path, bundle: str) -> list[dict]:
    """Runs each hostile streaming case through the real command; one dict per case."""
    texts = tweets(SHARED_DATA, 200)
    watched = workdir / "watched"
    watched.mkdir()
    server = PubSubTestServer()
    previous_host = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = server.start()
    streams = Streams(PROJECT, "reliability")
    server.lose_acks(streams.subscriptions["in"], LOST_ACKS)
    flags = ["--max_length", str(MAX_LENGTH), "--max_message_bytes", str(MAX_MESSAGE_BYTES),
             "--model_watch", f"{watched}/*",
             "--model_watch_interval_s", "1"]
    command = StreamingCommand(streams, PROJECT, bundle, workdir / "streaming.log", *flags)
    shown = (f"sentiment-score --streaming --input_subscription S --output_topic T "
             f"--dead_letter_topic D --model BUNDLE {' '.join(flags)}"
             ).replace(str(workdir) + "/", "")
    results = []
    try:
        for case, description, payloads, extra in cases(texts):
            ids = streams.publish(payloads, case=case)
            expected = len(ids) + extra
            wait_for(streams, lambda case=case, expected=expected:
                     sum(map(len, outputs_of(streams, case).values())) >= expected)
            results.append(summarise(case, description, shown, ids, outputs_of(streams, case)))
        results.append(tampered_bundle_case(streams, bundle, watched, texts, shown))
    finally:
        command.stop()
        streams.close()
        server.stop()
        if previous_host is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous_host
    log = command.log()
    for result in results:
        if result["case"] == "secret in payload":
            secret_out = sum(holds_secret(record) for record in result["records"]["dead"])
            result["outcome"] += (f"; {secret_out} dead letters hold the payload; secret in the "
                                  f"command's log: {'YES' if SECRET in log else 'no'}")
            result["every_row_accounted"] = result["every_row_accounted"] and SECRET not in log
        result.pop("records", None)
    refused = [line for line in log.splitlines() if "model watch: refused bundle" in line]
    refusal = refused[0].replace(f"{workdir}/", "")[:200] if refused else "NO refusal line"
    results[-1]["outcome"] += f"; log: {refusal}"
    results[-1]["every_row_accounted"] = results[-1]["every_row_accounted"] and bool(refused)
    return results


def summarise(case: str, description: str, command: str, ids: list[str],
              records: dict[str, list[dict]]) -> dict:
    """The table row of one case: rows in = messages published, counted out per message id."""
    scored_ids = collections.Counter(record["message_id"] for record in records["scored"])
    dead_ids = collections.Counter(record["message_id"] for record in records["dead"])
    reasons = collections.Counter(record["reason"] for record in records["dead"])
    repeated = sum(count - 1 for count in (scored_ids + dead_ids).values())
    outcome = (f"{len(records['scored'])} scored records, {len(records['dead'])} dead letters"
               + (f" ({', '.join(f'{r}: {n}' for r, n in sorted(reasons.items()))})"
                  if reasons else "")
               + (f"; {repeated} redelivered with the same message_id (de-duplicated on it)"
                  if repeated else ""))
    return {"area": AREA, "case": case, "input": description, "command": command,
            "rows_in": len(ids), "scored": len(scored_ids), "dead_lettered": len(dead_ids),
            "outcome": outcome, "records": records,
            "every_row_accounted": sorted({*scored_ids, *dead_ids}) == sorted(ids)
            and not set(scored_ids) & set(dead_ids)}


def tampered_bundle_case(streams: Streams, bundle: str, watched: Path, texts: list[str],
                         command: str) -> dict:
    """A bundle whose int8 model file was changed after export is written to the watched
    folder: it must be refused, and the next messages scored by the model already running."""
    before = {record["model_version"] for record in streams.records("scored")}
    copy_bundle(Path(bundle), watched / "tampered", precisions=("int8",), tamper=True)
    time.sleep(2)
    ids = streams.publish(good_payloads(texts[130:140], "after-swap"), case="tampered bundle")
    wait_for(streams, lambda: len(outputs_of(streams, "tampered bundle")["scored"]) >= len(ids))
    result = summarise("tampered bundle", "a bundle with a modified int8 model file written "
                       "to --model_watch, then 10 tweets", command, ids,
                       outputs_of(streams, "tampered bundle"))
    after = {record["model_version"] for record in result["records"]["scored"]}
    result["outcome"] += f"; model_version before {sorted(before)}, after {sorted(after)}"
    result["every_row_accounted"] = result["every_row_accounted"] and after == before
    return result
