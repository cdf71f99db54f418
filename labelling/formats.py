"""The review queue's files: sampled posts written for people to label, labels read back.

Written (`write_jsonl`, `write_label_studio`):

* JSON lines, one post a line: ``id``, ``text``, the key under its column's name (when sampled
  by key), ``probabilities`` ({label: p}, 4 decimals), ``predicted``, ``sampled_because``
  (``stratum``, ``uncertain`` or ``random``), ``model_version`` and an empty ``label`` to fill
  in (``probabilities`` and ``predicted`` null for posts no model scored);
* Label Studio's import JSON: a list of tasks ``{"data": {"id", "text", <key>}, "predictions":
  [{"model_version", "score", "result": [{"from_name": "sentiment", "to_name": "text", "type":
  "choices", "value": {"choices": [predicted]}}]}]}`` (``score``: the predicted label's
  probability, which Label Studio sorts tasks by), and beside it ``<stem>.label_config.xml``,
  the labelling interface those predictions fit (`label_config`).

Read back (`read_labels`; the format is told by the first record, or given):

* ``jsonl``: the JSON lines above with ``label`` filled in; an empty label is a post not
  labelled yet;
* ``label-studio``: Label Studio's JSON export, a list of tasks with ``data`` and
  ``annotations``. A task's label is the single choice of its most recent annotation (by
  ``updated_at``, else ``created_at``, else position) that is not ``was_cancelled``: the
  ``choices`` result whose ``from_name`` is the label question, or the only ``choices`` result;
  a task with no such annotation is not labelled yet;
* ``argilla``: records exported by the Argilla 2.x SDK: ``dataset.records.to_json(path)`` (as
  ``to_list()`` gives them: ``{"id", "fields": {"text", ...}, "metadata", "suggestions",
  "responses": {question: [{"value", "user_id"[, "status"]}]}, "vectors", "_server_id"}``) or
  ``to_list(flatten=True)`` saved as JSON (fields and metadata at the top level, and
  ``<question>.responses`` / ``.responses.users`` / ``.responses.status`` lists), as a JSON list
  or as JSON lines. The label is the majority of the submitted responses to the label question
  (or to the only question answered); a response without a status, as the nested export writes
  them (Argilla 2.0 to 2.8), counts as submitted; drafts and discarded ones do not. A tie is
  left out as ``annotators disagree``.

Posts keep their other fields (our key column, Label Studio's other ``data`` fields, Argilla's
metadata, or a flattened record's other scalar columns) as they were.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import posixpath
from collections.abc import Iterable, Sequence
from typing import Any, Optional
from xml.sax.saxutils import quoteattr

from beam_pipeline.errors import first_line
from beam_pipeline.files import open_file, write_atomically
from beam_pipeline.records import ID
from labelling.sampling import Sampled

JSONL, LABEL_STUDIO, ARGILLA = "jsonl", "label-studio", "argilla"
WRITE_FORMATS = (JSONL, LABEL_STUDIO)
READ_FORMATS = (JSONL, LABEL_STUDIO, ARGILLA)
AUTO = "auto"
TEXT, LABEL = "text", "label"
#: the labelling question: Label Studio's Choices name (and ``from_name``), Argilla's question
LABEL_QUESTION = "sentiment"
#: the fields of our JSON lines other than the key
SAMPLE_FIELDS = (ID, TEXT, "probabilities", "predicted", "sampled_because", "model_version",
                 LABEL)
SUBMITTED = "submitted"
PROBABILITY_DECIMALS = 4
# why a record read back gives no label
NOT_LABELLED = "not labelled yet"
DISAGREE = "annotators disagree"
NOT_ONE_CHOICE = "not exactly one choice"
NO_TEXT = "no text"


class FormatError(ValueError):
    """A file cannot be read (not JSON, an unknown shape) or written; the message is one
    line."""


# --------------------------------------------------------------------------- writing


def label_config_path(output: str) -> str:
    """Where the Label Studio labelling config goes: ``<output stem>.label_config.xml``."""
    return f"{posixpath.splitext(output)[0]}.label_config.xml"


def sample_record(sampled: Sampled, key_column: Optional[str]) -> dict[str, Any]:
    """One post of the JSON-lines queue."""
    candidate = sampled.candidate
    record = {ID: candidate.id, TEXT: candidate.text}
    if key_column is not None:
        record[key_column] = candidate.key
    return {**record,
            "probabilities": _rounded(candidate.probabilities) if candidate.probabilities
            else None,
            "predicted": candidate.predicted, "sampled_because": sampled.because,
            "model_version": candidate.model_version, LABEL: ""}


def label_studio_task(sampled: Sampled, key_column: Optional[str]) -> dict[str, Any]:
    """One Label Studio task, the model's prediction as a pre-annotation (none without one)."""
    candidate = sampled.candidate
    data = {ID: candidate.id, TEXT: candidate.text}
    if key_column is not None:
        data[key_column] = candidate.key
    if not candidate.probabilities:
        return {"data": data}
    choice = {"from_name": LABEL_QUESTION, "to_name": TEXT, "type": "choices",
              "value": {"choices": [candidate.predicted]}}
    return {"data": data, "predictions": [{
        "model_version": candidate.model_version,
        "score": round(candidate.confidence, PROBABILITY_DECIMALS), "result": [choice]}]}


