"""The model bundle: the one contract between `export` (which writes it) and the pipeline (which
reads it).

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
      "input_names": ["input_ids", "attention_mask", "token_type_ids"],   # all int64
      "output_name": "logits",                      # float32 [batch, len(labels)]
      "temperature": 1.0,                           # softmax temperature from calibration
      "text_normalization": ["mentions", "links", ...],  # optional: social_text steps, applied
                                                    # before tokenising (absent: none)
      "languages": ["en"],                          # optional: what the model reads (absent: any)
      "tokenizer": {"file": "tokenizer.json", "size_bytes": 711396, "sha256": "..."},
      "precisions": {
        "fp32": {"file": "model_fp32.onnx", "size_bytes": 90000000, "sha256": "...",
                 "parity": {"data": "872 validation rows of ...", "rows": 872,
                            "provider": "CPUExecutionProvider", "max_abs_prob_diff": 2e-07,
                            "mean_abs_prob_diff": 1e-08, "label_agreement": 1.0,
                            "accuracy": 0.9, "pytorch_accuracy": 0.9,   # with labelled rows
                            "bound": "max_abs_prob_diff <= 0.0001", "passed": true,
                            "checked_on": {"machine": "x86_64", "model": "<CPU model>",
                                           "flags": ["avx2", "avx512_vnni", ...],
                                           "int8_family": "avx512_vnni"}}},
        "int8": {...}, "fp16": {...}
      },
      "int8_probe": {"texts": [...256 built-in probe sentences...],   # with fp32 and int8:
                     "fp32_probabilities": [[0.98, 0.02], ...]},      # checked at start-up on
                                                    # a CPU of another int8 family
      "metrics": {"training": {...},                # final_metrics of training_report.json
                  "eval": {"data": "...", "rows": 872,
                           "pytorch": {"accuracy": ..., "macro_f1": ...},
                           "fp32": {...}, "int8": {...}, "fp16": {...}}},   # empty without labels
      "export": {"optimization_level": "O2",
                 "int8_quantization": "dynamic, avx512_vnni, per-channel, MatMul only",
                 "int8_float_nodes": ["/bert/encoder/layer.0/output/dense/MatMul", ...],
                 "int8_search": {"ranking_data": "256 train rows of ...",
                                 "check_data": "872 validation rows of ...",
                                 "label_agreement": 0.995, "tried": [...],
                                 "most_sensitive": [...], ...},
                 "wall_time_s": 40.2},
      "versions": {"onnxruntime": "...", "optimum": "...", "transformers": "...", "torch": "..."}
    }

``tokenizer.json`` already truncates to ``max_length`` and pads each batch to its longest row
(``Tokenizer.encode_batch`` gives a rectangular batch). The ONNX inputs and outputs are int64 and
float32 in every precision, fp16 included.

`load_bundle` validates all of this before any data moves and raises `BundleError` with a message
that names the offending file. It imports neither torch nor transformers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import posixpath
from collections.abc import Mapping
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_pipeline.social_text import STEPS as NORMALIZATION_STEPS

FORMAT_VERSION = 1
MANIFEST_NAME = "bundle.json"
TOKENIZER_NAME = "tokenizer.json"
PRECISIONS = ("fp32", "int8", "fp16")
#: int8's bound against float32 (the export's parity gate, the start-up probe): label agreement
MIN_INT8_LABEL_AGREEMENT = 0.99
TOKENIZER_KEY = "tokenizer"
REQUIRED_KEYS = ("format_version", "labels", "max_length", "input_names", "output_name",
                 "temperature", "tokenizer", "precisions")
_CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle is missing, malformed, tampered with, or lacks what was asked of it."""


