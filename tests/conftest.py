"""Session fixtures: tiny randomly initialised BERT classifiers and their bundles, each built
once per pytest run (`testkit.models`: the embedded MiniLM's real vocabulary, random weights)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from testkit import SHARED_DATA
from testkit.models import build_short_position_bundle, build_tiny_bert

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny binary (negative/positive) classifier folder."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), ["negative", "positive"])


@pytest.fixture(scope="session")
def tiny_model_dir_3class(tmp_path_factory) -> Path:
    """A tiny three-class (bearish/bullish/neutral) classifier folder."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert3"), ["bearish", "bullish", "neutral"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout (SST-2, tweets, financial tweets, reviews)."""
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


@pytest.fixture(scope="session")
def short_position_bundle(tmp_path_factory) -> Path:
    """A tiny BERT with 16 position embeddings, exported at max_length 16 (fp32): scoring it at
    a larger --max_length makes ONNX Runtime fail, for real, on rows longer than 16 tokens."""
    return build_short_position_bundle(tmp_path_factory.mktemp("short_positions"))


@pytest.fixture(params=["inspected", "cached"])
def dofn_specs(request, monkeypatch) -> str:
    """Runs a test twice: with Beam's DoFn inspection as it is, and with ``--cache_dofn_specs``'
    patch installed (undone after the test)."""
    if request.param == "cached":
        from beam_pipeline.streaming import direct_runner_patch

        for module in direct_runner_patch.PATCHED_MODULES:  # monkeypatch restores these
            monkeypatch.setattr(module, "get_dofn_specs", module.get_dofn_specs)
        direct_runner_patch.install()
    return request.param
