"""BM25 in each document's own language, on hand-made texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gcm_qa.keyword import KeywordIndex, tokenize
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
