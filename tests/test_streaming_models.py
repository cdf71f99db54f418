"""Model hot-swap (--model_watch): real bundles written to a watched folder, verified before use."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from beam_pipeline.model import SPINNING_CONFIG_KEY, load_scoring_model
from beam_pipeline.onnx_handler import OnnxSentimentModelHandler
from beam_pipeline.streaming.model_watch import StreamingModelHandler, SwappableModel
from testkit.models import copy_bundle

TEXTS = ["Shares jump after earnings beat", "Guidance cut, stock falls"]


def cpu_model(root):
    return load_scoring_model(str(root), precision="auto", device="cpu")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def watched(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


def test_a_new_bundle_scores_after_the_interval_and_bad_ones_are_refused(
        tiny_bundle_dir, watched, caplog):
    clock = Clock()
    model = SwappableModel(cpu_model(tiny_bundle_dir), cpu_model, f"{watched}/*", interval_s=5,
                           clock=clock)
    first_version = cpu_model(tiny_bundle_dir).version()
    assert model.score(TEXTS)[0] == first_version

    new_bundle = copy_bundle(tiny_bundle_dir, watched / "v2", precisions=("fp32",))
    new_model = cpu_model(new_bundle)
    assert new_model.version() != first_version  # fp32 file instead of int8
    clock.now = 4.9
    assert model.score(TEXTS)[0] == first_version  # not looked yet
    clock.now = 5.0
    with caplog.at_level(logging.INFO, logger="beam_pipeline.streaming.model_watch"):
        version, results = model.score(TEXTS)
    assert version == new_model.version()
    probabilities = np.stack([result.probabilities for result in results])
    # the same texts through the same file in another session: float32 rounding at most
    np.testing.assert_allclose(probabilities, new_model.predict(TEXTS), rtol=0, atol=1e-5)
    assert f"now scoring with bundle {new_bundle}" in caplog.text

    caplog.clear()
    copy_bundle(tiny_bundle_dir, watched / "v3-tampered", tamper=True)
    clock.now = 10.0
    with caplog.at_level(logging.INFO, logger="beam_pipeline.streaming.model_watch"):
        assert model.score(TEXTS)[0] == new_model.version()
    [refusal] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert f"refused bundle {watched / 'v3-tampered'}" in refusal.getMessage()
    assert "sha256 mismatch" in refusal.getMessage()
    assert "\n" not in refusal.getMessage() and refusal.exc_info is None

    caplog.clear()
    copy_bundle(tiny_bundle_dir, watched / "v4-other-labels", labels=["bearish", "bullish"])
    clock.now = 15.0
    with caplog.at_level(logging.INFO, logger="beam_pipeline.streaming.model_watch"):
        assert model.score(TEXTS)[0] == new_model.version()
    assert "labels ['bearish', 'bullish'], the stream scores ['negative', 'positive']" \
        in caplog.text

    caplog.clear()
    clock.now = 20.0  # nothing new: refused bundles are not tried again
    assert model.score(TEXTS)[0] == new_model.version()
    assert caplog.text == ""


def test_without_a_pattern_nothing_is_watched(tiny_bundle_dir, watched):
    model = SwappableModel(cpu_model(tiny_bundle_dir), cpu_model, None, interval_s=0)
    copy_bundle(tiny_bundle_dir, watched / "v2", precisions=("fp32",))
    assert model.score(TEXTS)[0] == cpu_model(tiny_bundle_dir).version()


def test_bundles_present_at_start_are_not_candidates(tiny_bundle_dir, watched):
    copy_bundle(tiny_bundle_dir, watched / "old", precisions=("fp32",))
    model = SwappableModel(cpu_model(tiny_bundle_dir), cpu_model, f"{watched}/*", interval_s=0)
    assert model.score(TEXTS)[0] == cpu_model(tiny_bundle_dir).version()


def test_a_streams_onnx_runtime_threads_sleep_between_batches(tiny_bundle_dir):
    """The stream's handler asks ONNX Runtime to let idle threads sleep (they spin by default, and
    a stream's small batches leave the cores to the runner's thread); a batch job keeps ONNX
    Runtime's default; both score alike."""
    stream = StreamingModelHandler(str(tiny_bundle_dir), precision="auto", device="cpu")
    streamed = stream.load_model()._model  # the SwappableModel's current ScoringModel
    assert streamed.session.get_session_options().get_session_config_entry(
        SPINNING_CONFIG_KEY) == "0"
    batch = OnnxSentimentModelHandler(str(tiny_bundle_dir), precision="auto",
                                      device="cpu").load_model()
    with pytest.raises(RuntimeError, match="does not have configuration"):
        batch.session.get_session_options().get_session_config_entry(SPINNING_CONFIG_KEY)
    np.testing.assert_allclose(streamed.predict(TEXTS), batch.predict(TEXTS), rtol=0, atol=1e-6)
