"""Benchmark: the index at 10 and 100 times the report, flat against HNSW.

Synthetic corpora, made without the encoder (embedding speed is measured by the other sections): the
report's real build (from the shipped vectors) is replicated k times. Copy 0 is the report itself;
copies 1..k-1 are its chunks and sentences under new document ids (``<doc>-copy-<i>``) and chunk ids,
with the same texts, and each vector replaced by ``normalise(v + sigma * g)``, ``g`` standard normal
in every dimension, ``sigma = sqrt((1 / 0.9**2 - 1) / d)``, so a copy's cosine to its original is
about 0.9. Each copy is written as a document part by the real writer (``segments.write``: term counts,
files, checksums, fsync), once per scale; then a build naming the parts is written
(``index_store._write_build``) flat, then HNSW (its graph made by ``index_store.make_hnsw_index``),
and each is loaded and queried in a child process of its own
(peak memory is that process's): warm ``Engine.ask`` on the gold questions, the question vectors from
the real default encoder, split into encode, retrieve and answer. HNSW's recall@10 is measured against
flat's on the same query vectors: the top 10 chunk ids of the dense search as retrieval runs it.

    .venv/bin/python benchmarks/bench_scale.py [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import PYTHON, ROOT, Section, gold_questions, main, median, percentile, run_child

from gcm_qa import index_store, segments
from gcm_qa.engine import Engine
from gcm_qa.settings import Settings
from gcm_qa.types import Chunk

PARTS = ("encode", "retrieve", "answer", "total")
COSINE = 0.9  # of a copy's vector to its original's
TYPES = ("flat", "hnsw")


def _settings(index_dir: Path, **retrieval: Any) -> Settings:
    return Settings.model_validate({
        "paths": {"corpus_dir": ROOT / "corpus", "index_dir": index_dir, "vectors_dir": ROOT / "index" / "vectors"},
        "retrieval": retrieval,
    })


def _noisy(matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = np.sqrt((1 / COSINE**2 - 1) / matrix.shape[1])
    out = matrix + np.float32(sigma) * rng.standard_normal(matrix.shape, dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32, copy=False)


@dataclass
class Copy:
    """One copy of the report, as a part takes it."""

    doc_id: str
    doc: dict[str, Any]
    chunks: list[Chunk]
    embeddings: np.ndarray
    spans: np.ndarray
    sentence_embeddings: np.ndarray


def synthetic(base: index_store.LoadedIndex, k: int, seed: int = 0) -> Iterator[Copy]:
    """The report's build replicated k times (see the module docstring), one copy at a time."""
    rng = np.random.default_rng(seed)
    ((doc_id, doc),) = base.manifest["documents"].items()
    for i in range(k):
        new_id = doc_id if i == 0 else f"{doc_id}-copy-{i}"
        chunks = base.chunks if i == 0 else [
            replace(c, doc_id=new_id, chunk_id=new_id + ":" + c.chunk_id.rsplit(":", 1)[-1]) for c in base.chunks]
        entry = {**doc, "file": doc["file"] if i == 0 else f"copy-{i}-{doc['file']}",
                 "meta": {**doc["meta"], "doc_id": new_id}, "segment": f"copy-{i:03d}"}
        yield Copy(new_id, entry, chunks, base.embeddings if i == 0 else _noisy(base.embeddings, rng),
                   base.sentence_spans, base.sentence_embeddings if i == 0 else _noisy(base.sentence_embeddings, rng))


def _dir_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def write_parts(index_dir: Path, base: index_store.LoadedIndex, k: int) -> tuple[dict[str, Any], float]:
    """Write the k copies as parts (the real writer); the manifest of a build naming them all, and
    the seconds the parts took."""
    started = time.perf_counter()
    documents: dict[str, Any] = {}
    for copy in synthetic(base, k):
        texts = [copy.chunks[int(ci)].text[int(a):int(b)] for ci, a, b in copy.spans]
        info = {"doc_id": copy.doc_id, "file": copy.doc["file"], "sha256": copy.doc["sha256"],
                "model": base.manifest["recipe"]["model"], "meta": copy.doc["meta"], "form": None}
        segments.write(index_dir / index_store.SEGMENTS / copy.doc["segment"], info, copy.chunks, copy.embeddings,
                       copy.spans, copy.sentence_embeddings, texts)
        documents[copy.doc_id] = copy.doc
    manifest = {key: value for key, value in base.manifest.items() if key not in ("files", "faiss")}
    manifest["documents"] = documents
    return manifest, time.perf_counter() - started


