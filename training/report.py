"""What a run leaves beside the model: JSON report, PNG plots, misclassified rows, model card."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

REPORT_NAME = "training_report.json"
MISCLASSIFIED_NAME = "misclassified.csv"
CONFUSION_MATRIX_PLOT = "confusion_matrix.png"
#: Plot file -> (title, [(log key, legend label)]) drawn from the Trainer's log history.
CURVES = {
    "loss.png": ("Loss", [("loss", "train"), ("eval_loss", "validation")]),
    "validation_metrics.png": ("Validation accuracy and macro-F1",
                               [("eval_accuracy", "accuracy"), ("eval_macro_f1", "macro-F1")]),
    "learning_rate.png": ("Learning rate", [("learning_rate", "learning rate")]),
    "grad_norm.png": ("Gradient norm", [("grad_norm", "gradient norm")]),
}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Writes ``data`` as indented JSON."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict[str, Any]:
    """Reads a JSON report."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def plot_training_curves(log_history: Sequence[dict[str, Any]], output_dir: Path) -> list[str]:
    """One PNG per entry of `CURVES` (x axis: optimizer step); returns the file names."""
    written = []
    for file_name, (title, series) in CURVES.items():
        figure, axes = plt.subplots(figsize=(7, 4))
        for key, label in series:
            points = [(entry["step"], entry[key]) for entry in log_history if key in entry]
            if points:
                steps, values = zip(*points)
                axes.plot(steps, values, marker="o" if len(points) < 30 else None, label=label)
        axes.set(title=title, xlabel="step")
        if len(series) > 1:
            axes.legend()
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(output_dir / file_name, dpi=100)
        plt.close(figure)
        written.append(file_name)
    return written


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], label_names: Sequence[str],
                          path: Path, title: str) -> None:
    """Confusion matrix (rows: true label, columns: predicted label) as a PNG."""
    figure, axes = plt.subplots(figsize=(2 + 1.2 * len(label_names), 1.5 + 1.2 * len(label_names)))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(label_names)).plot(
        ax=axes, colorbar=False, values_format="d")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_misclassified(path: Path, texts: Sequence[str], label_ids: Sequence[int],
                        probs: np.ndarray, label_names: Sequence[str]) -> int:
    """CSV of the rows predicted wrongly, with the probability of every class; returns the count."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(label_ids))
    frame = pd.DataFrame({
        "text": [texts[i] for i in wrong],
        "label": [label_names[label_ids[i]] for i in wrong],
        "predicted": [label_names[predicted[i]] for i in wrong],
        "confidence": probs[wrong].max(axis=1),
        **{f"prob_{name}": probs[wrong, k] for k, name in enumerate(label_names)},
    }).sort_values("confidence", ascending=False)
    frame.to_csv(path, index=False)
    return len(frame)


def _metrics_table(report: dict[str, Any]) -> list[str]:
    baseline, final = report["baseline_metrics"], report["final_metrics"]
    lines = ["| metric | untrained baseline | fine-tuned |", "|---|---|---|"]
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "ece"):
        lines.append(f"| {key} | {baseline[key]:.4f} | {final[key]:.4f} |")
    return lines


def write_model_card(output_dir: Path, report: dict[str, Any]) -> None:
    """A ``README.md`` model card with the data, hyper-parameters and measured results."""
    data, hyper, training = report["dataset"], report["hyperparameters"], report["training"]
    calibration = report["calibration"]
    final = report["final_metrics"]
    per_class = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"] + [
        f"| {name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |"
        for name, m in final["per_class"].items()]
    lines = [
        "---", "library_name: transformers", "pipeline_tag: text-classification", "---", "",
        f"# Sentiment classifier ({', '.join(report['labels'])})", "",
        f"Fine-tuned from `{report['base_model']}` with `sentiment-train` on `{data['source']}` "
        f"({data['train_rows']} training rows, {data['validation_rows']} validation rows; "
        f"text column `{data['text_column']}`).", "",
        "## Data", "",
        f"- Class counts: train {data['class_counts']['train']}, "
        f"validation {data['class_counts']['validation']}",
        f"- Rows dropped while loading: {data['dropped'] or 'none'}", "",
        "## Training", "",
        f"- Hyper-parameters: {json.dumps(hyper)}",
        f"- Class weights: {report['class_weight_values'] or 'none (plain cross-entropy)'}",
        f"- {training['global_step']} optimizer steps in {training['time_s']:.1f} s "
        f"({training['samples_per_second']:.1f} samples/s); best checkpoint at step "
        f"{training['best_step']} (validation macro-F1 {training['best_validation_macro_f1']:.4f})"
        f"{'; stopped early' if training['stopped_early'] else ''}"
        + (f"; resumed from the checkpoint at step {training['resumed_from_step']} (time and "
           "speed are those of the resumed part)" if training.get("resumed_from_step") else ""),
        "",
        "## Validation results", "", *_metrics_table(report), "", *per_class, "",
        f"Calibration: softmax temperature {calibration['temperature']:.3f} (fitted on the "
        f"validation logits) takes the expected calibration error from "
        f"{calibration['ece_before']:.4f} to {calibration['ece_after']:.4f}. Divide the logits by "
        "it before the softmax.", "",
        "Plots (training curves and the confusion matrix): " +
        ", ".join(f"`{name}`" for name in report["plots"]) +
        f"; wrongly classified validation rows: `{MISCLASSIFIED_NAME}`; "
        f"all numbers: `{REPORT_NAME}`.", "",
    ]
    if report.get("search"):
        lines += ["## Hyper-parameter search", "", *search_table(report["search"]["trials"]), ""]
    (output_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")


def search_table(trials: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown rows for the trials of a hyper-parameter search."""
    keys = list(trials[0]["parameters"])
    lines = ["| trial | " + " | ".join(keys) + " | val accuracy | val macro-F1 | time (s) |",
             "|---" * (len(keys) + 4) + "|"]
    for trial in trials:
        values = " | ".join(str(trial["parameters"][key]) for key in keys)
        lines.append(f"| {trial['trial']} | {values} | {trial['accuracy']:.4f} | "
                     f"{trial['macro_f1']:.4f} | {trial['time_s']:.1f} |")
    return lines
