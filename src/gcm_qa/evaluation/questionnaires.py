"""The questionnaire evaluation: who said what, and who said nothing.

Its gold set (``eval/questionnaires.jsonl``, tuning; ``eval/questionnaires-sealed.jsonl``, held out)
is written over invented forms (``tests/fixtures/questionnaires/forms``), and holds three kinds of
question:

- ``fact``: one author's fact, asked by name, often across languages. Scored as single answers are:
  key-fact recall, citation precision, false abstention, and whether every citation is the named
  author's (the answer must not borrow another author's words).
- ``silent``: an author asked about something their documents do not address. Must abstain.
- ``compare``: a question across authors. Scored per row: the rows must be the authors in scope
  (``scope_accuracy``); each author must be answered or said to have nothing, as the gold says
  (``author_abstention_accuracy``: per-author abstention accuracy); each quoted cell must quote
  that author's evidence (``cell_citation_precision``: per-cell citation precision) and carry the
  key facts (``cell_key_fact_recall``).

Every rate comes with a 95% bootstrap interval over its questions or rows: with 30 questions, one
question moves a rate by 0.03.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcm_qa.engine import Engine
from gcm_qa.evaluation.metrics import key_fact_recall, mean, quotes_overlap
from gcm_qa.settings import Settings

TYPES = ("fact", "silent", "compare")


@dataclass(frozen=True)
class Expected:
    """What one author's answer (or row) must hold; ``None`` in a row means the author said nothing."""

    key_facts: tuple[str, ...]
    evidence: tuple[tuple[str, str], ...]  # (file, quote)


@dataclass(frozen=True)
class GoldItem:
    id: str
    split: str
    type: str
    question: str
    language: str
    author: str = ""
    expected: Expected | None = None
    rows: dict[str, Expected | None] = field(default_factory=dict)


def _expected(data: dict[str, Any]) -> Expected:
    return Expected(tuple(data.get("key_facts", ())),
                    tuple((e["file"], e["quote"]) for e in data.get("evidence", ())))


