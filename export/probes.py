"""Built-in probe sentences for the parity check when no labelled eval set is given.

Hand-written review and market sentences (positive, negative, mixed, neutral; one word to a
paragraph), combined in pairs so that lengths and padding vary, plus a few texts longer than any
usual ``max_length`` so that truncation is exercised too.
"""
from __future__ import annotations

SENTENCES = (
    "great",
    "awful.",
    "Absolutely loved it.",
    "A total waste of two hours.",
    "The acting is superb and the story never lets go.",
    "I want my money back.",
    "It was fine, nothing more.",
    "The plot meanders and the dialogue is wooden.",
    "One of the best films I have seen this year!",
    "Not bad at all, though the ending drags a little.",
    "The soundtrack is lovely but the script is a mess.",
    "I fell asleep halfway through.",
    "A warm, funny and surprisingly moving picture.",
    "Nothing about this movie works.",
    "The service was slow and the food arrived cold.",
    "Friendly staff, spotless rooms, would stay again.",
    "The battery dies after an hour; avoid.",
    "Setup took two minutes and it has worked flawlessly since.",
    "Shares jumped 12% after the company beat earnings estimates.",
    "The stock plunged as revenue guidance was cut for the third time.",
    "The board will meet on Tuesday to discuss the quarterly report.",
    "Analysts upgraded the bank to outperform.",
    "Investors fear a recession as bond yields invert.",
    "Trading volume was average for a Monday.",
    "It isn't good, it isn't terrible, it just exists.",
    "I can't say I didn't enjoy it.",
    "Honestly? Brilliant.",
    "meh",
    "This is the worst customer support I have ever dealt with, and I have dealt with many.",
    "Crisp visuals, clever twists and a cast that clearly had fun making it.",
    "The sequel is louder, longer and far less interesting than the original.",
    "Delivery was on time and the package was well protected.",
)

CONNECTORS = ("and", "but", "although", "because")
LONG_TEXT_COUNT = 4
MINIMUM_PROBES = 256


def probe_sentences() -> list[str]:
    """At least 256 distinct probe texts of varied length (deterministic order)."""
    probes = list(SENTENCES)
    count = len(SENTENCES)
    pairs = ((first, (first + offset) % count)
             for offset in range(1, count) for first in range(count))
    for index, (first, second) in enumerate(pairs):
        if len(probes) >= MINIMUM_PROBES - LONG_TEXT_COUNT:
            break
        connector = CONNECTORS[index % len(CONNECTORS)]
        probes.append(f"{SENTENCES[first].rstrip('.!?')} {connector} {SENTENCES[second][0].lower()}"
                      f"{SENTENCES[second][1:]}")
    for start in range(LONG_TEXT_COUNT):
        probes.append(" ".join(SENTENCES[start::LONG_TEXT_COUNT] * 2))
    return probes
