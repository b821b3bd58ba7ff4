"""How far each stage of gcm-qa is from the targets: a ceiling analysis.

Runs the gold questions through ``Engine.ask`` twice: as shipped, and with an oracle sentence
scorer that puts a sentence holding an evidence quote first whenever the retrieved passages have
one (everything else, composition, list reading, abstention checks, is the shipped code). The
oracle run is the ceiling of the answer stage with the shipped retrieval: what a perfect reader
would add. For the retrieval misses it reports where BM25 alone, dense alone and the best single
sentence (dense) rank the evidence, which says whether any signal at hand could have found it.

    .venv/bin/python eval/tools/ceiling.py --split dev

Run it on test only to report, never to tune.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gcm_qa.engine import Engine
from gcm_qa.evaluation import harness
from gcm_qa.evaluation import metrics as m
from gcm_qa.evaluation.gold import GoldQuestion, load_gold, norm
from gcm_qa.intent import Intent
from gcm_qa.retrieval import Retriever
from gcm_qa.scoring import Scored, SentenceScorer, WeightedScorer
from gcm_qa.sentences import Sentence
from gcm_qa.settings import Settings
from gcm_qa.types import Passage

ROOT = Path(__file__).resolve().parents[2]


class Oracle:
    """A sentence scorer that ranks as ``shipped`` does, except that the evidence sentence of the
    current question leads whenever the passages hold one."""

    def __init__(self, shipped: SentenceScorer) -> None:
        self.shipped = shipped
        self.evidence: Sequence[str] = ()
        self.found = False  # the passages held an evidence sentence for the current question

    def score(
        self,
        question: str,
        intent: Intent,
        question_vector: np.ndarray,
        sentences: Sequence[Sentence],
        sentence_vectors: np.ndarray,
        passages: Sequence[Passage],
    ) -> list[Scored]:
        ranked = self.shipped.score(question, intent, question_vector, sentences, sentence_vectors, passages)
        hits = [r for r in ranked if any(m.quotes_overlap(r.sentence.text, e) for e in self.evidence)]
        self.found = self.found or bool(hits)
        if not hits or not ranked:
            return ranked
        # a perfect reader also knows the sentence answers: it passes the support check as the
        # best-matching sentence would
        top = ranked[0]
        lead = [Scored(h.sentence, top.score + 0.01 * (len(hits) - i), max(h.cosine, top.cosine),
                       max(h.overlap, top.overlap)) for i, h in enumerate(hits)]
        return lead + [r for r in ranked if r not in hits]


def run(engine: Engine, questions: Sequence[GoldQuestion], oracle: Oracle | None = None) -> list[dict[str, Any]]:
    """Each question scored as ``gcm-qa eval`` scores it; with an oracle, each row also says
    whether the passages held an evidence sentence."""
    rows = []
    for q in questions:
        if oracle is not None:
            oracle.evidence, oracle.found = q.evidence, False
        row = harness.score_answer(q, engine.ask(q.question, top_k=harness.K))
        row["evidence_sentence_in_passages"] = oracle is not None and oracle.found
        rows.append(row)
    return rows


def best_rank(scores: np.ndarray, gold: np.ndarray) -> int:
    """1-based rank of the first chunk marked in ``gold`` when ranked by ``scores`` alone."""
    order = np.argsort(-scores, kind="stable")
    return int(np.flatnonzero(gold[order])[0]) + 1


def retrieval_misses(
    engine: Engine, questions: Sequence[GoldQuestion], rows: Sequence[dict[str, Any]]
) -> tuple[list[str], int]:
    """For each question whose evidence is not in the top 5: where each signal alone ranks it. Also
    how many of them some signal alone puts in the top 5 (what a perfect per-question fusion of
    these signals could recover)."""
    ix = engine.index
    retriever = Retriever(ix, engine.embedder, engine.settings.retrieval)
    texts = [norm(c.text) for c in ix.chunks]
    lines: list[str] = []
    recoverable = 0
    for q, row in zip(questions, rows, strict=True):
        rank = row["rank"]
        if rank is not None and rank <= 5:
            continue
        gold = np.array([any(norm(e) in t for e in q.evidence) for t in texts])
        if not gold.any():
            lines.append(f"| {q.id} | {q.type} | {rank or '>10'} | no chunk holds a whole evidence quote | | |")
            continue
        sq = engine.search_query(q.question)
        v = engine.embedder.encode_queries([sq.dense])[0]
        best_sentence, _ = retriever.best_sentence_scores(sq, v)
        assert best_sentence is not None
        alone = [best_rank(ix.keyword.scores(sq.keyword), gold), best_rank(ix.embeddings @ v, gold),
                 best_rank(best_sentence, gold)]
        recoverable += min(alone) <= 5
        lines.append(f"| {q.id} | {q.type} | {rank or '>10'} | {' | '.join(map(str, alone))} |")
    return lines, recoverable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    ap.add_argument("--gold", type=Path, default=ROOT / "eval/gold.jsonl")
    args = ap.parse_args()
    questions = [q for q in load_gold(args.gold, args.split) if q.answerable]
    data = Settings().model_dump()
    data["paths"].update(corpus_dir=ROOT / "corpus", index_dir=ROOT / "index")
    settings = Settings.model_validate(data)
    engine = Engine(settings)
    engine.ensure_index()
    shipped = run(engine, questions)
    oracle = Oracle(WeightedScorer(engine.settings.answer.scoring))
    ceiling = run(Engine(engine.settings, engine.embedder, scorer=oracle), questions, oracle)
    keys = ["key_fact_recall", "answer_precision", "citation_precision", "median_answer_chars",
            "false_abstention_rate"]
    before, after = harness.summarise_answers(shipped)["overall"], harness.summarise_answers(ceiling)["overall"]
    print(f"{args.split}: {len(questions)} answerable questions\n")
    print("| metric | shipped | oracle sentence scorer |\n|---|---|---|")
    for key in keys:
        print(f"| {key} | {before[key]:.3f} | {after[key]:.3f} |")
    reachable = sum(r["evidence_sentence_in_passages"] for r in ceiling) / len(questions)
    print(f"| evidence sentence in the passages | | {reachable:.3f} |")
    print("\nRetrieval misses (evidence not in the top 5): rank of the first evidence chunk\n")
    print("| id | type | gcm-qa | BM25 alone | dense alone | best sentence, dense |\n|---|---|---|---|---|---|")
    lines, recoverable = retrieval_misses(engine, questions, shipped)
    print("\n".join(lines))
    hits = len(questions) - len(lines)
    print(f"\nhit@5 {hits / len(questions):.3f}; if each question took its best single signal "
          f"{(hits + recoverable) / len(questions):.3f} ({recoverable} of {len(lines)} misses recoverable)")

if __name__ == "__main__":
    main()
