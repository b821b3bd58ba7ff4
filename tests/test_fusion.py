"""Score fusion with hand-made numbers."""

from __future__ import annotations

import numpy as np
import pytest

from gcm_qa.fusion import hybrid, minmax, ranks, rrf


def test_ranks_are_one_based_by_descending_score() -> None:
    assert ranks(np.array([0.2, 0.9, 0.5, 0.1])).tolist() == [3, 1, 2, 4]


def test_ranks_break_ties_by_position() -> None:
    assert ranks(np.array([0.5, 0.7, 0.5, 0.7])).tolist() == [3, 1, 4, 2]


def test_ranks_outside_mask_or_depth_are_zero() -> None:
    scores = np.array([0.2, 0.9, 0.5, 0.1, 0.8])
    mask = np.array([True, False, True, True, True])
    assert ranks(scores, mask).tolist() == [3, 0, 2, 4, 1]
    assert ranks(scores, depth=2).tolist() == [0, 1, 0, 0, 2]
    assert ranks(scores, mask, depth=2).tolist() == [0, 0, 2, 0, 1]
    assert ranks(scores, np.zeros(5, dtype=bool)).tolist() == [0, 0, 0, 0, 0]


def test_ranks_handle_minus_infinity_for_unscored_items() -> None:
    scores = np.array([0.3, -np.inf, 0.6])
    ok = np.isfinite(scores)
    assert ranks(scores, ok).tolist() == [2, 0, 1]


def test_rrf_sums_weighted_reciprocal_ranks() -> None:
    dense = np.array([1, 2, 0, 3])
    lexical = np.array([2, 0, 1, 0])
    fused = rrf([dense, lexical], [1.0, 0.5], k=10)
    expected = [1 / 11 + 0.5 / 12, 1 / 12, 0.5 / 11, 1 / 13]
    assert fused == pytest.approx(expected)
    assert np.argsort(-fused).tolist() == [0, 1, 3, 2]


def test_rrf_item_found_by_no_retriever_scores_zero() -> None:
    fused = rrf([np.array([0, 1]), np.array([0, 2])], [1.0, 1.0], k=60)
    assert fused[0] == 0.0
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)


def test_rrf_zero_weight_silences_a_retriever() -> None:
    fused = rrf([np.array([1, 2]), np.array([2, 1])], [1.0, 0.0], k=1)
    assert fused.tolist() == pytest.approx([1 / 2, 1 / 3])


def test_rrf_needs_one_weight_per_ranking() -> None:
    with pytest.raises(ValueError):
        rrf([np.array([1]), np.array([1])], [1.0], k=1)


def test_minmax_scales_to_unit_interval() -> None:
    assert minmax(np.array([2.0, 4.0, 3.0])).tolist() == pytest.approx([0.0, 1.0, 0.5])


def test_minmax_over_a_mask_uses_only_the_candidates() -> None:
    scores = np.array([10.0, 2.0, 4.0, 3.0])
    mask = np.array([False, True, True, True])
    scaled = minmax(scores, mask)
    assert scaled[mask].tolist() == pytest.approx([0.0, 1.0, 0.5])


def test_minmax_flat_or_empty_is_zero() -> None:
    assert minmax(np.array([0.7, 0.7, 0.7])).tolist() == [0.0, 0.0, 0.0]
    assert minmax(np.array([1.0, 2.0]), np.array([False, False])).tolist() == [0.0, 0.0]
    assert minmax(np.array([5, 1, 3])).dtype == np.float64


def convex(dense: np.ndarray, lexical: np.ndarray, alpha: float) -> np.ndarray:
    """``fusion.hybrid`` without sentence signals: convex fusion of the two scaled scores."""
    return hybrid(dense, None, lexical, None, np.ones(len(dense), dtype=bool), alpha, 0.0, 0.0)


def test_convex_mixes_scaled_scores() -> None:
    dense = np.array([0.9, 0.5, 0.1])
    lexical = np.array([0.0, 8.0, 4.0])
    fused = convex(dense, lexical, alpha=0.6)
    assert fused.tolist() == pytest.approx(
        [0.6 * 1.0 + 0.4 * 0.0, 0.6 * 0.5 + 0.4 * 1.0, 0.6 * 0.0 + 0.4 * 0.5]
    )
    assert np.argsort(-fused).tolist() == [1, 0, 2]


def test_convex_extremes_follow_one_retriever() -> None:
    dense = np.array([0.9, 0.5, 0.1])
    lexical = np.array([0.0, 8.0, 4.0])
    assert np.argsort(-convex(dense, lexical, 1.0)).tolist() == [0, 1, 2]
    assert np.argsort(-convex(dense, lexical, 0.0)).tolist() == [1, 2, 0]


def test_convex_ignores_scale_of_the_raw_scores() -> None:
    dense = np.array([0.9, 0.5, 0.1])
    lexical = np.array([0.0, 8.0, 4.0])
    assert convex(dense, lexical * 100, 0.5).tolist() == pytest.approx(convex(dense, lexical, 0.5).tolist())
