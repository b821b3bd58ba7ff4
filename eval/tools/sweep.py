"""Tune chunking and fusion on the dev split (never on test).

For each chunk size/overlap, builds an index over the shipped corpus, caches every dev question's
dense and BM25 scores, then scores fusion variants in NumPy (no re-embedding per variant).
Prints hit@5, MRR@10 and hit within 4,000 characters on answerable dev questions.

    .venv/bin/python eval/tools/sweep.py --chunks 500/100 700/150 900/200
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np

from gcm_qa import fusion
from gcm_qa.embedder import Embedder
from gcm_qa.engine import Engine
from gcm_qa.evaluation import metrics as m
from gcm_qa.evaluation.gold import load_gold
from gcm_qa.query import prepare
from gcm_qa.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", nargs="+", default=["700/150"])
    ap.add_argument("--split", default="dev")
    args = ap.parse_args()
    questions = [q for q in load_gold(ROOT / "eval/gold.jsonl", args.split) if q.answerable]
    cache = Path(tempfile.gettempdir()) / "gcm-qa-sweep"
    embedder = Embedder(Settings().embedding, cache / "model")
    for spec in args.chunks:
        size, overlap = (int(x) for x in spec.split("/"))
        data = Settings().model_dump()
        data["paths"] = {"corpus_dir": ROOT / "corpus", "index_dir": cache / f"idx-{size}-{overlap}",
                         "cache_dir": cache / "model"}
        data["chunking"] = {"chunk_chars": size, "overlap_chars": overlap}
        engine = Engine(Settings.model_validate(data), embedder=embedder)
        engine.ensure_index()
        ix = engine.index
        texts = [c.text for c in ix.chunks]
        prior = np.array([0.5 if c.section and c.section[0].lower() in ("bibliography", "acronyms", "contents")
                          else 1.0 for c in ix.chunks])
        cached = []
        for q in questions:
            sq = prepare(q.question)
            v = embedder.encode([sq.dense])[0]
            cached.append((q, ix.embeddings @ v, ix.keyword.scores(sq.keyword)))
        print(f"\n== chunks {size}/{overlap}: {len(texts)} chunks")
        grid = itertools.product(["rrf"], [10, 30, 60], [0.5, 0.7, 1.0, 1.5], [True, False])
        variants = [(kind, k, w, p) for kind, k, w, p in grid]
        variants += [("convex", 0, a, p) for a in (0.3, 0.4, 0.5, 0.6, 0.7) for p in (True, False)]
        rows = []
        for kind, k, w, use_prior in variants:
            ranks, within = [], []
            for q, dense, lex in cached:
                if kind == "rrf":
                    dr = fusion.ranks(dense, depth=50)
                    lr = fusion.ranks(lex, lex > 0, depth=50)
                    score = fusion.rrf([dr, lr], [w, 1.0], k)
                else:
                    score = fusion.convex(dense, lex, w)
                if use_prior:
                    score = score * prior
                order = np.argsort(-score)[:10]
                ranked = [texts[i] for i in order]
                ranks.append(m.first_hit_rank(ranked, q.evidence))
                within.append(m.hit_within_chars(ranked, q.evidence))
            s = m.retrieval_summary(ranks, within)
            rows.append((s["hit@5"], s["mrr@10"], s["hit@4000chars"], f"{kind} k={k} w_dense={w} prior={use_prior}"))
        for r in sorted(rows, reverse=True)[:8]:
            print(f"  hit@5={r[0]:.3f} mrr={r[1]:.3f} hit4000={r[2]:.3f}  {r[3]}")


if __name__ == "__main__":
    main()
