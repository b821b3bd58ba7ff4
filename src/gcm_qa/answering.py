"""The default answerer: no LLM, only sentences quoted from the retrieved passages.

Sentences of the top passages (their embeddings come from the index, so answering embeds nothing)
are scored against the question: cosine similarity, the share of the question's content words
they contain, the share of their own words the question lacks (a sentence that only restates the
question answers nothing), the rank of their passage, and whether they hold the kind of thing
asked for (a figure for "how many", a date for "when"). The weights were tuned on the dev split.
The best few become the answer, each followed by its
citation marker; a sentence that introduces a list ("... include:") brings its items along, and a
long sentence is trimmed to the clauses that carry the answer. Quoting keeps numbers and names
exactly as the source prints them. When even the best sentence is weak, the answerer abstains
instead of quoting something loosely related.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gcm_qa.corpus import COUNTRIES
from gcm_qa.index_store import LoadedIndex
from gcm_qa.keyword import fold, tokenize
from gcm_qa.sentences import Sentence, split_sentences
from gcm_qa.settings import AnswerSettings
from gcm_qa.types import Citation, Passage

NO_ANSWER = "The documents do not answer this."
MAX_QUOTE_CHARS = 700  # one chunk: longer spans are cited as separate quotes
COVERAGE_BONUS = 0.3  # tuned on the dev split (key-fact recall 0.633 at 0.15, 0.661 at 0.3)
HEAD_WORDS = 8  # words shown of each item of a list too long to show whole (dev: 5 and 12 no better)
STOP_RATIO = 0.8  # a further sentence must score at least this share of the best one

# A sentence holding the kind of thing asked for ("how many" -> a figure) may lead the answer when it
# scores within this share of the best sentence; tuned on dev, where answerable questions' figure
# sentences scored 0.92 and above, and unanswerable questions' stray figures 0.83 and below.
HOLDING_RATIO = 0.85
HOLDING_POOL = 10
# That sentence must also share this share of the question's content words, or its figure or name is
# about something else (dev: 0.2 caught two more unanswerable questions; 0.3 and 0.4 refused
# answerable ones).
TOPIC_OVERLAP = 0.2
# A question with a second part ("...and how many?") gets the best sentence answering that part when
# it scores at least this share of the best sentence (dev: 0.6 and 0.7 equal, 0.8 too strict).
SECOND_PART_RATIO = 0.7
_CITE_MARK = re.compile(r"\s*\[\d+\]")
_BULLET = re.compile(r"^(?:[-◇•▪►]\s+)+")
_CITE_SPLIT = re.compile(r"\s*\[\d+\]\s*")
_NOTE_MARK = re.compile(r"^\[Note \d+\]\s*")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:—])\s+|\s+(?=—)|\s+(?=\()")
_ITEM = re.compile(r"^(?:- |\(?\d{1,2}[.)] |\(?[a-z][.)] )")
_LABEL_ONLY = re.compile(r"^(?:Text\s?box|Box|Table|Graph|Figure|Annex|Recuadro|Cuadro|Gráfico|Anexo)\s+\d+\.?$", re.I)
# a caption or source line: "International emigrants from the region, by sex, according to
# destination, 2020" or "Colombian Migration Office, 2021" (no sentence ends that way)
_DATED_LINE = re.compile(r"^[A-ZÁÉÍÓÚ][^.:;|]{2,160},\s*(?:19|20)\d{2}\.?$")
# a reference standing as a sentence of its own: "(IDB, 2021:9)." or "(UNDESA, 2019)."
_REFERENCE_ONLY = re.compile(r"^\(?[A-Z][^()]{1,60},\s*(?:19|20)\d{2}[a-z]?(?::\s*[\d\-–, ]+)?\)?\.?$")
_CAPTION = re.compile(r"^(?:Source|Fuente)\s*:|^(?:Graph|Gráfico|Figure)\s+\d", re.I)
_NUMBER = re.compile(r"\d")
_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
          r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre)")
_DATE = re.compile(rf"\b(?:19|20)\d{{2}}\b|\b{_MONTH}\b")
_NAME = re.compile(r"\b[A-ZÁÉÍÓÚÑ][a-záéíóúñ]+(?:\s+[A-ZÁÉÍÓÚÑ][a-záéíóúñ]+)+\b|\b[A-Z]{2,}\b")


@dataclass(frozen=True)
class Scored:
    sentence: Sentence
    score: float
    cosine: float
    overlap: float


_PERCENT = re.compile(r"\d\s?%|\bper ?cent\b|\bpercentage\b|\b(?:half|third|quarter|fifth|majority)\b", re.I)
_NUMBER_WORD = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundreds?|thousands?|millions?|billions?|dozens?)\b",
    re.I,
)
_FIGURE = re.compile(r"\d[\d,.]*")
_REFERENCE_BEFORE = re.compile(
    rf"\b(?:objectives?|textbox|annex|tables?|graphs?|articles?|resolution|decrees?|laws?|chapters?|sections?|"
    rf"paragraphs?|decretos?|ley(?:es)?|no\.|{_MONTH})\s*$", re.I
)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


def has_quantity(text: str) -> bool:
    """A count or amount: a figure that is not a year, a day of a date, a reference number
    ("objective 23", "table 2"), an enumerator or a hyphenated modifier ("10-year term")."""
    if _NUMBER_WORD.search(text):
        return True
    for m in _FIGURE.finditer(text):
        figure = m.group().rstrip(".,")
        before, after = text[max(0, m.start() - 16) : m.start()], text[m.end() : m.end() + 12]
        if (
            _YEAR.fullmatch(figure)
            or _REFERENCE_BEFORE.search(before)
            or re.match(rf"\s*{_MONTH}\b", after)  # "5 May", not "5 Mayors"
            or re.match(r"-[A-Za-z]", after)
            or not text[: m.start()].strip(" -(")
        ):
            continue
        return True
    return False


_SHARE = re.compile(r"\d[\d,.]*\s?(?:%|per ?cent\b)", re.I)


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


def intents(question: str) -> list[AnswerType]:
    """The kinds of thing the question asks for, read from its wording (English or Spanish), the
    main one first: "When did the hurricanes hit and how many people did they affect?" asks for a
    figure and a date."""
    q = fold(question)
    found: list[AnswerType] = []
    if re.match(r"^\W*(?:why|por que)\b", q):
        return found  # a reason is asked for, whatever figures the question mentions
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


def new_names(answer: str, asked: set[str]) -> list[str]:
    """Names (capitalised words inside a sentence, acronyms) in an answer that the question does
    not already hold: "Who won the South American Migration Journalism Award?" is not answered by
    a sentence that only names the award."""
    out = []
    for line in _CITE_SPLIT.split(answer):
        for word in _CAPITALISED.findall(line.strip()):
            folded = fold(word)
            if (folded in _COMMON_CAPS or re.fullmatch(_MONTH, word) or set(tokenize(word)) <= asked
                    or any(len(a) >= 4 and (folded.startswith(a) or a.startswith(folded)) for a in asked)):
                continue  # "America" is in a question that says "American"
            out.append(word)
    return out


def intent(question: str) -> AnswerType | None:
    """The main kind of thing the question asks for (see ``intents``)."""
    found = intents(question)
    return found[0] if found else None


def gives(wanted: AnswerType, question_tokens: set[str], text: str) -> bool:
    """Whether a sentence of ``text`` holds the kind of thing asked for and is about the question:
    a figure in a sentence that shares almost no word with "How many Venezuelans registered for the
    Temporary Protection Status?" is a figure about something else."""
    assert wanted.holds is not None
    return any(
        wanted.holds(piece) and overlap_score(question_tokens, piece) >= TOPIC_OVERLAP
        for piece in _CITE_SPLIT.split(text)
        if piece
    )


