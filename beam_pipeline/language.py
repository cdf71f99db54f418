"""Language identification before scoring: each text gets an ISO 639-1 code and a confidence,
and a text in a language the model does not read is left unscored (``unsupported_language``).

`py3langid` (the langid.py model, shipped in its PyPI package), restricted to English and the
languages most common on social media, reads the text with links, mentions and cashtags removed.
A text is called unsupported only when the guess is another language, its confidence is at
least `MIN_CONFIDENCE`, and the text is long enough to trust the guess (`MIN_LATIN_LETTERS`
Latin letters, or `MIN_OTHER_SCRIPT_LETTERS` letters mostly in another script): shorter texts
are scored whatever the guess. Why this library and these thresholds: docs/design.md,
"Languages" (benchmarks/results/language_id.md has the measurements).
"""
from __future__ import annotations

import html
import re
import threading
from collections.abc import Sequence
from typing import Optional

#: The languages the identifier chooses among (a closed set halves its errors on English posts)
CANDIDATES = ("en", "es", "pt", "fr", "de", "it", "nl", "ru", "uk", "pl", "tr", "ar", "fa", "ur",
              "hi", "bn", "ja", "zh", "ko", "id", "ms", "tl", "vi", "th", "sv")
MIN_CONFIDENCE = 0.5
MIN_LATIN_LETTERS = 20
MIN_OTHER_SCRIPT_LETTERS = 5
_NOISE = re.compile(r"(?:https?://|www\.)\S+|(?<!\w)[@$]\w+", re.IGNORECASE)
_LOCK = threading.Lock()
_IDENTIFIER = None


def _identifier():
    """One py3langid identifier per process (loading its model takes about a second)."""
    global _IDENTIFIER
    with _LOCK:
        if _IDENTIFIER is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(CANDIDATES))
            _IDENTIFIER = identifier
    return _IDENTIFIER


def identification_text(text: str) -> str:
    """What the identifier reads: links, @mentions and $cashtags removed, ``#tag`` read as
    ``tag``, HTML entities decoded."""
    return _NOISE.sub(" ", html.unescape(text)).replace("#", " ")


def _long_enough(text: str) -> bool:
    letters = [char for char in text if char.isalpha()]
    latin = sum(1 for char in letters if char < "\u0250")
    if latin >= MIN_LATIN_LETTERS:
        return True
    return len(letters) >= MIN_OTHER_SCRIPT_LETTERS and latin * 2 < len(letters)


class LanguageGate:
    """Identifies each text's language and says whether a model reading ``languages`` (ISO
    639-1 codes; None: any language) should score it."""

    def __init__(self, languages: Optional[Sequence[str]]):
        self.languages = None if languages is None else frozenset(languages)

    def identify(self, texts: Sequence[str]) -> list[tuple[Optional[str], float, bool]]:
        """``(language, confidence, supported)`` per text."""
        identifier = _identifier()
        results = []
        for text in texts:
            cleaned = identification_text(text)
            language, confidence = identifier.classify(cleaned)
            confidence = round(float(confidence), 4)
            supported = (self.languages is None or language in self.languages
                         or confidence < MIN_CONFIDENCE or not _long_enough(cleaned))
            results.append((language, confidence, supported))
        return results
