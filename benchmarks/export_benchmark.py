"""Export benchmark (issue 3): PyTorch vs fp32 ONNX vs optimised fp32 vs int8 on SST-2 validation.

For a fine-tuned classifier (default: the MiniLM fine-tuned on SST-2 at /work/models/minilm-sst2)
this script

1. times `export.exporter.export_bundle` (export, optimise, quantise, fp16, parity on the
   eval set) writing the bundle to ``--bundle_dir``;
2. exports the plain (un-optimised) fp32 ONNX file with the same Optimum step, as the baseline;
3. measures file size, SST-2 validation accuracy and records/s of PyTorch, fp32 ONNX, optimised
   fp32 and int8 (fp16 too, on the CPU, for information: it is built for CUDA) on the same
   pre-tokenised batches, in interleaved rounds; throughput is the median over rounds;
4. writes ``benchmarks/results/export_benchmark.md`` and ``.json``.

Run: ``.venv/bin/python benchmarks/export_benchmark.py [--model_dir DIR] [--bundle_dir DIR]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoModelForSequenceClassification  # noqa: E402

from export import parity  # noqa: E402
from export.exporter import evaluation_rows, export_bundle, export_onnx, label_names  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
NAME = "export_benchmark"
VARIANT_NAMES = {"fp32": "fp32 optimised (bundle)", "int8": "int8 dynamic (bundle)",
                 "fp16": "fp16 optimised (bundle; for CUDA, run on CPU here)"}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def onnx_runner(path: Path, threads: int):
    """A function running all feeds through one ONNX Runtime CPU session; returns probabilities."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=[parity.CPU])
    return lambda feeds: parity.onnx_probabilities(session, feeds)


