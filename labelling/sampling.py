"""Which posts to label: stratified by key and predicted label, the least confident, or uniformly
at random, the same for the same posts and seed.

A post's confidence is its highest probability; the least confident posts are those with the
lowest one (for two labels the same order as highest entropy). Every post gets a random priority
from ``numpy.random.default_rng(seed)``, in input order: ties in confidence are broken by it, a
random pick takes the lowest priorities, and the sample is returned in priority order (shuffled,
so that a person does not label one stratum after another, and reproducible).
"""
from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import Optional

import numpy as np

STRATIFIED, UNCERTAIN, RANDOM = "stratified", "uncertain", "random"
STRATEGIES = (STRATIFIED, UNCERTAIN, RANDOM)
#: why a post was sampled: at random within its stratum, as one of the least confident, or
#: uniformly at random (strategy random)
STRATUM = "stratum"
DEFAULT_UNCERTAIN_SHARE = 0.25


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A post that may be sampled: its id, text, key value (None without a key column),
    probabilities by label in the model's label order (empty when no model scored it) and the
    version of the model that gave them."""

    id: str
    text: str
    key: Optional[str]
    probabilities: dict[str, float]
    model_version: Optional[str] = None

    @property
    def predicted(self) -> Optional[str]:
        """The label with the highest probability (the first one on a tie); None without
        probabilities (posts of a raw dump sampled at random, without a model)."""
        if not self.probabilities:
            return None
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        return max(self.probabilities.values())


@dataclasses.dataclass(frozen=True)
class Sampled:
    candidate: Candidate
    because: str


def allocate(sizes: Sequence[int], n: int) -> list[int]:
    """How many of ``n`` posts each stratum of ``sizes`` gets: proportionally to its size, at
    least one per non-empty stratum, largest-remainder rounding (ties to the earlier stratum).

    Strata whose share is below one get one each and leave the rest to the others, until every
    remaining share is at least one. With fewer posts than strata, the ``n`` largest strata get
    one each; with at least as many as there are posts, every post is taken.
    """
    total = sum(sizes)
    if n >= total:
        return list(sizes)
    allocation = [0] * len(sizes)
    non_empty = [index for index, size in enumerate(sizes) if size]
    if n <= len(non_empty):
        for index in sorted(non_empty, key=lambda index: -sizes[index])[:n]:
            allocation[index] = 1
        return allocation
    open_strata, remaining = non_empty, n
    while True:
        rest = sum(sizes[index] for index in open_strata)
        small = [index for index in open_strata if remaining * sizes[index] < rest]
        if not small:
            break
        for index in small:
            allocation[index] = 1
        open_strata = [index for index in open_strata if index not in small]
        remaining -= len(small)
    remainders = {}
    for index in open_strata:
        allocation[index], remainders[index] = divmod(remaining * sizes[index], rest)
    left = remaining - sum(allocation[index] for index in open_strata)
    for index in sorted(open_strata, key=lambda index: -remainders[index])[:left]:
        allocation[index] += 1
    return allocation


def uncertain_count(count: int, share: float) -> int:
    """How many of a stratum's ``count`` posts are its least confident: ``share`` of them,
    rounded half up."""
    return int(count * share + 0.5)


def sample(candidates: Sequence[Candidate], n: int, strategy: str = STRATIFIED, seed: int = 42,
           uncertain_share: float = DEFAULT_UNCERTAIN_SHARE) -> list[Sampled]:
    """``n`` of ``candidates`` (all of them when there are fewer) by ``strategy``, in priority
    order (see the module docstring)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
    priority = np.random.default_rng(seed).random(len(candidates))
    indices = range(len(candidates))
    if strategy == RANDOM:
        chosen = [(index, RANDOM) for index in sorted(indices, key=priority.__getitem__)[:n]]
    elif strategy == UNCERTAIN:
        chosen = [(index, UNCERTAIN)
                  for index in _least_confident(candidates, indices, priority)[:n]]
    else:
        chosen = _stratified(candidates, n, priority, uncertain_share)
    chosen.sort(key=lambda pair: priority[pair[0]])
    return [Sampled(candidates[index], because) for index, because in chosen]


def strata(candidates: Sequence[Candidate]) -> dict[tuple[str, str], list[int]]:
    """Candidate indices by stratum ``(key, predicted label)``, strata in sorted order."""
    members: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for index, candidate in enumerate(candidates):
        members[(candidate.key or "", candidate.predicted)].append(index)
    return dict(sorted(members.items()))


def _least_confident(candidates: Sequence[Candidate], indices: Sequence[int],
                     priority: np.ndarray) -> list[int]:
    return sorted(indices, key=lambda index: (candidates[index].confidence, priority[index]))


def _stratified(candidates: Sequence[Candidate], n: int, priority: np.ndarray,
                uncertain_share: float) -> list[tuple[int, str]]:
    groups = list(strata(candidates).values())
    chosen = []
    for members, count in zip(groups, allocate([len(members) for members in groups], n)):
        uncertain = _least_confident(candidates, members, priority)[
            :uncertain_count(count, uncertain_share)]
        rest = sorted(set(members) - set(uncertain), key=priority.__getitem__)
        chosen += [(index, UNCERTAIN) for index in uncertain]
        chosen += [(index, STRATUM) for index in rest[:count - len(uncertain)]]
    return chosen
