"""Interrupting ``sentiment-train`` (SIGINT, then SIGTERM) keeps a checkpoint, and ``--resume``
continues from it to the normal outputs: through the real command on the tiny BERT."""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from testkit.training import (
    BIN,
    ENV,
    EVAL_STEPS,
    INTERRUPTED,
    MAX_STEPS,
    PEAK_LR,
    WARMUP_STEPS,
    interrupt_command,
    last_line,
    sst2_folder,
    train_flags,
    wait_for_checkpoint,
)
from training.checkpoints import (
    ResumeError,
    SignalStop,
    TrainingInterrupted,
    latest_checkpoint,
    prepare_run,
)
from training.cli import train_main


def interrupt_main(flags: list[str], signum: int, after_step: int) -> int:
    """Runs ``train_main(FLAGS)`` in this process; a thread sends this process ``signum`` once a
    checkpoint newer than ``after_step`` is complete. Returns the exit status."""
    checkpoint_dir = Path(flags[flags.index("--output_dir") + 1]) / "checkpoints"
    done = threading.Event()

    def send_signal():
        wait_for_checkpoint(checkpoint_dir, after_step, lambda: not done.is_set())
        os.kill(os.getpid(), signum)

    sender = threading.Thread(target=send_signal, daemon=True)
    sender.start()
    try:
        return train_main(flags)
    finally:
        done.set()
        sender.join()


def _logged_epochs(stdout: str) -> list[float]:
    """Epochs of the training-loss logs the Trainer printed (one dict per line)."""
    return [ast.literal_eval(line)["epoch"] for line in stdout.splitlines()
            if line.startswith("{'loss'")]


def linear_schedule(step: int) -> float:
    """The learning rate after ``step`` optimizer steps: linear warm-up, then linear decay."""
    if step < WARMUP_STEPS:
        return PEAK_LR * step / WARMUP_STEPS
    return PEAK_LR * (MAX_STEPS - step) / (MAX_STEPS - WARMUP_STEPS)


