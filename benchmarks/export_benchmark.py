"""Export benchmark (issues 3 and 15): fp32 and every int8 variant tried, per model, in one run.

For each model (default: the demo model, the full-SST-2 model and the social model, all trained
by ``train_accuracy.py`` / the Makefile recipe into ``MODELS``, ``benchlib.default_models_dir()``)
this script

1. runs `export.exporter.export_bundle` with fp32 and int8 (the shipped recipe: weight MatMuls
   quantised dynamically, the measured most sensitive ones kept in float32), timing it;
2. builds the other int8 variants from the same plain Optimum export: every weight MatMul
   quantised (no float32 node), the ``reduce_range`` recipe exported for CPUs without VNNI, and
   static QDQ with activation ranges calibrated (percentiles) on training rows;
3. measures, on the eval set's validation rows: accuracy, label agreement with PyTorch, max
   |Δprobability|, file size, and records/s in interleaved rounds (every variant in turn, every
   round; the ratios to fp32 are medians of per-round ratios, so they share the machine's load);
4. writes ``benchmarks/results/export_benchmark.md`` and ``.json``.

Run: ``.venv/bin/python benchmarks/export_benchmark.py [--model NAME=DIR,EVAL,MAX_LENGTH ...]``;
``--render_only`` rewrites the Markdown from the JSON.
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
DATA = benchlib.SHARED_DATA
DEFAULT_MODELS = (f"demo={MODELS / 'minilm-sst2-demo'},{DATA / 'sst2'},64",
                  f"sst2-full={MODELS / 'minilm-sst2-1ep'},{DATA / 'sst2'},128",
                  f"social={MODELS / 'minilm-tweets-social'},{DATA / 'tweets'},96")
FP32_PLAIN = "fp32 ONNX (plain export)"
FP32 = "fp32 optimised (bundle)"
INT8 = "int8 dynamic, sensitive MatMuls float32 (bundle)"
INT8_ALL = "int8 dynamic, every weight MatMul"
INT8_REDUCED = "int8 dynamic, reduce_range (recipe without VNNI)"
INT8_STATIC = "int8 static QDQ, percentile calibration"
STATIC_CALIBRATION_ROWS = 256  # training rows (exporter.ranking_texts) the QDQ ranges come from


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


def build_variants(exported: Path, work: Path, family: str, calibration: list) -> dict:
    """The int8 variants beside the bundle's: name -> ONNX file, or the error that stopped it."""
    from export import int8

    matmuls = int8.weight_matmuls(exported)
    builders = {
        INT8_ALL: lambda: int8.quantize_dynamic_int8(exported, work / "all", family, matmuls),
        INT8_REDUCED: lambda: int8.quantize_dynamic_int8(exported, work / "reduced", "avx2",
                                                         matmuls),
        INT8_STATIC: lambda: int8.quantize_static_int8(exported, work / "static", family,
                                                       calibration),
    }
    variants = {}
    for name, build in builders.items():
        started = time.perf_counter()
        try:
            variants[name] = (build(), round(time.perf_counter() - started, 1))
        except Exception as error:  # noqa: BLE001  (a variant that cannot be built is a result)
            variants[name] = (f"{type(error).__name__}: {str(error).splitlines()[0][:200]}",
                              None)
    return variants


