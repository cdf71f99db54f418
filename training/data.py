"""Loading labelled text from the Hugging Face hub or local files, with validation and label
mapping.

A *source* is one of:

* a hub id loaded with `datasets.load_dataset`: ``zeroshot/twitter-financial-news-sentiment``,
  ``glue/sst2`` (GLUE task ``sst2``), or ``owner/name:config`` for any other config;
* a local file: ``.csv``, ``.tsv`` (read with ``quoting=csv.QUOTE_NONE``), ``.parquet``,
  ``.jsonl`` / ``.json`` (JSON lines);
* a local folder holding ``train.<ext>`` and optionally ``validation.<ext>``.

Labels may be integers (class ids) or strings (label names). Integer labels index into
``labels`` (or into the hub's ``ClassLabel`` names); string labels are matched by name. Rows with a
null, non-string or blank text, or a null label, are dropped and counted by reason. Everything
that makes a source unusable raises `DataError` with one line that says what is wrong.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import numbers
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TEXT_COLUMN = "text"
LABEL_COLUMN = "label"
#: Text columns tried, in order, when the default ``text`` column is absent (SST-2 uses
#: ``sentence``).
TEXT_COLUMN_FALLBACKS = ("sentence",)
FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".json")
_INT_LIKE = re.compile(r"^[+-]?\d+$")
_HUB_ALIASES = {"glue": "nyu-mll/glue"}


class DataError(ValueError):
    """A data source cannot be used; the message is one line meant for the user."""


@dataclasses.dataclass
class LabelledSplits:
    """Train and validation sets with columns ``text`` (str) and ``label`` (int class id)."""

    train: Any  # datasets.Dataset
    validation: Any  # datasets.Dataset
    label_names: list[str]
    dropped: dict[str, int]
    text_column: str = TEXT_COLUMN
    mixed_in: dict[str, Any] | None = None  # train rows added from another source (`mix_in`)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Rows per label name in each split."""
        return {split: _count_labels(dataset["label"], self.label_names)
                for split, dataset in (("train", self.train), ("validation", self.validation))}


@dataclasses.dataclass
class LabelledSet:
    """One labelled evaluation set (columns ``text`` and ``label``) and its provenance."""

    dataset: Any  # datasets.Dataset
    label_names: list[str]
    dropped: dict[str, int]
    split: str


