"""Export a Hugging Face sequence classifier to a model bundle (see `beam_pipeline.bundle`).

Steps, each reported through ``progress``:

1. check the model folder (safetensors only; pickled ``pytorch_model.bin`` is refused) and load it;
2. export to ONNX with Optimum (task text-classification, dynamic batch and sequence axes);
3. ``fp32``: Optimum's `ORTOptimizer` at ``optimization_level`` (BERT attention, LayerNorm and
   GELU fusions);
4. ``int8``: `export.int8.build_int8`, dynamic quantization of the plain exported graph's
   weight MatMuls for this CPU's int8 kernel family; as many MatMuls as the parity rows need kept
   in float32, most sensitive first as measured on ranking texts (training rows of
   ``eval_dataset``, else the built-in probes);
5. ``fp16``: the same optimisation for CUDA plus float16 conversion, inputs/outputs kept
   int64/float32;
6. parity of every precision against PyTorch (`export.parity`), on the validation rows of
   ``eval_dataset`` or on the built-in probe sentences;
7. the bundle: ``model_<precision>.onnx``, ``tokenizer.json``, and ``bundle.json`` written last,
   each precision's parity recorded with the CPU it was checked on; with fp32 and int8, the fp32
   probabilities of the built-in probes too (``int8_probe``: scoring on a CPU of another int8
   family checks int8 against them at start-up, see `beam_pipeline.model`);
8. with ``quantification_dataset`` (labelled posts of the stream, not used for training): the
   bundle scores them as the pipeline would and ``bundle.json`` gains ``quantification``, their
   confusion matrix and per-class probability means (`beam_pipeline.quantification`).
"""
from __future__ import annotations

import json
import math
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
from beam_pipeline.cpu import cpu_description, int8_family
from beam_pipeline.errors import first_line
from beam_pipeline.social_text import normalize
from export import int8, parity
from export.probes import probe_sentences
from training.trainer import pickled_weights_problem

OPTIMIZATION_LEVELS = ("O1", "O2", "O3")
REPORT_NAME = "training_report.json"
RANKING_ROWS = 256
OUTPUT_NAME = "logits"
VERSIONED_PACKAGES = ("optimum", "optimum-onnx", "onnx", "transformers", "torch", "tokenizers")


class ExportError(ValueError):
    """The model folder, the options or the parity check do not allow a bundle to be written."""


def _print_progress(message: str) -> None:
    print(f"[sentiment-export] {message}", file=sys.stderr, flush=True)


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
                    label_column: str) -> tuple[list[str], np.ndarray | None, str, str | None]:
    """Texts, labels (or None), a description of the rows the parity check runs on, and the
    split they are (None for the built-in probes)."""
    if eval_dataset is None:
        texts = probe_sentences()
        return texts, None, f"{len(texts)} built-in probe sentences", None
    from training.data import DataError, load_labelled_set

    try:
        labelled = load_labelled_set(eval_dataset, text_column=text_column,
                                     label_column=label_column, labels=labels)
    except DataError as error:
        raise ExportError(f"--eval_dataset {eval_dataset}: {error}") from None
    rows = labelled.dataset
    return (list(rows["text"]), np.asarray(rows["label"]),
            f"{len(rows)} {labelled.split} rows of {eval_dataset}", labelled.split)


