"""The scoring path needs neither PyTorch nor Transformers: `sentiment-score` runs in a process
where importing either fails, as on a remote worker that installed only the base package."""
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq

BLOCKED_SCORING_RUN = textwrap.dedent("""
    import sys
    sys.modules["torch"] = None          # any `import torch` now raises ImportError
    sys.modules["transformers"] = None
    from beam_pipeline.cli import main
    status = main(sys.argv[1:])
    leaked = [name for name in ("torch", "transformers") if sys.modules.get(name) is not None]
    print("leaked imports:", leaked, flush=True)
    sys.stderr.flush()
    # os._exit skips interpreter teardown, where a native thread of the runner once aborted the
    # process (SIGABRT) after the job had finished; the outputs are checked by the test below.
    import os
    os._exit(status or (3 if leaked else 0))
""")


def test_sentiment_score_runs_with_torch_and_transformers_unimportable(tiny_bundle_dir, tmp_path):
    texts = ["a charming , funny film .", "dull and slow .", "", None]
    pq.write_table(pa.table({"text": texts}), tmp_path / "reviews.parquet")
    completed = subprocess.run(
        [sys.executable, "-c", BLOCKED_SCORING_RUN, "--input", str(tmp_path / "reviews.parquet"),
         "--output", str(tmp_path / "out" / "scored"), "--model", str(tiny_bundle_dir)],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "leaked imports: []" in completed.stdout
    scored = pa.concat_tables(pq.read_table(f) for f in (tmp_path / "out").glob("scored-part-*"))
    dead = pa.concat_tables(pq.read_table(f)
                            for f in (tmp_path / "out").glob("scored-dead-letter-part-*"))
    assert scored.num_rows == 2 and dead.num_rows == 2
