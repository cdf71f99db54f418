"""Right shares on one's own posts (#14): the general social model adapted to a stream it was not
trained on, with a few hundred labelled posts, and its shares corrected::

    .venv/bin/python benchmarks/quantification.py [--general_model DIR] [--sizes 100,250,500,1000]
        [--seeds 1,2,3]

The stream: ``../shared/data/financial_tweets`` (train and validation, 11,931 posts, copies
counted once as the aggregates count them), bearish read as negative and bullish as positive.
Groups stand in for brands: the first cashtag's initial (A-F, G-M, N-S, T-Z) and posts without a
cashtag. Per labelled-set size N and seed:

1. N posts are sampled as ``sentiment-sample`` samples (`labelling.sampling`) and labelled from
   the data, as a person would label them: half for training, stratified by group and the
   general model's predicted label with a quarter of each stratum the least confident; half
   for measuring the confusion, at random (``--strategy random``): the correction assumes the
   labelled posts look like the stream, which a sample rich in uncertain posts does not;
2. ``general + correction``: the general model, the random half measuring its confusion
   (`export.exporter.quantification_measurement`, what ``--quantification_dataset`` stores);
3. ``adapted + correction``: ``sentiment-train --base_model GENERAL`` on the stratified half,
   then ``sentiment-export --quantification_dataset`` on the random half;
4. every other post is scored by the bundle and aggregated per group with the pipeline's own
   `aggregates.SentimentAggregateFn` (raw share: classify and count; corrected share with its 90%
   interval), and on 11 samples of 500 of them whose negative share is set from 0.05 to 0.55
   (prior shift, the artificial-prevalence protocol of quantification studies).

Reported: accuracy and macro-F1 on the other posts, the absolute error of the negative share
(raw and corrected) per group and overall, and how often the 90% interval holds the true share;
beside them, the adapted model corrected with the exact pooled matrix (measured on every other
post: the limit of any one matrix for the whole stream), per group at 500 labels.
Goal: with 500 labels the corrected share within 3 points on average, intervals holding it at
least 85% of the time.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import benchlib

NAME = "quantification"
LABELS = ("negative", "neutral", "positive")
FROM_DATA = {"0": "negative", "1": "positive", "2": "neutral"}  # bearish, bullish, neutral
GROUPS = (("A-F", "ABCDEF"), ("G-M", "GHIJKLM"), ("N-S", "NOPQRS"), ("T-Z", "TUVWXYZ"))
NO_CASHTAG = "no cashtag"
SHIFTED_SHARES = tuple(round(0.05 * step, 2) for step in range(1, 12))
SHIFTED_POSTS = 500
CASHTAG = re.compile(r"\$([A-Za-z]{1,6})\b")
FINE_TUNE = ["--epochs", "4", "--learning_rate", "3e-5", "--batch_size", "16",
             "--max_length", "96"]


def group_of(text: str) -> str:
    match = CASHTAG.search(text)
    if not match:
        return NO_CASHTAG
    initial = match.group(1)[0].upper()
    return next(name for name, letters in GROUPS if initial in letters)


def stream_posts() -> list[dict]:
    posts = []
    for split in ("train", "validation"):
        with open(benchlib.SHARED_DATA / "financial_tweets" / f"{split}.csv", newline="",
                  encoding="utf-8") as handle:
            for index, row in enumerate(csv.DictReader(handle)):
                posts.append({"id": f"{split}-{index}", "text": row["text"],
                              "label": FROM_DATA[row["label"]], "group": group_of(row["text"])})
    return posts


def score(bundle: str, texts: list[str]) -> list:
    from beam_pipeline.model import load_scoring_model

    return load_scoring_model(bundle, precision="fp32", device="cpu").score_rows(texts)


def records(results: list) -> list[dict]:
    """Scored records as the pipeline writes them, the fields aggregates read."""
    from beam_pipeline.vocabulary import SCORED

    out = []
    for result in results:
        probabilities = dict(zip(LABELS, result.probabilities.tolist()))
        out.append({"status": SCORED, "sentiment": max(probabilities, key=probabilities.get),
                    "probabilities": probabilities, "language": result.language,
                    "text_fingerprint": result.fingerprint})
    return out


def aggregate(rows: list[dict], rule) -> dict:
    """One aggregate of ``rows``, through the pipeline's CombineFn."""
    from beam_pipeline.aggregates import SentimentAggregateFn

    combine = SentimentAggregateFn(rule)
    accumulator = combine.create_accumulator()
    for row in rows:
        accumulator = combine.add_input(accumulator, row)
    return combine.extract_output(accumulator)


