"""Continued training on a few hundred reviewed posts (``sentiment-train --base_model DIR``): a
model this project trained keeps its labels (in their order), normalisation and languages;
unlabelled rows of a review file are dropped; the original data can be mixed in."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.cli import train_main

LABELS = ["negative", "neutral", "positive"]


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def social_model(tiny_model_dir_3class, tmp_path_factory) -> Path:
    """A three-class model trained with social normalisation on general posts."""
    folder = tmp_path_factory.mktemp("general")
    rows = [{"text": f"@x post {index} {'awful' if index % 3 == 0 else 'fine'} 😀",
             "label": LABELS[index % 3]} for index in range(60)]
    output = folder / "model"
    assert train_main(["--dataset", str(write_rows(folder / "train.jsonl", rows)),
                       "--output_dir", str(output), "--base_model", str(tiny_model_dir_3class),
                       "--labels", ",".join(LABELS), "--epochs", "1", "--max_length", "24",
                       "--text_normalization", "social", "--languages", "en"]) == 0
    return output


def reviewed(folder: Path) -> Path:
    """A review file as a person returns it: labels are names, given in another order than the
    model's, and some posts were left unlabelled (empty label)."""
    rows = [{"id": f"r{index}", "text": f"brand post {index}",
             "label": ["positive", "negative", "", "neutral"][index % 4]} for index in range(48)]
    return write_rows(folder / "reviewed.jsonl", rows)


def test_continued_training_keeps_labels_normalisation_and_languages(social_model, tmp_path):
    output = tmp_path / "adapted"
    assert train_main(["--dataset", str(reviewed(tmp_path)), "--output_dir", str(output),
                       "--base_model", str(social_model), "--epochs", "1",
                       "--max_length", "24"]) == 0
    config = json.loads((output / "config.json").read_text())
    original = json.loads((social_model / "config.json").read_text())
    assert config["id2label"] == original["id2label"] == dict(zip("012", LABELS))
    assert config["text_normalization"] == original["text_normalization"] != []
    assert config["languages"] == ["en"]
    report = json.loads((output / "training_report.json").read_text())
    assert report["dataset"]["dropped"] == {"null label": 12}  # the unlabelled posts
    assert report["dataset"]["train_rows"] + report["dataset"]["validation_rows"] == 36


@pytest.mark.parametrize("flag, value, message", [
    ("--labels", "positive,negative,neutral", "has labels negative,neutral,positive"),
    ("--text_normalization", "none", "was trained with mentions,links"),
    ("--languages", "en,fr", "was trained with en"),
])
def test_continued_training_refuses_flags_that_contradict_the_model(social_model, tmp_path,
                                                                    capsys, flag, value,
                                                                    message):
    status = train_main(["--dataset", str(reviewed(tmp_path)), "--output_dir",
                         str(tmp_path / "x"), "--base_model", str(social_model), flag, value])
    assert status == 2 and message in capsys.readouterr().err


def test_mixing_in_the_original_data_sizes_the_training_set(social_model, tmp_path):
    original = write_rows(tmp_path / "original.jsonl", [
        {"text": f"general post {index}", "label": LABELS[index % 3]} for index in range(90)])
    output = tmp_path / "mixed"
    assert train_main(["--dataset", str(reviewed(tmp_path)), "--output_dir", str(output),
                       "--base_model", str(social_model), "--epochs", "1", "--max_length", "24",
                       "--mix_dataset", str(original), "--mix_fraction", "0.4"]) == 0
    dataset = json.loads((output / "training_report.json").read_text())["dataset"]
    own = 36 - dataset["validation_rows"]
    assert dataset["mixed_in"] == {"source": str(original), "rows": round(own * 0.4 / 0.6),
                                   "fraction": 0.4}
    assert dataset["train_rows"] == own + dataset["mixed_in"]["rows"]
