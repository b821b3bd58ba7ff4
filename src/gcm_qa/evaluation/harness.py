"""``gcm-qa eval``: run the gold questions through the same path as ``ask`` and score them."""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gcm_qa.engine import Engine
from gcm_qa.evaluation import metrics as m
from gcm_qa.evaluation.baselines import Ranker, all_baselines
from gcm_qa.evaluation.compare import changes, markdown_changes
from gcm_qa.evaluation.gold import TYPES, GoldQuestion, load_gold
from gcm_qa.settings import Settings
from gcm_qa.types import Answer

K = 10


def score_ranking(q: GoldQuestion, texts: Sequence[str]) -> dict[str, Any]:
    return {
        "rank": m.first_hit_rank(texts[:K], q.evidence),
        "within_4000": m.hit_within_chars(texts, q.evidence),
        "all_evidence_top5": m.all_evidence_in(texts[:5], q.evidence),
    }


def score_answer(q: GoldQuestion, a: Answer) -> dict[str, Any]:
    """One question's row: its ranking and its answer scored against the gold record."""
    texts = [p.chunk.text for p in a.passages]
    row = {"id": q.id, "type": q.type, "answerable": q.answerable, **score_ranking(q, texts)}
    quotes = [c.quote for c in a.citations]
    row.update(
        answer=a.answer,
        abstained=a.abstained,
        key_fact_recall=m.key_fact_recall(a.answer, q.key_facts) if not a.abstained else 0.0,
        citation_precision=m.citation_precision(quotes, q.evidence) if q.answerable else None,
        answer_precision=(m.answer_precision(a.answer, q.key_facts, q.evidence)
                          if q.answerable and not a.abstained else None),
        answer_chars=len(a.answer),
        latency_ms=a.timings_ms["total"],
    )
    return row


def run_system(engine: Engine, questions: Sequence[GoldQuestion]) -> list[dict[str, Any]]:
    engine.ask("warm-up question about migration")  # latency is measured on a warm model
    return [score_answer(q, engine.ask(q.question, top_k=K)) for q in questions]


def run_ranker(rank: Ranker, questions: Sequence[GoldQuestion]) -> list[dict[str, Any]]:
    rows = []
    for q in questions:
        texts = rank(q.question, K)
        rows.append({"id": q.id, "type": q.type, "answerable": q.answerable, **score_ranking(q, texts)})
    return rows


