"""Baselines scored on the same questions, so every gain of gcm-qa is measured, not assumed.

``bm25`` and ``dense`` rank gcm-qa's own chunks with one retriever each. ``langchain`` is the
LangChain tutorial pipeline: RecursiveCharacterTextSplitter(1000, 200) over the raw extracted text,
the same embedding model, a FAISS vector store, top-k by similarity.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from langchain_core.embeddings import Embeddings

from gcm_qa.embedder import Embedder
from gcm_qa.engine import Engine
from gcm_qa.loaders import load
from gcm_qa.query import prepare

Ranker = Callable[[str, int], list[str]]


class SeamEmbeddings(Embeddings):
    """The LangChain embeddings interface over our already-loaded encoder (no extra download, and
    no langchain-huggingface, which pins huggingface-hub below what gradio needs)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.encode_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.encode_queries([text])[0].tolist()


def bm25_ranker(engine: Engine) -> Ranker:
    chunks = engine.index.chunks

    def rank(question: str, k: int) -> list[str]:
        scores = engine.index.keyword.scores(question)
        order = [i for i in np.argsort(-scores, kind="stable")[:k] if scores[i] > 0]
        return [chunks[i].text for i in order]

    return rank


def dense_ranker(engine: Engine) -> Ranker:
    chunks = engine.index.chunks

    def rank(question: str, k: int) -> list[str]:
        vector = engine.embedder.encode_queries([question])
        _, ids = engine.index.faiss_index.search(vector, k)
        return [chunks[i].text for i in ids[0] if i >= 0]

    return rank


def langchain_ranker(engine: Engine) -> Ranker:
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    texts: list[str] = []
    for doc in engine.index.manifest["documents"].values():
        raw = load(engine.settings.paths.corpus_dir / doc["file"])
        texts.extend(splitter.split_text("\n".join(t for _, t in raw.pages)))
    store = FAISS.from_texts(texts, SeamEmbeddings(engine.embedder))

    def rank(question: str, k: int) -> list[str]:
        return [d.page_content for d in store.similarity_search(question, k=k)]

    return rank


def all_baselines(engine: Engine) -> dict[str, Ranker]:
    rankers: dict[str, Ranker] = {"bm25": bm25_ranker(engine), "dense": dense_ranker(engine)}
    try:
        rankers["langchain"] = langchain_ranker(engine)
    except ImportError as exc:  # langchain-community is a test extra
        print(f"(LangChain baseline skipped: {exc}; pip install 'gcm-qa[test]')")
    return rankers


def plain(question: str) -> str:
    """Baselines get the question as typed (no Spanish glossary, no rewriting)."""
    return prepare(question).question
