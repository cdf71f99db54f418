"""sentiment-export: a tiny random BERT exported in every precision, parity, manifest, bad input."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from beam_pipeline.bundle import PRECISIONS, load_bundle
from export import parity
from export.cli import main
from export.exporter import ExportError, export_bundle
from export.probes import probe_sentences

REPO = Path(__file__).resolve().parents[1]


def _manifest(bundle_dir: Path) -> dict:
    return json.loads((bundle_dir / "bundle.json").read_text())


def test_manifest_is_complete(tiny_bundle_dir, tiny_model_dir):
    manifest = _manifest(tiny_bundle_dir)
    assert manifest["format_version"] == 1
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["max_length"] == 128
    assert manifest["input_names"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest["output_name"] == "logits"
    assert manifest["temperature"] == 1.0
    assert manifest["base_model"] == str(tiny_model_dir)
    assert manifest["metrics"] == {"training": {}, "eval": {}}
    assert manifest["export"]["optimization_level"] == "O2"
    assert manifest["export"]["int8_quantization"].startswith("dynamic, ")
    search = manifest["export"]["int8_search"]
    assert search["ranking_data"] == search["check_data"] == "256 built-in probe sentences"
    assert {"onnxruntime", "optimum", "transformers", "torch"} <= set(manifest["versions"])
    assert set(manifest["precisions"]) == set(PRECISIONS)
    for precision, entry in manifest["precisions"].items():
        assert entry["file"] == f"model_{precision}.onnx"
        assert entry["size_bytes"] == (tiny_bundle_dir / entry["file"]).stat().st_size
        check = entry["parity"]
        assert check["data"] == "256 built-in probe sentences" and check["rows"] == 256
        assert check["provider"] == "CPUExecutionProvider"
        assert 0.0 <= check["label_agreement"] <= 1.0 and check["max_abs_prob_diff"] >= 0.0
        assert "accuracy" not in check
    tokenizer_size = (tiny_bundle_dir / "tokenizer.json").stat().st_size
    assert tokenizer_size == manifest["tokenizer"]["size_bytes"]


def test_every_precision_matches_pytorch_within_its_bound(tiny_bundle_dir, tiny_model_dir):
    """Recomputed here, independently of the exporter: transformers' own tokenizer and model."""
    texts = probe_sentences()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir,
                                                               use_safetensors=True).eval()
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
    with torch.inference_mode():
        reference = torch.softmax(model(**{k: torch.from_numpy(v) for k, v in encoded.items()})
                                  .logits, dim=-1).numpy()
    recorded = _manifest(tiny_bundle_dir)["precisions"]
    for precision in PRECISIONS:
        bundle = load_bundle(str(tiny_bundle_dir), precision)
        session = onnxruntime.InferenceSession(bundle.read_model_bytes(),
                                               providers=["CPUExecutionProvider"])
        logits = session.run([bundle.output_name], {name: encoded[name].astype(np.int64)
                                                    for name in bundle.input_names})[0]
        probabilities = parity.softmax(logits)
        difference = np.abs(probabilities - reference).max()
        agreement = (probabilities.argmax(1) == reference.argmax(1)).mean()
        if precision == "int8":
            # a random tiny model has near-uniform probabilities: the agreement is what it is,
            # but the recorded verdict must follow the bound
            assert recorded["int8"]["parity"]["passed"] == (
                recorded["int8"]["parity"]["label_agreement"] >= 0.99)
            assert difference < 0.05
        else:
            assert difference <= parity.MAX_PROB_DIFF[precision]
            assert recorded[precision]["parity"]["passed"]
        # the exporter batches and pads the probes its own way; a random tiny model's
        # near-uniform probabilities can flip a near-tie between paddings (int8's scales even
        # depend on the batch), so the two agreements may differ by a row or two of 256
        assert recorded[precision]["parity"]["label_agreement"] == pytest.approx(agreement,
                                                                                 abs=0.01)


