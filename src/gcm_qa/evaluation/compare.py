"""What changed, question by question, between two evaluation runs.

A headline metric that holds still can hide one question fixed and another broken; tuning on the
dev split is judged by the questions it moves, so every run lists them against the previous one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FIELDS = ("rank", "key_fact_recall", "answer_precision", "citation_precision", "abstained")


def _score(row: dict[str, Any]) -> tuple[float, ...]:
    """Higher is better: retrieval (reciprocal rank), key facts, citations, the right abstention."""
    if not row["answerable"]:  # only refusing counts: key facts and citations mean nothing here
        return 0.0, 0.0, 0.0, 0.0, float(row["abstained"])
    rank = row.get("rank")
    return (
        1 / rank if rank else 0.0,
        float(row.get("key_fact_recall") or 0.0),
        float(row.get("answer_precision") or 0.0),
        float(row.get("citation_precision") or 0.0),
        float(row["abstained"] != row["answerable"]),
    )


def changes(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The questions (by id, in both runs) whose rank, key-fact recall, citation precision or
    abstention changed, each marked better, worse or mixed."""
    old = {r["id"]: r for r in before}
    out = []
    for row in after:
        prev = old.get(row["id"])
        fields = FIELDS if row["answerable"] else ("abstained",)
        if prev is None or all(prev.get(f) == row.get(f) for f in fields):
            continue
        a, b = _score(prev), _score(row)
        verdict = "better" if all(y >= x for x, y in zip(a, b, strict=True)) and a != b else (
            "worse" if all(y <= x for x, y in zip(a, b, strict=True)) and a != b else "mixed")
        shown = FIELDS if row["answerable"] else ("abstained",)
        out.append({"id": row["id"], "type": row["type"], "verdict": verdict,
                    **{f: (prev.get(f), row.get(f)) if f in shown else (None, None) for f in FIELDS}})
    return out


def _pair(values: tuple[Any, Any]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    a, b = values
    return fmt(a) if a == b else f"{fmt(a)} → {fmt(b)}"


def markdown_changes(changed: Sequence[dict[str, Any]], against: str) -> str:
    if not changed:
        return f"No question changed since {against}."
    counts = {v: sum(c["verdict"] == v for c in changed) for v in ("better", "worse", "mixed")}
    lines = [f"{len(changed)} questions changed since {against}: {counts['better']} better, "
             f"{counts['worse']} worse, {counts['mixed']} mixed.", "",
             "| id | type | verdict | rank | key facts | answer precision | citation precision | abstained |",
             "|---" * 8 + "|"]
    for c in changed:
        lines.append(f"| {c['id']} | {c['type']} | {c['verdict']} | " + " | ".join(_pair(c[f]) for f in FIELDS) + " |")
    return "\n".join(lines)
