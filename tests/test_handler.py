"""The ONNX Runtime model handler on the tiny exported bundle: batching, order, temperature,
long-text windows, precision choice and the CPU fallback when CUDA cannot run."""
import json
import logging
import shutil

import apache_beam as beam
import numpy as np
import onnxruntime as ort
import pytest
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that
from tokenizers import Tokenizer

from beam_pipeline.bundle import BundleError, sha256_of
from beam_pipeline.model import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    _Window,
    choose_precision,
    load_scoring_model,
    nvidia_device_present,
    window_weights,
)
from beam_pipeline.onnx_handler import OnnxSentimentModelHandler

TEXTS = ["a gorgeous , witty , seductive movie .", "bad", "it 's not as pleasant as it sounds .",
         "the acting , costumes , music , cinematography and sound are all astounding given "
         "the production 's austere locales .", "meh", "an utterly charming and hilarious film"]
LONG_TEXT = " ".join(["the plot drags but the performances are superb and moving ."] * 40)


class RecordingSession:
    """The real ONNX Runtime session, remembering the shape of every call."""

    def __init__(self, session):
        self._session = session
        self.shapes = []

    def run(self, output_names, feed):
        self.shapes.append(feed["input_ids"].shape)
        return self._session.run(output_names, feed)

    def get_providers(self):
        return self._session.get_providers()


def reference_logits(bundle_dir, precision, token_lists):
    """Logits of each token list run alone, through a session of our own."""
    session = ort.InferenceSession(str(bundle_dir / f"model_{precision}.onnx"),
                                   providers=[CPU_PROVIDER])
    rows = []
    for token_ids in token_lists:
        ids = np.array([token_ids], np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids)}
        rows.append(session.run(["logits"], feed)[0][0])
    return np.array(rows, np.float64)


