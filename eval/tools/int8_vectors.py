"""The report's passages and sentences embedded by ONNX Runtime with int8 weights, written as a
vectors file under the default model's identity, so that an index built from it (``paths.vectors_dir``)
holds int8 document vectors and the tuning set measures what int8 bulk encoding would cost in
retrieval (the speed issue: int8 only if faster and hit@5 within 0.01).

    .venv/bin/python eval/tools/int8_vectors.py OUT_DIR
    GCM_QA_PATHS__VECTORS_DIR=OUT_DIR GCM_QA_PATHS__INDEX_DIR=OUT_DIR/index \\
        .venv/bin/gcm-qa eval --split tune --no-baselines --out OUT_DIR/eval

The int8 model is made by ``benchmarks/bench_encoding.py`` (run once without --quick).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from gcm_qa import index_store, models, vector_store
from gcm_qa.engine import Engine
from gcm_qa.onnx_encoder import OnnxEncoder
from gcm_qa.sentences import split_sentences
from gcm_qa.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    out = Path(sys.argv[1])
    settings = Settings()
    gemma = models.PACKAGED["embeddinggemma-300m"]
    onnx = models.onnx_folder(gemma, settings.paths.cache_dir)
    assert onnx is not None, "run 'make models' first"
    int8 = onnx.parent / "onnx-int8"
    assert (int8 / "model.onnx").is_file(), "run benchmarks/bench_encoding.py (without --quick) first"
    with tempfile.TemporaryDirectory() as work:
        engine = Engine(Settings.model_validate({"paths": {
            "corpus_dir": ROOT / "corpus", "index_dir": Path(work) / "index",
            "vectors_dir": ROOT / "index" / "vectors"}}))
        engine.build()
        chunks = engine.index.chunks
    texts = [c.embed_text() for c in chunks]
    texts += [c.text[s.start:s.end] for i, c in enumerate(chunks) for s in split_sentences(c.text, i)]
    unique = sorted(set(texts))
    encoder = OnnxEncoder(int8)
    started = time.perf_counter()
    vectors = encoder.encode(unique, "document")
    seconds = time.perf_counter() - started
    path = vector_store.save(out, engine.model.identity,
                             {index_store.text_key(t): v for t, v in zip(unique, vectors, strict=True)})
    print(f"{len(unique)} texts embedded with int8 weights in {seconds:.0f} s ({len(unique) / seconds:.1f}/s): {path}")


if __name__ == "__main__":
    main()
