"""The bundle loader: a valid bundle loads; each kind of broken bundle gives one clear
BundleError."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from beam_pipeline.bundle import (
    PRECISIONS,
    BundleError,
    file_entry,
    load_bundle,
    pinned_checksums,
    read_manifest,
)


@pytest.fixture
def bundle_copy(tiny_bundle_dir, tmp_path) -> Path:
    """A private copy of the session's tiny bundle, free to break."""
    return shutil.copytree(tiny_bundle_dir, tmp_path / "bundle")


def _edit_manifest(bundle_dir: Path, edit) -> None:
    path = bundle_dir / "bundle.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_valid_bundle_loads_each_precision(tiny_bundle_dir, precision):
    bundle = load_bundle(str(tiny_bundle_dir) + "/", precision)
    entry = bundle.manifest["precisions"][precision]
    assert bundle.model_path == str(tiny_bundle_dir / entry["file"])
    assert bundle.model_version == entry["sha256"][:16]
    assert len(bundle.read_model_bytes()) == entry["size_bytes"]
    assert json.loads(bundle.read_tokenizer_json())["truncation"]["max_length"] == bundle.max_length
    assert (bundle.labels, bundle.output_name, bundle.temperature) == (
        ["negative", "positive"], "logits", 1.0)
    assert bundle.available_precisions() == sorted(PRECISIONS)


def test_missing_manifest(tmp_path):
    with pytest.raises(BundleError, match=re.escape(f"{tmp_path / 'bundle.json'}: not found")):
        load_bundle(str(tmp_path), "fp32")


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
])
def test_unreadable_manifest(bundle_copy, content, message):
    (bundle_copy / "bundle.json").write_bytes(content)
    with pytest.raises(BundleError, match=re.escape(f"{bundle_copy / 'bundle.json'}: {message}")):
        read_manifest(str(bundle_copy))


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(format_version=2), "unknown format_version 2"),
    (lambda m: m.update(format_version=True), "unknown format_version True"),
    (lambda m: m.pop("tokenizer"), "missing keys tokenizer"),
    (lambda m: m.update(labels="negative"), "'labels' must be a non-empty list"),
    (lambda m: m.update(input_names=[]), "'input_names' must be a non-empty list"),
    (lambda m: m.update(max_length="128"), "'max_length' must be an integer"),
    (lambda m: m.update(temperature=0), "'temperature' must be a positive number"),
    (lambda m: m.update(precisions={}), "'precisions' lists no model file"),
    (lambda m: m["precisions"].update(bf16={}), "unknown precisions ['bf16']"),
])
def test_malformed_manifest(bundle_copy, edit, message):
    _edit_manifest(bundle_copy, edit)
    with pytest.raises(BundleError) as raised:
        load_bundle(str(bundle_copy), "fp32")
    assert str(raised.value).startswith(f"{bundle_copy / 'bundle.json'}: ")
    assert message in str(raised.value)


def test_missing_precision_names_what_the_bundle_has(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["precisions"].pop("fp16"))
    with pytest.raises(BundleError, match=re.escape("precision 'fp16' not in bundle (it has "
                                                    "['fp32', 'int8'])")):
        load_bundle(str(bundle_copy), "fp16")


def test_entry_without_checksum(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["tokenizer"].update(sha256=None))
    with pytest.raises(BundleError, match="tokenizer entry needs 'file' and 'sha256'"):
        load_bundle(bundle_copy, "fp32")  # a Path works as well as a str


def test_missing_model_file(bundle_copy):
    (bundle_copy / "model_int8.onnx").unlink()
    with pytest.raises(BundleError, match=re.escape(
            f"{bundle_copy / 'model_int8.onnx'}: int8 model file listed in bundle.json is "
            "missing")):
        load_bundle(str(bundle_copy), "int8")


@pytest.mark.parametrize("name", ["../model_fp32.onnx", "/etc/passwd", "sub/model.onnx",
                                  "..", "", 7])
def test_path_tricks_are_refused(bundle_copy, name):
    _edit_manifest(bundle_copy, lambda m: m["precisions"]["fp32"].update(file=name))
    with pytest.raises(BundleError, match="is not a plain file name inside the bundle"):
        load_bundle(str(bundle_copy), "fp32")


def test_one_tampered_byte_is_caught(bundle_copy):
    model = bundle_copy / "model_fp32.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=re.escape(f"{model}: sha256 mismatch")):
        load_bundle(str(bundle_copy), "fp32")
    load_bundle(str(bundle_copy), "int8")  # the other files are still good


def test_truncated_model_and_tampered_tokenizer_are_caught(bundle_copy):
    model = bundle_copy / "model_int8.onnx"
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(BundleError, match="truncated or was modified"):
        load_bundle(str(bundle_copy), "int8")
    tokenizer = bundle_copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"[UNK]"', '"[UNX]"', 1))
    with pytest.raises(BundleError, match=re.escape(f"{tokenizer}: sha256 mismatch")):
        load_bundle(str(bundle_copy), "fp32")


def test_change_after_validation_is_caught_on_read(bundle_copy):
    bundle = load_bundle(str(bundle_copy), "fp16")
    model = bundle_copy / "model_fp16.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(BundleError, match="changed after the bundle was validated"):
        bundle.read_model_bytes()


def test_pinned_checksums_refuse_a_bundle_replaced_after_planning(bundle_copy):
    """Model and manifest replaced together still match each other; only the checksums pinned
    when the job was planned tell that this is not the model the job started with."""
    pinned = pinned_checksums(read_manifest(str(bundle_copy)))
    assert set(pinned) == {"tokenizer", *PRECISIONS}
    assert load_bundle(bundle_copy, "fp32", pinned).model_sha256 == pinned["fp32"]
    shutil.copyfile(bundle_copy / "model_int8.onnx", bundle_copy / "model_fp32.onnx")
    _edit_manifest(bundle_copy, lambda m: m["precisions"].update(
        fp32=file_entry(str(bundle_copy / "model_fp32.onnx"))))
    load_bundle(bundle_copy, "fp32")  # consistent with itself
    with pytest.raises(BundleError, match=re.escape(
            f"{bundle_copy / 'model_fp32.onnx'}: sha256 {pinned['int8'][:16]}… is not that of the "
            f"fp32 file the job was started with ({pinned['fp32'][:16]}…); the bundle was "
            "replaced after the job started")):
        load_bundle(bundle_copy, "fp32", pinned)
    with pytest.raises(BundleError, match="is not that of the int8 file .*it had none"):
        load_bundle(bundle_copy, "int8", {"tokenizer": pinned["tokenizer"]})
    tokenizer = bundle_copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"[UNK]"', '"[UNX]"', 1))
    _edit_manifest(bundle_copy, lambda m: m.update(tokenizer=file_entry(str(tokenizer))))
    with pytest.raises(BundleError, match=re.escape(f"{tokenizer}: sha256 ")):
        load_bundle(bundle_copy, "int8", pinned)
