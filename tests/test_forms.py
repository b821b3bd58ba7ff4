"""Questionnaire forms read into records, comparisons across authors, and coverage, on hand-made
forms (none of them is a gold question or a fixture the eval uses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcm_qa import profiles
from gcm_qa.cleaning import Paragraph, clean_pages
from gcm_qa.comparison import (
    NOTHING_FOUND,
    authors_of,
    cut_cell,
    named_authors,
    pick_authors,
    stakeholder_named,
    topic_of,
    widen,
)
from gcm_qa.coverage import heat_map, tabulate
from gcm_qa.forms import FormReading, read_form, says_nothing, split_number
from gcm_qa.structure import layout
from gcm_qa.types import DocMeta

QUESTIONNAIRE = profiles.for_document(Path("/nonexistent"), "any", "questionnaire")  # the shipped kind profile

FORM = """Cuestionario voluntario de Borduria

Área temática 2: Protección

4. ¿Existen alternativas a la detención de niñas y niños migrantes?

Sí. El Protocolo 17 de 2020 sustituye la detención por acogimiento familiar (Objetivo 13).

5. ¿Qué acceso a la salud tienen las personas migrantes?

No se dispone de información.

Área temática 4: Migración regular

6. ¿Qué vías de migración laboral existen?

El visado de temporada permite trabajar nueve meses al año.
"""


def read(text: str, min_questions: int = 3) -> FormReading:
    return read_form(layout(clean_pages([(None, text)]), QUESTIONNAIRE), QUESTIONNAIRE, min_questions)


def test_a_form_becomes_one_record_per_question_with_its_area_and_objective() -> None:
    form = read(FORM)
    assert form.detected and form.questions == 3 and form.answered == 2
    first, second, third = form.records
    assert (first.number, first.areas, first.objectives) == ("4", [2], [13])
    assert first.question.startswith("¿Existen alternativas")
    assert first.answer.startswith("Sí. El Protocolo 17 de 2020")
    assert not second.answered and second.answer == "No se dispone de información."
    assert third.areas == [4] and third.answer.startswith("El visado de temporada")


def test_record_offsets_point_at_the_answer_in_the_laid_out_text() -> None:
    doc = layout(clean_pages([(None, FORM)]), QUESTIONNAIRE)
    for record in read_form(doc, QUESTIONNAIRE).records:
        assert doc.text[record.start : record.end] == record.answer


def test_pages_of_a_paginated_form_are_kept() -> None:
    pages = [(1, "Cuestionario\n\n1. ¿Primera pregunta del formulario?\n\nRespuesta uno."),
             (2, "2. ¿Segunda pregunta del formulario?\n\nRespuesta dos.\n\n3. ¿Tercera pregunta?\n\nTres.")]
    form = read_form(layout(clean_pages(pages), QUESTIONNAIRE), QUESTIONNAIRE)
    assert [(r.number, r.page_start) for r in form.records] == [("1", 1), ("2", 2), ("3", 2)]


def test_prose_with_a_question_or_two_is_not_taken_for_a_form() -> None:
    note = ("Note on seasonal work\n\nWhy do workers return each year?\n\nBecause the harvest needs them.\n\n"
            "Wages rose by a tenth in 2020.")
    form = read(note)
    assert not form.detected and form.records == ()
    assert "no question/answer layout found (1 question)" in form.note


def test_min_questions_is_the_setting_that_decides() -> None:
    assert read(FORM, min_questions=4).detected is False
    assert read(FORM, min_questions=3).detected is True


def test_a_reading_survives_the_index_manifest() -> None:
    form = read(FORM)
    assert FormReading.from_dict(form.to_dict()) == form


@pytest.mark.parametrize(("text", "number", "question"), [
    ("3. ¿Qué medidas?", "3", "¿Qué medidas?"),
    ("Q12: What measures?", "12", "What measures?"),
    ("Pregunta 2.1. ¿Cuáles?", "2.1", "¿Cuáles?"),
    ("b) ¿Y los niños?", "b", "¿Y los niños?"),
    ("¿Sin número?", None, "¿Sin número?"),
])
def test_question_numbers(text: str, number: str | None, question: str) -> None:
    assert split_number(text) == (number, question)


@pytest.mark.parametrize("answer", ["", "N/A", "No aplica.", "Not applicable.", "No information available.",
                                    "No se cuenta con datos.", "Sin información", "—"])
def test_answers_that_say_nothing(answer: str) -> None:
    assert says_nothing(answer)


@pytest.mark.parametrize("answer", ["No. La ley lo prohíbe desde 2019.", "None of the 12 centres holds children.",
                                    "No se dispone de información desagregada, pero 400 casos fueron atendidos."])
def test_answers_that_say_something(answer: str) -> None:
    assert not says_nothing(answer)


# --- comparisons ------------------------------------------------------------------------------------

def meta(doc_id: str, author: str, stakeholder: str, kind: str = "questionnaire", language: str = "es",
         country: str | None = None) -> DocMeta:
    return DocMeta(doc_id, f"{doc_id}.txt", doc_id, kind=kind, author=author, stakeholder=stakeholder,
                   language=language, country=country or (author if stakeholder == "State" else None))


AUTHORS = authors_of([
    meta("borduria", "República de Borduria", "State", country="Borduria"),
    meta("borduria-2", "República de Borduria", "State", country="Borduria"),
    meta("syldavia", "Syldavia", "State", language="en"),
    meta("red", "Red de Acogida", "civil society", country="Syldavia"),
    meta("report", "UN Network", "intergovernmental body", kind="report", language="en"),
])


def test_an_author_with_two_documents_is_one_row() -> None:
    borduria = next(a for a in AUTHORS if a.name == "República de Borduria")
    assert borduria.doc_ids == ("borduria", "borduria-2")
    assert [a.stakeholder for a in AUTHORS] == ["State", "State", "intergovernmental body", "civil society"]


def test_authors_are_named_by_name_country_or_short_name_in_either_language() -> None:
    names = lambda q: [a.name for a in named_authors(q, AUTHORS)]  # noqa: E731
    assert names("What did Syldavia and Borduria say about detention?") == ["Syldavia", "República de Borduria"]
    assert names("¿Qué dijo la república de borduria sobre la salud?") == ["República de Borduria"]
    assert names("Which countries reported regularisation?") == []


def test_chosen_authors_match_in_part_and_unknown_names_are_returned() -> None:
    chosen, unknown = pick_authors(["borduria", "Atlantis"], AUTHORS)
    assert [a.name for a in chosen] == ["República de Borduria"] and unknown == ["Atlantis"]


@pytest.mark.parametrize(("question", "kind"), [
    ("Which countries reported regularisation programmes?", "State"),
    ("¿Qué gobiernos informaron sobre la trata?", "State"),
    ("What did civil-society organisations say about health?", "civil society"),
    ("¿Qué dijeron las organizaciones de la sociedad civil sobre la salud?", "civil society"),
    ("What was said about remittances?", None),
])
def test_the_kind_of_author_a_question_asks_about(question: str, kind: str | None) -> None:
    assert stakeholder_named(question) == kind


@pytest.mark.parametrize(("question", "topic"), [
    ("Which countries reported regularisation programmes?", "regularisation programmes"),
    ("What did Syldavia and Borduria say about the detention of children?", "the detention of children"),
    ("¿Qué dijeron Syldavia y Borduria sobre la detención de niños?", "la detención de niños"),
    ("¿Qué países informaron sobre la trata de personas?", "la trata de personas"),
    ("How do remittances reach rural households?", "How do remittances reach rural households"),
])
def test_the_topic_is_the_question_without_its_comparative_frame(question: str, topic: str) -> None:
    assert topic_of(question, named_authors(question, AUTHORS)) == topic


def test_a_cell_keeps_whole_sentences_or_cuts_at_a_clause() -> None:
    text = "First sentence is short. Second sentence is a good deal longer than the first one was."
    assert cut_cell(text, 200) == text
    assert cut_cell(text, 40) == "First sentence is short. …"
    cut = cut_cell("one, two, three, four, five, six, seven, eight, nine, ten, eleven", 30)
    assert cut.endswith(" …") and len(cut) <= 32 and not cut[:-2].endswith(",")


# --- coverage ---------------------------------------------------------------------------------------

def test_coverage_counts_answers_not_questions_and_leaves_unread_forms_blank() -> None:
    docs = [meta("borduria", "Borduria", "State"), meta("note", "Red de Acogida", "civil society"),
            meta("report", "UN Network", "intergovernmental body", kind="report")]
    forms = {"borduria": read(FORM), "note": read("Una nota sin preguntas.\n\nSolo prosa.")}
    coverage = tabulate(docs, forms)
    assert coverage.authors == ["Borduria", "Red de Acogida"]  # the report is no voluntary report
    assert coverage.counts[0] == [0, 1, 0, 1, 0]  # area 2's unanswered question is not counted
    assert coverage.counts[1] == [None] * 5 and coverage.total(1) is None
    assert coverage.unread == {"Red de Acogida": ["note.txt"]}
    lines = coverage.to_csv().splitlines()
    assert lines[1] == "Borduria,State,0,1,0,1,0,2" and lines[2] == "Red de Acogida,civil society,,,,,,"
    by_objective = tabulate(docs, forms, by="objective")
    assert by_objective.counts[0][12] == 1  # objective 13, named in the answer
    png = heat_map(coverage)
    assert png.startswith(b"\x89PNG") and len(png) > 2000


def test_nothing_found_is_said_in_words() -> None:
    assert "nothing found" in NOTHING_FOUND.lower()


def test_a_numbered_english_question_stays_under_its_thematic_area() -> None:
    form = read("Questionnaire\n\nThematic area 2: Protection\n\n1. Are migrant children detained?\n\nNo, never.\n\n"
                "2. What access to health care do migrants have?\n\nFull access.\n\n"
                "Thematic area 4: Regular pathways\n\n3. Has your country run a regularisation programme?\n\nYes.")
    assert [(r.number, r.areas) for r in form.records] == [("1", [2]), ("2", [2]), ("3", [4])]


def test_a_cell_widens_a_trimmed_quote_to_its_paragraph_when_it_fits() -> None:
    text = ("1. ¿Regularización?\n\nSe abrió una ventanilla en 2020; 9.800 permisos se emitieron el primer año. "
            "El trámite es gratuito.\n\n2. ¿Salud?\n\nAcceso pleno.")
    assert widen(text, "Se abrió una ventanilla en 2020;", 200) == (
        "Se abrió una ventanilla en 2020; 9.800 permisos se emitieron el primer año. El trámite es gratuito.")
    # too long for the cell: the quote and the sentences after it while they fit
    assert widen(text, "Se abrió una ventanilla en 2020;", 80) == (
        "Se abrió una ventanilla en 2020; 9.800 permisos se emitieron el primer año.")
    assert widen(text, "…una ventanilla en 2020;", 40) == "una ventanilla en 2020;"
    assert widen(text, "not in the text", 200) == "not in the text"


def test_a_question_run_together_with_its_answer_is_split_off() -> None:
    form = read("Questionnaire\n\nThematic area 1: Data\n\n"
                "Q1. Does your Government publish migration data? (Objective 1) The Statistical Office published "
                "a profile in 2020. Q2. Has a migration policy been adopted? Cabinet approved one in 2021.\n\n"
                "Q3. Are there data on remittances?\n\n(Objective 20) Not applicable.")
    assert [(r.number, r.answer, r.answered, r.objectives) for r in form.records] == [
        ("1", "The Statistical Office published a profile in 2020.", True, [1]),
        ("2", "Cabinet approved one in 2021.", True, []),
        ("3", "Not applicable.", False, [20]),
    ]


def test_a_form_printed_as_a_question_answer_table_is_read() -> None:
    rows = [Paragraph("Questionnaire", None), Paragraph("Thematic area 3: Borders", None),
            Paragraph("Question | Answer", None, "table"),
            Paragraph("Q1. Which body coordinates? | The Mobility Board, since 2019.", None, "table"),
            Paragraph("Q2. Are borders monitored? (Objective 11) | Not applicable.", None, "table"),
            Paragraph("Q3. Is there a trafficking law? | Yes | the 2014 Act.", None, "table"),
            Paragraph("Total | 3", None, "table")]
    form = read_form(layout(rows, QUESTIONNAIRE), QUESTIONNAIRE)
    assert [(r.number, r.answer, r.answered, r.areas) for r in form.records] == [
        ("1", "The Mobility Board, since 2019.", True, [3]),
        ("2", "Not applicable.", False, [3]),
        ("3", "Yes | the 2014 Act.\n\nTotal | 3", True, [3]),
    ]


def test_prose_asking_a_question_is_not_split() -> None:
    form = read("Note\n\nWhy do workers return? Because the harvest needs them. 1. Wages rose in 2020.")
    assert not form.detected


def test_an_organisation_is_named_by_the_words_before_its_first_preposition() -> None:
    authors = authors_of([meta("red", "Red Ciudadana por los Derechos de las Personas", "civil society"),
                          meta("forum", "Caribbean Forum on Human Mobility", "intergovernmental body"),
                          meta("net", "Migrant Rights Network", "civil society")])
    found = named_authors("What did the Red Ciudadana and the Caribbean Forum say on health?", authors)
    assert [a.name for a in found] == ["Red Ciudadana por los Derechos de las Personas",
                                       "Caribbean Forum on Human Mobility"]
    assert named_authors("What do migrant networks say?", authors) == []
    assert topic_of("What did the Red Ciudadana's monitors record at the border?", found[:1]) == (
        "What did the monitors record at the border")


def test_a_numbered_question_taken_for_a_list_item_is_split_from_its_answer() -> None:
    rows = [Paragraph("Cuestionario", 1), Paragraph("Área temática 3: Trata", 1),
            Paragraph("4. ¿Qué resultados ha tenido la lucha contra la trata? (Objetivo 10) La Fiscalía obtuvo "
                      "63 sentencias.", 1, "item"),
            Paragraph("5. ¿Hay albergues? Sí, uno.", 1, "item"), Paragraph("6. ¿Y datos? No aplica.", 1, "item")]
    form = read_form(layout(rows, QUESTIONNAIRE), QUESTIONNAIRE)
    assert [(r.number, r.answer, r.objectives) for r in form.records] == [
        ("4", "La Fiscalía obtuvo 63 sentencias.", [10]), ("5", "Sí, uno.", []), ("6", "No aplica.", [])]


@pytest.mark.parametrize(("cover", "expected"), [
    ("Cuestionario\n\nEstado que presenta el informe: República de Borduria\n\nInstitución: Ministerio del Interior",
     ("República de Borduria", "State")),
    ("Questionnaire for civil society and other stakeholders\n\nOrganisation: Harbour Aid (HA), a network of 9 groups",
     ("Harbour Aid", "civil society")),
    ("Cuestionario: procesos, plataformas y organizaciones subregionales\n\nOrganismo: Foro del Sur (FS)",
     ("Foro del Sur", "intergovernmental body")),
    ("Cuestionario\n\nInstitución: Defensoría del Pueblo de Borduria Punto focal: Abog. X Fecha: 2021",
     ("Defensoría del Pueblo de Borduria", "other")),
    ("A note on remittances\n\nRemittances rose: by a tenth in 2020.", None),
])
def test_a_forms_cover_says_who_submitted_it(cover: str, expected: tuple[str, str] | None) -> None:
    from gcm_qa.corpus import infer_meta, submitter

    assert submitter(cover) == expected
    meta = infer_meta(Path("cuestionario.txt"), cover)
    assert (meta.author, meta.stakeholder) == (expected or ("unknown", "other"))
    assert meta.country == (expected[0] if expected and expected[1] == "State" else None)


def test_a_long_question_is_recorded_whole() -> None:
    question = "7. ¿" + "Qué medidas ha adoptado su país, " * 8 + "para proteger a las personas migrantes?"
    form = read(f"Cuestionario\n\n{question}\n\nUna ley de 2020.\n\n8. ¿Otra?\n\nSí.\n\n9. ¿Y otra más?\n\nNo.")
    assert form.records[0].question == question.removeprefix("7. ") and len(form.records[0].question) > 160
