"""Near-duplicate texts: copy-paste campaigns, bots, cross-posts.

The rule (also in the README):

* A text's fingerprint is its words after normalising: lower case, links and @handles
  removed, '#' dropped from hashtags, punctuation and emoji removed, spaces collapsed.
  Texts of fewer than MIN_WORDS words get no fingerprint: "same here" and "+1" said by
  many people are many opinions, not one copied message.
* A mention is a near-duplicate when an earlier-stored mention of the same brand, from
  any source, has the same fingerprint and was created within WINDOW of it.
* Near-duplicates count in volume (mentions) but not in mood: the first copy carries
  the opinion once; the copies are flagged ``duplicate`` and left out of every label
  count, NSS and conversation score.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

MIN_WORDS = 6
WINDOW = timedelta(days=7)

_LINK = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@[\w.]+")
_NOT_WORD = re.compile(r"[^\w]+")


def normalise(text: str) -> str:
    text = _HANDLE.sub(" ", _LINK.sub(" ", text.casefold()))
    return " ".join(_NOT_WORD.sub(" ", text.replace("_", " ")).split())


def fingerprint(text: str) -> str | None:
    """A short stable hash of the normalised text, or None for texts too short to tell."""
    words = normalise(text)
    if words.count(" ") + 1 < MIN_WORDS:
        return None
    return hashlib.blake2b(words.encode("utf-8"), digest_size=8).hexdigest()
