"""Fine-tuning BERT-family checkpoints for sentiment classification."""
