"""Integration: the real embedded MiniLM learns SST-2 sentiment from ~1,000 rows."""
from __future__ import annotations

import json

import pytest

from training.cli import train_main


@pytest.mark.integration
@pytest.mark.timeout(1800)  # about 3 minutes on 2 idle cores; far longer when they are shared
def test_minilm_fine_tuned_on_1000_sst2_rows_beats_chance_by_far(tmp_path, shared_data):
    output_dir = tmp_path / "minilm"
    # default --base_model: the embedded MiniLM; 1,000 rows x 3 epochs / 16 = 189 steps
    assert train_main(["--dataset", str(shared_data / "sst2"), "--output_dir", str(output_dir),
                       "--labels", "negative,positive", "--max_train_samples", "1000",
                       "--epochs", "3", "--batch_size", "16", "--learning_rate", "1e-4",
                       "--max_length", "64"]) == 0
    report = json.loads((output_dir / "training_report.json").read_text())
    assert report["training"]["global_step"] == 189
    assert report["final_metrics"]["accuracy"] >= 0.75