def label_config(labels: Sequence[str]) -> str:
    """Label Studio's labelling config for the tasks: the text and one single choice among
    ``labels``."""
    choices = "".join(f"    <Choice value={quoteattr(label)}/>\n" for label in labels)
    return (f'<View>\n  <Text name="{TEXT}" value="${TEXT}"/>\n'
            f'  <Choices name="{LABEL_QUESTION}" toName="{TEXT}" choice="single">\n'
            f"{choices}  </Choices>\n</View>\n")


def write_jsonl(path: str, records: Iterable[dict[str, Any]]) -> str:
    """Writes ``records`` as JSON lines (UTF-8, atomically); returns ``path``."""
    return _write(path, b"".join(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
                                 for record in records))


def write_sample_jsonl(path: str, sample: Sequence[Sampled], key_column: Optional[str]) -> str:
    """Writes the sampled posts as the JSON-lines queue; returns ``path``."""
    return write_jsonl(path, (sample_record(sampled, key_column) for sampled in sample))


def write_label_studio(path: str, sample: Sequence[Sampled], key_column: Optional[str],
                       labels: Sequence[str]) -> str:
    """Writes the tasks to ``path`` and the labelling config beside it; returns the config's
    path."""
    tasks = [label_studio_task(sampled, key_column) for sampled in sample]
    _write(path, json.dumps(tasks, ensure_ascii=False, indent=1).encode("utf-8"))
    return _write(label_config_path(path), label_config(labels).encode("utf-8"))


def _write(path: str, content: bytes) -> str:
    try:
        return write_atomically(path, lambda handle: handle.write(content))
    except OSError as error:  # Beam's BeamIOError is one
        raise FormatError(f"cannot write {path}: {first_line(error)}") from error


def _rounded(probabilities: dict[str, float]) -> dict[str, float]:
    return {label: round(value, PROBABILITY_DECIMALS) for label, value in probabilities.items()}


# --------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True)
class LabelledPost:
    """A post with the label people gave it, and its other fields."""

    id: Optional[str]
    text: str
    label: Any
    fields: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """The line ``sentiment-labels`` writes (what ``sentiment-train --dataset`` reads)."""
        return {**self.fields, ID: self.id, TEXT: self.text, LABEL: self.label}


@dataclasses.dataclass
class Labels:
    """What a labelled file gave: its format, the labelled posts, the records left out by
    reason, and the model's labels where the file names them (our JSON lines)."""

    format: str
    records: int
    posts: list[LabelledPost]
    skipped: collections.Counter
    model_labels: Optional[list[str]]


def read_labels(path: str, format: str = AUTO,
                label_question: str = LABEL_QUESTION) -> Labels:
    """The labelled posts of ``path`` in ``format`` (`READ_FORMATS`, or `AUTO`: told by the
    first record). Raises `FormatError`."""
    if format not in (AUTO, *READ_FORMATS):
        raise FormatError(f"format must be one of {(AUTO, *READ_FORMATS)}, not {format!r}")
    records = _read_records(path)
    chosen = detect_format(path, records[0]) if format == AUTO else format
    read = {JSONL: _from_sample, LABEL_STUDIO: _from_label_studio, ARGILLA: _from_argilla}[chosen]
    labels = Labels(chosen, len(records), [], collections.Counter(), None)
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise FormatError(f"{path}: record {number} is not a JSON object")
        post, reason = read(record, label_question)
        if post is None:
            labels.skipped[reason] += 1
        else:
            labels.posts.append(post)
        if chosen == JSONL and labels.model_labels is None and record.get("probabilities"):
            labels.model_labels = list(record["probabilities"])
    return labels


def detect_format(path: str, record: Any) -> str:
    """The format a record is in: Label Studio tasks have ``data``, Argilla records ``fields``
    and ``responses`` (nested) or ``_server_id`` and ``<question>.responses`` keys (flattened),
    our JSON lines ``label``."""
    if isinstance(record, dict):
        if isinstance(record.get("data"), dict):
            return LABEL_STUDIO
        if ("fields" in record and "responses" in record or "_server_id" in record
                or any(name.endswith(".responses") for name in record)):
            return ARGILLA
        if LABEL in record:
            return JSONL
    shown = sorted(record)[:10] if isinstance(record, dict) else type(record).__name__
    raise FormatError(f"{path}: cannot tell the format from the first record ({shown}); "
                      f"expected sentiment-sample's JSON lines, a Label Studio JSON export or "
                      f"Argilla records; pass --format")


