"""Scoring throughput and memory (issue 4), every contender on the same bundle, texts and machine.

    .venv/bin/python benchmarks/score_benchmark.py [--bundle DIR] [--model_dir DIR]

Defaults: ``--bundle MODELS/bundle-minilm-sst2``, ``--model_dir MODELS/minilm-sst2-full`` (the
fine-tuned model that bundle is exported from), MODELS being ``benchlib.default_models_dir()``.
Texts: the first ``--rows`` (20,000) SST-2 training sentences from ../shared/data, written to one
Parquet file in row groups of 2,500. Contenders, records/s:

1. this pipeline end to end (``python -m beam_pipeline`` as a subprocess, FnApiRunner, defaults):
   start-up included = rows / wall time of the whole command; start-up excluded = marginal rate
   (rows_big - rows_small) / (time_big - time_small), against a 500-row dump.
2. a raw ONNX Runtime loop, same precision: one encode_batch, length-sorted batches of 64 padded
   to their longest row (the bound).
3. Hugging Face ``pipeline("text-classification")`` on PyTorch, batch 32, ``--model_dir``.
4. Beam's stock approach: ``OnnxModelHandlerNumpy`` with ``max_batch_size=1``.

Also: 2 workers vs 1 (DirectRunner multi_processing, DaskRunner LocalCluster; one ONNX Runtime
thread per worker so that workers, not threads, scale), peak RSS, and a ``--big_rows`` dump
(200,000) against the 20,000 one. Timings alternate between contenders within each repeat and
the medians are reported. Writes benchmarks/results/score_benchmark.{md,json};
``--only workers`` runs just the worker comparison and writes score_benchmark_workers.{md,json}.
``--render_only [--only workers]`` rewrites the Markdown from the JSON.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import benchlib

benchlib.offline()

ROOT = benchlib.ROOT
MODELS = benchlib.default_models_dir()
SST2_TRAIN = benchlib.SHARED_DATA / "sst2" / "train.tsv"
CPU = "CPUExecutionProvider"
AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")
SMALL_ROWS = 500
ROW_GROUP_ROWS = 2500


def sst2_sentences(count: int) -> list[str]:
    """The first ``count`` SST-2 training sentences (cycled when more are asked for)."""
    with open(SST2_TRAIN, newline="", encoding="utf-8") as handle:
        sentences = [row["sentence"] for row in
                     csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return list(itertools.islice(itertools.cycle(sentences), count))


def write_dump(texts: list[str], path: Path) -> Path:
    pq.write_table(pa.table({"text": texts}), path, row_group_size=ROW_GROUP_ROWS)
    return path


# Peak RSS is read in a small launcher process: a child forked straight from this (large)
# process would report this process's high-water mark at its exec, not its own.
RSS_LAUNCHER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
                "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                "sys.exit(code)")


def run_command(args: list[str]) -> tuple[float, float]:
    """Runs a command; returns (wall seconds, peak RSS in MiB of it or of any process it reaped)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        code = subprocess.call([sys.executable, "-c", RSS_LAUNCHER, *args], stdout=log,
                               stderr=subprocess.STDOUT, cwd=ROOT)
        seconds = time.perf_counter() - start
        log.seek(0)
        output = log.read().decode(errors="replace")
    if code:
        sys.exit(f"score_benchmark: {' '.join(args)} failed:\n{output[-3000:]}")
    peak_kib = int(output.rsplit("peak_rss_kib", 1)[1].split()[0])
    return seconds, peak_kib / 1024


def score_command(dump: Path, output: Path, bundle: Path, precision: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "beam_pipeline", "--input", str(dump), "--output",
            str(output), "--model", str(bundle), "--precision", precision, "--device", "cpu",
            *flags]


def run_pipeline(dump: Path, bundle: Path, precision: str, work: Path, *flags: str):
    output = Path(tempfile.mkdtemp(dir=work)) / "scored"
    return run_command(score_command(dump, output, bundle, precision, *flags))


