"""Export a Hugging Face sequence classifier to a model bundle (see `beam_pipeline.bundle`).

Steps, each reported through ``progress``:

1. check the model folder (safetensors only; pickled ``pytorch_model.bin`` is refused) and load it;
2. export to ONNX with Optimum (task text-classification, dynamic batch and sequence axes);
3. ``fp32``: Optimum's `ORTOptimizer` at ``optimization_level`` (BERT attention, LayerNorm and
   GELU fusions);
4. ``int8``: Optimum's `ORTQuantizer`, dynamic quantization configured for this CPU's instruction
   set, applied to the plain exported graph (ONNX Runtime's quantizer cannot type the fused
   contrib ops of the optimised graph), the first GELU-fed MatMul kept in float32
   (`first_gelu_projection`);
5. ``fp16``: the same optimisation for CUDA plus float16 conversion, inputs/outputs kept
   int64/float32;
6. parity of every precision against PyTorch (`export.parity`), on the validation rows of
   ``eval_dataset`` or on the built-in probe sentences;
7. the bundle: ``model_<precision>.onnx``, ``tokenizer.json``, and ``bundle.json`` written last;
8. with ``quantification_dataset`` (labelled posts of the stream, not used for training): the
   bundle scores them as the pipeline would and ``bundle.json`` gains ``quantification``, their
   confusion matrix and per-class probability means (`beam_pipeline.quantification`).
"""
from __future__ import annotations

import json
import math
import platform
import posixpath
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems
from safetensors import SafetensorError

from beam_pipeline.bundle import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    PRECISIONS,
    TOKENIZER_NAME,
    file_entry,
)
from beam_pipeline.errors import first_line
from beam_pipeline.social_text import normalize
from export import parity
from export.probes import probe_sentences
from training.trainer import pickled_weights_problem

OPTIMIZATION_LEVELS = ("O1", "O2", "O3")
REPORT_NAME = "training_report.json"
OUTPUT_NAME = "logits"
VERSIONED_PACKAGES = ("optimum", "optimum-onnx", "onnx", "transformers", "torch", "tokenizers")


class ExportError(ValueError):
    """The model folder, the options or the parity check do not allow a bundle to be written."""


def _print_progress(message: str) -> None:
    print(f"[sentiment-export] {message}", file=sys.stderr, flush=True)


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags of this CPU (empty where /proc/cpuinfo does not exist)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def int8_config_name(flags: set[str], machine: str | None = None) -> str:
    """Name of the `AutoQuantizationConfig` constructor that fits a CPU with these flags."""
    machine = (machine or platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    for flag, name in (("avx512_vnni", "avx512_vnni"), ("avx512f", "avx512"), ("avx2", "avx2")):
        if flag in flags:
            return name
    raise ExportError("int8: this CPU has neither AVX2 nor AVX-512 (see /proc/cpuinfo), for which "
                      "ONNX Runtime's dynamic quantization is made; leave int8 out of --precisions")


def check_model_dir(model_dir: Path) -> None:
    """Refuses a folder that is not a classifier saved with safetensors weights."""
    if not model_dir.is_dir():
        raise ExportError(f"{model_dir}: model folder not found")
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"{model_dir / 'config.json'}: not found; --model_dir must be a folder "
                          "written by sentiment-train or save_pretrained")
    if problem := pickled_weights_problem(model_dir):
        raise ExportError(problem)


def read_training_report(model_dir: Path) -> dict[str, Any]:
    """``training_report.json`` of the model folder, or an empty dict when there is none."""
    path = model_dir / REPORT_NAME
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(report, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return report


def calibration_temperature(report: dict[str, Any], model_dir: Path) -> float:
    """The softmax temperature fitted at training time (1.0 when the report has none)."""
    temperature = (report.get("calibration") or {}).get("temperature", 1.0)
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not math.isfinite(temperature) or temperature <= 0):
        raise ExportError(f"{model_dir / REPORT_NAME}: calibration.temperature {temperature!r} is "
                          "not a positive number")
    return float(temperature)


def label_names(config: Any) -> list[str]:
    """Label names ordered by class id, from the model config's ``id2label``."""
    return [str(config.id2label[index]) for index in range(config.num_labels)]


