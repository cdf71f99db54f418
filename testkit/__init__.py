"""What the tests and the benchmarks both build on: tiny models and tampered bundles (`models`),
input dumps good and hostile (`dumps`), reading outputs back (`outputs`), Pub/Sub streams and
messages (`streams`), killing Dask workers (`dask_faults`), interrupted training (`training`).

Importing it sets no environment variable and starts nothing; ``SHARED_DATA`` is the data
folder beside the checkout (``../shared/data``).
"""
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
