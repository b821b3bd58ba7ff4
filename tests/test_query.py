"""Query preparation: Spanish questions and conversational follow-ups."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcm_qa import profiles
from gcm_qa.engine import Engine
from gcm_qa.query import (
    areas_named,
    is_spanish,
    needs_context,
    objective_sought,
    part_asked_about,
    prepare,
    references,
    rewrite_followup,
    translate_terms,
)
from gcm_qa.types import Reference

ROOT = Path(__file__).resolve().parents[1]
R = Reference  # short, for the tables of expected references below
REPORT_PROFILE = profiles.load(ROOT / "corpus" / "profiles" / "gcm-regional-review-lac-2022.toml")

SPANISH = [
    "¿Qué es el Estatuto Temporal de Protección para venezolanos en Colombia?",
    "¿Cuántas personas participaron en el examen regional?",
    "Informe de los países sobre migración",
    "alternativas a la detención de niños migrantes",
]
ENGLISH = [
    "What is the Temporary Protection Status granted by Colombia?",
    "How many people participated in the regional review?",
    "Which countries reported alternatives to detention?",
    "Ibero-American Multilateral Convention on Social Security",
]


@pytest.mark.parametrize("question", SPANISH)
def test_spanish_is_detected(question: str) -> None:
    assert is_spanish(question)


@pytest.mark.parametrize("question", ENGLISH)
def test_english_is_not_mistaken_for_spanish(question: str) -> None:
    assert not is_spanish(question)


def test_glossary_turns_spanish_terms_into_english_search_terms() -> None:
    assert translate_terms("¿Qué es el Estatuto Temporal de Protección?").split()[1:4] == [
        "temporary",
        "protection",
        "status",
    ]
    english = translate_terms("¿Qué alternativas a la detención de niños migrantes existen?")
    assert "alternatives to detention" in english and "children" in english and "migrants" in english
    assert "¿" not in english and " la " not in f" {english} "
    # longest phrase wins: the convention is translated as one name, not word by word
    assert "ibero-american multilateral convention on social security" in translate_terms(
        "el Convenio Multilateral Iberoamericano de Seguridad Social"
    )
    # accents do not matter
    assert (
        translate_terms("detencion migratoria")
        == translate_terms("detención migratoria")
        == "migration detention"
    )


def test_prepare_keeps_the_spanish_words_for_the_keyword_search() -> None:
    q = prepare("  ¿Cuántas personas   participaron en el examen regional? ")
    assert q.spanish
    assert q.question == "¿Cuántas personas participaron en el examen regional?"
    assert "how many" in q.dense and "regional review" in q.dense
    assert q.keyword.startswith(q.dense) and q.keyword.endswith(q.question)


def test_prepare_leaves_english_alone() -> None:
    q = prepare("What is the Temporary Protection Status?")
    assert not q.spanish
    assert q.dense == q.keyword == q.question == "What is the Temporary Protection Status?"


@pytest.mark.parametrize(
    ("question", "previous", "expected"),
    [
        (
            "and what about children?",
            "What challenges did States report on detention?",
            "children: challenges did States report on detention",
        ),
        (
            "What about Mexico?",
            "Which countries created alternatives to detention?",
            "Mexico: countries created alternatives to detention",
        ),
        (
            "¿Y para los niños?",
            "¿Qué dice el informe sobre la detención?",
            "los niños: dice el informe sobre la detención",
        ),
        ("And?", "How many people participated?", "How many people participated"),
    ],
)
def test_follow_up_borrows_the_previous_subject(question: str, previous: str, expected: str) -> None:
    assert needs_context(question)
    assert rewrite_followup(question, ["An older question?", previous]) == expected


@pytest.mark.parametrize(
    "question",
    [
        "What is the Temporary Protection Status granted by Colombia in 2021?",
        "Android apps used by migrants to send remittances",
        "Which countries signed the Ibero-American Multilateral Convention on Social Security?",
    ],
)
def test_standalone_questions_are_not_rewritten(question: str) -> None:
    assert not needs_context(question)
    assert rewrite_followup(question, ["What challenges did States report on detention?"]) == question


def test_no_history_means_no_rewrite() -> None:
    assert rewrite_followup("and what about children?", []) == "and what about children?"


# --- through the engine, on the full report ----------------------------------------------------------


def test_spanish_question_finds_the_english_passage(report_engine: Engine) -> None:
    answer = report_engine.ask(
        "¿Qué decreto creó el Estatuto Temporal de Protección para venezolanos en Colombia?"
    )
    assert not answer.abstained
    assert any("Decree 216 of 2021" in p.chunk.text for p in answer.passages)


def test_spanish_question_on_social_security(report_engine: Engine) -> None:
    answer = report_engine.ask("¿Qué convenio multilateral iberoamericano de seguridad social se menciona?")
    assert any(
        "Ibero-American Multilateral Convention on Social Security" in p.chunk.text
        for p in answer.passages[:3]
    )


def test_follow_up_through_the_engine(report_engine: Engine) -> None:
    first = "What challenges did States report on migrant detention?"
    answer = report_engine.ask("and what about children?", history=[first])
    assert answer.query == "children: challenges did States report on migrant detention"
    assert answer.to_dict()["query"] == answer.query
    assert answer.passages
    assert any("detention" in p.chunk.text.lower() for p in answer.passages)
    plain = report_engine.ask(first)
    assert "query" not in plain.to_dict()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Under thematic area 4, which objective deals with remittances?", (R("thematic area", 4),)),
        ("What does Textbox 8 say, and what is in Annex 2, table 1?", (R("textbox", 8), R("annex", 2), R("table", 1))),
        ("¿Qué dice el área temática 3 sobre el objetivo 21?", (R("thematic area", 3), R("objective", 21))),
        ("How many people took part in 2021?", ()),
        ("What challenges were identified in thematic area 4?",
         (R("thematic area", 4), R("heading", name="challenges"))),
        ("¿Cuáles son los desafíos del área temática 5?", (R("thematic area", 5), R("heading", name="challenges"))),
        ("What challenges do migrants face?", ()),  # a sub-heading word counts only inside a named part
        ("What does the report recommend on data?", (R("heading", name="recommendations"),)),
        ("According to the concept note, what was the review to do?", (R("annex", 1),)),  # parts named by title
        ("What did civil society propose in its opening message?", (R("annex", 3),)),
        ("¿Qué dice el prólogo?", (R("title", name="foreword"),)),
        ("What are the conclusions of the executive summary?",
         (R("title", name="executive summary"), R("heading", name="conclusions"))),
        ("How did civil society take part?", ()),  # civil society, but not its message
        ("¿Qué concluye el informe sobre la regularización?", (R("heading", name="conclusions"),)),
        ("What did civil society recommend?", ()),  # someone else's recommendations
    ],
)
def test_numbered_parts_of_the_report_are_read_from_the_question(
    question: str, expected: tuple[Reference, ...]
) -> None:
    assert references(question, REPORT_PROFILE) == expected
    assert prepare(question, profile=REPORT_PROFILE).references == expected


def test_parts_named_by_title_and_sub_headings_come_from_the_profile() -> None:
    memo = profiles.Profile(
        parts=(profiles.PartAlias(("welcome", "letter"), "annex", 4),),
        subheadings=(profiles.Subheading("lessons", ("lessons? learned", "lecciones")),),
        report_wide=(profiles.Subheading("outlook", ("outlook",)),),
    )
    assert references("What does the welcome letter say?", memo) == (R("annex", 4),)
    assert references("What does the welcome letter say?") == ()  # without a profile, numbered parts only
    assert references("Which lessons learned does annex 2 give?", memo) == (R("annex", 2), R("heading", name="lessons"))
    assert references("Which lessons learned does annex 2 give?") == (R("annex", 2),)
    assert references("What is the outlook of the report?", memo) == (R("heading", name="outlook"),)
    # the report's sub-headings are not another document's
    assert references("What challenges were identified in thematic area 4?", memo) == (R("thematic area", 4),)


@pytest.mark.parametrize(
    ("question", "part"),
    [
        ("What is textbox 3 about?", (R("textbox", 3),)),
        ("What does Annex 2 table 1 list?", (R("annex", 2), R("table", 1))),
        ("¿De qué trata el recuadro 8?", (R("textbox", 8),)),
        ("Describe the highlights of thematic area 2", (R("thematic area", 2), R("heading", name="highlights"))),
        ("Which objective on remittances belongs to thematic area 4?", ()),  # asks for one thing in it
        ("What is objective 20 about?", (R("objective", 20),)),  # asks for its wording
        ("¿Qué dice el objetivo 23?", (R("objective", 23),)),
        ("What does graph 6 show?", (R("graph", 6),)),
        ("¿Qué muestra el gráfico 2?", (R("graph", 2),)),
        ("Which countries mentioned objective 13?", ()),  # asks about the objective, not for it
        ("What progress was made on objective 13?", ()),
    ],
)
def test_a_question_about_what_a_part_holds_is_recognised(question: str, part: tuple[Reference, ...]) -> None:
    assert part_asked_about(prepare(question, profile=REPORT_PROFILE)) == part


@pytest.mark.parametrize(
    ("question", "sought", "areas"),
    [
        ("Which GCM objective deals with migrant detention?", True, ()),
        ("Which objective on remittances belongs to thematic area 4?", True, (4,)),
        ("¿Qué objetivo trata de la trata de personas?", True, ()),
        ("Which objectives of thematic area 4 are most feasible?", False, (4,)),  # several, by a judgement
        ("What is objective 13?", False, ()),  # named by number: its wording is asked for
        ("What progress was made on detention?", False, ()),
    ],
)
def test_a_question_for_the_objective_on_a_topic_is_recognised(
    question: str, sought: bool, areas: tuple[int, ...]
) -> None:
    query = prepare(question)
    assert objective_sought(query) is sought
    assert areas_named(query) == areas


def test_the_other_language_of_a_question() -> None:
    from gcm_qa.keyword import fold
    from gcm_qa.query import other_language

    spanish = other_language("¿Qué informó el país sobre la trata de personas?")
    assert "trafficking" in spanish
    english = other_language("What did the country report on trafficking in persons?")
    assert "trata" in fold(english)
    assert other_language("Zzyzx qwerty?") == ""


@pytest.mark.parametrize("question", [
    "What did the country report on trafficking in persons?",
    "Labour migration, co-operation (with UNHCR) and return: what changed?",
    "migrant workers' rights and the smuggling of migrants",
    "Anything about remittances?",
])
def test_the_glossary_looked_up_by_first_word_finds_what_a_full_scan_finds(question: str) -> None:
    """English questions are matched only against glossary phrases whose first word they hold; the
    result must be that of trying every phrase."""
    from gcm_qa.keyword import fold
    from gcm_qa.query import other_language, reverse_glossary

    text = fold(question)
    every = " ".join(spanish for _english, pattern, spanish in reverse_glossary() if pattern.search(text))
    assert other_language(question) == every
