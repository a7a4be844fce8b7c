"""Text front end: normalization and the symbol vocabulary shared by every model.

Two front ends map normalized text to ids in one shared vocabulary:
- ``chars``: lower-cased characters; punctuation that shapes prosody is kept as tokens.
- ``phones``: flite's letter-to-sound rules and lexicon (Debian ``flite``, its ``t2p``
  tool, offline) give US-English phones with lexical stress; words are separated by the
  space symbol and sentence punctuation is kept. A phone sequence is far closer to the
  audio than spelling, which is what a small LLM trained on a few hours cannot learn for
  itself (docs/design-decisions.md).
Numbers must already be words (the embedded corpus only keeps sentences without digits;
real corpora ship normalized text).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import unicodedata

from .errors import UserError

PAD = "<pad>"
# Index 0 is padding (and the CTC blank for recognition heads); characters follow.
CHARACTERS = " abcdefghijklmnopqrstuvwxyz'.,?!;:-"
_CONSONANTS = "b ch d dh f g hh jh k l m n ng p r s sh t th v w y z zh el em en".split()
_VOWELS = "aa ae ah ao aw ax axr ay eh er ey ih iy ow oy uh uw".split()
PHONES = [*_CONSONANTS, *_VOWELS, *(v + "1" for v in _VOWELS)]
VOCAB = [PAD, *CHARACTERS, *PHONES]
CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB[: 1 + len(CHARACTERS)])}
PHONE_TO_ID = {p: i for i, p in enumerate(VOCAB) if i > len(CHARACTERS)}
VOCAB_SIZE = len(VOCAB)
FRONTENDS = ("chars", "phones")
_KEPT_PUNCTUATION = ",.?!;:"

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
    """ids -> text; phone ids come back as space-free phone names (for logs and CER)."""
    return "".join(VOCAB[i] for i in ids if 0 < int(i) < VOCAB_SIZE)


@functools.lru_cache(maxsize=65536)
def _t2p(words: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Phones per word from flite's t2p. Words are sent comma-separated so that t2p marks
    every word boundary with a pause; a count mismatch falls back to one word at a time."""
    exe = shutil.which("t2p")
    if exe is None:
        raise UserError(
            "data.text_frontend: phones needs flite's t2p (Debian package flite); install it "
            "(bash scripts/setup.sh does) or set data.text_frontend: chars"
        )
    out = subprocess.run([exe, ", ".join(words)], capture_output=True, text=True, check=True)
    groups, current = [], []
    for symbol in out.stdout.split():
        if symbol == "pau":
            if current:
                groups.append(tuple(current))
            current = []
        else:
            current.append(symbol)
    if current:
        groups.append(tuple(current))
    if len(groups) != len(words) and len(words) > 1:
        return tuple(p for w in words for p in _t2p((w,)))
    return tuple(groups) if groups else ((),)


def phonemize(text: str) -> list[str]:
    """Normalized text -> phone symbols, " " between words, sentence punctuation kept.

    >>> phonemize("are you here?")  # doctest: +SKIP
    ['aa1', 'r', ' ', 'y', 'uw1', ' ', 'hh', 'ih1', 'r', '?']
    """
    symbols: list[str] = []
    for piece in re.findall(r"[a-z']+|[" + re.escape(_KEPT_PUNCTUATION) + "]", text):
        if piece in _KEPT_PUNCTUATION:
            symbols.append(piece)
            continue
        word = piece.strip("'")
        if not word:
            continue
        if symbols and symbols[-1] != " ":
            symbols.append(" ")
        symbols.append(word)
    # One t2p call per sentence (its words batched), then the phones are spliced in.
    words = tuple(s for s in symbols if s not in _KEPT_PUNCTUATION and s != " ")
    phones = iter(_t2p(words)) if words else iter(())
    result: list[str] = []
    for s in symbols:
        if s in _KEPT_PUNCTUATION or s == " ":
            result.append(s)
        else:
            result.extend(next(phones))
    return result


def encode_text(text: str, frontend: str = "chars") -> list[int]:
    """Normalized text -> ids of the given front end (chars | phones)."""
    if frontend == "chars":
        return encode(text)
    if frontend != "phones":
        raise UserError(f"text front end {frontend!r} is not one of {', '.join(FRONTENDS)}")
    bad = out_of_vocab(text)
    if bad:
        raise ValueError(f"characters outside the text vocabulary: {''.join(bad)!r}")
    ids = []
    for symbol in phonemize(text):
        if symbol in CHAR_TO_ID:
            ids.append(CHAR_TO_ID[symbol])
        elif symbol in PHONE_TO_ID:
            ids.append(PHONE_TO_ID[symbol])
        else:
            raise ValueError(f"flite t2p gave the phone {symbol!r}, unknown to the phone set")
    return ids
