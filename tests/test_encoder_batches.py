"""How texts are grouped for the encoder: like lengths together, by count or by a token budget."""

from __future__ import annotations

from gcm_qa.onnx_encoder import batches_by_length


def test_a_count_gives_batches_of_that_many_texts_shortest_first() -> None:
    lengths = [30, 5, 12, 5, 40, 7, 9]
    batches = batches_by_length(lengths, 3)
    assert batches == [[1, 3, 5], [6, 2, 0], [4]]  # equal lengths keep their order


def test_a_token_budget_packs_short_texts_many_to_a_batch_and_long_ones_few() -> None:
    lengths = [10] * 10 + [100] * 3 + [30] * 4
    batches = batches_by_length(lengths, 8, tokens=100)
    assert batches == [list(range(10)), [13, 14, 15], [16], [10], [11], [12]]
    for rows in batches:  # the budget counts every text at the batch's longest
        assert len(rows) * max(lengths[i] for i in rows) <= 100


def test_a_text_longer_than_the_budget_goes_alone_and_every_text_goes_once() -> None:
    lengths = [300, 20, 20, 2048, 1]
    batches = batches_by_length(lengths, 8, tokens=256)
    assert batches == [[4, 1, 2], [0], [3]]
    assert sorted(i for rows in batches for i in rows) == list(range(len(lengths)))
    assert batches_by_length([], 8, tokens=256) == [] == batches_by_length([], 8)