def bundle_tokenizer(tokenizer: Any, max_length: int) -> Any:
    """The fast tokenizer's `tokenizers.Tokenizer`, truncating to ``max_length`` and padding each
    batch to its longest row (whatever padding the model folder had configured)."""
    backend = tokenizer.backend_tokenizer
    backend.enable_truncation(max_length=max_length)
    backend.enable_padding(pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token,
                           pad_type_id=tokenizer.pad_token_type_id)
    return backend


def evaluation_rows(eval_dataset: str | None, labels: list[str], text_column: str,
                    label_column: str) -> tuple[list[str], np.ndarray | None, str]:
    """Texts, labels (or None) and a description of the rows the parity check runs on."""
    if eval_dataset is None:
        texts = probe_sentences()
        return texts, None, f"{len(texts)} built-in probe sentences"
    from training.data import DataError, load_labelled_set

    try:
        labelled = load_labelled_set(eval_dataset, text_column=text_column,
                                     label_column=label_column, labels=labels)
    except DataError as error:
        raise ExportError(f"--eval_dataset {eval_dataset}: {error}") from None
    rows = labelled.dataset
    return (list(rows["text"]), np.asarray(rows["label"]),
            f"{len(rows)} {labelled.split} rows of {eval_dataset}")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the exported files."""
    import onnxruntime

    versions = {"onnxruntime": onnxruntime.__version__}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _prepare_output(output_dir: str) -> None:
    """Empties a folder that holds only bundle files (an earlier export); refuses anything else."""
    members = {MANIFEST_NAME, TOKENIZER_NAME,
               *(f"model_{precision}.onnx" for precision in PRECISIONS)}
    existing = [item.path for item in
                FileSystems.match([FileSystems.join(output_dir, "*")])[0].metadata_list]
    foreign = sorted(path for path in existing if posixpath.basename(path) not in members)
    if foreign:
        raise ExportError(f"{output_dir}: folder holds files that are not part of a bundle "
                          f"({', '.join(posixpath.basename(path) for path in foreign[:3])}); "
                          "choose an empty or new --output_dir")
    manifest = [path for path in existing if posixpath.basename(path) == MANIFEST_NAME]
    FileSystems.delete(manifest)  # first, so that no manifest ever points at half-written files
    FileSystems.delete([path for path in existing if path not in manifest])


def _publish(source: Path, output_dir: str, name: str) -> dict[str, Any]:
    """Copies one file into the bundle (any Beam file system) and describes what was written."""
    target = FileSystems.join(output_dir, name)
    with source.open("rb") as reader, FileSystems.create(target) as writer:
        while chunk := reader.read(1 << 20):
            writer.write(chunk)
    return file_entry(target)


def export_bundle(model_dir: str | Path, output_dir: str | Path,
                  precisions: Sequence[str] = ("fp32", "int8", "fp16"),
                  optimization_level: str = "O2", eval_dataset: str | None = None,
                  max_length: int = 128, allow_parity_failure: bool = False, *,
                  eval_text_column: str = "text", eval_label_column: str = "label",
                  quantification_dataset: str | None = None,
                  progress: Callable[[str], None] = _print_progress) -> dict[str, Any]:
    """Exports ``model_dir`` to a bundle in ``output_dir`` and returns the manifest (bundle.json).

    Raises `ExportError` with one clear sentence for a bad folder or option, or when a precision
    misses its parity bound (unless ``allow_parity_failure``, which keeps it with a warning).
    """
    started = time.perf_counter()
    model_dir, output_dir = Path(model_dir), str(output_dir).rstrip("/")
    precisions = list(dict.fromkeys(precisions))
    unknown = [precision for precision in precisions if precision not in PRECISIONS]
    if not precisions or unknown:
        raise ExportError(f"precisions {unknown} unknown; choose from {list(PRECISIONS)}" if unknown
                          else f"no precision given; choose from {list(PRECISIONS)}")
    if optimization_level not in OPTIMIZATION_LEVELS:
        raise ExportError(f"optimization level {optimization_level!r} unknown; choose from "
                          f"{list(OPTIMIZATION_LEVELS)} (fp16 is its own precision)")
    check_model_dir(model_dir)
    report = read_training_report(model_dir)
    temperature = calibration_temperature(report, model_dir)
    quantization = int8_config_name(cpu_flags()) if "int8" in precisions else None

    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as error:
        raise ExportError(f"{model_dir}: cannot load config/tokenizer: "
                          f"{first_line(error)}") from None
    labels = label_names(config)
    position_limit = getattr(config, "max_position_embeddings", max_length)
    if not 2 <= max_length <= position_limit:
        raise ExportError(f"max_length {max_length} must lie between 2 and the model's "
                          f"max_position_embeddings ({position_limit})")
    if not tokenizer.is_fast:
        raise ExportError(f"{model_dir}: no fast tokenizer (tokenizer.json) can be built; the "
                          "pipeline scores with the `tokenizers` library")
    normalization = list(getattr(config, "text_normalization", None) or [])
    languages = getattr(config, "languages", None)
    texts, eval_labels, rows_description = evaluation_rows(eval_dataset, labels, eval_text_column,
                                                           eval_label_column)
    texts = [normalize(text, normalization) for text in texts]  # as the scoring model reads them
    quantification = (quantification_rows(quantification_dataset, labels)
                      if quantification_dataset else None)
    progress(f"loading {model_dir} ({len(labels)} labels: {', '.join(labels)})")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir,
                                                                   use_safetensors=True).eval()
    except (OSError, ValueError, SafetensorError) as error:
        raise ExportError(f"{model_dir}: cannot load the model: {first_line(error)}") from None

    with tempfile.TemporaryDirectory(prefix="sentiment-export-") as work:
        work_dir = Path(work)
        files, float_nodes = _build_onnx_files(model, work_dir, precisions, optimization_level,
                                               quantization, progress)
        tokenizer_path = work_dir / TOKENIZER_NAME
        bundle_tokenizer(tokenizer, max_length).save(str(tokenizer_path))

        progress(f"checking parity with PyTorch on {rows_description}")
        checks, eval_metrics = _check_parity(model, files, tokenizer_path, texts, eval_labels,
                                             rows_description, progress)
        failures = [check["failure"] for check in checks.values() if not check["passed"]]
        if failures and not allow_parity_failure:
            raise ExportError("; ".join(failures) + " (nothing written; --allow_parity_failure "
                              "keeps such a precision with a warning)")
        for failure in failures:
            progress(f"WARNING: {failure}; kept because parity failures are allowed")

        progress(f"writing the bundle to {output_dir}")
        _prepare_output(output_dir)
        manifest = {
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "base_model": report.get("base_model") or config.name_or_path or str(model_dir),
            "labels": labels,
            "max_length": max_length,
            "input_names": list(next(iter(files.values()))[1]),
            "output_name": OUTPUT_NAME,
            "temperature": temperature,
            "text_normalization": normalization,
            **({"languages": list(languages)} if languages else {}),
            "tokenizer": _publish(tokenizer_path, output_dir, TOKENIZER_NAME),
            "precisions": {
                precision: {**_publish(path, output_dir, f"model_{precision}.onnx"),
                            "parity": {"data": rows_description, **checks[precision]}}
                for precision, (path, _) in files.items()},
            "metrics": {"training": report.get("final_metrics", {}), "eval": eval_metrics},
            "export": {"optimization_level": optimization_level,
                       "int8_quantization": (quantization
                                             and f"dynamic, {quantization}, per-channel"),
                       "int8_float_nodes": float_nodes,
                       "wall_time_s": round(time.perf_counter() - started, 2)},
            "versions": package_versions(),
        }
    _write_manifest(output_dir, manifest)
    if quantification_dataset:
        manifest["quantification"] = quantification_measurement(
            output_dir, labels, list(manifest["precisions"]), quantification,
            quantification_dataset, progress)
        _write_manifest(output_dir, manifest)
    progress(f"done in {time.perf_counter() - started:.1f} s: {output_dir}/{MANIFEST_NAME}")
    return manifest


def _write_manifest(output_dir: str, manifest: dict[str, Any]) -> None:
    with FileSystems.create(FileSystems.join(output_dir, MANIFEST_NAME)) as handle:
        handle.write(json.dumps(manifest, indent=2).encode("utf-8"))


def quantification_rows(source: str, labels: list[str]) -> tuple[list[str], list[int]]:
    """Texts and label ids of the labelled posts in ``source`` (read before anything is written,
    so that a bad file leaves no bundle behind)."""
    from training.data import DataError, load_labelled_set

    try:
        labelled = load_labelled_set(source, labels=labels).dataset
    except DataError as error:
        raise ExportError(f"--quantification_dataset {source}: {error}") from None
    return list(labelled["text"]), list(labelled["label"])


def quantification_measurement(bundle_root: str, labels: list[str], precisions: list[str],
                               rows: tuple[list[str], list[int]], source: str,
                               progress: Callable[[str], None]) -> dict[str, Any]:
    """The ``quantification`` entry of ``bundle.json``: the bundle just written (fp32 when it has
    it) scores the labelled posts exactly as the pipeline would (normalisation, language gate,
    long texts), and `quantification.quantification_entry` summarises them. Posts in a language
    the model does not read are left out, as the aggregates leave them out."""
    from beam_pipeline.model import load_scoring_model
    from beam_pipeline.quantification import quantification_entry
    from beam_pipeline.vocabulary import SCORED

    texts, true_labels = rows
    model = load_scoring_model(bundle_root, precision="fp32" if "fp32" in precisions else "auto")
    results = model.score_rows(texts)
    kept = [index for index, result in enumerate(results)
            if result.status == SCORED and result.failure is None]
    progress(f"measuring the share correction on {len(kept)} labelled posts of {source} "
             f"({len(results) - len(kept)} left out: not scored)")
    entry = quantification_entry(labels, [true_labels[index] for index in kept],
                                 np.stack([results[index].probabilities for index in kept]),
                                 f"{len(kept)} labelled posts of {source}")
    progress(f"share correction: {entry['status']}")
    return entry


def export_onnx(model: Any, output_dir: Path) -> Path:
    """Optimum's ONNX export (task text-classification, dynamic batch and sequence axes)."""
    from optimum.exporters.onnx import onnx_export_from_model

    onnx_export_from_model(model, output_dir, task="text-classification", do_validation=False)
    return output_dir / "model.onnx"


