"""BM25 over the same chunks the dense index holds (bm25s: sparse matrices, saved without pickle).

Tokenising is ours because the corpus is bilingual and numeric: accents are folded so 'migración'
and 'migracion' meet, numbers keep their decimals ('59.5', '73/195') because numeric questions
hinge on them, and English stemming lets 'regularisation' meet 'regularise'.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves also among per via within without according report
    al ante bajo cabe con contra de del desde durante en entre hacia hasta mediante para por segun sin
    sobre tras el la los las lo un una unos unas y o u e ni que se su sus es son fue ser como mas pero
    cual cuales cuando donde quien quienes este esta estos estas ese esa esos esas le les me mi nos
    qué cuál cuáles cómo dónde cuándo cuántos cuántas hay han ha""".split()
)

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG via print-like handlers

_TOKEN = re.compile(r"\d+(?:[.,/]\d+)*|[a-z]+(?:'[a-z]+)?")


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    stem = _stemmer().stemWord
    for tok in _TOKEN.findall(fold(text)):
        if tok[0].isdigit():
            tok = tok.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", tok) else tok
            tokens.append(tok)
            continue
        if tok in STOPWORDS or len(tok) < 2:
            continue
        tokens.append(stem(tok))
    return tokens


class KeywordIndex:
    """BM25 scores for every chunk, as a dense array so filters and fusion are plain numpy."""

    def __init__(self, retriever: bm25s.BM25) -> None:
        self.retriever = retriever
        self.vocab = retriever.vocab_dict

    @classmethod
    def build(cls, texts: Sequence[str]) -> KeywordIndex:
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        # bm25s needs at least one token per document; an empty chunk gets a placeholder
        retriever.index([tokenize(t) or ["∅"] for t in texts], show_progress=False)
        return cls(retriever)

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        return cls(bm25s.BM25.load(str(folder), allow_pickle=False, mmap=False))

    def scores(self, query: str | Sequence[str]) -> np.ndarray:
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        known = [t for t in tokens if t in self.vocab]
        n = int(self.retriever.scores["num_docs"])
        if not known:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(known), dtype=np.float32)
