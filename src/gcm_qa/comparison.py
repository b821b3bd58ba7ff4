"""Questions across authors: "which countries reported X?", "what did A and B say about Y?".

A comparison is a matrix with one row per author, each answered from that author's documents only,
so an author who said nothing on the matter gets an explicit "nothing found" row instead of being
silently outranked by a more talkative one. This module holds the pure parts: who is in scope, what
the topic is once the comparison's frame is taken off, how a cell is cut, and the matrix itself
with its CSV and JSON forms. :meth:`gcm_qa.engine.Engine.compare` does the retrieval.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gcm_qa.keyword import fold
from gcm_qa.types import STAKEHOLDERS, Citation, DocMeta

NOTHING_FOUND = "Nothing found in this author's documents."

# Words that name a kind of author, in English and Spanish (accent-folded, lower case).
_STAKEHOLDER_WORDS: dict[str, tuple[str, ...]] = {
    "State": ("countries", "country", "states", "governments", "paises", "pais", "estados", "gobiernos"),
    "civil society": ("civil society", "civil-society", "ngos", "ngo", "sociedad civil", "ong", "ongs",
                      "non-governmental", "no gubernamentales"),
    "intergovernmental body": ("intergovernmental", "regional bodies", "regional organisations",
                               "regional organizations", "intergubernamentales", "organismos regionales"),
}

# The frame of a comparative question, taken off to leave its topic: "which countries reported",
# "what did A and B say about", "¿qué dijeron … sobre", "¿qué países informaron de".
_FRAMES = (
    r"^(?:which|what)\s+(?:\w+[\s-]){0,3}?(?:countries|states|governments|organi[sz]ations|authors|bodies|ngos)"
    r"\s+(?:have\s+|has\s+)?(?:\w+\s+){0,2}?(?:reported|report|mentioned|mention|said|say|described|describe|"
    r"referred to|adopted|have|had|established|implemented|offer|offered|provide|provided)\b\s*(?:on|about|an?y?)?\s*",
    r"^what\s+(?:did|do|does|have|has)\s+.+?\s+(?:say|said|report|reported|state|stated|mention|write)\s+"
    r"(?:about|on|regarding|concerning|as to)\s+",
    r"^how\s+(?:did|do|does)\s+.+?\s+(?:address|approach|handle|deal with|treat|describe)\s+",
    r"^compare\s+(?:what\s+)?(?:.+?\s+)?(?:said|say|reported|report)?\s*(?:about|on)\s+",
    r"^(?:qu[eé]|cu[aá]les)\s+(?:\w+\s+){0,2}?(?:pa[ií]ses|estados|gobiernos|organizaciones|organismos)\s+"
    r"(?:\w+\s+){0,2}?(?:informaron|informan|reportaron|reportan|mencionaron|mencionan|dijeron|dicen|"
    r"describieron|adoptaron|tienen|cuentan con|establecieron|implementaron|ofrecen)\s*(?:sobre|de|acerca de)?\s*",
    r"^qu[eé]\s+(?:dijo|dijeron|dice|dicen|inform[oó]|informaron|report[oó]|reportaron|mencion[oó]|"
    r"mencionaron|se[nñ]al[oó]|se[nñ]alaron)\s+.+?\s+(?:sobre|acerca de|respecto (?:a|de)|en cuanto a|de)\s+",
    r"^c[oó]mo\s+(?:abord[oó]|abordaron|abordan|trat[oó]|trataron|tratan)\s+.+?\s+(?:la|el|los|las)\s+",
    r"^(?:who|which authors?)\s+(?:has\s+|have\s+)?(?:reported|mentioned|said|wrote|described|referred to)"
    r"\s*(?:anything\s+)?(?:on|about|regarding)?\s*",
    r"^qui[eé]n(?:es)?\s+(?:informaron|inform[oó]|mencionaron|mencion[oó]|dijeron|dijo|describieron|"
    r"se refirieron|hablaron)\s*(?:algo\s+)?(?:sobre|de|acerca de|a)?\s*",
    r"^compar[ae]r?\s+(?:lo\s+que\s+)?(?:.+?\s+)?(?:dijeron|dicen|informaron)?\s*(?:sobre|acerca de)\s+",
)
_PREPOSITIONS = frozenset("of on for in and to de del por para sobre en y e contra con".split())
_FRAME = re.compile("|".join(f"(?:{f})" for f in _FRAMES), re.I)


@dataclass(frozen=True)
class Author:
    """An author as the index knows it: who, what kind, where, and which documents are theirs."""

    name: str
    stakeholder: str
    country: str | None
    languages: tuple[str, ...]
    doc_ids: tuple[str, ...]
    kinds: tuple[str, ...]


def authors_of(documents: Iterable[DocMeta]) -> list[Author]:
    """One :class:`Author` per author name (a State that sent two documents is one row)."""
    grouped: dict[str, list[DocMeta]] = {}
    for meta in documents:
        grouped.setdefault(meta.author, []).append(meta)
    out = []
    for name, metas in grouped.items():
        first = metas[0]
        out.append(Author(
            name=name,
            stakeholder=first.stakeholder,
            country=next((m.country for m in metas if m.country), None),
            languages=tuple(dict.fromkeys(m.language for m in metas)),
            doc_ids=tuple(m.doc_id for m in metas),
            kinds=tuple(dict.fromkeys(m.kind for m in metas)),
        ))
    return sorted(out, key=lambda a: (STAKEHOLDERS.index(a.stakeholder) if a.stakeholder in STAKEHOLDERS
                                      else len(STAKEHOLDERS), fold(a.name)))


def _names(author: Author) -> list[str]:
    """How a question may name an author: its name, its country, and its name without a leading
    "Republic of"-style form of government ("República de Valdoria" is "Valdoria")."""
    # a State is named by its country; an organisation is not named by where it is based
    names = [author.name] + ([author.country] if author.country and author.stakeholder == "State" else [])
    short = re.sub(r"^(?:(?:the\s+)?(?:republic|kingdom|commonwealth|state|federation|free state|plurinational state)"
                   r"|(?:la\s+)?(?:rep[uú]blica|estado(?:\s+(?:libre|plurinacional))?|reino|federaci[oó]n))"
                   r"\s+(?:of|de(?:l)?)\s+", "", author.name, flags=re.I)
    if short != author.name:
        names.append(short)
    # "Red Ciudadana por los Derechos de...", "Caribbean Forum on Human Mobility": people name an
    # organisation by the words before its first preposition, when there are at least two
    words = author.name.split()
    cut = next((i for i, w in enumerate(words) if i >= 2 and w.lower() in _PREPOSITIONS), None)
    if cut is not None:
        names.append(" ".join(words[:cut]))
    return [fold(n) for n in names if n and n.lower() != "unknown"]


def named_authors(question: str, authors: Sequence[Author]) -> list[Author]:
    """The authors a question names, in the order it names them."""
    text = f" {fold(question)} "
    found: list[tuple[int, Author]] = []
    for author in authors:
        positions = [m.start() for n in _names(author) for m in re.finditer(rf"(?<!\w){re.escape(n)}(?!\w)", text)]
        if positions:
            found.append((min(positions), author))
    return [a for _, a in sorted(found, key=lambda p: p[0])]


def pick_authors(names: Sequence[str], authors: Sequence[Author]) -> tuple[list[Author], list[str]]:
    """Authors chosen by the user (``--authors``): each name matches an author by name or country,
    whole or in part, without regard to case or accents. Returns the authors and the names that
    matched none (for the caller to report, not to drop silently)."""
    chosen: list[Author] = []
    unknown: list[str] = []
    for name in names:
        key = fold(name).strip()
        exact = [a for a in authors if key in _names(a)]
        partial = exact or [a for a in authors if any(key in n for n in _names(a))]
        if not partial:
            unknown.append(name)
        chosen.extend(a for a in partial if a not in chosen)
    return chosen, unknown


def stakeholder_named(question: str) -> str | None:
    """The kind of author a question asks about ("which countries…" is States), or None."""
    text = f" {fold(question)} "
    for stakeholder, words in _STAKEHOLDER_WORDS.items():
        if any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in words):
            return stakeholder
    return None


def _without(text: str, names: Sequence[str]) -> str:
    """``text`` without the (accent-folded, lower-case) ``names`` it contains, whatever their case
    and accents, and without a possessive "'s" after them."""
    words = text.split()
    folded = [fold(w).strip(".,;:()¿?¡!\"'«»") for w in words]
    keep = [True] * len(words)
    for name in names:
        parts = name.split()
        for i in range(len(words) - len(parts) + 1):
            window = folded[i : i + len(parts)]
            last = window[-1].removesuffix("'s").removesuffix("’s") if window else ""
            if window[:-1] == parts[:-1] and last == parts[-1] and all(keep[i : i + len(parts)]):
                for j in range(i, i + len(parts)):
                    keep[j] = False
    return " ".join(w for w, k in zip(words, keep, strict=True) if k)


def topic_of(question: str, named: Sequence[Author] = ()) -> str:
    """What each author's documents are searched for: the question without its comparative frame
    and without the authors it names, which every row would otherwise be checked against ("what
    did A and B say about X" asks each of them about X)."""
    q = " ".join(question.split()).strip(" ¿?¡!.")
    topic = _FRAME.sub("", q, count=1)
    names = sorted({n for author in named for n in _names(author)}, key=len, reverse=True)
    topic = _without(topic, names)
    topic = re.sub(r"\s+(?:and|y|e|or|o)\s+(?=(?:,|\s|$))", " ", f" {topic} ")
    topic = " ".join(topic.replace(" ,", ",").split()).strip(" ,;:")
    return topic if len(topic.split()) >= 2 else q


def widen(text: str, quote: str, max_chars: int) -> str:
    """The cell for a quote found in ``text`` (its chunk): the whole paragraph around it when that
    fits in ``max_chars``, else the quote and the sentences after it while they fit.

    The answerer trims a quote to the clauses closest to the question, which suits one answer but
    not a matrix: a row reading "opened a permanent regularisation window in 2020;" drops the
    "9,800 permits" that follows, and the reader comparing rows needs both. An author's answer to
    one form question is usually one short paragraph, so the paragraph is what the row quotes.
    Returns an exact substring of ``text`` (or the quote itself when it cannot be found)."""
    core = quote.strip().strip("…").strip()
    at = text.find(core) if core else -1
    if at < 0:
        return quote
    para_start = text.rfind("\n\n", 0, at)
    para_start = 0 if para_start < 0 else para_start + 2
    para_end = text.find("\n\n", at + len(core))
    para_end = len(text) if para_end < 0 else para_end
    paragraph = text[para_start:para_end].strip()
    if len(paragraph) <= max_chars:
        return paragraph
    kept = core
    rest = text[at + len(core):para_end]
    for piece in re.split(r"(?<=[.!?;])(?=\s)", rest):
        if not piece.strip() or len(kept) + len(piece) > max_chars:
            break
        kept += piece
    return kept.strip()


def cut_cell(text: str, max_chars: int) -> str:
    """A cell short enough to read in a table: whole sentences while they fit, else the first one
    cut at a clause boundary (never mid-word), marked with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    sentences = re.split(r"(?<=[.!?;])\s+", text)
    kept = ""
    for s in sentences:
        if len(kept) + len(s) + 1 > max_chars:
            break
        kept = f"{kept} {s}".strip()
    if kept:
        return kept + " …"
    head = text[: max_chars - 2]
    cut = max(head.rfind(", "), head.rfind("; "), head.rfind(" "))
    return head[: cut if cut > max_chars // 2 else len(head)].rstrip(" ,;") + " …"


@dataclass
class Row:
    """One author's row: a quoted cell and its citation, or nothing found."""

    author: str
    stakeholder: str
    country: str | None
    language: str
    found: bool
    cell: str  # the quote, or NOTHING_FOUND
    citation: Citation | None = None
    support: float | None = None  # the answerer's support for this author's best sentence (None: no passage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "author": self.author,
            "stakeholder": self.stakeholder,
            "country": self.country,
            "language": self.language,
            "found": self.found,
            "cell": self.cell,
            "citation": self.citation.to_dict() if self.citation else None,
            "support": None if self.support is None else round(self.support, 4),
        }