def measure_model(label: str, model_dir: Path, eval_dataset: str, max_length: int,
                  bundle_dir: Path, args: argparse.Namespace) -> dict:
    """Exports one model, builds the variants, times them; its part of the results."""
    import numpy as np
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification

    from beam_pipeline.cpu import int8_family
    from beam_pipeline.social_text import normalize
    from export import parity
    from export.exporter import (
        evaluation_rows,
        export_bundle,
        export_onnx,
        label_names,
        ranking_texts,
    )

    started = time.perf_counter()
    manifest = export_bundle(model_dir, bundle_dir, precisions=("fp32", "int8"),
                             eval_dataset=eval_dataset, max_length=max_length,
                             allow_parity_failure=True)  # a miss is reported below, not hidden
    export_seconds = time.perf_counter() - started

    torch.set_num_threads(args.threads)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir,
                                                               use_safetensors=True).eval()
    labels_names = label_names(model.config)
    steps = manifest["text_normalization"]
    texts, labels, rows, split = evaluation_rows(eval_dataset, labels_names, "text", "label")
    texts = [normalize(text, steps) for text in texts]
    tokenizer = Tokenizer.from_file(str(bundle_dir / manifest["tokenizer"]["file"]))
    feeds = parity.encode_batches(tokenizer, texts, manifest["input_names"])
    timing_feeds = parity.encode_batches(tokenizer, texts[:args.timing_rows],
                                         manifest["input_names"])
    timing_rows = sum(len(feed["input_ids"]) for feed in timing_feeds)
    calibration, _ = ranking_texts(eval_dataset, split, labels_names, "text", "label")
    calibration_feeds = parity.encode_batches(
        tokenizer, [normalize(text, steps) for text in calibration[:STATIC_CALIBRATION_ROWS]],
        manifest["input_names"])
    reference = parity.torch_probabilities(model, feeds)

    with tempfile.TemporaryDirectory() as work:
        plain = export_onnx(model, Path(work) / "plain")
        files = {FP32_PLAIN: (plain, None), FP32: (bundle_dir / "model_fp32.onnx", None),
                 INT8: (bundle_dir / "model_int8.onnx",
                        manifest["export"]["int8_search"]["time_s"])}
        variants = build_variants(plain, Path(work), int8_family(), calibration_feeds)
        failed = {name: error for name, (error, _) in variants.items() if isinstance(error, str)}
        files.update({name: value for name, value in variants.items() if name not in failed})
        runners = {name: onnx_runner(path, args.threads) for name, (path, _) in files.items()}
        measured = {}
        for name, run in runners.items():  # also warms every runner up
            probabilities = run(feeds)
            measured[name] = {
                **parity.compare("int8", reference, probabilities, labels),
                "file_mb": round(files[name][0].stat().st_size / 1e6, 2)}
        seconds: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, run in runners.items():
                seconds[name].append(timed_pass(run, timing_feeds))

    results = []
    for name in runners:
        check = measured[name]
        results.append({
            "model": name, "file_mb": check["file_mb"], "build_time_s": files[name][1],
            "accuracy": round(check["accuracy"], 4),
            "accuracy_vs_pytorch_points": round(
                100 * (check["accuracy"] - check["pytorch_accuracy"]), 2),
            "label_agreement": round(check["label_agreement"], 4),
            "max_abs_prob_diff": round(check["max_abs_prob_diff"], 4),
            "passes_int8_bound": check["passed"],
            "records_per_s": round(timing_rows / statistics.median(seconds[name]), 1),
            "records_per_s_all_rounds": [round(timing_rows / s, 1) for s in seconds[name]],
            **{key: round(statistics.median(base / own for own, base in
                                            zip(seconds[name], seconds[reference_name])), 2)
               for key, reference_name in (("speed_vs_fp32", FP32),
                                           ("speed_vs_fp32_plain", FP32_PLAIN))},
        })
    return {"label": label, "model_dir": str(model_dir), "bundle_dir": str(bundle_dir),
            "eval_rows": rows, "max_length": max_length, "timing_rows": timing_rows,
            "pytorch_accuracy": round(float(np.mean(reference.argmax(1) == labels)), 4),
            "export_wall_time_s": round(export_seconds, 1),
            "int8_quantization": manifest["export"]["int8_quantization"],
            "int8_float_nodes": manifest["export"]["int8_float_nodes"],
            "int8_search": manifest["export"]["int8_search"],
            "parity": {name: entry["parity"] for name, entry in manifest["precisions"].items()},
            "failed_variants": failed, "results": results}


def measure(args: argparse.Namespace) -> dict:
    """Every model in turn; the result (JSON) of the run."""
    date, described = benchlib.now(), benchlib.machine()
    models = []
    for spec in args.model or DEFAULT_MODELS:
        label, _, rest = spec.partition("=")
        model_dir, eval_dataset, max_length = rest.split(",")
        models.append(measure_model(label, Path(model_dir), eval_dataset, int(max_length),
                                    Path(args.bundles_dir) / f"bundle-{Path(model_dir).name}",
                                    args))
    previous = benchlib.read_results(NAME)
    history = previous.get("history", [])
    if previous and "models" not in previous:  # the issue-3 result, one model, kept for its figures
        history = [*history, {"date": previous["date"], "result": previous, "what_differed":
                              "issue 3's recipe: Gather and every MatMul but the first GELU-fed "
                              "one quantised, on one model (SST-2, 20,000 rows)"}]
    elif previous and int8_family_of(previous) != int8_family_of({"models": models}):
        history = [*history, {
            "date": previous["date"],
            "result": {key: value for key, value in previous.items() if key != "history"},
            "what_differed": f"a CPU of another int8 family ({int8_family_of(previous)})"}]
    return {"command": benchlib.command_line("export_benchmark.py"), "date": date,
            "machine": described, "threads": args.threads, "rounds": args.rounds,
            "load_average_1min_end": round(os.getloadavg()[0], 2), "models": models,
            **({"history": history} if history else {})}


