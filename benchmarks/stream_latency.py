"""Streaming benchmark (issues 5 and 17): sustained rate against the runner's own ceiling,
publish->scored latency at fractions of that rate, memory over time.

    .venv/bin/python benchmarks/stream_latency.py [--bundle DIR] [--backend double]

One command, one loopback Pub/Sub server for every run (Google's emulator when gcloud is on the
PATH, else the test double `beam_pipeline.streaming.local_pubsub`), the same load (real English
tweets from ../shared/data/tweets as JSON messages, published by a separate process on a fixed
schedule). Each run is a fresh pipeline process with its own topics, warmed up with one message
(model loaded) before publishing starts:

1. Sustained rate at saturation: ``--saturation_rate`` (300 msg/s, well above what any of them
   takes) offered for ``--seconds`` to
   a. the baseline pipeline (`baseline_pipeline`, this script with ``--baseline_pipeline``):
      ``ReadFromPubSub(subscription, with_attributes=True) | Map(identity) |
      WriteToPubSub(topic, with_attributes=True)`` on the same streaming BundleBasedDirectRunner,
      nothing else: what the runner and Pub/Sub sustain at all;
   b. the product command with a tiny random BERT bundle (2 layers, hidden 32, built with
      `testkit.models.build_tiny_bert`, exported with sentiment-export's code), whose inference
      costs next to nothing;
   c. the product command with ``--bundle``;
   b and c each without and with ``--cache_dofn_specs`` (the opt-in runner patch).
   The product command is ``sentiment-score --streaming --runner BundleBasedDirectRunner
   --precision int8`` reading a subscription, writing scored records, dead letters and
   aggregates (60 s windows) to topics. Sustained = messages out / (publish time of the last
   output message - time publishing started); reported as ratios to the baseline's.
2. Latency at ``--fractions`` (25, 50 and 80 %) of the rate c sustained (``--latency_run``:
   with ``--cache_dofn_specs`` unless ``real``; its command too), at ``--goal_rate``
   (100 msg/s, the issue's goal: p99 < 2 s) unless a fraction is that rate already, and at the
   optional ``--rates``: p50 and p99 of publish time of the scored record minus publish time
   of the input message (both stamped by the Pub/Sub server on this machine).
3. Memory: one long run at ``--memory_rate`` (100 msg/s) for ``--memory_minutes`` (10): peak
   resident memory (VmRSS, sampled every 2 s in every run) in the first and in the last minute.

Peer for scale: the bundle scored directly with ONNX Runtime (`load_scoring_model(...).predict`,
no Beam, no Pub/Sub) on batches of 10 (one DirectRunner Pub/Sub pull) and of 64. CPU: every run
records the core-seconds the whole machine (/proc/stat) and the pipeline process used from the
start of publishing to its end, per message out. From the baseline and the bundle's inference
(scored directly) come two ceilings for the bundle's pipeline (`ceiling_lines`): the runner's
one worker thread, and the machine's cores. The report says
whether each goal of issue 17 is met: p99 < 2 s at 100 msg/s offered, sustained >= 0.8 x the
baseline's, peak RSS of the memory run's last minute within 10 % of its first minute's. Default
bundle: ``MODELS/bundle-minilm-tweets-social`` (the social model, exported with int8; MODELS:
``benchlib.default_models_dir()``). Writes benchmarks/results/stream_latency.{md,json}
(``--results_name``; a result written before issue 17 is kept in its ``history``);
``--render_only`` rewrites the Markdown from the JSON.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from google.cloud import pubsub_v1

import benchlib
from beam_pipeline.streaming.local_pubsub import preferred_backend, pubsub_backend
from testkit.streams import PipelineProcess, StreamingCommand, Streams

benchlib.offline()

TWEETS = benchlib.SHARED_DATA / "tweets" / "train.csv"
PROJECT = "bench-project"
GOAL_P99_S = 2.0
GOAL_RATE = 100.0  # msg/s offered at which p99 < GOAL_P99_S is the goal (issue 17)
GOAL_BASELINE_RATIO = 0.8
GOAL_MEMORY_GROWTH = 0.10
SATURATION_DRAIN_S = 5  # after publishing: what was in flight still counts at saturation
LATENCY_DRAIN_S = 60  # after publishing, at a rate the pipeline sustains: the last latencies
OVERLOAD_DRAIN_S = 15  # after publishing, at a rate it does not: its backlog never drains
SCRIPT = Path(__file__).resolve().relative_to(benchlib.ROOT)


def read_tweets() -> list[str]:
    with open(TWEETS, newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS from /proc); the pipeline is one process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def machine_busy_seconds() -> float:
    """CPU time all processes on this machine have used since boot (every core's non-idle time
    from /proc/stat), in core-seconds."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user and system, all threads) of one process, in core-seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline_pipeline(subscription: str, topic: str) -> int:
    """The runner's own ceiling: read, pass on, write, on the runner sentiment-score uses; until
    SIGINT or SIGTERM, which end the process at once (not after the Pub/Sub pull in flight)."""
    import apache_beam as beam
    from apache_beam.io.gcp.pubsub import ReadFromPubSub, WriteToPubSub
    from apache_beam.options.pipeline_options import PipelineOptions

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: os._exit(0))
    pipeline = beam.Pipeline(options=PipelineOptions(
        flags=[], runner="BundleBasedDirectRunner", streaming=True))
    _ = (pipeline
         | ReadFromPubSub(subscription=subscription, with_attributes=True)
         | beam.Map(lambda message: message)
         | WriteToPubSub(topic, with_attributes=True))
    pipeline.run().wait_until_finish()
    return 0


