"""The two jobs behind the CLIs: fine-tune and report, and evaluate a trained model."""
from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path
from typing import Any

from training import report as reporting
from training.calibration import calibrate, expected_calibration_error
from training.checkpoints import SignalStop
from training.data import LabelledSplits, load_labelled_set, model_label_names
from training.metrics import classification_metrics, probabilities
from training.trainer import TrainConfig, fine_tune, load_tokenizer, predict_logits

EVAL_REPORT_NAME = "eval_report.json"


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _metrics_with_ece(logits, label_ids, label_names) -> dict[str, Any]:
    probs = probabilities(logits)
    return {**classification_metrics(label_ids, probs.argmax(axis=1), label_names),
            "ece": expected_calibration_error(probs, label_ids)}


def _training_speed(result) -> dict[str, Any]:
    """Time and speed of the steps this process ran (after ``--resume``, the Trainer's samples/s
    counts the whole run's samples over the resumed part's time)."""
    metrics = result.train_metrics
    resumed = result.resumed_from_step or 0
    share = (result.global_step - resumed) / result.global_step if result.global_step else 1.0
    return {"time_s": metrics["train_runtime"],
            "samples_per_second": metrics["train_samples_per_second"] * share,
            "steps_per_second": metrics["train_steps_per_second"] * share,
            "resumed_from_step": result.resumed_from_step}


def train_and_report(splits: LabelledSplits, config: TrainConfig, output_dir: str | os.PathLike,
                     *, source: str, label_column: str = "label", progress: bool = True,
                     resume: bool = False, stop: SignalStop | None = None) -> dict[str, Any]:
    """Fine-tunes on ``splits``, then writes model, tokenizer, report, plots, misclassified rows
    and model card into ``output_dir``. Returns the report (also ``training_report.json``).
    ``resume`` and ``stop`` are passed to `fine_tune`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result = fine_tune(splits.train, splits.validation, splits.label_names, config, output_dir,
                       progress=progress, resume=resume, stop=stop)
    result.tokenizer.save_pretrained(output_dir)
    validation_ids = splits.validation["label"]
    calibration = calibrate(result.final_logits, validation_ids)
    final_metrics = _metrics_with_ece(result.final_logits, validation_ids, splits.label_names)
    final_metrics["ece_calibrated"] = calibration["ece_after"]
    report = {
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "base_model": config.base_model,
        "labels": list(splits.label_names),
        "max_length": config.max_length,
        "text_normalization": list(config.text_normalization),
        "languages": list(config.languages),
        "dataset": {"source": source, "text_column": splits.text_column,
                    "label_column": label_column, "train_rows": len(splits.train),
                    "validation_rows": len(splits.validation),
                    "class_counts": splits.class_counts(), "dropped": splits.dropped,
                    "mixed_in": splits.mixed_in},
        "hyperparameters": dataclasses.asdict(config),
        "class_weight_values": result.class_weight_values,
        "baseline_metrics": _metrics_with_ece(result.baseline_logits, validation_ids,
                                              splits.label_names),
        "final_metrics": final_metrics,
        "calibration": calibration,
        "training": {
            **_training_speed(result),
            "train_loss": result.train_metrics["train_loss"],
            "global_step": result.global_step, "max_steps": result.max_steps,
            "stopped_early": result.global_step < result.max_steps,
            "best_step": result.best_step, "best_validation_macro_f1": result.best_metric,
        },
        "log_history": result.log_history,
        "versions": _versions(),
    }
    report["plots"] = reporting.plot_training_curves(result.log_history, output_dir)
    reporting.plot_confusion_matrix(final_metrics["confusion_matrix"], splits.label_names,
                                    output_dir / reporting.CONFUSION_MATRIX_PLOT,
                                    "Validation confusion matrix (fine-tuned)")
    report["plots"].append(reporting.CONFUSION_MATRIX_PLOT)
    report["misclassified"] = reporting.write_misclassified(
        output_dir / reporting.MISCLASSIFIED_NAME, splits.validation["text"], validation_ids,
        probabilities(result.final_logits), splits.label_names)
    reporting.write_json(output_dir / reporting.REPORT_NAME, report)
    reporting.write_model_card(output_dir, report)
    return report


def evaluate_model(model_dir: str | os.PathLike, source: str, output_dir: str | os.PathLike, *,
                   text_column: str = "text", label_column: str = "label",
                   split: str | None = None, batch_size: int = 64,
                   max_length: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Evaluates a trained model on a labelled source (labels aligned to the model's id2label).

    Writes ``eval_report.json``, the confusion matrix plot and ``misclassified.csv`` into
    ``output_dir``. Uses the model's ``max_length`` and temperature from its training report.
    """
    from training.trainer import load_classifier

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    label_names = model_label_names(model_dir)
    training_report_path = model_dir / reporting.REPORT_NAME
    training_report = (reporting.read_json(training_report_path)
                       if training_report_path.is_file() else {})
    max_length = max_length or training_report.get("max_length", 128)
    temperature = training_report.get("calibration", {}).get("temperature", 1.0)
    labelled = load_labelled_set(source, text_column=text_column, label_column=label_column,
                                 labels=label_names, split=split)
    model = load_classifier(str(model_dir), label_names, flag="--model")
    tokenizer = load_tokenizer(str(model_dir))
    output_dir.mkdir(parents=True, exist_ok=True)
    normalization = getattr(model.config, "text_normalization", None) or ()
    logits = predict_logits(model, tokenizer, labelled.dataset, batch_size, max_length,
                            output_dir / "predict", progress=progress,
                            normalization=normalization)
    label_ids = labelled.dataset["label"]
    metrics = _metrics_with_ece(logits, label_ids, label_names)
    metrics["ece_calibrated"] = expected_calibration_error(probabilities(logits, temperature),
                                                           label_ids)
    result = {
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": str(model_dir), "labels": label_names, "max_length": max_length,
        "temperature": temperature,
        "dataset": {"source": source, "split": labelled.split, "rows": len(labelled.dataset),
                    "dropped": labelled.dropped},
        "metrics": metrics,
    }
    reporting.plot_confusion_matrix(metrics["confusion_matrix"], label_names,
                                    output_dir / reporting.CONFUSION_MATRIX_PLOT,
                                    f"Confusion matrix ({Path(source).name} [{labelled.split}])")
    result["misclassified"] = reporting.write_misclassified(
        output_dir / reporting.MISCLASSIFIED_NAME, labelled.dataset["text"], label_ids,
        probabilities(logits, temperature), label_names)
    reporting.write_json(output_dir / EVAL_REPORT_NAME, result)
    return result