def write_build(index_dir: Path, kind: str, manifest: dict[str, Any], settings: Settings) -> dict[str, float]:
    """Write a build naming the parts, flat or with its HNSW graph; seconds of the graph's
    construction and of the whole write."""
    retrieval = settings.retrieval.model_copy(update={"index_type": kind})
    timing: dict[str, float] = {"faiss": 0.0}
    started = time.perf_counter()
    graph = None
    if kind == "hnsw":
        parts = index_dir / index_store.SEGMENTS
        matrix = np.concatenate([np.load(parts / d["segment"] / "embeddings.npy")
                                 for d in manifest["documents"].values()])
        made = time.perf_counter()
        graph = index_store.make_hnsw_index(matrix, retrieval)
        timing["faiss"] = time.perf_counter() - made
    folder = index_store._write_build(index_dir, manifest, graph)
    timing["write"] = time.perf_counter() - started
    timing["faiss_mb"] = (folder / index_store.FAISS_FILE).stat().st_size / 1e6 if graph is not None else 0.0
    timing["index_mb"] = _dir_mb(index_dir)
    return timing


def extend_graph(index_dir: Path, base: index_store.LoadedIndex, k: int, manifest: dict[str, Any],
                 settings: Settings) -> float:
    """Seconds for a build to extend the current (HNSW) build's graph by copy k of the report:
    read the graph, add the copy's vectors (index_store._graph, as a build adding a document runs it)."""
    extra = next(c for i, c in enumerate(synthetic(base, k + 1)) if i == k)
    texts = [extra.chunks[int(ci)].text[int(a):int(b)] for ci, a, b in extra.spans]
    segments.write(index_dir / index_store.SEGMENTS / extra.doc["segment"], {"doc_id": extra.doc_id},
                   extra.chunks, extra.embeddings, extra.spans, extra.sentence_embeddings, texts)
    current = index_store.current_folder(index_dir)
    assert current is not None
    previous = index_store.read_manifest(current)
    documents = {**previous["documents"], extra.doc_id: extra.doc}
    retrieval = settings.retrieval.model_copy(update={"index_type": "hnsw"})
    started = time.perf_counter()
    graph, _ = index_store._graph(current, previous, documents, index_dir / index_store.SEGMENTS, retrieval)
    seconds = time.perf_counter() - started
    assert graph.ntotal == sum(int(d["chunks"]) for d in manifest["documents"].values()) + len(extra.chunks)
    return seconds


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def child(index_dir: Path, n_questions: int, repeat: int) -> dict[str, Any]:
    """In a process of its own: load the encoder, then the index, then ask; every number it measures."""
    engine = Engine(_settings(index_dir))
    asked = gold_questions(n_questions)
    engine.embedder.encode_queries(["warm-up"])
    rss_model = _rss_mb()
    started = time.perf_counter()
    engine._load()  # the synthetic build as it is: no staleness check against the real corpus
    load_s = time.perf_counter() - started
    rss_index = _rss_mb()
    engine.ask("warm-up question about migration")
    timings: dict[str, list[float]] = {p: [] for p in PARTS}
    for _ in range(repeat):
        for q in asked:
            answer = engine.ask(q)
            for part in PARTS:
                timings[part].append(answer.timings_ms[part])
    retriever = engine._retriever
    assert retriever is not None
    vectors = engine.embedder.encode_queries(asked)
    top10 = []
    for v in vectors:
        scores = retriever.dense_scores(v, None)  # as retrieval runs it: the candidates' depth, HNSW's efSearch
        top10.append([int(i) for i in np.argsort(-scores, kind="stable")[:10]])
    return {"type": engine.index.index_type, "chunks": len(engine.index.chunks),
            "sentences": len(engine.index.sentence_spans), "load_s": load_s, "rss_model_mb": rss_model,
            "rss_index_mb": rss_index - rss_model, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "timings": timings, "top10": top10}


