"""Function words per language: the one list each use reads.

Three things need to know which words carry no topic: BM25 drops them from passages and questions
(:mod:`gcm_qa.keyword`), the glossary rendering of a Spanish question drops the Spanish ones left
untranslated (:mod:`gcm_qa.query`), and language detection counts the most frequent ones
(:mod:`gcm_qa.corpus`). Each list starts with its language's most frequent words, in that order,
because detection votes with the first ``DETECTION_WORDS`` of each; the rest follow.

English and Spanish entries carry no accents: BM25 and the glossary compare accent-folded text, so
an accented entry ("cuántos") would never match. Portuguese and French serve detection only, which
reads the words as written ("não").
"""

from __future__ import annotations

ENGLISH = tuple(
    """the of and to in is that for with are on as by this
    a about above after again against all am an any at be because been before being below between
    both but can could did do does doing down during each few from further had has have having he
    her here hers herself him himself his how i if into it its itself just me more most my myself no
    nor not now off once only or other our ours ourselves out over own same she should so some such
    than their theirs them themselves then there these they those through too under until up very
    was we were what when where which while who whom why will would you your yours yourself
    yourselves also among per via within without according report""".split()
)

SPANISH = tuple(
    """el la de que y en los las del por con para una se
    a al ante bajo cabe contra desde durante entre hacia hasta mediante segun sin sobre tras lo un
    unos unas o u e ni su sus es son fue ser como mas pero cual cuales cuando donde quien quienes
    este esta estos estas ese esa esos esas le les me mi nos hay han ha""".split()
)

PORTUGUESE = ("o", "a", "de", "que", "e", "do", "da", "em", "para", "com", "não", "os", "uma", "dos")

FRENCH = ("le", "la", "de", "et", "les", "des", "en", "du", "pour", "dans", "une", "est", "que", "sur")

FUNCTION_WORDS: dict[str, tuple[str, ...]] = {"en": ENGLISH, "es": SPANISH, "pt": PORTUGUESE, "fr": FRENCH}

# How many of each language's most frequent words vote in language detection: equal counts, so a
# long list (English, Spanish) does not outvote a short one.
DETECTION_WORDS = 14


def most_frequent(language: str) -> frozenset[str]:
    """The words that vote for ``language`` when a document's language is guessed."""
    return frozenset(FUNCTION_WORDS[language][:DETECTION_WORDS])