def share_errors(posts: list[dict], scored: list[dict], quantifier, generator) -> list[dict]:
    """Per group, overall and per prior-shifted sample: true, raw and corrected negative shares
    with the interval (``posts`` and ``scored`` aligned)."""
    from beam_pipeline.aggregates import AlertRule

    rule = AlertRule(labels=LABELS, negative_label="negative", quantifier=quantifier)
    samples = {name: [index for index, post in enumerate(posts) if post["group"] == name]
               for name in [name for name, _ in GROUPS] + [NO_CASHTAG]}
    samples["overall"] = list(range(len(posts)))
    negatives = [index for index, post in enumerate(posts) if post["label"] == "negative"]
    others = [index for index, post in enumerate(posts) if post["label"] != "negative"]
    for share in SHIFTED_SHARES:
        count = round(SHIFTED_POSTS * share)
        samples[f"shifted {share:.2f}"] = (
            generator.choice(negatives, count, replace=False).tolist()
            + generator.choice(others, SHIFTED_POSTS - count, replace=False).tolist())
    rows = []
    for name, indices in samples.items():
        body = aggregate([scored[index] for index in indices], rule)
        true = sum(posts[index]["label"] == "negative" for index in indices) / len(indices)
        row = {"sample": name, "posts": len(indices), "true": true,
               "raw": body["negative_share"], "correction": body["share_correction"]}
        if "corrected_share_negative" in body:
            row.update(corrected=body["corrected_share_negative"],
                       low=body["corrected_share_negative_low"],
                       high=body["corrected_share_negative_high"])
            row["covered"] = row["low"] <= true <= row["high"]
        rows.append(row)
    return rows


