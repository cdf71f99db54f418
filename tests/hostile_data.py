"""Data builders for the hardening tests and the batch reliability cases
(benchmarks/reliability_cases/batch.py): hostile models, dumps and files, built from scratch.

Import it with the tests folder on ``sys.path`` (pytest puts it there; the benchmark inserts it).
"""
from __future__ import annotations

import json
from pathlib import Path

from conftest import build_tiny_bert

SHORT_POSITIONS = 16


def build_short_position_bert(output_dir: Path, positions: int = SHORT_POSITIONS) -> Path:
    """The tiny random binary BERT of conftest with only ``positions`` position embeddings:
    exported with ``max_length <= positions`` it scores short rows, while scoring with a larger
    ``--max_length`` makes ONNX Runtime fail on every batch holding a row longer than
    ``positions`` tokens (a real runtime fault, no mock)."""
    from safetensors.numpy import load_file, save_file

    build_tiny_bert(output_dir, ["negative", "positive"])
    config_path, weights_path = output_dir / "config.json", output_dir / "model.safetensors"
    config = json.loads(config_path.read_text())
    config["max_position_embeddings"] = positions
    config_path.write_text(json.dumps(config))
    weights = load_file(weights_path)
    name = "bert.embeddings.position_embeddings.weight"
    weights[name] = weights[name][:positions].copy()
    save_file(weights, weights_path, metadata={"format": "pt"})
    return output_dir


def build_short_position_bundle(work_dir: Path) -> Path:
    """`build_short_position_bert` exported (fp32) to a bundle with max_length = its positions."""
    from export.exporter import export_bundle

    model_dir = build_short_position_bert(work_dir / "short_position_bert")
    bundle_dir = work_dir / "short_position_bundle"
    export_bundle(model_dir, bundle_dir, precisions=("fp32",), max_length=SHORT_POSITIONS)
    return bundle_dir


def texts_of_token_lengths(tokenizer_json: str, lengths: list[int]) -> list[str]:
    """One text per wanted length: untruncated, it encodes to exactly that many tokens (special
    tokens included) with the tokenizer serialised in ``tokenizer_json``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_truncation()
    texts = []
    for length in lengths:
        text = " ".join(["film"] * max(0, length - 2))
        tokens = len(tokenizer.encode(text).ids)
        if tokens != length:
            raise ValueError(f"built a text of {tokens} tokens, wanted {length}")
        texts.append(text)
    return texts
