"""The default encoder answers across languages: English questions about a Spanish questionnaire,
Spanish questions about an English document. Uses EmbeddingGemma as installed by 'make models'
(the user's model cache), on invented documents (tests/fixtures/questionnaires/README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gcm_qa.engine import Engine
from gcm_qa.models import PACKAGED, location
from gcm_qa.settings import DEFAULT_MODEL, Settings

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "questionnaires" / "forms"
SPANISH = "ejemplaria-cuestionario-es.txt"
ENGLISH = "caribbean-labour-note-en.txt"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    cache = Settings().paths.cache_dir
    default = PACKAGED[DEFAULT_MODEL.removeprefix("packaged:")]
    if location(default, cache) is None:
        pytest.fail(f"{default.title} is not installed in {cache}: run 'make models'")
    root = tmp_path_factory.mktemp("multilingual")
    (root / "corpus").mkdir()
    for name in (SPANISH, ENGLISH):
        shutil.copy(FIXTURES / name, root / "corpus" / name)
    settings = Settings.model_validate({
        "paths": {"corpus_dir": root / "corpus", "index_dir": root / "index", "cache_dir": cache,
                  "vectors_dir": root / "vectors"},
        "embedding": {"model": DEFAULT_MODEL},
    })
    engine = Engine(settings)
    assert engine.notices == []
    engine.build()
    return engine


def _cited_files(engine: Engine, answer) -> set[str]:
    docs = engine.index.manifest["documents"]
    return {docs[c.doc_id]["file"] for c in answer.citations}


def test_documents_keep_their_language(engine: Engine) -> None:
    languages = {d["file"]: d["meta"]["language"] for d in engine.index.manifest["documents"].values()}
    assert languages == {SPANISH: "es", ENGLISH: "en"}


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("How many migrants were regularised in Ejemplaria in 2021?", "48.300"),
        ("Is the detention of migrant children allowed in Ejemplaria?", "prohíbe la detención"),
        ("How long do public universities take to recognise foreign degrees?", "noventa días"),
    ],
)
def test_an_english_question_is_answered_from_a_spanish_passage(engine: Engine, question: str, fact: str) -> None:
    answer = engine.ask(question)
    assert not answer.abstained
    assert fact in answer.answer
    assert _cited_files(engine, answer) == {SPANISH}


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("¿Cuántos permisos de trabajo de temporada se otorgaron en 2020?", "12,500"),
        ("¿En qué gastan las familias el dinero que envían los trabajadores?", "school fees"),
    ],
)
def test_a_spanish_question_is_answered_from_an_english_passage(engine: Engine, question: str, fact: str) -> None:
    answer = engine.ask(question)
    assert not answer.abstained
    assert fact in answer.answer
    assert _cited_files(engine, answer) == {ENGLISH}


def test_an_off_topic_question_is_declined_in_either_language(engine: Engine) -> None:
    assert engine.ask("What is the recipe for paella?").abstained
    assert engine.ask("¿Quién ganó el mundial de fútbol de 2018?").abstained
