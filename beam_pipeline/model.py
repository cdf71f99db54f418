"""The scoring model: a bundle's ONNX Runtime session and tokenizer, texts in, probabilities out.

No Beam transforms here: `load_scoring_model` validates a bundle and opens the session on the
best allowed device; `ScoringModel.predict` / `predict_rows` score a batch of cleaned texts. The
Beam side is the thin `onnx_handler.OnnxSentimentModelHandler`. What a batch goes through::

    texts -> encode_batch (one tokenizers call; windows with long_text=chunk, sentences)
          -> sort by token length -> sub-batches of max_batch_size, each padded to its longest
          -> session.run (IO binding on CUDA) -> softmax(logits / temperature)
          -> input order (windows combined back into their text: window_weights)

Why each choice: docs/design.md, "Scoring model".
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

import blingfire
import numpy as np
import onnxruntime as ort
from apache_beam.metrics import Metrics
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
from tokenizers import Tokenizer

from beam_pipeline import social_text
from beam_pipeline.bundle import (
    MIN_INT8_LABEL_AGREEMENT,
    PRECISIONS,
    Bundle,
    BundleError,
    load_bundle,
    read_manifest,
)
from beam_pipeline.cpu import int8_family
from beam_pipeline.errors import first_line
from beam_pipeline.language import LanguageGate
from beam_pipeline.vocabulary import (
    METRICS_NAMESPACE,
    ONNX_BATCH_ROWS,
    SCORED,
    UNSUPPORTED_LANGUAGE,
)

LOGGER = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda")
PRECISION_CHOICES = ("auto", *PRECISIONS)
LONG_TEXT_MODES = ("truncate", "head_tail", "chunk", "sentences")
#: the modes that score a long text as several windows (overlapping chunks, or its sentences)
WINDOWED_MODES = ("chunk", "sentences")
#: how the windows of a long text are combined: the mean weighted by their text tokens, by their
#: confidence (max probability), or by length with the last window counted twice; or the
#: probabilities of the most confident window alone
WINDOW_WEIGHTINGS = ("length", "confidence", "last", "most_confident")
CUDA_PROVIDER = "CUDAExecutionProvider"
NVIDIA_DEVICE_NODE = "/dev/nvidiactl"
CPU_PROVIDER = "CPUExecutionProvider"
#: ONNX Runtime session option: whether idle intra-op threads spin ("1", its default) or sleep
SPINNING_CONFIG_KEY = "session.intra_op.allow_spinning"
_NUMPY_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
# what InferenceSession.run raises when a graph cannot run on given inputs (not a Python bug)
ORT_RUN_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.RuntimeException,
                  ort_state.EPFail, ort_state.EngineError, ort_state.NotImplemented)


def choose_precision(requested: str, device: str,
                     available: Iterable[str] | Mapping[str, Any]) -> str:
    """The precision to load: ``requested`` itself, or for ``auto`` fp16 on cuda, int8 on cpu,
    falling back to fp32 (or whatever the bundle has) when the preferred one is absent. With the
    manifest's ``precisions`` entries given, ``auto`` passes over a precision whose parity check
    failed at export (kept with --allow_parity_failure)."""
    if requested != "auto":
        return requested
    entries = available if isinstance(available, Mapping) else dict.fromkeys(available)
    passed = [precision for precision, entry in entries.items()
              if ((entry or {}).get("parity") or {}).get("passed", True)]
    preferred = "fp16" if device == "cuda" else "int8"
    for candidates in (passed, list(entries)):
        for precision in (preferred, "fp32", *PRECISIONS):
            if precision in candidates:
                return precision
    raise BundleError(f"bundle lists no known precision (it has {list(entries)})")


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, computed in float64 (numerically stable)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class InferenceFailure:
    """Why ONNX Runtime could not score a row: the error's type and the first line of its message
    (ONNX Runtime names nodes and shapes there, never input text)."""

    error_type: str
    first_line: str

    @classmethod
    def from_error(cls, error: BaseException) -> InferenceFailure:
        return cls(type(error).__name__, first_line(error))

    def __str__(self) -> str:
        return f"{self.error_type}: {self.first_line}"


@dataclasses.dataclass(frozen=True)
class RowResult:
    """What scoring one text gave: ``status`` (`vocabulary.SCORED` with ``probabilities``, or
    `vocabulary.UNSUPPORTED_LANGUAGE`, or SCORED with a ``failure`` where ONNX Runtime failed on
    it), its language and the confidence of that guess, its duplicate ``fingerprint``, its
    length in ``tokens`` and whether it was ``cut`` (longer than max_length: truncated or
    scored as windows)."""

    probabilities: Optional[np.ndarray]
    failure: Optional[InferenceFailure]
    status: str
    language: Optional[str]
    language_confidence: Optional[float]
    fingerprint: str
    tokens: Optional[int]
    cut: bool


def _head_and_tail(encoding: Any) -> Any:
    """The first quarter and the last three quarters of the tokens that fit, for a text whose
    encoding overflowed (Sun et al. 2019, "How to fine-tune BERT for text classification": head
    plus tail beats either alone on long reviews); a text that fits is returned as it is."""
    if not encoding.overflowing:
        return encoding
    pieces = (encoding, *encoding.overflowing)
    content = [(token, type_id) for piece in pieces for token, type_id, special in
               zip(piece.ids, piece.type_ids, piece.special_tokens_mask) if not special]
    budget = encoding.special_tokens_mask.count(0)  # content tokens that fit in max_length
    head = budget // 4
    kept = content[:head] + content[len(content) - (budget - head):]
    cls = encoding.ids[:1] if encoding.special_tokens_mask[0] else []
    sep = encoding.ids[-1:] if encoding.special_tokens_mask[-1] else []
    ids = cls + [token for token, _ in kept] + sep
    type_ids = [0] * len(cls) + [type_id for _, type_id in kept] + [0] * len(sep)
    return _Window(ids=ids, type_ids=type_ids, attention_mask=[1] * len(ids),
                   special_tokens_mask=[1] * len(cls) + [0] * len(kept) + [1] * len(sep))


def _sentences(text: str) -> list[str]:
    """A text's sentences (Bling Fire's sentence breaker; the text itself if it finds none)."""
    sentences = blingfire.text_to_sentences(text).split("\n")
    return [sentence for sentence in sentences if sentence.strip()] or [text]


@dataclasses.dataclass(frozen=True)
class _Window:
    """An encoding built from token ids (the fields `ScoringModel._feed` reads)."""

    ids: list[int]
    type_ids: list[int]
    attention_mask: list[int]
    special_tokens_mask: list[int]


def window_weights(windows: Sequence[Any], owners: np.ndarray, probabilities: np.ndarray,
                   weighting: str) -> np.ndarray:
    """The weight of each window of a long text when its probabilities are averaged (see
    `WINDOW_WEIGHTINGS`)."""
    if weighting == "confidence":
        return np.nan_to_num(probabilities.max(axis=1).astype(np.float64), nan=1.0)
    if weighting == "most_confident":  # per text, its first window of the highest confidence
        confidence = np.nan_to_num(probabilities.max(axis=1).astype(np.float64), nan=-1.0)
        order = np.lexsort((-confidence, owners))
        first = np.r_[True, owners[order][1:] != owners[order][:-1]]
        weights = np.zeros(len(windows), np.float64)
        weights[order[first]] = 1.0
        return weights
    weights = np.array([max(1, window.special_tokens_mask.count(0)) for window in windows],
                       np.float64)
    if weighting == "last":
        last = np.r_[owners[1:] != owners[:-1], True]
        weights[last] *= 2
    return weights


class ScoringModel:
    """A loaded bundle: ONNX Runtime session plus tokenizer; `predict` maps texts to
    probabilities. Only methods are used by the handler, so it also works behind Beam's
    multi-process sharing proxy."""

    def __init__(self, bundle: Bundle, session: ort.InferenceSession, device: str,
                 max_batch_size: int, max_length: int, long_text: str,
                 window_weighting: str = "most_confident",
                 language_gate: Optional[LanguageGate] = None):
        self.bundle = bundle
        self.session = session
        self.device = device
        self.max_batch_size = max_batch_size
        self.max_length = max_length
        self.long_text = long_text
        self.window_weighting = window_weighting
        self.normalization = social_text.parse_steps(bundle.text_normalization)
        self.language_gate = language_gate or LanguageGate(bundle.languages)
        self.tokenizer = Tokenizer.from_str(bundle.read_tokenizer_json())
        padding = self.tokenizer.padding or {}
        self.pad_id = int(padding.get("pad_id", self.tokenizer.token_to_id("[PAD]") or 0))
        self.pad_type_id = int(padding.get("pad_type_id", 0))
        self.tokenizer.no_padding()
        stride = max_length // 4 if long_text == "chunk" else 0
        self.tokenizer.enable_truncation(max_length=max_length, stride=stride)
        self.input_types = {node.name: _NUMPY_TYPES.get(node.type, np.int64)
                            for node in session.get_inputs()}
        self.batch_rows = Metrics.distribution(METRICS_NAMESPACE, ONNX_BATCH_ROWS)
        self.use_io_binding = device == "cuda"

    def version(self) -> str:
        """The model version written to each record (sha256 prefix of the ONNX file)."""
        return self.bundle.model_version

    def describe(self) -> dict[str, str]:
        """Precision, device and provider in use, for logs and summaries."""
        return {"precision": self.bundle.precision, "device": self.device,
                "provider": self.session.get_providers()[0], "model_version": self.version()}

    def _feed(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        width = max(len(encoding.ids) for encoding in encodings)
        shape = (len(encodings), width)
        arrays = {"input_ids": np.full(shape, self.pad_id, np.int64),
                  "attention_mask": np.zeros(shape, np.int64),
                  "token_type_ids": np.full(shape, self.pad_type_id, np.int64)}
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            arrays["input_ids"][row, :length] = encoding.ids
            arrays["attention_mask"][row, :length] = encoding.attention_mask
            arrays["token_type_ids"][row, :length] = encoding.type_ids
        return {name: arrays[name].astype(self.input_types.get(name, np.int64), copy=False)
                for name in self.bundle.input_names}

    def _logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Logits of one sub-batch. With IO binding (on CUDA) the inputs are placed on the
        session's device once and only the logits are bound back to host memory."""
        if not self.use_io_binding:
            return self.session.run([self.bundle.output_name], feed)[0]
        binding = self.session.io_binding()
        for name, array in feed.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, self.device))
        binding.bind_output(self.bundle.output_name, "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def _windows(self, texts: Sequence[str]) -> tuple[list[Any], np.ndarray, np.ndarray]:
        """Encodings to run, for each the index of the text it belongs to, and each text's
        length in tokens (special tokens included, before any truncation). With ``sentences`` a
        text longer than max_length is split into its sentences, each a window (the head and
        tail of a sentence that is itself too long)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.array([len(encoding.ids) + sum(
            overflow.special_tokens_mask.count(0) for overflow in encoding.overflowing)
            for encoding in encodings])
        if self.long_text == "truncate":
            return encodings, np.arange(len(encodings)), lengths
        if self.long_text == "head_tail":
            return ([_head_and_tail(encoding) for encoding in encodings],
                    np.arange(len(encodings)), lengths)
        windows, owners = [], []
        for index, (text, encoding) in enumerate(zip(texts, encodings)):
            if self.long_text == "chunk":
                pieces = [encoding, *encoding.overflowing]
            elif not encoding.overflowing:
                pieces = [encoding]
            else:
                pieces = [_head_and_tail(sentence)
                          for sentence in self.tokenizer.encode_batch(_sentences(text))]
            windows.extend(pieces)
            owners.extend([index] * len(pieces))
        return windows, np.asarray(owners), lengths

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities (rows in the order of ``texts``, columns in label order); raises ONNX
        Runtime's error when any sub-batch fails (see `predict_rows`)."""
        return self._predict(self.normalize(texts), failures=None)[0]

    def predict_rows(self, texts: Sequence[str]) -> list[np.ndarray | InferenceFailure]:
        """One result per text, in order: its probabilities (as `predict` gives them), or an
        `InferenceFailure` when ONNX Runtime raised for it. A sub-batch that fails is split in
        halves, recursively, so only the rows that fail on their own are lost (a long text
        scored as windows fails when any of its windows does)."""
        failures: dict[int, InferenceFailure] = {}
        probabilities, _ = self._predict(self.normalize(texts), failures)
        self._log_failures(failures, len(texts))
        return [failures.get(index, row) for index, row in enumerate(probabilities)]

    def normalize(self, texts: Sequence[str]) -> list[str]:
        """The texts as the model reads them: the bundle's text normalisation applied."""
        if not self.normalization:
            return list(texts)
        return [social_text.normalize(text, self.normalization) for text in texts]

    def score_rows(self, texts: Sequence[str]) -> list[RowResult]:
        """One `RowResult` per text, in order: its language, its fingerprint, its length in
        tokens, and its probabilities, or why it was not scored (a language the model does not
        read, see `language.LanguageGate`; an ONNX Runtime failure, see `predict_rows`). Each
        distinct text (after normalisation) is scored once per call."""
        normalized = self.normalize(texts)
        languages = self.language_gate.identify(texts)
        distinct: dict[str, int] = {}
        for text, (_, _, supported) in zip(normalized, languages):
            if supported:
                distinct.setdefault(text, len(distinct))
        failures: dict[int, InferenceFailure] = {}
        probabilities, lengths = self._predict(list(distinct), failures)
        self._log_failures(failures, len(distinct))
        results = []
        for raw, text, (language, confidence, supported) in zip(texts, normalized, languages):
            index = distinct.get(text) if supported else None
            results.append(RowResult(
                probabilities=None if index is None or index in failures
                else probabilities[index],
                failure=failures.get(index) if index is not None else None,
                status=SCORED if supported else UNSUPPORTED_LANGUAGE,
                language=language, language_confidence=confidence,
                fingerprint=social_text.fingerprint(raw),
                tokens=int(lengths[index]) if index is not None else None,
                cut=bool(index is not None and lengths[index] > self.max_length)))
        return results

    @staticmethod
    def _log_failures(failures: dict[int, InferenceFailure], rows: int) -> None:
        if failures:
            distinct = sorted({str(failure) for failure in failures.values()})
            LOGGER.warning("ONNX Runtime failed on %d of %d rows (%d distinct errors; the "
                           "dead letters hold each row's): %s", len(failures), rows,
                           len(distinct), distinct[0])

    def _predict(self, texts: Sequence[str], failures: Optional[dict[int, InferenceFailure]]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities of already normalised ``texts`` and their lengths in tokens. With
        ``failures`` given, failing rows are isolated (see `predict_rows`): their failure is
        recorded by text index and their row holds NaN."""
        if not texts:
            return np.zeros((0, len(self.bundle.labels)), np.float32), np.zeros(0, np.int64)
        windows, owners, lengths = self._windows(texts)
        order = np.argsort([len(window.ids) for window in windows], kind="stable")
        window_probs = np.full((len(windows), len(self.bundle.labels)), np.nan, np.float32)
        window_failures = None if failures is None else {}
        for start in range(0, len(order), self.max_batch_size):
            rows = order[start:start + self.max_batch_size]
            self.batch_rows.update(len(rows))
            self._score_windows(windows, rows, window_probs, window_failures)
        for window, failure in (window_failures or {}).items():
            failures.setdefault(int(owners[window]), failure)
        if len(windows) == len(texts):
            return window_probs, lengths
        weights = window_weights(windows, owners, window_probs, self.window_weighting)
        totals = np.zeros((len(texts), window_probs.shape[1]), np.float64)
        np.add.at(totals, owners, window_probs * weights[:, None])
        return (totals / np.bincount(owners, weights)[:, None]).astype(np.float32), lengths

    def _score_windows(self, windows: Sequence[Any], rows: np.ndarray, out: np.ndarray,
                       failures: Optional[dict[int, InferenceFailure]]) -> None:
        """Writes the probabilities of ``windows[rows]`` into ``out[rows]``; on an ONNX Runtime
        error raises, or with ``failures`` bisects and records the rows failing alone."""
        try:
            logits = self._logits(self._feed([windows[row] for row in rows]))
        except ORT_RUN_ERRORS as error:
            if failures is None:
                raise
            if len(rows) == 1:
                failures[int(rows[0])] = InferenceFailure.from_error(error)
                return
            half = len(rows) // 2
            self._score_windows(windows, rows[:half], out, failures)
            self._score_windows(windows, rows[half:], out, failures)
            return
        out[rows] = softmax(logits, self.bundle.temperature)


def _session(bundle: Bundle, providers: list[str], intra_op_threads: int,
             allow_spinning: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    if not allow_spinning:
        options.add_session_config_entry(SPINNING_CONFIG_KEY, "0")
    return ort.InferenceSession(bundle.read_model_bytes(), options, providers=providers)


def int8_probe_problem(bundle: Bundle, session: ort.InferenceSession) -> Optional[str]:
    """Why the int8 model should not score on this CPU, or None. Nothing is checked when int8 was
    checked at export on a CPU of this int8 family (`cpu.int8_family`) or the bundle has no
    ``int8_probe``; otherwise the bundle's probe texts are scored (at the bundle's max_length,
    head_tail, as recorded) and their labels compared with its recorded fp32 probabilities."""
    checked = (bundle.manifest["precisions"]["int8"].get("parity") or {}).get("checked_on") or {}
    exported_on, here = checked.get("int8_family"), int8_family()
    probe = bundle.manifest.get("int8_probe")
    if exported_on == here or not probe:
        return None
    model = ScoringModel(bundle, session, "cpu", 64, bundle.max_length, "head_tail")
    expected = np.asarray(probe["fp32_probabilities"])
    agreement = float((model.predict(probe["texts"]).argmax(1) == expected.argmax(1)).mean())
    LOGGER.info("int8 start-up probe on a %s CPU (int8 checked on %s): label agreement %.4f with "
                "fp32 on %d texts", here, exported_on, agreement, len(expected))
    if agreement >= MIN_INT8_LABEL_AGREEMENT:
        return None
    return (f"int8 was checked on a {exported_on} CPU; on this {here} CPU its labels agree with "
            f"the bundle's fp32 probabilities on {agreement:.2%} of {len(expected)} probe texts "
            f"(bound {MIN_INT8_LABEL_AGREEMENT:.0%})")


def nvidia_device_present() -> bool:
    """Whether the NVIDIA driver exposes a device here (as on GPU VMs and GPU containers).
    ``--device auto`` tries CUDA only then: onnxruntime-gpu lists its CUDA provider everywhere
    and prints an error before falling back when the provider cannot start."""
    return os.path.exists(NVIDIA_DEVICE_NODE)


def load_scoring_model(bundle_root: str, precision: str = "auto", device: str = "auto",
                       max_batch_size: int = 64, max_length: Optional[int] = None,
                       long_text: str = "sentences", intra_op_threads: int = 0,
                       pinned_sha256: Optional[Mapping[str, str]] = None,
                       window_weighting: str = "most_confident",
                       allow_spinning: bool = True) -> ScoringModel:
    """Validates the bundle, creates the session on the best allowed device, returns the model.

    ``allow_spinning=False`` makes ONNX Runtime's intra-op threads sleep between runs instead of
    spinning (a stream's small batches leave the runner's own thread the cores).

    Raises `BundleError` when the bundle is invalid or lacks an explicitly requested precision,
    or (with ``pinned_sha256``, see `bundle.pinned_checksums`) when its files are not the ones
    the job was planned with.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    if long_text not in LONG_TEXT_MODES:
        raise ValueError(f"long_text must be one of {LONG_TEXT_MODES}, not {long_text!r}")
    if window_weighting not in WINDOW_WEIGHTINGS:
        raise ValueError(f"window_weighting must be one of {WINDOW_WEIGHTINGS}, "
                         f"not {window_weighting!r}")
    available = read_manifest(bundle_root)["precisions"]

    def build(bundle: Bundle, session: ort.InferenceSession, used: str) -> ScoringModel:
        model = ScoringModel(bundle, session, used, max_batch_size,
                             max_length or bundle.max_length, long_text, window_weighting)
        LOGGER.info("scoring with %s", model.describe())
        return model

    if device != "cpu":
        if device == "auto" and not nvidia_device_present():
            reason = f"no NVIDIA device node ({NVIDIA_DEVICE_NODE}) on this machine"
        elif CUDA_PROVIDER in ort.get_available_providers():
            bundle = load_bundle(bundle_root, choose_precision(precision, "cuda", available),
                                 pinned_sha256)
            session = _session(bundle, [CUDA_PROVIDER, CPU_PROVIDER], intra_op_threads,
                               allow_spinning)
            if session.get_providers()[0] == CUDA_PROVIDER:
                return build(bundle, session, "cuda")
            reason = "the CUDA execution provider could not start (no GPU or CUDA libraries)"
        else:
            reason = "this onnxruntime build has no CUDA execution provider"
        log = LOGGER.warning if device == "cuda" else LOGGER.info
        log("device %s: %s; falling back to CPU", device, reason)
    bundle = load_bundle(bundle_root, choose_precision(precision, "cpu", available), pinned_sha256)
    session = _session(bundle, [CPU_PROVIDER], intra_op_threads, allow_spinning)
    problem = int8_probe_problem(bundle, session) if bundle.precision == "int8" else None
    if problem and precision == "auto" and "fp32" in available:
        LOGGER.warning("%s: scoring with fp32 instead", problem)
        bundle = load_bundle(bundle_root, "fp32", pinned_sha256)
        session = _session(bundle, [CPU_PROVIDER], intra_op_threads, allow_spinning)
    elif problem:
        LOGGER.warning("%s: scoring with int8 all the same (--precision %s)", problem, precision)
    return build(bundle, session, "cpu")
