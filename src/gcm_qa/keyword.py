"""BM25 over the same chunks the dense index holds, made from per-document term counts.

Tokenising is ours because the corpus is bilingual and numeric: accents are folded so 'migración'
and 'migracion' meet, numbers keep their decimals ('59.5', '73/195') because numeric questions
hinge on them, and each document is stemmed in its own language ('regularisation' meets
'regularise' in English, 'regularización' meets 'regularizar' in Spanish). A query is stemmed once
per language the index holds, and each passage is scored with the stems of its own language.

Each document's part of the index keeps its *term counts* (:class:`TermCounts`), not scores: BM25's
IDF and average length belong to the whole corpus, so a library that stores finished scores (bm25s
bakes IDF into every stored score) would have to re-score every document each time one is added.
:class:`KeywordIndex` joins the counts of all documents into one sparse matrix when the index is
loaded and scores a query's few terms against it, with the formula of bm25s's default ('lucene':
IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))``, term weight ``tf / (k1 (1 - b + b dl / avgdl) + tf)``);
tests/test_keyword.py checks the scores equal bm25s's on hand-made texts.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse
import Stemmer

from gcm_qa.stopwords import ENGLISH, SPANISH

# English and Spanish function words (see gcm_qa.stopwords): the corpus is bilingual and a question
# may be asked in either language.
STOPWORDS = frozenset(ENGLISH + SPANISH)

_TOKEN = re.compile(r"\d+(?:[.,/]\d+)*|[a-z]+(?:'[a-z]+)?")
# The same tokens in ASCII text, where \d is [0-9]: a range test instead of a Unicode category
# lookup at every position, about twice as fast (\d still finds other scripts' digits elsewhere).
_ASCII_TOKEN = re.compile(r"[0-9]+(?:[.,/][0-9]+)*|[a-z]+(?:'[a-z]+)?")
_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _drop_combining(match: re.Match[str]) -> str:
    return "".join(ch for ch in match.group() if not unicodedata.combining(ch))


def fold(text: str) -> str:
    """Lower case, compatibility forms unfolded ('ﬁ' -> 'fi') and accents dropped ('Migración' ->
    'migracion'). It runs on every chunk and sentence at every build, so ASCII text (which every
    normalisation leaves alone) returns at once, and only runs of non-ASCII characters are looked at
    one character at a time; the result is that of dropping every combining character of
    NFKD(NFKC(text).lower())."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower())
    return text if text.isascii() else _NON_ASCII.sub(_drop_combining, text)


# Snowball stemmers for the languages documents are tagged with; any other language is stemmed as
# English, which at worst leaves its words whole.
SNOWBALL = {"en": "english", "es": "spanish", "pt": "portuguese", "fr": "french"}


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(SNOWBALL.get(language, "english"))


def tokenize(text: str, language: str = "en") -> list[str]:
    tokens: list[str] = []
    stem = _stemmer(language).stemWord
    folded = fold(text)
    for tok in (_ASCII_TOKEN if folded.isascii() else _TOKEN).findall(folded):
        if tok[0].isdigit():
            tok = tok.replace(",", "") if _THOUSANDS.fullmatch(tok) else tok
            tokens.append(tok)
            continue
        if tok in STOPWORDS or len(tok) < 2:
            continue
        tokens.append(stem(tok))
    return tokens


# A text with no token is counted as holding this one (length 1), as bm25s counts it: scores stay bm25s's.
EMPTY = "∅"


@dataclass(frozen=True)
class TermCounts:
    """Which terms each text of one document holds and how often (rows in CSR form), with the
    terms themselves and each text's language: what BM25 needs of a document apart from the rest
    of the corpus."""

    vocab: np.ndarray  # str: local term id -> term
    indptr: np.ndarray  # int64 (rows + 1): row i's entries are [indptr[i], indptr[i + 1])
    ids: np.ndarray  # int32 local term ids
    counts: np.ndarray  # int32 occurrences of each term in its row
    languages: np.ndarray  # str, one per row (a language without a stemmer reads as English)

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def count(cls, texts: Sequence[str], languages: Sequence[str]) -> TermCounts:
        langs = [lang if lang in SNOWBALL else "en" for lang in languages]
        local: dict[str, int] = {}
        indptr = [0]
        ids: list[int] = []
        counts: list[int] = []
        for text, lang in zip(texts, langs, strict=True):
            row: dict[int, int] = {}
            for token in tokenize(text, lang) or [EMPTY]:
                term = local.setdefault(token, len(local))
                row[term] = row.get(term, 0) + 1
            ids.extend(row)
            counts.extend(row.values())
            indptr.append(len(ids))
        return cls(np.array(list(local), dtype=str), np.array(indptr, dtype=np.int64),
                   np.array(ids, dtype=np.int32), np.array(counts, dtype=np.int32), np.array(langs, dtype=str))

    def save(self, path: Path) -> None:
        with path.open("wb") as f:  # a file object, so numpy does not add '.npz' to the name
            np.savez(f, vocab=self.vocab, indptr=self.indptr, ids=self.ids, counts=self.counts,
                     languages=self.languages)

    @classmethod
    def load(cls, path: Path) -> TermCounts:
        """Raises ValueError when the arrays do not fit together (a damaged file that still unzips)."""
        with np.load(path, allow_pickle=False) as data:
            counts = cls(*(data[name] for name in ("vocab", "indptr", "ids", "counts", "languages")))
        n = counts.rows
        if (n < 0 or len(counts.languages) != n or int(counts.indptr[0]) != 0
                or int(counts.indptr[-1]) != len(counts.ids) != len(counts.counts)
                or bool(np.any(np.diff(counts.indptr) < 0))
                or (len(counts.ids) and not 0 <= int(counts.ids.min()) <= int(counts.ids.max()) < len(counts.vocab))):
            raise ValueError("its term counts do not fit together")
        return counts