def test_onnx_files_have_dynamic_axes_fusions_and_the_promised_types(tiny_bundle_dir):
    models = {p: onnx.load(str(tiny_bundle_dir / f"model_{p}.onnx")) for p in PRECISIONS}
    for precision, model in models.items():
        for graph_input in model.graph.input:
            assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.INT64
            dims = graph_input.type.tensor_type.shape.dim
            assert [d.dim_param != "" for d in dims] == [True, True], precision
        assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert "Attention" in {node.op_type for node in models["fp32"].graph.node}
    int8_ops = {node.name: node.op_type for node in models["int8"].graph.node}
    assert "MatMulInteger" in int8_ops.values()
    for kept in _manifest(tiny_bundle_dir)["export"]["int8_float_nodes"]:
        assert int8_ops[kept] == "MatMul"
    attention_products = [name for name, op in int8_ops.items()
                          if op == "MatMul" and "/attention/self/MatMul" in name]
    assert attention_products  # activation-by-activation products stay float32
    fp16_types = {init.data_type for init in models["fp16"].graph.initializer}
    assert onnx.TensorProto.FLOAT16 in fp16_types
    session = onnxruntime.InferenceSession(str(tiny_bundle_dir / "model_fp32.onnx"),
                                           providers=["CPUExecutionProvider"])
    for batch, length in ((1, 3), (5, 40)):
        feed = {name: np.ones((batch, length), dtype=np.int64) for name in
                ("input_ids", "attention_mask", "token_type_ids")}
        assert session.run(None, feed)[0].shape == (batch, 2)


def test_bundle_tokenizer_truncates_and_pads_to_the_longest_row(tiny_bundle_dir):
    tokenizer = Tokenizer.from_file(str(tiny_bundle_dir / "tokenizer.json"))
    short, long = tokenizer.encode_batch(["good", "word " * 500])
    assert len(short.ids) == len(long.ids) == 128
    assert sum(short.attention_mask) == 3
    assert len(tokenizer.encode_batch(["good", "very good"])[0].ids) == 4


def test_eval_dataset_records_accuracy_and_training_report(tiny_model_dir, tmp_path, shared_data):
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    final_metrics = {"accuracy": 0.5, "macro_f1": 0.4}
    (model_dir / "training_report.json").write_text(json.dumps({
        "base_model": "tiny-base", "calibration": {"temperature": 1.7},
        "final_metrics": final_metrics}))
    manifest = export_bundle(model_dir, tmp_path / "bundle", precisions=("int8",),
                             eval_dataset=str(shared_data / "sst2"), allow_parity_failure=True,
                             progress=lambda message: None)
    assert manifest["temperature"] == 1.7
    assert manifest["base_model"] == "tiny-base"
    assert manifest["metrics"]["training"] == final_metrics
    evaluation = manifest["metrics"]["eval"]
    assert evaluation["rows"] == 872 and set(evaluation) == {"rows", "data", "pytorch", "int8"}
    check = manifest["precisions"]["int8"]["parity"]
    assert check["rows"] == 872 and "sst2" in check["data"]
    # int8's MatMuls are ranked on training rows, the count is tuned on the gate's rows
    search = manifest["export"]["int8_search"]
    assert search["ranking_data"] == f"256 train rows of {shared_data / 'sst2'}"
    assert search["check_data"] == check["data"] and search["check_rows"] == 872
    assert check["accuracy"] == evaluation["int8"]["accuracy"]
    assert check["pytorch_accuracy"] == evaluation["pytorch"]["accuracy"]
    assert load_bundle(str(tmp_path / "bundle"), "int8").temperature == 1.7


def test_parity_failure_stops_the_export_unless_allowed(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(parity.MAX_PROB_DIFF, "fp32", 0.0)  # no real export reaches exactly 0
    messages = []
    with pytest.raises(ExportError, match=r"fp32 misses its parity bound: max \|Δprob\|"):
        export_bundle(tiny_model_dir, tmp_path / "refused", precisions=("fp32",),
                      progress=messages.append)
    assert not (tmp_path / "refused").exists()
    manifest = export_bundle(tiny_model_dir, tmp_path / "kept", precisions=("fp32",),
                             allow_parity_failure=True, progress=messages.append)
    assert manifest["precisions"]["fp32"]["parity"]["passed"] is False
    assert any(message.startswith("WARNING: fp32 misses") for message in messages)
    load_bundle(str(tmp_path / "kept"), "fp32")


def test_parity_bounds():
    reference = np.array([[0.9, 0.1]] * 100)
    flipped = reference.copy()
    flipped[:2] = [0.1, 0.9]
    labels = np.zeros(100, dtype=int)
    assert parity.compare("fp32", reference, reference + 5e-5, None)["passed"]
    assert not parity.compare("fp32", reference, reference + 2e-4, None)["passed"]
    assert parity.compare("fp16", reference, reference + 5e-3, None)["passed"]
    failed = parity.compare("int8", reference, flipped, labels)
    assert failed["label_agreement"] == 0.98 and not failed["passed"]
    assert "label agreement 0.9800 < 0.99" in failed["failure"]
    assert "accuracy drop 0.0200 > 0.005" in failed["failure"]
    better = parity.compare("int8", flipped, reference, labels)  # int8 more accurate than PyTorch
    assert better["label_agreement"] == 0.98 and not better["passed"]
    assert "accuracy drop" not in better["failure"]


def _run_cli(capsys, *args: str) -> tuple[int, str]:
    status = main(list(args))
    return status, capsys.readouterr().err.strip().splitlines()[-1]


def test_cli_refuses_pickled_weights(tiny_model_dir, tmp_path, capsys):
    pickled = tmp_path / "pickled"
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).save_pretrained(
        pickled, safe_serialization=False)
    status, line = _run_cli(capsys, "--model_dir", str(pickled),
                            "--output_dir", str(tmp_path / "b"))
    assert status == 2
    assert line == (f"sentiment-export: error: {pickled / 'pytorch_model.bin'}: pickled PyTorch "
                    "weights are refused (they can run code when loaded); re-save the model "
                    "with safetensors")


