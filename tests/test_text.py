"""course_lib.text: tokenizer, vocabulary, padding and windows (synthetic texts only)."""

import numpy as np
import pytest

from course_lib import text


def test_tokenize_lowercases_and_drops_punctuation_by_default():
    assert text.tokenize("Hello, World! It's 2 o'clock.") == ["hello", "world", "it's", "2",
                                                             "o'clock"]
    assert text.tokenize("Hello World", lowercase=False) == ["Hello", "World"]


def test_tokenize_keeps_punctuation_as_separate_tokens_when_asked():
    got = text.tokenize("Price: £5, up!", punctuation=True)
    assert got == ["price", ":", "£", "5", ",", "up", "!"]


def test_tokenize_handles_curly_apostrophes_underscores_and_unicode():
    assert text.tokenize("don\u2019t snake_case Café") == ["don't", "snake", "case", "café"]
    assert text.tokenize("") == []
    assert text.tokenize_all(["A b", "", "C"]) == [["a", "b"], [], ["c"]]


def test_tokenize_all_matches_tokenize():
    texts = ["One two, three.", "Don\u2019t STOP", "x_y z!"]
    for punct in (False, True):
        assert text.tokenize_all(texts, punctuation=punct) == [
            text.tokenize(t, punctuation=punct) for t in texts]


def _docs():
    return [["b", "a", "c", "a"], ["a", "b", "d"], ["e", "a"]]


def test_vocabulary_order_min_freq_and_max_size():
    v = text.Vocabulary.build(_docs())
    assert v.tokens[:2] == [text.PAD, text.OOV]
    assert v.tokens[2:] == ["a", "b", "c", "d", "e"]  # by count, ties alphabetical
    assert text.Vocabulary.build(_docs(), min_freq=2).tokens[2:] == ["a", "b"]
    assert len(text.Vocabulary.build(_docs(), max_size=3)) == 3
    assert v.n_special == 2 and v.mask_id is None
    m = text.Vocabulary.build(_docs(), specials=(text.PAD, text.OOV, text.MASK))
    assert m.mask_id == 2 and m.n_special == 3 and m.tokens[3] == "a"


def test_vocabulary_rejects_bad_arguments():
    with pytest.raises(ValueError, match="min_freq"):
        text.Vocabulary.build(_docs(), min_freq=0)
    with pytest.raises(ValueError, match="special"):
        text.Vocabulary.build(_docs(), max_size=1)
    with pytest.raises(ValueError, match="starts with"):
        text.Vocabulary(["a", "b"])


def test_encode_decode_round_trip_and_oov(tmp_path):
    v = text.Vocabulary.build(_docs())
    ids = v.encode(["a", "zebra", "e"])
    assert ids.dtype == np.int32 and ids.tolist() == [2, 1, 6]
    assert v.decode(ids) == ["a", text.OOV, "e"]
    assert v.decode([2, 0, 0]) == ["a"]
    assert v.decode([2, 0], keep_pad=True) == ["a", text.PAD]
    v.save(tmp_path / "v.json")
    w = text.Vocabulary.load(tmp_path / "v.json")
    assert w.tokens == v.tokens and w.counts == v.counts


def test_pad_all_four_ways():
    seqs = [[1, 2, 3, 4], [5], []]
    assert text.pad(seqs, 3).tolist() == [[1, 2, 3], [5, 0, 0], [0, 0, 0]]
    assert text.pad(seqs, 3, padding="pre").tolist() == [[1, 2, 3], [0, 0, 5], [0, 0, 0]]
    assert text.pad(seqs, 3, truncating="pre").tolist() == [[2, 3, 4], [5, 0, 0], [0, 0, 0]]
    assert text.pad(seqs, 2, value=9).tolist() == [[1, 2], [5, 9], [9, 9]]
    assert text.pad(seqs, 3).dtype == np.int32
    with pytest.raises(ValueError):
        text.pad(seqs, 3, padding="middle")
    with pytest.raises(ValueError):
        text.pad(seqs, 0)


def test_encode_texts_and_windows():
    v = text.Vocabulary.build(text.tokenize_all(["alpha beta gamma", "beta gamma"]))
    x = text.encode_texts(["Alpha beta!", "delta"], v, maxlen=4)
    assert x.shape == (2, 4) and x[0, 0] == v.index["alpha"] and x[1].tolist() == [1, 0, 0, 0]
    w = text.windows([np.arange(2, 12), np.arange(2, 5)], length=4, min_tokens=3)
    # 10 ids -> windows of 4, 4 and 2 (dropped: < 3); 3 ids -> one window of 3
    assert w.tolist() == [[2, 3, 4, 5], [6, 7, 8, 9], [2, 3, 4, 0]]
    assert text.windows([], 4).shape == (0, 4)
