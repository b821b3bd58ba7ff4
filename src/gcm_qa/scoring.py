"""How well each sentence of the retrieved passages answers the question.

The answerer asks a :class:`SentenceScorer` to rank sentences; everything after (abstention,
composition) works from that ranking. The default, :class:`WeightedScorer`, is a weighted sum of
signals that need no model beyond the index's own sentence vectors: cosine similarity to the
question, the share of the question's content words a sentence holds, the rank of its passage, the
share of its own words the question lacks (a sentence that only restates the question answers
nothing), and whether it holds the kind of thing asked for. The weights are settings
(``answer.scoring``), tuned on the tuning set. A reranker, an LLM judge or the ceiling tool's oracle
is another scorer passed to the answerer, never a patch of this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gcm_qa.intent import Intent
from gcm_qa.keyword import tokenize
from gcm_qa.quotes import in_title
from gcm_qa.sentences import Sentence
from gcm_qa.settings import ScoringSettings
from gcm_qa.types import Passage


@dataclass(frozen=True)
class Scored:
    """A sentence with its score and the two signals abstention also reads."""

    sentence: Sentence
    score: float
    cosine: float
    overlap: float


class SentenceScorer(Protocol):
    """Ranks candidate sentences, best first. ``sentence_vectors[i]`` embeds ``sentences[i]``
    with the index's encoder; ``sentences[i].passage`` indexes ``passages``."""

    def score(
        self,
        question: str,
        intent: Intent,
        question_vector: np.ndarray,
        sentences: Sequence[Sentence],
        sentence_vectors: np.ndarray,
        passages: Sequence[Passage],
    ) -> list[Scored]: ...


def overlap_score(question_tokens: set[str], sentence: str) -> float:
    """Share of the question's content words found in the sentence; numbers count double because a
    question that names a figure or year is almost always answered by the sentence holding it."""
    if not question_tokens:
        return 0.0
    tokens = set(tokenize(sentence))
    weight = {t: (2.0 if t[0].isdigit() else 1.0) for t in question_tokens}
    return sum(w for t, w in weight.items() if t in tokens) / sum(weight.values())


class WeightedScorer:
    """The default scorer: a weighted sum of cheap signals (see the module's docstring)."""

    def __init__(self, settings: ScoringSettings) -> None:
        self.settings = settings

    def score(
        self,
        question: str,
        intent: Intent,
        question_vector: np.ndarray,
        sentences: Sequence[Sentence],
        sentence_vectors: np.ndarray,
        passages: Sequence[Passage],
    ) -> list[Scored]:
        w = self.settings
        q_tokens = set(tokenize(question))
        wanted = intent.main
        cosines = sentence_vectors @ question_vector if len(sentences) else np.zeros(0)
        out = []
        for s, cos in zip(sentences, cosines, strict=True):
            ov = overlap_score(q_tokens, s.text)
            prior = 1.0 / (1.0 + w.rank_decay * (passages[s.passage].rank - 1))
            tokens = set(tokenize(s.text))
            novelty = len(tokens - q_tokens) / max(len(tokens), 1)
            bonus = w.intent_bonus if wanted is not None and wanted.bonus.search(s.text) else 0.0
            if in_title(s.text, passages[s.passage].chunk.section):
                bonus -= w.title_penalty  # captions name the topic; the rows or text under them answer
            score = w.cosine * float(cos) + w.overlap * ov + w.rank * prior + w.novelty * novelty + bonus
            out.append(Scored(s, score, float(cos), ov))
        out.sort(key=lambda x: -x.score)
        return out
