"""Query handling before retrieval: Spanish questions and conversational follow-ups.

The documents are mostly in English while many users write in Spanish. A phrase glossary of
migration-policy terms (``data/es_en_glossary.tsv``) turns a Spanish question into English search
terms for BM25, beside the original words, so English passages are found by their vocabulary and a
Spanish questionnaire by its own. The dense query is the question as asked when the encoder is
multilingual (it places both languages in one space); an English-only encoder gets the glossary's
English instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from gcm_qa.keyword import fold
from gcm_qa.profiles import EMPTY, Profile
from gcm_qa.stopwords import SPANISH
from gcm_qa.types import Reference

_SPANISH_MARKERS = re.compile(
    r"[¿¡ñ]|\b(?:qué|cuál|cuáles|cómo|cuántos|cuántas|dónde|cuándo|quién|según|los|las|del|para|por|"
    r"una|sobre|informe|migrantes|países|qu[eé]|c[oó]mo)\b",
    re.I,
)
_EN_MARKERS = re.compile(r"\b(?:the|what|which|how|who|when|where|does|did|is|are|of|and)\b", re.I)

_SPANISH_FUNCTION_WORDS = frozenset(SPANISH)


def is_spanish(text: str) -> bool:
    return len(_SPANISH_MARKERS.findall(text)) > len(_EN_MARKERS.findall(text))


@lru_cache(maxsize=1)
def glossary() -> list[tuple[re.Pattern[str], str]]:
    """(pattern over accent-folded text, English replacement), longest Spanish phrase first."""
    text = resources.files("gcm_qa").joinpath("data/es_en_glossary.tsv").read_text(encoding="utf-8")
    pairs = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        es, en = line.split("\t")
        pairs.append((fold(es.strip()), en.strip()))
    pairs.sort(key=lambda p: -len(p[0]))
    return [(re.compile(rf"(?<!\w){re.escape(es)}(?!\w)"), en) for es, en in pairs]


@lru_cache(maxsize=1)
def reverse_glossary() -> list[tuple[str, re.Pattern[str], str]]:
    """The glossary read the other way, (folded English phrase, its pattern, Spanish), longest first:
    an English question about a Spanish questionnaire is checked against the Spanish words an answer
    would use."""
    text = resources.files("gcm_qa").joinpath("data/es_en_glossary.tsv").read_text(encoding="utf-8")
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        es, en = line.split("\t")
        pairs.setdefault(fold(en.strip()), es.strip())
    ordered = sorted(pairs.items(), key=lambda p: -len(p[0]))
    return [(en, re.compile(rf"(?<!\w){re.escape(en)}(?!\w)"), es) for en, es in ordered]


_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _reverse_by_first_word() -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    """The reverse glossary's phrases by their first word, so that a question is matched only against
    phrases whose first word it has (a few of some 1,200; this runs at every ``ask``). A phrase
    matches only where its first word stands whole (its pattern is bounded by non-word characters),
    so no match is lost; phrases that do not start with a word are always tried."""
    by_word: dict[str, list[int]] = {}
    unled: list[int] = []
    for i, (english, _pattern, _spanish) in enumerate(reverse_glossary()):
        lead = _WORD.match(english)
        if lead is None:
            unled.append(i)
        else:
            by_word.setdefault(lead.group(), []).append(i)
    return {w: tuple(ix) for w, ix in by_word.items()}, tuple(unled)


def other_language(question: str) -> str:
    """The question's terms in the other language (Spanish -> English by the glossary, English ->
    Spanish by the glossary reversed), "" when none is known. An answer in the other language shares
    a question's figures and names but few of its words, so it is checked against these too."""
    if is_spanish(question):
        return translate_terms(question)
    text = fold(question)
    by_word, unled = _reverse_by_first_word()
    candidates = set(unled).union(*(by_word.get(w, ()) for w in _WORD.findall(text)))
    phrases = reverse_glossary()
    return " ".join(phrases[i][2] for i in sorted(candidates) if phrases[i][1].search(text))


