"""``python -m beam_pipeline``: the same command as ``sentiment-score``."""
from beam_pipeline.cli import console_main

console_main()
