"""The model half of planning a job, shared by batch and streaming: done once, before any data
moves, so that a bad bundle or flag is one error line and workers score exactly what was checked.

    --model (+ --precision, --device)  -> manifest read, the model file workers will load verified
    manifest + --max_length            -> labels, max_length (the bundle's unless given)
    manifest                           -> pinned checksums (workers refuse any other file)
    --max_chars                        -> character cap (default from max_length)
"""
from __future__ import annotations

import dataclasses
from typing import Any

from beam_pipeline.aggregates import AlertRule
from beam_pipeline.bundle import load_bundle, pinned_checksums, read_manifest
from beam_pipeline.errors import InputError
from beam_pipeline.model import choose_precision
from beam_pipeline.quantification import Quantifier
from beam_pipeline.validation import default_max_chars


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    """What a job knows of its model before it starts."""

    manifest: dict[str, Any]
    labels: tuple[str, ...]
    max_length: int
    max_chars: int
    pinned_sha256: dict[str, str]


def plan_model(options: Any) -> ModelPlan:
    """Reads the bundle a `ScoringOptions` view names and verifies the model file its workers will
    most likely load (``auto``: the CPU/CUDA choice); raises `BundleError`."""
    manifest = read_manifest(options.model)
    load_bundle(options.model, choose_precision(
        options.precision, "cuda" if options.device == "cuda" else "cpu", manifest["precisions"]))
    max_length = options.max_length or int(manifest["max_length"])
    return ModelPlan(manifest=manifest, labels=tuple(manifest["labels"]), max_length=max_length,
                     max_chars=options.max_chars or default_max_chars(max_length),
                     pinned_sha256=pinned_checksums(manifest))


def plan_alert_rule(options: Any, model: ModelPlan) -> AlertRule:
    """The alert rule the flags describe, with the bundle's share correction when it has one
    (raises `InputError` for a label the model lacks)."""
    labels, manifest = model.labels, model.manifest
    try:
        return AlertRule(labels=labels, negative_label=options.negative_label or labels[0],
                         threshold=options.alert_negative_share,
                         min_posts=options.alert_min_posts,
                         quantifier=Quantifier.from_manifest(manifest))
    except ValueError as error:
        raise InputError(str(error)) from None
