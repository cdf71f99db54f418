"""``sentiment-sample`` (`main`): posts to label, from dumps or scored output, as JSON lines or
Label Studio tasks; ``sentiment-labels`` (`labels_main`): the labelled file, or a Label Studio
or Argilla export, as JSON lines for ``sentiment-train --dataset`` and ``sentiment-export
--quantification_dataset``.

Each prints one summary line to stderr and exits 0; input that cannot be used ends with one
``<command>: error: ...`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from beam_pipeline.bundle import BundleError, read_manifest
from beam_pipeline.errors import InputError
from beam_pipeline.model import load_scoring_model
from labelling import formats, sampling, sources
from labelling.formats import FormatError
from labelling.sampling import Sampled

USER_ERRORS = (InputError, BundleError, FormatError)


def build_sample_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentiment-sample",
        description="Pick posts for people to label: stratified by key and predicted label, "
                    "with a share of the least confident, from Parquet dumps, a batch run's "
                    "scored output or a stream's JSON-lines files (--output_files).")
    parser.add_argument("--input", required=True,
                        help="glob of .parquet / .jsonl files, local or on a Beam file system "
                             "(gs://); a stream's -aggregates- files are left out")
    parser.add_argument("--output", required=True,
                        help="file to write (JSON lines, or Label Studio's import JSON)")
    parser.add_argument("--n", type=_positive_int, default=500,
                        help="posts to sample (default %(default)s; all when fewer)")
    parser.add_argument("--model", help="bundle to score the texts with (default: the rows' own "
                                         "probabilities, as scored output has them)")
    parser.add_argument("--id_column", help="column holding the post id (default: an 'id' "
                                            "column, else the batch scorer's file-and-row id)")
    parser.add_argument("--text_column", default="text", help="default %(default)s")
    parser.add_argument("--key_column", help="column (or a stream's message attribute) to "
                                             "stratify by, e.g. brand")
    parser.add_argument("--strategy", choices=sampling.STRATEGIES, default=sampling.STRATIFIED,
                        help="stratified by key and predicted label (default), the least "
                             "confident, or uniformly at random (needs no model)")
    parser.add_argument("--uncertain_share", type=_share,
                        default=sampling.DEFAULT_UNCERTAIN_SHARE,
                        help="with --strategy stratified, the share of each stratum taken from "
                             "its least confident posts (default %(default)s)")
    parser.add_argument("--seed", type=int, default=42,
                        help="the same posts and seed give the same sample (default %(default)s)")
    parser.add_argument("--format", choices=formats.WRITE_FORMATS, default=formats.JSONL,
                        help="JSON lines with an empty label to fill in (default), or Label "
                             "Studio tasks with the model's predictions plus a labelling config "
                             "written beside them (<output stem>.label_config.xml)")
    return parser


def build_labels_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentiment-labels",
        description="Turn labelled posts (sentiment-sample's JSON lines filled in, a Label "
                    "Studio JSON export, or Argilla records) into JSON lines with id, text and "
                    "label, as sentiment-train --dataset and sentiment-export "
                    "--quantification_dataset read them.")
    parser.add_argument("--input", required=True, help="the labelled or exported file")
    parser.add_argument("--output", required=True, help="JSON-lines file to write")
    parser.add_argument("--format", choices=(formats.AUTO, *formats.READ_FORMATS),
                        default=formats.AUTO,
                        help="default: told by the file's first record")
    parser.add_argument("--label_question", default=formats.LABEL_QUESTION,
                        help="Label Studio Choices name / Argilla question holding the label "
                             "(default %(default)s; else the only one answered)")
    parser.add_argument("--model", help="bundle whose labels to check the labels against "
                                        "(default: the labels our JSON lines name, if any)")
    parser.add_argument("--holdout", type=float, default=0.0,
                        help="share of the posts (per label, at random by --seed) written to "
                             "--holdout_output instead: labelled posts for sentiment-export "
                             "--quantification_dataset that training never sees (default 0)")
    parser.add_argument("--holdout_output",
                        help="default: OUTPUT with -holdout before its suffix")
    parser.add_argument("--seed", type=int, default=42, help="seed of the hold-out draw")
    return parser


def holdout_split(labels: Sequence[str], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices kept and held out: ``share`` of each label's posts (rounded half up) drawn at
    random by ``seed``, both lists in input order."""
    generator = np.random.default_rng(seed)
    held: set[int] = set()
    by_label: dict[str, list[int]] = collections.defaultdict(list)
    for index, label in enumerate(labels):
        by_label[label].append(index)
    for label in sorted(by_label):
        members = by_label[label]
        count = int(len(members) * share + 0.5)
        held.update(generator.permutation(members)[:count].tolist())
    return ([index for index in range(len(labels)) if index not in held], sorted(held))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _run(parser: argparse.ArgumentParser, action: Callable[[argparse.Namespace], str],
         argv: Optional[Sequence[str]]) -> int:
    """Parses ``argv``, runs ``action``, prints its summary (or one error line, exit 2)."""
    args = parser.parse_args(argv)
    try:
        summary = action(args)
    except USER_ERRORS as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    print(f"{parser.prog}: {summary}", file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``sentiment-sample``."""
    return _run(build_sample_parser(), sample_posts, argv)


def sample_posts(args: argparse.Namespace) -> str:
    """Reads, samples and writes; returns the summary."""
    model = load_scoring_model(args.model) if args.model else None
    posts = sources.read_posts(args.input, args.text_column, args.key_column, args.id_column,
                               model, need_probabilities=args.strategy != sampling.RANDOM)
    if not posts.candidates:
        raise InputError(f"no post to sample among {posts.rows:,} rows of {args.input} "
                         f"({_reasons(posts.skipped) or 'no rows'})")
    chosen = sampling.sample(posts.candidates, args.n, args.strategy, args.seed,
                             args.uncertain_share)
    written = args.output
    if args.format == formats.LABEL_STUDIO:
        labels = (model.bundle.labels if model is not None else list(dict.fromkeys(
            label for candidate in posts.candidates for label in candidate.probabilities)))
        if not labels:
            raise InputError("--format label-studio lists the model's labels as choices: pass "
                             "--model BUNDLE (the input has no probabilities)")
        config = formats.write_label_studio(args.output, chosen, args.key_column, labels)
        written += f" (labelling config {config})"
    else:
        formats.write_sample_jsonl(args.output, chosen, args.key_column)
    left_out = f", {len(posts.left_out)} aggregates file(s) left out" if posts.left_out else ""
    return (f"read {posts.rows:,} rows from {len(posts.files)} file(s){left_out}: "
            f"{len(posts.candidates):,} candidates, skipped {_counts(posts.skipped)}; "
            f"wrote {len(chosen):,} posts to {written}: {_per_stratum(chosen)}")


def _per_stratum(chosen: Sequence[Sampled]) -> str:
    """Posts sampled per stratum (key/predicted label), with how many of them are uncertain."""
    totals: collections.Counter = collections.Counter()
    uncertain: collections.Counter = collections.Counter()
    for sampled in chosen:
        stratum = "/".join(part for part in (sampled.candidate.key, sampled.candidate.predicted)
                           if part is not None) or "all"
        totals[stratum] += 1
        uncertain[stratum] += sampled.because == sampling.UNCERTAIN
    return ", ".join(f"{stratum} {count:,}"
                     + (f" ({uncertain[stratum]:,} uncertain)" if uncertain[stratum] else "")
                     for stratum, count in sorted(totals.items())) or "none"


def _counts(counts: collections.Counter) -> str:
    """``12 (unsupported_language 10, empty_text 2)``, or ``0``."""
    total = sum(counts.values())
    return f"{total:,} ({_reasons(counts)})" if total else "0"


def _reasons(counts: collections.Counter) -> str:
    return ", ".join(f"{reason} {count:,}" for reason, count in counts.most_common())


def labels_main(argv: Optional[Sequence[str]] = None) -> int:
    """``sentiment-labels``."""
    return _run(build_labels_parser(), convert_labels, argv)


def convert_labels(args: argparse.Namespace) -> str:
    """Reads the labels and writes them as JSON lines; returns the summary."""
    labels = formats.read_labels(args.input, args.format, args.label_question)
    if not labels.posts:
        raise FormatError(f"{args.input}: no labelled post among {labels.records:,} "
                          f"{labels.format} records ({_reasons(labels.skipped)})")
    if not 0 <= args.holdout < 1:
        raise FormatError(f"--holdout {args.holdout}: must be in [0, 1)")
    model_labels = read_manifest(args.model)["labels"] if args.model else labels.model_labels
    kept, held = holdout_split([str(post.label) for post in labels.posts], args.holdout,
                               args.seed)
    formats.write_jsonl(args.output, (labels.posts[index].record() for index in kept))
    held_note = ""
    if held:
        root, dot, suffix = args.output.rpartition(".")
        holdout_path = args.holdout_output or (f"{root}-holdout.{suffix}" if dot
                                               else f"{args.output}-holdout")
        formats.write_jsonl(holdout_path, (labels.posts[index].record() for index in held))
        held_note = f"; held out {len(held):,} for --quantification_dataset in {holdout_path}"
    per_label = collections.Counter(str(post.label) for post in labels.posts)
    shown = []
    for label, count in per_label.most_common():
        outside = model_labels is not None and label not in model_labels
        shown.append(f"{label} {count:,}" + (" not among the model's labels" if outside else ""))
    return (f"read {labels.records:,} {labels.format} records from {args.input}; "
            f"{len(labels.posts):,} labelled posts ({', '.join(shown)}): wrote {len(kept):,} to "
            f"{args.output}{held_note}; skipped {_counts(labels.skipped)}")
