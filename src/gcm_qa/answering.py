"""The default answerer: no LLM, only sentences quoted from the retrieved passages.

Sentences of the top passages are scored against the question (cosine of their embeddings, share
of the question's content words they contain, and the rank of their passage); the best few, each
trimmed to the clauses that carry the answer when a sentence runs long, become the answer, each
followed by its citation marker. Quoting keeps numbers and names exactly as the source prints
them. When even the best sentence is weak, the answerer abstains instead of quoting something
loosely related.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gcm_qa.keyword import tokenize
from gcm_qa.settings import AnswerSettings
from gcm_qa.types import Citation, Passage

NO_ANSWER = "The documents do not answer this."

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[\"“(¿¡A-ZÁÉÍÓÚÑ0-9-])|\n+")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:—])\s+|\s+(?=—)|\s+(?=\()")


@dataclass(frozen=True)
class Sentence:
    passage: int  # index into the passages list
    start: int  # offset inside the passage text
    end: int
    text: str


@dataclass(frozen=True)
class Scored:
    sentence: Sentence
    score: float
    cosine: float
    overlap: float


def split_sentences(text: str, passage: int = 0, min_chars: int = 25) -> list[Sentence]:
    """Sentences with offsets; table rows and list items count as sentences of their own."""
    out: list[Sentence] = []
    pos = 0
    for m in [*_SENTENCE_END.finditer(text), None]:
        end = m.start() if m else len(text)
        raw = text[pos:end]
        stripped = raw.strip()
        if len(stripped) >= min_chars or (stripped and re.search(r"\d", stripped)):
            lead = len(raw) - len(raw.lstrip())
            out.append(Sentence(passage, pos + lead, pos + lead + len(stripped), stripped))
        pos = m.end() if m else len(text)
    return out


def overlap_score(question_tokens: set[str], sentence: str) -> float:
    """Share of the question's content words found in the sentence; numbers count double because a
    question that names a figure or year is almost always answered by the sentence holding it."""
    if not question_tokens:
        return 0.0
    tokens = set(tokenize(sentence))
    weight = {t: (2.0 if t[0].isdigit() else 1.0) for t in question_tokens}
    return sum(w for t, w in weight.items() if t in tokens) / sum(weight.values())


def trim_to_clauses(sentence: str, question_tokens: set[str], max_chars: int) -> tuple[str, int]:
    """The contiguous run of clauses, at most ``max_chars`` long, richest in question words.

    Returns the trimmed text (an exact substring, so it can be quoted) and its offset in the
    sentence. Short sentences come back whole.
    """
    if len(sentence) <= max_chars:
        return sentence, 0
    cuts = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(sentence)] + [len(sentence)]
    best = (-1.0, 0, 0)
    for i in range(len(cuts) - 1):
        for j in range(i + 1, len(cuts)):
            if cuts[j] - cuts[i] > max_chars and j > i + 1:
                break
            piece = sentence[cuts[i] : cuts[j]]
            score = overlap_score(question_tokens, piece) - 0.0005 * cuts[i]
            if score > best[0]:
                best = (score, cuts[i], cuts[j])
    _, a, b = best
    if b - a > max_chars:  # a single clause longer than the cap: cut at a word boundary
        b = a + sentence[a : a + max_chars].rfind(" ")
    text = sentence[a:b].strip().rstrip(",;:—")
    return text, a + (len(sentence[a:b]) - len(sentence[a:b].lstrip()))


def score_sentences(
    question: str,
    question_vector: np.ndarray,
    sentences: Sequence[Sentence],
    sentence_vectors: np.ndarray,
    passages: Sequence[Passage],
) -> list[Scored]:
    q_tokens = set(tokenize(question))
    cosines = sentence_vectors @ question_vector if len(sentences) else np.zeros(0)
    out = []
    for s, cos in zip(sentences, cosines, strict=True):
        ov = overlap_score(q_tokens, s.text)
        prior = 1.0 / (1.0 + 0.15 * passages[s.passage].rank)
        out.append(Scored(s, 0.55 * float(cos) + 0.35 * ov + 0.10 * prior, float(cos), ov))
    out.sort(key=lambda x: -x.score)
    return out


def support(best: Scored | None, passages: Sequence[Passage]) -> float:
    """How well the corpus supports an answer: the best sentence's score, plus the top passage's
    dense similarity. Compared with ``abstain_threshold``."""
    if best is None or not passages:
        return 0.0
    dense = passages[0].dense_score or 0.0
    return 0.5 * best.cosine + 0.3 * best.overlap + 0.2 * dense


def compose(
    question: str,
    ranked: Sequence[Scored],
    passages: Sequence[Passage],
    settings: AnswerSettings,
) -> tuple[str, list[Citation]]:
    """Pick sentences greedily until the sentence or character budget is spent."""
    q_tokens = set(tokenize(question))
    chosen: list[tuple[Scored, str, int]] = []
    used_chars = 0
    best = ranked[0].score if ranked else 0.0
    for item in ranked:
        if len(chosen) >= settings.max_sentences:
            break
        if chosen and item.score < 0.8 * best:
            break
        if any(_same_place(item.sentence, c[0].sentence) for c in chosen):
            continue
        budget = settings.max_chars - used_chars
        if chosen and budget < 80:
            break
        text, offset = trim_to_clauses(item.sentence.text, q_tokens, max(budget, 160) if not chosen else budget)
        if chosen and len(text) > budget:
            continue
        chosen.append((item, text, offset))
        used_chars += len(text) + 5
    citations: list[Citation] = []
    by_passage: dict[int, int] = {}
    parts: list[str] = []
    for item, text, _offset in chosen:
        p_index = item.sentence.passage
        if p_index not in by_passage:
            passage = passages[p_index]
            c = passage.chunk
            citations.append(
                Citation(
                    n=len(citations) + 1,
                    doc_id=c.doc_id,
                    title=c.title,
                    section=c.section_label,
                    page=c.page_label,
                    quote=text,
                    score=item.score,
                    passage_rank=passage.rank,
                    chunk_id=c.chunk_id,
                )
            )
            by_passage[p_index] = len(citations)
        else:
            cite = citations[by_passage[p_index] - 1]
            cite.quote = f"{cite.quote} … {text}"
        marker = by_passage[p_index]
        shown = text if text == item.sentence.text else _ellipsis(item.sentence.text, text)
        parts.append(f"{shown} [{marker}]")
    return " ".join(parts), citations


def _ellipsis(sentence: str, piece: str) -> str:
    start = sentence.find(piece)
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + len(piece) < len(sentence) else ""
    return f"{prefix}{piece}{suffix}"


def _same_place(a: Sentence, b: Sentence) -> bool:
    return a.passage == b.passage and a.start == b.start


class Answerer:
    """Extractive answers from passages; needs only the embedding model."""

    def __init__(self, embedder, settings: AnswerSettings, max_passages: int = 5) -> None:  # noqa: ANN001
        self.embedder = embedder
        self.settings = settings
        self.max_passages = max_passages

    def answer(
        self, question: str, passages: Sequence[Passage], question_vector: np.ndarray
    ) -> tuple[str, list[Citation], bool]:
        used = list(passages[: self.max_passages])
        sentences = [s for i, p in enumerate(used) for s in split_sentences(p.chunk.text, i)]
        if not sentences:
            return NO_ANSWER, [], True
        vectors = self.embedder.encode([s.text for s in sentences])
        ranked = score_sentences(question, question_vector, sentences, vectors, used)
        if support(ranked[0], used) < self.settings.abstain_threshold:
            return NO_ANSWER, [], True
        text, citations = compose(question, ranked, used, self.settings)
        return text, citations, False
