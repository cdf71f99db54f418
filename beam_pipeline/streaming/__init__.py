"""Streaming scoring over Pub/Sub: flags (`options`), messages (`messages`), the model kept loaded
and hot-swapped (`model_watch`), windows and alerts (`monitoring`), the pipeline (`pipeline`), the
runner loop (`runner`), and a local Pub/Sub for tests and demos (`local_pubsub`)."""
