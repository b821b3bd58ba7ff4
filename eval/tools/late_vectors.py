"""Sentence vectors pooled from their chunk's own forward pass ("late chunking"), written as a vectors
file under the default model's identity, so that an index built from it holds them and the tuning
set measures what they would cost: every chunk is encoded once with its token embeddings kept, each
sentence's vector is the mean of its tokens' embeddings there, passed through the model's dense
layers and normalised. One pass per chunk instead of one per chunk and one per sentence would halve
a build; the question is whether sentences seen in their chunk's context still tell apart what the
answerer quotes.

    .venv/bin/python eval/tools/late_vectors.py OUT_DIR
    GCM_QA_PATHS__VECTORS_DIR=OUT_DIR GCM_QA_PATHS__INDEX_DIR=OUT_DIR/index \\
        .venv/bin/gcm-qa eval --split tune --no-baselines --out OUT_DIR/eval
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gcm_qa import index_store, vector_store
from gcm_qa.embedder import SentenceTransformerEmbedder
from gcm_qa.engine import Engine
from gcm_qa.sentences import split_sentences
from gcm_qa.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as work:
        engine = Engine(Settings.model_validate({
            "paths": {"corpus_dir": ROOT / "corpus", "index_dir": Path(work) / "index",
                      "vectors_dir": ROOT / "index" / "vectors"},
            "embedding": {"backend": "sentence-transformers"}}))  # the token embeddings come from torch
        engine.build()
        index = engine.index
    embedder = engine.embedder
    assert isinstance(embedder, SentenceTransformerEmbedder)
    model = embedder.model
    prompt = model.prompts["document"]
    texts = [c.embed_text() for c in index.chunks]
    started = time.perf_counter()
    outputs = model.encode(texts, prompt_name="document", batch_size=embedder.batch_size, output_value=None,
                           convert_to_numpy=False)
    pooled, sentences = [], []
    for ci, (chunk, output) in enumerate(zip(index.chunks, outputs, strict=True)):
        offsets = model.tokenizer(prompt + texts[ci], return_offsets_mapping=True)["offset_mapping"]
        tokens = output["token_embeddings"].float()[output["attention_mask"].bool()]
        assert len(tokens) == len(offsets)
        base = len(prompt) + texts[ci].find(chunk.text)  # where the chunk's text sits in what was embedded
        for s in split_sentences(chunk.text, ci):
            a, b = base + s.start, base + s.end
            inside = [i for i, (x, y) in enumerate(offsets) if y > x and x < b and y > a]
            pooled.append(tokens[inside].mean(0, keepdim=True))
            sentences.append(chunk.text[s.start:s.end])
    features = {"sentence_embedding": torch.cat(pooled).to(next(model[2].parameters()).dtype)}
    with torch.no_grad():
        for module in list(model)[2:]:  # the dense layers and the normalisation after pooling
            features = module(features)
    late = features["sentence_embedding"].float().numpy()
    seconds = time.perf_counter() - started
    alone = index.sentence_embeddings
    cosine = np.sum(late * alone, axis=1)
    vectors = {index_store.text_key(t): o["sentence_embedding"].float().numpy() for t, o in zip(texts, outputs,
                                                                                                 strict=True)}
    for text, vector in zip(sentences, late, strict=True):
        vectors.setdefault(index_store.text_key(text), vector)
    path = vector_store.save(out, embedder.identity, vectors)
    print(f"{len(texts)} chunks and {len(sentences)} sentences in {seconds:.0f} s; cosine of a sentence's pooled "
          f"vector to its own: median {np.median(cosine):.3f}, 10th percentile {np.percentile(cosine, 10):.3f}: {path}")


if __name__ == "__main__":
    main()
