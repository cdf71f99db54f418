"""int8 on the CPU: the kernel family, the calibrated search for float32 MatMuls, what the bundle
records about where int8 was checked, and the start-up probe with its fp32 fallback."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from beam_pipeline import cpu
from beam_pipeline.model import choose_precision, load_scoring_model
from export import int8, parity
from export.exporter import export_onnx
from export.probes import probe_sentences


def _manifest(bundle_dir: Path) -> dict:
    return json.loads((bundle_dir / "bundle.json").read_text())


def test_int8_family_follows_the_cpu_flags_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv(cpu.FAMILY_OVERRIDE, raising=False)
    assert cpu.int8_family({"avx2", "avx512bw", "avx512_vnni", "amx_int8"}) == "amx"
    assert cpu.int8_family({"avx2", "avx512f", "avx512bw", "avx512_vnni"}) == "avx512_vnni"
    assert cpu.int8_family({"avx2", "avx512f", "avx512bw"}) == "avx512"
    assert cpu.int8_family({"avx2", "fma"}) == "avx2"
    assert cpu.int8_family({"asimd", "asimddp"}) == "arm64_dotprod"
    assert cpu.int8_family({"sse4_2"}) == "none"
    monkeypatch.setenv(cpu.FAMILY_OVERRIDE, "avx2")
    assert cpu.int8_family({"avx512_vnni"}) == "avx2"


def test_reduce_range_only_where_the_cpu_lacks_vnni():
    nodes = ["/some/MatMul"]
    for family, reduce_range in (("avx512_vnni", False), ("amx", False), ("avx512", True),
                                 ("avx2", True)):
        config = int8.quantization_config(family, nodes)
        assert config.reduce_range is reduce_range, family
        assert config.per_channel and not config.is_static
        assert config.nodes_to_quantize == nodes and config.operators_to_quantize == ["MatMul"]
    assert "reduce_range" in int8.describe_config("avx2")
    assert "reduce_range" not in int8.describe_config("avx512_vnni")


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model_dir, tmp_path_factory) -> tuple[Path, list[dict[str, np.ndarray]]]:
    """The tiny model's plain ONNX export and the probe sentences as calibration feeds."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from export.exporter import bundle_tokenizer, onnx_input_names

    work = tmp_path_factory.mktemp("tiny_onnx")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    exported = export_onnx(model, work / "exported")
    bundle_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir), 64).save(str(work / "t.json"))
    feeds = parity.encode_batches(Tokenizer.from_file(str(work / "t.json")), probe_sentences(),
                                  onnx_input_names(exported))
    return exported, feeds


def test_search_ranks_matmuls_by_measured_effect_and_keeps_the_worst_in_float(
        tiny_onnx, tmp_path, monkeypatch):
    exported, feeds = tiny_onnx
    monkeypatch.setattr(int8, "TUNING_AGREEMENT", 1.01)  # unreachable: the whole search runs
    monkeypatch.setattr(int8, "MAX_FLOAT_NODES", 2)
    labels = np.arange(256) % 2
    result = int8.build_int8(exported, tmp_path, "avx512_vnni", feeds[:4], feeds, labels,
                             progress=lambda _: None)
    search = result.search
    assert search["ranking_rows"] == 128 and search["check_rows"] == 256
    assert [attempt["float_nodes"] for attempt in search["tried"]] == [0, 1, 2]
    assert all(not attempt["met"] and "accuracy_drop" in attempt for attempt in search["tried"])
    ranking = search["most_sensitive"]
    effects = [entry["mean_abs_prob_diff"] for entry in ranking]
    assert len(ranking) == 2 and effects == sorted(effects, reverse=True) and effects[0] > 0
    weight_matmuls = int8.weight_matmuls(exported)
    assert len(weight_matmuls) == 12  # 2 layers x (query, key, value, output, FFN in, FFN out)
    # the best attempt is returned, and its float32 nodes are the top of the ranking
    best = max(search["tried"], key=lambda attempt: attempt["label_agreement"])
    assert search["label_agreement"] == best["label_agreement"]
    assert result.float_nodes == [entry["node"] for entry in ranking][:len(result.float_nodes)]
    ops = {node.name: node.op_type for node in onnx.load(str(result.path)).graph.node}
    quantized = [name for name in weight_matmuls if name not in result.float_nodes]
    assert all(name not in ops or ops[name] != "MatMul" for name in quantized)
    assert all(ops[name] == "MatMul" for name in result.float_nodes)