def load_tokenizer(bundle: Path, max_length: int):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def raw_ort_rate(bundle: Path, manifest: dict, precision: str, texts: list[str],
                 batch_size: int = 64) -> float:
    """Records/s of a plain ONNX Runtime loop over length-sorted, tightly padded batches."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(bundle / manifest["precisions"][precision]["file"]),
                                   providers=[CPU])
    tokenizer = load_tokenizer(bundle, manifest["max_length"])
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    start = time.perf_counter()
    encodings = tokenizer.encode_batch(texts)
    order = np.argsort([len(encoding.ids) for encoding in encodings])
    for first in range(0, len(order), batch_size):
        rows = [encodings[i] for i in order[first:first + batch_size]]
        width = max(len(row.ids) for row in rows)
        ids = np.full((len(rows), width), pad_id, np.int64)
        mask = np.zeros_like(ids)
        for number, row in enumerate(rows):
            ids[number, :len(row.ids)] = row.ids
            mask[number, :len(row.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        softmax(session.run(None, {name: feed[name] for name in manifest["input_names"]})[0])
    return len(texts) / (time.perf_counter() - start)


def hf_pipeline_rate(model_dir: str, texts: list[str], max_length: int) -> float:
    """Records/s of Hugging Face's text-classification pipeline on PyTorch, batch 32."""
    from transformers import pipeline

    classifier = pipeline("text-classification", model=model_dir, device=-1)
    start = time.perf_counter()
    classifier(texts, batch_size=32, truncation=True, max_length=max_length)
    return len(texts) / (time.perf_counter() - start)


