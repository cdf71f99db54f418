"""Text as it really arrives: social normalisation (the same rules at training and at scoring),
languages the model does not read, and duplicate posts, through the scoring model and the
batch command."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipeline import social_text
from beam_pipeline.cli import main
from beam_pipeline.language import LanguageGate
from beam_pipeline.model import load_scoring_model
from beam_pipeline.vocabulary import SCORED, UNSUPPORTED_LANGUAGE
from testkit.outputs import read_parts

FRENCH = "Je déteste cette compagnie aérienne, encore un vol annulé sans explication"
SPANISH = "Qué servicio tan malo, nunca más vuelvo a volar con ustedes, todo tarde"
ENGLISH = "Worst airline ever, my flight was cancelled again and nobody explains why"
SHORT_FOREIGN = "Qué asco"  # too short to trust the language guess: scored


@pytest.mark.parametrize("text, steps, expected", [
    ("thanks @Delta_Air for nothing", ("mentions",), "thanks @user for nothing"),
    ("email me at a@b.com", ("mentions",), "email me at a@b.com"),
    ("see https://t.co/Ab1 and www.x.com/y", ("links",), "see http and http"),
    ("love it 😂🔥", ("emoji", "whitespace"), "love it face with tears of joy fire"),
    ("soooo goooood!!!!", ("repeats",), "soo good!!"),
    ("  a \t\n b  ", ("whitespace",), "a b"),
    ("@x sooo bad 😡 http://a.b", social_text.SOCIAL, "@user soo bad enraged face http"),
    ("@x sooo bad", (), "@x sooo bad"),
])
def test_each_normalisation_step(text, steps, expected):
    assert social_text.normalize(text, steps) == expected


def test_steps_are_named_by_flag_value_and_unknown_ones_refused():
    assert social_text.parse_steps("social") == social_text.SOCIAL
    assert social_text.parse_steps("none") == ()
    assert social_text.parse_steps("emoji,links") == ("links", "emoji")  # applied in STEPS order
    with pytest.raises(ValueError, match="unknown text normalisation 'lowercase'"):
        social_text.parse_steps("links,lowercase")


def test_a_retweet_and_its_copies_share_a_fingerprint():
    original = social_text.fingerprint("Delta lost my bag AGAIN https://t.co/a1")
    assert social_text.fingerprint("RT @someone: Delta lost my bag again  https://t.co/zz9") \
        == original
    assert social_text.fingerprint("RT @a: RT @b: delta lost my bag again http://t.co/q") \
        == original
    assert social_text.fingerprint("Delta found my bag") != original


def test_the_language_gate_leaves_out_confident_long_foreign_posts_only():
    gate = LanguageGate(["en"])
    verdicts = gate.identify([FRENCH, SPANISH, ENGLISH, SHORT_FOREIGN, "@delta 👍"])
    assert [(language, supported) for language, _, supported in verdicts] == [
        ("fr", False), ("es", False), ("en", True), ("es", True), (verdicts[4][0], True)]
    assert all(0 <= confidence <= 1 for _, confidence, _ in verdicts)
    assert all(supported for _, _, supported in LanguageGate(None).identify([FRENCH, SPANISH]))


@pytest.fixture(scope="module")
def social_bundle(tiny_bundle_dir, tmp_path_factory) -> Path:
    """The tiny bundle declaring social normalisation and English only (bundle.json carries
    both; the manifest itself is not checksummed)."""
    bundle = tmp_path_factory.mktemp("social") / "bundle"
    shutil.copytree(tiny_bundle_dir, bundle)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest.update(text_normalization=list(social_text.SOCIAL), languages=["en"])
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle


def test_the_scoring_model_normalises_identifies_and_scores_each_distinct_text_once(
        social_bundle):
    model = load_scoring_model(str(social_bundle), precision="fp32", device="cpu")
    texts = [ENGLISH, FRENCH, "RT @a: " + ENGLISH, SPANISH, "@bob sooo good 😀 https://t.co/x",
             ENGLISH]
    calls = []
    predict = model._predict
    model._predict = lambda batch, failures: calls.append(list(batch)) or predict(batch, failures)
    results = model.score_rows(texts)
    assert [result.status for result in results] == [
        SCORED, UNSUPPORTED_LANGUAGE, SCORED, UNSUPPORTED_LANGUAGE, SCORED, SCORED]
    assert [result.language for result in results][:4] == ["en", "fr", "en", "es"]
    # the model read each distinct normalised text once: ENGLISH twice in the batch, the
    # retweet normalised differently ("RT @user: ..."), the foreign ones not at all
    assert calls == [[ENGLISH, "RT @user: " + ENGLISH, "@user soo good grinning face http"]]
    assert results[0].fingerprint == results[2].fingerprint == results[5].fingerprint
    np.testing.assert_array_equal(results[0].probabilities, results[5].probabilities)
    assert results[1].probabilities is None and results[1].tokens is None
    # scoring a text is scoring its normalised form with a model that does not normalise
    plain = load_scoring_model(str(social_bundle), precision="fp32", device="cpu")
    plain.normalization = ()
    np.testing.assert_allclose(results[4].probabilities,
                               plain.predict(["@user soo good grinning face http"])[0],
                               atol=1e-5)  # float32 rounding across batch paddings


def test_batch_run_marks_foreign_posts_unscored_counts_them_and_aggregates_once(
        social_bundle, tmp_path, capsys):
    texts = [ENGLISH, FRENCH, SPANISH, SHORT_FOREIGN] + ["RT @x: " + ENGLISH] * 5 + [None]
    brands = ["acme"] * 9 + ["acme"]
    pq.write_table(pa.table({"text": texts, "brand": brands}), tmp_path / "posts.parquet")
    status = main(["--input", str(tmp_path / "posts.parquet"), "--output",
                   str(tmp_path / "out" / "posts"), "--model", str(social_bundle),
                   "--precision", "fp32", "--key_column", "brand", "--no_report"])
    printed = capsys.readouterr().out
    assert status == 0
    scored = read_parts(tmp_path / "out" / "posts").to_pylist()
    by_text = {row["text"]: row for row in scored}
    assert len(scored) == 9  # the null text is a dead letter
    assert by_text[FRENCH]["status"] == by_text[SPANISH]["status"] == UNSUPPORTED_LANGUAGE
    assert by_text[FRENCH]["sentiment"] is None and by_text[FRENCH]["language"] == "fr"
    assert by_text[SHORT_FOREIGN]["status"] == SCORED
    summary = json.loads((tmp_path / "out" / "posts-summary.json").read_text())
    assert summary["counts"] == {
        "rows_read": 10, "scored": 7, "unscored": 2, "dead_lettered": 1,
        "dead_letter_reasons": {"null_text": 1},
        "unscored_statuses": {UNSUPPORTED_LANGUAGE: 2}}
    assert "unscored               2" in printed and "unsupported_language: 2" in printed
    [aggregate] = [row for row in pq.read_table(
        next((tmp_path / "out").glob("posts-aggregates-part-*.parquet"))).to_pylist()
        if row["type"] == "aggregate"]
    # ENGLISH and its five retweets are one post; SHORT_FOREIGN the other
    assert (aggregate["key"], aggregate["posts"], aggregate["reach"],
            aggregate["unsupported_language"]) == ("acme", 2, 7, 2)
    assert dict(aggregate["languages"]) == {"en": 6, "fr": 1, "es": 2}


SOCIAL_POSTS = ["@united sooooo late AGAIN 😡😡 https://t.co/abc123", "love this 😍 www.x.com/y",
                "RT @a: meh", "plain text, nothing social"]


def test_normalisation_is_recorded_by_training_and_export_and_applied_the_same_at_scoring(
        tiny_model_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from export.exporter import export_bundle
    from training.cli import train_main
    from training.trainer import tokenize

    rows = [{"text": f"{post} {index}", "label": ["negative", "positive"][index % 2]}
            for index, post in enumerate(SOCIAL_POSTS * 8)]
    data = tmp_path / "posts.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    model_dir = tmp_path / "model"
    assert train_main(["--dataset", str(data), "--output_dir", str(model_dir), "--base_model",
                       str(tiny_model_dir), "--epochs", "1", "--max_length", "32",
                       "--text_normalization", "social", "--languages", "en"]) == 0
    config = json.loads((model_dir / "config.json").read_text())
    assert config["text_normalization"] == list(social_text.SOCIAL)
    assert config["languages"] == ["en"]
    manifest = export_bundle(model_dir, tmp_path / "bundle", precisions=("fp32",),
                             max_length=32)
    assert manifest["text_normalization"] == list(social_text.SOCIAL)
    assert manifest["languages"] == ["en"]
    # the token ids training fed the model are the ids scoring feeds it
    trained_ids = tokenize(Dataset.from_dict({"text": SOCIAL_POSTS}),
                           AutoTokenizer.from_pretrained(model_dir), 32,
                           config["text_normalization"])["input_ids"]
    model = load_scoring_model(str(tmp_path / "bundle"), precision="fp32", device="cpu")
    scored_ids = [encoding.ids for encoding in
                  model.tokenizer.encode_batch(model.normalize(SOCIAL_POSTS))]
    assert scored_ids == trained_ids
    assert model.normalize(SOCIAL_POSTS)[0] == "@user soo late AGAIN enraged face enraged face http"