def ranking_texts(eval_dataset: str | None, parity_split: str | None, labels: list[str],
                  text_column: str, label_column: str) -> tuple[list[str], str]:
    """Texts int8's MatMuls are ranked on, and their description: `RANKING_ROWS` training rows of
    ``eval_dataset`` (a random sample, seed 0) when the parity rows are its validation split;
    else the built-in probe sentences."""
    if parity_split != "validation":
        texts = probe_sentences()
        return texts, f"{len(texts)} built-in probe sentences"
    from training.data import DataError, load_labelled_set

    try:
        train = load_labelled_set(eval_dataset, text_column=text_column,
                                  label_column=label_column, labels=labels,
                                  split="train").dataset
    except DataError as error:
        raise ExportError(f"--eval_dataset {eval_dataset}: {error}") from None
    rows = train.shuffle(seed=0).select(range(min(RANKING_ROWS, len(train))))
    return list(rows["text"]), f"{len(rows)} train rows of {eval_dataset}"


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
    family = int8_family() if "int8" in precisions else None
    if family is not None and family not in int8.FAMILY_CONFIGS:
        raise ExportError(f"int8: this CPU (int8 family {family!r}) has neither AVX2, AVX-512 "
                          "nor ARM NEON, for which ONNX Runtime's int8 kernels are made; leave "
                          "int8 out of --precisions")

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
    texts, eval_labels, rows_description, parity_split = evaluation_rows(
        eval_dataset, labels, eval_text_column, eval_label_column)
    texts = [normalize(text, normalization) for text in texts]  # as the scoring model reads them
    ranking, ranking_description = (
        ranking_texts(eval_dataset, parity_split, labels, eval_text_column, eval_label_column)
        if family else ([], None))
    ranking = [normalize(text, normalization) for text in ranking]
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
        tokenizer_path = work_dir / TOKENIZER_NAME
        bundle_tokenizer(tokenizer, max_length).save(str(tokenizer_path))
        if family:
            progress(f"int8: MatMuls ranked on {ranking_description}, checked on "
                     f"{rows_description}")
        files, int8_result = _build_onnx_files(
            model, work_dir, precisions, optimization_level, family, tokenizer_path,
            (ranking, texts, eval_labels), progress)

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
        checked_on = {**cpu_description(), "int8_family": int8_family()}
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
                            "parity": {"data": rows_description, **checks[precision],
                                       "checked_on": checked_on}}
                for precision, (path, _) in files.items()},
            "metrics": {"training": report.get("final_metrics", {}), "eval": eval_metrics},
            "export": {"optimization_level": optimization_level,
                       **({"int8_quantization": int8.describe_config(family),
                           "int8_float_nodes": int8_result.float_nodes,
                           "int8_search": {"ranking_data": ranking_description,
                                           "check_data": rows_description,
                                           **int8_result.search}} if int8_result else {}),
                       "wall_time_s": round(time.perf_counter() - started, 2)},
            "versions": package_versions(),
        }
    _write_manifest(output_dir, manifest)
    if {"fp32", "int8"} <= set(manifest["precisions"]):
        manifest["int8_probe"] = int8_probe(output_dir)
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


def int8_probe(bundle_root: str) -> dict[str, Any]:
    """The ``int8_probe`` entry of ``bundle.json``: the built-in probe sentences and the fp32
    probabilities the bundle just written gives them, as the scoring model computes them."""
    from beam_pipeline.model import load_scoring_model

    texts = probe_sentences()
    probabilities = load_scoring_model(bundle_root, precision="fp32", device="cpu").predict(texts)
    return {"texts": texts, "fp32_probabilities": np.round(probabilities, 6).tolist()}


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


def onnx_input_names(path: Path) -> list[str]:
    """Graph input names of an ONNX file."""
    import onnx

    return [node.name for node in onnx.load(str(path), load_external_data=False).graph.input]


def _build_onnx_files(model: Any, work_dir: Path, precisions: list[str], optimization_level: str,
                      family: str | None, tokenizer_path: Path,
                      int8_rows: tuple[list[str], list[str], np.ndarray | None],
                      progress: Callable[[str], None]
                      ) -> tuple[dict[str, tuple[Path, list[str]]], int8.Int8Result | None]:
    """Exports, optimises and quantises; returns precision -> (ONNX file, its input names), and
    the int8 result (its float32 nodes, its search) when int8 was built. ``int8_rows``: the
    ranking texts, the check texts and their labels (or None)."""
    from tokenizers import Tokenizer

    step = time.perf_counter()
    exported = export_onnx(model, work_dir / "exported")
    progress(f"exported to ONNX with Optimum in {time.perf_counter() - step:.1f} s")
    files: dict[str, tuple[Path, list[str]]] = {}
    int8_result = None
    for precision in precisions:
        step = time.perf_counter()
        fp16 = precision == "fp16"
        try:
            if precision == "int8":
                tokenizer = Tokenizer.from_file(str(tokenizer_path))
                ranking_rows, check_rows, check_labels = int8_rows
                names = onnx_input_names(exported)
                int8_result = int8.build_int8(
                    exported, work_dir / precision, family,
                    parity.encode_batches(tokenizer, ranking_rows, names),
                    parity.encode_batches(tokenizer, check_rows, names), check_labels, progress)
                path = int8_result.path
            else:
                path = optimize_onnx(exported, work_dir / precision, optimization_level, fp16=fp16)
        except (NotImplementedError, ValueError, RuntimeError) as error:
            raise ExportError(f"{precision}: ONNX Runtime/Optimum could not build it: "
                              f"{first_line(error)}") from None
        action = (f"quantised to int8 ({int8.describe_config(family)}; kept in float32: "
                  f"{', '.join(int8_result.float_nodes) or 'nothing'})" if precision == "int8"
                  else f"optimised ({optimization_level}{', for CUDA, float16' if fp16 else ''})")
        files[precision] = (path, onnx_input_names(path))
        progress(f"{precision}: {action} in {time.perf_counter() - step:.1f} s")
    if len({tuple(names) for _, names in files.values()}) != 1:
        inputs = {precision: names for precision, (_, names) in files.items()}
        raise ExportError(f"the precisions' ONNX files take different inputs: {inputs}")
    return files, int8_result


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
