"""Text front end: normalization and the character vocabulary shared by every model.

Characters are lower-cased; punctuation that shapes prosody is kept as tokens. Numbers
must already be words (the embedded corpus only keeps sentences without digits; real
corpora ship normalized text).
"""

from __future__ import annotations

import re
import unicodedata

PAD = "<pad>"
# Index 0 is padding (and the CTC blank for recognition heads); characters follow.
CHARACTERS = " abcdefghijklmnopqrstuvwxyz'.,?!;:-"
VOCAB = [PAD, *CHARACTERS]
CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB)}
VOCAB_SIZE = len(VOCAB)

_REPLACEMENTS = {
    "\u2019": "'",
    "\u2018": "'",
    "`": "'",
    "\u201c": "",
    "\u201d": "",
    '"': "",
    "\u2014": " - ",
    "\u2013": "-",
    "(": ",",
    ")": ",",
}


def normalize(text: str) -> str:
    """Lower-case, fold accents and typographic quotes, collapse whitespace.

    Characters that remain outside CHARACTERS are left in place so that `check_vocab`
    can name them.
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    for src, dst in _REPLACEMENTS.items():
        text = text.replace(src, dst)
    text = text.lower()
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.?!;:])", r"\1", text)
    return text


def out_of_vocab(text: str) -> list[str]:
    """Characters of (normalized) text that the vocabulary lacks, sorted, unique."""
    return sorted({c for c in text if c not in CHAR_TO_ID or c == PAD})


def encode(text: str) -> list[int]:
    """Normalized text -> ids (1..VOCAB_SIZE-1). Raises ValueError on unknown characters."""
    bad = out_of_vocab(text)
    if bad:
        raise ValueError(f"characters outside the text vocabulary: {''.join(bad)!r}")
    return [CHAR_TO_ID[c] for c in text]


def decode(ids) -> str:
    return "".join(VOCAB[i] for i in ids if 0 < int(i) < VOCAB_SIZE)
