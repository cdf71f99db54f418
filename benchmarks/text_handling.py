"""What social normalisation, language identification and duplicate handling cost, and what
they change, on real English tweets (``../shared/data/tweets`` validation, 2,000 posts)::

    .venv/bin/python benchmarks/text_handling.py [--bundle DIR] [--rounds 5]

Throughput, in interleaved rounds of the same tweets in batches of 64 (one ONNX Runtime thread):
the scoring model as it was before this handling (``predict_rows`` on the raw texts, no
normalisation, no language identification, every copy scored) against ``score_rows`` with the
social normalisation and the English-only language gate on (goal: at most 10 % slower). Also
the share of posts each normalisation step changes, the share marked unsupported_language (all
these posts are English: every one is a false positive) and the share of duplicates. The
bundle's own normalisation and languages are overridden, so any bundle measures the same work.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time

import benchlib

NAME = "text_handling"
BATCH = 64


def tweets() -> list[str]:
    with open(benchlib.SHARED_DATA / "tweets" / "validation.csv", newline="",
              encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def measure(args: argparse.Namespace) -> dict:
    from beam_pipeline import social_text
    from beam_pipeline.language import LanguageGate
    from beam_pipeline.model import load_scoring_model

    texts = tweets()
    batches = [texts[start:start + BATCH] for start in range(0, len(texts), BATCH)]
    plain = load_scoring_model(args.bundle, precision=args.precision, device="cpu",
                               intra_op_threads=1)
    plain.normalization = ()
    handled = load_scoring_model(args.bundle, precision=args.precision, device="cpu",
                                 intra_op_threads=1)
    handled.normalization = social_text.SOCIAL
    handled.language_gate = LanguageGate(["en"])
    runs = {"off": plain.predict_rows, "on": handled.score_rows}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            for batch in batches:
                run(batch)
            seconds[name].append(time.perf_counter() - started)
    results = [result for batch in batches for result in handled.score_rows(batch)]
    changed = {step: sum(social_text.normalize(text, (step,)) != text for text in texts)
               for step in social_text.STEPS}
    fingerprints = [result.fingerprint for result in results]
    return {
        "command": benchlib.command_line("text_handling.py"), "date": benchlib.now(),
        "machine": benchlib.machine(), "bundle": args.bundle, "precision": args.precision,
        "posts": len(texts), "batch": BATCH, "rounds": args.rounds,
        "records_per_s": {name: round(len(texts) / statistics.median(values), 1)
                          for name, values in seconds.items()},
        "slowdown": round(statistics.median(
            on / off for on, off in zip(seconds["on"], seconds["off"])) - 1, 4),
        "changed_by_step": {step: round(count / len(texts), 4) for step, count in changed.items()},
        "changed_by_social": round(sum(social_text.normalize(text, social_text.SOCIAL) != text
                                       for text in texts) / len(texts), 4),
        "unsupported_language": round(sum(result.status != "scored" for result in results)
                                      / len(texts), 4),
        "duplicates": round(1 - len(set(fingerprints)) / len(fingerprints), 4),
    }


def markdown(result: dict) -> str:
    rates = result["records_per_s"]
    lines = [*benchlib.header("Text handling: normalisation, language identification, "
                              "duplicates", result),
             f"Bundle: `{result['bundle']}` ({result['precision']}); data: "
             f"{result['posts']} English tweets (TweetEval validation) in batches of "
             f"{result['batch']}; median of {result['rounds']} interleaved rounds, one ONNX "
             "Runtime thread.", "",
             "| scoring | records/s |", "|---|---:|",
             f"| before (no normalisation, no language ID, every copy scored) | {rates['off']} |",
             f"| social normalisation + English-only language gate + duplicates scored once | "
             f"{rates['on']} |", "",
             f"Slower by **{100 * result['slowdown']:.1f} %** (median of the per-round ratios; "
             "goal: at most 10 %).", "",
             "| what | share of the posts |", "|---|---:|"]
    for step, share in result["changed_by_step"].items():
        lines.append(f"| changed by step `{step}` | {100 * share:.1f} % |")
    lines += [f"| changed by `social` (all steps) | {100 * result['changed_by_social']:.1f} % |",
              f"| marked unsupported_language (all are English: false positives) | "
              f"{100 * result['unsupported_language']:.2f} % |",
              f"| copies of another post in the set (same fingerprint) | "
              f"{100 * result['duplicates']:.1f} % |"]
    return "\n".join(lines) + "\n"


def main() -> int:
    benchlib.offline()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(benchlib.default_models_dir()
                                                / "bundle-minilm-tweets-social"))
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=5)
    return benchlib.run_benchmark(NAME, parser, measure, markdown)


if __name__ == "__main__":
    sys.exit(main())
