"""``python -m beam_pipeline``: the same command as ``sentiment-score``."""
from beam_pipeline.run import console_main

console_main()