def _read_records(path: str) -> list[Any]:
    """The records of a JSON list, a single JSON object, or JSON lines."""
    try:
        with open_file(path) as handle:
            content = handle.read()
    except OSError as error:
        raise FormatError(f"cannot read {path}: {first_line(error)}") from error
    try:
        loaded = json.loads(content)
    except ValueError:
        loaded = None
        records = []
        for number, line in enumerate(content.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError as error:  # also UnicodeDecodeError
                    raise FormatError(f"{path}:{number}: not JSON ({first_line(error)})") from None
    else:
        records = loaded if isinstance(loaded, list) else [loaded]
    if not records:
        raise FormatError(f"{path}: no records")
    return records


def _post(post_id: Any, text: Any, label: Any,
          fields: dict[str, Any]) -> tuple[Optional[LabelledPost], Optional[str]]:
    if not isinstance(text, str) or not text.strip():
        return None, NO_TEXT
    if label is None or isinstance(label, str) and not label.strip():
        return None, NOT_LABELLED
    label = label.strip() if isinstance(label, str) else label
    return LabelledPost(None if post_id is None else str(post_id), text, label, fields), None


def _from_sample(record: dict[str, Any], _: str):
    fields = {name: value for name, value in record.items() if name not in SAMPLE_FIELDS}
    return _post(record.get(ID), record.get(TEXT), record.get(LABEL), fields)


def _from_label_studio(task: dict[str, Any], label_question: str):
    data = task.get("data") or {}
    fields = {name: value for name, value in data.items() if name not in (ID, TEXT)}
    post_id = data.get(ID, task.get(ID))
    annotations = [(index, annotation)
                   for index, annotation in enumerate(task.get("annotations") or [])
                   if not annotation.get("was_cancelled")]
    if not annotations:
        return _post(post_id, data.get(TEXT), None, fields)
    _, latest = max(annotations, key=lambda pair: (
        pair[1].get("updated_at") or pair[1].get("created_at") or "", pair[0]))
    choices = [result for result in latest.get("result") or []
               if result.get("type") == "choices"]
    named = [result for result in choices if result.get("from_name") == label_question]
    chosen = named or (choices if len(choices) == 1 else [])
    if not chosen:
        return _post(post_id, data.get(TEXT), None, fields)
    values = (chosen[0].get("value") or {}).get("choices") or []
    if len(values) != 1:
        return None, NOT_ONE_CHOICE
    return _post(post_id, data.get(TEXT), values[0], fields)


def _from_argilla(record: dict[str, Any], label_question: str):
    if isinstance(record.get("fields"), dict):
        fields = record["fields"]
        responses = record.get("responses") or {}
        question = _question(label_question, list(responses))
        answers = [(answer.get("value"), answer.get("status"))
                   for answer in (responses.get(question) or [])] if question else []
        kept = dict(record.get("metadata") or {})
        text = fields.get(TEXT, _only_text(fields))
    else:
        questions = [name.removesuffix(".responses") for name in record
                     if name.endswith(".responses")]
        question = _question(label_question, questions)
        values = (record.get(f"{question}.responses") or []) if question else []
        statuses = record.get(f"{question}.responses.status") or [None] * len(values)
        answers = list(zip(values, statuses))
        kept = {name: value for name, value in record.items()
                if "." not in name and name not in (ID, "_server_id", TEXT)
                and isinstance(value, (str, int, float, bool))}
        text = record.get(TEXT)
    submitted = [_single(value) for value, status in answers if status in (None, SUBMITTED)]
    ranked = collections.Counter(value for value in submitted if value is not None).most_common(2)
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        return None, DISAGREE
    return _post(record.get(ID), text, ranked[0][0] if ranked else None, kept)


def _question(label_question: str, questions: Sequence[str]) -> Optional[str]:
    """The label question, else the only question answered."""
    if label_question in questions:
        return label_question
    return questions[0] if len(questions) == 1 else None


def _only_text(fields: dict[str, Any]) -> Optional[str]:
    texts = [value for value in fields.values() if isinstance(value, str)]
    return texts[0] if len(texts) == 1 else None


def _single(value: Any) -> Any:
    """A response's one label (a multi-label response counts only with one label)."""
    if isinstance(value, list):
        return value[0] if len(value) == 1 else None
    return value
