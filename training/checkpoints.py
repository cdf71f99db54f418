"""Interrupting ``sentiment-train`` and continuing with ``--resume``.

While a run trains, the Trainer checkpoints into ``OUTPUT_DIR/checkpoints`` at each evaluation
(model as safetensors, optimizer, scheduler, RNG state, step, log history); beside them
``run_config.json`` records the run's hyper-parameters and a digest of its training and
validation rows. The checkpoints are removed once the finished model is saved.

The first SIGINT (Ctrl-C) or SIGTERM during training lets the current step finish, saves a
checkpoint there and stops (`SignalStop`); outside the training loop, or on a second signal, it
stops at once and the newest complete checkpoint is what remains. ``--resume`` continues from
the newest complete checkpoint after checking that hyper-parameters and data are those of the
interrupted run (`prepare_run`). Nothing here imports torch or transformers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RUN_CONFIG_NAME = "run_config.json"
TRAINER_STATE_NAME = "trainer_state.json"
WEIGHTS_NAME = "model.safetensors"
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class TrainingInterrupted(Exception):
    """Training stopped on a signal; ``exit_status`` is the shell's 128 + signal number;
    ``in_training_loop``: raised from inside the Trainer's loop, after a checkpoint was saved."""

    def __init__(self, signum: int, in_training_loop: bool = False):
        super().__init__(signal.Signals(signum).name)
        self.in_training_loop = in_training_loop
        self.signal_name = signal.Signals(signum).name
        self.exit_status = 128 + signum


class ResumeError(ValueError):
    """``--resume`` cannot continue (nothing to resume, or a different run); one line for the
    user."""


class SignalStop:
    """Context manager turning SIGINT/SIGTERM into a graceful stop of training.

    While ``defer`` is true (set by the Trainer callback during the training loop) the first
    signal only records itself in ``requested``; the callback then saves and stops at the end of
    the step. Otherwise, or on a second signal, `TrainingInterrupted` is raised at once.
    """

    def __init__(self) -> None:
        self.requested: int | None = None
        self.defer = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalStop:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        first = self.requested is None
        self.requested = signum
        if not (first and self.defer):
            raise TrainingInterrupted(signum)


def checkpoint_step(path: Path) -> int:
    """``.../checkpoint-500`` -> 500."""
    return int(_CHECKPOINT.match(path.name).group(1))


def _is_complete(path: Path) -> bool:
    """The Trainer writes ``trainer_state.json`` after the weights, optimizer, scheduler and RNG
    state: a checkpoint with a readable one was written to the end."""
    try:
        json.loads((path / TRAINER_STATE_NAME).read_text())
    except (OSError, ValueError):
        return False
    return (path / WEIGHTS_NAME).is_file()


def checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Checkpoint folders under ``checkpoint_dir``, oldest step first (complete or not)."""
    if not checkpoint_dir.is_dir():
        return []
    found = [path for path in checkpoint_dir.iterdir()
             if path.is_dir() and _CHECKPOINT.match(path.name)]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest checkpoint that was written completely, or None."""
    complete = [path for path in checkpoints(checkpoint_dir) if _is_complete(path)]
    return complete[-1] if complete else None


def run_identity(config: Any, label_names: Sequence[str], train, validation) -> dict[str, Any]:
    """What must match for ``--resume``: hyper-parameters, labels, and a sha256 of the training
    and validation rows (so a different --dataset, subset, hold-out or changed file is caught)."""
    digest = hashlib.sha256()
    for split in (train, validation):
        digest.update(json.dumps([list(split["text"]), list(split["label"])]).encode("utf-8"))
    # through JSON, as stored: tuples compare equal to the lists read back
    hyperparameters = json.loads(json.dumps(dataclasses.asdict(config)))
    return {"hyperparameters": hyperparameters, "labels": list(label_names),
            "rows": {"train": len(train), "validation": len(validation)},
            "data_sha256": digest.hexdigest()}


def _differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    differences = [f"--{name} {current['hyperparameters'].get(name)!r} (interrupted run: {value!r})"
                   for name, value in stored["hyperparameters"].items()
                   if current["hyperparameters"].get(name) != value]
    if stored["labels"] != current["labels"]:
        differences.append(f"labels {current['labels']} (interrupted run: {stored['labels']})")
    if stored["data_sha256"] != current["data_sha256"]:
        differences.append(f"the training/validation rows ({current['rows']['train']}/"
                           f"{current['rows']['validation']}; interrupted run: "
                           f"{stored['rows']['train']}/{stored['rows']['validation']}, or the "
                           "same counts with other content)")
    return differences


def prepare_run(checkpoint_dir: Path, identity: dict[str, Any], resume: bool) -> Path | None:
    """Checks ``checkpoint_dir`` before training and records the run; returns the checkpoint to
    resume from (``resume``) or None (a fresh run).

    Raises `ResumeError` for ``--resume`` without a complete checkpoint or with another run's
    settings, and for a fresh run over an interrupted run's checkpoints (they are not
    overwritten silently). Incomplete checkpoints (a save cut short) are removed.
    """
    config_path = checkpoint_dir / RUN_CONFIG_NAME
    latest = latest_checkpoint(checkpoint_dir)
    if not resume:
        if latest is not None:
            raise ResumeError(f"{checkpoint_dir} holds {latest.name} of an interrupted run; add "
                              f"--resume to continue it, or delete {checkpoint_dir} to start over")
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        checkpoint_dir.mkdir(parents=True)
        config_path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")
        return None
    if latest is None:
        raise ResumeError(f"--resume: no complete checkpoint in {checkpoint_dir}; run the command "
                          "without --resume to start training")
    try:
        differences = _differences(json.loads(config_path.read_text(encoding="utf-8")), identity)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ResumeError(f"--resume: {config_path} is missing or unreadable, so the settings "
                          "of the interrupted run are unknown; delete "
                          f"{checkpoint_dir} and start over without --resume") from None
    if differences:
        raise ResumeError("--resume: this command differs from the interrupted run: "
                          + "; ".join(differences) + "; rerun it with the interrupted run's flags")
    for path in checkpoints(checkpoint_dir):
        if checkpoint_step(path) > checkpoint_step(latest):
            shutil.rmtree(path)
    return latest
