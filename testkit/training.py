"""``sentiment-train`` interrupted by a signal, on a small SST-2 folder and the tiny BERT."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}
# 64 rows in batches of 4 for 3 epochs: 48 steps, an evaluation and checkpoint every 6 steps
MAX_STEPS, EVAL_STEPS, WARMUP_STEPS, PEAK_LR = 48, 6, 5, 1e-3
INTERRUPTED = re.compile(r"^sentiment-train: interrupted by (SIG\w+); checkpoint at step (\d+) "
                         r"kept in (\S+); continue with: (.+ --resume)$")


def sst2_folder(shared_data: Path, folder: Path) -> Path:
    """train.jsonl (64 SST-2 rows) and validation.jsonl (40 rows)."""
    frame = pd.read_csv(shared_data / "sst2" / "train.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    frame = frame.sample(n=104, random_state=1).rename(columns={"sentence": "text"})
    folder.mkdir(parents=True)
    frame.iloc[:64].to_json(folder / "train.jsonl", orient="records", lines=True)
    frame.iloc[64:].to_json(folder / "validation.jsonl", orient="records", lines=True)
    return folder


def train_flags(data: Path, output_dir: Path, base_model: Path,
                learning_rate: float = PEAK_LR) -> list[str]:
    """The flags of the interrupted-and-resumed run (48 steps, a checkpoint every 6)."""
    return ["--dataset", str(data), "--output_dir", str(output_dir), "--base_model",
            str(base_model), "--epochs", "3", "--batch_size", "4", "--eval_steps", str(EVAL_STEPS),
            "--learning_rate", str(learning_rate), "--max_length", "32"]


def complete_steps(checkpoint_dir: Path) -> list[int]:
    return sorted(int(path.parent.name.split("-")[1])
                  for path in checkpoint_dir.glob("checkpoint-*/trainer_state.json"))


def wait_for_checkpoint(checkpoint_dir: Path, after_step: int, running) -> None:
    """Returns once a checkpoint newer than ``after_step`` is complete (``running()`` true)."""
    deadline = time.monotonic() + 120
    while not [step for step in complete_steps(checkpoint_dir) if step > after_step]:
        assert running(), "training ended before it wrote a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)


def interrupt_command(flags: list[str], signum: int, logs: Path) -> tuple[int, str, str]:
    """Starts ``sentiment-train FLAGS`` as a process and sends it ``signum`` once it has written
    a checkpoint; returns exit status, stdout and stderr."""
    checkpoint_dir = Path(flags[flags.index("--output_dir") + 1]) / "checkpoints"
    with open(logs / "stdout", "w") as out, open(logs / "stderr", "w") as err:
        process = subprocess.Popen([str(BIN / "sentiment-train"), *flags], stdout=out, stderr=err,
                                   env=ENV)
        try:
            wait_for_checkpoint(checkpoint_dir, 0, lambda: process.poll() is None)
            process.send_signal(signum)
            status = process.wait(timeout=120)
        finally:
            process.kill()
    return status, (logs / "stdout").read_text(), (logs / "stderr").read_text()


def last_line(stderr: str) -> str:
    """The last line written (progress bars redraw their line with carriage returns)."""
    return [line for line in re.split(r"[\r\n]", stderr) if line.strip()][-1]
