"""What a question asks for, read from its wording alone (English or Spanish).

An answer to "how many" that holds no figure answers a different question, however well its words
match; so does an answer to "who" that names nobody new. Each kind of thing asked for is an
:class:`AnswerType`: a pattern that marks the sentences likely to hold it (for scoring) and a test
of whether a text gives it (for abstention). A question asking why or how asks for a reason or a
manner, which no pattern can check, so it carries no answer type and its form says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gcm_qa.keyword import fold, tokenize

MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
         r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre)")
YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
CITE_SPLIT = re.compile(r"\s*\[\d+\]\s*")  # an answer's citation markers, between its sentences

_NUMBER = re.compile(r"\d")
_DATE = re.compile(rf"\b(?:19|20)\d{{2}}\b|\b{MONTH}\b")
_NAME = re.compile(r"\b[A-ZÁÉÍÓÚÑ][a-záéíóúñ]+(?:\s+[A-ZÁÉÍÓÚÑ][a-záéíóúñ]+)+\b|\b[A-Z]{2,}\b")
_PERCENT = re.compile(r"\d\s?%|\bper ?cent\b|\bpercentage\b|\b(?:half|third|quarter|fifth|majority)\b", re.I)
_NUMBER_WORD = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundreds?|thousands?|millions?|billions?|dozens?)\b",
    re.I,
)
_FIGURE = re.compile(r"\d[\d,.]*")
_REFERENCE_BEFORE = re.compile(
    rf"\b(?:objectives?|textbox|annex|tables?|graphs?|articles?|resolution|decrees?|laws?|chapters?|sections?|"
    rf"paragraphs?|decretos?|ley(?:es)?|no\.|{MONTH})\s*$", re.I
)
_SHARE = re.compile(r"\d[\d,.]*\s?(?:%|per ?cent\b)", re.I)


def has_quantity(text: str) -> bool:
    """A count or amount: a figure that is not a year, a day of a date, a reference number
    ("objective 23", "table 2"), an enumerator or a hyphenated modifier ("10-year term")."""
    if _NUMBER_WORD.search(text):
        return True
    for m in _FIGURE.finditer(text):
        figure = m.group().rstrip(".,")
        before, after = text[max(0, m.start() - 16) : m.start()], text[m.end() : m.end() + 12]
        if (
            YEAR.fullmatch(figure)
            or _REFERENCE_BEFORE.search(before)
            or re.match(rf"\s*{MONTH}\b", after)  # "5 May", not "5 Mayors"
            or re.match(r"-[A-Za-z]", after)
            or not text[: m.start()].strip(" -(")
        ):
            continue
        return True
    return False


def has_count(text: str) -> bool:
    """A count ("how many"): a quantity that is not only a share; "56% of Venezuelans" says what
    part, not how many."""
    return has_quantity(_SHARE.sub(" ", text))


@dataclass(frozen=True)
class AnswerType:
    """What the question asks for: ``bonus`` marks the sentences likely to hold it (for scoring),
    ``holds`` decides whether an answer gives it at all (an answer to "how many" with no figure
    answers a different question, so the answerer abstains)."""

    name: str
    bonus: re.Pattern[str]
    holds: Callable[[str], bool] | None = None


Form = Literal["fact", "reason", "manner", "list"]


@dataclass(frozen=True)
class Intent:
    """A question's ``form`` (a fact, a reason, a manner, a list of things) and the
    kinds of thing it asks for, the main one first: "When did the hurricanes hit and how many people
    did they affect?" asks for a figure and a date."""

    form: Form
    asks: tuple[AnswerType, ...] = ()

    @property
    def main(self) -> AnswerType | None:
        return self.asks[0] if self.asks else None


_LIST = re.compile(r"^\W*(?:what|which|cuales|que)\b.*\b(?:are|were|son|fueron)\b|\b(?:list|name|enumera|menciona)\b"
                   r"|\b(?:what|which|cuales) (?:\w+ )?(?:measures|actions|challenges|groups|principles|"
                   r"areas|recommendations|themes|steps|components)\b")


