"""Hyper-parameter search: a grid (or N random points of it), best model by validation macro-F1."""
from __future__ import annotations

import dataclasses
import itertools
import random
import shutil
from pathlib import Path
from typing import Any

from training import report as reporting
from training.checkpoints import SignalStop
from training.data import LabelledSplits
from training.run import train_and_report
from training.trainer import TrainConfig, TrainingError

#: Searchable hyper-parameters and how their values are parsed.
SEARCHABLE = {"learning_rate": float, "batch_size": int, "epochs": float, "max_length": int,
              "warmup_ratio": float, "weight_decay": float, "seed": int, "class_weights": str}
TRIALS_DIR = "trials"
RESULTS_NAME = "search_results.md"


def parse_search_space(spec: str) -> dict[str, list[Any]]:
    """``"learning_rate=2e-5,3e-5;batch_size=16,32"`` ->
    ``{"learning_rate": [2e-05, 3e-05], ...}``."""
    space: dict[str, list[Any]] = {}
    for part in filter(None, (piece.strip() for piece in spec.split(";"))):
        name, equals, values = part.partition("=")
        name = name.strip()
        if not equals or not values.strip():
            raise TrainingError(f"--search {spec!r}: {part!r} should look like name=value1,value2")
        if name not in SEARCHABLE:
            raise TrainingError(f"--search: unknown hyper-parameter {name!r}; searchable: "
                                f"{', '.join(SEARCHABLE)}")
        if name in space:
            raise TrainingError(f"--search: {name!r} given twice")
        try:
            space[name] = [SEARCHABLE[name](value.strip()) for value in values.split(",")]
        except ValueError:
            raise TrainingError(f"--search: {name}={values!r}: values must be of type "
                                f"{SEARCHABLE[name].__name__}") from None
    if not space:
        raise TrainingError(f"--search {spec!r}: no hyper-parameters given")
    return space


def trial_parameters(space: dict[str, list[Any]], trials: int | None,
                     seed: int) -> list[dict[str, Any]]:
    """Every grid point, or ``trials`` distinct grid points drawn at random with ``seed``."""
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    if trials is None or trials >= len(grid):
        return grid
    if trials < 1:
        raise TrainingError("--search_trials must be at least 1")
    return random.Random(seed).sample(grid, trials)


def run_search(splits: LabelledSplits, base_config: TrainConfig, space: dict[str, list[Any]],
               output_dir: str | Path, *, trials: int | None = None, source: str,
               label_column: str = "label", progress: bool = True,
               stop: SignalStop | None = None) -> dict[str, Any]:
    """Trains one model per trial under ``output_dir/trials``; the best by validation macro-F1
    becomes the model in ``output_dir`` and its report gains a ``search`` section.

    A search is not resumable: each trial starts afresh (an interrupted trial's folder is
    replaced); ``stop`` (an entered `SignalStop`) ends the search on SIGINT/SIGTERM."""
    output_dir = Path(output_dir)
    rows = []
    for number, parameters in enumerate(trial_parameters(space, trials, base_config.seed), 1):
        config = dataclasses.replace(base_config, **parameters)
        config.validate()
        print(f"search: trial {number}: {parameters}", flush=True)
        trial_dir = output_dir / TRIALS_DIR / f"trial_{number:02d}"
        shutil.rmtree(trial_dir, ignore_errors=True)
        trial_report = train_and_report(splits, config, trial_dir, source=source,
                                        label_column=label_column, progress=progress, stop=stop)
        final = trial_report["final_metrics"]
        rows.append({"trial": number, "parameters": parameters, "accuracy": final["accuracy"],
                     "macro_f1": final["macro_f1"], "time_s": trial_report["training"]["time_s"],
                     "directory": str(trial_dir)})
    best = max(rows, key=lambda row: row["macro_f1"])
    shutil.copytree(best["directory"], output_dir, dirs_exist_ok=True)
    shutil.rmtree(output_dir / TRIALS_DIR)
    for row in rows:
        del row["directory"]
    table = reporting.search_table(rows)
    print("\n".join(["search results (validation):", *table,
                     f"best: trial {best['trial']} {best['parameters']}"]), flush=True)
    (output_dir / RESULTS_NAME).write_text("\n".join(table) + "\n", encoding="utf-8")
    report_path = output_dir / reporting.REPORT_NAME
    best_report = reporting.read_json(report_path)
    best_report["search"] = {"space": space, "trials": rows, "best_trial": best["trial"]}
    reporting.write_json(report_path, best_report)
    reporting.write_model_card(output_dir, best_report)
    return best_report
