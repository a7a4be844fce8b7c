"""Text normalization for WER: one function, applied identically to reference and hypothesis.

Whisper-judged WER (Seed-TTS-Eval and most TTS papers) is computed after Whisper's English
text normalizer, so this module uses that normalizer, as packaged on PyPI by
``whisper-normalizer`` (``EnglishTextNormalizer``: lower case; punctuation, bracketed
annotations and fillers such as "uh", "hmm" removed; contractions expanded, "don't" ->
"do not"; spelled-out numbers turned into digits, "twenty one" -> "21", "1,000" -> "1000";
British spellings mapped to American; "Mr." -> "mister"; diacritics folded).

Two things it does not do are added around it:
- typographic apostrophes (U+2019 and kin) become ASCII first; otherwise "don’t" splits
  into "don t" where "don't" becomes "do not";
- a word is a token with at least one letter or digit: the normalizer keeps a lone "." or
  "%" it meets outside a number ("..." -> "."), which is not a spoken word.

``NORMALIZER`` names the normalizer in the metrics (``text_normalizer``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from ..errors import UserError

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_WORD = re.compile(r"[0-9a-z]")


def _package_version() -> str:
    try:
        return version("whisper-normalizer")
    except PackageNotFoundError:
        return "not installed"


NORMALIZER = f"whisper-english (whisper-normalizer {_package_version()})"


@lru_cache(maxsize=1)
def _english():
    try:
        from whisper_normalizer.english import EnglishTextNormalizer
    except ImportError:
        raise UserError(
            "WER needs Whisper's English text normalizer: pip install whisper-normalizer "
            "(make setup installs it from requirements.lock)"
        ) from None
    return EnglishTextNormalizer()


@lru_cache(maxsize=65536)
def normalize_for_wer(text: str) -> str:
    """-> lower-case words separated by single spaces, ready for jiwer.

    >>> normalize_for_wer("He said: \u201cDon\u2019t pay $1,200 for the 2nd one!\u201d")
    'he said do not pay $1200 for the 2nd one'
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    words = _english()(text.translate(_APOSTROPHES)).split()
    return " ".join(w for w in words if _WORD.search(w))