def overlap_score(question_tokens: set[str], sentence: str) -> float:
    """Share of the question's content words found in the sentence; numbers count double because a
    question that names a figure or year is almost always answered by the sentence holding it."""
    if not question_tokens:
        return 0.0
    tokens = set(tokenize(sentence))
    weight = {t: (2.0 if t[0].isdigit() else 1.0) for t in question_tokens}
    return sum(w for t, w in weight.items() if t in tokens) / sum(weight.values())


def _bare(text: str) -> str:
    return " ".join(text.strip().rstrip(".:").lower().split())


def quotable(text: str, section: Sequence[str]) -> bool:
    """Headings, graph captions, source lines and bare enumeration markers are not answers."""
    if len(text) < 25 and not re.search(r"[A-Za-z]{3}.*\d|\d.*[A-Za-z]{3}", text):
        return False
    if _CAPTION.match(text) or _LABEL_ONLY.match(text) or _DATED_LINE.match(text) or _REFERENCE_ONLY.match(text):
        return False
    bare = _bare(text)
    for title in section:
        kept = _bare(title.rstrip("…"))
        # titles are stored cut short with "…": a line that starts with the kept part is the heading
        if bare == kept or (title.endswith("…") and len(kept) >= 30 and bare.startswith(kept)):
            return False
    return True


