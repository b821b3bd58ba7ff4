"""BM25 in each document's own language, on hand-made texts."""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import bm25s
import numpy as np
import pytest
import Stemmer

from gcm_qa.keyword import STOPWORDS, KeywordIndex, TermCounts, Vocabulary, fold, tokenize
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


def test_term_counts_survive_save_and_load(tmp_path: Path) -> None:
    counts = TermCounts.count(TEXTS, LANGUAGES)
    counts.save(tmp_path / "terms.npz")
    loaded = TermCounts.load(tmp_path / "terms.npz")
    assert loaded.languages.tolist() == LANGUAGES
    for name in ("vocab", "indptr", "ids", "counts"):
        assert np.array_equal(getattr(loaded, name), getattr(counts, name))


def test_term_counts_that_do_not_fit_together_are_refused(tmp_path: Path) -> None:
    counts = TermCounts.count(TEXTS, LANGUAGES)
    bad = TermCounts(counts.vocab[:2], counts.indptr, counts.ids, counts.counts, counts.languages)
    bad.save(tmp_path / "terms.npz")
    with pytest.raises(ValueError, match="do not fit together"):
        TermCounts.load(tmp_path / "terms.npz")


CORPUS = [
    ("The regularisation programme benefited thousands of people, people and more people.", "en"),
    ("Remittances fell during the pandemic and recovered in 2021.", "en"),
    ("", "en"),  # no token: counted as one placeholder, as bm25s does
    ("the of and to", "en"),  # stop words only
    ("Migrants, migrants: regularisation of 2,000 migrants in 2020.", "en"),
    ("Pandemic measures on remittances: remittances, remittances.", "en"),
    ("Consular protection for people in transit.", "en"),
]
QUERIES = ["regularisation people people", "migrants 2020", "pandemic remittances", "consular transit people",
           "nothing matches here"]


@pytest.mark.parametrize("k1,b", [(1.5, 0.75), (0.9, 0.4), (2.0, 1.0)])
def test_scores_equal_bm25s_on_the_same_tokens(k1: float, b: float) -> None:
    """The index scores with bm25s's default formula ('lucene'), repeated query terms included."""
    texts, languages = zip(*CORPUS, strict=True)
    ours = KeywordIndex.build(texts, languages, k1=k1, b=b)
    reference = bm25s.BM25(k1=k1, b=b)
    reference.index([tokenize(t) or ["∅"] for t in texts], show_progress=False)
    for query in QUERIES:
        known = [t for t in tokenize(query) if t in reference.vocab_dict]
        expected = reference.get_scores(known) if known else np.zeros(len(texts))
        np.testing.assert_allclose(ours.scores(query), expected, rtol=1e-5, atol=1e-6)


def test_documents_joined_score_as_one_index_of_all_their_texts() -> None:
    """Each document keeps its own counts; joined, IDF and average length are the whole corpus's,
    whichever documents were mapped into the vocabulary first or joined before."""
    texts, languages = zip(*CORPUS, strict=True)
    whole = KeywordIndex.build(texts, languages, **BM25)
    parts = [TermCounts.count(texts[:2], languages[:2]), TermCounts.count(texts[2:5], languages[2:5]),
             TermCounts.count(texts[5:], languages[5:])]
    vocabulary = Vocabulary()
    vocabulary.columns(TermCounts.count(["unrelated words first, elsewhere"], ["en"]).vocab)
    earlier = KeywordIndex([(parts[2], vocabulary.columns(parts[2].vocab))], vocabulary, **BM25)
    joined = KeywordIndex([(p, vocabulary.columns(p.vocab)) for p in parts], vocabulary, **BM25)
    for query in QUERIES:
        np.testing.assert_allclose(joined.scores(query), whole.scores(query), rtol=1e-6)
    assert earlier.rows == 2 and joined.rows == len(texts)


def test_a_term_keeps_its_column_as_the_vocabulary_grows() -> None:
    vocabulary = Vocabulary()
    first = vocabulary.columns(np.array(["migrant", "remitt"]))
    second = vocabulary.columns(np.array(["remitt", "consular", "migrant"]))
    assert first.tolist() == [0, 1] and second.tolist() == [1, 2, 0]


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
