#!/usr/bin/env python3
"""Validate the gcm-qa gold evaluation set (stdlib only).

Usage:
    python eval/tools/check_gold.py [--gold eval/gold.jsonl] [--seed PATH]

Checks
  * schema: exactly the fields id, question, answer, key_facts, evidence,
    section, type, split; allowed type / split values; unique ids and questions
  * evidence quotes (rules 1-4 of eval/README.md):
      1. each quote is 40-220 characters and, after collapsing every run of
         whitespace to one space on both sides, is a substring of ONE line
         of the seed text (tabs in the line count as whitespace)
      2. no footnote superscripts, no markdown markup (**, *, [, ](#), <p>,
         </p>), no leading bullet glyph, no tab character
      3. the matching line is not in the table of contents (lines 1-85),
         not a running header and not in the Bibliography
      4. every key fact (1-5 words) occurs, case-insensitively, in at least
         one of the question's evidence quotes
  * answerable questions: non-empty answer, 1-4 key facts, 1-3 quotes, and
    every key fact also appears in the gold answer (so the gold answer
    itself passes a key-fact scorer)
  * unanswerable questions: answer "", key_facts [] and evidence []
  * multi-hop questions: >= 2 quotes and a section of the form "A | B"
  * per-type minimum (>= 8) and the deterministic stratified split
    (within each type, ids sorted, alternately dev/test starting with dev)

Exit status 0 when everything passes, 1 otherwise. A summary with counts
per type and per split is always printed.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_GOLD = HERE.parent / "gold.jsonl"
DEFAULT_SEED = Path(__file__).resolve().parents[2] / "corpus" / "gcm-regional-review-lac-2022.txt"

FIELDS = {"id", "question", "answer", "key_facts", "evidence", "section", "type", "split"}
TYPES = ["factoid", "numeric", "list", "paraphrase", "multi-hop", "table", "unanswerable", "spanish"]
ID_PREFIX = {
    "factoid": "fac", "numeric": "num", "list": "lst", "paraphrase": "par",
    "multi-hop": "mhp", "table": "tab", "unanswerable": "una", "spanish": "spa",
}
SPLITS = {"dev", "test", "sealed"}  # sealed: eval/sealed.jsonl, the held-out test set
MIN_PER_TYPE = 8
QUOTE_MIN, QUOTE_MAX = 40, 220

SUPERSCRIPTS = set("¹²³⁴⁵⁶⁷⁸⁹⁰")
MARKUP = ["**", "*", "[", "](#)", "<p>", "</p>"]
BULLETS = ("-", "•", "▶", "◇", "o ", "·", "–", "—")
TOC_LAST_LINE = 85
BIBLIOGRAPHY_HEADING = "Bibliography"
ANNEX1_PREFIX = "Annex 1. Concept note"
RUNNING_HEADERS = {
    "1. Migration in Latin America and the Caribbean",
    "2. Main findings, by thematic areas",
    "3. Integrating the vision and guiding principles in the implementation of the GCM from the perspective of States",
    "4. Conclusions and recommendations for implementation and for a future regional review",
    "Contents",
}

# Section labels used in the gold file (body headings as numbered in the report).
SECTIONS = {
    "Foreword", "Executive Summary", "Introduction",
    "1. Migration in Latin America and the Caribbean",
    "2. Main findings, by thematic areas",
    "2.1 Thematic area 1", "2.1.1 Progress and potentialities", "2.1.2 Situations to consider",
    "2.1.3 Challenges", "2.1.4 Highlights",
    "2.2 Thematic area 2", "2.2.1 Progress and potentialities", "2.2.2 Situations to consider",
    "2.2.3 Challenges", "2.2.4 Highlights",
    "2.3 Thematic area 3", "2.3.1 Progress", "2.3.2 Situations to consider",
    "2.3.3 Challenges", "2.3.4 Highlights",
    "2.4 Thematic area 4", "2.4.1 Progress", "2.4.2 Situations to consider",
    "2.4.3 Challenges", "2.4.4 Highlights",
    "2.5 Thematic area 5", "2.5.1 Progress", "2.5.2 Situations to consider",
    "2.5.3 Challenges", "2.5.4 Highlights",
    "3. Integrating the vision and guiding principles in the implementation of the GCM from the perspective of States",
    "3.1 People-centred", "3.2 International cooperation", "3.3 National sovereignty",
    "3.4 Rule of law and due process", "3.5 Sustainable development", "3.6 Human rights",
    "3.7 Gender-responsive", "3.8 Child-sensitive", "3.9 Whole-of-government approach",
    "3.10 Whole-of-society approach",
    "4.1 Conclusions", "4.2 Recommendations",
    "Annex 1", "Annex 2", "Annex 3",
} | {f"Textbox {i}" for i in range(1, 11)}

WS = re.compile(r"\s+")


def collapse(s: str) -> str:
    return WS.sub(" ", s).strip()


def load_seed(path: Path):
    """Return list of (lineno, collapsed_line, allowed) for every line."""
    raw = path.read_text(encoding="utf-8").split("\n")
    bib_start = annex1 = None
    for i, line in enumerate(raw, 1):
        s = line.strip()
        if i > TOC_LAST_LINE and s == BIBLIOGRAPHY_HEADING and bib_start is None:
            bib_start = i
        if i > TOC_LAST_LINE and s.startswith(ANNEX1_PREFIX) and annex1 is None:
            annex1 = i
    out = []
    for i, line in enumerate(raw, 1):
        s = line.strip()
        allowed = True
        if i <= TOC_LAST_LINE or s in RUNNING_HEADERS or (bib_start and annex1 and bib_start <= i < annex1):
            allowed = False
        out.append((i, collapse(line), allowed))
    return out


def find_lines(quote: str, seed_lines):
    q = collapse(quote)
    return [(n, ok) for n, text, ok in seed_lines if q and q in text]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    ap.add_argument("--seed", type=Path, default=DEFAULT_SEED)
    ap.add_argument("--verbose", action="store_true", help="also print section coverage")
    args = ap.parse_args(argv)

    seed_lines = load_seed(args.seed)
    errors: list[str] = []
    items = []
    for ln, line in enumerate(args.gold.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"line {ln}: empty line")
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as e:
            errors.append(f"line {ln}: invalid JSON ({e})")

    ids = Counter(it.get("id") for it in items)
    for k, v in ids.items():
        if v > 1:
            errors.append(f"duplicate id {k!r} ({v}x)")
    qs = Counter(collapse(str(it.get("question", ""))).lower() for it in items)
    for k, v in qs.items():
        if v > 1:
            errors.append(f"duplicate question {k!r}")

    for it in items:
        iid = it.get("id", "?")
        err = lambda m, iid=iid: errors.append(f"{iid}: {m}")  # noqa: E731
        keys = set(it)
        if keys != FIELDS:
            err(f"fields mismatch: missing={sorted(FIELDS - keys)} extra={sorted(keys - FIELDS)}")
            continue
        t, split = it["type"], it["split"]
        if t not in TYPES:
            err(f"bad type {t!r}")
            continue
        if not str(iid).startswith(ID_PREFIX[t] + "-"):
            err(f"id prefix does not match type {t}")
        if split not in SPLITS:
            err(f"bad split {split!r}")
        if not isinstance(it["question"], str) or len(it["question"].strip()) < 10:
            err("question missing/too short")
        if not isinstance(it["key_facts"], list) or not isinstance(it["evidence"], list):
            err("key_facts and evidence must be lists")
            continue
        for sec in str(it["section"]).split(" | "):
            if sec not in SECTIONS:
                err(f"unknown section label {sec!r}")

        if t == "unanswerable":
            if it["answer"] != "" or it["key_facts"] != [] or it["evidence"] != []:
                err("unanswerable must have answer '', key_facts [] and evidence []")
            continue

        ans = it["answer"]
        if not isinstance(ans, str) or not ans.strip():
            err("empty answer")
        if not 1 <= len(it["key_facts"]) <= 4:
            err(f"needs 1-4 key_facts, has {len(it['key_facts'])}")
        if not 1 <= len(it["evidence"]) <= 3:
            err(f"needs 1-3 evidence quotes, has {len(it['evidence'])}")
        if t == "multi-hop":
            if len(it["evidence"]) < 2:
                err("multi-hop needs >= 2 evidence quotes")
            if " | " not in it["section"]:
                err("multi-hop section must join two sections with ' | '")

        for q in it["evidence"]:
            if not isinstance(q, str):
                err("evidence quote not a string")
                continue
            short = q[:60]
            if not QUOTE_MIN <= len(q) <= QUOTE_MAX:
                err(f"quote length {len(q)} outside {QUOTE_MIN}-{QUOTE_MAX}: {short!r}")
            if "\t" in q or "\n" in q:
                err(f"quote contains tab/newline: {short!r}")
            if any(c in SUPERSCRIPTS for c in q):
                err(f"quote contains footnote superscript: {short!r}")
            for m in MARKUP:
                if m in q:
                    err(f"quote contains markup {m!r}: {short!r}")
            if q.lstrip().startswith(BULLETS):
                err(f"quote starts with a bullet glyph: {short!r}")
            hits = find_lines(q, seed_lines)
            if not hits:
                err(f"quote not found in any single seed line: {short!r}")
            elif not any(ok for _, ok in hits):
                err(f"quote only found in TOC/running header/Bibliography (lines {[n for n, _ in hits]}): {short!r}")

        ev_norm = " || ".join(collapse(q).lower() for q in it["evidence"] if isinstance(q, str))
        for kf in it["key_facts"]:
            if not isinstance(kf, str) or not kf.strip():
                err("empty key fact")
                continue
            nw = len(kf.split())
            if nw > 5:
                err(f"key fact longer than 5 words: {kf!r}")
            if collapse(kf).lower() not in ev_norm:
                err(f"key fact not in evidence: {kf!r}")
            if isinstance(ans, str) and collapse(kf).lower() not in collapse(ans).lower():
                err(f"key fact not in gold answer: {kf!r}")

    # type minimums and deterministic split
    by_type = defaultdict(list)
    for it in items:
        if it.get("type") in TYPES:
            by_type[it["type"]].append(it)
    for t in TYPES:
        n = len(by_type[t])
        if n < MIN_PER_TYPE:
            errors.append(f"type {t}: only {n} questions (< {MIN_PER_TYPE})")
        for i, it in enumerate(sorted(by_type[t], key=lambda x: x["id"])):
            if it.get("split") == "sealed":
                continue  # the sealed set is one split of its own; the alternation is gold.jsonl's
            want = "dev" if i % 2 == 0 else "test"
            if it.get("split") != want:
                errors.append(f"{it['id']}: split {it.get('split')!r}, stratified rule expects {want!r}")

    # summary
    print(f"gold: {args.gold}  ({len(items)} questions)")
    print(f"seed: {args.seed}")
    print(f"{'type':<14}{'dev':>5}{'test':>6}{'total':>7}")
    tot = Counter()
    for t in TYPES:
        c = Counter(it.get("split") for it in by_type[t])
        tot.update(c)
        print(f"{t:<14}{c['dev']:>5}{c['test']:>6}{len(by_type[t]):>7}")
    print(f"{'TOTAL':<14}{tot['dev']:>5}{tot['test']:>6}{len(items):>7}")
    if args.verbose:
        cov = Counter()
        for it in items:
            for sec in str(it.get("section", "")).split(" | "):
                if sec:
                    cov[sec] += 1
        print("\nsection coverage:")
        for sec, n in sorted(cov.items()):
            print(f"  {n:>3}  {sec}")
    if errors:
        print(f"\nFAIL: {len(errors)} problem(s)")
        for e in errors:
            print("  - " + e)
        return 1
    print("\nOK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
