"""Choose the encoder and tune fusion on the tuning split (never on a test set).

For each packaged encoder, builds (or reuses) an index of the shipped corpus, embeds every question
once, then ranks with the production retriever (``Retriever.search``, so ``fusion.hybrid``, priors,
references and de-duplication are the ones that ship) under each fusion variant. Also scores two
encoders together: their dense scores, each min-max scaled, averaged, then fused with BM25 as usual.
Prints hit@5, MRR@10, hit@5 on Spanish and on paraphrase questions, for answerable questions.

    .venv/bin/python eval/tools/sweep.py --split dev
    .venv/bin/python eval/tools/sweep.py --models embeddinggemma-300m --alphas 0.5 0.7 0.9
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gcm_qa import fusion, models
from gcm_qa.engine import Engine
from gcm_qa.evaluation import metrics as m
from gcm_qa.evaluation.gold import GoldQuestion, load_gold
from gcm_qa.query import SearchQuery
from gcm_qa.retrieval import Retriever
from gcm_qa.settings import RetrievalSettings, Settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Encoded:
    engine: Engine
    queries: list[SearchQuery]
    vectors: np.ndarray


def engine_for(model: str, cache: Path) -> Engine:
    data = Settings().model_dump(exclude_unset=True)
    data["paths"] = {"corpus_dir": ROOT / "corpus", "index_dir": cache / f"idx-{model}",
                     "vectors_dir": ROOT / "index" / "vectors"}
    data["embedding"] = {"model": models.PREFIX + model}
    engine = Engine(Settings.model_validate(data))
    if engine.notices:
        raise SystemExit(f"{model}: {engine.notices[0]}")
    engine.ensure_index()
    return engine


def encode(engine: Engine, questions: list[GoldQuestion]) -> Encoded:
    queries = [engine.search_query(q.question) for q in questions]
    started = time.perf_counter()
    vectors = engine.embedder.encode_queries([sq.dense for sq in queries])
    per_query = (time.perf_counter() - started) * 1000 / max(len(queries), 1)
    print(f"{engine.model.name}: {len(engine.index.chunks)} chunks; {per_query:.0f} ms a query in a batch")
    return Encoded(engine, queries, vectors)


class Ensemble(Retriever):
    """Two encoders' dense scores, each min-max scaled, averaged (same chunks in the same order)."""

    def __init__(self, first: Encoded, second: Encoded, settings: RetrievalSettings) -> None:
        super().__init__(first.engine.index, first.engine.embedder, settings)
        self.other = second.engine.index
        assert [c.chunk_id for c in self.other.chunks] == [c.chunk_id for c in self.index.chunks]
        self.vectors: tuple[np.ndarray, np.ndarray] | None = None

    def dense_scores(self, query_vector: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        assert self.vectors is not None
        a, b = self.vectors
        return (fusion.minmax(self.index.embeddings @ a) + fusion.minmax(self.other.embeddings @ b)) / 2

    def best_sentence_scores(self, query: SearchQuery, query_vector: np.ndarray):
        assert self.vectors is not None
        a, b = self.vectors
        n = len(self.index.chunks)
        best = []
        for ix, v in ((self.index, a), (self.other, b)):
            top = np.full(n, -1.0)
            np.maximum.at(top, ix.sentence_spans[:, 0], ix.sentence_embeddings @ v)
            best.append(fusion.minmax(top))
        lexical = np.zeros(n)
        np.maximum.at(lexical, self.index.sentence_spans[:, 0], self.index.sentence_keyword.scores(query.keyword))
        return (best[0] + best[1]) / 2, lexical


def score(retriever: Retriever, enc: list[Encoded], questions: list[GoldQuestion]) -> dict[str, float]:
    ranks: dict[str, list[int | None]] = {"all": [], "spanish": [], "paraphrase": []}
    for i, q in enumerate(questions):
        if isinstance(retriever, Ensemble):
            retriever.vectors = (enc[0].vectors[i], enc[1].vectors[i])
        passages = retriever.search(enc[0].queries[i], top_k=10, query_vector=enc[0].vectors[i])
        rank = m.first_hit_rank([p.chunk.text for p in passages], q.evidence)
        ranks["all"].append(rank)
        if q.type in ranks:
            ranks[q.type].append(rank)
    out = {}
    for name, rs in ranks.items():
        s = m.retrieval_summary(rs, [r is not None for r in rs])
        out[f"hit@5 {name}"] = s["hit@5"]
        if name == "all":
            out["mrr@10"] = s["mrr@10"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="dev")
    ap.add_argument("--models", nargs="+", default=list(models.PACKAGED))
    ap.add_argument("--alphas", nargs="+", type=float, default=[0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    ap.add_argument("--sentence-weights", nargs="+", type=float, default=[0.0, 0.3, 0.5])
    args = ap.parse_args()
    if args.split not in ("dev", "all"):
        raise SystemExit("tune on the dev split only")
    questions = [q for q in load_gold(ROOT / "eval/gold.jsonl", args.split) if q.answerable]
    cache = Path(tempfile.gettempdir()) / "gcm-qa-sweep"
    encoded = {name: encode(engine_for(name, cache), questions) for name in args.models}
    rows = []
    base = RetrievalSettings()
    for name, enc in encoded.items():
        for alpha, sw in itertools.product(args.alphas, args.sentence_weights):
            settings = base.model_copy(update={"alpha": alpha, "sentence_dense_weight": sw, "sentence_bm25_weight": sw})
            retriever = Retriever(enc.engine.index, enc.engine.embedder, settings)
            rows.append((score(retriever, [enc], questions), f"{name} alpha={alpha} sentence={sw}"))
    for (a, ea), (b, eb) in itertools.combinations(encoded.items(), 2):
        for alpha, sw in itertools.product(args.alphas, args.sentence_weights):
            settings = base.model_copy(update={"alpha": alpha, "sentence_dense_weight": sw, "sentence_bm25_weight": sw})
            rows.append((score(Ensemble(ea, eb, settings), [ea, eb], questions),
                         f"{a} + {b} alpha={alpha} sentence={sw}"))
    print(f"\n{len(questions)} answerable questions of split '{args.split}'")
    print(f"{'hit@5':>6} {'mrr':>6} {'es@5':>6} {'par@5':>6}  variant")
    for s, label in sorted(rows, key=lambda r: (r[0]["hit@5 all"], r[0]["mrr@10"]), reverse=True):
        cells = (s["hit@5 all"], s["mrr@10"], s["hit@5 spanish"], s["hit@5 paraphrase"])
        print(" ".join(f"{c:6.3f}" for c in cells) + f"  {label}")


if __name__ == "__main__":
    main()
