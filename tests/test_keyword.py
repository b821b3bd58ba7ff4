"""BM25 in each document's own language, on hand-made texts."""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import Stemmer

from gcm_qa.keyword import STOPWORDS, KeywordIndex, fold, tokenize
from gcm_qa.settings import KeywordSettings

TEXTS = [
    "El programa de regularización migratoria benefició a miles de personas.",
    "The regularisation programme benefited thousands of people.",
    "Remittances fell during the pandemic.",
]
LANGUAGES = ["es", "en", "en"]
BM25 = {"k1": KeywordSettings().k1, "b": KeywordSettings().b}


def test_spanish_text_is_stemmed_as_spanish() -> None:
    assert tokenize("regularización", "es") == tokenize("regularizar", "es")
    assert tokenize("regularización", "en") != tokenize("regularizar", "en")  # English stems miss it


def test_a_query_meets_each_document_in_its_own_language() -> None:
    index = KeywordIndex.build(TEXTS, LANGUAGES, **BM25)
    spanish = index.scores("¿Quiénes pueden regularizar su situación?")
    assert spanish[0] > 0 and spanish[1] == 0 and spanish[2] == 0
    english = index.scores("Who can regularise their status?")
    assert english[1] > 0 and english[0] == 0 and english[2] == 0


def test_numbers_and_names_match_across_languages() -> None:
    index = KeywordIndex.build(["Colombia otorgó 1.700.000 permisos.", "Colombia granted 1.700.000 permits."],
                               ["es", "en"], **BM25)
    scores = index.scores("Colombia 1.700.000")
    assert scores[0] > 0 and scores[1] > 0


def test_languages_survive_save_and_load(tmp_path: Path) -> None:
    index = KeywordIndex.build(TEXTS, LANGUAGES, **BM25)
    index.save(tmp_path)
    loaded = KeywordIndex.load(tmp_path)
    assert loaded.languages.tolist() == LANGUAGES
    query = "regularizar la situación"
    assert np.array_equal(loaded.scores(query), index.scores(query))


def test_a_language_without_a_stemmer_is_tokenised_as_english() -> None:
    index = KeywordIndex.build(["Regularisation programmes."], ["qu"], **BM25)
    assert index.languages.tolist() == ["en"]
    assert index.scores("regularise")[0] > 0


def _old_fold(text: str) -> str:
    """``fold`` as it was first written: one generator step per character."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


FOLD_CASES = [
    "",
    "Migración",
    "MIGRACIÓN irregular en Perú, Panamá y Ecuador",
    "ﬁnancial ﬂows",  # ligatures
    "e\u0301xodo",  # an accent as a combining character of its own
    "“Smart quotes” — dashes – and ‘apostrophes’",
    "59.5 %, 73/195, 1.700.000 permisos",
    "no\u00a0break\u2009thin\u202fspace",
    "１２３ ＡＢＣ",  # full-width
    "x² H₂O ½ ⅓ Ⅻ №",
    "İstanbul ǅ ß ẞ ﬀ",
    "Tiếng Việt có dấu",
    "Привет, йод, ёлка",
    "Ἀθῆναι ΣΊΣΥΦΟΣ",
    "مُحَمَّد",
    "हिन्दी",
    "한국어 조선말",
    "日本語のテキスト",
    "emoji 👩🏽‍⚕️ and flags 🇨🇴",
    "music \U0001d165\U0001d166 marks",
    "a\u0308\u0304 stacked\u0323\u0302",
    "Ω Å K",  # ohm, angstrom and kelvin signs
    "\ufeffzero\u200bwidth\u200djoin",
]


_OLD_STEMMERS = {"en": Stemmer.Stemmer("english"), "es": Stemmer.Stemmer("spanish")}


def _old_tokenize(text: str, language: str = "en") -> list[str]:
    """``tokenize`` as it was first written (with the first ``fold``)."""
    tokens: list[str] = []
    stem = _OLD_STEMMERS[language].stemWord
    for tok in re.findall(r"\d+(?:[.,/]\d+)*|[a-z]+(?:'[a-z]+)?", _old_fold(text)):
        if tok[0].isdigit():
            tokens.append(tok.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", tok) else tok)
        elif tok not in STOPWORDS and len(tok) >= 2:
            tokens.append(stem(tok))
    return tokens


@pytest.mark.parametrize("text", FOLD_CASES)
def test_fold_matches_its_first_definition(text: str) -> None:
    assert fold(text) == _old_fold(text)


@pytest.mark.parametrize("text", [*FOLD_CASES, "Cifras: 1,700,000 y 59.5 % (73/195)", "digits ٣٤٥ and १२ and ３",
                                  "Migrant's rights, l'état", "año 2021: 4,100 food parcels"])
@pytest.mark.parametrize("language", ["en", "es"])
def test_tokenize_matches_its_first_definition(text: str, language: str) -> None:
    assert tokenize(text, language) == _old_tokenize(text, language)


def test_fold_keeps_accented_latin_behaviour() -> None:
    assert fold("Migración") == "migracion"
    assert fold("ﬁnanciación") == "financiacion"
    assert tokenize("Migración") == tokenize("migracion")


def test_fold_matches_its_first_definition_on_random_text() -> None:
    rng = random.Random(7)
    # ASCII, Latin with accents, combining marks, symbols, CJK, astral planes, other scripts' digits
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x52F), (0x1E00, 0x1FFF), (0x2000, 0x22FF),
              (0x3000, 0x30FF), (0xAC00, 0xAC40), (0xFB00, 0xFB06), (0xFF00, 0xFFEF), (0x1D100, 0x1D1FF),
              (0x660, 0x669), (0x966, 0x96F), (0x30, 0x39)]
    for _ in range(300):
        chars = []
        for _ in range(rng.randint(1, 40)):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randint(lo, hi)))
        text = "".join(chars)
        assert fold(text) == _old_fold(text), repr(text)
        assert tokenize(text, "es") == _old_tokenize(text, "es"), repr(text)


def test_fold_and_tokenize_match_their_first_definitions_on_the_report() -> None:
    report = Path(__file__).resolve().parents[1] / "corpus" / "gcm-regional-review-lac-2022.txt"
    for paragraph in report.read_text(encoding="utf-8").split("\n\n"):
        assert fold(paragraph) == _old_fold(paragraph)
        assert tokenize(paragraph) == _old_tokenize(paragraph)
