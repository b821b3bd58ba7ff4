"""BM25 over the same chunks the dense index holds (bm25s: sparse matrices, saved without pickle).

Tokenising is ours because the corpus is bilingual and numeric: accents are folded so 'migración'
and 'migracion' meet, numbers keep their decimals ('59.5', '73/195') because numeric questions
hinge on them, and each document is stemmed in its own language ('regularisation' meets
'regularise' in English, 'regularización' meets 'regularizar' in Spanish). A query is stemmed once
per language the index holds, and each passage is scored with the stems of its own language.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from gcm_qa.stopwords import ENGLISH, SPANISH

# English and Spanish function words (see gcm_qa.stopwords): the corpus is bilingual and a question
# may be asked in either language.
STOPWORDS = frozenset(ENGLISH + SPANISH)

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG via print-like handlers

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


class KeywordIndex:
    """BM25 scores for every chunk, as a dense array so filters and fusion are plain numpy."""

    LANGUAGES_FILE = "languages.json"

    def __init__(self, retriever: bm25s.BM25, languages: Sequence[str]) -> None:
        self.retriever = retriever
        self.vocab = retriever.vocab_dict
        # a language without a stemmer is tokenised as English (see SNOWBALL)
        self.languages = np.array([lang if lang in SNOWBALL else "en" for lang in languages])
        self._present = sorted(set(self.languages.tolist()))

    @classmethod
    def build(cls, texts: Sequence[str], languages: Sequence[str], *, k1: float, b: float) -> KeywordIndex:
        """``k1`` and ``b``: BM25's term-frequency saturation and length normalisation (the index
        settings' ``keyword`` group, part of the index recipe since they shape the stored scores)."""
        retriever = bm25s.BM25(k1=k1, b=b)
        # bm25s needs at least one token per document; an empty chunk gets a placeholder
        retriever.index([tokenize(t, lang) or ["∅"] for t, lang in zip(texts, languages, strict=True)],
                        show_progress=False)
        return cls(retriever, languages)

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), allow_pickle=False)
        (folder / self.LANGUAGES_FILE).write_text(json.dumps(self.languages.tolist()), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        retriever = bm25s.BM25.load(str(folder), allow_pickle=False, mmap=False)
        languages = json.loads((folder / cls.LANGUAGES_FILE).read_text(encoding="utf-8"))
        return cls(retriever, languages)

    def scores(self, query: str) -> np.ndarray:
        n = int(self.retriever.scores["num_docs"])
        out = np.zeros(n, dtype=np.float32)
        for language in self._present:
            known = [t for t in tokenize(query, language) if t in self.vocab]
            if not known:
                continue
            scores = np.asarray(self.retriever.get_scores(known), dtype=np.float32)
            if len(self._present) == 1:
                return scores
            own = self.languages == language
            out[own] = scores[own]
        return out
