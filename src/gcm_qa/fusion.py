"""Score fusion as pure arithmetic over score arrays, so it is tested with hand-made numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ranks(scores: np.ndarray, mask: np.ndarray | None = None, depth: int | None = None) -> np.ndarray:
    """1-based rank of every item by descending score; items outside ``mask`` or below ``depth``
    (and items scoring exactly 0 with a lexical retriever) get rank 0, meaning "not retrieved"."""
    n = scores.shape[0]
    order = np.argsort(-scores, kind="stable")
    if mask is not None:
        order = order[mask[order]]
    if depth is not None:
        order = order[:depth]
    out = np.zeros(n, dtype=np.int64)
    out[order] = np.arange(1, len(order) + 1)
    return out


def rrf(rank_lists: Sequence[np.ndarray], weights: Sequence[float], k: int = 60) -> np.ndarray:
    """Weighted reciprocal-rank fusion: sum of w / (k + rank) over the retrievers that found it."""
    total = np.zeros(rank_lists[0].shape[0], dtype=np.float64)
    for r, w in zip(rank_lists, weights, strict=True):
        hit = r > 0
        total[hit] += w / (k + r[hit])
    return total


def minmax(scores: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Scale to [0, 1] over the candidates in ``mask``; a flat score vector becomes all zeros."""
    values = scores[mask] if mask is not None else scores
    if values.size == 0:
        return np.zeros_like(scores, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.zeros_like(scores, dtype=np.float64)
    return (scores.astype(np.float64) - lo) / (hi - lo)


def hybrid(
    dense: np.ndarray,
    best_sentence_dense: np.ndarray | None,
    lexical: np.ndarray,
    best_sentence_lexical: np.ndarray | None,
    allowed: np.ndarray,
    alpha: float,
    sentence_dense_weight: float,
    sentence_bm25_weight: float,
) -> np.ndarray:
    """The score retrieval ranks by, and the one ``eval/tools/sweep.py`` tunes.

    Convex fusion of a dense and a lexical score, each min-max scaled over the ``allowed``
    candidates; each side is itself a mix of the chunk's own score and its best sentence's, because
    a short question often matches one sentence of a passage better than the whole passage. Dense
    scores of -1 mark candidates FAISS did not return: they take the lowest returned score.
    Candidates found by neither retriever, or outside ``allowed``, score 0."""
    dense_ok = dense > -1.0
    lexical_ok = (lexical > 0) & allowed
    floor = float(dense[dense_ok].min()) if dense_ok.any() else 0.0
    dense = np.where(dense_ok, dense, floor)
    lexical_mix = minmax(lexical, allowed)
    if best_sentence_dense is not None:
        dense = (1 - sentence_dense_weight) * dense + sentence_dense_weight * np.maximum(best_sentence_dense, floor)
    if best_sentence_lexical is not None:
        lexical_mix = (1 - sentence_bm25_weight) * lexical_mix + sentence_bm25_weight * minmax(
            best_sentence_lexical, allowed
        )
    fused = alpha * minmax(dense, allowed) + (1 - alpha) * lexical_mix
    return np.where(allowed & (dense_ok | lexical_ok), fused + 1e-9, 0.0)