def _count_labels(label_ids: Sequence[int], label_names: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(label_names, 0)
    for label_id in label_ids:
        counts[label_names[label_id]] += 1
    return counts


def parse_label_names(text: str | None) -> list[str] | None:
    """``"negative,positive"`` -> ``["negative", "positive"]``; rejects blanks and duplicates."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise DataError(f"--labels {text!r}: label names must be non-empty, separated by commas")
    if len(set(names)) != len(names):
        raise DataError(f"--labels {text!r}: label names must be unique")
    if len(names) < 2:
        raise DataError(f"--labels {text!r}: at least two labels are needed")
    return names


def model_label_names(model_dir: str | os.PathLike) -> list[str]:
    """Label names by class id from a saved model's ``config.json`` (``id2label``)."""
    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise DataError(f"{config_path}: not found; is {str(model_dir)!r} a model folder "
                        "written by sentiment-train?")
    id2label = json.loads(config_path.read_text(encoding="utf-8")).get("id2label") or {}
    if not id2label:
        raise DataError(f"{config_path}: has no id2label; cannot tell which class is which")
    return [str(id2label[key]) for key in sorted(id2label, key=int)]


# --------------------------------------------------------------------------- reading sources


def _read_file(path: Path) -> pd.DataFrame:
    """Reads one local table; every text cell stays a string, only empty cells become null."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            options = {"sep": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {}
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], **options)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=True, dtype=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: cannot read it as {suffix[1:]} ({reason})") from None
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; "
                    f"use one of {', '.join(FILE_SUFFIXES)}")


def _find_split_file(folder: Path, split: str) -> Path | None:
    matches = [folder / f"{split}{suffix}" for suffix in FILE_SUFFIXES
               if (folder / f"{split}{suffix}").is_file()]
    if len(matches) > 1:
        raise DataError(f"{folder}: several {split} files ({', '.join(p.name for p in matches)}); "
                        "keep one")
    return matches[0] if matches else None


def _looks_local(source: str) -> bool:
    return source.startswith((".", "/", "~")) or Path(source).suffix.lower() in FILE_SUFFIXES


def _read_hub(source: str) -> tuple[dict[str, pd.DataFrame], dict[str, list[str]]]:
    """Loads a hub data set; returns its splits and the ``ClassLabel`` names per column."""
    import datasets

    name, _, config = source.partition(":")
    owner, _, rest = name.partition("/")
    if owner in _HUB_ALIASES and rest and "/" not in rest and not config:
        name, config = _HUB_ALIASES[owner], rest
    try:
        loaded = datasets.load_dataset(name, config or None)
    except ConnectionError:
        raise DataError(f"--dataset {source!r}: the Hugging Face hub is unreachable (offline or no "
                        "network) and the data set is not cached; pass a local file or folder "
                        "instead (csv, tsv, parquet, jsonl), e.g. --dataset ../shared/data/sst2"
                        ) from None
    except datasets.exceptions.DatasetNotFoundError:
        raise DataError(f"--dataset {source!r}: no such file or folder here, and no such data set "
                        "on the Hugging Face hub") from None
    except (ValueError, FileNotFoundError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise DataError(f"--dataset {source!r}: cannot load it from the hub "
                        f"({first_line})") from None
    class_names = {column: feature.names for split in loaded.values()
                   for column, feature in split.features.items()
                   if isinstance(feature, datasets.ClassLabel)}
    return {split: loaded[split].to_pandas() for split in loaded}, class_names


def read_source(source: str | os.PathLike) -> tuple[dict[str, pd.DataFrame], dict[str, list[str]]]:
    """Reads every split of a source as DataFrames, plus hub ``ClassLabel`` names by column."""
    source = str(source)
    path = Path(source).expanduser()
    if path.is_dir():
        train_file = _find_split_file(path, "train")
        if train_file is None:
            raise DataError(f"{path}: folder has no train file (expected train.csv, train.tsv, "
                            "train.parquet or train.jsonl)")
        splits = {"train": _read_file(train_file)}
        validation_file = _find_split_file(path, "validation")
        if validation_file is not None:
            splits["validation"] = _read_file(validation_file)
        return splits, {}
    if path.is_file():
        return {"train": _read_file(path)}, {}
    if _looks_local(source):
        raise DataError(f"{source}: no such file or folder")
    return _read_hub(source)


# --------------------------------------------------------------------------- cleaning, labels


def _resolve_text_column(frame: pd.DataFrame, text_column: str, where: str) -> str:
    if text_column in frame.columns:
        return text_column
    if text_column == TEXT_COLUMN:
        for fallback in TEXT_COLUMN_FALLBACKS:
            if fallback in frame.columns:
                return fallback
    raise DataError(f"{where}: no text column {text_column!r} (columns: "
                    f"{', '.join(map(str, frame.columns))}); choose one with --text_column")


def _as_label(value: Any) -> int | str:
    """A raw label as a class id (int) or a label name (str)."""
    if isinstance(value, str):
        value = value.strip()
        return int(value) if _INT_LIKE.match(value) else value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(value)
    return str(value)


def _clean(frame: pd.DataFrame, text_column: str, label_column: str,
           dropped: dict[str, int]) -> tuple[list[str], list[int | str]]:
    """Drops unusable rows (counting reasons) and returns texts and raw labels."""
    texts, labels = [], []
    for text, label in zip(frame[text_column].tolist(), frame[label_column].tolist()):
        reason = None
        if text is None or isinstance(text, float) and math.isnan(text):
            reason = "null text"
        elif not isinstance(text, str):
            reason = "non-string text"
        elif not text.strip():
            reason = "blank text"
        elif (label is None or isinstance(label, float) and math.isnan(label)
              or isinstance(label, str) and not label.strip()):
            reason = "null label"  # includes an empty label: a post nobody labelled yet
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        texts.append(text)
        labels.append(_as_label(label))
    return texts, labels


def _label_names_for(raw_labels: list[int | str], hub_names: list[str] | None,
                     where: str) -> list[str]:
    """Label names when none were given: hub ClassLabel names, sorted strings, or ids as names."""
    if hub_names:
        return list(hub_names)
    if all(isinstance(label, int) for label in raw_labels):
        if min(raw_labels) < 0:
            raise DataError(f"{where}: negative label {min(raw_labels)}; class ids start at 0")
        return [str(i) for i in range(max(raw_labels) + 1)]
    return sorted({str(label) for label in raw_labels})


def _to_ids(raw_labels: list[int | str], label_names: list[str], where: str) -> list[int]:
    """Maps raw labels to class ids; ints are ids, strings are names. Raises on unknown labels."""
    index = {name: i for i, name in enumerate(label_names)}
    ids, unknown = [], {}
    for label in raw_labels:
        if isinstance(label, int):
            class_id = label if 0 <= label < len(label_names) else None
            if class_id is None and str(label) in index:
                class_id = index[str(label)]
        else:
            class_id = index.get(label)
        if class_id is None:
            unknown[label] = unknown.get(label, 0) + 1
        else:
            ids.append(class_id)
    if unknown:
        shown = ", ".join(f"{label!r} ({count} rows)" for label, count in list(unknown.items())[:5])
        raise DataError(f"{where}: labels outside {label_names}: {shown}; pass the full list with "
                        "--labels (names in class-id order)")
    return ids


def _to_dataset(texts: list[str], label_ids: list[int], label_names: list[str]):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=label_names)})
    return datasets.Dataset.from_dict({"text": texts, "label": label_ids}, features=features)


def _prepare(splits: dict[str, pd.DataFrame], class_names: dict[str, list[str]], source: str,
             text_column: str, label_column: str, labels: Sequence[str] | None):
    """Cleans every split and maps labels; returns {split: (texts, ids)}, names, drops, column."""
    dropped: dict[str, int] = {}
    cleaned, resolved_text_column = {}, text_column
    for split, frame in splits.items():
        where = f"{source} [{split}]"
        resolved_text_column = _resolve_text_column(frame, text_column, where)
        if label_column not in frame.columns:
            raise DataError(f"{where}: no label column {label_column!r} (columns: "
                            f"{', '.join(map(str, frame.columns))}); choose one with "
                            "--label_column")
        if frame.empty:
            raise DataError(f"{where}: the data set is empty (no rows)")
        texts, raw_labels = _clean(frame, resolved_text_column, label_column, dropped)
        if not texts:
            raise DataError(f"{where}: no usable rows left after dropping "
                            f"{', '.join(f'{n} with {r}' for r, n in dropped.items())}")
        cleaned[split] = (texts, raw_labels)
    if labels is not None:
        label_names = list(labels)
    else:
        all_labels = [label for _, raw in cleaned.values() for label in raw]
        label_names = _label_names_for(all_labels, class_names.get(label_column), source)
    if len(label_names) < 2:
        raise DataError(f"{source}: only one class ({label_names[0]!r}); "
                        "a classifier needs at least two")
    prepared = {split: (texts, _to_ids(raw, label_names, f"{source} [{split}]"))
                for split, (texts, raw) in cleaned.items()}
    return prepared, label_names, dropped, resolved_text_column


def load_labelled_splits(source: str | os.PathLike, *, text_column: str = TEXT_COLUMN,
                         label_column: str = LABEL_COLUMN, labels: Sequence[str] | None = None,
                         validation_fraction: float = 0.1, seed: int = 42,
                         max_train_samples: int | None = None) -> LabelledSplits:
    """Loads a source as train/validation sets with integer labels and their names.

    ``labels``: label names in class-id order (e.g. a model's ``id2label``), to align the data
    with; rows whose label is not among them raise `DataError`. Without it, names come from the
    hub's ``ClassLabel``, else the sorted string labels, else the integer ids themselves.
    When the source has no validation split, a stratified ``validation_fraction`` of train is held
    out. ``max_train_samples`` keeps a random subset of train (after the hold-out).
    If ``text_column`` is the default ``text`` and absent, ``sentence`` is used when present.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < validation_fraction < 1:
        raise DataError(f"--validation_fraction {validation_fraction}: must be between 0 and 1")
    if max_train_samples is not None and max_train_samples < 1:
        raise DataError(f"--max_train_samples {max_train_samples}: must be at least 1")
    splits, class_names = read_source(source)
    splits = {split: frame for split, frame in splits.items() if split in ("train", "validation")}
    if "train" not in splits:
        raise DataError(f"{source}: has no train split")
    prepared, label_names, dropped, used_text_column = _prepare(
        splits, class_names, str(source), text_column, label_column, labels)
    train_texts, train_ids = prepared["train"]
    if len(set(train_ids)) < 2:
        raise DataError(f"{source}: the training data holds only one class "
                        f"({label_names[train_ids[0]]!r}); a classifier needs at least two")
    if "validation" in prepared:
        validation_texts, validation_ids = prepared["validation"]
    else:
        if len(train_texts) < 2:
            raise DataError(f"{source}: too few rows ({len(train_texts)}) to hold out a "
                            "validation set")
        counts = pd.Series(train_ids).value_counts()
        held_out = int(np.ceil(validation_fraction * len(train_ids)))
        can_stratify = counts.min() >= 2 and len(counts) <= held_out <= len(train_ids) - len(counts)
        stratify = train_ids if can_stratify else None
        train_texts, validation_texts, train_ids, validation_ids = train_test_split(
            train_texts, train_ids, test_size=validation_fraction, random_state=seed,
            stratify=stratify)
    train = _to_dataset(train_texts, train_ids, label_names)
    if max_train_samples is not None and max_train_samples < len(train):
        train = train.shuffle(seed=seed).select(range(max_train_samples))
    return LabelledSplits(train=train, validation=_to_dataset(validation_texts, validation_ids,
                                                              label_names),
                          label_names=label_names, dropped=dropped, text_column=used_text_column)


def mix_in(splits: LabelledSplits, source: str | os.PathLike, fraction: float | None, *,
           seed: int = 42, text_column: str = TEXT_COLUMN,
           label_column: str = LABEL_COLUMN) -> LabelledSplits:
    """``splits`` with train rows of ``source`` (aligned to the same labels) added, so that they
    make up ``fraction`` (default 0.5) of the training set; validation is unchanged."""
    from datasets import concatenate_datasets

    fraction = 0.5 if fraction is None else fraction
    if not 0 <= fraction < 1:
        raise DataError(f"--mix_fraction {fraction}: must be in [0, 1)")
    mixed = load_labelled_splits(source, text_column=text_column, label_column=label_column,
                                 labels=splits.label_names, seed=seed).train
    wanted = round(len(splits.train) * fraction / (1 - fraction))
    if wanted > len(mixed):
        raise DataError(f"--mix_dataset {source}: {len(mixed)} training rows, fewer than the "
                        f"{wanted} that --mix_fraction {fraction} asks for")
    extra = mixed.shuffle(seed=seed).select(range(wanted))
    return dataclasses.replace(
        splits, train=concatenate_datasets([splits.train, extra]).shuffle(seed=seed),
        mixed_in={"source": str(source), "rows": wanted, "fraction": fraction})


def load_labelled_set(source: str | os.PathLike, *, text_column: str = TEXT_COLUMN,
                      label_column: str = LABEL_COLUMN, labels: Sequence[str] | None = None,
                      split: str | None = None) -> LabelledSet:
    """Loads one whole labelled split for evaluation (e.g. ``sentiment-eval``, export parity).

    ``split`` defaults to ``validation`` when the source has one, else ``train`` (for a single
    file: all of its rows). Same label rules as `load_labelled_splits`.
    """
    splits, class_names = read_source(source)
    chosen = split or ("validation" if "validation" in splits else "train")
    if chosen not in splits:
        raise DataError(f"{source}: no split {chosen!r} (it has {', '.join(sorted(splits))})")
    prepared, label_names, dropped, _ = _prepare({chosen: splits[chosen]}, class_names,
                                                 str(source), text_column, label_column, labels)
    texts, ids = prepared[chosen]
    return LabelledSet(dataset=_to_dataset(texts, ids, label_names), label_names=label_names,
                       dropped=dropped, split=chosen)
