"""Language identification before scoring: each text gets an ISO 639-1 code and a confidence,
and a text in a language the model does not read is left unscored (``unsupported_language``).

`py3langid` (the langid.py model, shipped in its PyPI package; all its languages but Nigerian
Pidgin and Latin, which took most of its errors on English tweets) reads the text with links,
mentions and cashtags removed. A text is unsupported when its language is not one the model
reads and either it is mostly in a non-Latin script (at least `MIN_OTHER_SCRIPT_LETTERS`
letters), or its confidence is at least `MIN_CONFIDENCE` and it has at least
`MIN_LATIN_LETTERS` Latin letters: shorter texts are scored whatever the guess, since below
that the guess itself is unreliable. A text without letters gets ``und``. Measurements behind
the library and the thresholds: benchmarks/results/language_id.md.
"""
from __future__ import annotations

import html
import re
import threading
from collections.abc import Sequence
from typing import Optional

MIN_CONFIDENCE = 0.5
MIN_LATIN_LETTERS = 15
MIN_OTHER_SCRIPT_LETTERS = 5
UNDETERMINED = "und"
EXCLUDED = frozenset({"pcm", "la"})  # py3langid labels English posts with these
_NOISE = re.compile(r"(?:https?://|www\.)\S+|(?<!\w)[@$][\w.]+", re.IGNORECASE)
_LITERAL_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")  # "\u2019" left as text by double escaping
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LOCK = threading.Lock()
_IDENTIFIER = None


def _identifier():
    """One py3langid identifier per process (its model loads in about two seconds)."""
    global _IDENTIFIER
    with _LOCK:
        if _IDENTIFIER is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages([code for code in identifier.nb_classes
                                      if code not in EXCLUDED])
            _IDENTIFIER = identifier
    return _IDENTIFIER


def identification_text(text: str) -> str:
    """What the identifier reads: links, @mentions and $cashtags removed, ``#tag`` read as
    ``tag``, HTML entities and literal ``\\uXXXX`` escapes decoded, control characters and lone
    surrogates dropped."""
    text = _LITERAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = _NOISE.sub(" ", html.unescape(_CONTROL.sub(" ", text)))
    return text.replace("#", " ")


def _letters(text: str) -> tuple[int, int]:
    """Letters, and Latin letters among them."""
    letters = [char for char in text if char.isalpha()]
    latin = sum(1 for char in letters if char < "\u0250" or "\u1e00" <= char <= "\u1eff")
    return len(letters), latin


class LanguageGate:
    """Identifies each text's language and says whether a model reading ``languages`` (ISO
    639-1 codes; None: any language) should score it."""

    def __init__(self, languages: Optional[Sequence[str]], *,
                 min_confidence: Optional[float] = None,
                 min_latin_letters: Optional[int] = None):
        """``min_confidence``, ``min_latin_letters``: other thresholds than `MIN_CONFIDENCE` and
        `MIN_LATIN_LETTERS` (benchmarks/language_id.py measures some)."""
        self.languages = None if languages is None else frozenset(languages)
        self.min_confidence = MIN_CONFIDENCE if min_confidence is None else min_confidence
        self.min_latin_letters = (MIN_LATIN_LETTERS if min_latin_letters is None
                                  else min_latin_letters)

    def identify(self, texts: Sequence[str]) -> list[tuple[str, float, bool]]:
        """``(language, confidence, supported)`` per text."""
        return [self._identify(text) for text in texts]

    def _identify(self, text: str) -> tuple[str, float, bool]:
        cleaned = identification_text(text)
        letters, latin = _letters(cleaned)
        if not letters:
            return UNDETERMINED, 0.0, True
        language, confidence = _identifier().classify(cleaned)
        language = UNDETERMINED if language == "zxx" else language
        confidence = round(float(confidence), 4)
        if self.languages is None or language in self.languages or language == UNDETERMINED:
            return language, confidence, True
        other_script = letters - latin >= MIN_OTHER_SCRIPT_LETTERS and letters - latin > latin
        confident = confidence >= self.min_confidence and latin >= self.min_latin_letters
        return language, confidence, not (other_script or confident)
