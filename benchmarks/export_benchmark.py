"""Export benchmark (issue 3): PyTorch vs fp32 ONNX vs optimised fp32 vs int8 on SST-2 validation.

For a fine-tuned classifier (default: ``MODELS/minilm-sst2``, the MiniLM fine-tuned on SST-2 by
``train_accuracy.py``; MODELS is ``benchlib.default_models_dir()``) this script

1. times `export.exporter.export_bundle` (export, optimise, quantise, fp16, parity on the
   eval set) writing the bundle to ``--bundle_dir``;
2. exports the plain (un-optimised) fp32 ONNX file with the same Optimum step, as the baseline;
3. measures file size, SST-2 validation accuracy and records/s of PyTorch, fp32 ONNX, optimised
   fp32 and int8 (fp16 too, on the CPU, for information: it is built for CUDA) on the same
   pre-tokenised batches, in interleaved rounds; throughput is the median over rounds;
4. writes ``benchmarks/results/export_benchmark.md`` and ``.json`` (``--tag T``:
   ``export_benchmark_T``).

Run: ``.venv/bin/python benchmarks/export_benchmark.py [--model_dir DIR] [--bundle_dir DIR]``;
``--render_only [--tag T]`` rewrites the Markdown from the JSON.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import benchlib

benchlib.offline()

NAME = "export_benchmark"
MODELS = benchlib.default_models_dir()
VARIANT_NAMES = {"fp32": "fp32 optimised (bundle)", "int8": "int8 dynamic (bundle)",
                 "fp16": "fp16 optimised (bundle; for CUDA, run on CPU here)"}
BASELINE = "fp32 ONNX (plain export)"


def onnx_runner(path: Path, threads: int):
    """A function running all feeds through one ONNX Runtime CPU session; returns probabilities."""
    import onnxruntime

    from export import parity

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


def measure(args: argparse.Namespace, command: str) -> dict:
    """Exports the bundle, times every engine; the result (JSON) of one run."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification

    from export import parity
    from export.exporter import evaluation_rows, export_bundle, export_onnx, label_names

    model_dir = Path(args.model_dir)
    date, described = benchlib.now(), benchlib.machine()
    started = time.perf_counter()
    manifest = export_bundle(model_dir, args.bundle_dir, eval_dataset=args.eval_dataset,
                             allow_parity_failure=True)  # a miss is reported below, not hidden
    export_seconds = time.perf_counter() - started

    torch.set_num_threads(args.threads)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir,
                                                               use_safetensors=True).eval()
    texts, labels, rows = evaluation_rows(args.eval_dataset, label_names(model.config), "text",
                                          "label")
    tokenizer = Tokenizer.from_file(str(Path(args.bundle_dir) / manifest["tokenizer"]["file"]))
    feeds = parity.encode_batches(tokenizer, texts, manifest["input_names"])
    timing_feeds = parity.encode_batches(tokenizer, texts[:args.timing_rows],
                                         manifest["input_names"])
    timing_rows = sum(len(feed["input_ids"]) for feed in timing_feeds)

    with tempfile.TemporaryDirectory() as work:
        plain = export_onnx(model, Path(work) / "plain")
        files = {BASELINE: plain}
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
            base / own for own, base in zip(seconds[row["model"]], seconds[BASELINE])), 2)

    return {
        "command": command, "date": date, "machine": described, "threads": args.threads,
        "load_average_1min_end": round(os.getloadavg()[0], 2),
        "model_dir": str(model_dir), "bundle_dir": args.bundle_dir, "eval_rows": rows,
        "batch_size": parity.BATCH_SIZE, "rounds": args.rounds, "timing_rows": timing_rows,
        "export_wall_time_s": round(export_seconds, 1),
        "int8_quantization": manifest["export"]["int8_quantization"],
        "parity": {name: entry["parity"] for name, entry in manifest["precisions"].items()},
        "results": rows_out,
    }


def markdown(result: dict) -> str:
    """The results (the JSON of one run) as a Markdown report."""
    # older results recorded the thread count (and the load at the end) in "machine"
    threads = result.get("threads", result["machine"].get("threads"))
    lines = [
        *benchlib.header("Export benchmark (issue 3)", result),
        f"Threads: {threads} intra-op threads for every engine (PyTorch and ONNX Runtime); the "
        "machine is shared with other jobs"
        + (f"; 1-minute load average at the end {result['load_average_1min_end']}"
           if "load_average_1min_end" in result else "") + "  ",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=str(MODELS / "minilm-sst2"),
                        help="fine-tuned model folder (default: %(default)s)")
    parser.add_argument("--bundle_dir", default=str(MODELS / "bundle-minilm-sst2"),
                        help="where the benchmarked bundle is written (default: %(default)s)")
    parser.add_argument("--eval_dataset", default=str(benchlib.SHARED_DATA / "sst2"))
    parser.add_argument("--rounds", type=int, default=5, help="timed passes per model")
    parser.add_argument("--timing_rows", type=int, default=320,
                        help="rows (from the start of the eval set) in each timed pass")
    parser.add_argument("--threads", type=int, default=2,
                        help="intra-op threads for PyTorch and ONNX Runtime alike")
    parser.add_argument("--tag", default="",
                        help="suffix of the results files, e.g. 1thread -> "
                             "export_benchmark_1thread.md")
    benchlib.add_render_only(parser)
    args = parser.parse_args(argv)
    name = f"{NAME}_{args.tag}" if args.tag else NAME
    if args.render_only:
        return benchlib.render_only(name, markdown)
    result = measure(args, benchlib.command_line("export_benchmark.py", argv))
    benchlib.write_results(name, result, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