def timed_pass(run, feeds) -> float:
    """Seconds for one pass over all feeds."""
    started = time.perf_counter()
    run(feeds)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default="/work/models/minilm-sst2")
    parser.add_argument("--bundle_dir", default="/work/models/bundle-minilm-sst2",
                        help="where the benchmarked bundle is written (outside the repo)")
    parser.add_argument("--eval_dataset", default=str(REPO.parent / "shared" / "data" / "sst2"))
    parser.add_argument("--rounds", type=int, default=5, help="timed passes per model")
    parser.add_argument("--timing_rows", type=int, default=320,
                        help="rows (from the start of the eval set) in each timed pass")
    parser.add_argument("--threads", type=int, default=2,
                        help="intra-op threads for PyTorch and ONNX Runtime alike")
    parser.add_argument("--tag", default="",
                        help="suffix of the results files, e.g. 1thread -> export_benchmark_1thread.md")
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir)

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    manifest = export_bundle(model_dir, args.bundle_dir, eval_dataset=args.eval_dataset,
                             allow_parity_failure=True)  # a miss is reported below, not hidden
    export_seconds = time.perf_counter() - started

    torch.set_num_threads(args.threads)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True).eval()
    texts, labels, rows = evaluation_rows(args.eval_dataset, label_names(model.config), "text",
                                          "label")
    tokenizer = Tokenizer.from_file(str(Path(args.bundle_dir) / manifest["tokenizer"]["file"]))
    feeds = parity.encode_batches(tokenizer, texts, manifest["input_names"])
    timing_feeds = parity.encode_batches(tokenizer, texts[:args.timing_rows], manifest["input_names"])
    timing_rows = sum(len(feed["input_ids"]) for feed in timing_feeds)

    with tempfile.TemporaryDirectory() as work:
        plain = export_onnx(model, Path(work) / "plain")
        files = {"fp32 ONNX (plain export)": plain}
        files.update({VARIANT_NAMES[name]: Path(args.bundle_dir) / entry["file"]
                      for name, entry in manifest["precisions"].items()})
        runners = {"PyTorch": lambda batch: parity.torch_probabilities(model, batch)}
        runners.update({name: onnx_runner(path, args.threads) for name, path in files.items()})
        sizes = {"PyTorch": (model_dir / "model.safetensors").stat().st_size}
        sizes.update({name: path.stat().st_size for name, path in files.items()})

        accuracy = {name: parity.label_metrics(run(feeds).argmax(1), labels)["accuracy"]
                    for name, run in runners.items()}  # also warms every runner up
        seconds: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, run in runners.items():
                seconds[name].append(timed_pass(run, timing_feeds))

    baseline = "fp32 ONNX (plain export)"
    rows_out = []
    for name in runners:
        median = statistics.median(seconds[name])
        rows_out.append({
            "model": name, "file_mb": round(sizes[name] / 1e6, 2),
            "accuracy": round(accuracy[name], 4),
            "accuracy_vs_pytorch_points": round(100 * (accuracy[name] - accuracy["PyTorch"]), 2),
            "records_per_s": round(timing_rows / median, 1),
            "records_per_s_all_rounds": [round(timing_rows / s, 1) for s in seconds[name]],
        })
    for row in rows_out:
        # the same round ran every model back to back, so its ratio shares the machine's load
        row["speed_vs_fp32_onnx"] = round(statistics.median(
            base / own for own, base in zip(seconds[row["model"]], seconds[baseline])), 2)

    command = "python benchmarks/export_benchmark.py " + " ".join(
        arg for arg in (argv if argv is not None else sys.argv[1:]))
    result = {
        "command": command.strip(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": args.threads,
                    "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
                    "torch": torch.__version__,
                    "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)]},
        "model_dir": str(model_dir), "bundle_dir": args.bundle_dir, "eval_rows": rows,
        "batch_size": parity.BATCH_SIZE, "rounds": args.rounds, "timing_rows": timing_rows,
        "export_wall_time_s": round(export_seconds, 1),
        "int8_quantization": manifest["export"]["int8_quantization"],
        "parity": {name: entry["parity"] for name, entry in manifest["precisions"].items()},
        "results": rows_out,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{NAME}_{args.tag}" if args.tag else NAME
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    """The results as a Markdown report."""
    machine = result["machine"]
    lines = [
        "# Export benchmark (issue 3)", "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} logical CPUs (shared with other jobs), "
        f"{machine['threads']} intra-op threads for every engine; onnxruntime "
        f"{machine['onnxruntime']}, torch {machine['torch']}; 1-minute load average "
        f"{machine['load_average_1min'][0]} at start, {machine['load_average_1min'][1]} at end  ",
        f"Model: `{result['model_dir']}`; data: {result['eval_rows']}, batches of "
        f"{result['batch_size']} padded to their longest row, tokenised once beforehand "
        "(records/s is model time only)  ",
        f"Accuracy: all eval rows. Throughput: median of {result['rounds']} interleaved passes "
        f"over the first {result['timing_rows']} rows (each model in turn, every round).", "",
        "Speed ratio: median over rounds of (fp32 ONNX time / model time) within the same round.",
        "",
        "| model | file MB | SST-2 accuracy | Δ vs PyTorch (points) | records/s | × fp32 ONNX |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["results"]:
        lines.append(f"| {row['model']} | {row['file_mb']} | {row['accuracy']:.4f} | "
                     f"{row['accuracy_vs_pytorch_points']:+.2f} | {row['records_per_s']} | "
                     f"{row['speed_vs_fp32_onnx']:.2f} |")
    lines += ["", "All rounds (records/s): " + "; ".join(
        f"{row['model']}: {row['records_per_s_all_rounds']}" for row in result["results"]) + ".",
        "", f"Export wall time (`export_bundle`: Optimum export, {result['int8_quantization']} "
              f"int8, optimisation, fp16, parity of all three precisions on the eval rows, bundle "
              f"written): **{result['export_wall_time_s']} s**.", "",
              "Parity recorded in bundle.json:", "",
              "| precision | max abs Δprob | label agreement | passed |", "|---|---:|---:|---|"]
    for name, check in result["parity"].items():
        lines.append(f"| {name} | {check['max_abs_prob_diff']:.2e} | "
                     f"{check['label_agreement']:.4f} | {check['passed']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