def test_cli_refuses_corrupt_safetensors(tiny_model_dir, tmp_path, capsys):
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    status, line = _run_cli(capsys, "--model_dir", str(model_dir), "--output_dir",
                            str(tmp_path / "b"))
    assert status == 2
    assert line.startswith(f"sentiment-export: error: {model_dir}: cannot load the model: ")


@pytest.mark.parametrize("extra, expected", [
    (["--precisions", "fp32,int4"], "precisions ['int4'] unknown"),
    (["--precisions", ","], "no precision given"),
    (["--max_length", "4096"], "max_length 4096 must lie between 2 and the model's"),
    (["--eval_dataset", "/nonexistent/eval.csv"], "--eval_dataset /nonexistent/eval.csv: "),
])
def test_cli_bad_options_give_one_error_line(tiny_model_dir, tmp_path, capsys, extra, expected):
    status, line = _run_cli(capsys, "--model_dir", str(tiny_model_dir), "--output_dir",
                            str(tmp_path / "bundle"), *extra)
    assert status == 2 and line.startswith("sentiment-export: error: ") and expected in line
    assert not (tmp_path / "bundle").exists()


def test_cli_refuses_missing_model_and_non_bundle_output(tiny_model_dir, tmp_path, capsys):
    status, line = _run_cli(capsys, "--model_dir", str(tmp_path / "none"), "--output_dir",
                            str(tmp_path / "b"))
    assert (status, line) == (
        2, f"sentiment-export: error: {tmp_path / 'none'}: model folder not found")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    status, line = _run_cli(capsys, "--model_dir", str(tiny_model_dir), "--output_dir",
                            str(tmp_path / "busy"), "--precisions", "fp32")
    assert status == 2 and "folder holds files that are not part of a bundle (notes.txt)" in line
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_console_script_exports_and_a_rerun_rewrites_the_bundle(tiny_model_dir, tmp_path, capsys):
    """The real entry point once; then the same folder rewritten with fewer precisions."""
    output = tmp_path / "bundle"
    done = subprocess.run([sys.executable, "-m", "export", "--model_dir", str(tiny_model_dir),
                           "--output_dir", str(output), "--precisions", "fp32,int8",
                           "--optimization_level", "O1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    steps = [line for line in done.stderr.splitlines() if line.startswith("[sentiment-export]")]
    for expected in ("exported to ONNX with Optimum", "fp32: optimised (O1)",
                     "int8: quantised to int8 (dynamic, ", "fp32: parity ok", "int8: parity ok",
                     "done in "):
        assert any(expected in step for step in steps), expected
    assert "Traceback" not in done.stderr
    fused = {node.op_type for node in onnx.load(str(output / "model_fp32.onnx")).graph.node}
    assert "Attention" not in fused  # O1 applies no transformer fusions

    status, _ = _run_cli(capsys, "--model_dir", str(tiny_model_dir), "--output_dir", str(output),
                         "--precisions", "fp32")
    assert status == 0
    assert sorted(path.name for path in output.iterdir()) == ["bundle.json", "model_fp32.onnx",
                                                              "tokenizer.json"]
    assert load_bundle(str(output), "fp32").manifest["export"]["optimization_level"] == "O2"


def test_three_class_model_with_financial_tweets(tiny_model_dir_3class, tmp_path, shared_data):
    manifest = export_bundle(tiny_model_dir_3class, tmp_path / "bundle", precisions=("fp32",),
                             eval_dataset=str(shared_data / "financial_tweets"),
                             progress=lambda message: None)
    assert manifest["labels"] == ["bearish", "bullish", "neutral"]
    assert manifest["metrics"]["eval"]["rows"] == 2388
    assert manifest["precisions"]["fp32"]["parity"]["passed"]
    bundle = load_bundle(tmp_path / "bundle", "fp32")
    session = onnxruntime.InferenceSession(bundle.read_model_bytes(),
                                           providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].shape[1] == 3
