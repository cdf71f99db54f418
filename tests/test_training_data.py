"""training.data: every file format, folders, label mapping, row validation and bad sources."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from training.data import (
    DataError,
    load_labelled_set,
    load_labelled_splits,
    model_label_names,
    parse_label_names,
)

ROWS = [("a lovely film", "positive"), ("dull and long", "negative"), ("great fun", "positive"),
        ("a mess", "negative"), ("warm , witty", "positive"), ("tedious", "negative"),
        ("smart and moving", "positive"), ("flat jokes", "negative"), ("superb cast", "positive"),
        ("painful to watch", "negative")]


def _frame(label_as_int: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["text", "label"])
    if label_as_int:
        frame["label"] = (frame["label"] == "positive").astype(int)
    return frame


def _write(frame: pd.DataFrame, path):
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
@pytest.mark.parametrize("label_as_int", [False, True])
def test_each_file_format_loads_and_holds_out_validation(tmp_path, suffix, label_as_int):
    path = _write(_frame(label_as_int), tmp_path / f"reviews{suffix}")
    splits = load_labelled_splits(path, validation_fraction=0.2)
    assert splits.train.column_names == ["text", "label"]
    assert len(splits.train) == 8 and len(splits.validation) == 2
    assert splits.label_names == (["0", "1"] if label_as_int else ["negative", "positive"])
    # stratified hold-out: one row of each class in validation
    assert sorted(splits.validation["label"]) == [0, 1]
    texts = set(splits.train["text"]) | set(splits.validation["text"])
    assert texts == {text for text, _ in ROWS}
    expected = {text: int(label == "positive") for text, label in ROWS}
    for row in list(splits.train) + list(splits.validation):
        assert row["label"] == expected[row["text"]]


def test_folder_with_train_and_validation_and_sentence_column(tmp_path):
    frame = _frame(label_as_int=True).rename(columns={"text": "sentence"})
    _write(frame.iloc[:6], tmp_path / "train.tsv")
    _write(frame.iloc[6:], tmp_path / "validation.tsv")
    splits = load_labelled_splits(tmp_path, labels=["negative", "positive"])
    assert splits.text_column == "sentence"
    assert len(splits.train) == 6 and len(splits.validation) == 4
    assert splits.label_names == ["negative", "positive"]
    assert splits.class_counts() == {"train": {"negative": 3, "positive": 3},
                                     "validation": {"negative": 2, "positive": 2}}


def test_tsv_is_read_without_quoting(tmp_path):
    path = tmp_path / "quotes.tsv"
    path.write_text('sentence\tlabel\n"odd quote start\t1\nplain " text\t0\nmore\t1\nless\t0\n')
    splits = load_labelled_splits(path, text_column="sentence", validation_fraction=0.5)
    assert "\"odd quote start" in list(splits.train["text"]) + list(splits.validation["text"])


def test_explicit_labels_align_ints_by_id_and_strings_by_name(tmp_path):
    names = ["bearish", "bullish", "neutral"]
    ints = pd.DataFrame({"text": ["down", "up", "flat", "fall", "rise", "same"],
                         "label": [0, 1, 2, 0, 1, 2]})
    strings = ints.assign(label=[names[i] for i in ints["label"]])
    for frame, name in ((ints, "ints.csv"), (strings, "strings.csv")):
        loaded = load_labelled_set(_write(frame, tmp_path / name), labels=names)
        assert loaded.label_names == names
        assert loaded.dataset["label"] == [0, 1, 2, 0, 1, 2]
        assert loaded.split == "train"


def test_model_label_names_reads_id2label(tiny_model_dir):
    assert model_label_names(tiny_model_dir) == ["negative", "positive"]


def test_labels_outside_given_names_are_rejected(tmp_path):
    path = _write(_frame(), tmp_path / "reviews.csv")
    with pytest.raises(DataError,
                       match=r"labels outside \['negative', 'neutral'\]: 'positive' \(5 rows\)"):
        load_labelled_splits(path, labels=["negative", "neutral"])
    ints = _write(_frame(label_as_int=True).assign(label=[0, 1, 2, 0, 1, 0, 1, 0, 1, 0]),
                  tmp_path / "ints.csv")
    with pytest.raises(DataError, match=r"labels outside .*: 2 \(1 rows\)"):
        load_labelled_splits(ints, labels=["negative", "positive"])


def test_unusable_rows_are_dropped_and_counted(tmp_path):
    path = tmp_path / "messy.jsonl"
    records = [{"text": text, "label": label} for text, label in ROWS]
    records += [{"text": None, "label": "positive"}, {"text": 42, "label": "negative"},
                {"text": "   ", "label": "negative"}, {"text": "no label", "label": None},
                {"text": None, "label": "negative"}]
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n")
    splits = load_labelled_splits(path, validation_fraction=0.2)
    assert splits.dropped == {"null text": 2, "non-string text": 1, "blank text": 1,
                              "null label": 1}
    assert len(splits.train) + len(splits.validation) == len(ROWS)


def test_max_train_samples_keeps_a_subset(shared_data):
    splits = load_labelled_splits(shared_data / "sst2", max_train_samples=100, seed=1)
    assert len(splits.train) == 100 and len(splits.validation) == 872
    assert splits.label_names == ["0", "1"]


def test_load_labelled_set_prefers_validation(shared_data):
    loaded = load_labelled_set(shared_data / "financial_tweets",
                               labels=["bearish", "bullish", "neutral"])
    assert loaded.split == "validation" and len(loaded.dataset) == 2388


@pytest.mark.parametrize("setup, source, message", [
    (None, "missing/reviews.csv", "no such file or folder"),
    (None, "nosuch-owner/nosuch-dataset", "Hugging Face hub is unreachable"),
    ("empty", "empty.csv", "the file is empty"),
    ("header", "header.csv", "the data set is empty"),
    ("no_text", "no_text.csv", "no text column 'text' .*choose one with --text_column"),
    ("no_label", "no_label.csv", "no label column 'label'"),
    ("one_class", "one_class.csv", "only one class"),
    ("bad_suffix", "data.xlsx", "unsupported file type .xlsx"),
    ("folder", "folder", "folder has no train file"),
    ("all_blank", "blank.csv", "no usable rows left"),
])
def test_bad_sources_raise_one_line_errors(tmp_path, monkeypatch, setup, source, message):
    monkeypatch.chdir(tmp_path)
    contents = {"empty": "", "header": "text,label\n", "no_text": "review,label\nok,1\nbad,0\n",
                "no_label": "text,stars\nok,1\nbad,0\n", "one_class": "text,label\nok,1\nfine,1\n",
                "bad_suffix": "whatever", "all_blank": 'text,label\n" ",1\n"  ",0\n'}
    if setup == "folder":
        (tmp_path / "folder").mkdir()
        (tmp_path / "folder" / "validation.csv").write_text("text,label\nok,1\n")
    elif setup:
        (tmp_path / source).write_text(contents[setup])
    with pytest.raises(DataError, match=message) as caught:
        load_labelled_splits(source)
    assert "\n" not in str(caught.value)


def test_parse_label_names():
    assert parse_label_names("negative, positive") == ["negative", "positive"]
    assert parse_label_names(None) is None
    for bad in ("negative,,positive", "a,a", "solo"):
        with pytest.raises(DataError):
            parse_label_names(bad)
