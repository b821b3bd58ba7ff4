"""Document parts on disk and joined in memory, on small hand-made parts (real files, real numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gcm_qa import segments
from gcm_qa.types import Chunk

DIMENSION = 8


def make_part(parent: Path, name: str, n_chunks: int, seed: int) -> segments.Segment:
    """A part of ``n_chunks`` chunks of two sentences each, with random unit vectors, written and read."""
    rng = np.random.default_rng(seed)
    chunks = [Chunk(f"{name}:{i}", name, name.title(), "report", "Author", "en", "State", ["Part"], None, None, 0, 0,
                    f"Sentence {i} of {name} on remittances. Another on consular protection {i}.")
              for i in range(n_chunks)]
    spans = np.array([(i, a, b) for i, c in enumerate(chunks)
                      for a, b in ((0, c.text.index(".") + 1), (c.text.index(".") + 2, len(c.text)))], dtype=np.int64)
    vectors = rng.normal(size=(n_chunks, DIMENSION)).astype(np.float32)
    sentence_vectors = rng.normal(size=(len(spans), DIMENSION)).astype(np.float32)
    texts = [chunks[int(ci)].text[a:b] for ci, a, b in spans]
    segments.write(parent / name, {"doc_id": name, "file": f"{name}.txt", "sha256": "0" * 64, "meta": {}},
                   chunks, vectors, spans, sentence_vectors, texts)
    return segments.read(parent / name)


def on_disk(part: segments.Segment) -> tuple[np.ndarray, np.ndarray]:
    return np.load(part.folder / "embeddings.npy"), np.load(part.folder / "sentence_embeddings.npy")


def test_a_part_is_read_without_its_vectors_and_joined_with_them(tmp_path: Path) -> None:
    a, b = make_part(tmp_path, "a", 3, 1), make_part(tmp_path, "b", 2, 2)
    assert a.embeddings is None and (len(a.chunks), len(a.spans), a.dimension) == (3, 6, DIMENSION)
    joined = segments.join_rows(None, [a, b])
    assert (joined.used, joined.sentences_used, joined.keys) == (5, 10, ["a", "b"])
    assert np.array_equal(joined.vectors[:5], np.concatenate([on_disk(a)[0], on_disk(b)[0]]))
    assert np.array_equal(joined.sentence_vectors[:10], np.concatenate([on_disk(a)[1], on_disk(b)[1]]))
    assert a.embeddings is not None and np.shares_memory(a.embeddings, joined.vectors)


def test_a_part_added_after_those_joined_is_copied_in_after_them(tmp_path: Path) -> None:
    a, b, c = (make_part(tmp_path, name, 40, seed) for seed, name in enumerate("abc"))
    first = segments.join_rows(None, [a, b])
    loaded = first.vectors[: first.used]  # what an index loaded then holds
    before = loaded.copy()
    second = segments.join_rows(first, [a, b, c])
    assert second.vectors is first.vectors  # room was left: nothing joined before is copied again
    assert np.array_equal(second.vectors[80:120], on_disk(c)[0])
    assert np.array_equal(loaded, before)  # rows once written never change


def test_a_part_removed_or_moved_means_joining_anew_and_earlier_views_keep_their_rows(tmp_path: Path) -> None:
    a, b, c = (make_part(tmp_path, name, 4, seed) for seed, name in enumerate("abc"))
    first = segments.join_rows(None, [a, b, c])
    loaded = first.vectors[: first.used]
    before = loaded.copy()
    for parts in ([a, c], [b, a, c]):
        again = segments.join_rows(first, parts)
        assert again.vectors is not first.vectors
        assert np.array_equal(again.vectors[: again.used], np.concatenate([on_disk(p)[0] for p in parts]))
    assert np.array_equal(loaded, before)


def test_a_vector_file_cut_short_or_of_another_shape_is_named(tmp_path: Path) -> None:
    part = make_part(tmp_path, "a", 3, 1)
    path = part.folder / "embeddings.npy"
    out = np.empty((3, DIMENSION), dtype=np.float32)
    with pytest.raises(segments.SegmentDamaged, match="an array of shape"):
        segments.read_into(path, np.empty((2, DIMENSION), dtype=np.float32))
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(segments.SegmentDamaged) as caught:
        segments.read_into(path, out)
    assert caught.value.file == "embeddings.npy" and "cut short" in caught.value.reason
    path.write_bytes(b"not numpy at all")
    with pytest.raises(segments.SegmentDamaged, match="cannot be read"):
        segments.read_into(path, out)


def test_the_cache_reads_a_part_again_once_its_files_change(tmp_path: Path) -> None:
    make_part(tmp_path, "a", 3, 1)
    cache = segments.Cache()
    first = cache.load(tmp_path / "a")
    assert cache.load(tmp_path / "a") is first  # untouched: the part read before
    make_part(tmp_path, "a", 5, 2)  # rewritten in place (a damaged part written again)
    again = cache.load(tmp_path / "a")
    assert again is not first and len(again.chunks) == 5
    (tmp_path / "a" / "terms.npz").write_bytes(b"garbled")
    with pytest.raises(segments.SegmentDamaged) as caught:
        cache.load(tmp_path / "a")
    assert caught.value.file == "terms.npz"
