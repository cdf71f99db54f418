"""The stream, locally, in one command (``make demo-stream``): a local Pub/Sub, the scoring stream
for about a minute while sample posts arrive, then what came out and the stream page.

Starts Google's Pub/Sub emulator when ``gcloud`` is on the PATH, else this project's Pub/Sub
test double (`beam_pipeline.streaming.local_pubsub`); creates the topics; runs
``sentiment-score --streaming`` with ``--output_files``; publishes English tweets of
``../shared/data/tweets`` with a ``brand`` attribute (three example brands: one gets mostly the
negative tweets, so its alert fires), a retweet storm, a few posts in French and Spanish and a
few malformed messages; prints scored records, aggregates and alerts; renders the stream page
with ``sentiment-report``; stops everything it started.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import itertools
import json
import random
import sys
import time
from pathlib import Path

from beam_pipeline.reports.cli import main as report_main
from beam_pipeline.streaming.local_pubsub import preferred_backend, pubsub_backend
from testkit.streams import StreamingCommand, Streams

PROJECT = "demo-project"
BRANDS = ("acme", "globex", "initech")
FOREIGN = ["Je déteste cette compagnie, encore un vol annulé sans aucune explication",
           "Qué servicio tan malo, nunca más vuelvo a comprar en esta tienda",
           "Der Kundendienst war freundlich und das Paket kam pünktlich an"]
STORM = "RT @user: worst customer service I have ever had, never again"
MALFORMED = [b"not json at all", b'{"body": "no text field"}', b'["a", "list"]', b"\xff\xfe"]


def sample_posts(data: Path, count: int, seed: int = 7) -> list[tuple[str, str]]:
    """(brand, text) pairs: globex gets most negative tweets, the others a mix."""
    with open(data / "tweets" / "validation.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    generator = random.Random(seed)
    generator.shuffle(rows)
    posts = []
    for row in rows[:count]:
        negative = row["label"] == "0"
        brand = ("globex" if negative and generator.random() < 0.6
                 else generator.choice(BRANDS))
        posts.append((brand, row["text"]))
    return posts


def message(text: str, index: int) -> bytes:
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    return json.dumps({"text": text, "id": f"post-{index}", "created_at": created}).encode()


def publish_for(streams: Streams, posts: list[tuple[str, str]], seconds: float) -> int:
    """Publishes the posts, the storm, the foreign and the malformed ones spread over
    ``seconds``; returns how many messages were published."""
    extras = ([("acme", STORM)] * 25 + [(brand, text) for brand, text in
                                        zip(itertools.cycle(BRANDS), FOREIGN)])
    everything = posts + extras
    random.Random(3).shuffle(everything)
    malformed_every = len(everything) // len(MALFORMED)
    pause = seconds / len(everything)
    published = 0
    for index, (brand, text) in enumerate(everything):
        streams.publish([message(text, index)], brand=brand)
        published += 1
        if index % malformed_every == 0 and index // malformed_every < len(MALFORMED):
            streams.publish([MALFORMED[index // malformed_every]], brand=brand)
            published += 1
        time.sleep(pause)
    return published


def print_outcome(streams: Streams) -> None:
    scored = streams.records("scored")
    dead = streams.records("dead")
    monitoring = streams.records("aggregates")
    print(f"\ndemo-stream: {len(scored)} records out (scored or unscored), "
          f"{len(dead)} dead letters, {len(monitoring)} aggregate and alert records")
    for record in scored[:6]:
        verdict = record["sentiment"] or record["status"]
        print(f"  {record['attributes'].get('brand', '-'):<8} {verdict:<21} "
              f"{record['language'] or '?':<3} {record['text'][:60]!r}")
    for record in dead[:4]:
        print(f"  dead letter: {record['reason']} ({record['stage']})")
    latest: dict[tuple[str, str], dict] = {}
    for record in monitoring:
        if record["type"] == "aggregate":
            latest[(record["key"], record["window_start"])] = record
    for (key, start), record in sorted(latest.items())[-9:]:
        print(f"  {key:<8} window {start[11:19]}  posts {record['posts']:>3}  reach "
              f"{record['reach']:>3}  negative {record['negative_share']:.0%}  unsupported "
              f"{record['unsupported_language']}")
    for record in [r for r in monitoring if r["type"] == "alert"][:5]:
        print(f"  ALERT {record['key']} {record['window_start'][11:19]}: negative share "
              f"{record['negative_share']:.0%} over {record['posts']} posts "
              f"(threshold {record['threshold']:.0%})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="a three-class social model bundle")
    parser.add_argument("--output_dir", default="demo_output/stream")
    parser.add_argument("--shared_data", default="../shared/data")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--posts", type=int, default=300)
    args = parser.parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = out / "stream"
    backend = preferred_backend()
    server = "Google's emulator" if backend == "emulator" else "this project's test double"
    print(f"demo-stream: local Pub/Sub: {server}; stream for {args.seconds:.0f} s; output in "
          f"{out}/", flush=True)
    with pubsub_backend(backend, PROJECT):
        streams = Streams(PROJECT, "demo")
        command = StreamingCommand(
            streams, PROJECT, args.bundle, out / "sentiment-score.log",
            "--key_attribute", "brand", "--window_seconds", "10", "--alert_min_posts", "5",
            "--alert_negative_share", "0.5", "--allowed_lateness_seconds", "600",
            "--output_files", str(files))
        try:
            streams.publish([message("warming up", -1)], brand="acme")
            if not streams.collect_until(lambda: streams.received["scored"]
                                         or command.process.poll() is not None, 300) \
                    or command.process.poll() is not None:
                print("demo-stream: the stream scored nothing within 300 s; see "
                      f"{out}/sentiment-score.log", file=sys.stderr)
                return 1
            published = publish_for(streams, sample_posts(Path(args.shared_data), args.posts),
                                    args.seconds)
            streams.collect_until(
                lambda: len(streams.received["scored"]) + len(streams.received["dead"])
                >= published + 1, 120, kinds=Streams.OUTPUTS, settle_s=15)
        finally:
            status = command.stop()
            streams.close()
    print_outcome(streams)
    page = out / "stream.html"
    report_main(["--aggregates", f"{files}-aggregates-*.jsonl", "--output", str(page),
                 "--title", "Demo stream: sentiment per brand"])
    print(f"demo-stream: stream page {page}; the stream exited with status {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
