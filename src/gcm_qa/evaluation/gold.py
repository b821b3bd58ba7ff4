"""Loading the gold questions and matching evidence quotes against retrieved text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from gcm_qa.cleaning import normalize_inline
from gcm_qa.keyword import fold

TYPES = ("factoid", "numeric", "list", "paraphrase", "multi-hop", "table", "unanswerable", "spanish")
SPLITS = ("dev", "test", "sealed")
# The tuning set: round 1's test split was used in tuning (it is spent), so it joined dev; what
# measures generality is the sealed set.
TUNING = ("dev", "test")  # sealed: eval/sealed.jsonl, written blind, run only to report


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answer: str
    key_facts: tuple[str, ...]
    evidence: tuple[str, ...]
    section: str
    type: str
    split: str

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


def load_gold(path: Path, split: str = "all") -> list[GoldQuestion]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                q = GoldQuestion(
                    id=d["id"], question=d["question"], answer=d["answer"],
                    key_facts=tuple(d["key_facts"]), evidence=tuple(d["evidence"]),
                    section=d["section"], type=d["type"], split=d["split"],
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{n}: not a gold record ({exc})") from exc
            if q.type not in TYPES or q.split not in SPLITS:
                raise ValueError(f"{path}:{n}: unknown type or split ({q.type}, {q.split})")
            rows.append(q)
    wanted = TUNING if split == "tune" else (split,)
    return [q for q in rows if split == "all" or q.split in wanted]


_PUNCT = re.compile(r"[^\w%]+")


def norm(text: str) -> str:
    """Tolerant form for matching: the loader's inline cleaning, accents and case folded,
    punctuation and whitespace runs collapsed to one space."""
    return " ".join(_PUNCT.sub(" ", fold(normalize_inline(text))).split())


def contains(passage: str, quote: str) -> bool:
    return norm(quote) in norm(passage)