def translate_terms(question: str) -> str:
    """Word-for-phrase English rendering of a Spanish question; unknown words pass through.

    Crude as translation, but it is only a search query: the English terms of the documents are what
    the dense and keyword retrievers need to see.
    """
    text = fold(question).replace("¿", " ").replace("¡", " ")
    for pattern, english in glossary():
        text = pattern.sub(f" {english} ", text)
    return " ".join(w for w in text.split() if w not in _SPANISH_FUNCTION_WORDS)


@dataclass(frozen=True)
class SearchQuery:
    """What each retriever is given for one question."""

    question: str
    dense: str
    keyword: str
    spanish: bool = False
    references: tuple[Reference, ...] = ()  # parts of the documents the question names


_REFERENCE = re.compile(
    r"\b(thematic area|area tematica|textbox|recuadro|annex|anexo|table|tabla|cuadro|objective|objetivo|graph|"
    r"grafico)s?\s+(\d{1,2})\b"
)
_REFERENCE_NAMES = {"area tematica": "thematic area", "recuadro": "textbox", "anexo": "annex", "tabla": "table",
                    "cuadro": "table", "objetivo": "objective", "grafico": "graph"}
_WHOLE_REPORT = re.compile(r"\b(?:the report|el informe)\b")


def references(question: str, profile: Profile = EMPTY) -> tuple[Reference, ...]:
    """Parts of the documents a question names: by number ("thematic area 4", "Annex 2", "objetivo
    20"), by a title the profile knows ("the concept note"), and, with one of them, a sub-heading
    the profile knows inside it ("the challenges of thematic area 4"); a question about "the report"
    as a whole may ask for one of the profile's report-wide sections ("what does the report
    recommend").

    Neither retriever reads them well: "4" is one short token among many, and the embedding model
    barely tells "area 4" from "area 1". The retriever favours chunks under the named heading.
    """
    folded = fold(question)
    found: list[Reference] = []
    for name, number in _REFERENCE.findall(folded):
        ref = Reference(_REFERENCE_NAMES.get(name, name), int(number))
        if ref not in found:
            found.append(ref)
    for alias in profile.parts:
        ref = alias.reference
        if ref not in found and all(re.search(rf"\b{re.escape(w)}\b", folded) for w in alias.words):
            found.append(ref)
    if any(r.kind != "objective" for r in found):
        found += [Reference("heading", name=s.name) for s in profile.subheadings
                  if re.search(rf"\b(?:{s.pattern})\b", folded)]
    elif _WHOLE_REPORT.search(folded):
        found += [Reference("heading", name=s.name) for s in profile.report_wide
                  if re.search(rf"\b(?:{s.pattern})", folded)]
    return tuple(found)


_ABOUT = re.compile(
    r"\b(?:what is|what's|what are)\b.*\babout\b"
    r"|\bwhat (?:does|do)\b.*\b(?:say|says|cover|describe|show|present|list|include|contain)\b"
    r"|\b(?:describe|summari[sz]e|summary of|overview of)\b"
    r"|\bde qu[eé] trata|\bqu[eé] (?:dice|presenta|describe|muestra)\b",
    re.I,
)


# "What is objective 13?", "What does GCM objective 13 say?", "¿Qué dice el objetivo 13?"
_OBJECTIVE_ASKED = re.compile(
    r"^\W*(?:what|que|cual)\s+(?:is|was|does|do|dice|es|establece)?\s*(?:the\s+|el\s+)?(?:gcm\s+|global compact\s+)?"
    r"obje(?:ctive|tivo)\s+\d{1,2}\b(?:\s+of the (?:gcm|global compact)|\s+del pacto mundial)?"
    r"\W*(?:about|say|says|mean|state|dice|establece)?\W*$"
)


def part_asked_about(query: SearchQuery) -> tuple[Reference, ...]:
    """"What is textbox 3 about?" names a part of a document and asks what it holds, so its opening
    (title and first sentences) is the answer, whatever the words score. "What is objective 13?"
    asks for the objective's wording. Returns the references that together name the part ("annex
    2", "table 1"; "objective 13"), or () for any other question."""
    parts = tuple(r for r in query.references if r.kind not in ("objective", "graph"))
    graphs = tuple(r for r in query.references if r.kind == "graph")
    if graphs and not parts:
        return graphs[:1] if _ABOUT.search(query.question) else ()
    if parts:
        return parts if _ABOUT.search(query.question) else ()
    objectives = tuple(r for r in query.references if r.kind == "objective")
    return objectives[:1] if len(objectives) == 1 and _OBJECTIVE_ASKED.search(fold(query.question)) else ()


