"""Text front ends: characters and flite t2p phones in one shared vocabulary."""

import pytest

from e2etts import text
from e2etts.errors import UserError


def test_phones_mark_words_and_keep_punctuation():
    symbols = text.phonemize(text.normalize("Are you here? Don't argue, please."))
    assert symbols[:5] == ["aa1", "r", " ", "y", "uw1"]
    assert "?" in symbols and "," in symbols and symbols[-1] == "."
    assert symbols.count(" ") == 5  # six words, one boundary between each pair
    assert all(s in text.PHONE_TO_ID or s in text.CHAR_TO_ID for s in symbols)


def test_phone_ids_live_in_the_shared_vocabulary_and_differ_from_chars():
    chars = text.encode_text("a common brand of soap", "chars")
    phones = text.encode_text("a common brand of soap", "phones")
    assert chars == text.encode("a common brand of soap")
    assert all(0 < i < text.VOCAB_SIZE for i in phones)
    assert any(i in text.PHONE_TO_ID.values() for i in phones)
    assert len(phones) < len(chars)  # phones are denser than spelling here


def test_frontend_errors_are_actionable(monkeypatch):
    with pytest.raises(UserError, match="not one of chars, phones"):
        text.encode_text("hello", "graphemes")
    with pytest.raises(ValueError, match="outside the text vocabulary"):
        text.encode_text("hello 42", "phones")
    text._t2p.cache_clear()
    monkeypatch.setattr(text.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="Debian package flite"):
        text.encode_text("some words nobody asked for", "phones")
    text._t2p.cache_clear()