def in_title(text: str, section: Sequence[str]) -> bool:
    """A sentence that is part of its section's heading (a long table caption, say)."""
    bare = _bare(text)
    return len(bare) >= 10 and any(bare in _bare(title) for title in section)


def trim_to_clauses(sentence: str, question_tokens: set[str], max_chars: int) -> tuple[str, int]:
    """The contiguous run of clauses, at most ``max_chars`` long, richest in question words.

    Returns the trimmed text (an exact substring, so it can be quoted) and its offset in the
    sentence. Short sentences come back whole.
    """
    if len(sentence) <= max_chars:
        return sentence, 0
    cuts = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(sentence)] + [len(sentence)]
    best = (-1.0, 0, 0)
    for i in range(len(cuts) - 1):
        for j in range(i + 1, len(cuts)):
            if cuts[j] - cuts[i] > max_chars and j > i + 1:
                break
            piece = sentence[cuts[i] : cuts[j]]
            score = overlap_score(question_tokens, piece) + 0.002 * len(piece) / max_chars
            if score > best[0]:
                best = (score, cuts[i], cuts[j])
    _, a, b = best
    if b - a > max_chars:  # a single clause longer than the cap: cut at a word boundary
        b = a + max(sentence[a : a + max_chars].rfind(" "), 1)
    raw = sentence[a:b]
    text = raw.strip().rstrip(",;:—").rstrip()
    return text, a + (len(raw) - len(raw.lstrip()))


def score_sentences(
    question: str,
    question_vector: np.ndarray,
    sentences: Sequence[Sentence],
    sentence_vectors: np.ndarray,
    passages: Sequence[Passage],
) -> list[Scored]:
    q_tokens = set(tokenize(question))
    wanted = intent(question)
    cosines = sentence_vectors @ question_vector if len(sentences) else np.zeros(0)
    out = []
    for s, cos in zip(sentences, cosines, strict=True):
        ov = overlap_score(q_tokens, s.text)
        prior = 1.0 / (1.0 + 0.6 * (passages[s.passage].rank - 1))
        tokens = set(tokenize(s.text))
        novelty = len(tokens - q_tokens) / max(len(tokens), 1)  # restating the question is no answer
        bonus = 0.08 if wanted is not None and wanted.bonus.search(s.text) else 0.0
        if in_title(s.text, passages[s.passage].chunk.section):
            bonus -= 0.1  # captions name the topic; the rows or text under them answer
        score = 0.5 * float(cos) + 0.2 * ov + 0.5 * prior + 0.2 * novelty + bonus
        out.append(Scored(s, score, float(cos), ov))
    out.sort(key=lambda x: -x.score)
    return out


