"""Hybrid retrieval: dense (FAISS) and BM25 rankings, fused, filtered and de-duplicated."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from gcm_qa import fusion, gcm
from gcm_qa.embedder import Embedder
from gcm_qa.index_store import LoadedIndex
from gcm_qa.keyword import fold
from gcm_qa.query import SearchQuery
from gcm_qa.settings import RetrievalSettings
from gcm_qa.structure import is_question
from gcm_qa.types import Chunk, Passage, Reference


@dataclass(frozen=True)
class Filters:
    """Metadata filters; an empty field means "any". Values within a field are alternatives."""

    kind: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    language: tuple[str, ...] = ()
    section: str = ""  # case-insensitive substring of the section path
    areas: tuple[int, ...] = ()
    objectives: tuple[int, ...] = ()
    # documents read as forms whose passages count only under a question: an author's words on a
    # matter are their answers, not the form's cover page ("Focal point: ...") or disclaimer
    answers_of: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.kind or self.author or self.language or self.section or self.areas
                    or self.objectives or self.answers_of)

    def accepts(self, c: Chunk) -> bool:
        low = {a.lower() for a in self.author}
        return (
            (c.doc_id not in self.answers_of or (bool(c.section) and is_question(c.section[-1])))
            and (not self.kind or c.kind in self.kind)
            and (not self.author or c.author.lower() in low)
            and (not self.language or c.language in self.language)
            and (not self.section or self.section.lower() in c.section_label.lower())
            and (not self.areas or bool(set(self.areas) & set(c.areas)))
            and (not self.objectives or bool(set(self.objectives) & set(c.objectives)))
        )


BOILERPLATE = {"bibliography", "references", "acronyms", "contents", "table of contents", "disclaimer",
               "bibliografía", "referencias", "siglas", "acrónimos", "índice", "contenido"}


def is_boilerplate(chunk: Chunk) -> bool:
    return bool(chunk.section) and chunk.section[0].strip().lower() in BOILERPLATE


@dataclass(frozen=True)
class Opening:
    """The passage where a named part begins, and (for a graph or an objective) the text that marks
    the spot in it; ``single``: that sentence alone is the answer."""

    passage: Passage
    needle: str = ""
    single: bool = False


def objective_listing(n: int) -> str:
    """How a list of objectives prints objective ``n`` ("13. use migration detention only as a m")."""
    title = gcm.OBJECTIVES.get(n, "")
    return f"{n}. {title[:40]}".lower() if title else ""


TEXT_PARTS = ("graph", "objective")  # found in a chunk's text; every other part in its headings alone


def refers_to(chunk: Chunk, reference: Reference) -> bool:
    """Whether a chunk is part of the heading a question names (by number, or a top-level part by
    title), or (for an objective) names or lists that objective."""
    if reference.kind == "title":  # a top-level part named by its title: "foreword"
        return bool(chunk.section) and fold(chunk.section[0]).startswith(reference.name)
    if reference.kind == "heading":  # a sub-heading: "challenges" is "2.4.3 Challenges"
        name = re.escape(reference.name)
        return any(re.match(rf"[\d.\s]*{name}\b", fold(title)) for title in chunk.section[1:])
    number = reference.number
    if reference.kind == "graph":  # graphs are not sections: the text names them ("Graph 6 shows...")
        return re.search(rf"(?<![\w.])graph {number}(?!\d)", fold(chunk.text)) is not None
    if reference.kind == "objective":
        listing = objective_listing(number) if number is not None else ""
        return number in gcm.explicit_objectives(chunk.text) or (bool(listing) and listing in chunk.text.lower())
    label = re.escape(str(reference))  # "annex 2" in "Annex 2. Basic statistics > Table 1. ..."
    return re.search(rf"(?<![\w.]){label}(?!\d|\.\d)", fold(chunk.section_label)) is not None


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: RetrievalSettings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.priors = np.array(
            [settings.boilerplate_weight if is_boilerplate(c) else 1.0 for c in index.chunks]
        )
        self._reference_hits: dict[Reference, np.ndarray] = {}

    def reference_hits(self, reference: Reference) -> np.ndarray:
        """Which chunks a reference names, as a mask, made once per loaded index and kept. A graph or
        an objective is found in the text, so every chunk is read; any other part by its headings,
        which many chunks share, so each distinct heading path is tested once (at 100 times the
        report, 47,400 chunks: 1.1 s for the first question naming a part, on a Zen 3)."""
        hits = self._reference_hits.get(reference)
        if hits is None:
            if reference.kind in TEXT_PARTS:
                hits = np.array([refers_to(c, reference) for c in self.index.chunks], dtype=bool)
            else:
                by_section: dict[tuple[str, ...], bool] = {}
                paths = [tuple(c.section) for c in self.index.chunks]
                for chunk, path in zip(self.index.chunks, paths, strict=True):
                    if path not in by_section:
                        by_section[path] = refers_to(chunk, reference)
                hits = np.array([by_section[p] for p in paths], dtype=bool)
            self._reference_hits[reference] = hits
        return hits

    def opening(self, references: Sequence[Reference], filters: Filters | None = None) -> Opening | None:
        """Where the part a question names begins: the first chunk, in document order, of "textbox
        3", of "annex 2" and its "table 1", of "thematic area 4" and its "challenges"; for a graph,
        the chunk with its caption; for an objective, the first list that prints its wording."""
        needle, single = "", False
        if len(references) == 1 and references[0].kind in ("objective", "graph") and references[0].number is not None:
            ref = references[0]
            needle = objective_listing(ref.number) if ref.kind == "objective" else f"graph {ref.number}."
            single = ref.kind == "objective"
            found = [c for c in self.index.chunks
                     if (filters is None or filters.accepts(c)) and needle and needle in c.text.lower()]
        else:
            named = np.logical_and.reduce([self.reference_hits(r) for r in references])
            found = [c for c, hit in zip(self.index.chunks, named, strict=True)
                     if hit and (filters is None or filters.accepts(c))]
        found = [c for c in found if len(c.text) >= 80] or found  # not a chunk that holds a bare heading
        if not found:
            return None
        first = min(found, key=lambda c: (c.doc_id, c.start))
        return Opening(Passage(chunk=first, score=1.0, rank=1), needle, single)

    def mask(self, filters: Filters) -> np.ndarray | None:
        if filters.is_empty():
            return None
        return np.array([filters.accepts(c) for c in self.index.chunks], dtype=bool)

    def best_sentence_scores(
        self, query: SearchQuery, query_vector: np.ndarray, chunks: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Per chunk, the cosine and BM25 score of its best-matching sentence.

        ``chunks`` (a mask): the chunks whose sentences' cosines are wanted; the others get -1, as a
        chunk without sentences does. When they hold most sentences anyway, every sentence is scored
        (as without ``chunks``), so a small corpus, where every chunk is a dense candidate, ranks
        exactly as it always did; a large one scores only its candidates' sentences, not all of them
        (at 100 times the report, 170,000 sentence vectors: a 500 MB scan per question). BM25 is
        scored for every sentence either way (its index is sparse: only matching sentences cost)."""
        spans = self.index.sentence_spans
        n = len(self.index.chunks)
        if len(spans) == 0:
            return None, np.zeros(n)
        owner = spans[:, 0]
        best_dense = np.full(n, -1.0)
        rows = None
        if chunks is not None:
            rows = np.flatnonzero(chunks[owner])
            if rows.size * 2 > len(owner):
                rows = None
        if rows is None:
            np.maximum.at(best_dense, owner, self.index.sentence_embeddings @ query_vector)
        elif rows.size:
            np.maximum.at(best_dense, owner[rows], self.index.sentence_embeddings[rows] @ query_vector)
        best_lexical = np.zeros(n)
        lexical = self.index.sentence_keyword.scores(query.keyword)
        hit = np.flatnonzero(lexical)  # BM25 scores are never negative: the rest leave the zeros as they are
        np.maximum.at(best_lexical, owner[hit], lexical[hit])
        return best_dense, best_lexical

    def dense_scores(self, query_vector: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Cosine similarity for the top ``candidates`` (flat: exhaustive; HNSW: approximate, with
        efSearch raised to the depth asked for); others score -1."""
        n = len(self.index.chunks)
        depth = min(n, max(self.settings.candidates, 1))
        hnsw = self.index.index_type == "hnsw"
        selector = None
        if mask is not None:
            allowed = np.flatnonzero(mask).astype(np.int64)
            if allowed.size == 0:
                return np.full(n, -1.0, dtype=np.float32)
            depth = min(depth, allowed.size)
            if hnsw and allowed.size <= depth:
                # every allowed chunk is a candidate: score them all exactly, as a flat index would (a
                # graph search with a selective filter may not reach them all)
                scores = np.full(n, -1.0, dtype=np.float32)
                scores[allowed] = self.index.embeddings[allowed] @ query_vector
                return scores
            selector = faiss.IDSelectorBatch(allowed)
        if hnsw:
            # HNSW returns at most efSearch results (the rest as id -1), so it is at least the depth
            ef = max(self.settings.hnsw_ef_search, depth)
            params: faiss.SearchParameters | None = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        sims, ids = self.index.faiss_index.search(query_vector.reshape(1, -1), depth, params=params)
        scores = np.full(n, -1.0, dtype=np.float32)
        valid = ids[0] >= 0
        scores[ids[0][valid]] = sims[0][valid]
        return scores

    def search(
        self,
        query: SearchQuery,
        top_k: int | None = None,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Passage]:
        s = self.settings
        top_k = top_k or s.top_k
        mask = self.mask(filters or Filters())
        if query_vector is None:
            query_vector = self.embedder.encode_queries([query.dense])[0]
        dense = self.dense_scores(query_vector, mask)
        lexical = self.index.keyword.scores(query.keyword)
        allowed = mask if mask is not None else np.ones(len(dense), dtype=bool)
        dense_ok = dense > -1.0
        lexical_ok = (lexical > 0) & allowed
        if s.fusion == "convex":
            # sentences are scored for the chunks that can rank: the dense candidates and the best
            # ``candidates`` by BM25 (with the default 1000 candidates, every chunk of the report)
            lexical_top = fusion.ranks(lexical, lexical_ok, s.candidates) > 0
            best_dense, best_lexical = self.best_sentence_scores(query, query_vector, dense_ok | lexical_top)
            fused = fusion.hybrid(dense, best_dense, lexical, best_lexical if best_dense is not None else None,
                                  allowed, s.alpha, s.sentence_dense_weight, s.sentence_bm25_weight)
        else:
            dense_rank = fusion.ranks(np.where(dense_ok, dense, -np.inf), dense_ok, s.candidates)
            lexical_rank = fusion.ranks(lexical, lexical_ok, s.candidates)
            fused = fusion.rrf([dense_rank, lexical_rank], [s.dense_weight, 1.0], s.rrf_k)
        fused = fused * self.priors
        for reference in query.references:
            fused = np.where(self.reference_hits(reference), fused * (1 + s.reference_boost), fused)
        order = np.argsort(-fused, kind="stable")
        order = order[fused[order] > 0].tolist()  # in numpy: a loop over 47,000 chunks cost 30 ms a question
        passages: list[Passage] = []
        kept: list[int] = []
        for i in order:
            if self._duplicate(i, kept):
                continue
            kept.append(i)
            passages.append(
                Passage(
                    chunk=self.index.chunks[i],
                    score=float(fused[i]),
                    rank=len(passages) + 1,
                    dense_score=float(dense[i]) if dense_ok[i] else None,
                    bm25_score=float(lexical[i]) if lexical_ok[i] else None,
                )
            )
            if len(passages) >= top_k:
                break
        return passages

    def _duplicate(self, i: int, kept: Sequence[int]) -> bool:
        """Near-duplicates collapse into the better-ranked one: the same text in two documents
        (a questionnaire quoted by the report) or two chunks that mostly overlap.

        Within one document only overlapping text counts: two neighbouring chunks under one heading
        embed alike (their text starts with the same heading) while saying different things, and
        collapsing them hid the answer ("Voluntary or humanitarian return must be a preferable
        option to deportation", cosine 0.9000 to the chunk before it)."""
        c = self.index.chunks[i]
        vectors = self.index.embeddings
        for j in kept:
            o = self.index.chunks[j]
            if o.doc_id == c.doc_id:
                overlap = min(o.end, c.end) - max(o.start, c.start)
                if overlap > self.settings.duplicate_overlap * min(o.end - o.start, c.end - c.start):
                    return True
            elif float(vectors[j] @ vectors[i]) >= self.settings.dedup_threshold:
                return True
        return False