def test_search_stops_at_once_when_everything_quantised_already_agrees(tiny_onnx, tmp_path,
                                                                       monkeypatch):
    exported, feeds = tiny_onnx
    monkeypatch.setattr(int8, "TUNING_AGREEMENT", 0.0)
    result = int8.build_int8(exported, tmp_path, "avx2", feeds, feeds, None,
                             progress=lambda _: None)
    assert result.float_nodes == [] and result.search["most_sensitive"] == []
    assert result.search["tried"] == [{"float_nodes": 0, "met": True,
                                       "label_agreement": result.search["label_agreement"]}]


def test_bundle_records_where_each_precision_was_checked_and_the_probe(tiny_bundle_dir):
    manifest = _manifest(tiny_bundle_dir)
    for entry in manifest["precisions"].values():
        checked = entry["parity"]["checked_on"]
        assert checked["int8_family"] == cpu.int8_family()
        assert checked["flags"] == cpu.cpu_description()["flags"]
        assert entry["parity"]["passed"] is True
    probe = manifest["int8_probe"]
    assert probe["texts"] == probe_sentences()
    fp32 = load_scoring_model(str(tiny_bundle_dir), precision="fp32", device="cpu")
    np.testing.assert_allclose(probe["fp32_probabilities"], fp32.predict(probe["texts"]),
                               atol=1e-5)


def test_auto_passes_over_an_int8_that_failed_its_check():
    failed = {"fp32": {"parity": {"passed": True}}, "int8": {"parity": {"passed": False}}}
    assert choose_precision("auto", "cpu", failed) == "fp32"
    assert choose_precision("int8", "cpu", failed) == "int8"  # asked for by name
    passed = {"fp32": {"parity": {"passed": True}}, "int8": {"parity": {"passed": True}}}
    assert choose_precision("auto", "cpu", passed) == "int8"
    assert choose_precision("auto", "cpu", {"int8": {"parity": {"passed": False}}}) == "int8"


def _bundle_with_probe(source: Path, target: Path, expected: np.ndarray) -> Path:
    shutil.copytree(source, target)
    manifest = _manifest(target)
    manifest["int8_probe"]["fp32_probabilities"] = expected.tolist()
    (target / "bundle.json").write_text(json.dumps(manifest))
    return target


def _int8_probabilities(bundle_dir: Path) -> np.ndarray:
    from beam_pipeline.bundle import load_bundle
    from beam_pipeline.model import ScoringModel, _session

    bundle = load_bundle(str(bundle_dir), "int8")
    model = ScoringModel(bundle, _session(bundle, ["CPUExecutionProvider"], 0, True), "cpu", 64,
                         bundle.max_length, "head_tail")
    return model.predict(_manifest(bundle_dir)["int8_probe"]["texts"])


def _load(bundle_dir: Path, caplog, precision: str = "auto") -> tuple[str, list[str], list[str]]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="beam_pipeline.model"):
        model = load_scoring_model(str(bundle_dir), precision=precision, device="cpu")
    messages = [record.getMessage() for record in caplog.records]
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING]
    return model.describe()["precision"], [m for m in messages if "probe" in m], warnings


def test_start_up_probe_runs_only_on_another_cpu_family_and_falls_back_to_fp32(
        tiny_bundle_dir, tmp_path, monkeypatch, caplog):
    own = _int8_probabilities(tiny_bundle_dir)
    agreeing = _bundle_with_probe(tiny_bundle_dir, tmp_path / "agreeing", own)
    # the int8 labels swapped: int8 now disagrees with the recorded fp32 on every probe text
    disagreeing = _bundle_with_probe(tiny_bundle_dir, tmp_path / "disagreeing", own[:, ::-1])

    monkeypatch.delenv(cpu.FAMILY_OVERRIDE, raising=False)  # the exporting CPU: no probe
    assert _load(disagreeing, caplog) == ("int8", [], [])

    other = "avx2" if cpu.int8_family() != "avx2" else "avx512_vnni"
    monkeypatch.setenv(cpu.FAMILY_OVERRIDE, other)
    precision, probes, warnings = _load(agreeing, caplog)
    assert precision == "int8" and warnings == []
    assert len(probes) == 1 and "label agreement 1.0000" in probes[0] and other in probes[0]

    precision, _, warnings = _load(disagreeing, caplog)
    assert precision == "fp32" and len(warnings) == 1
    assert f"on this {other} CPU" in warnings[0] and "scoring with fp32 instead" in warnings[0]

    precision, _, warnings = _load(disagreeing, caplog, precision="int8")  # asked for by name
    assert precision == "int8" and len(warnings) == 1 and "all the same" in warnings[0]
