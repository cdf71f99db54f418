"""Builders shared by the streaming tests and benchmarks/reliability_cases/streaming.py: bundle
variants for hot-swap, hostile Pub/Sub payloads, and a Pub/Sub helper for pipeline runs."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from beam_pipeline import streaming_messages as sm
from beam_pipeline.bundle import MANIFEST_NAME
from beam_pipeline.validation import EMPTY_TEXT, UNDECODABLE_BYTES

SECRET = "sk_live_51HxQjz7Y3uPq9TESTSECRETabcdef0123456789"


def copy_bundle(source: Path, target: Path, precisions: tuple[str, ...] | None = None,
                tamper: bool = False, labels: list[str] | None = None) -> Path:
    """Copies the bundle at ``source`` to ``target``, ``bundle.json`` last (as sentiment-export
    writes it), keeping only ``precisions``; ``tamper`` flips the last byte of each kept model
    file after its checksum was recorded; ``labels`` renames the labels in the manifest."""
    manifest = json.loads((source / MANIFEST_NAME).read_text())
    if precisions is not None:
        manifest["precisions"] = {name: entry for name, entry in manifest["precisions"].items()
                                  if name in precisions}
    if labels is not None:
        manifest["labels"] = labels
    target.mkdir(parents=True)
    shutil.copy(source / manifest["tokenizer"]["file"], target)
    for entry in manifest["precisions"].values():
        data = bytearray((source / entry["file"]).read_bytes())
        if tamper:
            data[-1] ^= 0xFF
        (target / entry["file"]).write_bytes(bytes(data))
    (target / MANIFEST_NAME).write_text(json.dumps(manifest))
    return target


def tweets(shared_data: Path, count: int) -> list[str]:
    """The first ``count`` financial tweets of the validation split."""
    with open(shared_data / "financial_tweets" / "validation.csv", newline="",
              encoding="utf-8") as handle:
        return [row["text"] for _, row in zip(range(count), csv.DictReader(handle))]


def malformed_messages(scale: int = 1) -> list[tuple[bytes, str, str | None]]:
    """(payload, expected dead-letter reason, the payload's own id when it has one); a
    ``max_message_bytes`` of 2048 makes the large ones ``too_large``."""
    return ([(b"not json %d" % i, sm.NOT_JSON, None) for i in range(10 * scale)]
            + [(b'{"text": "caf\xe9 %d"}' % i, UNDECODABLE_BYTES, None) for i in range(8 * scale)]
            + [(json.dumps({"body": f"no text {i}"}).encode(), sm.MISSING_TEXT_FIELD, None)
               for i in range(8 * scale)]
            + [(json.dumps({"text": "x" * 3000, "n": i}).encode(), sm.TOO_LARGE, None)
               for i in range(6 * scale)]
            + [(json.dumps({"text": "  ", "id": f"empty-{i}"}).encode(), EMPTY_TEXT, f"empty-{i}")
               for i in range(6 * scale)]
            + [(b"[1, 2, %d]" % i, sm.NOT_JSON_OBJECT, None) for i in range(6 * scale)])
