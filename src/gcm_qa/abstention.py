"""When the answerer says the documents do not answer, rather than quote something loosely related.

Three tests, each a reason a user can read:
- the best sentence and the top passage are too weakly related to the question (an off-topic
  question: "what is the capital of France?");
- a name or year the question asks about is in no passage retrieved, or in no passage quoted ("How
  many Venezuelans live in Peru?" answered from passages that never name Peru);
- the answer does not give the kind of thing asked for ("how many" with no figure; see
  :mod:`gcm_qa.intent`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gcm_qa.corpus import COUNTRIES
from gcm_qa.intent import COMMON_CAPS, MONTH, YEAR, AnswerType
from gcm_qa.keyword import fold, tokenize
from gcm_qa.scoring import Scored, overlap_score
from gcm_qa.settings import AnswerSettings
from gcm_qa.types import Passage

NO_ANSWER = "The documents do not answer this."


def support(best: Scored | None, passages: Sequence[Passage], settings: AnswerSettings) -> float:
    """How well the corpus supports an answer: the best sentence's cosine and word overlap, plus
    the top passage's dense similarity. Compared with ``abstain_threshold``."""
    if best is None or not passages:
        return 0.0
    dense = passages[0].dense_score or 0.0
    s = settings
    return s.support_cosine * best.cosine + s.support_overlap * best.overlap + s.support_dense * dense


def gives(wanted: AnswerType, question_tokens: Sequence[set[str]], sentences: Sequence[str],
          topic_overlap: float) -> bool:
    """Whether one of ``sentences`` holds the kind of thing asked for and is about the question:
    a figure in a sentence that shares almost no word with "How many Venezuelans registered for the
    Temporary Protection Status?" is a figure about something else. ``question_tokens``: the
    question's words in each language it is checked in (as asked, translated); one must match."""
    assert wanted.holds is not None
    return any(wanted.holds(s) and max(overlap_score(t, s) for t in question_tokens) >= topic_overlap
               for s in sentences if s)


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
    have = set(tokenize(text)) | set(YEAR.findall(text))
    out = []
    for word in [*_PROPER_NOUN.findall(question), *YEAR.findall(question)]:
        if word[0].isalpha() and (is_demonym(word) or word.lower() in COMMON_CAPS or re.fullmatch(MONTH, word)):
            continue  # a month dates the question; the year, if any, is checked on its own
        if not set(tokenize(word)) <= have and word not in out:
            out.append(word)
    return out


def unquoted_places(question: str, quoted: Sequence[Passage]) -> list[str]:
    """Countries and years the question asks about that no quoted passage names: passages naming
    Guatemala somewhere, quoted where they speak of the region, answer another question. (Other
    capitalised words are too often common nouns, "States", to demand them of the quotes.)"""
    return [t for t in unsupported_terms(question, quoted) if t.isdigit() or fold(t) in COUNTRIES]


# Places whose names end like a demonym ("-an"): they are names a passage must mention.
_PLACES_IN_AN = frozenset("iran japan oman sudan jordan bhutan taiwan azerbaijan vatican caribbean yucatan "
                          "michoacan".split())


def is_demonym(word: str) -> bool:
    """"Brazilian", "Venezuelans", "Haitian": an adjective of a place, which a passage about the place
    need not repeat; not "Pakistan", "Afghanistan" or "the Caribbean", which are the places."""
    w = fold(word)
    return w.endswith(("an", "ans")) and not w.endswith(("stan", "stans")) and w.removesuffix("s") not in _PLACES_IN_AN
