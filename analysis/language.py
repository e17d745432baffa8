"""Language of a mention, where the platform gives none.

VADER's lexicon is English: a German complaint scores as neutral, which would pull a
brand's NSS toward zero. So a mention is scored only by a scorer that declares its
language (analysis.sentiment.covers); with none configured for it, it is stored and
counted in volume but not scored ("unscored"), and every mood view says how many.

Detection uses py3langid (langid.py's model ships inside the package: nothing is
downloaded). Short texts are guesswork ("lol" comes out as Sesotho with 3 % confidence),
so a detection counts only at MIN_CONFIDENCE or above; below it the language stays
unknown, and unknown is scored, since the brand terms that matched are English words
more often than not and a wrong-language text mostly scores neutral anyway.
"""

from __future__ import annotations

from functools import cache

MIN_CONFIDENCE = 0.8


@cache
def _identifier():  # type: ignore[no-untyped-def]
    # Loading the model takes ~0.3 s: once per process, and only if something needs it.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``, or None when the detector is not confident."""
    if not text or not text.strip():
        return None
    lang, confidence = _identifier().classify(text)
    return lang if confidence >= MIN_CONFIDENCE else None
