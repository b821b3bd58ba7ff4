"""Warm query latency over the gold questions, split into encode, retrieve and answer; the question
encoder through ONNX Runtime against sentence-transformers in the same run, and how alike their
vectors are.

Both engines read one index of the shipped report (built from the shipped vectors, nothing embedded)
and answer each question in turn, so machine noise falls on both alike.

    .venv/bin/python benchmarks/bench_query.py [--quick]
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from common import ROOT, Section, gold_questions, main, median, percentile, timed

from gcm_qa.embedder import load_embedder
from gcm_qa.engine import Engine
from gcm_qa.settings import EmbeddingSettings, Settings

PARTS = ("encode", "retrieve", "answer", "total")


def _settings(work: Path, backend: str) -> Settings:
    return Settings.model_validate({
        "paths": {"corpus_dir": ROOT / "corpus", "index_dir": work / "index",
                  "vectors_dir": ROOT / "index" / "vectors"},
        "embedding": {"backend": backend},
    })


def run(quick: bool) -> Section:
    section = Section("warm query")
    work = Path(tempfile.mkdtemp(prefix="gcm-qa-bench-query-"))
    try:
        asked = gold_questions(40 if quick else None)
        onnx = Engine(_settings(work, "onnx"))
        load_onnx, _ = timed(lambda: onnx.embedder)
        build_s, _ = timed(onnx.build)
        torch_engine = Engine(_settings(work, "sentence-transformers"))
        load_torch, _ = timed(lambda: torch_engine.embedder)
        torch_engine.ensure_index()
        timings: dict[str, dict[str, list[float]]] = {"onnx": {p: [] for p in PARTS},
                                                      "sentence-transformers": {p: [] for p in PARTS}}
        for engine in (onnx, torch_engine):
            engine.ask("warm-up question about migration")
        for q in asked:  # interleaved: both meet the same machine state
            for name, engine in (("onnx", onnx), ("sentence-transformers", torch_engine)):
                answer = engine.ask(q)
                for part in PARTS:
                    timings[name][part].append(answer.timings_ms[part])
        n = len(asked)
        section.add("encoder load, ONNX Runtime", load_onnx, "s", note="tokenizer and session, in process")
        section.add("encoder load, sentence-transformers", load_torch, "s", note="imports torch and transformers")
        for name in ("onnx", "sentence-transformers"):
            t = timings[name]
            label = "ONNX" if name == "onnx" else "sentence-transformers"
            for part in PARTS:
                p50 = median(t[part])
                target = "<= 100 ms" if (part == "total" and name == "onnx") else ""
                section.add(f"ask p50 {part} ({label})", p50, "ms", target, (p50 <= 100) if target else None,
                            note=f"{n} gold questions, warm, one pass")
                section.add(f"ask p95 {part} ({label})", percentile(t[part], 95), "ms",
                            note=f"{n} gold questions")
        speedup = median(timings["sentence-transformers"]["total"]) / median(timings["onnx"]["total"])
        section.add("warm ask p50, sentence-transformers / ONNX", speedup, "x", note="same run, same questions")

        # how alike: ONNX against sentence-transformers in float32 (the export's own precision) and in
        # torch's own choice of precision (bfloat16 where the CPU has it natively)
        every = gold_questions()
        cache = onnx.settings.paths.cache_dir
        fp32 = load_embedder(EmbeddingSettings(backend="sentence-transformers", dtype="float32"), cache)
        ours = onnx.embedder.encode_queries(every)
        cos32 = np.sum(ours * fp32.encode_queries(every), axis=1)
        cos_doc = np.sum(ours * torch_engine.embedder.encode_queries(every), axis=1)
        section.add("least cosine ONNX vs sentence-transformers float32", float(cos32.min()), "",
                    ">= 0.999", bool(cos32.min() >= 0.999), note=f"all {len(every)} gold questions")
        section.add("least cosine ONNX vs sentence-transformers, dtype auto", float(cos_doc.min()), "",
                    note=f"dtype {torch_engine.embedder.dtype}; {len(every)} questions")
        section.details = {
            "questions": n, "index build s (shipped vectors)": round(build_s, 2),
            "median cosine float32": float(np.median(cos32)),
            "chart": {"title": "Warm ask p50 (ms)", "unit": "ms", "target": 100.0,
                      "labels": ["ONNX", "sentence-transformers"],
                      "stacks": {p: [median(timings[k][p]) for k in ("onnx", "sentence-transformers")]
                                 for p in ("encode", "retrieve", "answer")}},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return section


if __name__ == "__main__":
    main(run)