def label_metrics(posts: list[dict], scored: list[dict]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    true = [post["label"] for post in posts]
    predicted = [row["sentiment"] for row in scored]
    return {"accuracy": accuracy_score(true, predicted),
            "macro_f1": f1_score(true, predicted, average="macro", labels=list(LABELS))}


def write_jsonl(path: Path, posts: list[dict]) -> Path:
    path.write_text("".join(json.dumps({"id": post["id"], "text": post["text"],
                                        "label": post["label"]}) + "\n" for post in posts))
    return path


def run_command(command: list[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return time.perf_counter() - started


def one_run(size: int, seed: int, posts: list[dict], general: dict, args, work: Path) -> dict:
    from beam_pipeline.quantification import Quantifier
    from export.exporter import quantification_measurement
    from labelling.sampling import RANDOM, Candidate, sample

    candidates = [Candidate(id=str(index), text=post["text"], key=post["group"],
                            probabilities=general["records"][index]["probabilities"])
                  for index, post in enumerate(posts)]
    half = size // 2
    trained = [int(chosen.candidate.id) for chosen in sample(candidates, half, seed=seed)]
    others = [candidate for candidate in candidates if int(candidate.id) not in set(trained)]
    measured = [int(chosen.candidate.id)
                for chosen in sample(others, size - half, strategy=RANDOM, seed=seed)]
    rest = sorted(set(range(len(posts))) - set(trained) - set(measured))
    labelled = [posts[index] for index in measured]
    rest_posts = [posts[index] for index in rest]
    generator = np.random.default_rng(seed)
    entry = quantification_measurement(
        args.general_bundle, list(LABELS), ["fp32"],
        ([post["text"] for post in labelled], [LABELS.index(post["label"]) for post in labelled]),
        f"{size} sampled posts", progress=lambda _: None)
    general_quantifier = Quantifier.from_manifest({"labels": list(LABELS),
                                                   "quantification": entry})
    general_rest = [general["records"][index] for index in rest]
    run = {"size": size, "seed": seed, "rest": len(rest),
           "general": {**label_metrics(rest_posts, general_rest),
                       "shares": share_errors(rest_posts, general_rest, general_quantifier,
                                              np.random.default_rng(seed))}}

    folder = work / f"n{size}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    train = write_jsonl(folder / "train.jsonl", [posts[index] for index in trained])
    quantification = write_jsonl(folder / "quantification.jsonl", labelled)
    bin_dir = Path(sys.executable).parent
    train_s = run_command([str(bin_dir / "sentiment-train"), "--dataset", str(train),
                           "--base_model", str(args.general_model),
                           "--output_dir", str(folder / "model"), "--seed", str(seed),
                           *FINE_TUNE])
    export_s = run_command([str(bin_dir / "sentiment-export"), "--model_dir",
                            str(folder / "model"), "--output_dir", str(folder / "bundle"),
                            "--precisions", "fp32", "--max_length", "96",
                            "--quantification_dataset", str(quantification)])
    manifest = json.loads((folder / "bundle" / "bundle.json").read_text())
    adapted = records(score(str(folder / "bundle"), [post["text"] for post in rest_posts]))
    # the best any single (pooled) confusion matrix can do: the one of every post scored here
    exact = Quantifier(LABELS, np.array([LABELS.index(post["label"]) for post in rest_posts]),
                       np.array([[row["probabilities"][label] for label in LABELS]
                                 for row in adapted]))
    run["adapted"] = {**label_metrics(rest_posts, adapted),
                      "train_rows": half, "quantification_rows": len(labelled),
                      "train_s": round(train_s, 1), "export_s": round(export_s, 1),
                      "shares": share_errors(rest_posts, adapted,
                                             Quantifier.from_manifest(manifest), generator),
                      "exact_pooled_shares": share_errors(rest_posts, adapted, exact,
                                                          np.random.default_rng(seed))}
    return run


def measure(args: argparse.Namespace) -> dict:
    from beam_pipeline.vocabulary import SCORED

    work = Path(args.work_dir) / "quantification"
    args.general_bundle = str(work / "general-bundle")
    if not (Path(args.general_bundle) / "bundle.json").is_file():
        run_command([str(Path(sys.executable).parent / "sentiment-export"), "--model_dir",
                     str(args.general_model), "--output_dir", args.general_bundle,
                     "--precisions", "fp32", "--max_length", "96"])
    posts = stream_posts()
    results = score(args.general_bundle, [post["text"] for post in posts])
    distinct, seen = [], set()  # copies count once, as in the aggregates
    for post, result in zip(posts, results):
        if result.status == SCORED and result.fingerprint not in seen:
            seen.add(result.fingerprint)
            distinct.append((post, result))
    posts = [post for post, _ in distinct]
    general = {"records": records([result for _, result in distinct])}
    runs = [one_run(size, seed, posts, general, args, work)
            for size in args.sizes for seed in args.seeds]
    return {"posts": len(posts), "posts_read": len(results),
            "groups": {name: sum(post["group"] == name for post in posts)
                       for name in [name for name, _ in GROUPS] + [NO_CASHTAG]},
            "general_model": str(args.general_model), "fine_tune": FINE_TUNE, "runs": runs}


def summary(run_side: dict, kind: str) -> dict:
    """Mean absolute errors (points) over the groups + overall, and over the shifted samples,
    and interval coverage over all of them."""
    shares = run_side["shares"]
    natural = [row for row in shares if not row["sample"].startswith("shifted")]
    shifted = [row for row in shares if row["sample"].startswith("shifted")]

    def mean_error(rows, field):
        values = [abs(row[field] - row["true"]) for row in rows if field in row]
        return 100 * statistics.mean(values) if values else None

    covered = [row["covered"] for row in shares if "covered" in row]
    statuses = sorted({row["correction"] for row in shares})
    exact = run_side.get("exact_pooled_shares", [])
    exact_natural = [row for row in exact if not row["sample"].startswith("shifted")]
    exact_shifted = [row for row in exact if row["sample"].startswith("shifted")]
    return {"kind": kind, "correction": "/".join(statuses), "accuracy": run_side["accuracy"],
            "macro_f1": run_side["macro_f1"],
            "raw_groups": mean_error(natural, "raw"),
            "corrected_groups": mean_error(natural, "corrected"),
            "worst_corrected_group": max((abs(row["corrected"] - row["true"]) * 100
                                          for row in natural if "corrected" in row),
                                         default=None),
            "raw_shifted": mean_error(shifted, "raw"),
            "corrected_shifted": mean_error(shifted, "corrected"),
            "coverage": statistics.mean(covered) if covered else None,
            "intervals": len(covered),
            "exact_pooled_groups": mean_error(exact_natural, "corrected"),
            "exact_pooled_shifted": mean_error(exact_shifted, "corrected")}


def markdown(result: dict) -> str:
    def number(value, digits=1):
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = benchlib.header("Adapting to one's own posts and corrected shares (quantification)",
                            result)
    measured = result["measured"]
    lines += ["", f"Stream: financial_tweets, {measured['posts']} distinct posts "
              f"({measured['posts_read']} read); groups {measured['groups']}. General model: "
              f"`{measured['general_model']}`; adapted: `sentiment-train --base_model` with "
              f"`{' '.join(measured['fine_tune'])}` on half of the labelled posts, the other "
              "half measuring the confusion (`sentiment-export --quantification_dataset`).", "",
              "Errors are absolute, in points of negative share: mean over the 5 groups and "
              "overall (natural shares), and over 11 samples of 500 posts with the negative "
              "share set from 5% to 55% (prior shift). Coverage: share of those 17 intervals "
              "(per run) holding the true share.", "",
              "| labels | seed | model | accuracy | macro-F1 | raw error (groups) | corrected "
              "error (groups) | worst group, corrected | raw error (shifted) | corrected error "
              "(shifted) | 90% interval coverage |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_size: dict[tuple[int, str], list[dict]] = {}
    for run in measured["runs"]:
        for kind, label in (("general", "general + correction (N/2 random)"),
                            ("adapted", "adapted (N/2 stratified) + correction (N/2 random)")):
            row = summary(run[kind], label)
            by_size.setdefault((run["size"], label), []).append(row)
            lines.append(f"| {run['size']} | {run['seed']} | {label} | {row['accuracy']:.3f} | "
                         f"{row['macro_f1']:.3f} | {number(row['raw_groups'])} | "
                         f"{number(row['corrected_groups'])} ({row['correction']}) | "
                         f"{number(row['worst_corrected_group'])} | "
                         f"{number(row['raw_shifted'])} | {number(row['corrected_shifted'])} | "
                         f"{number(row['coverage'], 2)} ({row['intervals']}) |")
    lines += ["", "Medians over seeds:", "",
              "| labels | model | accuracy | raw error (groups) | corrected error (groups) | "
              "corrected error (shifted) | coverage | corrected with the exact pooled matrix "
              "(groups / shifted) |", "|---|---|---|---|---|---|---|---|"]
    def median(rows, field):
        values = [row[field] for row in rows if row[field] is not None]
        return statistics.median(values) if values else None

    for (size, label), rows in sorted(by_size.items()):
        cells = [number(median(rows, field)) for field in
                 ("raw_groups", "corrected_groups", "corrected_shifted")]
        exact = " / ".join(number(median(rows, field)) for field in
                           ("exact_pooled_groups", "exact_pooled_shifted"))
        lines.append(f"| {size} | {label} | {median(rows, 'accuracy'):.3f} | "
                     f"{' | '.join(cells)} | {number(median(rows, 'coverage'), 2)} | "
                     f"{exact} |")
    lines += ["", "Goal (500 labels): corrected share within 3 points on average, intervals "
              "holding the truth at least 85% of the time.", ""]
    lines += group_lines(measured["runs"])
    return "\n".join(lines)


def group_lines(runs: list[dict], size: int = 500) -> list[str]:
    """Per group, for each seed's adapted model at ``size`` labels: the true, raw and corrected
    negative shares (%), the latter with its interval and with the exact pooled matrix."""
    chosen = [run for run in runs if run["size"] == size
              and run["adapted"].get("exact_pooled_shares")]
    if not chosen:
        return []
    lines = [f"Negative share per group (%), adapted model at {size} labels: true, raw, "
             "corrected with the labelled posts' matrix [90% interval], and corrected with the "
             "exact pooled matrix (that of every post scored, which no labelled sample can beat "
             "as a single matrix):", "",
             "| seed | group | posts | true | raw | corrected [interval] | exact pooled |",
             "|---|---|---:|---:|---:|---|---:|"]
    for run in chosen:
        exact = {row["sample"]: row for row in run["adapted"]["exact_pooled_shares"]}
        for row in run["adapted"]["shares"]:
            if row["sample"].startswith("shifted"):
                continue
            corrected = (f"{100 * row['corrected']:.1f} [{100 * row['low']:.1f}, "
                         f"{100 * row['high']:.1f}]" if "corrected" in row else row["correction"])
            best = exact[row["sample"]].get("corrected")
            lines.append(f"| {run['seed']} | {row['sample']} | {row['posts']} | "
                         f"{100 * row['true']:.1f} | {100 * row['raw']:.1f} | {corrected} | "
                         + ("n/a" if best is None else f"{100 * best:.1f}") + " |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    benchlib.offline()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--general_model",
                        default=str(benchlib.default_models_dir() / "minilm-tweets-social"),
                        help="the general three-class social model folder (sentiment-train "
                             "output; train_accuracy.py --only tweets-social)")
    parser.add_argument("--sizes", default="100,250,500,1000")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--work_dir", default=str(benchlib.default_work_dir()))
    benchlib.add_render_only(parser)
    args = parser.parse_args(argv)
    if args.render_only:
        return benchlib.render_only(NAME, markdown)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    args.seeds = [int(seed) for seed in args.seeds.split(",")]
    started = time.perf_counter()
    result = {"command": benchlib.command_line("quantification.py", argv), "date": benchlib.now(),
              "machine": benchlib.machine(), "measured": measure(args)}
    result["wall_time_s"] = round(time.perf_counter() - started, 1)
    print(benchlib.write_results(NAME, result, markdown(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
