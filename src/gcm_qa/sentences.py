"""Sentence splitting with offsets, shared by the index (sentence-level retrieval signals) and the
answerer (which quotes sentences)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! ? or ; followed by space and a capital, digit, quote, bracket or bullet;
# a line break always ends one (list items and table rows are sentences of their own). A colon
# does not: "ratified by only three countries in the region: Argentina, Ecuador and Uruguay." is
# one statement.
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"“(¿¡A-ZÁÉÍÓÚÑ0-9-])|\n+")
# An enumeration marker split off its item ("- 18." | "Invest in skills...") is glued back.
_MARKER_ONLY = re.compile(r"^(?:- )?\(?(?:\d{1,2}|[a-z])[.)]$")


@dataclass(frozen=True)
class Sentence:
    passage: int  # index of the passage or chunk it belongs to
    start: int  # offset inside that passage's text
    end: int
    text: str


def split_sentences(text: str, passage: int = 0, min_chars: int = 15) -> list[Sentence]:
    """Sentences with offsets; fragments shorter than ``min_chars`` without a digit are dropped."""
    out: list[Sentence] = []
    pos = 0
    pending: int | None = None  # start of an enumeration marker waiting for its item
    for m in [*_SENTENCE_END.finditer(text), None]:
        end = m.start() if m else len(text)
        raw = text[pos:end]
        stripped = raw.strip()
        lead = len(raw) - len(raw.lstrip())
        if pending is not None and stripped:
            start = pending
            stripped = text[start : pos + lead + len(stripped)]
            pending = None
        else:
            start = pos + lead
        if _MARKER_ONLY.match(stripped):
            pending = start
        elif len(stripped) >= min_chars or (stripped and re.search(r"\d", stripped)):
            out.append(Sentence(passage, start, start + len(stripped), stripped))
        pos = m.end() if m else len(text)
    return out
