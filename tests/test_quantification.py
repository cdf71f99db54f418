"""Corrected shares: PACC recovers the true shares of a simulated stream with a known confusion,
agrees with QuaPy's solver, its 90 % intervals hold the truth about 90 % of the time, a matrix
that cannot be inverted is reported unreliable, and aggregates and alerts use the correction."""
from __future__ import annotations

import numpy as np
import pytest
from quapy.method.aggregative import ACC

from beam_pipeline.aggregates import AlertRule, SentimentAggregateFn, alerts_for
from beam_pipeline.quantification import (
    CORRECTED,
    UNCORRECTED,
    UNRELIABLE,
    Quantifier,
    pacc,
    quantification_entry,
)

LABELS = ("negative", "neutral", "positive")
#: a model that reads many complaints as neutral (as general models do on brand tweets):
#: the mean probabilities of each label (rows) given each true label (columns)
CONFUSION = np.array([[0.55, 0.10, 0.05],
                      [0.35, 0.75, 0.15],
                      [0.10, 0.15, 0.80]])


def simulate(generator: np.random.Generator, shares: np.ndarray, posts: int,
             concentration: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Posts drawn with these true shares, each one's probabilities from a Dirichlet around its
    true label's column of `CONFUSION`."""
    true = generator.choice(len(LABELS), size=posts, p=shares)
    probabilities = np.array([generator.dirichlet(concentration * CONFUSION[:, label])
                              for label in true])
    return true, probabilities


def quantifier(generator: np.random.Generator, labelled: int = 500) -> Quantifier:
    true, probabilities = simulate(generator, np.array([0.3, 0.4, 0.3]), labelled)
    return Quantifier(LABELS, true, probabilities)


def test_pacc_recovers_the_true_shares_where_classify_and_count_is_far_off():
    generator = np.random.default_rng(1)
    stream_shares = np.array([0.55, 0.30, 0.15])  # a bad day: far more complaints
    _, window = simulate(generator, stream_shares, 3000)
    raw = window.mean(axis=0)
    assert raw[0] < stream_shares[0] - 0.15  # the model's own share is 20 points too low
    shares, low, high = quantifier(generator).correct(window)
    np.testing.assert_allclose(shares, stream_shares, atol=0.03)
    assert (low <= shares).all() and (shares <= high).all()


def test_our_solver_agrees_with_quapys_on_well_conditioned_systems():
    generator = np.random.default_rng(2)
    for _ in range(20):
        matrix = CONFUSION + generator.uniform(-0.05, 0.05, CONFUSION.shape)
        matrix /= matrix.sum(axis=0)
        observed = matrix @ generator.dirichlet(np.ones(3))
        theirs = ACC.solve_adjustment(matrix, observed, method="inversion",
                                      solver="exact-raise")
        theirs = np.clip(theirs, 0, 1)
        np.testing.assert_allclose(pacc(observed, matrix), theirs / theirs.sum(), atol=1e-9)


def test_the_90_percent_intervals_hold_the_true_share_about_90_percent_of_the_time():
    generator = np.random.default_rng(3)
    held = []
    for _ in range(60):
        truth = generator.dirichlet(np.ones(3) * 2)
        _, window = simulate(generator, truth, 300)
        _, low, high = quantifier(generator, labelled=300).correct(window)
        held.append((low <= truth) & (truth <= high))
    coverage = np.mean(held)
    # 180 intervals: a true 90 % lands in [0.85, 0.95] with a probability of about 0.98
    assert 0.85 <= coverage <= 0.97, coverage


def test_a_matrix_the_model_cannot_invert_gives_no_correction():
    generator = np.random.default_rng(4)
    true = generator.choice(3, size=300)
    blind = np.tile([0.3, 0.4, 0.3], (300, 1)) + generator.normal(0, 0.01, (300, 3))
    assert Quantifier(LABELS, true, blind).status() == UNRELIABLE
    few = Quantifier(LABELS, np.array([0] * 50 + [1] * 50 + [2] * 5),
                     simulate(generator, np.array([0.45, 0.45, 0.1]), 105)[1])
    assert few.status() == UNRELIABLE


def test_the_bundle_entry_round_trips_into_a_quantifier():
    generator = np.random.default_rng(5)
    true, probabilities = simulate(generator, np.array([0.3, 0.4, 0.3]), 200)
    entry = quantification_entry(LABELS, true, probabilities, "200 labelled posts")
    assert entry["status"] == CORRECTED and entry["rows"] == 200
    np.testing.assert_allclose(entry["confusion_matrix"], CONFUSION, atol=0.06)
    rebuilt = Quantifier.from_manifest({"labels": list(LABELS), "quantification": entry})
    np.testing.assert_allclose(rebuilt.matrix, Quantifier(LABELS, true, probabilities).matrix,
                               atol=1e-4)  # probabilities are stored to 5 decimals


def records(generator: np.random.Generator, shares: np.ndarray, posts: int) -> list[dict]:
    true, probabilities = simulate(generator, shares, posts)
    return [{"status": "scored", "sentiment": LABELS[int(np.argmax(row))],
             "probabilities": dict(zip(LABELS, row)), "language": "en",
             "text_fingerprint": f"post-{index}"} for index, row in enumerate(probabilities)]


@pytest.mark.parametrize("corrected", [False, True])
def test_aggregates_and_alerts_with_and_without_a_correction(corrected):
    generator = np.random.default_rng(6)
    rule = AlertRule(LABELS, "negative", threshold=0.5, min_posts=20,
                     quantifier=quantifier(generator) if corrected else None)
    combine = SentimentAggregateFn(rule)
    accumulator = combine.create_accumulator()
    for record in records(generator, np.array([0.55, 0.3, 0.15]), 1000):
        accumulator = combine.add_input(accumulator, record)
    aggregate = {"type": "aggregate", "key": "acme", **combine.extract_output(accumulator)}
    alerts = list(alerts_for(aggregate, rule))
    assert aggregate["negative_share"] < 0.5  # the raw share alone would not alert
    if not corrected:
        assert aggregate["share_correction"] == UNCORRECTED and not alerts
        assert "corrected_share_negative" not in aggregate
        return
    assert aggregate["share_correction"] == CORRECTED
    assert aggregate["corrected_share_negative"] == pytest.approx(0.55, abs=0.05)
    assert (aggregate["corrected_share_negative_low"] < aggregate["corrected_share_negative"]
            < aggregate["corrected_share_negative_high"])
    assert sum(aggregate[f"corrected_share_{label}"] for label in LABELS) == pytest.approx(1)
    [alert] = alerts
    assert alert["alert_share"] == "corrected"


def test_export_stores_the_correction_measured_as_the_pipeline_scores(tiny_model_dir_3class,
                                                                      tmp_path):
    """``--quantification_dataset``: bundle.json gets the labelled posts' probabilities as the
    bundle itself scores them, a confusion matrix whose columns are distributions, and a status;
    a bad file is one clear error and nothing is half written."""
    import json

    from beam_pipeline.bundle import read_manifest
    from beam_pipeline.model import load_scoring_model
    from export.exporter import ExportError, export_bundle

    labels = ["bearish", "bullish", "neutral"]
    texts = [f"post {index} about $ACME: {'up' if index % 3 else 'down'} again" for index in
             range(45)]
    reviewed = tmp_path / "reviewed.jsonl"
    reviewed.write_text("".join(json.dumps({"id": str(index), "text": text,
                                            "label": labels[index % 3]}) + "\n"
                                for index, text in enumerate(texts)))
    manifest = export_bundle(tiny_model_dir_3class, tmp_path / "bundle", precisions=("fp32",),
                             quantification_dataset=str(reviewed), progress=lambda _: None)
    entry = read_manifest(str(tmp_path / "bundle"))["quantification"]
    assert entry == manifest["quantification"]
    assert entry["rows"] == 45 and entry["class_counts"] == {label: 15 for label in labels}
    assert entry["true_labels"] == [labels[index % 3] for index in range(45)]
    np.testing.assert_allclose(np.sum(entry["confusion_matrix"], axis=0), 1.0, atol=1e-4)
    scored = load_scoring_model(str(tmp_path / "bundle"), precision="fp32").score_rows(texts)
    # stored rounded to 5 decimals; the same session on the same rows otherwise
    np.testing.assert_allclose(entry["probabilities"],
                               np.stack([result.probabilities for result in scored]), atol=1e-4)
    assert Quantifier.from_manifest(manifest) is not None

    with pytest.raises(ExportError, match="--quantification_dataset"):
        export_bundle(tiny_model_dir_3class, tmp_path / "bad", precisions=("fp32",),
                      quantification_dataset=str(tmp_path / "missing.jsonl"),
                      progress=lambda _: None)
    assert not (tmp_path / "bad").exists()