class Vocabulary:
    """Term -> column of the joined matrix, for every document part loaded in a process. Columns
    are only ever added, so the columns found for a part stay right for every later join, and a
    part is mapped once however many times the index is rebuilt around it."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def columns(self, vocab: np.ndarray) -> np.ndarray:
        with self._lock:
            ids = self.ids
            return np.array([ids.setdefault(t, len(ids)) for t in vocab.tolist()], dtype=np.int64)


class KeywordIndex:
    """BM25 scores for every text of an index, as a dense array so filters and fusion are plain numpy."""

    def __init__(self, parts: Sequence[tuple[TermCounts, np.ndarray]], vocabulary: Vocabulary, *,
                 k1: float, b: float) -> None:
        """``parts``: each document's counts, with the columns of its terms in ``vocabulary``
        (:meth:`Vocabulary.columns`), in the order of the index's rows. ``k1`` and ``b``: BM25's
        term-frequency saturation and length normalisation (the settings' ``keyword`` group)."""
        self.vocabulary = vocabulary
        self.k1, self.b = k1, b
        n = sum(p.rows for p, _ in parts)
        width = len(vocabulary.ids)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.concatenate(
            [np.diff(p.indptr) for p, _ in parts]) if parts else np.zeros(0, dtype=np.int64))
        cols = np.concatenate([columns[p.ids] for p, columns in parts]) if parts else np.zeros(0, dtype=np.int64)
        tf = np.concatenate([p.counts for p, _ in parts]).astype(np.float32) if parts else np.zeros(0, np.float32)
        # one column per term: its postings (rows holding it, and how often) are one slice
        self.postings = scipy.sparse.csc_matrix((tf, (rows, cols)), shape=(n, width))
        self.lengths = np.bincount(rows, weights=tf, minlength=n).astype(np.float32)
        self.languages = np.concatenate([p.languages for p, _ in parts]) if parts else np.zeros(0, dtype=str)
        self._present = sorted(set(self.languages.tolist()))
        df = np.diff(self.postings.indptr).astype(np.float64)
        self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        mean = float(self.lengths.mean()) if n else 1.0
        self._norm = (k1 * ((1 - b) + b * self.lengths / mean)).astype(np.float32)

    @property
    def rows(self) -> int:
        return int(self.postings.shape[0])

    @classmethod
    def build(cls, texts: Sequence[str], languages: Sequence[str], *, k1: float, b: float) -> KeywordIndex:
        """One index of ``texts`` alone (a document part of its own)."""
        vocabulary = Vocabulary()
        counts = TermCounts.count(texts, languages)
        return cls([(counts, vocabulary.columns(counts.vocab))], vocabulary, k1=k1, b=b)

    def _term_scores(self, column: int, out: np.ndarray) -> None:
        lo, hi = self.postings.indptr[column], self.postings.indptr[column + 1]
        rows = self.postings.indices[lo:hi]
        tf = self.postings.data[lo:hi]
        out[rows] += self.idf[column] * tf / (self._norm[rows] + tf)

    def scores(self, query: str) -> np.ndarray:
        """Per row, the sum over the query's terms (a repeated term counts again, as in bm25s) of
        its BM25 weight there; each row meets the query's terms stemmed in the row's language."""
        out = np.zeros(self.rows, dtype=np.float32)
        width = self.postings.shape[1]
        for language in self._present:
            known = [c for c in (self.vocabulary.ids.get(t) for t in tokenize(query, language))
                     if c is not None and c < width]
            if not known:
                continue
            scores = np.zeros(self.rows, dtype=np.float32)
            for column in known:
                self._term_scores(column, scores)
            if len(self._present) == 1:
                return scores
            own = self.languages == language
            out[own] = scores[own]
        return out