def _model_section(model: dict) -> list[str]:
    lines = [f"## {model['label']}: `{model['model_dir']}`", "",
             f"Eval: {model['eval_rows']} (PyTorch accuracy {model['pytorch_accuracy']:.4f}); "
             f"max_length {model['max_length']}; timing: {model['timing_rows']} rows a pass.  ",
             f"Bundle int8: {model['int8_quantization']}; kept in float32: "
             f"{', '.join(f'`{node}`' for node in model['int8_float_nodes']) or 'nothing'}; "
             f"MatMuls ranked on {model['int8_search']['ranking_data']}; float32 count tuned on "
             f"the eval rows to label agreement >= {model['int8_search']['target_agreement']} "
             f"(attempts: " + ", ".join(
                 f"{attempt['float_nodes']} float32 -> {attempt['label_agreement']:.4f}"
                 for attempt in model["int8_search"]["tried"])
             + f"); search {model['int8_search']['time_s']} s; whole export "
             f"{model['export_wall_time_s']} s.", "",
             "| variant | file MB | accuracy | Δ vs PyTorch (points) | label agreement | "
             "max abs Δprob | int8 bound | records/s | × fp32 optimised | × fp32 plain |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for row in model["results"]:
        bound = ("n/a" if row["model"].startswith("fp32")
                 else "pass" if row["passes_int8_bound"] else "FAIL")
        lines.append(f"| {row['model']} | {row['file_mb']} | {row['accuracy']:.4f} | "
                     f"{row['accuracy_vs_pytorch_points']:+.2f} | {row['label_agreement']:.4f} | "
                     f"{row['max_abs_prob_diff']:.3f} | {bound} | {row['records_per_s']} | "
                     f"{row['speed_vs_fp32']:.2f} | {row['speed_vs_fp32_plain']:.2f} |")
    for name, error in model["failed_variants"].items():
        lines.append(f"| {name} | could not be built: {error} | | | | | | | | |")
    lines += ["", "All rounds (records/s): " + "; ".join(
        f"{row['model']}: {row['records_per_s_all_rounds']}" for row in model["results"]) + ".",
        ""]
    return lines


def int8_family_of(result: dict) -> str:
    """The CPU int8 family a result's bundles were checked on."""
    return result["models"][0]["parity"]["int8"]["checked_on"]["int8_family"]


def _history_headline(result: dict) -> list[str]:
    if "models" not in result:  # issue 3's result
        return [f"{row['model']}: accuracy {row['accuracy']:.4f}, {row['records_per_s']} "
                f"records/s, {row['speed_vs_fp32_onnx']:.2f}x fp32 ONNX"
                for row in result["results"]]
    return [f"{model['label']}, {row['model']}: label agreement {row['label_agreement']:.4f} "
            f"({'pass' if row['passes_int8_bound'] else 'FAIL'}), "
            f"{row['speed_vs_fp32']:.2f}× fp32 optimised"
            for model in result["models"] for row in model["results"]
            if row["model"] not in (FP32, FP32_PLAIN)]


def markdown(result: dict) -> str:
    """The results (the JSON of one run) as a Markdown report."""
    lines = [
        *benchlib.header("Export benchmark: fp32 and the int8 variants (issues 3, 15)", result),
        f"Threads: {result['threads']} intra-op threads for every engine; 1-minute load average "
        f"at the end {result['load_average_1min_end']}  ",
        f"Throughput: median of {result['rounds']} interleaved passes (every variant in turn, "
        "every round), batches of 32 padded to their longest row, tokenised beforehand "
        "(records/s is model time only). Ratios: median over rounds of (fp32 time / variant "
        "time) within the same round.  ",
        "int8 bound (the export's parity gate): label agreement with PyTorch >= 0.99 and "
        "accuracy at most 0.5 point below PyTorch's, on the eval rows. Which MatMuls stay "
        "float32 is measured on training rows; how many is tuned on the eval rows (so the "
        "bundle's figures on them are the ones it was tuned to; the other variants are not "
        "tuned).", ""]
    for model in result["models"]:
        lines += _model_section(model)
    lines += benchlib.history_lines(result, _history_headline)
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append",
                        help="NAME=MODEL_DIR,EVAL_DATASET,MAX_LENGTH (repeatable; default: "
                             "demo, sst2-full and social in MODELS)")
    parser.add_argument("--bundles_dir", default=str(MODELS),
                        help="where each bundle-<model folder> is written (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes per variant")
    parser.add_argument("--timing_rows", type=int, default=320,
                        help="rows (from the start of the eval set) in each timed pass")
    parser.add_argument("--threads", type=int, default=2,
                        help="intra-op threads for PyTorch and ONNX Runtime alike")
    return benchlib.run_benchmark(NAME, parser, measure, markdown)


if __name__ == "__main__":
    sys.exit(main())