def publish_at_rate(topic: str, rate: float, seconds: float, run: str, tweets: list[str],
                    started_at) -> None:
    """Publisher process: ``rate`` messages/s for ``seconds``, on a fixed schedule; the wall
    clock time publishing started goes to ``started_at`` (a shared double)."""
    publisher = pubsub_v1.PublisherClient()
    start = time.monotonic()
    started_at.value = time.time()
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
    """One pipeline subprocess with its own topics and subscriptions
    (`testkit.streams.Streams`): the product command (`testkit.streams.StreamingCommand`) with
    ``bundle``, or the baseline pipeline when ``bundle`` is None."""

    def __init__(self, name: str, bundle: str | None, readers: int, max_batch_duration_secs: int,
                 extra_flags: tuple[str, ...] = ()):
        self.name = name
        self.streams = Streams(PROJECT, name)
        log = Path(tempfile.mkstemp(prefix=f"stream_latency-{name}-", suffix=".log")[1])
        if bundle is None:
            self.command = PipelineProcess(  # `baseline_pipeline`, from the scored topic's view
                [sys.executable, str(SCRIPT), "--baseline_pipeline",
                 "--input_subscription", self.streams.subscriptions["in"],
                 "--output_topic", self.streams.topics["scored"]], log, cwd=benchlib.ROOT)
        else:
            self.command = StreamingCommand(
                self.streams, PROJECT, bundle, log, "--runner", "BundleBasedDirectRunner",
                "--key_attribute", "brand", "--window_seconds", "60", "--precision", "int8",
                "--pubsub_readers", str(readers),
                "--max_batch_duration_secs", str(max_batch_duration_secs), *extra_flags)
        self.process = self.command.process
        self.memory: list[tuple[float, int, int]] = []  # (seconds, RSS bytes, scored so far)
        # id of each message out -> its latency (None from the baseline, whose output is the
        # input message itself, without the input's publish time)
        self.latencies: dict[str, float | None] = {}
        self.scored_at: list[float] = []

    def sample_memory(self, since: float) -> None:
        self.memory.append((time.monotonic() - since, rss_bytes(self.process.pid),
                            len(self.latencies)))

    def pull_scored(self, timeout_s: float = 2) -> int:
        messages = self.streams.drain("scored", timeout_s)
        self.streams.received["scored"].clear()  # keep only the figures, not the messages
        for message in messages:
            record = json.loads(message.data)
            published = record.get("publish_time")
            self.latencies[record["id"]] = None if published is None else (
                message.publish_time - datetime.datetime.fromisoformat(published)
            ).total_seconds()
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


