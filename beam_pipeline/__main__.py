"""``python -m beam_pipeline``: the same command as ``sentiment-score``."""
import sys

from beam_pipeline.run import main

sys.exit(main())
