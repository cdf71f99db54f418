"""What every benchmark shares: where models and scratch files go, the machine it ran on, and
writing ``benchmarks/results/NAME.md`` (for people) beside ``NAME.json`` (for machines).

Models: the benchmarks train, export and read their models in `default_models_dir`:
``$SENTIMENT_BENCH_DIR/models``, else ``benchmarks/work/models`` (ignored by git); each script's
flags (``--models_dir``, ``--model_dir``, ``--bundle``, ...) point elsewhere. Data: `SHARED_DATA`
(``../shared/data`` beside the checkout, as for the tests).

Every results file is rendered from its JSON by the script's ``markdown(result)``: ``--render_only``
(`add_render_only`, `render_only`) rewrites ``NAME.md`` from ``NAME.json`` without measuring.
Results written before the shared `machine` description hold their own machine fields (a line of
text, or another dict); `machine_line` renders those as recorded and says what was not recorded.
A result may carry a ``history`` list (earlier runs of another configuration, each with its date,
what differed and the full result); `write_results` keeps it across reruns.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from testkit import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK_ENV = "SENTIMENT_BENCH_DIR"
PACKAGES = ("onnxruntime-gpu", "torch", "transformers", "optimum-onnx", "apache-beam")
#: Hugging Face and tokenizers settings of every benchmark (and of the commands it starts).
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
NOT_RECORDED = "not recorded"

__all__ = ["OFFLINE_ENV", "RESULTS", "ROOT", "SHARED_DATA", "add_render_only", "command_line",
           "default_models_dir", "default_work_dir", "header", "history_lines", "machine",
           "machine_line", "now", "offline", "read_results", "render_only", "write_results"]


def offline() -> None:
    """Sets `OFFLINE_ENV` in this process (where not set already): call once, at the top of a
    script, before anything imports Transformers or Datasets."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


def default_work_dir() -> Path:
    """``$SENTIMENT_BENCH_DIR`` or ``benchmarks/work``."""
    return Path(os.environ.get(WORK_ENV) or ROOT / "benchmarks" / "work")


def default_models_dir() -> Path:
    """Where the benchmarks' fine-tuned models and bundles are kept: ``WORK/models``."""
    return default_work_dir() / "models"


def machine() -> dict:
    """CPU (model, the int8-relevant flags), cores, load averages now, Python and package
    versions. Call it when the benchmark starts: the load average is the one at the start."""
    from beam_pipeline.cpu import cpu_description

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": cpu_description(), "logical_cpus": os.cpu_count(),
            "load_average": [round(load, 2) for load in os.getloadavg()],
            "python": platform.python_version(), "versions": versions}


def machine_line(described: dict | str) -> str:
    """One Markdown line describing a result's ``machine``: the shape `machine` writes, or the
    fields of an older result as recorded (what they lack is written "not recorded")."""
    if isinstance(described, str):  # older results: a line of text
        return f"Machine: {described}; CPU flags: {NOT_RECORDED}"
    cpu = described.get("cpu")
    if isinstance(cpu, dict):
        flags = ", ".join(cpu.get("flags", [])) or "none of note"
        cpu_text = f"{cpu.get('model', NOT_RECORDED)} ({cpu.get('machine', NOT_RECORDED)})"
    else:  # older results: the CPU's model name only
        flags, cpu_text = NOT_RECORDED, cpu or NOT_RECORDED
    cpus = described.get("logical_cpus", described.get("cpu_count"))
    if "load_average" in described:
        load = ("load average (1/5/15 min) at the start "
                + " / ".join(str(value) for value in described["load_average"]))
    elif "load_average_1min" in described:  # older results: 1-minute figures, start and end
        start, end = described["load_average_1min"]
        load = f"1-minute load average {start} at the start, {end} at the end"
    else:
        load = f"load average {NOT_RECORDED}"
    versions = described.get("versions") or {
        name: described[name] for name in ("onnxruntime", "torch") if name in described}
    return (f"Machine: {cpu_text}, {cpus if cpus is not None else NOT_RECORDED} logical CPUs; "
            f"CPU flags: {flags}; {load}; Python {described.get('python', NOT_RECORDED)}"
            + "".join(f", {name} {version}" for name, version in versions.items()))


def header(title: str, result: dict, command_label: str = "Command") -> list[str]:
    """The first lines of every results file: title, command, date, machine."""
    return [f"# {title}", "", f"{command_label}: `{result['command']}`  ",
            f"Date: {result['date']}  ", machine_line(result["machine"]) + "  "]


def history_lines(result: dict, headline: Callable[[dict], list[str]]) -> list[str]:
    """A "History" section: per earlier run its date, what differed and ``headline(its
    result)`` (the figures quoted); nothing when the result has no ``history``."""
    if not result.get("history"):
        return []
    lines = ["", "## History", "",
             "Earlier runs of another configuration, kept for their figures (their full "
             "results are in the `history` list of the JSON file):"]
    for entry in sorted(result["history"], key=lambda entry: entry["date"]):
        lines += ["", f"- {entry['date']}: {entry['what_differed']}; command "
                      f"`{entry['result']['command']}`"]
        lines += [f"  {line}" if line else "" for line in headline(entry["result"])]
    return lines


def command_line(script: str, argv: list[str] | None = None) -> str:
    """The command that produced a result, as a user would type it."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join([".venv/bin/python", f"benchmarks/{script}", *args])


def now() -> str:
    """The date written into results (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_results(name: str, result: dict, markdown: str) -> Path:
    """Writes ``RESULTS/NAME.json`` and ``RESULTS/NAME.md``; returns the Markdown path. A
    ``history`` of the file written before is kept when ``result`` has none."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    history = read_results(name).get("history")
    if history and "history" not in result:
        result["history"] = history
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    path = RESULTS / f"{name}.md"
    path.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


def read_results(name: str) -> dict:
    """The JSON results of an earlier run (empty when there are none)."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def add_render_only(parser: argparse.ArgumentParser) -> None:
    """The ``--render_only`` flag every benchmark has."""
    parser.add_argument("--render_only", action="store_true",
                        help="measure nothing: rewrite benchmarks/results/NAME.md from the "
                             "NAME.json written before (the figures as they were measured)")


def run_benchmark(name: str, parser: argparse.ArgumentParser, measure: Callable[[Any], dict],
                  markdown: Callable[[dict], str]) -> int:
    """The usual ``main``: adds ``--render_only`` to ``parser``, parses, then re-renders, or
    measures, writes ``RESULTS/NAME.{json,md}`` and prints the Markdown."""
    add_render_only(parser)
    args = parser.parse_args()
    if args.render_only:
        return render_only(name, markdown)
    result = measure(args)
    print(write_results(name, result, markdown(result)).read_text())
    return 0


def render_only(name: str, markdown: Callable[[dict], str]) -> int:
    """Rewrites ``RESULTS/NAME.md`` from ``RESULTS/NAME.json``; returns the exit status."""
    result = read_results(name)
    if not result:
        print(f"{RESULTS / name}.json: no results to render", file=sys.stderr)
        return 2
    path = RESULTS / f"{name}.md"
    text = markdown(result)
    path.write_text(text if text.endswith("\n") else text + "\n")
    print(f"rendered {path.relative_to(ROOT)} from {name}.json")
    return 0
