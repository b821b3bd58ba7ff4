"""Calibrate llm.support_threshold on the tuning set, without a language model.

A generated sentence is a paraphrase of its source. The gold set's reference answers are exactly
that: written by a person from the evidence, in the question's language. So the cosine of each
reference answer with the best sentence of the chunk holding its evidence is a *supported* sample,
and its cosine with the best sentence of another question's evidence chunk an *unsupported* one.
The threshold is the value that keeps false support (unsupported samples accepted) under 5% while
accepting as many supported ones as possible; both rates are printed around it.

    .venv/bin/python eval/tools/calibrate_support.py [--split tune]
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

import numpy as np

from gcm_qa.engine import Engine
from gcm_qa.evaluation.gold import load_gold, norm
from gcm_qa.verification import best_support


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="tune")
    ap.add_argument("--gold", type=Path, default=Path("eval/gold.jsonl"))
    ap.add_argument("--max-false", type=float, default=0.05)
    args = ap.parse_args()
    engine = Engine()
    engine.ensure_index()
    index = engine.index
    texts = [norm(c.text) for c in index.chunks]
    questions = [q for q in load_gold(args.gold, args.split) if q.answer and q.evidence]
    holding = []
    for q in questions:
        pos = next((i for i, t in enumerate(texts) if norm(q.evidence[0]) in t), None)
        holding.append(pos)
    pairs = [(q, pos) for q, pos in zip(questions, holding, strict=True) if pos is not None]
    answers = [re.sub(r"\s+", " ", q.answer) for q, _ in pairs]
    vectors = engine.embedder.encode_documents(answers)

    def candidates(pos: int) -> list[tuple[int, str, np.ndarray]]:
        chunk = index.chunks[pos]
        out = []
        for row in index.sentence_rows(pos):
            _, a, b = (int(v) for v in index.sentence_spans[row])
            out.append((1, chunk.text[a:b], index.sentence_embeddings[row]))
        return out

    rng = random.Random(0)
    supported, unsupported = [], []
    for i, (_, pos) in enumerate(pairs):
        supported.append(best_support(vectors[i], candidates(pos))[0])
        other = rng.choice([p for _, p in pairs if p != pos])
        unsupported.append(best_support(vectors[i], candidates(other))[0])
    sup, uns = np.array(supported), np.array(unsupported)
    print(f"{len(pairs)} reference answers of the {args.split} split")
    print("threshold  supported accepted  unsupported accepted")
    for t in np.arange(0.30, 0.80, 0.05):
        print(f"  {t:.2f}      {np.mean(sup >= t):.3f}              {np.mean(uns >= t):.3f}")
    ok = [t for t in np.arange(0.20, 0.95, 0.01) if np.mean(uns >= t) <= args.max_false]
    best = min(ok) if ok else 0.95
    print(f"chosen: {best:.2f} (unsupported accepted {np.mean(uns >= best):.3f}, "
          f"supported accepted {np.mean(sup >= best):.3f})")


if __name__ == "__main__":
    main()
