"""Tune the answerer's settings on the tuning set (never on the sealed set).

Every knob of the answerer is a field of ``answer`` in the settings tree (``answer.stop_ratio``,
``answer.scoring.cosine``…). This runs the gold questions through the shipped ``Engine.ask`` once
per combination of the values given, with the same retrieval each time (each question is embedded
once), and prints key-fact recall, answer precision, citation precision and both abstention rates,
with the questions each combination makes better or worse in key facts than the shipped settings.

    .venv/bin/python eval/tools/sweep_answer.py --set answer.scoring.cosine=0.3,0.5,0.7 \\
        --set answer.max_sentences=2,3
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gcm_qa.engine import Engine
from gcm_qa.evaluation import harness
from gcm_qa.evaluation.gold import GoldQuestion, load_gold
from gcm_qa.scoring import WeightedScorer
from gcm_qa.settings import AnswerSettings, Settings

ROOT = Path(__file__).resolve().parents[2]


class MemoEmbedder:
    """The engine's encoder, remembering each query's vector: every combination asks the same questions."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.identity = inner.name, inner.identity
        self.dimension, self.multilingual, self.embedded = inner.dimension, inner.multilingual, inner.embedded
        self.memo: dict[str, np.ndarray] = {}

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.memo]
        if missing:
            self.memo.update(zip(missing, self.inner.encode_queries(missing), strict=True))
        return np.stack([self.memo[t] for t in texts])

    def encode_documents(self, texts: Sequence[str], progress: bool = False, build: bool = False) -> np.ndarray:
        return self.inner.encode_documents(texts, progress, build)


def parse(values: Sequence[str]) -> dict[str, list[Any]]:
    """'answer.scoring.cosine=0.3,0.5' -> {'scoring.cosine': [0.3, 0.5]} (numbers and booleans typed)."""
    grid: dict[str, list[Any]] = {}
    for item in values:
        key, _, raw = item.partition("=")
        if not key.startswith("answer.") or not raw:
            raise SystemExit(f"--set {item}: expected answer.<field>=v1,v2,...")
        grid[key.removeprefix("answer.")] = [_value(v) for v in raw.split(",")]
    return grid


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return float(text)


def with_values(base: AnswerSettings, values: dict[str, Any]) -> AnswerSettings:
    data = base.model_dump()
    for key, value in values.items():
        group = data
        *parents, field = key.split(".")
        for p in parents:
            group = group[p]
        group[field] = value
    return AnswerSettings.model_validate(data)


def run(engine: Engine, answer: AnswerSettings, questions: Sequence[GoldQuestion]) -> list[dict[str, Any]]:
    engine.settings = engine.settings.model_copy(update={"answer": answer})
    engine.scorer = WeightedScorer(answer.scoring)
    return [harness.score_answer(q, engine.ask(q.question, top_k=harness.K)) for q in questions]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune", choices=["dev", "test", "tune", "all"])
    ap.add_argument("--gold", type=Path, default=ROOT / "eval/gold.jsonl")
    ap.add_argument("--set", action="append", default=[], metavar="answer.FIELD=V1,V2",
                    help="values to try for one answer setting (repeat for a grid)")
    args = ap.parse_args()
    grid = parse(args.set)
    questions = load_gold(args.gold, args.split)
    data = Settings().model_dump(exclude_unset=True)
    data["paths"] = {"corpus_dir": ROOT / "corpus", "index_dir": ROOT / "index", "vectors_dir": ROOT / "index/vectors"}
    engine = Engine(Settings.model_validate(data))
    engine = Engine(engine.settings, MemoEmbedder(engine.embedder))
    engine.ensure_index()
    shipped_settings = engine.settings.answer
    shipped = run(engine, shipped_settings, questions)
    names = list(grid)
    print(f"{args.split}: {len(questions)} questions ({sum(q.answerable for q in questions)} answerable)\n")
    print("| " + " | ".join([*names, "key facts", "answer precision", "citation precision", "false abstention",
                             "unanswerable refused", "key facts better / worse"]) + " |")
    print("|---" * (len(names) + 6) + "|")
    rows = [("shipped", shipped)]
    for combo in itertools.product(*(grid[n] for n in names)):
        answer = with_values(shipped_settings, dict(zip(names, combo, strict=True)))
        rows.append((combo, run(engine, answer, questions)))
    for combo, result in rows:
        s = harness.summarise_answers(result)["overall"]
        pairs = [(a["key_fact_recall"], b["key_fact_recall"]) for a, b in zip(shipped, result, strict=True)
                 if a["answerable"]]
        better, worse = sum(b > a for a, b in pairs), sum(b < a for a, b in pairs)
        label = ["shipped"] + [""] * (len(names) - 1) if combo == "shipped" else [str(v) for v in combo]
        print("| " + " | ".join([*label, f"{s['key_fact_recall']:.3f}", f"{s.get('answer_precision', 0):.3f}",
                                 f"{s['citation_precision']:.3f}", f"{s['false_abstention_rate']:.3f}",
                                 f"{s.get('abstention_rate_unanswerable', 0):.3f}", f"{better} / {worse}"]) + " |")


if __name__ == "__main__":
    main()
