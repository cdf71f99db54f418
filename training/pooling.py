"""Which sentence representation the classifier head reads (``--pooling``).

``cls``: the architecture's own sequence classifier (for BERT: the ``[CLS]`` vector through the
pretrained pooler), right for checkpoints pretrained with a ``[CLS]`` objective such as
``bert-base-uncased``.

``mean``: `training.modeling.BertMeanPoolingForSequenceClassification`, the attention-masked
mean of the last hidden states under a new linear head. Sentence-transformers checkpoints (the embedded all-MiniLM-L6-v2
among them) were trained to represent a sentence by that mean; their ``[CLS]`` vector and pooler
were never trained for it.

``auto`` (the default) picks what the checkpoint declares: ``mean`` for a BERT checkpoint whose
sentence-transformers pooling config (``1_Pooling/config.json``) says mean tokens, ``cls``
otherwise.

A model trained with mean pooling keeps ``model_type`` ``bert`` (so Optimum exports and optimises
it as BERT) and records ``classifier_pooling: "mean"`` in its config, which
`training.modeling.load_sequence_classifier` reads. Plain ``AutoModelForSequenceClassification`` would build the ``[CLS]`` head instead
(and warn that the pooler is newly initialised), so load such folders through this module, or
score their ONNX bundle.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

POOLING_MODES = ("auto", "cls", "mean")
POOLING_CONFIG_KEY = "classifier_pooling"
SENTENCE_TRANSFORMERS_POOLING = Path("1_Pooling") / "config.json"
#: For model cards: what a trained model's head reads, and how to load it.
POOLING_DESCRIPTIONS = {
    "cls": "the [CLS] vector through the model's pooler (the architecture's own sequence "
           "classifier; `AutoModelForSequenceClassification` loads it)",
    "mean": "the attention-masked mean of the last hidden states "
            "(`training.modeling.BertMeanPoolingForSequenceClassification`): load it with "
            "`training.modeling.load_sequence_classifier`, or score the exported ONNX bundle; "
            "plain `AutoModelForSequenceClassification` would build a [CLS] head instead",
}


def declared_pooling(name_or_path: str) -> str:
    """``mean`` when the checkpoint's sentence-transformers pooling config (in a local folder, or
    on the hub for a hub name) says mean tokens and nothing else; ``cls`` otherwise, and when
    there is no such config."""
    path = Path(name_or_path) / SENTENCE_TRANSFORMERS_POOLING
    try:
        if not Path(name_or_path).exists():
            from huggingface_hub import hf_hub_download
            path = Path(hf_hub_download(name_or_path, SENTENCE_TRANSFORMERS_POOLING.as_posix()))
        pooling = json.loads(path.read_text())
    except (OSError, ValueError):  # no such file, hub unreachable, not JSON
        return "cls"
    modes = {key for key, value in pooling.items() if key.startswith("pooling_mode_") and value}
    return "mean" if modes == {"pooling_mode_mean_tokens"} else "cls"


def resolve_pooling(name_or_path: str, config: Any, pooling: str) -> str:
    """The pooling of a classifier loaded from ``name_or_path`` (whose config is ``config``).

    ``auto``: the one a trained model records, else `declared_pooling`; ``cls`` for any
    non-BERT checkpoint. An explicit ``cls`` or ``mean`` is kept; ValueError for ``mean`` on a
    non-BERT checkpoint or an unknown mode.
    """
    is_bert = config.model_type == "bert"
    if pooling == "auto":
        chosen = getattr(config, POOLING_CONFIG_KEY, None) or declared_pooling(name_or_path)
        return chosen if is_bert else "cls"
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling {pooling!r} unknown; choose from {list(POOLING_MODES)}")
    if pooling == "mean" and not is_bert:
        raise ValueError(f"mean pooling is built for BERT checkpoints; {name_or_path!r} has "
                         f"model_type {config.model_type!r} (use --pooling cls)")
    return pooling