def support(best: Scored | None, passages: Sequence[Passage]) -> float:
    """How well the corpus supports an answer: the best sentence's cosine and word overlap, plus
    the top passage's dense similarity. Compared with ``abstain_threshold``."""
    if best is None or not passages:
        return 0.0
    dense = passages[0].dense_score or 0.0
    return 0.5 * best.cosine + 0.3 * best.overlap + 0.2 * dense


_PROPER_NOUN = re.compile(r"(?<![.?!¿¡]\s)(?<!^)\b([A-ZÁÉÍÓÚÑ][a-záéíóúñü]{3,})\b")

def unsupported_terms(question: str, passages: Sequence[Passage]) -> list[str]:
    """Names and years the question asks about that no retrieved passage mentions.

    "How many Venezuelan migrants live in Peru?" retrieves passages on Venezuelan migration that
    never name Peru: quoting them would answer a different question. Demonyms ("Brazilian",
    "American") are left out: "Which Brazilian city..." is answered by a passage on São Paulo that
    never says Brazil. Rule chosen on the dev split, where it caught 3 of 9 unanswerable questions
    and no answerable one.
    """
    text = " ".join(f"{p.chunk.section_label} {p.chunk.text}" for p in passages)  # "the Foreword" is a heading
    have = set(tokenize(text)) | set(_YEAR.findall(text))
    out = []
    for word in [*_PROPER_NOUN.findall(question), *_YEAR.findall(question)]:
        if word[0].isalpha() and (is_demonym(word) or word.lower() in _COMMON_CAPS
                                  or re.fullmatch(_MONTH, word)):
            continue  # a month dates the question; the year, if any, is checked on its own
        if not set(tokenize(word)) <= have and word not in out:
            out.append(word)
    return out


# Places whose names end like a demonym ("-an"): they are names a passage must mention.
_PLACES_IN_AN = frozenset("iran japan oman sudan jordan bhutan taiwan azerbaijan vatican caribbean yucatan "
                          "michoacan".split())


def is_demonym(word: str) -> bool:
    """"Brazilian", "Venezuelans", "Haitian": an adjective of a place, which a passage about the place
    need not repeat; not "Pakistan", "Afghanistan" or "the Caribbean", which are the places."""
    w = fold(word)
    return w.endswith(("an", "ans")) and not w.endswith(("stan", "stans")) and w.removesuffix("s") not in _PLACES_IN_AN


_COMMON_CAPS = frozenset("which what when where does according global compact regional review report".split())


def list_items(intro: Sentence, siblings: Sequence[Sentence]) -> list[Sentence]:
    """The items that follow a sentence ending with ':' in the same passage."""
    if not intro.text.rstrip().endswith(":"):
        return []
    items = []
    for s in siblings:
        if s.passage != intro.passage or s.start <= intro.start:
            continue
        if not _ITEM.match(s.text):
            break
        items.append(s)
    return items


def list_intro(item: Sentence, siblings: Sequence[Sentence]) -> Sentence | None:
    """The sentence ending with ':' that a list item belongs to, when the passage holds it and
    only items stand between them."""
    if not _ITEM.match(item.text):
        return None
    before = [s for s in siblings if s.passage == item.passage and s.start < item.start]
    for s in reversed(before):
        if s.text.rstrip().endswith(":"):
            return s
        if not _ITEM.match(s.text):
            return None
    return None


@dataclass
class _Pick:
    item: Scored
    text: str  # shown in the answer
    quote: str  # exact substring of the passage
    tokens: set[str]  # the sentence's words, as tokenised
    in_list: bool = False  # one part of a list shown whole (it is never replaced on its own)


# Given the last item a passage holds of a list, the items that follow it in the next chunk (whose
# passage it adds to the list it is given, so they can be cited).
Continuation = Callable[[list[Passage], Sentence], list[Sentence]]


