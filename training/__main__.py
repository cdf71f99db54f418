"""``python -m training`` is ``sentiment-train``."""
import sys

from training.cli import train_main

sys.exit(train_main())
