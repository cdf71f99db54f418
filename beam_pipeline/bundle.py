"""The model bundle: the one contract between `export` (which writes it) and the pipeline (which reads it).

A bundle is a folder (local or any Beam file system, e.g. ``gs://``) holding::

    bundle.json          manifest, described below
    tokenizer.json       Hugging Face `tokenizers` file: scoring needs no transformers
    model_fp32.onnx      one ONNX file per precision (fp32, int8, fp16)
    ...

``bundle.json`` (format version 1)::

    {
      "format_version": 1,
      "created_at": "2026-11-23T13:00:00+00:00",
      "base_model": "<name or path the classifier was fine-tuned from>",
      "labels": ["negative", "positive"],          # label name by class id
      "max_length": 128,
      "input_names": ["input_ids", "attention_mask", "token_type_ids"],
      "output_name": "logits",
      "temperature": 1.0,                           # softmax temperature from calibration
      "tokenizer": {"file": "tokenizer.json", "size_bytes": 711396, "sha256": "..."},
      "precisions": {
        "fp32": {"file": "model_fp32.onnx", "size_bytes": 90000000, "sha256": "...",
                 "parity": {...}},                  # results of the check against PyTorch
        "int8": {...}, "fp16": {...}
      },
      "metrics": {"training": {...}, "eval": {...}},
      "versions": {"onnxruntime": "...", "optimum": "...", "transformers": "...", "torch": "..."}
    }

`load_bundle` validates all of this before any data moves and raises `BundleError` with a message
that names the offending file. It imports neither torch nor transformers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
from typing import Any

from apache_beam.io.filesystems import FileSystems

FORMAT_VERSION = 1
MANIFEST_NAME = "bundle.json"
TOKENIZER_NAME = "tokenizer.json"
PRECISIONS = ("fp32", "int8", "fp16")
REQUIRED_KEYS = ("format_version", "labels", "max_length", "input_names", "output_name",
                 "temperature", "tokenizer", "precisions")
_CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle is missing, malformed, tampered with, or lacks what was asked of it."""


def sha256_of(path: str) -> str:
    """Hex sha256 of a file on any Beam file system, read in chunks."""
    digest = hashlib.sha256()
    with FileSystems.open(path) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: str) -> dict[str, Any]:
    """The manifest entry (file name, size, sha256) describing one file inside a bundle."""
    with FileSystems.open(path) as handle:
        size = 0
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return {"file": posixpath.basename(path), "size_bytes": size, "sha256": digest.hexdigest()}


def _safe_member(root: str, name: Any, what: str) -> str:
    """Joins a file name from the manifest to the bundle root, refusing anything but a plain name."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise BundleError(f"{FileSystems.join(root, MANIFEST_NAME)}: {what} file name {name!r} "
                          "is not a plain file name inside the bundle")
    return FileSystems.join(root, name)


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A validated bundle with one precision chosen; what the pipeline needs to score."""

    root: str
    manifest: dict[str, Any]
    precision: str
    model_path: str
    tokenizer_path: str
    model_sha256: str

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def max_length(self) -> int:
        return int(self.manifest["max_length"])

    @property
    def input_names(self) -> list[str]:
        return list(self.manifest["input_names"])

    @property
    def output_name(self) -> str:
        return self.manifest["output_name"]

    @property
    def temperature(self) -> float:
        return float(self.manifest["temperature"])

    @property
    def model_version(self) -> str:
        """Identifies the exact model file that scores: its sha256 (first 16 hex digits)."""
        return self.model_sha256[:16]

    def available_precisions(self) -> list[str]:
        return sorted(self.manifest["precisions"])

    def read_model_bytes(self) -> bytes:
        """The ONNX model, checked again against its sha256 as it is read."""
        with FileSystems.open(self.model_path) as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != self.model_sha256:
            raise BundleError(f"{self.model_path}: sha256 mismatch; the model file changed "
                              "after the bundle was validated")
        return data

    def read_tokenizer_json(self) -> str:
        with FileSystems.open(self.tokenizer_path) as handle:
            return handle.read().decode("utf-8")


def read_manifest(root: str) -> dict[str, Any]:
    """Reads and checks the shape of ``bundle.json`` (no file checksums)."""
    manifest_path = FileSystems.join(root, MANIFEST_NAME)
    if not FileSystems.exists(manifest_path):
        raise BundleError(f"{manifest_path}: not found; is {root!r} a model bundle written by "
                          "sentiment-export?")
    try:
        with FileSystems.open(manifest_path) as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{manifest_path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path}: missing keys {', '.join(missing)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(f"{manifest_path}: unknown format_version {manifest['format_version']!r}; "
                          f"this version of the pipeline reads format {FORMAT_VERSION}")
    if not isinstance(manifest["precisions"], dict) or not manifest["precisions"]:
        raise BundleError(f"{manifest_path}: 'precisions' lists no model file")
    unknown = sorted(set(manifest["precisions"]) - set(PRECISIONS))
    if unknown:
        raise BundleError(f"{manifest_path}: unknown precisions {unknown}; known: {list(PRECISIONS)}")
    if not manifest["labels"] or not all(isinstance(label, str) for label in manifest["labels"]):
        raise BundleError(f"{manifest_path}: 'labels' must be a non-empty list of label names")
    return manifest


def _verified_path(root: str, entry: Any, what: str) -> tuple[str, str]:
    if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
        raise BundleError(f"{FileSystems.join(root, MANIFEST_NAME)}: {what} entry needs 'file' "
                          "and 'sha256'")
    path = _safe_member(root, entry["file"], what)
    if not FileSystems.exists(path):
        raise BundleError(f"{path}: {what} file listed in {MANIFEST_NAME} is missing")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise BundleError(f"{path}: sha256 mismatch (manifest {entry['sha256'][:16]}…, file "
                          f"{actual[:16]}…); the file is truncated or was modified")
    return path, actual


def load_bundle(root: str, precision: str) -> Bundle:
    """Validates the bundle at ``root`` and selects ``precision`` (one of `PRECISIONS`).

    Raises `BundleError` for a missing manifest or file, an unknown format version, a path that
    leaves the bundle, a checksum mismatch, or a precision the bundle does not hold.
    """
    root = root.rstrip("/") if root not in ("/",) else root
    manifest = read_manifest(root)
    if precision not in manifest["precisions"]:
        raise BundleError(f"{FileSystems.join(root, MANIFEST_NAME)}: precision {precision!r} not in "
                          f"bundle (it has {sorted(manifest['precisions'])})")
    tokenizer_path, _ = _verified_path(root, manifest["tokenizer"], "tokenizer")
    model_path, model_sha = _verified_path(root, manifest["precisions"][precision],
                                           f"{precision} model")
    return Bundle(root=root, manifest=manifest, precision=precision, model_path=model_path,
                  tokenizer_path=tokenizer_path, model_sha256=model_sha)
