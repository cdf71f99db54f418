"""Tampering and trust through the real commands: ``sentiment-score`` refuses a bundle that is not
the one its ``bundle.json`` describes (one line, exit 2, nothing written), the worker that loads the
model checks it again, and no command loads pickled weights.

The loader's own checks, one by one, are in test_bundle.py; these tests drive whole commands.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.batch.pipeline import build_batch_pipeline
from beam_pipeline.batch.planning import plan_batch_job
from beam_pipeline.batch.writing import part_pattern
from beam_pipeline.bundle import BundleError, sha256_of
from beam_pipeline.cli import main as score_main
from beam_pipeline.options import ScoringOptions
from testkit.models import TAMPER_CASES, tamper
from training.cli import eval_main, train_main

BIN = Path(sys.executable).parent
REVIEWS = ["a charming , funny film .", "dull and slow .", "the best thing this year"]


@pytest.fixture
def reviews(tmp_path) -> Path:
    path = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"text": REVIEWS}), path)
    return path


def _bundle_copy(tiny_bundle_dir: Path, tmp_path: Path) -> Path:
    return shutil.copytree(tiny_bundle_dir, tmp_path / "work" / "bundle")


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_score_refuses_a_tampered_bundle(tiny_bundle_dir, tmp_path, reviews, capsys, case):
    bundle = _bundle_copy(tiny_bundle_dir, tmp_path)
    expected = tamper(bundle, case).format(bundle=bundle)
    status = score_main(["--input", str(reviews), "--output", str(tmp_path / "out" / "scored"),
                         "--model", str(bundle), "--precision", "fp32"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.splitlines() == [err] and err.startswith(f"sentiment-score: error: {expected}"), err
    assert not (tmp_path / "out").exists()


def test_score_command_refuses_a_modified_onnx_file(tiny_bundle_dir, tmp_path, reviews):
    """The console script itself: exit 2, one line on stderr, no traceback, nothing written."""
    bundle = _bundle_copy(tiny_bundle_dir, tmp_path)
    expected = tamper(bundle, "onnx_byte_flipped").format(bundle=bundle)
    result = subprocess.run([str(BIN / "sentiment-score"), "--input", str(reviews), "--output",
                             str(tmp_path / "out" / "scored"), "--model", str(bundle),
                             "--precision", "fp32"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"sentiment-score: error: {expected}")
    assert not (tmp_path / "out").exists() and not result.stdout


def _planned_job(bundle: Path, reviews: Path, output: Path, precision: str):
    options = PipelineOptions(["--input", str(reviews), "--output", str(output), "--model",
                               str(bundle), "--precision", precision], runner="FnApiRunner")
    return options, plan_batch_job(options.view_as(ScoringOptions))


def assert_job_fails_unscored(options, job, error: str) -> None:
    """Runs the planned job: it must fail with ``error`` and write no scored file."""
    pipeline = beam.Pipeline(options=options)
    build_batch_pipeline(pipeline, job)
    with pytest.raises(Exception, match=error):
        pipeline.run().wait_until_finish()
    assert not glob.glob(part_pattern(job.output_prefix))


def test_worker_checks_the_model_it_loads(tiny_bundle_dir, tmp_path, reviews):
    """The model file is changed after the launcher validated the bundle: the worker's
    `load_model` checks it against bundle.json again, and the job fails without scoring."""
    bundle = _bundle_copy(tiny_bundle_dir, tmp_path)
    options, job = _planned_job(bundle, reviews, tmp_path / "out" / "scored", "fp32")
    tamper(bundle, "onnx_swapped_for_another_model")
    with pytest.raises(BundleError, match=re.escape(f"{bundle / 'model_fp32.onnx'}: sha256 "
                                                    "mismatch")):
        job.handler.load_model()
    assert_job_fails_unscored(options, job, "model_fp32.onnx: sha256 mismatch")


def test_worker_refuses_a_bundle_replaced_after_planning(tiny_bundle_dir, tmp_path, reviews):
    """Model and bundle.json replaced together after the job was planned (they match each
    other): the workers check the checksums pinned at planning, and the job fails unscored."""
    bundle = _bundle_copy(tiny_bundle_dir, tmp_path)
    options, job = _planned_job(bundle, reviews, tmp_path / "out" / "scored", "fp32")
    manifest = json.loads((bundle / "bundle.json").read_text())
    int8 = manifest["precisions"]["int8"]
    shutil.copyfile(bundle / int8["file"], bundle / "model_fp32.onnx")
    manifest["precisions"]["fp32"]["sha256"] = int8["sha256"]
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    assert_job_fails_unscored(options, job, "is not that of the fp32 file the job was started with")


def test_worker_records_the_version_of_the_verified_model(tiny_bundle_dir, tmp_path, reviews):
    """Untampered, the worker scores, and every record names the sha256 of the file it checked."""
    options, job = _planned_job(tiny_bundle_dir, reviews, tmp_path / "scored", "fp32")
    pipeline = beam.Pipeline(options=options)
    build_batch_pipeline(pipeline, job)
    pipeline.run().wait_until_finish()
    scored = pa.concat_tables(pq.read_table(path) for path in tmp_path.glob("scored-part-*"))
    assert scored.num_rows == len(REVIEWS)
    assert set(scored.column("model_version").to_pylist()) == {
        sha256_of(str(tiny_bundle_dir / "model_fp32.onnx"))[:16]}


@pytest.fixture(scope="module")
def pickled_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny classifier saved the old way: config, tokenizer and pytorch_model.bin only."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("pickled")
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).save_pretrained(
        folder, safe_serialization=False)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    assert (folder / "pytorch_model.bin").is_file() and not (folder / "model.safetensors").exists()
    return folder


def test_train_refuses_a_pickled_base_model(pickled_model_dir, tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "great fun,positive\nawful,negative\n" * 8)
    status = train_main(["--dataset", str(data), "--output_dir", str(tmp_path / "out"),
                         "--base_model", str(pickled_model_dir), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == (f"sentiment-train: error: --base_model '{pickled_model_dir}': "
                   f"{pickled_model_dir / 'pytorch_model.bin'}: pickled PyTorch weights are "
                   "refused (they can run code when loaded); re-save the model with safetensors")
    assert not any((tmp_path / "out").rglob("*"))  # nothing written


def test_eval_refuses_a_pickled_model(pickled_model_dir, shared_data, tmp_path, capsys):
    status = eval_main(["--model", str(pickled_model_dir), "--dataset", str(shared_data / "sst2"),
                        "--output_dir", str(tmp_path / "eval")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == (f"sentiment-eval: error: --model '{pickled_model_dir}': "
                   f"{pickled_model_dir / 'pytorch_model.bin'}: pickled PyTorch weights are "
                   "refused (they can run code when loaded); re-save the model with safetensors")
    assert not (tmp_path / "eval" / "eval_report.json").exists()
