"""Bad input files through the command (`beam_pipeline.cli.main`): one line naming the file and
exit 2, or with --skip_bad_files the other files scored and the skipped ones listed."""
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipeline.cli import main
from beam_pipeline.records import row_id
from testkit.dumps import GOOD_REVIEWS, write_bad_file, write_reviews

BAD_FILE_MESSAGES = {
    "truncated": r"not a readable Parquet file \(Parquet magic bytes not found in footer\. .*\)",
    "empty": r"not a readable Parquet file \(Parquet file size is 0 bytes\)",
    "no_text_column": r"no text column 'text'; its columns are \['review'\]",
    "other_schema": r"its schema \(text: string, stars: int64\) differs from {good}'s "
                    r"\(text: string\)",
}
NO_OUTPUT = {"scored": None, "scored-dead-letter": None}


def run_command(tmp_path, capsys, *flags, model, output_dir="out"):
    """main() on tmp_path/in/*.parquet, writing to tmp_path/output_dir; returns (exit code,
    stdout, stderr, output tables)."""
    output = tmp_path / output_dir / "scored"
    code = main(["--input", str(tmp_path / "in" / "*.parquet"), "--output", str(output),
                 "--model", str(model), "--precision", "fp32", *flags])
    captured = capsys.readouterr()
    tables = {name: [pq.read_table(f) for f in sorted(output.parent.glob(f"{name}-part-*"))]
              for name in NO_OUTPUT}
    tables = {name: pa.concat_tables(parts) if parts else None for name, parts in tables.items()}
    return code, captured.out, captured.err, tables


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("sentiment-score: error: ")]


def good_and_bad(tmp_path, kind):
    """tmp_path/in holds a_good.parquet (5 reviews) and b_bad.parquet of the given kind."""
    (tmp_path / "in").mkdir()
    return (write_reviews(tmp_path / "in" / "a_good.parquet", GOOD_REVIEWS),
            write_bad_file(tmp_path / "in" / "b_bad.parquet", kind))


@pytest.mark.parametrize("kind", list(BAD_FILE_MESSAGES))
def test_a_bad_file_is_one_line_and_exit_2_or_skipped_and_listed(kind, tmp_path, capsys,
                                                                 tiny_bundle_dir):
    good, bad = good_and_bad(tmp_path, kind)
    message = f"{re.escape(str(bad))}: {BAD_FILE_MESSAGES[kind].format(good=re.escape(str(good)))}"

    code, out, err, tables = run_command(tmp_path, capsys, model=tiny_bundle_dir)
    assert code == 2 and out == "" and tables == NO_OUTPUT
    assert re.fullmatch(f"sentiment-score: error: {message}", err.strip())

    code, out, err, tables = run_command(tmp_path, capsys, "--skip_bad_files",
                                         model=tiny_bundle_dir)
    assert code == 0, err
    assert tables["scored"].column("text").to_pylist() == GOOD_REVIEWS
    assert tables["scored-dead-letter"] is None
    assert "5 rows read (Beam metrics) from 1 file(s)" in out
    skipped = [line for line in out.splitlines() if line.startswith("  skipped file  ")]
    assert len(skipped) == 1 and re.fullmatch(f"  skipped file  {message}", skipped[0])


def test_a_parquet_file_with_no_rows_simply_works(tmp_path, capsys, tiny_bundle_dir):
    good, _ = good_and_bad(tmp_path, "zero_rows")
    code, out, err, tables = run_command(tmp_path, capsys, model=tiny_bundle_dir)
    assert code == 0, err
    assert "5 rows read (Beam metrics) from 2 file(s)" in out and "skipped" not in out
    assert tables["scored"].num_rows == 5

    good.unlink()  # the file without rows alone
    code, out, err, tables = run_command(tmp_path, capsys, model=tiny_bundle_dir,
                                         output_dir="out_alone")
    assert code == 0, err
    assert "0 rows read (Beam metrics) from 1 file(s)" in out
    assert tables == NO_OUTPUT


@pytest.mark.parametrize("flags", [[], ["--skip_bad_files"]])
def test_a_glob_matching_nothing_is_an_error_even_when_skipping(tmp_path, capsys,
                                                                tiny_bundle_dir, flags):
    code, out, err, _ = run_command(tmp_path, capsys, *flags, model=tiny_bundle_dir)
    assert code == 2
    assert err.strip() == (f"sentiment-score: error: --input {tmp_path}/in/*.parquet: "
                           "no file matches")


def test_when_every_file_is_bad_skipping_leaves_nothing_to_score(tmp_path, capsys,
                                                                 tiny_bundle_dir):
    (tmp_path / "in").mkdir()
    write_bad_file(tmp_path / "in" / "a.parquet", "empty")
    write_bad_file(tmp_path / "in" / "b.parquet", "truncated")
    code, out, err, _ = run_command(tmp_path, capsys, "--skip_bad_files", model=tiny_bundle_dir)
    assert code == 2
    assert re.fullmatch(r"sentiment-score: error: --input \S+: no file can be scored: "
                        r"\S+/a\.parquet: not a readable .*; \S+/b\.parquet: not a readable .*",
                        err.strip())


@pytest.mark.parametrize("skip", [False, True])
def test_a_corrupt_row_group_is_dead_lettered_and_fails_the_run_unless_skipping(
        tmp_path, capsys, tiny_bundle_dir, skip):
    _, bad = good_and_bad(tmp_path, "corrupt_row_group")
    flags = ["--skip_bad_files"] if skip else []
    code, out, err, tables = run_command(tmp_path, capsys, "--chunk_rows", "64", *flags,
                                         model=tiny_bundle_dir)
    assert tables["scored"].num_rows == 5 + 200  # good file, row groups 0 and 2 of the bad one
    dead = tables["scored-dead-letter"].to_pylist()
    assert sorted(record["id"] for record in dead) == sorted(row_id(str(bad), row)
                                                             for row in range(100, 200))
    assert {(r["text"], r["reason"], r["stage"]) for r in dead} == {
        (None, "unreadable_row_group", "read")}
    [error] = {r["error"] for r in dead}
    assert error.startswith(f"{bad} row group 1: OSError: ")
    assert f"  unreadable    {error} (100 rows dead-lettered)" in out.splitlines()
    assert "305 rows read (Beam metrics) from 2 file(s)" in out
    assert "unreadable_row_group: 100" in out and "WARNING" not in out
    if skip:
        assert code == 0 and error_lines(err) == []
    else:
        assert code == 2
        assert error_lines(err) == [
            "sentiment-score: error: unreadable row groups, their rows dead-lettered (pass "
            f"--skip_bad_files to accept): {error}"]
