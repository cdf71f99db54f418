"""The streaming pipeline's model: loaded once per process, hot-swapped with ``--model_watch``.

``--model_watch GLOB`` names bundle folders (``/models/sentiment-*``, ``gs://b/models/*``). Every
``--model_watch_interval_s`` seconds, before scoring a batch, the pipeline lists
``GLOB/bundle.json``; a manifest that appeared or changed since the last look (``sentiment-export``
writes it last) names a candidate, and the newest candidate is loaded with `load_scoring_model`,
which verifies the manifest and every checksum before it builds the session. A bundle that fails
(missing file, checksum mismatch, unknown format, an ONNX file that does not load) or that has
other labels than the running job is refused with one ERROR log line, and the current model keeps
scoring; it is tried again only when its ``bundle.json`` changes. Batches scored after the swap
carry the new bundle's ``model_version``; none are lost or scored twice.

Why this and not Beam's `WatchFilePattern` side input: docs/design.md, "Hot-swap".
"""
from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import PredictionResult

from beam_pipeline.bundle import MANIFEST_NAME
from beam_pipeline.model import InferenceFailure, RowResult, ScoringModel, load_scoring_model
from beam_pipeline.onnx_handler import OnnxSentimentModelHandler

LOGGER = logging.getLogger(__name__)
DEFAULT_WATCH_INTERVAL_S = 30.0


def watched_manifests(pattern: str) -> dict[str, float]:
    """``bundle.json`` path -> last modification time, for every bundle folder ``pattern``
    matches."""
    manifests = FileSystems.join(pattern.rstrip("/"), MANIFEST_NAME)
    return {metadata.path: metadata.last_updated_in_seconds
            for result in FileSystems.match([manifests]) for metadata in result.metadata_list}


class SwappableModel:
    """The model scoring now and, with a watch pattern, the watcher that swaps in a newer
    verified bundle (see the module docstring). Used only through methods, so it also works
    behind Beam's multi-process sharing proxy."""

    def __init__(self, model: ScoringModel, load: Callable[[str], ScoringModel],
                 watch_pattern: Optional[str] = None,
                 interval_s: float = DEFAULT_WATCH_INTERVAL_S, clock=time.monotonic):
        """``model`` scores first; ``load`` loads and verifies the bundle at a path."""
        self._load = load
        self._model = model
        self._pattern = watch_pattern
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seen = watched_manifests(watch_pattern) if watch_pattern else {}
        self._next_look = clock() + interval_s

    def version(self) -> str:
        """The model version scoring now."""
        return self._model.version()

    def score(self, texts: Sequence[str]) -> tuple[str, list[RowResult]]:
        """``(model version, a `model.RowResult` per text)`` (`ScoringModel.score_rows`).
        Looks for a newer bundle first when the interval has passed."""
        if self._pattern and self._clock() >= self._next_look:
            with self._lock:
                if self._clock() >= self._next_look:
                    self._swap_to_newest()
                    self._next_look = self._clock() + self._interval_s
        model = self._model
        return model.version(), model.score_rows(list(texts))

    def _swap_to_newest(self) -> None:
        manifests = watched_manifests(self._pattern)
        fresh = [(modified, path) for path, modified in manifests.items()
                 if self._seen.get(path) != modified]
        self._seen = manifests
        if not fresh:
            return
        root = FileSystems.split(max(fresh)[1])[0]
        current = self._model
        try:
            candidate = self._load(root)
        except Exception as error:  # pylint: disable=broad-except  # any failure: keep scoring
            LOGGER.error("model watch: refused bundle %s (%s); still scoring with model version "
                         "%s", root, InferenceFailure.from_error(error), current.version())
            return
        if candidate.bundle.labels != current.bundle.labels:
            LOGGER.error("model watch: refused bundle %s (labels %s, the stream scores %s); "
                         "still scoring with model version %s", root, candidate.bundle.labels,
                         current.bundle.labels, current.version())
            return
        self._model = candidate
        LOGGER.info("model watch: now scoring with bundle %s, model version %s (was %s)",
                    root, candidate.version(), current.version())


class StreamingModelHandler(OnnxSentimentModelHandler):
    """The batch pipeline's handler, for a stream: rows ONNX Runtime fails on come back as
    `InferenceFailure` results instead of failing the bundle, the model may be hot-swapped
    (``model_watch``), and the loaded model stays alive in the process between bundles: Beam's
    DirectRunner builds a new RunInference DoFn for every streaming bundle (one Pub/Sub pull, at
    most 10 messages), and a model shared only weakly was loaded again every few messages. The
    `MODELS_KEPT` most recently used models are kept. ONNX Runtime's idle threads sleep instead
    of spinning (``allow_spinning=False``): between a stream's small batches the runner's own
    thread needs the cores (docs/design.md, "Streaming pipeline")."""

    MODELS_KEPT = 2
    _loaded: collections.OrderedDict[str, SwappableModel] = collections.OrderedDict()
    _lock = threading.Lock()

    def __init__(self, bundle_root: str, *, model_watch: Optional[str] = None,
                 model_watch_interval_s: float = DEFAULT_WATCH_INTERVAL_S, **kwargs):
        """``model_watch``: glob of bundle folders to hot-swap from, looked at every
        ``model_watch_interval_s`` seconds; ``kwargs`` as `OnnxSentimentModelHandler`'s."""
        super().__init__(bundle_root, **{"allow_spinning": False, **kwargs})
        self._watch = dict(pattern=model_watch, interval_s=model_watch_interval_s)

    def load_model(self) -> SwappableModel:
        key = json.dumps([self._load_args, self._watch], sort_keys=True)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        # the planned bundle is pinned to the checksums read when the job was planned; a new
        # bundle is verified against its own manifest
        settings = {name: value for name, value in self._load_args.items()
                    if name not in ("bundle_root", "pinned_sha256")}
        model = SwappableModel(super().load_model(),
                               lambda root: load_scoring_model(root, **settings),
                               self._watch["pattern"], self._watch["interval_s"])
        with self._lock:
            self._loaded[key] = model
            while len(self._loaded) > self.MODELS_KEPT:
                self._loaded.popitem(last=False)
        return model

    def run_inference(self, batch: Sequence[str], model: SwappableModel,
                      inference_args: Optional[dict[str, Any]] = None) -> list[PredictionResult]:
        """One result per text: ``inference`` holds its `model.RowResult`; ``model_id`` the
        version of the model that scored the batch."""
        version, results = model.score(batch)
        return [PredictionResult(example=text, inference=result, model_id=version)
                for text, result in zip(batch, results)]