def test_interrupt_twice_then_resume_to_the_end(tmp_path, tiny_model_dir, shared_data, capsys):
    data = sst2_folder(shared_data, tmp_path / "data")
    output_dir = tmp_path / "model"
    checkpoint_dir = output_dir / "checkpoints"
    flags = train_flags(data, output_dir, tiny_model_dir)
    (tmp_path / "run1").mkdir()

    # 1. Ctrl-C: the step finishes, a checkpoint is saved there, one line says how to go on
    status, stdout1, stderr = interrupt_command(flags, signal.SIGINT, tmp_path / "run1")
    assert status == 130, stderr[-3000:]
    line = last_line(stderr)
    assert "\n" + line in stderr  # a line of its own
    match = INTERRUPTED.match(line)
    assert match, line
    first_stop = int(match.group(2))
    assert match.group(1) == "SIGINT" and 0 < first_stop < MAX_STEPS
    assert Path(match.group(3)) == checkpoint_dir / f"checkpoint-{first_stop}"
    assert match.group(4).split()[1:] == [*flags, "--resume"]
    assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
            "trainer_state.json"} <= {p.name for p in
                                      (checkpoint_dir / f"checkpoint-{first_stop}").iterdir()}
    assert not (output_dir / "training_report.json").exists()
    assert "Traceback" not in stderr

    # 2. what --resume refuses, and a fresh start over the checkpoints (in-process, same command)
    (checkpoint_dir / f"checkpoint-{MAX_STEPS}").mkdir()  # a save cut short: not complete
    capsys.readouterr()
    assert train_main(train_flags(data, output_dir, tiny_model_dir, learning_rate=5e-4)
                      + ["--resume"]) == 2
    assert capsys.readouterr().err.strip() == (
        "sentiment-train: error: --resume: this command differs from the interrupted run: "
        "--learning_rate 0.0005 (interrupted run: 0.001); rerun it with the interrupted run's "
        "flags")
    assert train_main(flags) == 2
    assert capsys.readouterr().err.strip() == (
        f"sentiment-train: error: {checkpoint_dir} holds checkpoint-{first_stop} of an interrupted "
        f"run; add --resume to continue it, or delete {checkpoint_dir} to start over")
    assert train_main(train_flags(data, tmp_path / "fresh", tiny_model_dir) + ["--resume"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"sentiment-train: error: --resume: no complete checkpoint in {tmp_path / 'fresh'}/"
        "checkpoints; run the command without --resume to start training")

    # 3. resumed (in this process, as the console script would), then stopped with SIGTERM
    status = interrupt_main([*flags, "--resume"], signal.SIGTERM, first_stop)
    stdout2, stderr = capsys.readouterr()
    assert status == 143, stderr[-3000:]
    match = INTERRUPTED.match(last_line(stderr))
    assert match and match.group(1) == "SIGTERM", stderr[-2000:]
    second_stop = int(match.group(2))
    assert first_stop < second_stop < MAX_STEPS
    assert not (checkpoint_dir / f"checkpoint-{MAX_STEPS}").exists()  # the cut-short save is gone

    # 4. resumed to the end: the normal outputs, checkpoints removed
    result = subprocess.run([str(BIN / "sentiment-train"), *flags, "--resume"],
                            capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resumed at step {second_stop}, finished at step {MAX_STEPS}" in result.stdout
    assert {"model.safetensors", "tokenizer.json", "training_report.json", "README.md",
            "loss.png"} <= {path.name for path in output_dir.iterdir()}
    assert not checkpoint_dir.exists()
    report = json.loads((output_dir / "training_report.json").read_text())
    training = report["training"]
    assert training["resumed_from_step"] == second_stop
    assert training["global_step"] == training["max_steps"] == MAX_STEPS
    card = (output_dir / "README.md").read_text()
    assert f"resumed from the checkpoint at step {second_stop}" in card

    # each process trained only its own steps: global step continued, never restarted
    steps_per_epoch = MAX_STEPS / 3
    for stdout, low, high in [(stdout1, 0, first_stop), (stdout2, first_stop, second_stop),
                              (result.stdout, second_stop, MAX_STEPS)]:
        steps = [round(epoch * steps_per_epoch) for epoch in _logged_epochs(stdout)]
        assert steps and low < min(steps) and max(steps) <= high, (low, high, steps)
    # the log history spans the three processes once, and the learning rate follows one
    # schedule across them (scheduler state restored, not warmed up again)
    losses = [entry for entry in report["log_history"] if "loss" in entry]
    assert [entry["step"] for entry in losses] == list(range(1, MAX_STEPS + 1))
    for entry in losses:
        # the rate logged at a step is the one that step used (float64 arithmetic on both sides)
        assert entry["learning_rate"] == pytest.approx(linear_schedule(entry["step"] - 1), rel=1e-6)
    evaluations = [entry["step"] for entry in report["log_history"] if "eval_macro_f1" in entry]
    assert evaluations == list(range(EVAL_STEPS, MAX_STEPS + 1, EVAL_STEPS))


def test_only_checkpoints_with_safetensors_weights_are_resumed(tmp_path):
    """A checkpoint whose weights are pickled (pytorch_model.bin) is never loaded."""
    checkpoint_dir = tmp_path / "checkpoints"
    pickled = checkpoint_dir / "checkpoint-6"
    pickled.mkdir(parents=True)
    (pickled / "trainer_state.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not loaded")
    with pytest.raises(ResumeError, match="--resume: no complete checkpoint in "):
        prepare_run(checkpoint_dir, {}, resume=True)
    (pickled / "model.safetensors").write_bytes(b"")
    assert latest_checkpoint(checkpoint_dir) == pickled


def test_signal_stop_defers_the_first_signal_only_inside_the_training_loop():
    previous = signal.getsignal(signal.SIGTERM)
    with SignalStop() as stop:
        with pytest.raises(TrainingInterrupted) as raised:  # outside the loop: at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert (raised.value.signal_name, raised.value.exit_status) == ("SIGTERM", 143)
        stop.requested, stop.defer = None, True  # inside the loop: the first one is recorded
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        assert stop.requested == signal.SIGINT
        with pytest.raises(TrainingInterrupted) as raised:  # a second one stops at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert raised.value.exit_status == 130
    assert signal.getsignal(signal.SIGTERM) is previous
