"""Reliability table (issue 6): every hostile case, what happened, rows in and out.

    .venv/bin/python benchmarks/reliability.py [--bundle DIR] [--only AREA ...] [--render_only]

Runs the cases of each area in ``benchmarks/reliability_cases/`` (batch, trust, dask, streaming)
through the real commands, in a temporary folder, and writes
``benchmarks/results/reliability.{md,json}``. A case "accounts for every row" when rows in =
scored + dead-lettered, or when it is a refusal that processed nothing. The command exits 1 when
any case does not. Default bundle: ``MODELS/bundle-minilm-sst2`` (MODELS:
``benchlib.default_models_dir()``).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the cases are the package benchmarks.reliability_cases
    sys.path.insert(0, str(ROOT))

from benchmarks import benchlib  # noqa: E402  (the module the cases import, not a second copy)

benchlib.offline()

NAME = "reliability"
AREAS = ("batch", "trust", "dask", "streaming")
CASE_KEYS = ("area", "case", "input", "command", "rows_in", "scored", "dead_lettered", "outcome",
             "every_row_accounted")
DEFAULT_BUNDLE = benchlib.default_models_dir() / "bundle-minilm-sst2"


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


def markdown(results: dict) -> str:
    """The results (every case recorded so far) as a table for people."""
    lines = [*benchlib.header(f"Reliability: hostile input, faults and tampering ({NAME})",
                              results),
             f"Bundle: `{results['bundle']}`  ",
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
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(DEFAULT_BUNDLE),
                        help="model bundle the scoring cases use (default: %(default)s)")
    parser.add_argument("--only", choices=AREAS, action="append",
                        help="run only this area (repeatable); others keep earlier results")
    benchlib.add_render_only(parser)
    args = parser.parse_args()
    if args.render_only:
        return benchlib.render_only(NAME, markdown)
    if not Path(args.bundle, "bundle.json").exists():
        sys.exit(f"{args.bundle}: no bundle there; export one with benchmarks/export_benchmark.py "
                 "or pass --bundle")
    results = ((args.only and benchlib.read_results(NAME)) or {"cases": [], "areas": {}})
    areas = args.only or list(AREAS)
    results["cases"] = [case for case in results["cases"] if case["area"] not in areas]
    results.update({"command": benchlib.command_line("reliability.py"), "date": benchlib.now(),
                    "machine": benchlib.machine(), "bundle": args.bundle})
    with tempfile.TemporaryDirectory(prefix="reliability-") as workdir:
        for area in areas:
            cases, seconds = run_area(area, Path(workdir), args.bundle)
            results["cases"] += cases
            results["areas"][area] = {"seconds": round(seconds, 1),
                                      "command": results["command"], "date": benchlib.now()}
            print(f"{area}: {len(cases)} case(s) in {seconds:.1f} s", flush=True)
    results["cases"].sort(key=lambda case: AREAS.index(case["area"]))
    path = benchlib.write_results(NAME, results, markdown(results))
    failed = [f"{case['area']}/{case['case']}" for case in results["cases"]
              if not case["every_row_accounted"]]
    print(f"wrote {path}; {len(results['cases'])} cases, "
          f"{len(failed)} not accounted for{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
