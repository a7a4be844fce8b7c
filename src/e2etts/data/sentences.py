"""Real English sentences for the embedded corpus: the example sentences in WordNet glosses.

A gloss in ``data.<pos>`` reads ``definition; "example one"; "example two"``; the examples
are the double-quoted strings.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from ..text import normalize, out_of_vocab

WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
_QUOTED = re.compile(r'"([^"]+)"')


def _examples(path: Path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith(" "):  # the license header lines start with two spaces
                continue
            _, sep, gloss = line.partition(" | ")
            if sep:
                yield from _QUOTED.findall(gloss)


def load_wordnet_sentences(
    wordnet_dir: str = "/usr/share/wordnet", min_words: int = 3, max_words: int = 20
) -> list[str]:
    """Normalized WordNet example sentences with min_words..max_words words.

    Drops sentences with digits or characters outside the text vocabulary; deduplicated
    and sorted, so the result depends only on the WordNet files.
    """
    if not 1 <= min_words <= max_words:
        raise UserError(
            f"min_words={min_words}, max_words={max_words}: need 1 <= min_words <= max_words "
            "(params.yaml: data.embedded)"
        )
    root = Path(wordnet_dir)
    paths = [root / name for name in WORDNET_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(
            f"WordNet data not found ({', '.join(missing)}): install the Debian package "
            "wordnet-base (apt-get install wordnet-base) or pass its directory"
        )
    sentences = set()
    for path in paths:
        for example in _examples(path):
            text = normalize(example)
            if not text or any(c.isdigit() for c in text) or out_of_vocab(text):
                continue
            n_words = len(text.split())
            if min_words <= n_words <= max_words and any(c.isalpha() for c in text):
                sentences.add(text)
    return sorted(sentences)