def _open(path: str):
    """Opens a file on any Beam file system as stored (no decompression guessed from its name)."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _size_and_sha256(path: str) -> tuple[int, str]:
    size, digest = 0, hashlib.sha256()
    with _open(path) as handle:
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def sha256_of(path: str) -> str:
    """Hex sha256 of a file on any Beam file system, read in chunks."""
    return _size_and_sha256(path)[1]


def file_entry(path: str) -> dict[str, Any]:
    """The manifest entry (file name, size, sha256) describing one file inside a bundle."""
    size, sha256 = _size_and_sha256(path)
    return {"file": posixpath.basename(path), "size_bytes": size, "sha256": sha256}


def _safe_member(root: str, name: Any, what: str) -> str:
    """Joins a file name from the manifest to the bundle root, refusing anything but a plain
    name."""
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
    tokenizer_sha256: str

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
    def text_normalization(self) -> list[str]:
        """Normalisation steps the model was trained with (`social_text.STEPS`; none when the
        manifest has no ``text_normalization``)."""
        return list(self.manifest.get("text_normalization") or [])

    @property
    def languages(self) -> list[str] | None:
        """ISO 639-1 codes of the languages the model reads; None (no restriction) when the
        manifest has no ``languages``."""
        languages = self.manifest.get("languages")
        return list(languages) if languages is not None else None

    @property
    def model_version(self) -> str:
        """Identifies the exact model file that scores: its sha256 (first 16 hex digits)."""
        return self.model_sha256[:16]

    def available_precisions(self) -> list[str]:
        """The precisions this bundle holds (whichever was selected)."""
        return sorted(self.manifest["precisions"])

    def read_model_bytes(self) -> bytes:
        """The ONNX model, checked again against its sha256 as it is read."""
        return _read_checked(self.model_path, self.model_sha256)

    def read_tokenizer_json(self) -> str:
        """The tokenizer.json text, checked again against its sha256 as it is read."""
        return _read_checked(self.tokenizer_path, self.tokenizer_sha256).decode("utf-8")


def _read_checked(path: str, sha256: str) -> bytes:
    """A whole file, refused if it no longer matches the checksum validated at load time."""
    with _open(path) as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BundleError(f"{path}: sha256 mismatch; the file changed after the bundle was "
                          "validated")
    return data


def read_manifest(root: str) -> dict[str, Any]:
    """Reads and checks the shape of ``bundle.json`` (no file checksums)."""
    manifest_path = FileSystems.join(root, MANIFEST_NAME)
    if not FileSystems.exists(manifest_path):
        raise BundleError(f"{manifest_path}: not found; is {root!r} a model bundle written by "
                          "sentiment-export?")
    try:
        with _open(manifest_path) as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{manifest_path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path}: missing keys {', '.join(missing)}")
    version = manifest["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        raise BundleError(f"{manifest_path}: unknown format_version {version!r}; "
                          f"this version of the pipeline reads format {FORMAT_VERSION}")
    if not isinstance(manifest["precisions"], dict) or not manifest["precisions"]:
        raise BundleError(f"{manifest_path}: 'precisions' lists no model file")
    unknown = sorted(set(manifest["precisions"]) - set(PRECISIONS))
    if unknown:
        raise BundleError(f"{manifest_path}: unknown precisions {unknown}; "
                          f"known: {list(PRECISIONS)}")
    if not _is_list_of_str(manifest["labels"]):
        raise BundleError(f"{manifest_path}: 'labels' must be a non-empty list of label names")
    if not _is_list_of_str(manifest["input_names"]):
        raise BundleError(f"{manifest_path}: 'input_names' must be a non-empty list of names")
    if not isinstance(manifest["output_name"], str) or not manifest["output_name"]:
        raise BundleError(f"{manifest_path}: 'output_name' must be a name")
    if type(manifest["max_length"]) is not int or manifest["max_length"] < 2:
        raise BundleError(f"{manifest_path}: 'max_length' must be an integer of at least 2")
    if "text_normalization" in manifest and not (
            isinstance(manifest["text_normalization"], list)
            and set(manifest["text_normalization"]) <= set(NORMALIZATION_STEPS)):
        raise BundleError(f"{manifest_path}: 'text_normalization' must be a list of "
                          f"{', '.join(NORMALIZATION_STEPS)}")
    if "languages" in manifest and not _is_list_of_str(manifest["languages"]):
        raise BundleError(f"{manifest_path}: 'languages' must be a non-empty list of ISO 639-1 "
                          "codes")
    temperature = manifest["temperature"]
    if (type(temperature) not in (int, float) or not math.isfinite(temperature)
            or temperature <= 0):
        raise BundleError(f"{manifest_path}: 'temperature' must be a positive number")
    return manifest


def _is_list_of_str(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(item, str) and item for item in value))


def _verified_path(root: str, entry: Any, what: str) -> tuple[str, str]:
    if (not isinstance(entry, dict) or "file" not in entry
            or not isinstance(entry.get("sha256"), str)):
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


def pinned_checksums(manifest: dict[str, Any]) -> dict[str, str]:
    """The sha256 of the tokenizer and of each precision's model in a manifest (as read by
    `read_manifest`), to pin with `load_bundle`."""
    entries = {TOKENIZER_KEY: manifest["tokenizer"], **manifest["precisions"]}
    return {name: entry["sha256"] for name, entry in entries.items()
            if isinstance(entry, dict) and isinstance(entry.get("sha256"), str)}


def load_bundle(root: str | os.PathLike, precision: str,
                pinned_sha256: Mapping[str, str] | None = None) -> Bundle:
    """Validates the bundle at ``root`` and selects ``precision`` (one of `PRECISIONS`).

    Raises `BundleError` for a missing manifest or file, an unknown format version, a path that
    leaves the bundle, a checksum mismatch, or a precision the bundle does not hold.
    ``pinned_sha256`` (`pinned_checksums` of the manifest read when a job was planned) also
    refuses a model that matches the current ``bundle.json`` but not the planned one: a bundle
    whose manifest and model were both replaced after the job started.
    """
    root = os.fspath(root)
    root = root.rstrip("/") if root != "/" else root
    manifest = read_manifest(root)
    if precision not in manifest["precisions"]:
        raise BundleError(f"{FileSystems.join(root, MANIFEST_NAME)}: precision {precision!r} "
                          "not in "
                          f"bundle (it has {sorted(manifest['precisions'])})")
    tokenizer_path, tokenizer_sha = _verified_path(root, manifest["tokenizer"], "tokenizer")
    model_path, model_sha = _verified_path(root, manifest["precisions"][precision],
                                           f"{precision} model")
    if pinned_sha256 is not None:
        for name, path, sha in ((TOKENIZER_KEY, tokenizer_path, tokenizer_sha),
                                (precision, model_path, model_sha)):
            pinned = pinned_sha256.get(name)
            if pinned != sha:
                raise BundleError(f"{path}: sha256 {sha[:16]}… is not that of the {name} file the "
                                  "job was started with ("
                                  + (f"{pinned[:16]}…" if pinned else "it had none")
                                  + "); the bundle was replaced after the job started")
    return Bundle(root=root, manifest=manifest, precision=precision, model_path=model_path,
                  tokenizer_path=tokenizer_path, model_sha256=model_sha,
                  tokenizer_sha256=tokenizer_sha)