def load(path: Path, split: str) -> list[GoldItem]:
    """Items of ``split`` ("all" for every one); a malformed line is an error naming the line."""
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            if d["type"] not in TYPES:
                raise ValueError(f"unknown type {d['type']!r}")
            item = GoldItem(
                id=d["id"], split=d.get("split", ""), type=d["type"], question=d["question"],
                language=d.get("language", ""), author=d.get("author", ""),
                expected=_expected(d) if d["type"] == "fact" else None,
                rows={a: (None if v is None else _expected(v)) for a, v in d.get("rows", {}).items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a questionnaire gold item ({exc})") from exc
        if split == "all" or item.split == split:
            items.append(item)
    return items


def bootstrap_interval(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean, resampling the items."""
    if not values:
        return 0.0, 0.0
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def _quotes_evidence(quote: str, file: str, evidence: Sequence[tuple[str, str]]) -> bool:
    return any(f == file and quotes_overlap(quote, q) for f, q in evidence)


def score_fact(item: GoldItem, answer: Any, files: dict[str, str], authors: dict[str, str]) -> dict[str, Any]:
    """``files``/``authors``: doc_id -> file name / author, to check where citations come from."""
    assert item.expected is not None
    ev = item.expected.evidence
    cited = [(c.quote, files.get(c.doc_id, "")) for c in answer.citations]
    return {
        "id": item.id, "type": "fact", "question": item.question, "language": item.language,
        "abstained": answer.abstained,
        "key_fact_recall": 0.0 if answer.abstained else key_fact_recall(answer.answer, item.expected.key_facts),
        "citation_precision": (sum(_quotes_evidence(q, f, ev) for q, f in cited) / len(cited)) if cited else None,
        "own_author": all(authors.get(c.doc_id) == item.author for c in answer.citations),
        "answer": answer.answer,
    }


def score_silent(item: GoldItem, answer: Any) -> dict[str, Any]:
    return {"id": item.id, "type": "silent", "question": item.question, "language": item.language,
            "abstained": answer.abstained, "answer": answer.answer}


def score_compare(item: GoldItem, comparison: Any, files: dict[str, str]) -> dict[str, Any]:
    got = {r.author: r for r in comparison.rows}
    rows = []
    for author, expected in item.rows.items():
        row = got.get(author)
        found = bool(row and row.found)
        cell = row.cell if row else ""
        cite = row.citation if row else None
        entry: dict[str, Any] = {"author": author, "expected": expected is not None, "present": row is not None,
                                 "found": found, "cell": cell, "support": row.support if row else None}
        entry["abstention_correct"] = row is not None and found == (expected is not None)
        if found and cite is not None:
            entry["cites_evidence"] = expected is not None and _quotes_evidence(
                cite.quote, files.get(cite.doc_id, ""), expected.evidence)
        if expected is not None:
            entry["key_fact_recall"] = key_fact_recall(cell, expected.key_facts) if found else 0.0
        rows.append(entry)
    extra = sorted(a for a in got if a not in item.rows)
    return {"id": item.id, "type": "compare", "question": item.question, "language": item.language,
            "scope": comparison.scope, "scope_exact": not extra and all(r["present"] for r in rows),
            "extra_rows": extra, "rows": rows}


def _rate(values: Sequence[float]) -> dict[str, Any]:
    low, high = bootstrap_interval(values)
    return {"value": round(mean(values), 4) if values else None, "ci95": [round(low, 4), round(high, 4)],
            "n": len(values)}


def summarise(scored: Sequence[dict[str, Any]]) -> dict[str, Any]:
    facts = [s for s in scored if s["type"] == "fact"]
    silent = [s for s in scored if s["type"] == "silent"]
    compares = [s for s in scored if s["type"] == "compare"]
    rows = [r for s in compares for r in s["rows"]]
    cells = [r for r in rows if "cites_evidence" in r]
    answered_facts = [s for s in facts if s["citation_precision"] is not None]
    return {
        "fact.key_fact_recall": _rate([s["key_fact_recall"] for s in facts]),
        "fact.citation_precision": _rate([s["citation_precision"] for s in answered_facts]),
        "fact.false_abstention_rate": _rate([float(s["abstained"]) for s in facts]),
        "fact.own_author_citations": _rate([float(s["own_author"]) for s in answered_facts]),
        "silent.abstention_rate": _rate([float(s["abstained"]) for s in silent]),
        "compare.scope_accuracy": _rate([float(s["scope_exact"]) for s in compares]),
        "compare.author_abstention_accuracy": _rate([float(r["abstention_correct"]) for r in rows]),
        "compare.cell_citation_precision": _rate([float(r["cites_evidence"]) for r in cells]),
        "compare.cell_key_fact_recall": _rate([r["key_fact_recall"] for r in rows if r["expected"]]),
        "compare.nothing_found_when_silent": _rate([float(r["present"] and not r["found"])
                                                    for r in rows if not r["expected"]]),
        "compare.answered_when_expected": _rate([float(r["found"]) for r in rows if r["expected"]]),
    }


def evaluate(engine: Engine, items: Sequence[GoldItem]) -> dict[str, Any]:
    engine.ensure_index()
    docs = engine.documents()
    files = {str(d["doc_id"]): str(d["file"]) for d in docs}
    authors = {str(d["doc_id"]): str(d["author"]) for d in docs}
    scored: list[dict[str, Any]] = []
    started = time.perf_counter()
    for item in items:
        t = time.perf_counter()
        if item.type == "compare":
            s = score_compare(item, engine.compare(item.question), files)
        elif item.type == "fact":
            s = score_fact(item, engine.ask(item.question), files, authors)
        else:
            s = score_silent(item, engine.ask(item.question))
        s["ms"] = round((time.perf_counter() - t) * 1000, 1)
        scored.append(s)
    return {"overall": summarise(scored), "questions": scored,
            "seconds": round(time.perf_counter() - started, 1),
            "forms": {str(d["file"]): d.get("answers") for d in docs},
            "settings": json.loads(engine.settings.model_dump_json())}


def check(result: dict[str, Any], path: Path) -> list[str]:
    limits = tomllib.loads(path.read_text(encoding="utf-8"))
    failures = []
    for name, floor in limits.get("min", {}).items():
        value = result["overall"][name]["value"]
        if value is None or value < floor:
            failures.append(f"{name} = {value} is below the floor {floor}")
    for name, ceiling in limits.get("max", {}).items():
        value = result["overall"][name]["value"]
        if value is not None and value > ceiling:
            failures.append(f"{name} = {value} is above the ceiling {ceiling}")
    return failures


def markdown(result: dict[str, Any]) -> str:
    counts = ", ".join(f"{sum(q['type'] == t for q in result['questions'])} {t}" for t in TYPES)
    lines = [f"Questionnaire set, split {result['split']}: {len(result['questions'])} questions ({counts}), "
             f"{result['seconds']} s", "", "| metric | value | 95% interval | n |", "|---|---|---|---|"]
    for name, r in result["overall"].items():
        value = "–" if r["value"] is None else f"{r['value']:.3f}"
        lines.append(f"| {name} | {value} | [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | {r['n']} |")
    unread = [f for f, n in result["forms"].items() if n is None]
    lines += ["", f"Forms read: {sum(n is not None for n in result['forms'].values())} of {len(result['forms'])}"
              + (f" (no question/answer layout: {', '.join(unread)})" if unread else "")]
    return "\n".join(lines)


def run_cli(settings: Settings, args: argparse.Namespace) -> int:
    """``gcm-qa eval --questionnaires``: the index lives in the cache, never over the user's."""
    items = load(args.gold, args.split)
    if not items:
        print(f"gcm-qa: error: no questions in split '{args.split}' of {args.gold}", file=sys.stderr)
        return 1
    engine = Engine(settings)
    for notice in engine.notices:
        print(f"gcm-qa: {notice}", file=sys.stderr)
    result = evaluate(engine, items)
    result["split"] = args.split
    result["gold"] = str(args.gold)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    text = markdown(result)
    (args.out / "report.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\nWrote {args.out / 'latest.json'} and {args.out / 'report.md'}")
    if args.thresholds and args.thresholds.is_file():
        failures = check(result, args.thresholds)
        for f in failures:
            print(f"gcm-qa: eval below threshold: {f}", file=sys.stderr)
        if failures:
            return 1
        print(f"All thresholds in {args.thresholds} met.")
    return 0