def measure(name: str, args: argparse.Namespace, bundle: str | None, rate: float,
            seconds: float, tweets: list[str], drain_s: float = LATENCY_DRAIN_S,
            extra_flags: tuple[str, ...] = ()) -> dict:
    """One offered rate on a fresh pipeline (``bundle``; None: the baseline pipeline; the
    product command gets ``extra_flags`` too): publish, collect, sample memory; the figures of
    one run."""
    run = Run(name, bundle, args.pubsub_readers, args.max_batch_duration_secs, extra_flags)
    publisher = None
    try:
        warm_up_s = run.warm_up()
        started, started_wall = time.monotonic(), time.time()
        context = multiprocessing.get_context("spawn")
        started_at = context.Value("d", 0.0)
        first_published = time.time()  # if the publisher fails before it starts publishing
        publisher = context.Process(target=publish_at_rate, args=(
            run.streams.topics["in"], rate, seconds, name, tweets, started_at))
        publisher.start()
        expected = int(rate * seconds)
        next_sample = 0.0
        machine_busy, pipeline_cpu = machine_busy_seconds(), process_cpu_seconds(run.process.pid)
        while len(run.latencies) < expected and (
                publisher.is_alive() or time.monotonic() - started < seconds + drain_s):
            run.pull_scored()
            if time.monotonic() - started >= next_sample:
                run.sample_memory(started)
                next_sample += 2
        publisher.join()
        machine_busy = machine_busy_seconds() - machine_busy
        pipeline_cpu = process_cpu_seconds(run.process.pid) - pipeline_cpu
        first_published = started_at.value or first_published
    finally:
        if publisher is not None and publisher.is_alive():
            publisher.terminate()
            publisher.join()
        run.stop()
    latencies = sorted(latency for latency in run.latencies.values() if latency is not None)
    span = (max(run.scored_at) - first_published) if run.scored_at else float("nan")

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies \
            else float("nan")

    first_minute = [rss for at, rss, _ in run.memory if at <= 60]
    last_minute = [rss for at, rss, _ in run.memory if at >= run.memory[-1][0] - 60]

    publishing_from = first_published - started_wall  # the publisher's start, on run.memory's clock

    def behind(at: float, scored: int) -> int:
        """Messages published by ``at`` (the publisher keeps ``rate``) and not scored yet."""
        return max(0, min(expected, int(rate * (at - publishing_from))) - scored)
    return {"offered_per_s": rate, "seconds": seconds, "published": expected,
            "scored": len(run.latencies), "sustained_per_s": len(run.latencies) / span,
            "latency_p50_s": quantile(0.50), "latency_p99_s": quantile(0.99),
            "latency_max_s": latencies[-1] if latencies else float("nan"),
            "warm_up_s": warm_up_s,
            # core-seconds from publishing's start to the last message out: every process on
            # the machine (pipeline, Pub/Sub server, publisher, this script), the pipeline alone
            "machine_cpu_s": machine_busy, "pipeline_cpu_s": pipeline_cpu,
            "rss_peak_first_minute_mb": max(first_minute) / 2**20,
            "rss_peak_last_minute_mb": max(last_minute) / 2**20,
            "rss_samples": [(round(at, 1), round(rss / 2**20, 1)) for at, rss, _ in run.memory],
            "behind_samples": [(round(at, 1), behind(at, scored))
                               for at, _, scored in run.memory],
            "command": " ".join(run.command.command[1:])}


def raw_onnx_rate(bundle: str, tweets: list[str], batch: int, repeats: int = 3,
                  intra_op_threads: int = 0) -> tuple[float, float]:
    """Peer: records/s of the bundle scored directly (no Beam, no Pub/Sub) and the CPU time a
    record took (core-milliseconds, tokenising included, every thread of the process), medians
    of repeats."""
    from beam_pipeline.model import load_scoring_model

    model = load_scoring_model(bundle, precision="int8", device="cpu",
                               intra_op_threads=intra_op_threads)
    texts = tweets[:640]
    rates, cpu_ms = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(texts), batch):
            model.predict(texts[start:start + batch])
        rates.append(len(texts) / (time.perf_counter() - started))
        cpu_ms.append(1000 * (time.process_time() - started_cpu) / len(texts))
    return statistics.median(rates), statistics.median(cpu_ms)


