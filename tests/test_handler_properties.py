"""Property-based tests (hypothesis) of the tokenise-sort-pad-unsort path of the ONNX handler: any
batch of strings (any lengths, blank, unicode, far longer than max_length, duplicates) comes back
in its own order with one result per input, equal to scoring each string alone.

Small ``max_length`` and ``max_batch_size`` make every batch sort into several sub-batches of
different widths and make long texts span many windows in chunk mode, on the tiny bundle.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beam_pipeline.model import LONG_TEXT_MODES, load_scoring_model
from beam_pipeline.onnx_handler import OnnxSentimentModelHandler

MAX_LENGTH, MAX_BATCH_SIZE = 16, 3
WORDS = ["good", "bad", "film", "the", "not", "very", "plot", "acting", ",", ".", "!",
         "unbelievably", "überraschend", "東京", "😀", "مرحبا", "naïve"]
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow])

texts = st.one_of(
    st.text(max_size=40),  # any unicode: control, zero-width, RTL, emoji, CJK, combining marks
    st.text(alphabet=" \t\n\u200b\u00a0", max_size=5),  # blank or invisible only
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=120).map(" ".join),  # up to 8 windows
)
batches = st.lists(texts, min_size=1, max_size=10)


@pytest.fixture(scope="module")
def models(tiny_bundle_dir):
    """One scoring model per long-text mode, fp32 on CPU."""
    return {mode: load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu",
                                     max_batch_size=MAX_BATCH_SIZE, max_length=MAX_LENGTH,
                                     long_text=mode)
            for mode in LONG_TEXT_MODES}


def assert_scored_in_order(model, batch: list[str]) -> None:
    """One probability row per input, in input order, equal to that input scored alone."""
    probabilities = model.predict(batch)
    assert probabilities.shape == (len(batch), len(model.bundle.labels))
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    alone = np.concatenate([model.predict([text]) for text in batch])
    np.testing.assert_allclose(probabilities, alone, atol=1e-5)


@pytest.mark.parametrize("mode", LONG_TEXT_MODES)
@PROPERTY_SETTINGS
@given(batch=batches)
@example(batch=["", " ", "a"])
@example(batch=[" ".join(["very"] * 100), "ok", " ".join(["bad"] * 100), "ok"])
def test_any_batch_is_scored_in_input_order_as_if_alone(models, mode, batch):
    assert_scored_in_order(models[mode], batch)


@PROPERTY_SETTINGS
@given(batch=batches, seed=st.integers(0, 2**32 - 1))
def test_permuting_the_batch_permutes_the_results(models, batch, seed):
    model = models["chunk"]
    permutation = np.random.default_rng(seed).permutation(len(batch))
    np.testing.assert_allclose(model.predict([batch[i] for i in permutation]),
                               model.predict(batch)[permutation], atol=1e-5)


@PROPERTY_SETTINGS
@given(batch=batches)
def test_handler_returns_one_prediction_per_example_in_order(tiny_bundle_dir, models, batch):
    handler = OnnxSentimentModelHandler(str(tiny_bundle_dir), precision="fp32", device="cpu",
                                        max_batch_size=MAX_BATCH_SIZE, max_length=MAX_LENGTH,
                                        long_text="chunk")
    model = models["chunk"]
    results = handler.run_inference(batch, model)
    assert [result.example for result in results] == batch
    assert {result.model_id for result in results} == {model.version()}
    # the same batch through the same model: float32 rounding at most
    np.testing.assert_allclose(np.stack([result.inference for result in results]),
                               model.predict(batch), atol=1e-5)
