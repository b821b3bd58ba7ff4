"""The dense index's type: flat below ``retrieval.hnsw_min_chunks`` passages, HNSW at or above it
(``retrieval.index_type`` overrides), recorded in the manifest, part of the recipe, and searched with
filters and the candidate depth honoured either way.

Real FAISS and the real MiniLM model over a small hand-made corpus; the threshold is set tiny so a
few dozen passages make an HNSW index."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np

from gcm_qa import index_store
from gcm_qa.engine import Engine
from gcm_qa.query import prepare
from gcm_qa.retrieval import Retriever

TOPICS = {
    "harbour": ["The harbour of Port Velasco", "cranes", "container ships", "tugboats", "dock workers", "tides"],
    "orchard": ["The orchards of Valle Alto", "apple trees", "pruning shears", "beehives", "frost nights", "cider"],
    "library": ["The library of San Remigio", "manuscripts", "reading rooms", "catalogue cards", "archivists",
                "bookbinding"],
    "railway": ["The railway of the northern plains", "locomotives", "signal boxes", "timetables", "sleepers",
                "freight wagons"],
}
SMALL = {"chunking": {"chunk_chars": 200, "overlap_chars": 0}}


def write_corpus(corpus: Path) -> None:
    """Four invented documents of a dozen short paragraphs each: some 40 passages of 200 characters."""
    corpus.mkdir(parents=True, exist_ok=True)
    for name, (title, *things) in TOPICS.items():
        paragraphs = [title]
        for i in range(12):
            a, b = things[i % len(things)], things[(i + 2) % len(things)]
            paragraphs.append(f"In season {i + 1}, {title.lower()} counted {10 * i + 7} {a} and kept the {b} in "
                              f"order. Visitors wrote that the {a} were the best they had seen in year {1990 + i}.")
        (corpus / f"{name}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")


def built(make_engine, tmp_path: Path, **retrieval: object) -> Engine:
    write_corpus(tmp_path / "corpus")
    engine = make_engine(tmp_path, retrieval=retrieval, **SMALL)
    engine.build()
    return engine


def test_auto_is_flat_below_the_threshold(make_engine, tmp_path: Path) -> None:
    engine = built(make_engine, tmp_path, index_type="auto", hnsw_min_chunks=10_000)
    index = engine.index
    assert len(index.chunks) >= 30
    assert isinstance(index.faiss_index, index_store.FlatIndex)
    assert index.index_type == "flat"
    assert index.manifest["faiss"] == {"type": "flat"}


def test_the_flat_search_is_faiss_exact_search_over_the_vectors_where_they_lie() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(500, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    flat = index_store.FlatIndex(vectors)
    reference = faiss.IndexFlatIP(32)
    reference.add(vectors)
    queries = rng.normal(size=(4, 32)).astype(np.float32)
    for k in (1, 10, 499, 600):  # past the last vector: -1, as IndexFlatIP gives
        scores, ids = flat.search(queries, k)
        expected_scores, expected_ids = reference.search(queries, k)
        assert np.array_equal(ids, expected_ids)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)
    assert np.shares_memory(flat.vectors, vectors) and (flat.ntotal, flat.d) == (500, 32)


def test_auto_is_hnsw_at_the_threshold(make_engine, tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    probe = make_engine(**SMALL)
    probe.build()
    n = len(probe.index.chunks)
    engine = make_engine(retrieval={"index_type": "auto", "hnsw_min_chunks": n, "hnsw_m": 8,
                                    "hnsw_ef_construction": 40}, **SMALL)
    engine.build()
    index = engine.index
    assert isinstance(index.faiss_index, faiss.IndexHNSWFlat)
    assert index.faiss_index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert index.faiss_index.ntotal == n
    assert index.index_type == "hnsw"
    assert index.manifest["faiss"] == {"type": "hnsw", "hnsw_m": 8, "hnsw_ef_construction": 40}
    # one passage more than the corpus holds: flat again
    assert index_store.chosen_index_type(n - 1, engine.settings.retrieval) == "flat"


def test_the_setting_overrides_auto(make_engine, tmp_path: Path) -> None:
    engine = built(make_engine, tmp_path, index_type="flat", hnsw_min_chunks=1)
    assert isinstance(engine.index.faiss_index, index_store.FlatIndex)
    assert engine.index.manifest["faiss"]["type"] == "flat"
    engine = make_engine(retrieval={"index_type": "hnsw", "hnsw_min_chunks": 10_000}, **SMALL)
    engine.build()
    assert isinstance(engine.index.faiss_index, faiss.IndexHNSWFlat)
    assert engine.index.manifest["faiss"]["type"] == "hnsw"


def test_a_change_of_index_type_rebuilds_without_embedding_again(make_engine, tmp_path: Path) -> None:
    flat = built(make_engine, tmp_path, index_type="flat")
    first = flat.index.folder
    assert not index_store.is_stale(flat.settings, flat.model.identity)
    # efSearch is read at search time: it shapes nothing stored
    searching = make_engine(retrieval={"index_type": "flat", "hnsw_ef_search": 500}, **SMALL)
    assert not index_store.is_stale(searching.settings, searching.model.identity)

    hnsw = make_engine(retrieval={"index_type": "hnsw"}, **SMALL)
    assert index_store.is_stale(hnsw.settings, hnsw.model.identity)
    report = hnsw.ensure_index()
    assert report is not None and not report.up_to_date
    assert report.embedded == 0 and report.embedded_sentences == 0  # the vectors are the same
    assert report.changed == []  # and so are the documents' parts: no file is read again
    assert hnsw.index.folder != first
    assert isinstance(hnsw.index.faiss_index, faiss.IndexHNSWFlat)
    assert hnsw.index.manifest["recipe"]["faiss"]["type"] == "hnsw"

    denser = make_engine(retrieval={"index_type": "hnsw", "hnsw_m": 8}, **SMALL)  # M shapes the graph
    assert index_store.is_stale(denser.settings, denser.model.identity)


def test_adding_a_document_extends_the_previous_hnsw_graph(make_engine, tmp_path: Path) -> None:
    """HNSW takes additions: a build that adds a document reads the previous build's graph and adds
    the new vectors (byte for byte what doing so here gives, on one thread); a removal makes it anew."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # insertion order decides the graph; threads would interleave it
    try:
        engine = built(make_engine, tmp_path, index_type="hnsw", hnsw_m=8, hnsw_ef_construction=40)
        first = engine.index.folder
        (tmp_path / "corpus" / "quarry.txt").write_text(
            "The quarry of Monte Bruno\n\nIn season 3 the quarry of Monte Bruno cut 412 granite blocks and "
            "shipped them by barge.", encoding="utf-8")
        engine.build()
        second = engine.index.folder
        key = engine.index.manifest["documents"]["quarry"]["segment"]
        expected = faiss.read_index(str(first / index_store.FAISS_FILE))
        expected.hnsw.efConstruction = 40
        expected.add(np.load(tmp_path / "index" / index_store.SEGMENTS / key / "embeddings.npy"))
        written = (second / index_store.FAISS_FILE).read_bytes()
        assert bytes(faiss.serialize_index(expected)) == written
        assert engine.index.faiss_index.ntotal == len(engine.index.chunks)
        hits = engine._retriever_or_load().search(prepare("How many granite blocks did the quarry cut?"), top_k=3)
        assert hits[0].chunk.doc_id == "quarry"

        (tmp_path / "corpus" / "harbour.txt").unlink()  # a removal: the graph is made anew
        engine.build()
        assert engine.index.faiss_index.ntotal == len(engine.index.chunks)
        assert {c.doc_id for c in engine.index.chunks} == {"orchard", "library", "railway", "quarry"}
    finally:
        faiss.omp_set_num_threads(threads)


