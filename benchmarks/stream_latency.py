"""Streaming benchmark (issue 5): sustained messages/s, publish->scored latency, memory over time.

    .venv/bin/python benchmarks/stream_latency.py [--bundle DIR] [--backend double]

Against a loopback Pub/Sub (Google's emulator when gcloud is on the PATH, else the test double
`beam_pipeline.streaming.local_pubsub`), for each offered rate (``--rates``, default 50, 100, 200
messages/s):

1. starts the product command as a subprocess: ``sentiment-score --streaming --runner
   BundleBasedDirectRunner --precision int8`` reading a subscription, writing scored records,
   dead letters and aggregates (60 s windows) to topics;
2. waits until a warm-up message comes out scored (model loaded);
3. a separate publisher process publishes real English tweets (../shared/data/tweets) as JSON
   messages
   at the offered rate for ``--seconds``;
4. this process pulls the scored topic: latency of a message = publish time of its scored record
   minus publish time of the input message (both stamped by the Pub/Sub server on this machine);
   sustained rate = messages scored / (last scored - first published);
5. samples the pipeline process's resident memory every 2 s (VmRSS, /proc).

Then one long run at ``--memory_rate`` (100/s) for ``--memory_minutes`` (10): peak RSS in the
first minute and in the last minute. Runner ceiling (``--ceiling_rate``, default the highest
rate): the same command and load with a tiny random BERT bundle (2 layers, hidden 32, built
with `testkit.models.build_tiny_bert` and exported with sentiment-export's code), whose inference
costs next to nothing: what the DirectRunner and Pub/Sub sustain without a real model. Peer for
scale: the same bundle scored directly with ONNX Runtime (`load_scoring_model(...).predict`, no
Beam, no Pub/Sub) on batches of 10 (one DirectRunner Pub/Sub pull) and of 64. Default bundle:
``MODELS/bundle-minilm-tweets-social`` (the social model, exported with int8; MODELS:
``benchlib.default_models_dir()``). Writes
benchmarks/results/stream_latency.{md,json} (``--results_name``); ``--render_only`` rewrites the
Markdown from the JSON.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

from google.cloud import pubsub_v1

import benchlib
from beam_pipeline.streaming.local_pubsub import preferred_backend, pubsub_backend
from testkit.streams import StreamingCommand, Streams

benchlib.offline()

TWEETS = benchlib.SHARED_DATA / "tweets" / "train.csv"
PROJECT = "bench-project"
GOAL_P99_S = 2.0


def read_tweets() -> list[str]:
    with open(TWEETS, newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS from /proc); the pipeline is one process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def publish_at_rate(topic: str, rate: float, seconds: float, run: str, tweets: list[str]) -> None:
    """Publisher process: ``rate`` messages/s for ``seconds``, on a fixed schedule."""
    publisher = pubsub_v1.PublisherClient()
    start = time.monotonic()
    futures = []
    for index in range(int(rate * seconds)):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        fields = {"text": tweets[index % len(tweets)], "id": f"{run}-{index}", "source": "bench"}
        futures.append(publisher.publish(topic, json.dumps(fields).encode("utf-8"),
                                         brand=("acme", "globex", "initech")[index % 3]))
    for future in futures:
        future.result(timeout=60)


class Run:
    """One pipeline subprocess (`testkit.streams.StreamingCommand`) with its own topics and
    subscriptions (`testkit.streams.Streams`)."""

    def __init__(self, name: str, bundle: str, readers: int, max_batch_duration_secs: int):
        self.name = name
        self.streams = Streams(PROJECT, name)
        log = Path(tempfile.mkstemp(prefix=f"stream_latency-{name}-", suffix=".log")[1])
        self.command = StreamingCommand(
            self.streams, PROJECT, bundle, log, "--runner", "BundleBasedDirectRunner",
            "--key_attribute", "brand", "--window_seconds", "60", "--precision", "int8",
            "--pubsub_readers", str(readers),
            "--max_batch_duration_secs", str(max_batch_duration_secs))
        self.process = self.command.process
        self.memory: list[tuple[float, int]] = []
        self.latencies: dict[str, float] = {}
        self.scored_at: list[float] = []

    def sample_memory(self, since: float) -> None:
        self.memory.append((time.monotonic() - since, rss_bytes(self.process.pid)))

    def pull_scored(self, timeout_s: float = 2) -> int:
        messages = self.streams.drain("scored", timeout_s)
        self.streams.received["scored"].clear()  # keep only the figures, not the messages
        for message in messages:
            record = json.loads(message.data)
            published = datetime.datetime.fromisoformat(record["publish_time"])
            self.latencies[record["id"]] = (message.publish_time - published).total_seconds()
            self.scored_at.append(message.publish_time.timestamp())
        return len(messages)

    def warm_up(self, limit_s: float = 180) -> float:
        started = time.monotonic()
        self.streams.publish([json.dumps({"text": "warming up", "id": "warm-up"}).encode()])
        while "warm-up" not in self.latencies:
            if time.monotonic() - started > limit_s or self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: pipeline produced nothing in {limit_s} s; "
                                   f"its output: {self.command.log_path}")
            self.pull_scored()
        del self.latencies["warm-up"]
        self.scored_at.clear()
        return time.monotonic() - started

    def stop(self) -> None:
        self.command.stop()
        self.streams.close()


def measure(name: str, args: argparse.Namespace, rate: float, seconds: float,
            tweets: list[str], drain_s: float = 60) -> dict:
    """One offered rate: publish, collect, sample memory; the figures of one run."""
    run = Run(name, args.bundle, args.pubsub_readers, args.max_batch_duration_secs)
    try:
        warm_up_s = run.warm_up()
        started = time.monotonic()
        first_published = time.time()
        publisher = multiprocessing.get_context("spawn").Process(
            target=publish_at_rate, args=(run.streams.topics["in"], rate, seconds, name, tweets))
        publisher.start()
        expected = int(rate * seconds)
        next_sample = 0.0
        while len(run.latencies) < expected and (
                publisher.is_alive() or time.monotonic() - started < seconds + drain_s):
            run.pull_scored()
            if time.monotonic() - started >= next_sample:
                run.sample_memory(started)
                next_sample += 2
        publisher.join()
    finally:
        run.stop()
    latencies = sorted(run.latencies.values())
    span = (max(run.scored_at) - first_published) if run.scored_at else float("nan")

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies \
            else float("nan")

    first_minute = [rss for at, rss in run.memory if at <= 60]
    last_minute = [rss for at, rss in run.memory if at >= run.memory[-1][0] - 60]
    return {"offered_per_s": rate, "seconds": seconds, "published": expected,
            "scored": len(latencies), "sustained_per_s": len(latencies) / span,
            "latency_p50_s": quantile(0.50), "latency_p99_s": quantile(0.99),
            "latency_max_s": latencies[-1] if latencies else float("nan"),
            "warm_up_s": warm_up_s,
            "rss_peak_first_minute_mb": max(first_minute) / 2**20,
            "rss_peak_last_minute_mb": max(last_minute) / 2**20,
            "rss_samples": [(round(at, 1), round(rss / 2**20, 1)) for at, rss in run.memory],
            "command": " ".join(run.command.command[1:])}


def raw_onnx_rate(bundle: str, tweets: list[str], batch: int, repeats: int = 3) -> float:
    """Peer: records/s of the bundle scored directly (no Beam, no Pub/Sub), median of repeats."""
    from beam_pipeline.model import load_scoring_model

    model = load_scoring_model(bundle, precision="int8", device="cpu")
    texts = tweets[:640]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            model.predict(texts[start:start + batch])
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates)


def tiny_bundle(directory: Path) -> str:
    """A bundle of a tiny random BERT (int8 and fp32) for the runner-ceiling run."""
    from export.exporter import export_bundle
    from testkit.models import build_tiny_bert

    model = build_tiny_bert(directory / "model", ["bearish", "bullish", "neutral"])
    export_bundle(model, directory / "bundle", precisions=("fp32", "int8"))
    return str(directory / "bundle")


RATES_TABLE_HEADER = (
    "| offered msg/s | published | scored | sustained msg/s | × offered | p50 latency s | "
    f"p99 latency s | p99 < {GOAL_P99_S:g} s | peak RSS MB | × raw ONNX (batch 10) |",
    "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")


def rate_row(row: dict, raw_batch_10: float, label: str = "") -> str:
    """One line of the rates table."""
    return (f"| {label}{row['offered_per_s']:g} | {row['published']} | {row['scored']} | "
            f"{row['sustained_per_s']:.1f} | {row['sustained_per_s'] / row['offered_per_s']:.2f} | "
            f"{row['latency_p50_s']:.2f} | {row['latency_p99_s']:.2f} | "
            f"{'yes' if row['latency_p99_s'] < GOAL_P99_S else 'no'} | "
            f"{max(r for _, r in row['rss_samples']):.0f} | "
            f"{row['sustained_per_s'] / raw_batch_10:.2f} |")


def by_batch(rates: dict) -> dict[int, float]:
    """``raw_onnx_records_per_s`` by batch size (JSON writes the sizes as strings)."""
    return {int(batch): rate for batch, rate in rates.items()}


def rates_lines(results: dict) -> list[str]:
    """The rates table and the raw ONNX Runtime peer of one run."""
    peer = by_batch(results["raw_onnx_records_per_s"])
    return [*RATES_TABLE_HEADER, *(rate_row(row, peer[10]) for row in results["rates"]), "",
            "Peer, same bundle scored directly with ONNX Runtime (no Beam, no Pub/Sub), "
            "records/s: " + ", ".join(f"batch {b}: {r:.1f}" for b, r in peer.items())]


def history_headline(result: dict) -> list[str]:
    """The figures of an earlier run, for the History section."""
    return [f"{machine_text(result['machine'])}; Pub/Sub {result['backend']}:", "",
            *rates_lines(result)]


def machine_text(described) -> str:
    return benchlib.machine_line(described).removeprefix("Machine: ")


def markdown(results: dict) -> str:
    """The results (the JSON of one run) as a report for people."""
    lines = [
        *benchlib.header("Streaming benchmark (issue 5)", results),
        f"Pub/Sub: {results['backend']} on 127.0.0.1; bundle `{results['bundle']}` (int8, "
        "CPU); messages: " + results.get("messages", "financial tweets from ../shared/data")
        + " as JSON"
        # older results said in their machine line that the machine is shared
        + ("; the machine is shared with other jobs" if isinstance(results["machine"], dict)
           else "") + "  ",
        f"Pipeline: `sentiment-score {results['rates'][0]['command'] if results['rates'] else ''}`",
        "", *rates_lines(results), ""]
    ceiling = results.get("ceiling")
    if ceiling:
        raw = by_batch(ceiling["raw_onnx_records_per_s"])
        lines += ["Runner ceiling: the same command and load with a tiny random BERT bundle "
                  f"(2 layers, hidden 32; raw ONNX Runtime {raw[10]:.0f} records/s at batch 10), "
                  "so that inference costs next to nothing:", "", *RATES_TABLE_HEADER,
                  rate_row(ceiling["run"], raw[10], "tiny model, "), ""]
    memory = results.get("memory")
    if memory:
        growth = memory["rss_peak_last_minute_mb"] / memory["rss_peak_first_minute_mb"] - 1
        lines += [
            f"Memory: {memory['seconds'] / 60:g} min at {memory['offered_per_s']:g} msg/s offered "
            f"({memory['scored']} of {memory['published']} scored, p99 "
            f"{memory['latency_p99_s']:.2f} s): peak RSS {memory['rss_peak_first_minute_mb']:.0f} "
            f"MB in the first minute, {memory['rss_peak_last_minute_mb']:.0f} MB in the last "
            f"({growth:+.1%}; goal: within ±10%).", ""]
    lines += ["Latency = publish time of the scored record minus publish time of the input "
              "message (both from the Pub/Sub server). Sustained = scored / (last scored - first "
              "published). Each rate is a fresh pipeline process, warmed up with one message."]
    lines += benchlib.history_lines(results, history_headline)
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=str(benchlib.default_models_dir()
                                                / "bundle-minilm-tweets-social"),
                        help="three-class social bundle with int8, written by sentiment-export "
                             "(default: %(default)s)")
    parser.add_argument("--rates", default="50,100,200")
    parser.add_argument("--seconds", type=float, default=60, help="publishing time per rate")
    parser.add_argument("--memory_minutes", type=float, default=10,
                        help="length of the memory run (0: skip it)")
    parser.add_argument("--memory_rate", type=float, default=100)
    parser.add_argument("--pubsub_readers", type=int, default=4,
                        help="sentiment-score --pubsub_readers (parallel pulls)")
    parser.add_argument("--max_batch_duration_secs", type=int, default=0,
                        help="sentiment-score --max_batch_duration_secs (0: one pull, one batch)")
    parser.add_argument("--backend", default=preferred_backend(), choices=("emulator", "double"))
    parser.add_argument("--ceiling_rate", type=float, default=None,
                        help="offered rate of the runner-ceiling run with a tiny random model "
                             "(default: the highest of --rates; 0 skips it)")
    parser.add_argument("--results_name", default="stream_latency",
                        help="writes benchmarks/results/NAME.{md,json}")
    benchlib.add_render_only(parser)
    args = parser.parse_args()
    name = args.results_name
    if args.render_only:
        return benchlib.render_only(name, markdown)
    if not (Path(args.bundle) / "bundle.json").is_file():
        sys.exit(f"stream_latency: {args.bundle}: no bundle.json; pass --bundle with a bundle "
                 "written by sentiment-export (int8 MiniLM)")
    tweets = read_tweets()
    results = {
        "command": benchlib.command_line("stream_latency.py"), "date": benchlib.now(),
        "machine": benchlib.machine(), "backend": args.backend, "bundle": args.bundle,
        "messages": f"tweets from {TWEETS.relative_to(benchlib.SHARED_DATA.parent)}",
        "rates": [], "raw_onnx_records_per_s": {batch: raw_onnx_rate(args.bundle, tweets, batch)
                                                for batch in (10, 64)}}
    with pubsub_backend(args.backend, PROJECT):
        rates = [float(rate) for rate in args.rates.split(",")]
        for rate in rates:
            results["rates"].append(measure(f"rate{rate:g}", args, rate, args.seconds, tweets))
            benchlib.write_results(name, results, markdown(results))
            print(json.dumps({k: v for k, v in results["rates"][-1].items()
                              if k != "rss_samples"}), flush=True)
        ceiling_rate = max(rates) if args.ceiling_rate is None else args.ceiling_rate
        if ceiling_rate > 0:
            with tempfile.TemporaryDirectory(prefix="stream_latency_tiny_") as tmp:
                bundle = tiny_bundle(Path(tmp))
                results["ceiling"] = {
                    "raw_onnx_records_per_s": {batch: raw_onnx_rate(bundle, tweets, batch)
                                               for batch in (10, 64)},
                    "run": measure(f"ceiling{ceiling_rate:g}",
                                   argparse.Namespace(**{**vars(args), "bundle": bundle}),
                                   ceiling_rate, args.seconds, tweets)}
            benchlib.write_results(name, results, markdown(results))
        if args.memory_minutes > 0:
            results["memory"] = measure("memory", args, args.memory_rate,
                                        args.memory_minutes * 60, tweets)
    print(benchlib.write_results(name, results, markdown(results)).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