def optimize_onnx(exported: Path, output_dir: Path, optimization_level: str,
                  fp16: bool = False) -> Path:
    """Optimum's `ORTOptimizer` at ``optimization_level``; with ``fp16``, for CUDA in float16 with
    float32/int64 inputs and outputs kept (Optimum converts with ``keep_io_types``)."""
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    config = AutoOptimizationConfig.with_optimization_level(optimization_level, for_gpu=fp16,
                                                            fp16=fp16)
    with parity.quiet_onnxruntime():  # without CUDA, ORT logs an error and optimises on the CPU
        ORTOptimizer.from_pretrained(exported.parent, file_names=[exported.name]).optimize(
            config, output_dir)
    return output_dir / f"{exported.stem}_optimized.onnx"


def first_gelu_projection(exported: Path) -> list[str]:
    """Name of the MatMul fed by the first GELU (the first layer's feed-forward down-projection),
    or nothing when the graph has no erf-based GELU.

    Its input has outliers that per-tensor uint8 activations quantise badly: on the MiniLM
    fine-tuned on SST-2, keeping this one MatMul in float32 raised int8 label agreement with
    PyTorch from 98.85 % to 99.54 % for 1.8 MB more (benchmarks/results/export_benchmark.md).
    """
    import onnx

    graph = onnx.load(str(exported), load_external_data=False).graph
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    erf = next((node for node in graph.node if node.op_type == "Erf"), None)
    frontier = [erf] if erf else []
    for _ in range(4):  # GELU = x * 0.5 * (1 + erf(x / sqrt 2)): Erf -> Add -> Mul -> Mul -> MatMul
        frontier = [after for node in frontier for output in node.output
                    for after in consumers.get(output, [])]
        matmuls = [node.name for node in frontier if node.op_type == "MatMul"]
        if matmuls:
            return matmuls[:1]
    return []