def run(quick: bool) -> Section:
    section = Section("scale")
    n_questions, repeat = (12, 1) if quick else (40, 2)
    scales = (10, 100)
    work = Path(tempfile.mkdtemp(prefix="gcm-qa-bench-scale-"))
    notes = [
        "Synthetic corpora, built without the encoder (embedding is measured in the build and query sections): "
        "copy 0 is the report, copies 1..k-1 its chunks and sentences under new ids with the same texts and "
        f"vectors normalise(v + sigma g), g ~ N(0, I), sigma = sqrt((1/{COSINE}^2 - 1)/d): cosine ~{COSINE} to "
        "the original.",
        "Each copy is written as a document part by the real writer (segments.write), once per scale; a build "
        "naming the parts is written flat, then with its HNSW graph (index_store._write_build), and each is "
        "loaded and queried in a child process of its own: warm Engine.ask with the default encoder; memory is "
        "that child's (encoder included).",
        "recall@10: HNSW's top 10 chunk ids of the dense search (as retrieval runs it, 'candidates' deep) "
        "against flat's, same query vectors.",
    ]
    details: dict[str, Any] = {"notes": notes, "transformation": {
        "copies": "copy 0 = the report's build unchanged; copy i >= 1: doc id '<doc>-copy-<i>', chunk id "
                  "'<doc>-copy-<i>:<n>', same texts",
        "vectors": "normalise(v + sigma * g), g ~ N(0, I_d) per passage and per sentence, "
                   f"sigma = sqrt((1/{COSINE}**2 - 1)/d) for a cosine of about {COSINE} to the original"},
        "questions": n_questions, "repeat": repeat, "runs": {}}
    try:
        base_engine = Engine(_settings(work / "base"))
        base_engine.build()  # the shipped vectors: nothing is embedded
        base = base_engine.index
        settings = base_engine.settings
        details["report"] = {"chunks": len(base.chunks), "sentences": len(base.sentence_spans),
                             "dimension": int(base.embeddings.shape[1])}
        del base_engine
        chart_labels, chart_stacks = [], {p: [] for p in ("encode", "retrieve", "answer")}
        for k in scales:
            index_dir = work / f"x{k}"
            manifest, parts_s = write_parts(index_dir, base, k)
            n_chunks = sum(int(d["chunks"]) for d in manifest["documents"].values())
            n_sentences = k * len(base.sentence_spans)
            where = f"{n_chunks:,} chunks, {n_sentences:,} sentences"
            section.add(f"{k}x: document parts written", parts_s, "s",
                        note=f"{k} parts: BM25 term counts, files, checksums, fsync; {where}")
            results: dict[str, dict[str, Any]] = {}
            for kind in TYPES:
                built = write_build(index_dir, kind, manifest, settings)
                done = run_child([PYTHON, str(Path(__file__).resolve()), "--child", str(index_dir),
                                  str(n_questions), str(repeat)])
                if done.returncode != 0:
                    raise RuntimeError(f"scale {k}x {kind}: the child failed:\n{done.stderr[-3000:]}")
                measured = json.loads(done.stdout.strip().splitlines()[-1])
                assert measured["type"] == kind and measured["chunks"] == n_chunks
                results[kind] = measured
                label = f"{k}x {kind}"
                if kind == "hnsw":
                    section.add(f"{label}: FAISS HNSW graph build", built["faiss"], "s", note=where)
                    section.add(f"{label}: faiss.index on disk", built["faiss_mb"], "MB")
                section.add(f"{label}: build write", built["write"], "s",
                            note="the manifest" + (" and the HNSW graph" if kind == "hnsw" else "") + ", fsync")
                section.add(f"{label}: index on disk", built["index_mb"], "MB",
                            note="every part and every build in the index folder")
                section.add(f"{label}: index load", measured["load_s"], "s", note="checksums, arrays, BM25")
                section.add(f"{label}: RSS growth at index load", measured["rss_index_mb"], "MB")
                section.add(f"{label}: peak RSS of the query process", done.peak_mb, "MB",
                            note=f"encoder {measured['rss_model_mb']:.0f} MB of it")
                t = measured["timings"]
                n = len(t["total"])
                for part in PARTS:
                    target = "<= 200 ms" if (part == "total" and k == 100) else ""
                    p95 = percentile(t[part], 95)
                    section.add(f"{label}: ask p50 {part}", median(t[part]), "ms", note=f"{n} asks, warm",
                                runs=t[part])
                    section.add(f"{label}: ask p95 {part}", p95, "ms", target, (p95 <= 200) if target else None,
                                note=f"{n} asks ({n_questions} gold questions x {repeat})")
                chart_labels.append(label)
                for part in chart_stacks:
                    chart_stacks[part].append(median(t[part]))
            extended = extend_graph(index_dir, base, k, manifest, settings)
            section.add(f"{k}x hnsw: graph extended by one more report", extended, "s",
                        note=f"as a build that adds a document does (index_store._graph); made anew: "
                             f"{built['faiss']:.1f} s")
            shutil.rmtree(index_dir, ignore_errors=True)
            recall = [len(set(a) & set(b)) / 10 for a, b in
                      zip(results["hnsw"]["top10"], results["flat"]["top10"], strict=True)]
            value = float(np.mean(recall))
            r = settings.retrieval
            section.add(f"{k}x: HNSW recall@10 against flat", value, "", ">= 0.95", value >= 0.95,
                        note=f"{len(recall)} gold questions' vectors; M {r.hnsw_m}, efConstruction "
                             f"{r.hnsw_ef_construction}, efSearch max({r.hnsw_ef_search}, candidates {r.candidates})")
            details["runs"][f"{k}x"] = {"chunks": n_chunks, "sentences": n_sentences,
                                        **{kind: {key: v for key, v in r.items() if key not in ("top10", "timings")}
                                           for kind, r in results.items()}}
        details["chart"] = {"title": "Warm ask p50 at scale (ms)", "unit": "ms", "target": 200.0,
                            "labels": chart_labels, "stacks": chart_stacks}
        section.details = details
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return section


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
        sys.exit(0)
    main(run)
