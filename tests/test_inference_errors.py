"""An error ONNX Runtime raises for one batch loses no row: a real fault, not a mock.

The bundle's BERT has 16 position embeddings; scored with ``--max_length 64``, every ONNX
Runtime call holding a row longer than 16 tokens fails (the embeddings' Add cannot broadcast),
while calls holding only short rows score. `ScoringModel.predict_rows` bisects failing
sub-batches, so short rows are scored and only long rows are dead-lettered."""
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipeline.cli import main
from beam_pipeline.model import InferenceFailure, load_scoring_model
from testkit.models import SHORT_POSITIONS, texts_of_token_lengths

LENGTHS = [3, 5, 40, 8, 12, 16, 17, 4, 64, 30, 6, 10, 90, 7, 9, 14, 25, 11, 13, 15]


@pytest.fixture(scope="module")
def texts(short_position_bundle):
    return texts_of_token_lengths((short_position_bundle / "tokenizer.json").read_text(), LENGTHS)


@pytest.mark.parametrize("long_text", ["truncate", "chunk"])
def test_predict_rows_isolates_the_failing_rows_of_a_batch(short_position_bundle, texts,
                                                           long_text):
    """With ``chunk`` a long text is scored as windows; it fails when any of its windows does."""
    model = load_scoring_model(str(short_position_bundle), precision="fp32", device="cpu",
                               max_length=64, max_batch_size=64, long_text=long_text)
    with pytest.raises(Exception, match=r"ONNXRuntimeError"):
        model.predict(texts)  # one call holds every row: it fails as a whole
    outcomes = model.predict_rows(texts)
    assert len(outcomes) == len(texts)
    short = [i for i, length in enumerate(LENGTHS) if length <= SHORT_POSITIONS]
    for index, outcome in enumerate(outcomes):
        if index in short:
            np.testing.assert_allclose(outcome, model.predict([texts[index]])[0], atol=1e-5)
        else:
            assert isinstance(outcome, InferenceFailure)
            assert outcome.error_type == "Fail" and "ONNXRuntimeError" in outcome.first_line
            assert "\n" not in outcome.first_line and "film" not in outcome.first_line


def test_the_command_scores_short_rows_and_dead_letters_long_ones(short_position_bundle, texts,
                                                                  tmp_path, capsys):
    ids = [f"r{i}" for i in range(len(texts))]
    pq.write_table(pa.table({"key": ids, "text": texts}), tmp_path / "in.parquet",
                   row_group_size=8)
    output = tmp_path / "out" / "scored"
    assert main(["--input", str(tmp_path / "in.parquet"), "--output", str(output), "--model",
                 str(short_position_bundle), "--id_column", "key", "--max_length", "64",
                 "--max_batch_size", "4", "--chunk_rows", "6"]) == 0
    printed = capsys.readouterr().out
    scored = pa.concat_tables(pq.read_table(f) for f in output.parent.glob("scored-part-*"))
    dead = pa.concat_tables(pq.read_table(f)
                            for f in output.parent.glob("scored-dead-letter-part-*"))
    long_ids = {ids[i] for i, length in enumerate(LENGTHS) if length > SHORT_POSITIONS}
    assert set(scored.column("key").to_pylist()) == set(ids) - long_ids
    assert set(dead.column("key").to_pylist()) == long_ids
    for record in dead.to_pylist():
        assert (record["reason"], record["stage"]) == ("inference_error", "inference")
        assert record["text"] == texts[ids.index(record["key"])]  # the row as it was read
        assert re.fullmatch(r"Fail: \[ONNXRuntimeError\] : 1 : FAIL : [^\n]*", record["error"])
    model = load_scoring_model(str(short_position_bundle), precision="fp32", device="cpu",
                               max_length=64)
    expected = model.predict(scored.column("text").to_pylist())
    got = np.array([[p["negative"], p["positive"]] for p in scored.column("probabilities")
                    .to_pylist()])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert f"{len(texts)} rows read (Beam metrics)" in printed
    assert f"scored        {len(texts) - len(long_ids):>10,}" in printed
    assert f"inference_error: {len(long_ids)}" in printed
    assert "WARNING" not in printed
