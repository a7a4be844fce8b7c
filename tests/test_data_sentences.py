"""WordNet example sentences: the real loader and parsing on a tiny fake WordNet."""

import pytest

from e2etts.data.sentences import load_wordnet_sentences
from e2etts.errors import UserError
from e2etts.text import out_of_vocab


def test_real_wordnet_gives_many_clean_sentences():
    sentences = load_wordnet_sentences(min_words=3, max_words=20)
    assert len(sentences) > 30000  # 41,698 with wordnet-base 3.0
    assert sentences == sorted(set(sentences))
    assert all(3 <= len(s.split()) <= 20 for s in sentences)
    assert not any(c.isdigit() for s in sentences for c in s)
    assert not any(out_of_vocab(s) for s in sentences)
    assert load_wordnet_sentences(min_words=3, max_words=20) == sentences


def _fake_wordnet(root):
    root.mkdir()
    header = '  1 This software and database is being provided\n  2 "quoted licence text here"\n'
    lines = {
        "data.noun": '00001 03 n 01 dog 0 000 | a domestic animal; "The dog barked all night"; '
        '"the dog barked all night"\n',
        "data.verb": '00002 29 v 01 sigh 0 000 | heave a sigh; "She sighed sadly"; "Inhale deeply"\n',
        "data.adj": '00003 00 a 01 big 0 000 | large; "a big house with 3 rooms"; "caf\u00e9 au lait is nice"\n',
        "data.adv": '00004 02 r 01 fast 0 000 | quickly; "he ran fast & far away"\n',
    }
    for name, line in lines.items():
        (root / name).write_text(header + line)
    return root


def test_parsing_normalizes_filters_and_dedups(tmp_path):
    root = _fake_wordnet(tmp_path / "wn")
    got = load_wordnet_sentences(root, min_words=3, max_words=20)
    # duplicates after normalization collapse; digits and '&' drop; 2-word examples drop;
    # accents fold; the licence header is not a gloss.
    assert got == ["cafe au lait is nice", "she sighed sadly", "the dog barked all night"]
    assert load_wordnet_sentences(root, min_words=5, max_words=5) == [
        "cafe au lait is nice",
        "the dog barked all night",
    ]


def test_missing_wordnet_names_the_package(tmp_path):
    with pytest.raises(UserError, match="wordnet-base"):
        load_wordnet_sentences(tmp_path / "nowhere")
    with pytest.raises(UserError, match="wordnet-base"):  # a directory without the data files
        load_wordnet_sentences(tmp_path)
    with pytest.raises(UserError, match="min_words"):
        load_wordnet_sentences(min_words=5, max_words=3)
