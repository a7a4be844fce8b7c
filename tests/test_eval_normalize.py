"""WER text normalization: one function for reference and hypothesis."""

import pytest

from e2etts.evaluate.asr import corpus_wer, utterance_errors, utterance_wer
from e2etts.evaluate.normalize import int_to_words, normalize_for_wer


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (40, "forty"),
        (45, "forty five"),
        (100, "one hundred"),
        (105, "one hundred five"),
        (1000, "one thousand"),
        (1984, "one thousand nine hundred eighty four"),
        (2010, "two thousand ten"),
        (9999, "nine thousand nine hundred ninety nine"),
        (10000, "one zero zero zero zero"),
    ],
)
def test_int_to_words(n, words):
    assert int_to_words(n) == words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  many   spaces\tand\nlines ", "many spaces and lines"),
        ("Don't stop; it's O'Neil's.", "don't stop it's o'neil's"),
        ("'Quoted' words and the students' books", "quoted words and the students books"),
        ("\u201cSmart\u201d quotes \u2019n\u2019 don\u2019t", "smart quotes n don't"),
        ("Well-known e-mail/fax", "well known e mail fax"),
        (
            "In 1984, 3 men paid $20.",
            "in one thousand nine hundred eighty four three men paid twenty dollars",
        ),
        ("1,200 people; 3.5 km", "one thousand two hundred people three point five km"),
        ("the 21st and 2nd time", "the twenty first and second time"),
        ("100% & more", "one hundred percent and more"),
        ("Caf\u00e9 na\u00efve", "cafe naive"),
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalize_for_wer(text, expected):
    assert normalize_for_wer(text) == expected


def test_normalization_makes_formatting_free():
    ref = "Mr. Smith arrived at 10, didn't he?"
    hyp = "mr smith arrived at ten  didn't he"
    assert utterance_errors(ref, hyp) == (0, 7)


def test_utterance_and_corpus_wer():
    assert utterance_errors("the cat sat", "the cat sat down") == (1, 3)
    assert utterance_errors("the cat sat", "") == (3, 3)
    assert utterance_errors("", "noise") == (1, 0)
    assert utterance_wer("a b c d", "a x c d") == pytest.approx(0.25)
    # Corpus WER weights utterances by length: (1 + 0) / (2 + 4).
    assert corpus_wer(["a b", "c d e f"], ["a", "c d e f"]) == pytest.approx(1 / 6)