def compose(
    question: str,
    ranked: Sequence[Scored],
    passages: list[Passage],
    settings: AnswerSettings,
    in_order: Sequence[Sentence] = (),
    continuation: Continuation | None = None,
) -> tuple[str, list[Citation]]:
    """Pick sentences greedily until the sentence or character budget is spent.

    After the first pick, a sentence earns a bonus for the question words it covers that the
    answer does not cover yet, so a two-part question ("when ... and how many ...") gets a
    sentence for each part rather than two for the same part.
    """
    q_tokens = set(tokenize(question))
    chosen: list[_Pick] = []
    used_chars = 0
    seen_text: set[str] = set()
    covered: set[str] = set()
    best = ranked[0].score if ranked else 0.0
    pool = list(ranked[:40])
    token_sets = {id(item): set(tokenize(item.sentence.text)) for item in pool}
    def gain(item: Scored, covered: set[str]) -> float:
        if not covered or not q_tokens:
            return 0.0
        return COVERAGE_BONUS * len((token_sets[id(item)] & q_tokens) - covered) / len(q_tokens)

    while pool and len(chosen) < settings.max_sentences:
        item = max(pool, key=lambda x: x.score + gain(x, covered))
        pool.remove(item)
        if chosen and item.score + gain(item, covered) < STOP_RATIO * best and not all(
            in_title(p.item.sentence.text, passages[p.item.sentence.passage].chunk.section) for p in chosen
        ):
            break  # (a heading alone says only what the answer is about: the next sentence may follow)
        key = " ".join(tokenize(item.sentence.text))
        if key in seen_text or any(token_sets[id(item)] <= p.tokens for p in chosen):
            continue  # says nothing the answer does not say already
        # a sentence that says all an earlier pick says and more replaces it ("…principles." and
        # "…principles: people-centredness; …")
        for p in [p for p in chosen if p.tokens < token_sets[id(item)] and not p.in_list]:
            chosen.remove(p)
            used_chars -= len(p.text) + 5
        budget = settings.max_chars - used_chars
        if chosen and budget < 80:
            break
        intro = list_intro(item.sentence, in_order) if not chosen else None
        if intro is not None and (
            len(intro.text) + sum(len(x.text) + 2 for x in list_items(intro, in_order)) <= settings.max_list_chars
        ):
            # one item of a short list answers "which groups…?" only in part: the list is the answer
            key = " ".join(tokenize(intro.text))
            item = Scored(intro, item.score, item.cosine, item.overlap)
            token_sets[id(item)] = set(tokenize(intro.text))
            if key in seen_text:
                continue
        items = list_items(item.sentence, in_order)
        if items and not chosen:
            budget = settings.max_list_chars  # a list is the answer: it may take more room than prose
        if continuation is not None and item.sentence.text.rstrip().endswith(":") and len(items) < 2:
            # a list the chunk boundary cut right after its intro: its items are in the next chunk
            items += continuation(passages, items[-1] if items else item.sentence)
        if items:
            segments, shown = _with_items(item.sentence, items, passages, max(budget, 200))
            for s in shown:  # an item shown under its list is not quoted again on its own
                seen_text.add(" ".join(tokenize(s.text)))
            text = " ".join(_NOTE_MARK.sub("", part) for part, _, _ in segments)
            if chosen and len(text) > budget:
                continue
            seen_text.add(key)
            covered |= token_sets[id(item)] & q_tokens
            for part, anchor, quote in segments:  # one citation per chunk the list runs through
                chosen.append(_Pick(Scored(anchor, item.score, item.cosine, item.overlap), _NOTE_MARK.sub("", part),
                                    quote, token_sets[id(item)], in_list=True))
            used_chars += len(text) + 5 * len(segments)
            continue
        cap = max(budget, 200) if not chosen else budget
        piece, _ = trim_to_clauses(item.sentence.text, q_tokens, cap)
        quote = piece
        text = piece if piece == item.sentence.text else _ellipsis(item.sentence.text, piece)
        text = _BULLET.sub("", text)  # a bullet item quoted alone reads as a sentence
        text = _NOTE_MARK.sub("", text)  # the cleaner's "[Note 5]" label is not part of the answer
        if chosen and len(text) > budget:
            continue
        seen_text.add(key)
        covered |= token_sets[id(item)] & q_tokens
        chosen.append(_Pick(item, text, quote, token_sets[id(item)]))
        used_chars += len(text) + 5
    # Sentences quoted from the same passage share one citation whose quote is the exact span of
    # the passage that covers them (so it can be checked verbatim); spans too far apart to read as
    # one quote get citations of their own.
    citations: list[Citation] = []
    spans: list[tuple[int, int]] = []
    parts: list[str] = []
    for pick in chosen:
        sentence = pick.item.sentence
        passage = passages[sentence.passage]
        c = passage.chunk
        at = sentence.start + max(sentence.text.find(pick.quote), 0)
        span = (at, at + len(pick.quote))
        n = next(
            (
                i + 1
                for i, cite in enumerate(citations)
                if cite.chunk_id == c.chunk_id
                and max(span[1], spans[i][1]) - min(span[0], spans[i][0]) <= MAX_QUOTE_CHARS
            ),
            None,
        )
        if n is None:
            citations.append(
                Citation(
                    n=len(citations) + 1,
                    doc_id=c.doc_id,
                    title=c.title,
                    section=c.section_label,
                    page=c.page_label,
                    quote=pick.quote,
                    score=pick.item.score,
                    passage_rank=passage.rank,
                    chunk_id=c.chunk_id,
                )
            )
            spans.append(span)
            n = len(citations)
        else:
            a, b = min(span[0], spans[n - 1][0]), max(span[1], spans[n - 1][1])
            spans[n - 1] = (a, b)
            citations[n - 1].quote = c.text[a:b]
        parts.append(f"{pick.text} [{n}]")
    return " ".join(parts), citations


