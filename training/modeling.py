"""`BertMeanPoolingForSequenceClassification`, the ``mean`` head of `training.pooling`, and
`load_sequence_classifier`, which builds the head a checkpoint or trained model needs."""
from __future__ import annotations

from typing import Sequence

import torch
from transformers import (AutoConfig, AutoModelForSequenceClassification, BertModel,
                          BertPreTrainedModel)
from transformers.modeling_outputs import SequenceClassifierOutput

from training.pooling import POOLING_CONFIG_KEY, resolve_pooling


class BertMeanPoolingForSequenceClassification(BertPreTrainedModel):
    """A BERT encoder, the attention-masked mean of its last hidden states, dropout, a linear
    head. Same inputs and ``logits`` output as `transformers.BertForSequenceClassification`."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout
        self.dropout = torch.nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                **kwargs) -> SequenceClassifierOutput:
        """Logits (and cross-entropy loss when ``labels`` are given) for a batch."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        logits = self.classifier(self.dropout(pooled))
        loss = (torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def load_sequence_classifier(name_or_path: str, pooling: str = "auto",
                             labels: Sequence[str] | None = None, **load_kwargs):
    """A sequence classifier from a hub name or folder, with the head `resolve_pooling` picks.

    ``labels`` (names in class-id order) set the number of outputs and ``id2label``;
    ``load_kwargs`` go to ``from_pretrained`` (``ignore_mismatched_sizes``, ``use_safetensors``).
    """
    label_config = ({} if labels is None else
                    {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                     "label2id": {name: i for i, name in enumerate(labels)}})
    config = AutoConfig.from_pretrained(name_or_path, **label_config)
    pooling = resolve_pooling(name_or_path, config, pooling)
    setattr(config, POOLING_CONFIG_KEY, pooling)  # saved with the model, read when it is loaded
    if pooling == "cls":
        return AutoModelForSequenceClassification.from_pretrained(name_or_path, config=config,
                                                                  **load_kwargs)
    return BertMeanPoolingForSequenceClassification.from_pretrained(name_or_path, config=config,
                                                                    **load_kwargs)