def stock_beam_rate(bundle: Path, manifest: dict, precision: str, texts: list[str]) -> float:
    """Records/s of Beam's OnnxModelHandlerNumpy with max_batch_size=1 (pipeline start included)."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.ml.inference.onnx_inference import OnnxModelHandlerNumpy

    class Tokenize(beam.DoFn):
        def setup(self):
            self.tokenizer = load_tokenizer(bundle, manifest["max_length"])

        def process(self, text):
            yield np.array(self.tokenizer.encode(text).ids, np.int64)

    def feed_all_inputs(session, batch, inference_args=None):
        ids = np.stack(batch)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids)}
        return session.run(None, {name: feed[name] for name in manifest["input_names"]})[0]

    handler = OnnxModelHandlerNumpy(str(bundle / manifest["precisions"][precision]["file"]),
                                    providers=[CPU], inference_fn=feed_all_inputs,
                                    max_batch_size=1)
    start = time.perf_counter()
    with beam.Pipeline("FnApiRunner") as pipeline:
        _ = (pipeline | beam.Create(texts) | beam.ParDo(Tokenize()) | RunInference(handler)
             | beam.Map(lambda result: softmax(result.inference[None, :])))
    return len(texts) / (time.perf_counter() - start)


def dask_worker_peak_mib(client) -> list[float]:
    return [rss / 1024 for rss in client.run(
        lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss).values()]


def dask_busy_seconds(task_stream: list[dict]) -> list[float]:
    """Seconds each Dask worker spent computing tasks, busiest first (from a task stream)."""
    busy: dict[str, float] = {}
    for task in task_stream:
        for step in task["startstops"]:
            if step["action"] == "compute":
                busy[task["worker"]] = busy.get(task["worker"], 0.0) + step["stop"] - step["start"]
    return sorted((round(seconds, 1) for seconds in busy.values()), reverse=True)


def marginal_rate(rows: int, big_s: float, small_s: float) -> float:
    """Records/s with start-up excluded: the extra rows of the big dump over the extra seconds it
    took, against the ``SMALL_ROWS``-row dump run the same way."""
    return (rows - SMALL_ROWS) / (big_s - small_s)


def scaling_run(runner: str, workers: int, dump: Path, bundle: Path, work: Path) -> dict:
    """One int8 run with ``workers`` workers of ``runner`` (direct or dask), one ONNX Runtime
    thread each: wall seconds, peak RSS in MiB of the largest worker process and, on Dask, the
    seconds each worker computed. Each Dask run gets a fresh LocalCluster (not timed)."""
    from distributed import Client, LocalCluster, get_task_stream

    one_thread = ("--ort_threads", "1")
    if runner == "direct":
        seconds, peak = run_pipeline(dump, bundle, "int8", work, *one_thread,
                                     "--direct_running_mode", "multi_processing",
                                     "--direct_num_workers", str(workers))
        return {"seconds": seconds, "peak_rss_mib": peak}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, env={"TOKENIZERS_PARALLELISM": "false"}
                      ) as cluster, Client(cluster) as client:
        with get_task_stream(client) as task_stream:
            seconds, _ = run_pipeline(dump, bundle, "int8", work, *one_thread, "--runner",
                                      "DaskRunner", "--dask_client_address",
                                      cluster.scheduler_address)
        return {"seconds": seconds, "peak_rss_mib": max(dask_worker_peak_mib(client)),
                "worker_busy_s": dask_busy_seconds(task_stream.data)}


def scaling(dump: Path, small: Path, bundle: Path, rows: int, work: Path, repeats: int,
            on_round) -> dict:
    """Records/s with 1 and 2 workers on the DirectRunner (multi-process) and the DaskRunner,
    start-up included (whole command over ``dump``) and excluded (marginal rate against the
    ``small`` dump, as for contender (1)): medians of ``repeats`` rounds, the four set-ups
    alternating within each round (the results so far go to ``on_round`` after each); the
    1-minute load average is sampled before each run."""
    set_ups = [(runner, workers) for runner in ("direct", "dask") for workers in (1, 2)]
    samples = {f"{runner}_{workers}": [] for runner, workers in set_ups}
    small_samples = {key: [] for key in samples}
    results: dict = {"repeats": repeats, "load_1min_before_runs": []}
    for repeat in range(repeats):
        for runner, workers in set_ups:
            print(f"[score_benchmark] workers: {runner} x{workers}, round {repeat + 1}/{repeats}",
                  flush=True)
            results["load_1min_before_runs"].append(round(os.getloadavg()[0], 2))
            samples[f"{runner}_{workers}"].append(scaling_run(runner, workers, dump, bundle, work))
            small_samples[f"{runner}_{workers}"].append(
                scaling_run(runner, workers, small, bundle, work)["seconds"])
        for key, runs in samples.items():
            big_s, small_s = statistics.median(run["seconds"] for run in runs), \
                statistics.median(small_samples[key])
            results[key] = {
                "records_per_s": rows / big_s,
                "excluded_records_per_s": marginal_rate(rows, big_s, small_s),
                "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
                "seconds": [round(run["seconds"], 2) for run in runs],
                "small_seconds": [round(seconds, 2) for seconds in small_samples[key]]}
            if key.startswith("dask"):
                results[key]["worker_busy_s"] = [run["worker_busy_s"] for run in runs]
        for runner in ("direct", "dask"):
            for rate, name in (("records_per_s", "speedup"),
                               ("excluded_records_per_s", "speedup_excluded")):
                results[f"{runner}_{name}"] = (results[f"{runner}_2"][rate]
                                               / results[f"{runner}_1"][rate])
        on_round(results)
    return results


def measure(args: argparse.Namespace, save) -> dict:
    """Runs every section in turn, calling ``save(results)`` after each (a cut-short run keeps
    what it measured)."""
    bundle = Path(args.bundle)
    manifest = json.loads((bundle / "bundle.json").read_text())
    model_dir = args.model_dir or manifest["base_model"]
    precisions = [p for p in ("int8", "fp32") if p in manifest["precisions"]]
    texts = sst2_sentences(args.rows)
    results: dict = {"rows": args.rows, "precisions": {}}
    with tempfile.TemporaryDirectory(prefix="score_benchmark_") as tmp:
        work = Path(tmp)
        dump = write_dump(texts, work / "dump.parquet")
        small = write_dump(texts[:SMALL_ROWS], work / "small.parquet")
        for precision in precisions:
            timings = {"raw": [], "big": [], "small": []}
            peaks = []
            for repeat in range(args.repeats):
                print(f"[score_benchmark] {precision} repeat {repeat + 1}/{args.repeats}",
                      flush=True)
                timings["raw"].append(raw_ort_rate(bundle, manifest, precision, texts))
                seconds, peak = run_pipeline(dump, bundle, precision, work)
                timings["big"].append(seconds)
                peaks.append(peak)
                timings["small"].append(run_pipeline(small, bundle, precision, work)[0])
            big, small_s = statistics.median(timings["big"]), statistics.median(timings["small"])
            raw = statistics.median(timings["raw"])
            excluded = marginal_rate(args.rows, big, small_s)
            results["precisions"][precision] = {
                "pipeline_included_records_per_s": args.rows / big,
                "pipeline_excluded_records_per_s": excluded,
                "raw_ort_records_per_s": raw, "ratio_excluded_to_raw": excluded / raw,
                "startup_s": small_s - SMALL_ROWS / excluded,
                "pipeline_peak_rss_mib": max(peaks), "samples": timings}
            save(results)
        print("[score_benchmark] Hugging Face pipeline", flush=True)
        peer_texts = texts[:args.peer_rows or args.rows]
        results["peer_rows"] = len(peer_texts)
        results["hf_pipeline_records_per_s"] = hf_pipeline_rate(model_dir, peer_texts,
                                                                manifest["max_length"])
        print("[score_benchmark] Beam stock OnnxModelHandlerNumpy", flush=True)
        results["stock_beam_precision"] = precisions[0]
        results["stock_beam_records_per_s"] = stock_beam_rate(bundle, manifest, precisions[0],
                                                              peer_texts)
        results["hf_ratio"] = (results["precisions"]["int8"]["pipeline_excluded_records_per_s"]
                               / results["hf_pipeline_records_per_s"])
        save(results)
        if args.big_rows:
            print(f"[score_benchmark] {args.big_rows:,}-row dump", flush=True)
            big_dump = write_dump(sst2_sentences(args.big_rows), work / "big.parquet")
            seconds, peak = run_pipeline(big_dump, bundle, "int8", work)
            results["memory"] = {
                "big_rows": args.big_rows, "big_peak_rss_mib": peak, "big_seconds": seconds,
                "rows_peak_rss_mib": results["precisions"]["int8"]["pipeline_peak_rss_mib"],
                "ratio": peak / results["precisions"]["int8"]["pipeline_peak_rss_mib"]}
            save(results)
        print("[score_benchmark] 1 vs 2 workers", flush=True)
        results["scaling"] = scaling(dump, small, bundle, args.rows, work, args.repeats,
                                     lambda partial: save({**results, "scaling": partial}))
        save(results)
    return results


def measure_workers(args: argparse.Namespace, save) -> dict:
    """Only the 1 vs 2 workers section (``--only workers``), on the same dump."""
    results: dict = {"rows": args.rows}
    texts = sst2_sentences(args.rows)
    with tempfile.TemporaryDirectory(prefix="score_benchmark_") as tmp:
        dump = write_dump(texts, Path(tmp) / "dump.parquet")
        small = write_dump(texts[:SMALL_ROWS], Path(tmp) / "small.parquet")
        results["scaling"] = scaling(dump, small, Path(args.bundle), args.rows, Path(tmp),
                                     args.repeats,
                                     lambda partial: save({**results, "scaling": partial}))
    return results


def contenders_markdown(results: dict) -> list[str]:
    """The contenders table: (1) to (4) and start-up."""
    lines = ["| contender | precision | records/s | vs raw ORT |", "|---|---|---:|---:|"]
    for precision, row in results["precisions"].items():
        raw = row["raw_ort_records_per_s"]
        lines += [f"| (1) pipeline, start-up excluded | {precision} | "
                  f"{row['pipeline_excluded_records_per_s']:.0f} | "
                  f"{row['ratio_excluded_to_raw']:.2f} |",
                  f"| (1) pipeline, start-up included | {precision} | "
                  f"{row['pipeline_included_records_per_s']:.0f} | "
                  f"{row['pipeline_included_records_per_s'] / raw:.2f} |",
                  f"| (2) raw ONNX Runtime loop (bound) | {precision} | {raw:.0f} | 1.00 |"]
    if "hf_ratio" in results:
        int8_raw = results["precisions"]["int8"]["raw_ort_records_per_s"]
        lines += [f"| (3) Hugging Face pipeline, PyTorch, batch 32 | fp32 (torch) | "
                  f"{results['hf_pipeline_records_per_s']:.0f} | "
                  f"{results['hf_pipeline_records_per_s'] / int8_raw:.2f} (of int8) |",
                  f"| (4) Beam OnnxModelHandlerNumpy, max_batch_size=1 | "
                  f"{results['stock_beam_precision']} | "
                  f"{results['stock_beam_records_per_s']:.0f} | "
                  f"{results['stock_beam_records_per_s'] / int8_raw:.2f} (of int8) |", "",
                  f"Pipeline (int8, start-up excluded) / Hugging Face pipeline: "
                  f"{results['hf_ratio']:.1f}x. (3) and (4) ran once over the first "
                  f"{results['peer_rows']:,} of the same texts; (4) includes its pipeline "
                  "start (a few seconds)."]
    lines += ["", "Start-up excluded is the marginal rate between a "
              f"{SMALL_ROWS}-row and the {results['rows']:,}-row dump; start-up included is "
              "the whole command (interpreter, checks, model load) over the big dump. Start-up "
              "of one run: " + ", ".join(f"{p} {row['startup_s']:.1f} s"
                                         for p, row in results["precisions"].items()) + "."]
    return lines


def scaling_markdown(results: dict) -> list[str]:
    """The 1 vs 2 workers table (results recorded before start-up was excluded there: without
    those columns)."""
    row = results["scaling"]
    loads = row["load_1min_before_runs"]
    keys = ("direct_1", "direct_2", "dask_1", "dask_2")
    excluded = "excluded_records_per_s" in row["direct_1"]
    lines = ["## Workers (int8, one ONNX Runtime thread per worker)", "",
             "| runner | 1 worker records/s | 2 workers records/s | speed-up | "
             + ("1 worker, start-up excluded | 2 workers, start-up excluded | speed-up, start-up "
                "excluded | " if excluded else "")
             + "peak RSS per process, 2 workers (MiB) |",
             "|---|---:|---:|---:|" + ("---:|---:|---:|" if excluded else "") + "---:|"]
    for runner, name in (("direct", "DirectRunner multi_processing"),
                         ("dask", "DaskRunner, LocalCluster")):
        one, two = row[f"{runner}_1"], row[f"{runner}_2"]
        lines.append(f"| {name} | {one['records_per_s']:.0f} | {two['records_per_s']:.0f} | "
                     f"{row[f'{runner}_speedup']:.2f}x | "
                     + (f"{one['excluded_records_per_s']:.0f} | "
                        f"{two['excluded_records_per_s']:.0f} | "
                        f"{row[f'{runner}_speedup_excluded']:.2f}x | " if excluded else "")
                     + f"{two['peak_rss_mib']:.0f} |")
    groups = f"{results['rows']:,} rows in {-(-results['rows'] // ROW_GROUP_ROWS)} row groups " \
             f"of {ROW_GROUP_ROWS:,}"
    if excluded:
        method = (f"Start-up included: the whole command over {groups}; start-up excluded: the "
                  f"marginal rate against a {SMALL_ROWS}-row dump run with the same set-up "
                  "(seconds of those runs: "
                  + "; ".join(f"{key} {row[key]['small_seconds']}" for key in keys) + "); ")
    else:
        method = f"Whole command (start-up included), {groups}; "
    lines += ["", method
              + f"medians of {len(row['direct_1']['seconds'])} rounds, the four set-ups "
              "alternating within each round. Seconds per run: "
              + "; ".join(f"{key} {row[key]['seconds']}" for key in keys) + ". "
              f"1-minute load average before each run: median {statistics.median(loads):.1f}, "
              f"range {min(loads):.1f}-{max(loads):.1f}. Seconds each Dask worker spent "
              f"computing, per run: 1 worker {row['dask_1']['worker_busy_s']}, 2 workers "
              f"{row['dask_2']['worker_busy_s']} (two similar figures: the workers shared the "
              "row groups; one figure near the 1-worker one and one near 0: one worker scored "
              "everything)."]
    return lines


def workers_headline(result: dict) -> list[str]:
    """The figures of an earlier workers run, for the History section."""
    row = result["scaling"]
    loads = row["load_1min_before_runs"]
    return ["; ".join(
        f"{name} 1 worker {row[f'{runner}_1']['records_per_s']:.0f}, 2 workers "
        f"{row[f'{runner}_2']['records_per_s']:.0f} records/s ({row[f'{runner}_speedup']:.2f}x)"
        for runner, name in (("direct", "DirectRunner"), ("dask", "DaskRunner")))
        + f" (whole command; medians of {len(row['direct_1']['seconds'])} rounds; 1-minute load "
        f"average before each run median {statistics.median(loads):.1f}, range "
        f"{min(loads):.1f}-{max(loads):.1f}; peak RSS per process, 2 workers: DirectRunner "
        f"{row['direct_2']['peak_rss_mib']:.0f} MiB, DaskRunner "
        f"{row['dask_2']['peak_rss_mib']:.0f} MiB)."]


def markdown(result: dict) -> str:
    """The results (the JSON of one run) as a table for people (sections not measured yet are
    left out)."""
    lines = [*benchlib.header("Scoring benchmark (issue 4)", result),
             *([f"Note: {result['note']}  "] if result.get("note") else []),
             f"Bundle: `{result['bundle']}`; texts: first {result['rows']:,} SST-2 training "
             f"sentences; medians of {result['repeats']} runs where repeated; "
             f"{result['duration_s']} s in all{'' if result['complete'] else ' (cut short)'}.",
             ""]
    if "precisions" in result:
        lines += contenders_markdown(result)
    if "memory" in result:
        memory = result["memory"]
        lines += ["", "## Memory (int8, FnApiRunner, peak RSS of the scoring process)", "",
                  f"{result['rows']:,} rows: {memory['rows_peak_rss_mib']:.0f} MiB; "
                  f"{memory['big_rows']:,} rows: {memory['big_peak_rss_mib']:.0f} MiB "
                  f"(ratio {memory['ratio']:.2f}; the big run took {memory['big_seconds']:.0f} s)."]
    if "scaling" in result:
        lines += [""] + scaling_markdown(result)
    lines += ["", "The machine is shared (other engineers' training and tests ran meanwhile; "
              f"load average at the end: {result['load_average']}; this benchmark ran at "
              f"niceness {result['niceness']}), which is why contenders alternate within each "
              "repeat and ratios mean more than absolute rates."]
    if result.get("sched_autogroup"):
        lines += ["", "The kernel's CFS autogroup is on: nice orders processes only within one "
                  "session, so each other busy session (niced or not) takes an equal share of the "
                  "CPUs, and 2 workers can only beat 1 by the share this session gets."]
    lines += benchlib.history_lines(result, workers_headline)
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(MODELS / "bundle-minilm-sst2"),
                        help="the bundle scored (default: %(default)s)")
    parser.add_argument("--model_dir", default=str(MODELS / "minilm-sst2-full"),
                        help="model folder for the Hugging Face pipeline, the one the bundle was "
                             "exported from (default: %(default)s; '' for the bundle's "
                             "base_model)")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--big_rows", type=int, default=200000, help="0 skips the memory run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer_rows", type=int, default=0,
                        help="texts for contenders (3) and (4), the first of the same texts "
                             "(default: all --rows)")
    parser.add_argument("--note", default="",
                        help="one line recorded with the results (e.g. the code measured)")
    parser.add_argument("--only", choices=["workers"], default=None,
                        help="workers: only the 1 vs 2 workers section, written to "
                             "score_benchmark_workers.{md,json}")
    benchlib.add_render_only(parser)
    args = parser.parse_args()
    name = "score_benchmark" + (f"_{args.only}" if args.only else "")
    if args.render_only:
        return benchlib.render_only(name, markdown)
    started = time.time()
    niceness = os.nice(0)
    meta = {"command": ("nice " if niceness else "") + benchlib.command_line("score_benchmark.py"),
            "machine": benchlib.machine(), "bundle": args.bundle, "model_dir": args.model_dir,
            "note": args.note, "repeats": args.repeats, "niceness": niceness,
            "sched_autogroup": AUTOGROUP.exists() and AUTOGROUP.read_text().strip() == "1",
            "complete": False}

    def save(results: dict) -> None:
        meta.update(date=benchlib.now(), duration_s=round(time.time() - started),
                    load_average=" ".join(f"{load:.1f}" for load in os.getloadavg()))
        result = {**meta, **results}
        benchlib.write_results(name, result, markdown(result))

    results = (measure_workers if args.only == "workers" else measure)(args, save)
    meta["complete"] = True
    save(results)
    print(markdown({**meta, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
