"""Reliability cases of the batch area: a hostile dump, bad files (each with and without
``--skip_bad_files``) and an ONNX Runtime error in a batch, each through the real command: the
hostile dumps and the inference error in ``sentiment-score`` subprocesses (two at a time), the
bad-file cases meanwhile through ``main(argv)`` (the console script's function) in this process,
which saves starting Beam a dozen times. The data builders are the tests' (`testkit.dumps`,
`testkit.models`). The hostile dumps are scored in fp32: int8 scores, dynamically quantised,
depend on the other rows of their ONNX Runtime batch, so they cannot be compared row by row with
the model run on other batches."""
from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from beam_pipeline.batch.writing import count_rows, dead_letter_counts
from beam_pipeline.cli import main
from beam_pipeline.model import load_scoring_model
from beam_pipeline.validation import clean_text, default_max_chars
from benchmarks.benchlib import SHARED_DATA
from testkit.dumps import (
    BAD_FILE_KINDS,
    GOOD_REVIEWS,
    sst2_sentences,
    write_bad_file,
    write_hostile_dump,
    write_reviews,
    write_typed_dumps,
)
from testkit.models import SHORT_POSITIONS, build_short_position_bundle, texts_of_token_lengths

COMMAND = Path(sys.executable).parent / "sentiment-score"
AREA = "batch"


def footer_rows(paths) -> int:
    """Rows of the given Parquet files by their footers (0 for a file without a readable one)."""
    total = 0
    for path in paths:
        try:
            total += pq.read_metadata(path).num_rows
        except (OSError, ValueError):
            pass
    return total


def run_command(args: list[str], in_process: bool) -> tuple[int, str, str]:
    """``sentiment-score ARGS`` as a subprocess, or as ``main(args)`` in this process;
    returns (exit status, stdout, stderr)."""
    if not in_process:
        done = subprocess.run([str(COMMAND), *args], capture_output=True, text=True,
                              check=False)
        return done.returncode, done.stdout, done.stderr
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(args)
    return code, stdout.getvalue(), stderr.getvalue()


def score(workdir: Path, bundle: str, name: str, input_glob: str, *flags: str,
          in_process: bool = False) -> dict:
    """Runs ``sentiment-score`` on ``input_glob``; returns what it printed and wrote."""
    prefix = workdir / "out" / name / "scored"
    args = ["--input", input_glob, "--output", str(prefix), "--model", bundle, *flags]
    code, stdout, stderr = run_command(args, in_process)
    reasons, _ = dead_letter_counts(f"{prefix}-dead-letter")
    shown = " ".join(args).replace(str(workdir) + "/", "").replace(bundle, "BUNDLE")
    errors = [line for line in stderr.splitlines() if line.startswith("sentiment-score: error: ")]
    return {"code": code, "stdout": stdout, "error": errors[-1] if errors else "",
            "scored": count_rows(str(prefix)), "reasons": reasons,
            "dead": sum(reasons.values()), "prefix": prefix,
            "command": f"sentiment-score {shown}"}


def case(name: str, description: str, run: dict, rows_in: int, outcome: str,
         refusal_ok: bool = False) -> dict:
    """One row of the reliability table."""
    processed = run["scored"] + run["dead"]
    return {"area": AREA, "case": name, "input": description, "command": run["command"],
            "rows_in": rows_in, "scored": run["scored"], "dead_lettered": run["dead"],
            "outcome": outcome,
            "every_row_accounted": rows_in == processed or (refusal_ok and processed == 0)}


def reasons_text(run: dict) -> str:
    return ", ".join(f"{reason}={count}" for reason, count in run["reasons"].items()) or "none"


def summary_lines(run: dict, start: str) -> list[str]:
    return [line.strip() for line in run["stdout"].splitlines()
            if line.strip().startswith(start)]


def hostile_dumps(workdir: Path, bundle: str) -> dict[str, Path]:
    """The 2%-hostile string dump and the binary / int / list text columns, by case name."""
    folder = workdir / "hostile"
    folder.mkdir()
    good = sst2_sentences(SHARED_DATA, 872)
    max_length = json.loads(Path(bundle, "bundle.json").read_text())["max_length"]
    return {"hostile dump (2% hostile rows)": write_hostile_dump(
                folder / "hostile.parquet", good, Path(bundle, "tokenizer.json").read_text(),
                max_length),
            **{f"text column {kind}": path
               for kind, path in write_typed_dumps(folder, good).items()}}