def _with_items(
    intro: Sentence, items: Sequence[Sentence], passages: Sequence[Passage], budget: int
) -> tuple[list[tuple[str, Sentence, str]], list[Sentence]]:
    """'Intro: item; item; item' for display, and the items shown. The display comes in one
    segment per passage the list runs through, each with the sentence it starts at and its exact
    span in that passage as the quote.

    A list too long for the budget shows each item by its opening words ("Preventing collusion
    among providers…"): the items' heads name them, and the quote holds them whole.
    """
    full = [_ITEM.sub("", s.text).rstrip(".;") for s in items]
    lead = intro.text.removeprefix("- ")  # an intro that is itself an item: "- It is addressed to:"
    if len(lead) + sum(len(f) + 2 for f in full) > budget:
        full = [_head(f) for f in full]
        tail = lead.rsplit(", ", 1)[-1]
        if len(lead) + sum(len(f) + 2 for f in full) > budget and 15 <= len(tail) < len(lead):
            lead = f"…{tail}"  # the question gives the context; the items are the answer
    kept = 0
    length = len(lead)
    for piece in full:
        if kept and length + len(piece) + 2 > budget:
            break
        kept += 1
        length += len(piece) + 2
    shown = list(items[:kept])
    # one segment per passage: the intro's passage first (it may hold no item), then any chunk the
    # list runs on into
    groups: list[list[int]] = [[]]
    for i, item in enumerate(shown):
        if item.passage != (shown[groups[-1][-1]].passage if groups[-1] else intro.passage):
            groups.append([])
        groups[-1].append(i)
    segments: list[tuple[str, Sentence, str]] = []
    for g, members in enumerate(groups):
        listed = "".join(f"{full[i]}{' ' if full[i].endswith(':') else '; '}" for i in members).rstrip("; ")
        body = f"{lead} {listed}".strip() if g == 0 else listed
        if g < len(groups) - 1:
            body += "" if body.endswith(":") else ";"
        elif not body.endswith(("…", ":")):
            body += "."
        anchor = intro if g == 0 else shown[members[0]]
        last = shown[members[-1]] if members else intro
        segments.append((body, anchor, passages[anchor.passage].chunk.text[anchor.start : last.end]))
    return segments, shown


def _head(item: str, words: int = HEAD_WORDS) -> str:
    parts = item.split()
    return item if len(parts) <= words + 2 else " ".join(parts[:words]).rstrip(",;:") + "…"


