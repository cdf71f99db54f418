"""int8 for the CPU: ONNX Runtime quantisation through Optimum, with the sensitive MatMuls found by
measurement and kept in float32.

`build_int8` quantises the encoder's MatMuls dynamically (per-channel weights, activations
quantised per batch; embeddings, LayerNorm, softmax and the attention's activation products stay
float32), configured for this CPU's int8 kernel family (`beam_pipeline.cpu.int8_family`;
``reduce_range`` where the CPU lacks VNNI, whose u8s8 products can saturate). While label
agreement with float32 on the check rows (the parity gate's rows) misses `TUNING_AGREEMENT`, or
accuracy drops more than the gate allows, it keeps MatMuls in float32, most sensitive first, one
more at a time up to `MAX_FLOAT_NODES`: the ranking is measured on other texts (training rows),
each MatMul quantised alone, by the mean |Δprobability| it causes. So which nodes is measured on
training rows, and how many is tuned on the check rows (as accuracy-aware tuning does, e.g.
Intel Neural Compressor). `quantize_static_int8` (QDQ, calibrated activation ranges) is a variant
the export benchmark compares it with. Measurements: benchmarks/results/export_benchmark.md.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from export import parity

#: label agreement with float32 the search stops at (above the parity gate's 0.99: a margin for
#: rows the count was not tuned on, and for other CPUs of the same family)
TUNING_AGREEMENT = 0.993
#: at most this many MatMuls stay in float32 (each costs speed: MiniLM has 36 weight MatMuls)
MAX_FLOAT_NODES = 8
#: ranking texts each MatMul's effect is measured on
SENSITIVITY_TEXTS = 256
#: CPU family -> (Optimum `AutoQuantizationConfig` constructor, reduce_range)
FAMILY_CONFIGS = {"amx": ("avx512_vnni", False), "avx512_vnni": ("avx512_vnni", False),
                  "avx_vnni": ("avx512_vnni", False), "avx512": ("avx512", True),
                  "avx2": ("avx2", True), "arm64_dotprod": ("arm64", False),
                  "arm64": ("arm64", False)}
OPERATORS = ["MatMul"]


@dataclasses.dataclass
class Int8Result:
    """The int8 file, the MatMuls it keeps in float32, and what the search measured."""

    path: Path
    float_nodes: list[str]
    search: dict[str, Any]


def quantization_config(family: str, nodes: Sequence[str], is_static: bool = False):
    """Optimum's quantisation config for a CPU family: per-channel weights, only the MatMuls
    named in ``nodes`` quantised."""
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    name, reduce_range = FAMILY_CONFIGS[family]
    config = getattr(AutoQuantizationConfig, name)(
        is_static=is_static, per_channel=True, nodes_to_quantize=list(nodes),
        operators_to_quantize=OPERATORS)
    config.reduce_range = reduce_range
    return config


def describe_config(family: str) -> str:
    """One line for bundle.json and the logs, e.g. ``dynamic, avx512_vnni, per-channel, MatMul
    only``."""
    name, reduce_range = FAMILY_CONFIGS[family]
    return (f"dynamic, {name}, per-channel"
            + (", reduce_range" if reduce_range else "") + ", MatMul only")


def quantize_dynamic_int8(exported: Path, output_dir: Path, family: str,
                          nodes: Sequence[str]) -> Path:
    """Optimum's `ORTQuantizer`, dynamic int8 of the MatMuls named in ``nodes`` (the others, the
    attention's activation-by-activation MatMuls included, stay in float32)."""
    from optimum.onnxruntime import ORTQuantizer

    with parity.quiet_onnxruntime():
        ORTQuantizer.from_pretrained(exported.parent, file_name=exported.name).quantize(
            quantization_config(family, nodes), output_dir)
    return output_dir / f"{exported.stem}_quantized.onnx"


def quantize_static_int8(exported: Path, output_dir: Path, family: str,
                         calibration: list[dict[str, np.ndarray]], method: str = "percentiles"
                         ) -> Path:
    """Optimum's static QDQ int8: activation ranges calibrated on ``calibration`` feeds with
    `AutoCalibrationConfig` (``minmax``, ``percentiles`` or ``entropy``)."""
    from datasets import Dataset
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    rows = [{name: array[row] for name, array in feed.items()}
            for feed in calibration for row in range(len(next(iter(feed.values()))))]
    width = max(len(row["input_ids"]) for row in rows)  # the calibrator runs one row at a time
    dataset = Dataset.from_list([{name: np.pad(values, (0, width - len(values))).tolist()
                                  for name, values in row.items()} for row in rows])
    output_dir.mkdir(parents=True, exist_ok=True)
    quantizer = ORTQuantizer.from_pretrained(exported.parent, file_name=exported.name)
    config = quantization_config(family, weight_matmuls(exported), is_static=True)
    with parity.quiet_onnxruntime():
        ranges = quantizer.fit(dataset, getattr(AutoCalibrationConfig, method)(dataset),
                               onnx_augmented_model_name=output_dir / "augmented.onnx",
                               operators_to_quantize=OPERATORS)
        quantizer.quantize(config, output_dir, calibration_tensors_range=ranges)
    return output_dir / f"{exported.stem}_quantized.onnx"