# "Which objective deals with detention?", "What GCM objective covers remittances?", "¿Qué objetivo
# trata de la trata de personas?": one objective, asked for by its topic rather than its number.
_WHICH_OBJECTIVE = re.compile(
    r"^\W*(?:which|what|que|cual)\s+(?:is\s+the\s+|es\s+el\s+)?(?:gcm\s+|global compact\s+)?obje(?:ctive|tivo)\b(?!s)"
)


def objective_sought(query: SearchQuery) -> bool:
    """The question asks which single objective covers a topic (and names none by number)."""
    if any(r.kind == "objective" for r in query.references):
        return False
    return bool(_WHICH_OBJECTIVE.search(fold(query.question)))


def areas_named(query: SearchQuery) -> tuple[int, ...]:
    return tuple(r.number for r in query.references if r.kind == "thematic area" and r.number is not None)


def prepare(question: str, multilingual: bool = False, profile: Profile = EMPTY) -> SearchQuery:
    """``multilingual``: the encoder embeds Spanish as it is, so the dense query is the question.
    ``profile``: the merged profile of the indexed documents (parts named by title, sub-headings)."""
    question = " ".join(question.split())
    refs = references(question, profile)
    if is_spanish(question):
        english = translate_terms(question)
        return SearchQuery(question, question if multilingual else english, f"{english} {question}", True, refs)
    return SearchQuery(question, question, question, references=refs)


_FOLLOWUP_START = re.compile(
    r"^(?:and what about|and how about|and what|and for|what about|how about|what of|same for|"
    r"in that case|and|but|also|then|¿?y qué hay de|¿?qué hay de|¿?y para|¿?y en|¿?y)\b",
    re.I,
)
_PRONOUNS = re.compile(r"\b(?:it|they|them|those|these|this|that|their|its|ellos|ellas|esto|eso|ese|esa)\b", re.I)


_QUESTION_OPENING = re.compile(
    r"^(?:what|which|who|whom|when|where|why|how(?: many| much)?|qu[eé]|cu[aá]l(?:es)?|qui[eé]n(?:es)?|"
    r"c[oó]mo|cu[aá]nt[oa]s?|d[oó]nde|cu[aá]ndo)\b(?:\s+(?:is|are|was|were|did|does|do|has|have|had|can|"
    r"could|should|would|will|es|son|fue|fueron|ha|han|se))?\s*",
    re.I,
)


def needs_context(question: str) -> bool:
    """A follow-up leans on the previous turn: it opens with 'and…/what about…' or is short and
    made of pronouns."""
    q = question.strip()
    words = q.split()
    return bool(_FOLLOWUP_START.match(q)) or (len(words) <= 6 and bool(_PRONOUNS.search(q)))


def rewrite_followup(question: str, previous_questions: list[str]) -> str:
    """Make a follow-up standalone by carrying over the previous question's subject.

    "and what about children?" after "What challenges did States report on detention?" becomes
    "children: challenges States report on detention". Without an LLM this is the honest rewrite:
    the previous question supplies the topic, the follow-up supplies the new focus (first, so it
    leads the answer's sentence selection), and the rewritten query is shown to the user so they
    can see what was searched.
    """
    if not previous_questions or not needs_context(question):
        return question
    previous = previous_questions[-1].strip().rstrip("?").lstrip("¿")
    topic = _QUESTION_OPENING.sub("", previous).strip() or previous
    focus = _FOLLOWUP_START.sub("", question.strip()).strip(" ?¿,.")
    focus = re.sub(r"^(?:about|of|for|with|de|sobre|con)\s+", "", focus, flags=re.I)
    # the new focus leads: "children: challenges States report on migrant detention"
    return f"{focus}: {topic}" if focus else previous