def summarise_retrieval(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    out: dict[str, Any] = {"overall": m.retrieval_summary([r["rank"] for r in answerable],
                                                        [r["within_4000"] for r in answerable])}
    multi = [r for r in answerable if r["type"] == "multi-hop"]
    if multi:
        out["overall"]["multi_hop_all_evidence@5"] = m.mean([float(r["all_evidence_top5"]) for r in multi])
    by_type = {}
    for t in TYPES:
        sub = [r for r in answerable if r["type"] == t]
        if sub:
            by_type[t] = m.retrieval_summary([r["rank"] for r in sub], [r["within_4000"] for r in sub])
    out["by_type"] = by_type
    return out


def summarise_answers(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def block(sub: Sequence[dict[str, Any]]) -> dict[str, float]:
        answerable = [r for r in sub if r["answerable"]]
        unanswerable = [r for r in sub if not r["answerable"]]
        precisions = [r["citation_precision"] for r in answerable if r["citation_precision"] is not None]
        answered = [r["answer_precision"] for r in answerable if r.get("answer_precision") is not None]
        lengths = [r["answer_chars"] for r in answerable if not r["abstained"]]
        out = {
            "n": len(sub),
            "key_fact_recall": m.mean([r["key_fact_recall"] for r in answerable]) if answerable else None,
            "citation_precision": m.mean(precisions) if precisions else None,
            "answer_precision": m.mean(answered) if answered else None,
            "median_answer_chars": m.median_or_zero(lengths),
            "false_abstention_rate": m.mean([float(r["abstained"]) for r in answerable]) if answerable else None,
            "abstention_rate_unanswerable": (
                m.mean([float(r["abstained"]) for r in unanswerable]) if unanswerable else None
            ),
            "latency_p50_ms": m.percentile([r["latency_ms"] for r in sub], 50),
            "latency_p95_ms": m.percentile([r["latency_ms"] for r in sub], 95),
        }
        return {k: v for k, v in out.items() if v is not None}

    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_type[r["type"]].append(r)
    return {"overall": block(rows), "by_type": {t: block(by_type[t]) for t in TYPES if by_type[t]}}


def evaluate(engine: Engine, questions: Sequence[GoldQuestion], baselines: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    engine.ensure_index()
    rows = run_system(engine, questions)
    result: dict[str, Any] = {
        "n_questions": len(questions),
        "n_answerable": sum(q.answerable for q in questions),
        "settings": json.loads(engine.settings.model_dump_json()),
        "retrieval": {"gcm-qa": summarise_retrieval(rows)},
        "answers": summarise_answers(rows),
        "questions": rows,
    }
    if baselines:
        ours = [r["rank"] for r in rows if r["answerable"]]
        result["versus_baselines"] = {}
        for name, rank in all_baselines(engine).items():
            baseline_rows = run_ranker(rank, questions)
            result["retrieval"][name] = summarise_retrieval(baseline_rows)
            theirs = [r["rank"] for r in baseline_rows if r["answerable"]]
            result["versus_baselines"][name] = {
                metric: dict(zip(("difference", "ci95_low", "ci95_high"),
                                 m.paired_bootstrap(m.per_question(ours, metric), m.per_question(theirs, metric)),
                                 strict=True))
                for metric in ("hit@5", "mrr@10")
            }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


# ---- thresholds -------------------------------------------------------------------------------


def metric_value(result: dict[str, Any], name: str) -> float:
    """'retrieval.hit@5' → gcm-qa's overall value; 'answers.key_fact_recall' likewise."""
    group, key = name.split(".", 1)
    if group == "retrieval":
        return float(result["retrieval"]["gcm-qa"]["overall"][key])
    return float(result["answers"]["overall"][key])


def check_thresholds(result: dict[str, Any], path: Path) -> list[str]:
    floors = tomllib.loads(path.read_text(encoding="utf-8"))
    failures = []
    for name, floor in floors.get("min", {}).items():
        value = metric_value(result, name)
        if value < floor:
            failures.append(f"{name} = {value:.3f} is below the floor {floor}")
    for name, ceiling in floors.get("max", {}).items():
        value = metric_value(result, name)
        if value > ceiling:
            failures.append(f"{name} = {value:.3f} is above the ceiling {ceiling}")
    # per baseline: gcm-qa at least `margin` above it; clearly above it (the 95% interval of the paired
    # difference stays above zero); or never clearly below it (the interval reaches above zero). A
    # baseline that shares gcm-qa's encoder (dense, LangChain) can be as good on retrieval alone.
    ran = result.get("versus_baselines", {})  # none with --no-baselines
    for b, margins in floors.get("above_baseline", {}).items():
        if b not in ran:
            continue
        for name, margin in margins.items():
            ours, key = metric_value(result, name), name.split(".", 1)[1]
            theirs = float(result["retrieval"][b]["overall"][key])
            if ours - theirs < margin:
                failures.append(f"{name} = {ours:.3f} is not {margin} above the {b} baseline ({theirs:.3f})")
    for gate, end, wrong in (("clearly_above_baseline", "ci95_low", "is not clear"),
                             ("not_clearly_below_baseline", "ci95_high", "is clearly negative")):
        for b, names in floors.get(gate, {}).items():
            for name in names if b in ran else ():
                bound = float(ran[b][name.split(".", 1)[1]][end])
                if bound <= 0:
                    failures.append(f"{name}: the gain over the {b} baseline {wrong} (95% interval "
                                    f"{'from' if end == 'ci95_low' else 'up to'} {bound:+.3f})")
    return failures


# ---- reports ----------------------------------------------------------------------------------

RET_COLS = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "hit@4000chars"]
ANS_COLS = ["key_fact_recall", "answer_precision", "citation_precision", "median_answer_chars",
            "false_abstention_rate", "abstention_rate_unanswerable", "latency_p50_ms", "latency_p95_ms"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.0f}" if v >= 10 else f"{v:.3f}"
    return str(v)


def markdown_tables(result: dict[str, Any]) -> str:
    lines = [f"Questions: {result['n_questions']} ({result['n_answerable']} answerable)", "",
             "### Retrieval (answerable questions)", "",
             "| system | " + " | ".join(RET_COLS) + " |", "|---" * (len(RET_COLS) + 1) + "|"]
    for name, r in result["retrieval"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r["overall"].get(c, 0.0)) for c in RET_COLS) + " |")
    mh = result["retrieval"]["gcm-qa"]["overall"].get("multi_hop_all_evidence@5")
    if mh is not None:
        lines += ["", f"Multi-hop questions with all evidence in the top 5 (gcm-qa): {mh:.3f}"]
    if result.get("versus_baselines"):
        lines += ["", "gcm-qa minus each baseline, same questions (95% paired-bootstrap interval):", "",
                  "| baseline | hit@5 | mrr@10 |", "|---|---|---|"]
        for name, diffs in result["versus_baselines"].items():
            cells = [f"{d['difference']:+.3f} [{d['ci95_low']:+.3f}, {d['ci95_high']:+.3f}]" for d in diffs.values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "### Retrieval by question type (hit@5 / MRR@10)", "",
              "| type | " + " | ".join(result["retrieval"]) + " |", "|---" * (len(result["retrieval"]) + 1) + "|"]
    for t in TYPES:
        cells = []
        for r in result["retrieval"].values():
            s = r["by_type"].get(t)
            cells.append(f"{s['hit@5']:.2f} / {s['mrr@10']:.2f}" if s else "–")
        if any(c != "–" for c in cells):
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "### Answers (gcm-qa)", "", "| scope | " + " | ".join(ANS_COLS) + " |",
              "|---" * (len(ANS_COLS) + 1) + "|"]
    rows = [("overall", result["answers"]["overall"]), *result["answers"]["by_type"].items()]
    for name, a in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(a[c]) if c in a else "–" for c in ANS_COLS) + " |")
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    ks = [1, 3, 5, 10]
    for name, r in result["retrieval"].items():
        left.plot(ks, [r["overall"][f"hit@{k}"] for k in ks], marker="o", label=name,
                  linewidth=2.5 if name == "gcm-qa" else 1.2)
    left.set(xlabel="k", ylabel="hit@k (answerable questions)", title="Retrieval: hit@k", ylim=(0, 1.02),
             xticks=ks)
    left.grid(alpha=0.3)
    left.legend()
    types = [t for t in TYPES if t in result["retrieval"]["gcm-qa"]["by_type"]]
    systems = list(result["retrieval"])
    width = 0.8 / len(systems)
    for i, name in enumerate(systems):
        values = [result["retrieval"][name]["by_type"].get(t, {}).get("hit@5", 0.0) for t in types]
        right.bar([x + i * width for x in range(len(types))], values, width, label=name)
    right.set_xticks([x + 0.4 - width / 2 for x in range(len(types))], types, rotation=30, ha="right")
    right.set(ylabel="hit@5", title="hit@5 by question type", ylim=(0, 1.05))
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(result: dict[str, Any], out: Path, split: str, changed: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    section = f"\n### Changes by question\n\n{changed}\n" if changed else ""
    (out / "report.md").write_text(
        f"# gcm-qa evaluation ({split} split)\n\nGenerated by `gcm-qa eval --split {split}` in "
        f"{result['seconds']} s.\n\n![hit@k and per-type hit@5](chart.png)\n\n{markdown_tables(result)}\n{section}",
        encoding="utf-8",
    )
    chart(result, out / "chart.png")


def previous_run(path: Path | None, split: str) -> dict[str, Any] | None:
    """An earlier run to compare with: the given file, which must be readable, or else the last
    run written to the output folder, when it scored the same split."""
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if data.get("split") == split and "questions" in data else None


def run_cli(settings: Settings, args: argparse.Namespace) -> int:
    questions = load_gold(args.gold, args.split)
    if not questions:
        print(f"gcm-qa: error: no questions in split '{args.split}' of {args.gold}", file=sys.stderr)
        return 1
    baseline_file = args.compare or args.out / "latest.json"
    before = previous_run(baseline_file, args.split)
    if args.compare is not None and before is None:
        print(f"gcm-qa: error: {args.compare} is not an evaluation of the {args.split} split", file=sys.stderr)
        return 1
    engine = Engine(settings)
    for notice in engine.notices:
        print(f"gcm-qa: {notice}", file=sys.stderr)
    result = evaluate(engine, questions, baselines=not args.no_baselines)
    result["split"] = args.split
    changed = markdown_changes(changes(before["questions"], result["questions"]), str(baseline_file)) if before else ""
    write_reports(result, args.out, args.split, changed)
    print(markdown_tables(result))
    if changed:
        print(f"\n{changed}")
    print(f"\nWrote {args.out / 'latest.json'}, {args.out / 'report.md'}, {args.out / 'chart.png'}")
    if args.thresholds and args.thresholds.is_file():
        failures = check_thresholds(result, args.thresholds)
        if failures:
            for f in failures:
                print(f"gcm-qa: eval below threshold: {f}", file=sys.stderr)
            return 1
        print(f"All thresholds in {args.thresholds} met.")
    return 0