def weight_matmuls(exported: Path) -> list[str]:
    """The MatMuls of the graph that multiply by a weight (an initializer), in graph order."""
    import onnx

    graph = onnx.load(str(exported), load_external_data=False).graph
    weights = {initializer.name for initializer in graph.initializer}
    return [node.name for node in graph.node
            if node.op_type == "MatMul" and any(name in weights for name in node.input)]


def _probabilities(path: Path, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    return parity.onnx_probabilities(parity.open_session(str(path), "int8"), feeds)


def build_int8(exported: Path, work_dir: Path, family: str,
               ranking: list[dict[str, np.ndarray]], check: list[dict[str, np.ndarray]],
               check_labels: np.ndarray | None, progress: Callable[[str], None]) -> Int8Result:
    """Dynamic int8 of ``exported`` within `TUNING_AGREEMENT` (and the accuracy bound, with
    ``check_labels``) of the float32 graph on the ``check`` feeds, with as few float32 MatMuls as
    the sensitivities measured on the ``ranking`` feeds allow (see the module docstring). When
    even `MAX_FLOAT_NODES` do not reach it, the attempt with the best agreement is returned; the
    parity gate then decides."""
    started = time.perf_counter()
    reference = _probabilities(exported, check)
    matmuls = weight_matmuls(exported)
    sample = _first_rows(ranking, SENSITIVITY_TEXTS)
    tried: list[dict[str, Any]] = []

    def attempt(float_nodes: list[str], tag: str) -> tuple[Path, dict[str, Any]]:
        path = quantize_dynamic_int8(exported, work_dir / tag, family,
                                     [node for node in matmuls if node not in float_nodes])
        figures = parity.compare("int8", reference, _probabilities(path, check), check_labels)
        outcome = {"float_nodes": len(float_nodes),
                   "label_agreement": round(figures["label_agreement"], 4),
                   **({"accuracy_drop": round(figures["pytorch_accuracy"]
                                              - figures["accuracy"], 4)}
                      if check_labels is not None else {})}
        outcome["met"] = (outcome["label_agreement"] >= TUNING_AGREEMENT
                          and outcome.get("accuracy_drop", 0.0) <= parity.MAX_INT8_ACCURACY_DROP)
        tried.append(outcome)
        return path, outcome

    path, outcome = attempt([], "all")
    float_nodes: list[str] = []
    ranked: list[dict[str, Any]] = []
    if not outcome["met"]:
        progress(f"int8: label agreement {outcome['label_agreement']:.4f} with every weight "
                 "MatMul quantised; measuring each MatMul's effect")
        sample_reference = _probabilities(exported, sample)
        effects = {}
        for index, node in enumerate(matmuls):
            alone = quantize_dynamic_int8(exported, work_dir / f"node{index}", family, [node])
            effects[node] = float(np.abs(_probabilities(alone, sample)
                                         - sample_reference).mean())
        ordered = sorted(effects, key=effects.get, reverse=True)
        ranked = [{"node": node, "mean_abs_prob_diff": float(f"{effects[node]:.4g}")}
                  for node in ordered[:MAX_FLOAT_NODES]]
        best = (path, outcome, [])
        for count in range(1, MAX_FLOAT_NODES + 1):
            candidate, outcome = attempt(ordered[:count], f"float{count}")
            if (outcome["met"], outcome["label_agreement"]) > (best[1]["met"],
                                                               best[1]["label_agreement"]):
                best = (candidate, outcome, ordered[:count])
            if outcome["met"]:
                break
        path, outcome, float_nodes = best
    progress(f"int8: {len(float_nodes)} MatMul(s) kept in float32, label agreement "
             f"{outcome['label_agreement']:.4f} ({time.perf_counter() - started:.1f} s)")
    return Int8Result(path, float_nodes, {
        "ranking_rows": sum(len(feed["input_ids"]) for feed in sample),
        "check_rows": len(reference), "target_agreement": TUNING_AGREEMENT,
        "label_agreement": outcome["label_agreement"], "tried": tried, "most_sensitive": ranked,
        "time_s": round(time.perf_counter() - started, 1)})


def _first_rows(feeds: list[dict[str, np.ndarray]], count: int) -> list[dict[str, np.ndarray]]:
    taken, total = [], 0
    for feed in feeds:
        if total >= count:
            break
        taken.append(feed)
        total += len(feed["input_ids"])
    return taken