def test_a_damaged_record_of_the_type_is_caught_at_load(make_engine, tmp_path: Path) -> None:
    """A manifest saying HNSW over a flat index file is a damaged build, not a silent flat search."""
    engine = built(make_engine, tmp_path, index_type="flat")
    folder = engine.index.folder
    manifest = index_store.read_manifest(folder)
    manifest["faiss"] = {"type": "hnsw"}
    (folder / index_store.MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    try:
        index_store._load_build(folder)
    except index_store.IndexDamaged as damage:
        assert damage.file == "faiss.index"
    else:
        raise AssertionError("a flat index recorded as HNSW loaded")


def exact_top(index: index_store.LoadedIndex, vector: np.ndarray, allowed: np.ndarray, depth: int) -> set[int]:
    sims = index.embeddings @ vector
    rows = np.flatnonzero(allowed)
    return {int(i) for i in rows[np.argsort(-sims[rows], kind="stable")[:depth]]}


def test_hnsw_search_honours_a_filter_and_the_candidates(make_engine, tmp_path: Path) -> None:
    engine = built(make_engine, tmp_path, index_type="hnsw", candidates=5, hnsw_ef_search=8, hnsw_m=8)
    index = engine.index
    retriever = Retriever(index, engine.embedder, engine.settings.retrieval)
    vector = engine.embedder.encode_queries(["How many apple trees and beehives did the orchards count?"])[0]

    mask = np.array([c.doc_id in ("orchard", "library") for c in index.chunks])
    assert mask.sum() > 5  # more allowed chunks than candidates: the graph search with a selector
    scores = retriever.dense_scores(vector, mask)
    found = np.flatnonzero(scores > -1.0)
    assert len(found) == 5
    assert mask[found].all()
    assert set(found.tolist()) == exact_top(index, vector, mask, 5)  # a few dozen nodes: HNSW is exact
    np.testing.assert_allclose(scores[found], (index.embeddings @ vector)[found], rtol=1e-5, atol=1e-6)

    few = np.array([c.doc_id == "railway" for c in index.chunks]) & (np.arange(len(index.chunks)) % 3 == 0)
    assert 0 < few.sum() <= 5  # fewer allowed chunks than candidates: every one of them is scored
    scores = retriever.dense_scores(vector, few)
    assert set(np.flatnonzero(scores > -1.0).tolist()) == set(np.flatnonzero(few).tolist())

    assert (retriever.dense_scores(vector, np.zeros(len(index.chunks), dtype=bool)) == -1.0).all()


def test_hnsw_returns_as_many_candidates_as_asked_whatever_ef_search(make_engine, tmp_path: Path) -> None:
    """efSearch below the depth would leave HNSW's extra results as id -1: it is raised to the depth."""
    engine = built(make_engine, tmp_path, index_type="hnsw", candidates=30, hnsw_ef_search=8)
    index = engine.index
    retriever = Retriever(index, engine.embedder, engine.settings.retrieval)
    vector = engine.embedder.encode_queries(["locomotives in the signal boxes"])[0]
    scores = retriever.dense_scores(vector, None)
    assert (scores > -1.0).sum() == min(30, len(index.chunks))
    flat = built(make_engine, tmp_path / "flat", index_type="flat", candidates=30)
    flat_scores = Retriever(flat.index, flat.embedder, flat.settings.retrieval).dense_scores(vector, None)
    assert set(np.flatnonzero(scores > -1.0).tolist()) == set(np.flatnonzero(flat_scores > -1.0).tolist())
    passages = engine.ask("How many locomotives did the railway count in season 3?").passages
    assert passages and passages[0].chunk.doc_id == "railway"


def test_sentences_of_the_chosen_chunks_score_as_in_a_full_scan(make_engine, tmp_path: Path) -> None:
    engine = built(make_engine, tmp_path, index_type="flat")
    index = engine.index
    retriever = Retriever(index, engine.embedder, engine.settings.retrieval)
    query = prepare("Which archivists kept the catalogue cards?")
    vector = engine.embedder.encode_queries([query.dense])[0]
    full_dense, full_lexical = retriever.best_sentence_scores(query, vector)
    chosen = np.array([c.doc_id == "library" for c in index.chunks])
    assert chosen.sum() * 2 < len(index.chunks)
    dense, lexical = retriever.best_sentence_scores(query, vector, chosen)
    assert full_dense is not None and dense is not None
    np.testing.assert_allclose(dense[chosen], full_dense[chosen], rtol=1e-5, atol=1e-6)
    assert (dense[~chosen] == -1.0).all()
    np.testing.assert_array_equal(lexical, full_lexical)  # BM25 of every sentence, always
    everything, _ = retriever.best_sentence_scores(query, vector, np.ones(len(index.chunks), dtype=bool))
    np.testing.assert_array_equal(everything, full_dense)  # most chunks chosen: the same full scan