def tiny_bundle(directory: Path) -> str:
    """A bundle of a tiny random BERT (int8 and fp32) for the runner-ceiling run."""
    from export.exporter import export_bundle
    from testkit.models import build_tiny_bert

    model = build_tiny_bert(directory / "model", ["bearish", "bullish", "neutral"])
    export_bundle(model, directory / "bundle", precisions=("fp32", "int8"))
    return str(directory / "bundle")


def latency_plan(sustained: float, fractions: list[float], goal_rate: float,
                 extra_rates: list[float]) -> list[tuple[str, float]]:
    """(label, offered rate) of each latency run: the fractions of ``sustained``, the goal rate
    unless a fraction is within 1 % of it, the extra rates."""
    plan = [(f"{fraction:.0%} of sustained", round(fraction * sustained, 1))
            for fraction in fractions] if sustained > 0 else []
    if goal_rate > 0 and not any(abs(rate - goal_rate) <= 0.01 * goal_rate for _, rate in plan):
        plan.append(("goal rate", goal_rate))
    return plan + [("extra", rate) for rate in extra_rates]


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
            f"{peak_rss_mb(row):.0f} | {row['sustained_per_s'] / raw_batch_10:.2f} |")


def peak_rss_mb(row: dict) -> float:
    return max(rss for _, rss in row["rss_samples"])


def by_batch(rates: dict) -> dict[int, float]:
    """``raw_onnx_records_per_s`` by batch size (JSON writes the sizes as strings)."""
    return {int(batch): rate for batch, rate in rates.items()}


def rates_lines(results: dict) -> list[str]:
    """The latency table (each row labelled with why that rate was run, when it says) and the
    raw ONNX Runtime peer of one run."""
    peer = by_batch(results["raw_onnx_records_per_s"])
    rows = [rate_row(row, peer[10], f"{row['label']}: " if row.get("label") else "")
            for row in results["rates"]]
    return [*RATES_TABLE_HEADER, *rows, "",
            "Peer, same bundle scored directly with ONNX Runtime (no Beam, no Pub/Sub), "
            "records/s: " + ", ".join(f"batch {b}: {r:.1f}" for b, r in peer.items())]


SATURATION_NAMES = {"baseline": "baseline: read → identity → write",
                    "tiny": "sentiment-score, tiny random model",
                    "tiny_cached": "sentiment-score --cache_dofn_specs, tiny random model",
                    "real": "sentiment-score, the bundle",
                    "real_cached": "sentiment-score --cache_dofn_specs, the bundle"}
#: the product's saturation runs: key -> (bundle: "tiny" or "real", extra flags)
PRODUCT_RUNS = {"tiny": ("tiny", ()), "tiny_cached": ("tiny", ("--cache_dofn_specs",)),
                "real": ("real", ()), "real_cached": ("real", ("--cache_dofn_specs",))}