def softmax(logits, temperature=1.0):
    exp = np.exp(logits / temperature - (logits / temperature).max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def tokenizer(bundle_dir, max_length, stride=0):
    tok = Tokenizer.from_file(str(bundle_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length, stride=stride)
    return tok


def copy_bundle(bundle_dir, target, edit):
    """A copy of the bundle with its manifest changed by ``edit``."""
    shutil.copytree(bundle_dir, target)
    manifest = json.loads((target / "bundle.json").read_text())
    edit(manifest)
    (target / "bundle.json").write_text(json.dumps(manifest))
    return target


def test_batched_scoring_equals_rows_scored_alone_in_input_order(tiny_bundle_dir):
    model = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu",
                               max_batch_size=2)
    model.session = RecordingSession(model.session)
    probabilities = model.predict(TEXTS)
    encodings = tokenizer(tiny_bundle_dir, 128).encode_batch(TEXTS)
    expected = softmax(reference_logits(tiny_bundle_dir, "fp32", [e.ids for e in encodings]))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    lengths = sorted(len(e.ids) for e in encodings)
    # sorted by length, sub-batches of 2 rows, each padded only to its own longest row
    assert model.session.shapes == [(2, lengths[1]), (2, lengths[3]), (2, lengths[5])]


def test_temperature_from_the_bundle_divides_the_logits(tiny_bundle_dir, tmp_path):
    hot = copy_bundle(tiny_bundle_dir, tmp_path / "hot",
                      lambda manifest: manifest.update(temperature=0.01))
    model = load_scoring_model(str(hot), precision="fp32", device="cpu")
    encodings = tokenizer(hot, 128).encode_batch(TEXTS)
    logits = reference_logits(hot, "fp32", [e.ids for e in encodings])
    np.testing.assert_allclose(model.predict(TEXTS), softmax(logits, 0.01), atol=1e-4)


def test_chunk_mode_averages_overlapping_windows_weighted_by_length(tiny_bundle_dir):
    max_length = 32
    chunked = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu",
                                 max_length=max_length, long_text="chunk", max_batch_size=4)
    truncated = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu",
                                   max_length=max_length)
    encoding = tokenizer(tiny_bundle_dir, max_length, stride=max_length // 4).encode(LONG_TEXT)
    windows = [encoding, *encoding.overflowing]
    assert len(windows) > 5
    window_probs = softmax(reference_logits(tiny_bundle_dir, "fp32", [w.ids for w in windows]))
    weights = np.array([sum(1 for m in w.special_tokens_mask if m == 0) for w in windows])
    expected_long = (window_probs * weights[:, None]).sum(axis=0) / weights.sum()

    texts = ["short one", LONG_TEXT, "another short one"]
    chunk_probs, trunc_probs = chunked.predict(texts), truncated.predict(texts)
    np.testing.assert_allclose(chunk_probs[1], expected_long, atol=1e-5)
    np.testing.assert_allclose(trunc_probs[1], window_probs[0], atol=1e-5)
    # other rows in the batch (windows of the long text) change the padding: float32 last bits
    np.testing.assert_allclose(chunk_probs[[0, 2]], trunc_probs[[0, 2]], atol=1e-5)


def test_sentences_mode_scores_a_long_text_as_its_most_confident_sentence(tiny_bundle_dir,
                                                                            tmp_path):
    # a low temperature spreads the random model's near-even probabilities apart
    hot = copy_bundle(tiny_bundle_dir, tmp_path / "hot",
                      lambda manifest: manifest.update(temperature=0.01))
    sentences = ["The plot drags and the dialogue is wooden.",
                 "But the performances are superb, moving and utterly charming!",
                 "Meh.", "I would not watch it again, though the music is astounding."]
    long_text = " ".join(sentences * 3)  # 12 sentences, over 32 tokens
    split = load_scoring_model(str(hot), precision="fp32", device="cpu", max_length=32,
                               long_text="sentences", window_weighting="most_confident")
    truncated = load_scoring_model(str(hot), precision="fp32", device="cpu", max_length=32,
                                   long_text="truncate")
    each = truncated.predict(sentences)
    top, second = np.sort(each.max(axis=1))[::-1][:2]
    assert top - second > 4e-4  # one sentence clearly the most confident (beyond float noise)
    probabilities = split.predict(["short one", long_text])
    np.testing.assert_allclose(probabilities[1], each[each.max(axis=1).argmax()], atol=1e-4)
    np.testing.assert_allclose(probabilities[0], truncated.predict(["short one"])[0], atol=1e-4)


def test_window_weightings_per_text():
    def window(text_tokens):
        return _Window(ids=[0] * (text_tokens + 2), type_ids=[0] * (text_tokens + 2),
                       attention_mask=[1] * (text_tokens + 2),
                       special_tokens_mask=[1] + [0] * text_tokens + [1])

    windows = [window(n) for n in (30, 30, 10, 20, 20)]
    owners = np.array([0, 0, 0, 1, 1])
    probabilities = np.array([[0.6, 0.4], [0.1, 0.9], [0.95, 0.05], [0.3, 0.7], [0.7, 0.3]])
    for weighting, expected in [("length", [30, 30, 10, 20, 20]),
                                ("confidence", [0.6, 0.9, 0.95, 0.7, 0.7]),
                                ("last", [30, 30, 20, 20, 40]),
                                ("most_confident", [0, 0, 1, 1, 0])]:  # a tie: the first
        np.testing.assert_allclose(window_weights(windows, owners, probabilities, weighting),
                                   expected, err_msg=weighting)
    failed = probabilities.copy()
    failed[2] = np.nan  # a window ONNX Runtime failed on is never the most confident
    np.testing.assert_allclose(window_weights(windows, owners, failed, "most_confident"),
                               [0, 1, 0, 1, 0])


def test_auto_precision_is_int8_on_cpu_and_fp16_on_cuda_when_present():
    assert choose_precision("auto", "cpu", ["fp16", "fp32", "int8"]) == "int8"
    assert choose_precision("auto", "cuda", ["fp16", "fp32", "int8"]) == "fp16"
    assert choose_precision("auto", "cpu", ["fp16", "fp32"]) == "fp32"
    assert choose_precision("auto", "cuda", ["fp32", "int8"]) == "fp32"
    assert choose_precision("fp16", "cpu", ["fp16", "fp32"]) == "fp16"


def test_loaded_precision_and_model_version_follow_the_choice(tiny_bundle_dir, tmp_path):
    model = load_scoring_model(str(tiny_bundle_dir), device="cpu")
    assert model.describe()["precision"] == "int8"
    assert model.version() == sha256_of(str(tiny_bundle_dir / "model_int8.onnx"))[:16]
    no_int8 = copy_bundle(tiny_bundle_dir, tmp_path / "no_int8",
                          lambda manifest: manifest["precisions"].pop("int8"))
    assert load_scoring_model(str(no_int8), device="cpu").describe()["precision"] == "fp32"
    with pytest.raises(BundleError, match=r"precision 'int8' not in bundle \(it has \['fp16', "
                                          r"'fp32'\]\)"):
        load_scoring_model(str(no_int8), precision="int8", device="cpu")


def cuda_really_runs(bundle_dir):
    """Whether a CUDA session can start here (checked apart from the handler)."""
    if CUDA_PROVIDER not in ort.get_available_providers():
        return False
    session = ort.InferenceSession(str(bundle_dir / "model_fp32.onnx"),
                                   providers=[CUDA_PROVIDER, CPU_PROVIDER])
    return session.get_providers()[0] == CUDA_PROVIDER


def test_device_cuda_falls_back_to_cpu_with_a_warning_when_cuda_cannot_run(tiny_bundle_dir,
                                                                          caplog):
    caplog.set_level(logging.INFO, logger="beam_pipeline.model")
    model = load_scoring_model(str(tiny_bundle_dir), device="cuda")
    if cuda_really_runs(tiny_bundle_dir):
        assert model.describe()["provider"] == CUDA_PROVIDER
        assert model.describe()["precision"] == "fp16"
        return
    assert model.describe() | {"model_version": None} == {
        "device": "cpu", "provider": CPU_PROVIDER, "precision": "int8", "model_version": None}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("device cuda" in message and "falling back to CPU" in message
               for message in warnings)
    assert model.predict(["still scores"]).shape == (1, 2)


@pytest.mark.skipif(nvidia_device_present(), reason="this machine has an NVIDIA device")
def test_device_auto_without_a_gpu_uses_cpu_without_trying_cuda(tiny_bundle_dir, caplog, capfd):
    """No NVIDIA device: ``auto`` goes to the CPU quietly, with no CUDA provider error."""
    caplog.set_level(logging.INFO, logger="beam_pipeline.model")
    model = load_scoring_model(str(tiny_bundle_dir), device="auto")
    assert model.describe()["provider"] == CPU_PROVIDER
    assert any("device auto: no NVIDIA device node" in r.getMessage() for r in caplog.records)
    assert "CUDAExecutionProvider" not in capfd.readouterr().err


def test_handler_in_run_inference_gives_probabilities_and_model_version(tiny_bundle_dir):
    handler = OnnxSentimentModelHandler(str(tiny_bundle_dir), precision="fp32", device="cpu",
                                        max_batch_size=4)
    model = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu")
    expected = dict(zip(TEXTS, model.predict(TEXTS)))
    version = model.version()
    del model  # the matcher is pickled; a session is not

    def matches_direct_scoring(results):
        assert sorted(r.example for r in results) == sorted(TEXTS)
        for result in results:
            np.testing.assert_allclose(result.inference, expected[result.example], atol=1e-5)
            assert result.model_id == version

    with beam.Pipeline("FnApiRunner", options=PipelineOptions(flags=[])) as pipeline:
        results = pipeline | beam.Create(TEXTS) | RunInference(handler)
        assert_that(results, matches_direct_scoring)


def test_io_binding_path_gives_the_same_probabilities(tiny_bundle_dir):
    """The path CUDA sessions take, run here on the CPU provider."""
    model = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu")
    plain = model.predict(TEXTS)
    model.use_io_binding = True
    # same session and sub-batches, another copy path: float32 rounding at most
    np.testing.assert_allclose(model.predict(TEXTS), plain, atol=1e-5)
