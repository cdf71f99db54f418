"""Social text normalisation, the same at training and at scoring, and duplicate fingerprints.

A normalisation is a property of the model: ``sentiment-train --text_normalization`` records the
steps in the model's config, ``sentiment-export`` copies them into ``bundle.json``, and the
scoring model applies them before tokenising. Steps, in the order applied::

    mentions    @someone              -> @user
    links       https://t.co/x, www.x -> http
    emoji       😂                    -> face with tears of joy   (the `emoji` library's names)
    repeats     soooo!!!!             -> soo!!     (a character repeated 3+ times, kept twice)
    whitespace  runs of spaces, tabs and newlines -> one space

``social`` names the steps that measured as helping (benchmarks/results/train_accuracy.md);
``none`` is no step. Fingerprints (`fingerprint`) ignore case, mentions, links and a leading
``RT @user:``, so a retweet and its copies share one.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import emoji

STEPS = ("mentions", "links", "emoji", "repeats", "whitespace")
SOCIAL = ("mentions", "links", "emoji", "repeats", "whitespace")
NONE = "none"
ALIASES = {"social": SOCIAL, NONE: ()}

_MENTION = re.compile(r"(?<![\w@])@\w{1,50}")
_LINK = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_REPEAT = re.compile(r"(.)\1{2,}", re.DOTALL)
_SPACE = re.compile(r"\s+")
_RETWEET = re.compile(r"^(?:rt\s+@user:?\s*)+", re.IGNORECASE)
FINGERPRINT_HEX = 16


def parse_steps(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """The steps a flag or manifest value names: ``social``, ``none``, a comma-separated list of
    `STEPS`, or a list of them; raises ValueError for an unknown step."""
    if value is None:
        return ()
    names = value.split(",") if isinstance(value, str) else list(value)
    steps: list[str] = []
    for name in (name.strip() for name in names):
        if not name:
            continue
        if name in ALIASES:
            steps.extend(ALIASES[name])
        elif name in STEPS:
            steps.append(name)
        else:
            raise ValueError(f"unknown text normalisation {name!r}: use social, none or a "
                             f"comma-separated list of {', '.join(STEPS)}")
    return tuple(step for step in STEPS if step in steps)


def _emoji_name(match: str, _data: dict) -> str:
    return " " + match.strip(":").replace("_", " ") + " "


def normalize(text: str, steps: Sequence[str]) -> str:
    """``text`` with the normalisation ``steps`` (see `parse_steps`) applied, in `STEPS` order."""
    if "mentions" in steps:
        text = _MENTION.sub("@user", text)
    if "links" in steps:
        text = _LINK.sub("http", text)
    if "emoji" in steps:
        text = emoji.replace_emoji(text, replace=lambda chars, data: _emoji_name(
            data["en"], data))
    if "repeats" in steps:
        text = _REPEAT.sub(r"\1\1", text)
    if "whitespace" in steps:
        text = _SPACE.sub(" ", text).strip()
    return text


def fingerprint(text: str) -> str:
    """A hash shared by a post and its copies: the same text once mentions, links, repeats and
    whitespace are normalised, case ignored, and a leading ``RT @user:`` removed."""
    canonical = _RETWEET.sub("", normalize(text, SOCIAL).lower()).strip()
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX]