def form_of(question: str) -> Form:
    """Why and how questions ask for a reason or a manner; "what are / which measures" for several
    things; anything else for a fact. (A question asking what a named part of a document is about
    is recognised before the answerer, by query.part_asked_about.)"""
    q = fold(question)
    if re.match(r"^\W*(?:why|por que)\b", q):
        return "reason"
    if re.match(r"^\W*(?:how|como)\b(?! (?:many|much)\b)", q):
        return "manner"
    return "list" if _LIST.search(q) else "fact"


def read(question: str) -> Intent:
    """The question's form and the kinds of thing it asks for."""
    form = form_of(question)
    return Intent(form, () if form == "reason" else tuple(_asks(question)))


def _asks(question: str) -> list[AnswerType]:
    q = fold(question)
    found: list[AnswerType] = []
    # "how many" inside a clause ("a poor guide to how many migrants there are") asks for nothing
    q = re.sub(r"\b(?:to|of|about|on|into|know|knows|estimate|estimates)\s+how (?:many|much)\b", " ", q)
    if re.search(r"\b(what percentage|what share|what proportion|what per ?cent|que porcentaje|que proporcion)\b", q):
        found.append(AnswerType("a percentage", _NUMBER, lambda t: bool(_PERCENT.search(t))))
    if re.search(r"\b(how many|cuant[oa]s)\b", q):
        found.append(AnswerType("a figure", _NUMBER, has_count))
    elif re.search(r"\b(how much|cuant[oa])\b|^\W*(?:what|which|cual)(?: (?:was|is|were|are|es|fue|era))? "
                   r"(?:the |el |la )?(?:total |overall |approximate )?(?:value|amount|cost|size|volume|valor|"
                   r"monto|costo)\b", q):
        found.append(AnswerType("a figure", _NUMBER, has_quantity))
    elif re.search(r"\b(what ratio|number of|figure)\b", q):
        found.append(AnswerType("a figure", _NUMBER))
    if re.search(r"^\W*(when|cuando)\b|\b(and|since|by|until) when\b|\b(what year|which year|what date|en que ano|"
                 r"que fecha)\b", q):
        found.append(AnswerType("a date", _DATE, lambda t: bool(_DATE.search(t))))
    if not found and _ASKS_NAME.search(q):
        asked = set(tokenize(question)) | set(_WORD.findall(q))
        found.append(AnswerType("a name", _NAME, lambda t: bool(new_names(t, asked))))
    return found


# "Who…?", "Which countries / organisations / donors…?", "¿Qué países…?", "¿Quién…?": a name is asked for
_ASKS_NAME = re.compile(
    r"^\W*(?:who|whom)\b|^\W*(?:in |by |from |with )?which (?:\w+ ){0,2}(?:organi[sz]ations?|bod(?:y|ies)|"
    r"agenc(?:y|ies)|countr(?:y|ies)|persons?|people|states|institutions?|donors?|parliaments?|governments?|"
    r"cit(?:y|ies)|ministr(?:y|ies)|networks?|speakers?|actors?)\b|\bquien(?:es)?\b|\bwhich countr(?:y|ies)\b|"
    r"^\W*(?:en |de )?(?:que|cuales?) (?:paises|pais|organismos?|organizaciones?|instituciones?|gobiernos?)\b"
)
_WORD = re.compile(r"[a-z]+")
_CAPITALISED = re.compile(r"(?<![.;:!?]\s)(?<!^)(?<!- )\b(?:[A-ZÁÉÍÓÚÑ][a-záéíóúñü]+|[A-Z]{2,}[a-z]?)\b")
# Capitalised words of questions that name nothing: question words and the document's own subject.
COMMON_CAPS = frozenset("which what when where does according global compact regional review report".split())


def new_names(answer: str, asked: set[str]) -> list[str]:
    """Names (capitalised words inside a sentence, acronyms) in an answer that the question does
    not already hold: "Who won the South American Migration Journalism Award?" is not answered by
    a sentence that only names the award."""
    out = []
    for line in CITE_SPLIT.split(answer):
        for word in _CAPITALISED.findall(line.strip()):
            folded = fold(word)
            if (folded in COMMON_CAPS or re.fullmatch(MONTH, word) or set(tokenize(word)) <= asked
                    or any(len(a) >= 4 and (folded.startswith(a) or a.startswith(folded)) for a in asked)):
                continue  # "America" is in a question that says "American"
            out.append(word)
    return out