def _ellipsis(sentence: str, piece: str) -> str:
    start = sentence.find(piece)
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + len(piece) < len(sentence) else ""
    return f"{prefix}{piece}{suffix}"


class Answerer:
    """Extractive answers from passages, using the sentence embeddings stored in the index."""

    def __init__(self, index: LoadedIndex, settings: AnswerSettings, max_passages: int = 5) -> None:
        self.index = index
        self.settings = settings
        self.max_passages = max_passages

    def sentences(self, passages: Sequence[Passage]) -> tuple[list[Sentence], np.ndarray]:
        found: list[Sentence] = []
        rows: list[int] = []
        for i, p in enumerate(passages):
            for row in self.index.sentence_rows(self.index.position(p.chunk.chunk_id)):
                _, a, b = (int(x) for x in self.index.sentence_spans[row])
                found.append(Sentence(i, a, b, p.chunk.text[a:b]))
                rows.append(row)
        dim = self.index.sentence_embeddings.shape[1] if self.index.sentence_embeddings.ndim == 2 else 0
        vectors = self.index.sentence_embeddings[rows] if rows else np.zeros((0, dim), dtype=np.float32)
        return found, vectors

    def list_continuation(self, passages: list[Passage], last: Sentence, attach: bool = True) -> list[Sentence]:
        """The items that follow ``last`` (a list's last item in its passage, or the intro when the
        passage ends there) in the next chunk of the same section: a list the chunk boundary cut
        is read to its end, within the answer's budget. With ``attach``, that chunk joins
        ``passages`` so its items can be cited from it."""
        chunk = passages[last.passage].chunk
        if chunk.text[last.end :].strip():
            return []  # the list ends inside this passage
        at = self.index.position(chunk.chunk_id) + 1
        if at >= len(self.index.chunks):
            return []
        following = self.index.chunks[at]
        if following.doc_id != chunk.doc_id or following.section != chunk.section:
            return []
        k = next((i for i, p in enumerate(passages) if p.chunk.chunk_id == following.chunk_id), len(passages))
        offset = chunk.start + last.end - following.start
        items: list[Sentence] = []
        for sentence in split_sentences(following.text, k):
            if sentence.start < offset:
                continue
            if not _ITEM.match(sentence.text):
                break
            items.append(sentence)
        if items and attach and k == len(passages):
            passages.append(Passage(chunk=following, score=0.0, rank=len(passages) + 1))
        return items

    def describe(self, passage: Passage, needle: str = "", single: bool = False) -> tuple[str, list[Citation]]:
        """The opening sentences of a passage, in order, as one quote: the answer to "what is
        textbox 3 about?" is its title and first lines, not its best-scoring sentence. With a
        ``needle``, from the sentence that holds it on (a graph's caption), or that sentence alone
        (``single``: an objective's wording in a list)."""
        sentences, _ = self.sentences([passage])
        if needle:
            at = next((i for i, s in enumerate(sentences) if needle in s.text.lower()), len(sentences))
            sentences = sentences[at : at + 1] if single else sentences[at:]
        if not sentences:
            return NO_ANSWER, []
        shown: list[Sentence] = []
        cut = ""  # the first sentence that does not fit is shown by its head
        for s in sentences:
            room = self.settings.max_chars - sum(len(x.text) + 1 for x in shown)
            if shown and len(s.text) > room:
                if room >= 60:
                    cut = _head(s.text, room // 7)
                    shown.append(s)
                break
            shown.append(s)
        c = passage.chunk
        quote = c.text[shown[0].start : shown[-1].end]
        citation = Citation(n=1, doc_id=c.doc_id, title=c.title, section=c.section_label, page=c.page_label,
                            quote=quote, score=passage.score, passage_rank=passage.rank, chunk_id=c.chunk_id)
        lines = [_NOTE_MARK.sub("", s.text) for s in shown]
        if single:  # an objective's line in a bulleted list: "- 13. Use migration detention…"
            lines = [_BULLET.sub("", line) for line in lines]
        if cut:
            lines[-1] = cut
        lines = [line if line.rstrip()[-1:] in ".:;?!|…" else f"{line.rstrip()}." for line in lines]  # titles
        return f"{' '.join(lines)} [1]", [citation]

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        question_vector: np.ndarray,
        check_terms: str = "",
        named_part: bool = False,
        topic: str = "",
    ) -> tuple[str, list[Citation], bool]:
        """``check_terms``: the question as the user wrote it, when its names must be found in the
        passages (not for Spanish questions, whose words the English passages do not share).
        ``named_part``: the question names a part of the document that the passages come from
        ("the challenges of thematic area 4"), so it is on topic however weakly its words match.
        ``topic``: the question's words in the documents' language (a Spanish question's English
        terms), against which an answer's sentences are checked for being on topic."""
        used = list(passages[: self.max_passages])
        every, vectors = self.sentences(used)
        keep = [
            i for i, s in enumerate(every)
            if quotable(s.text, used[s.passage].chunk.section)
            # an intro whose items the passage cuts off ("…, the Review will:") says nothing alone
            and not (s.text.rstrip().endswith(":") and not list_items(s, every)
                     and not self.list_continuation(used, s, attach=False))
        ]
        if not keep:
            return NO_ANSWER, [], True
        sentences = [every[i] for i in keep]
        ranked = score_sentences(question, question_vector, sentences, vectors[keep], used)
        if not named_part and support(ranked[0], used) < self.settings.abstain_threshold:
            return NO_ANSWER, [], True
        if check_terms:
            missing = unsupported_terms(check_terms, used)
            if missing:
                return f"{NO_ANSWER} None of the passages found mentions {', '.join(missing)}.", [], True
        text, citations = compose(question, ranked, used, self.settings, every, self.list_continuation)
        asked_for = intents(question)
        wanted = asked_for[0] if asked_for else None
        q_tokens = set(tokenize(topic or question))
        if wanted is not None and wanted.holds is not None and not gives(wanted, q_tokens, text):
            # the kind of thing asked for may sit in a sentence ranked a little lower: bring the best
            # such sentence forward before concluding that the passages do not give it
            holding = [r for r in ranked[:HOLDING_POOL]
                       if gives(wanted, q_tokens, r.sentence.text) and r.score >= HOLDING_RATIO * ranked[0].score]
            if not holding:
                return f"{NO_ANSWER} None of the passages found gives {wanted.name} for it.", [], True
            lead = holding[0]
            ranked = [Scored(lead.sentence, ranked[0].score, lead.cosine, lead.overlap),
                      *(r for r in ranked if r is not lead)]
            text, citations = compose(question, ranked, used, self.settings, every, self.list_continuation)
        for other in asked_for[1:]:
            # a second part of the question ("...and how many?") gets the best sentence that
            # answers it, when the answer so far does not
            if other.holds is None or other.holds(_CITE_MARK.sub("", text)):
                continue
            second = next((r for r in ranked[1:HOLDING_POOL]
                           if other.holds(r.sentence.text) and r.score >= SECOND_PART_RATIO * ranked[0].score), None)
            if second is not None:
                ranked = [ranked[0], Scored(second.sentence, ranked[0].score, second.cosine, second.overlap),
                          *(r for r in ranked[1:] if r is not second)]
                text, citations = compose(question, ranked, used, self.settings, every, self.list_continuation)
        if check_terms:
            # a country or year the question asks about must be named by a passage the answer quotes:
            # passages naming Guatemala somewhere, quoted where they speak of the region, answer
            # another question (other capitalised words are too often common nouns: "States")
            cited = [p for p in used if any(c.chunk_id == p.chunk.chunk_id for c in citations)]
            missing = [t for t in unsupported_terms(check_terms, cited) if t.isdigit() or fold(t) in COUNTRIES]
            if missing:
                return f"{NO_ANSWER} The passages quoted do not mention {', '.join(missing)}.", [], True
        return text, citations, False