def hostile_case(workdir: Path, bundle: str, model, name: str, path: Path) -> dict:
    """One dump scored (fp32); scored rows compared with ``model`` on their cleaned text."""
    table = pq.read_table(path)
    hostile = sorted({c for c in table.column("case").to_pylist() if c != "good"})
    run = score(workdir, bundle, path.stem, str(path), "--id_column", "review_id",
                "--precision", "fp32")
    scored = [row for f in sorted(run["prefix"].parent.glob("scored-part-*"))
              for row in pq.read_table(f).to_pylist()]
    check = ""
    if scored:
        max_chars = default_max_chars(model.bundle.max_length)
        expected = model.predict([clean_text(row["text"], max_chars)[0] for row in scored])
        got = np.array([list(row["probabilities"].values()) for row in scored])
        check = (f"; scored rows vs the model on the cleaned text: max |Δprob| "
                 f"{np.abs(got - expected).max():.1e}")
    description = (f"{path.name}: {table.num_rows:,} rows, text column "
                   f"{table.schema.field('text').type}; cases: {', '.join(hostile)}")
    return case(name, description, run, table.num_rows,
                f"exit {run['code']}; dead-lettered {reasons_text(run)}{check}")


def bad_file_cases(workdir: Path, bundle: str, kind: str) -> list[dict]:
    """A bad file of ``kind`` beside a good file, without and with --skip_bad_files."""
    folder = workdir / "files" / kind
    folder.mkdir(parents=True)
    good = write_reviews(folder / "a_good.parquet", GOOD_REVIEWS)
    bad = write_bad_file(folder / "b_bad.parquet", kind)
    cases = []
    for flags in ([], ["--skip_bad_files"]):
        run = score(workdir, bundle, f"{kind}{'-skip' if flags else ''}",
                    str(folder / "*.parquet"), *flags, in_process=True)
        skipped = summary_lines(run, "skipped file")
        unreadable = summary_lines(run, "unreadable")
        accepted = [good] + ([] if skipped else [bad])
        outcome = (f"exit {run['code']}"
                   + (f": {run['error'].replace(str(workdir) + '/', '')}" if run["error"]
                      else "")
                   + f"; dead-lettered {reasons_text(run)}"
                   + "".join(f"; summary: {line.replace(str(workdir) + '/', '')}"
                             for line in skipped + unreadable))
        description = (f"a_good.parquet ({len(GOOD_REVIEWS)} rows) + b_bad.parquet "
                       f"({kind.replace('_', ' ')}, {footer_rows([bad])} rows in its footer)"
                       + ("; rows in: of the files not skipped" if skipped else ""))
        cases.append(case(f"{kind.replace('_', ' ')}{' --skip_bad_files' if flags else ''}",
                          description, run, footer_rows(accepted), outcome,
                          refusal_ok=run["code"] == 2 and not unreadable))
        if kind == "zero_rows":
            break  # not a bad file: the flag changes nothing
    return cases


def glob_cases(workdir: Path, bundle: str) -> list[dict]:
    """A glob matching nothing, without and with --skip_bad_files."""
    cases = []
    for flags in ([], ["--skip_bad_files"]):
        run = score(workdir, bundle, f"nothing{len(flags)}", str(workdir / "none" / "*.parquet"),
                    *flags, in_process=True)
        cases.append(case(f"glob matching nothing{' --skip_bad_files' if flags else ''}",
                          "none/*.parquet (no such file)", run, 0,
                          f"exit {run['code']}: {run['error'].replace(str(workdir) + '/', '')}",
                          refusal_ok=True))
    return cases


def inference_error_case(workdir: Path, bundle: str) -> dict:
    """A real ONNX Runtime failure: a BERT with 16 position embeddings scored at max_length 64,
    so every ONNX Runtime call holding a row longer than 16 tokens fails."""
    short_bundle = build_short_position_bundle(workdir / "short_positions")
    lengths = [4 + (i * 7) % 60 for i in range(200)]
    texts = texts_of_token_lengths((short_bundle / "tokenizer.json").read_text(), lengths)
    path = write_reviews(workdir / "lengths.parquet", texts)
    run = score(workdir, str(short_bundle), "inference", str(path), "--max_length", "64",
                "--precision", "fp32")
    long_rows = sum(length > SHORT_POSITIONS for length in lengths)
    run["command"] = run["command"].replace(str(short_bundle), "SHORT_POSITION_BUNDLE")
    return case("ONNX Runtime error in a batch",
                f"200 rows of 4-63 tokens ({long_rows} longer than 16), bundle of a tiny BERT "
                "with 16 position embeddings, --max_length 64", run, len(texts),
                f"exit {run['code']}; dead-lettered {reasons_text(run)} (rows longer than 16 "
                f"tokens: {long_rows}); the failing sub-batches were bisected, shorter rows "
                "scored")


def run_cases(workdir: Path, bundle: str) -> list[dict]:
    """Runs each hostile case of this area through the real command; one dict per case."""
    model = load_scoring_model(bundle, precision="fp32", device="cpu")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        subprocess_cases = [pool.submit(hostile_case, workdir, bundle, model, name, path)
                            for name, path in hostile_dumps(workdir, bundle).items()]
        subprocess_cases.append(pool.submit(inference_error_case, workdir, bundle))
        file_cases = [case for kind in BAD_FILE_KINDS
                      for case in bad_file_cases(workdir, bundle, kind)]
        file_cases += glob_cases(workdir, bundle)
        hostile = [job.result() for job in subprocess_cases]
    return hostile[:-1] + file_cases + hostile[-1:]
