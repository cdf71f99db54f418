"""Reliability cases of the trust area: tampered bundles, pickled weights, interrupted training.

Every case runs a real console script as a subprocess. The tampering and the training run are
the tests' (`testkit.models`, `testkit.training`, as in tests/test_tampering.py and
tests/test_training_resume.py), so the table shows what the tests prove, on the real bundle
passed in (copied, then broken one way per case).
"""
from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.benchlib import SHARED_DATA
from testkit.dumps import sst2_sentences
from testkit.models import TAMPER_CASES, build_tiny_bert, tamper
from testkit.outputs import read_parts
from testkit.training import (
    ENV,
    INTERRUPTED,
    MAX_STEPS,
    interrupt_command,
    last_line,
    sst2_folder,
    train_flags,
)

BIN = Path(sys.executable).parent
REVIEW_ROWS = 200


def _short(text: str, workdir: Path, **names: str) -> str:
    """``text`` with each path of ``names`` written as its NAME, the work folder left out."""
    for name, path in names.items():
        text = text.replace(path, name)
    return text.replace(str(workdir) + "/", "").replace(str(BIN) + "/", "")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=600, check=False)


def _outcome(result: subprocess.CompletedProcess, workdir: Path) -> str:
    if result.returncode == 0:
        return "exit 0"
    return _short(f"exit {result.returncode}: {last_line(result.stderr or 'no error line')}",
                  workdir)


def score_bundle(workdir: Path, bundle: str, reviews: Path, case: str) -> dict:
    """``sentiment-score`` on a copy of ``bundle`` broken as ``case`` (or intact: ``intact``)."""
    case_dir = workdir / case
    copy = shutil.copytree(bundle, case_dir / "bundle")
    if case != "intact":
        tamper(copy, case)
    prefix = case_dir / "out" / "scored"
    args = [str(BIN / "sentiment-score"), "--input", str(reviews), "--output", str(prefix),
            "--model", str(copy), "--precision", "fp32"]
    result = _run(args)
    scored, dead = read_parts(prefix), read_parts(Path(f"{prefix}-dead-letter"))
    scored_rows, dead_rows = (scored.num_rows if scored else 0), (dead.num_rows if dead else 0)
    refused = result.returncode == 2 and not (case_dir / "out").exists()
    shutil.rmtree(copy)
    return {"area": "trust", "case": f"bundle {case.replace('_', ' ')}",
            "input": f"{REVIEW_ROWS} SST-2 validation sentences; bundle " +
                     ("as exported" if case == "intact" else f"copy changed: {case}"),
            "command": _short(shlex.join(args), workdir, BUNDLE=str(copy)),
            "rows_in": REVIEW_ROWS, "scored": scored_rows, "dead_lettered": dead_rows,
            "outcome": _outcome(result, workdir),
            "every_row_accounted": (result.returncode == 0
                                    and scored_rows + dead_rows == REVIEW_ROWS)
            if case == "intact" else refused and scored_rows + dead_rows == 0}


def pickled_weights(workdir: Path, base_model: Path) -> dict:
    """``sentiment-export`` of a model folder holding only pickled ``pytorch_model.bin``."""
    from transformers import AutoModelForSequenceClassification

    folder = workdir / "pickled_model"
    shutil.copytree(base_model, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    AutoModelForSequenceClassification.from_pretrained(base_model).save_pretrained(
        folder, safe_serialization=False)
    args = [str(BIN / "sentiment-export"), "--model_dir", str(folder), "--output_dir",
            str(workdir / "pickled_bundle")]
    result = _run(args)
    return {"area": "trust", "case": "pickled weights only",
            "input": "tiny BERT folder with pytorch_model.bin, no model.safetensors",
            "command": _short(shlex.join(args), workdir), "rows_in": None, "scored": None,
            "dead_lettered": None, "outcome": _outcome(result, workdir),
            "every_row_accounted": result.returncode == 2
            and not (workdir / "pickled_bundle").exists()}


def interrupted_training(workdir: Path, base_model: Path) -> dict:
    """SIGINT to ``sentiment-train`` once it has a checkpoint, then the same command with
    ``--resume``: steps before and after, from the messages and the training report."""
    data = sst2_folder(SHARED_DATA, workdir / "train_data")
    output_dir = workdir / "trained"
    flags = train_flags(data, output_dir, base_model)
    (workdir / "logs").mkdir()
    status, _, stderr = interrupt_command(flags, signal.SIGINT, workdir / "logs")
    match = INTERRUPTED.match(last_line(stderr))
    stopped_at = int(match.group(2)) if match else None
    resumed = _run([str(BIN / "sentiment-train"), *flags, "--resume"])
    report_path = output_dir / "training_report.json"
    training = json.loads(report_path.read_text())["training"] if report_path.exists() else {}
    continued = (status == 130 and stopped_at is not None and resumed.returncode == 0
                 and training.get("resumed_from_step") == stopped_at
                 and training.get("global_step") == MAX_STEPS)
    return {"area": "trust", "case": "training interrupted (SIGINT), then --resume",
            "input": f"64 SST-2 rows, tiny BERT, {MAX_STEPS} steps, checkpoint every 6",
            "command": _short(shlex.join(["sentiment-train", *flags]), workdir,
                              TINY_BERT=str(base_model)) + "; Ctrl-C; the same + --resume",
            "rows_in": None, "scored": None, "dead_lettered": None,
            "outcome": (f"exit {status} at step {stopped_at} (checkpoint-{stopped_at} kept); "
                        f"--resume: {_outcome(resumed, workdir)}, resumed from step "
                        f"{training.get('resumed_from_step')} to "
                        f"{training.get('global_step')}/{training.get('max_steps')}; "
                        f"{'report written' if report_path.exists() else 'NO report'}"),
            "every_row_accounted": continued}


def run_cases(workdir: Path, bundle: str) -> list[dict]:
    """Runs each hostile case of this area through the real command; one dict per case."""
    reviews = workdir / "reviews.parquet"
    pq.write_table(pa.table({"text": sst2_sentences(SHARED_DATA, REVIEW_ROWS)}), reviews)
    cases = [score_bundle(workdir, bundle, reviews, case) for case in ["intact", *TAMPER_CASES]]
    tiny = build_tiny_bert(workdir / "tiny_bert", ["negative", "positive"])
    return [*cases, pickled_weights(workdir, tiny), interrupted_training(workdir, tiny)]
