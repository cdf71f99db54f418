"""Reliability table (issue 6): every hostile case, what happened, rows in and out.

    .venv/bin/python benchmarks/reliability.py [--bundle /work/models/bundle-minilm-sst2]
                                                [--only AREA ...]

Runs the cases of each area in ``benchmarks/reliability_cases/`` (batch, trust, dask, streaming)
through the real commands, in a temporary folder, and writes
``benchmarks/results/reliability.{md,json}``. A case "accounts for every row" when rows in =
scored + dead-lettered, or when it is a refusal that processed nothing. The command exits 1 when
any case does not.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NAME = "reliability"
AREAS = ("batch", "trust", "dask", "streaming")
CASE_KEYS = ("area", "case", "input", "command", "rows_in", "scored", "dead_lettered", "outcome",
             "every_row_accounted")
DEFAULT_BUNDLE = "/work/models/bundle-minilm-sst2"


def run_area(area: str, workdir: Path, bundle: str) -> tuple[list[dict], float]:
    """The cases of one area and the seconds they took."""
    module = importlib.import_module(f"benchmarks.reliability_cases.{area}")
    area_dir = workdir / area
    area_dir.mkdir()
    started = time.perf_counter()
    cases = module.run_cases(area_dir, bundle)
    for case in cases:
        missing = set(CASE_KEYS) - set(case)
        if missing:
            raise KeyError(f"{area}/{case.get('case')}: missing keys {sorted(missing)}")
    return cases, time.perf_counter() - started


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_results(results: dict) -> None:
    """benchmarks/results/reliability.json and .md (a table for people)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{NAME}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"# Reliability: hostile input, faults and tampering ({NAME})", "",
             f"Command: `{results['command']}`  ", f"Machine: {results['machine']}  ",
             f"Date: {results['date']}  ", f"Bundle: `{results['bundle']}`  ",
             "Areas (each area's cases run by one command; `--only` reruns keep the others): "
             + "; ".join(f"{area}: {run['seconds']} s, {run['date']}"
                         for area, run in results["areas"].items()), "",
             "| area | case | input | rows in | scored | dead-lettered | what happened | "
             "every row accounted for |", "|---|---|---|---|---|---|---|---|"]
    for case in results["cases"]:
        lines.append("| " + " | ".join(_cell(case[key]) for key in (
            "area", "case", "input", "rows_in", "scored", "dead_lettered", "outcome",
            "every_row_accounted")) + " |")
    lines += ["", "Commands run, per case:", ""]
    lines += [f"- {case['area']}/{case['case']}: `{case['command']}`" for case in results["cases"]]
    (RESULTS / f"{NAME}.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=DEFAULT_BUNDLE,
                        help="model bundle the scoring cases use (default: %(default)s)")
    parser.add_argument("--only", choices=AREAS, action="append",
                        help="run only this area (repeatable); others keep earlier results")
    args = parser.parse_args()
    if not Path(args.bundle, "bundle.json").exists():
        sys.exit(f"{args.bundle}: no bundle there; export one with benchmarks/export_benchmark.py "
                 "or pass --bundle")
    previous = RESULTS / f"{NAME}.json"
    results = (json.loads(previous.read_text()) if args.only and previous.exists()
               else {"cases": [], "areas": {}})
    areas = args.only or list(AREAS)
    results["cases"] = [case for case in results["cases"] if case["area"] not in areas]
    results.update({
        "command": shlex.join([".venv/bin/python", "benchmarks/reliability.py", *sys.argv[1:]]),
        "machine": f"{platform.node()}: {os.cpu_count()} CPU cores, "
                   f"{platform.processor() or platform.machine()}, no GPU",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "bundle": args.bundle})
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="reliability-") as workdir:
        for area in areas:
            cases, seconds = run_area(area, Path(workdir), args.bundle)
            results["cases"] += cases
            results["areas"][area] = {
                "seconds": round(seconds, 1), "command": results["command"],
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
            print(f"{area}: {len(cases)} case(s) in {seconds:.1f} s", flush=True)
    results["cases"].sort(key=lambda case: AREAS.index(case["area"]))
    write_results(results)
    failed = [f"{case['area']}/{case['case']}" for case in results["cases"]
              if not case["every_row_accounted"]]
    print(f"wrote {RESULTS / NAME}.md; {len(results['cases'])} cases, "
          f"{len(failed)} not accounted for{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