@dataclass
class Comparison:
    question: str
    topic: str
    scope: str  # how the rows were chosen, in words: "authors named in the question", "States"
    rows: list[Row] = field(default_factory=list)
    unknown_authors: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "topic": self.topic,
            "scope": self.scope,
            "rows": [r.to_dict() for r in self.rows],
            "unknown_authors": self.unknown_authors,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }

    def to_csv(self) -> str:
        """The matrix as a spreadsheet reads it: one row per author, the citation spelled out."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["author", "stakeholder", "country", "found", "quote", "document", "section", "page"])
        for r in self.rows:
            c = r.citation
            writer.writerow([r.author, r.stakeholder, r.country or "", "yes" if r.found else "no", r.cell,
                             c.title if c else "", c.section if c else "", c.page or "" if c else ""])
        return out.getvalue()

    def table(self) -> str:
        """Plain text for a terminal: each author, the cell, and where it is quoted from."""
        lines = [f"Question: {self.question}", f"Rows: {self.scope}; searched for: {self.topic}", ""]
        for r in self.rows:
            where = ""
            if r.citation is not None:
                c = r.citation
                where = f"  [{c.title}{' · ' + c.section if c.section else ''}" \
                        f"{', ' + c.page_reference if c.page_reference else ''}]"
            place = f", {r.country}" if r.country and r.country != r.author else ""
            lines.append(f"{r.author} ({r.stakeholder}{place})")
            lines.append(f"  {r.cell}{where}")
        if self.unknown_authors:
            lines.append("")
            lines.append(f"No indexed author matches: {', '.join(self.unknown_authors)}")
        return "\n".join(lines)
