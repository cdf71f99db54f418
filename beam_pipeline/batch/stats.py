"""Run statistics: each chunk's counts (outcomes, labels, confidence, lengths, languages, per
file), written beside its output, merged after the run into ``PREFIX-summary.json``.

Counting per chunk while scoring, rather than reading the output back, costs nothing extra and
works on every runner (the DaskRunner has no metrics).
"""
from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

CONFIDENCE_BINS = 20
TOKEN_BIN_EDGES = (0, 16, 32, 64, 128, 256, 512, 1024)


def _token_bin(tokens: int) -> int:
    return int(np.searchsorted(TOKEN_BIN_EDGES, tokens, side="right")) - 1


def chunk_stats(path: str, labels: Sequence[str], scored: Sequence[dict[str, Any]],
                dead_letters: Sequence[dict[str, Any]], tokens: Sequence[int],
                cut: int) -> dict[str, Any]:
    """The statistics of one chunk: its scored and unscored records, its dead letters, the
    token lengths of the rows the model read and how many of them were cut (longer than
    max_length)."""
    statuses = collections.Counter(record["status"] for record in scored)
    sentiment = collections.Counter(record["sentiment"] for record in scored
                                    if record["sentiment"] is not None)
    confidence = [0] * CONFIDENCE_BINS
    probability_sums = dict.fromkeys(labels, 0.0)
    score_sum = 0.0
    for record in scored:
        if record["score"] is None:
            continue
        score_sum += record["score"]
        confidence[min(int(record["score"] * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)] += 1
        for label, value in record["probabilities"].items():
            probability_sums[label] += value
    token_counts = [0] * len(TOKEN_BIN_EDGES)
    for length in tokens:
        token_counts[_token_bin(length)] += 1
    return {"file": path, "rows_read": len(scored) + len(dead_letters),
            "statuses": dict(statuses), "sentiment": dict(sentiment),
            "dead_letter_reasons": dict(collections.Counter(r["reason"] for r in dead_letters)),
            "confidence_counts": confidence, "score_sum": score_sum,
            "probability_sums": probability_sums,
            "token_counts": token_counts, "cut": cut,
            "languages": dict(collections.Counter(
                record["language"] for record in scored if record["language"]))}


def merge(all_stats: Iterable[dict[str, Any]], labels: Sequence[str],
          scored_status: str) -> dict[str, Any]:
    """The run's figures from its chunks' statistics, in the shape of ``PREFIX-summary.json``'s
    ``counts``, ``sentiment``, ``confidence``, ``text_length``, ``languages`` and ``files``."""
    statuses, sentiment, reasons, languages = (collections.Counter() for _ in range(4))
    confidence = np.zeros(CONFIDENCE_BINS, np.int64)
    tokens = np.zeros(len(TOKEN_BIN_EDGES), np.int64)
    sums = dict.fromkeys(labels, 0.0)
    files: dict[str, dict[str, Any]] = {}
    read = cut = 0
    score_sum = 0.0
    for stats in all_stats:
        read += stats["rows_read"]
        cut += stats["cut"]
        score_sum += stats["score_sum"]
        statuses.update(stats["statuses"])
        sentiment.update(stats["sentiment"])
        reasons.update(stats["dead_letter_reasons"])
        languages.update(stats["languages"])
        confidence += stats["confidence_counts"]
        tokens += stats["token_counts"]
        for label, value in stats["probability_sums"].items():
            sums[label] += value
        per_file = files.setdefault(stats["file"], {
            "path": stats["file"], "rows_read": 0, "scored": 0, "unscored": 0,
            "dead_lettered": 0, "sentiment": dict.fromkeys(labels, 0)})
        per_file["rows_read"] += stats["rows_read"]
        per_file["scored"] += stats["statuses"].get(scored_status, 0)
        per_file["unscored"] += sum(n for status, n in stats["statuses"].items()
                                    if status != scored_status)
        per_file["dead_lettered"] += sum(stats["dead_letter_reasons"].values())
        for label, count in stats["sentiment"].items():
            per_file["sentiment"][label] += count
    scored = statuses.pop(scored_status, 0)
    edges = [round(index / CONFIDENCE_BINS, 4) for index in range(CONFIDENCE_BINS + 1)]
    return {
        "counts": {"rows_read": read, "scored": scored, "unscored": sum(statuses.values()),
                   "dead_lettered": sum(reasons.values()),
                   "dead_letter_reasons": dict(sorted(reasons.items())),
                   "unscored_statuses": dict(sorted(statuses.items()))},
        "sentiment": {"counts": {label: sentiment.get(label, 0) for label in labels},
                      "mean_probabilities": {label: (sums[label] / scored if scored else None)
                                             for label in labels}},
        "confidence": {"bin_edges": edges, "counts": confidence.tolist(),
                       "mean": score_sum / scored if scored else None},
        "text_length": {"bin_edges": [*TOKEN_BIN_EDGES, None], "counts": tokens.tolist(),
                        "unit": "tokens", "cut": cut},
        "languages": dict(languages.most_common()),
        "files": sorted(files.values(), key=lambda entry: entry["path"]),
    }
