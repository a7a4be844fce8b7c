"""WER text normalization: one function for reference and hypothesis."""

import pytest

from e2etts.evaluate.asr import corpus_wer, utterance_errors, utterance_wer
from e2etts.evaluate.normalize import NORMALIZER, normalize_for_wer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # casing, whitespace, punctuation
        ("Hello, World!", "hello world"),
        ("  many   spaces\tand\nlines ", "many spaces and lines"),
        ("Wait... what?! Yes; no: maybe.", "wait what yes no maybe"),
        ("?!...", ""),
        ("", ""),
        (None, ""),
        # apostrophes: contractions expanded, typographic ones first made ASCII, quotes go
        ("Don't stop, it's fine.", "do not stop it is fine"),
        ("\u201cSmart\u201d quotes, don\u2019t", "smart quotes do not"),
        ("'Quoted' words and the students' books", "quoted words and the students books"),
        ("I won't, we'll see", "i will not we will see"),
        # hyphens and slashes separate words
        ("Well-known e-mail/fax", "well known e mail fax"),
        # numbers: spelled-out and written forms meet in digits
        ("twenty one dogs", "21 dogs"),
        ("21 dogs", "21 dogs"),
        ("one thousand two hundred people", "1200 people"),
        ("1,200 people", "1200 people"),
        ("the twenty first time", "the 21st time"),
        ("3.5 km", "3.5 km"),
        # spelling variants, titles, fillers, diacritics
        ("The colour of Mr. Smith's car", "the color of mister smith is car"),
        ("uh, hmm, yes", "yes"),
        ("Caf\u00e9 na\u00efve", "cafe naive"),
    ],
)
def test_normalize_for_wer(text, expected):
    assert normalize_for_wer(text) == expected


def test_normalizer_is_named():
    assert NORMALIZER.startswith("whisper-english (whisper-normalizer ")
    assert "not installed" not in NORMALIZER


def test_normalization_makes_formatting_free():
    ref = "Mr. Smith arrived at 10, didn't he?"
    hyp = "mister smith arrived at ten  did not he"
    assert utterance_errors(ref, hyp) == (0, 8)


def test_utterance_and_corpus_wer():
    assert utterance_errors("the cat sat", "the cat sat down") == (1, 3)
    assert utterance_errors("the cat sat", "") == (3, 3)
    assert utterance_errors("", "noise") == (1, 0)
    assert utterance_wer("a b c d", "a x c d") == pytest.approx(0.25)
    # Corpus WER weights utterances by length: (1 + 0) / (2 + 4).
    assert corpus_wer(["a b", "c d e f"], ["a", "c d e f"]) == pytest.approx(1 / 6)
