"""Long reviews: how to score texts longer than max_length, measured on real business reviews.

Scores ``../shared/data/yelp_reviews`` (stars >= 4 positive, <= 2 negative, 3 left out) with an
SST-2 model's fp32 bundle in every long-text mode the scoring model has: ``truncate`` (first
max_length tokens), ``head_tail`` (first quarter and last three quarters), ``chunk`` (overlapping
windows) and ``sentences`` (each sentence a window) with the window weightings
(``most_confident``, ``length``, ``confidence``, ``last``), at the bundle's max_length and at
longer and shorter windows. Reports accuracy overall, on the reviews longer
than the bundle's max_length tokens and on the others, and seconds per row
(median of interleaved rounds, with the ratio to ``truncate`` measured in the same round)::

    .venv/bin/python benchmarks/long_reviews.py [--model_dir DIR] [--rounds 3]

The bundle is exported (fp32) into the work folder on first use.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import benchlib

NAME = "long_reviews"
#: (--long_text, --window_weighting, --max_length; None: the bundle's)
MODES = [("truncate", "length", None), ("head_tail", "length", None), ("chunk", "length", None),
         ("chunk", "confidence", None), ("chunk", "last", None), ("chunk", "most_confident", None),
         ("sentences", "most_confident", None), ("sentences", "confidence", None),
         ("sentences", "length", None), ("truncate", "length", 256),
         ("truncate", "length", 512), ("head_tail", "length", 256), ("chunk", "length", 64)]


def reviews() -> tuple[list[str], list[int]]:
    """Texts and binary labels (1 positive) of the reviews with a clear star rating."""
    with open(benchlib.SHARED_DATA / "yelp_reviews" / "reviews.csv", newline="",
              encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["stars"]) != 3]
    return [row["text"] for row in rows], [int(int(row["stars"]) >= 4) for row in rows]


def bundle_for(model_dir: Path, work: Path) -> Path:
    """The model's fp32 bundle, exported once into the work folder."""
    bundle = work / f"bundle-{model_dir.name}-fp32"
    if not (bundle / "bundle.json").is_file():
        from export.exporter import export_bundle

        export_bundle(model_dir, bundle, precisions=("fp32",))
    return bundle


def measure(args: argparse.Namespace) -> dict:
    from beam_pipeline.model import load_scoring_model

    texts, labels = reviews()
    bundle = bundle_for(Path(args.model_dir), benchlib.default_models_dir())
    models = {f"{mode} / {weighting} / {max_length or 'bundle'}": load_scoring_model(
        str(bundle), precision="fp32", device="cpu", long_text=mode, window_weighting=weighting,
        max_length=max_length, intra_op_threads=args.threads)
        for mode, weighting, max_length in MODES}
    baseline = next(iter(models))
    lengths = [result.tokens for result in models[baseline].score_rows(texts)]
    max_length = models[baseline].max_length
    seconds: dict[str, list[float]] = {name: [] for name in models}
    predictions = {}
    for _ in range(args.rounds):
        for name, model in models.items():
            started = time.perf_counter()
            probabilities = model.predict(texts)
            seconds[name].append(time.perf_counter() - started)
            predictions[name] = probabilities.argmax(axis=1)
    rows = []
    for name in models:
        correct = [int(p == label) for p, label in zip(predictions[name], labels)]
        long_rows = [c for c, n in zip(correct, lengths) if n > max_length]
        short_rows = [c for c, n in zip(correct, lengths) if n <= max_length]
        rows.append({
            "mode": name, "accuracy": round(sum(correct) / len(correct), 4),
            "accuracy_long": round(sum(long_rows) / len(long_rows), 4),
            "accuracy_short": round(sum(short_rows) / len(short_rows), 4),
            "ms_per_row": round(1000 * statistics.median(seconds[name]) / len(texts), 2),
            "time_vs_truncate": round(statistics.median(
                own / base for own, base in zip(seconds[name], seconds[baseline])), 2)})
    return {"command": benchlib.command_line("long_reviews.py"), "date": benchlib.now(),
            "machine": benchlib.machine(), "model_dir": str(args.model_dir),
            "max_length": max_length, "reviews": len(texts),
            "long_reviews": sum(n > max_length for n in lengths), "rounds": args.rounds,
            "threads": args.threads, "results": rows}


def markdown(result: dict) -> str:
    lines = [*benchlib.header("Long reviews: truncation, head and tail, windows", result),
             f"Model: `{result['model_dir']}` (fp32 bundle, max_length {result['max_length']}); "
             f"data: {result['reviews']} Yelp reviews with 1-2 or 4-5 stars, "
             f"{result['long_reviews']} of them longer than {result['max_length']} tokens; "
             f"time: median of {result['rounds']} interleaved rounds over all reviews, "
             f"{result['threads']} ONNX Runtime threads.", "",
             "| --long_text / --window_weighting / --max_length | accuracy | on long reviews "
             "| on the others "
             "| gap (points) | ms per row | time × truncate |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in result["results"]:
        gap = 100 * (row["accuracy_short"] - row["accuracy_long"])
        lines.append(f"| {row['mode']} | {row['accuracy']:.4f} | {row['accuracy_long']:.4f} | "
                     f"{row['accuracy_short']:.4f} | {gap:+.1f} | {row['ms_per_row']} | "
                     f"{row['time_vs_truncate']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    benchlib.offline()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=str(benchlib.default_models_dir()
                                                   / "minilm-sst2-1ep"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    return benchlib.run_benchmark(NAME, parser, measure, markdown)


if __name__ == "__main__":
    sys.exit(main())
