"""``python -m export``: same as ``sentiment-export``."""
import sys

from export.cli import main

sys.exit(main())
