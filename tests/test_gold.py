"""The gold set itself: well-formed, balanced, and every evidence quote present in the corpus as the
loader cleans it (so a change to cleaning that breaks a quote is caught here, not in the metrics)."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pytest

from gcm_qa.cleaning import clean_pages
from gcm_qa.evaluation.gold import TYPES, load_gold, norm
from gcm_qa.structure import layout

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "eval" / "gold.jsonl"
REPORT = ROOT / "corpus" / "gcm-regional-review-lac-2022.txt"


SEALED = ROOT / "eval" / "sealed.jsonl"


@pytest.mark.parametrize("path", [GOLD, SEALED], ids=["gold", "sealed"])
def test_every_evidence_quote_occurs_in_the_cleaned_corpus(path: Path) -> None:
    cleaned = norm(layout(clean_pages([(None, REPORT.read_text(encoding="utf-8"))])).text)
    missing = [(q.id, e) for q in load_gold(path) for e in q.evidence if norm(e) not in cleaned]
    assert missing == []


def test_ids_are_unique_and_every_type_has_its_minimum() -> None:
    questions = load_gold(GOLD)
    ids = [q.id for q in questions]
    assert len(ids) == len(set(ids))
    assert len(questions) >= 120
    counts = collections.Counter(q.type for q in questions)
    assert {t: counts[t] >= 8 for t in TYPES} == dict.fromkeys(TYPES, True)


def test_splits_hold_every_type_and_unanswerables_have_no_evidence() -> None:
    questions = load_gold(GOLD)
    for split in ("dev", "test"):
        assert {q.type for q in questions if q.split == split} == set(TYPES)
    for q in questions:
        assert q.answerable == bool(q.evidence), q.id
        assert all(norm(k) in norm(" ".join(q.evidence)) for k in q.key_facts), q.id


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("path", [GOLD, SEALED], ids=["gold", "sealed"])
def test_stdlib_checker_passes_on_the_shipped_files(path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "eval/tools/check_gold.py"), "--gold", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {q.split for q in load_gold(path)} == ({"sealed"} if path == SEALED else {"dev", "test"})