def saturation_lines(saturation: dict) -> list[str]:
    """The sustained rates at saturation, as ratios to the baseline's."""
    baseline = saturation.get("baseline", {}).get("sustained_per_s", float("nan"))
    lines = [f"Sustained rate at saturation ({saturation['offered_per_s']:g} msg/s offered for "
             f"{saturation['seconds']:g} s; out = messages on the output topic):", "",
             "| pipeline | published | out | sustained msg/s | × offered | × baseline | "
             "CPU core-ms a message: machine / pipeline | peak RSS MB | warm-up s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, name in SATURATION_NAMES.items():
        row = saturation.get(key)
        if row:
            cpu = (f"{cpu_ms_per_message(row, 'machine_cpu_s'):.2f} / "
                   f"{cpu_ms_per_message(row, 'pipeline_cpu_s'):.2f}"
                   if "machine_cpu_s" in row else "not recorded")
            lines.append(f"| {name} | {row['published']} | {row['scored']} | "
                         f"{row['sustained_per_s']:.1f} | "
                         f"{row['sustained_per_s'] / row['offered_per_s']:.2f} | "
                         f"{row['sustained_per_s'] / baseline:.2f} | {cpu} | "
                         f"{peak_rss_mb(row):.0f} | {row['warm_up_s']:.1f} |")
    if any(row["sustained_per_s"] >= 0.9 * row["offered_per_s"]
           for key, row in saturation.items() if key in SATURATION_NAMES):
        lines += ["", "A pipeline took 90 % or more of the offered rate: it was not saturated "
                      "and sustains more (rerun with a higher `--saturation_rate`)."]
    return lines


def cpu_ms_per_message(row: dict, field: str) -> float:
    """Core-milliseconds of ``field`` (``machine_cpu_s`` or ``pipeline_cpu_s``) a message out."""
    return 1000 * row[field] / row["scored"]


def ceiling_lines(results: dict) -> list[str]:
    """The most this runner and machine allow the bundle's pipeline, from figures of the same run:
    the DirectRunner's one worker thread spends at least the baseline's time on a message and
    then waits for its inference (scored directly, batches of 10); and the machine's cores must
    hold at least the baseline's CPU plus the inference's own (one thread, the least it needs)."""
    saturation = results.get("saturation", {})
    baseline = saturation.get("baseline", {})
    inference_ms = results.get("inference_cpu_ms_per_record")
    if "machine_cpu_s" not in baseline or not inference_ms:
        return []
    rate = baseline["sustained_per_s"]
    baseline_ms = 1000 / rate  # of the runner's thread, a message
    inference_ms_on_thread = 1000 / by_batch(results["raw_onnx_records_per_s"])[10]
    thread_rate = 1000 / (baseline_ms + inference_ms_on_thread)
    cores = results["machine"]["logical_cpus"]
    baseline_cpu_ms = cpu_ms_per_message(baseline, "machine_cpu_s")
    cores_rate = 1000 * cores / (baseline_cpu_ms + inference_ms)
    return ["", "What this runner and machine allow the bundle's pipeline (figures of this run):",
            "", f"- its one worker thread: the baseline's {baseline_ms:.2f} ms a message, then "
            f"the inference's {inference_ms_on_thread:.2f} ms (ONNX Runtime directly, "
            f"batches of 10): at most {thread_rate:.0f} msg/s, "
            f"{thread_rate / rate:.2f} × the baseline's rate;",
            f"- the {cores} cores: the baseline's {baseline_cpu_ms:.2f} core-ms a message "
            f"(every process, Pub/Sub server included) and the inference's {inference_ms:.2f} "
            f"(one thread, the least CPU it takes): at most {cores_rate:.0f} msg/s, "
            f"{cores_rate / rate:.2f} ×.", "",
            f"The goal ({GOAL_BASELINE_RATIO:g} ×) needs the inference "
            f"to take at most {(1 / GOAL_BASELINE_RATIO - 1) * baseline_ms:.2f} ms a message "
            "on the runner's thread."]


def goal_lines(results: dict) -> list[str]:
    """Whether each goal of issue 17 is met (where this result measured it)."""
    lines = ["| goal (issue 17) | measured | met |", "|---|---|---|"]
    goal_rate = results.get("goal_rate", GOAL_RATE)
    rows = [row for row in results["rates"] if abs(row["offered_per_s"] - goal_rate)
            <= 0.01 * goal_rate]
    if rows:
        row = rows[0]
        met = row["latency_p99_s"] < GOAL_P99_S and row["scored"] >= row["published"]
        flag = (" with `--cache_dofn_specs`" if results.get("latency_run") == "real_cached"
                else "")
        lines.append(f"| p99 < {GOAL_P99_S:g} s at {goal_rate:g} msg/s offered{flag} | p99 "
                     f"{row['latency_p99_s']:.2f} s at {row['offered_per_s']:g} msg/s, "
                     f"{row['scored']} of {row['published']} scored | {'yes' if met else 'no'} |")
    else:
        lines.append(f"| p99 < {GOAL_P99_S:g} s at {goal_rate:g} msg/s offered | not measured "
                     "| – |")
    saturation = results.get("saturation", {})
    real_runs = [key for key in ("real", "real_cached") if key in saturation]
    if "baseline" in saturation and real_runs:
        for key in real_runs:
            ratio = (saturation[key]["sustained_per_s"]
                     / saturation["baseline"]["sustained_per_s"])
            flag = " with `--cache_dofn_specs`" if key == "real_cached" else ""
            lines.append(f"| sustained ≥ {GOAL_BASELINE_RATIO:g} × the baseline's{flag} | "
                         f"{ratio:.2f} × ({saturation[key]['sustained_per_s']:.1f} of "
                         f"{saturation['baseline']['sustained_per_s']:.1f} msg/s) | "
                         f"{'yes' if ratio >= GOAL_BASELINE_RATIO else 'no'} |")
    else:
        lines.append(f"| sustained ≥ {GOAL_BASELINE_RATIO:g} × the baseline's | not measured "
                     "| – |")
    memory = results.get("memory")
    if memory:
        growth = memory["rss_peak_last_minute_mb"] / memory["rss_peak_first_minute_mb"] - 1
        lines.append(f"| memory within ±{GOAL_MEMORY_GROWTH:.0%} over the memory run | "
                     f"{growth:+.1%} in {memory['seconds'] / 60:g} min | "
                     f"{'yes' if abs(growth) <= GOAL_MEMORY_GROWTH else 'no'} |")
    else:
        lines.append(f"| memory within ±{GOAL_MEMORY_GROWTH:.0%} over the memory run | not "
                     "measured | – |")
    return lines


def figure_lines(results: dict) -> list[str]:
    """The figures of one run: saturation, latency, runner ceiling (older results), memory."""
    lines = []
    if results.get("saturation"):
        lines += [*saturation_lines(results["saturation"]), *ceiling_lines(results), ""]
        if results.get("fractions"):
            run = SATURATION_NAMES[results.get("latency_run", "real")]
            lines += ["Latency at " + ", ".join(f"{f:.0%}" for f in results["fractions"])
                      + f" of the rate the bundle sustains at saturation ({run})"
                      + (f", at {results['goal_rate']:g} msg/s (goal)"
                         if results.get("goal_rate") else "") + ":", ""]
    lines += [*rates_lines(results), ""]
    ceiling = results.get("ceiling")  # results written before issue 17
    if ceiling:
        raw = by_batch(ceiling["raw_onnx_records_per_s"])
        lines += ["Runner ceiling: the same command and load with a tiny random BERT bundle "
                  f"(2 layers, hidden 32; raw ONNX Runtime {raw[10]:.0f} records/s at batch 10), "
                  "so that inference costs next to nothing:", "", *RATES_TABLE_HEADER,
                  rate_row(ceiling["run"], raw[10], "tiny model, "), ""]
    tiny_raw = results.get("tiny_raw_onnx_records_per_s")
    if tiny_raw:
        lines += ["Tiny random model scored directly with ONNX Runtime, records/s: "
                  + ", ".join(f"batch {b}: {r:.0f}" for b, r in by_batch(tiny_raw).items()), ""]
    memory = results.get("memory")
    if memory:
        growth = memory["rss_peak_last_minute_mb"] / memory["rss_peak_first_minute_mb"] - 1
        lines += [
            f"Memory: {memory['seconds'] / 60:g} min at {memory['offered_per_s']:g} msg/s offered "
            f"({memory['scored']} of {memory['published']} scored, p99 "
            f"{memory['latency_p99_s']:.2f} s): peak RSS {memory['rss_peak_first_minute_mb']:.0f} "
            f"MB in the first minute, {memory['rss_peak_last_minute_mb']:.0f} MB in the last "
            f"({growth:+.1%}; goal: within ±{GOAL_MEMORY_GROWTH:.0%})."
            + (behind_text(memory["behind_samples"], memory["seconds"])
               if memory.get("behind_samples") else ""), ""]
    return lines


def behind_text(samples: list, seconds: float) -> str:
    """How far the pipeline was behind the publisher at the end of the first minute and of the
    run (published by then, at the offered rate, minus scored), to set beside the memory figures:
    memory that grows while this stays small is not a backlog."""
    first = next((count for at, count in reversed(samples) if at <= 60), 0)
    last = next((count for at, count in reversed(samples) if at <= seconds), samples[-1][1])
    return (f" Messages published and not yet scored: {first} at the end of the first minute, "
            f"{last} when publishing ended.")


def history_headline(result: dict) -> list[str]:
    """The figures of an earlier run, for the History section."""
    return [f"{machine_text(result['machine'])}; Pub/Sub {result['backend']}:", "",
            *figure_lines(result)[:-1]]


def machine_text(described) -> str:
    return benchlib.machine_line(described).removeprefix("Machine: ")


def pipeline_command(results: dict) -> str:
    """The product command as one of its runs ran it."""
    real = results.get("saturation", {}).get("real")
    rows = ([real] if real else []) + results["rates"]
    return f"sentiment-score {rows[0]['command']}" if rows else ""


def markdown(results: dict) -> str:
    """The results (the JSON of one run) as a report for people."""
    lines = [
        *benchlib.header("Streaming benchmark (issues 5 and 17)", results),
        f"Pub/Sub: {results['backend']} on 127.0.0.1; bundle `{results['bundle']}` (int8, "
        "CPU); messages: " + results.get("messages", "financial tweets from ../shared/data")
        + " as JSON  ",
        f"Pipeline: `{pipeline_command(results)}`  "]
    baseline = results.get("saturation", {}).get("baseline")
    if baseline:
        lines.append(f"Baseline pipeline: `python {baseline['command']}` (ReadFromPubSub "
                     "with attributes | Map(identity) | WriteToPubSub with attributes, streaming "
                     "BundleBasedDirectRunner, nothing else)")
    lines += ["", *goal_lines(results), "", *figure_lines(results)]
    lines += ["Latency = publish time of the scored record minus publish time of the input "
              "message (both from the Pub/Sub server). Sustained = messages out / (publish time "
              "of the last one out - time publishing started). Each rate is a fresh pipeline "
              "process, warmed up with one message, on the same Pub/Sub server. The p99 goal "
              "counts as met only when every message published was scored."]
    lines += [f"\nNote: {note}" for note in results.get("notes", [])]
    lines += benchlib.history_lines(results, history_headline)
    return "\n".join(lines) + "\n"


def earlier_history(name: str) -> list[dict]:
    """The ``history`` for this run: that of ``NAME.json``, and ``NAME.json`` itself when it was
    written before issue 17 (fixed rates only, no baseline) or before its step cuts (no
    ``--cache_dofn_specs`` runs)."""
    previous = benchlib.read_results(name)
    history = previous.get("history", [])
    if previous and "saturation" not in previous:
        rates = ", ".join(f"{row['offered_per_s']:g}" for row in previous["rates"])
        what_differed = (f"fixed offered rates only ({rates} msg/s), no baseline pipeline "
                         "and no saturation runs (written before issue 17)")
    elif previous and "real_cached" not in previous["saturation"]:
        what_differed = ("the pipeline before issue 17's step cuts (Beam's WriteToPubSub, three "
                         "steps per topic and bundle; keying after parsing), no "
                         "--cache_dofn_specs runs, --pubsub_readers "
                         f"{previous.get('pubsub_readers', 4)}")
    else:
        return history
    return [*history, {"date": previous["date"], "what_differed": what_differed,
                       "result": {key: value for key, value in previous.items()
                                  if key != "history"}}]


def floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",") if value.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=str(benchlib.default_models_dir()
                                                / "bundle-minilm-tweets-social"),
                        help="three-class social bundle with int8, written by sentiment-export "
                             "(default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=60, help="publishing time per run")
    parser.add_argument("--saturation_rate", type=float, default=300,
                        help="offered msg/s of the sustained-rate runs, well above what the "
                             "pipelines take (default: %(default)s)")
    parser.add_argument("--fractions", default="0.25,0.5,0.8",
                        help="latency runs at these fractions of the rate the bundle sustains "
                             "(default: %(default)s)")
    parser.add_argument("--goal_rate", type=float, default=GOAL_RATE,
                        help="latency run at this offered rate too, unless a fraction is it "
                             "(the p99 goal's rate; default: %(default)s; 0: none)")
    parser.add_argument("--rates", default="",
                        help="more latency runs at these offered rates (msg/s, comma-separated)")
    parser.add_argument("--latency_run", default="real_cached", choices=("real", "real_cached"),
                        help="the saturation run whose command and rate the latency and memory "
                             "runs use (default: %(default)s, with --cache_dofn_specs)")
    parser.add_argument("--memory_minutes", type=float, default=10,
                        help="length of the memory run (0: skip it)")
    parser.add_argument("--memory_rate", type=float, default=100)
    parser.add_argument("--pubsub_readers", type=int, default=1,
                        help="sentiment-score --pubsub_readers (parallel pulls; default: one, "
                             "as the product's default and the baseline's single read)")
    parser.add_argument("--max_batch_duration_secs", type=int, default=0,
                        help="sentiment-score --max_batch_duration_secs (0: one pull, one batch)")
    parser.add_argument("--backend", default=preferred_backend(), choices=("emulator", "double"))
    parser.add_argument("--results_name", default="stream_latency",
                        help="writes benchmarks/results/NAME.{md,json}")
    parser.add_argument("--baseline_pipeline", action="store_true",
                        help="run only the baseline pipeline (`baseline_pipeline`), reading "
                             "--input_subscription, writing --output_topic, until Ctrl-C")
    parser.add_argument("--input_subscription", help="with --baseline_pipeline")
    parser.add_argument("--output_topic", help="with --baseline_pipeline")
    benchlib.add_render_only(parser)
    args = parser.parse_args()
    name = args.results_name
    if args.baseline_pipeline:
        return baseline_pipeline(args.input_subscription, args.output_topic)
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
        "fractions": floats(args.fractions), "goal_rate": args.goal_rate,
        "latency_run": args.latency_run, "pubsub_readers": args.pubsub_readers,
        "saturation": {"offered_per_s": args.saturation_rate, "seconds": args.seconds},
        "rates": []}
    peer = {batch: raw_onnx_rate(args.bundle, tweets, batch) for batch in (10, 64)}
    results["raw_onnx_records_per_s"] = {batch: rate for batch, (rate, _) in peer.items()}
    # the least CPU the bundle's inference needs: one thread (more threads only add
    # synchronisation, and ONNX Runtime's spinning threads count as busy)
    results["inference_cpu_ms_per_record"] = raw_onnx_rate(args.bundle, tweets, 10,
                                                           intra_op_threads=1)[1]
    history = earlier_history(name)
    if history:
        results["history"] = history

    def record(figures: dict) -> dict:
        benchlib.write_results(name, results, markdown(results))
        print(json.dumps({k: v for k, v in figures.items() if k != "rss_samples"}), flush=True)
        return figures

    saturation = results["saturation"]
    with pubsub_backend(args.backend, PROJECT):
        saturation["baseline"] = measure("baseline", args, None, args.saturation_rate,
                                         args.seconds, tweets, SATURATION_DRAIN_S)
        record(saturation["baseline"])
        latency_flags = PRODUCT_RUNS[args.latency_run][1]
        with tempfile.TemporaryDirectory(prefix="stream_latency_tiny_") as tmp:
            bundles = {"tiny": tiny_bundle(Path(tmp)), "real": args.bundle}
            results["tiny_raw_onnx_records_per_s"] = {
                batch: raw_onnx_rate(bundles["tiny"], tweets, batch)[0] for batch in (10, 64)}
            for key, (bundle, flags) in PRODUCT_RUNS.items():
                saturation[key] = measure(key, args, bundles[bundle], args.saturation_rate,
                                          args.seconds, tweets, SATURATION_DRAIN_S, flags)
                record(saturation[key])
        sustained = saturation[args.latency_run]["sustained_per_s"]
        plan = latency_plan(sustained, results["fractions"], args.goal_rate, floats(args.rates))
        for index, (label, rate) in enumerate(plan):
            drain_s = LATENCY_DRAIN_S if rate < sustained else OVERLOAD_DRAIN_S
            results["rates"].append({"label": label, **measure(
                f"latency{index}", args, args.bundle, rate, args.seconds, tweets, drain_s,
                latency_flags)})
            record(results["rates"][-1])
        if args.memory_minutes > 0:
            results["memory"] = measure("memory", args, args.bundle, args.memory_rate,
                                        args.memory_minutes * 60, tweets,
                                        extra_flags=latency_flags)
    print(benchlib.write_results(name, results, markdown(results)).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