def quantize_int8(exported: Path, output_dir: Path, config_name: str,
                  float_nodes: Sequence[str] = ()) -> Path:
    """Optimum's `ORTQuantizer`: dynamic int8 quantisation, per channel, for the named CPU config;
    ``float_nodes`` stay in float32."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    config = getattr(AutoQuantizationConfig, config_name)(is_static=False, per_channel=True,
                                                          nodes_to_exclude=list(float_nodes))
    ORTQuantizer.from_pretrained(exported.parent, file_name=exported.name).quantize(config,
                                                                                   output_dir)
    return output_dir / f"{exported.stem}_quantized.onnx"


def onnx_input_names(path: Path) -> list[str]:
    """Graph input names of an ONNX file."""
    import onnx

    return [node.name for node in onnx.load(str(path), load_external_data=False).graph.input]


def _build_onnx_files(model: Any, work_dir: Path, precisions: list[str], optimization_level: str,
                      quantization: str | None, progress: Callable[[str], None]
                      ) -> tuple[dict[str, tuple[Path, list[str]]], list[str]]:
    """Exports, optimises and quantises; returns precision -> (ONNX file, its input names), and
    the nodes int8 keeps in float32."""
    step = time.perf_counter()
    exported = export_onnx(model, work_dir / "exported")
    progress(f"exported to ONNX with Optimum in {time.perf_counter() - step:.1f} s")
    float_nodes = first_gelu_projection(exported) if "int8" in precisions else []
    files: dict[str, tuple[Path, list[str]]] = {}
    for precision in precisions:
        step = time.perf_counter()
        fp16 = precision == "fp16"
        try:
            if precision == "int8":
                path = quantize_int8(exported, work_dir / precision, quantization, float_nodes)
            else:
                path = optimize_onnx(exported, work_dir / precision, optimization_level, fp16=fp16)
        except (NotImplementedError, ValueError, RuntimeError) as error:
            raise ExportError(f"{precision}: ONNX Runtime/Optimum could not build it: "
                              f"{first_line(error)}") from None
        action = (f"quantised to int8 (dynamic, {quantization}; kept in float32: "
                  f"{', '.join(float_nodes) or 'nothing'})" if precision == "int8" else
                  f"optimised ({optimization_level}{', for CUDA, float16' if fp16 else ''})")
        files[precision] = (path, onnx_input_names(path))
        progress(f"{precision}: {action} in {time.perf_counter() - step:.1f} s")
    if len({tuple(names) for _, names in files.values()}) != 1:
        inputs = {precision: names for precision, (_, names) in files.items()}
        raise ExportError(f"the precisions' ONNX files take different inputs: {inputs}")
    return files, float_nodes


def _check_parity(model: Any, files: dict[str, tuple[Path, list[str]]], tokenizer_path: Path,
                  texts: list[str], labels: np.ndarray | None, rows_description: str,
                  progress: Callable[[str], None]) -> tuple[dict[str, dict], dict[str, Any]]:
    """Parity result per precision, and eval-set metrics (PyTorch and each precision) with
    labels."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    input_names = next(iter(files.values()))[1]
    feeds = parity.encode_batches(tokenizer, texts, input_names)
    reference = parity.torch_probabilities(model, feeds)
    eval_metrics: dict[str, Any] = {}
    if labels is not None:
        eval_metrics["rows"] = int(len(labels))
        eval_metrics["data"] = rows_description
        eval_metrics["pytorch"] = parity.label_metrics(reference.argmax(axis=1), labels)
    checks = {}
    for precision, (path, _) in files.items():
        session = parity.open_session(str(path), precision)
        probabilities = parity.onnx_probabilities(session, feeds)
        checks[precision] = {"provider": session.get_providers()[0],
                             **parity.compare(precision, reference, probabilities, labels)}
        if labels is not None:
            eval_metrics[precision] = parity.label_metrics(probabilities.argmax(axis=1), labels)
        outcome = "ok" if checks[precision]["passed"] else "FAILED"
        progress(f"{precision}: parity {outcome} (max |Δprob| "
                 f"{checks[precision]['max_abs_prob_diff']:.2e}, "
                 f"label agreement {checks[precision]['label_agreement']:.4f}) on "
                 f"{checks[precision]['provider']}")
    return checks, eval_metrics
