"""The answerer: what a question asks for, how sentences become an answer, and when it refuses."""

from __future__ import annotations

import re

import pytest

from gcm_qa.abstention import gives, is_demonym, unsupported_terms
from gcm_qa.engine import Engine
from gcm_qa.intent import AnswerType, has_count, has_quantity, new_names, read
from gcm_qa.keyword import tokenize
from gcm_qa.lists import list_intro
from gcm_qa.quotes import quotable
from gcm_qa.sentences import split_sentences
from gcm_qa.types import Chunk, Passage


@pytest.mark.parametrize(
    "text",
    [
        "936 people, from 50 countries, took part.",
        "involving a total investment of 45 billion dollars over five years",
        "over 56% of Venezuelans who are in Colombia have an irregular status",
        "Emigrants number nearly 43 million.",
        "In all, 5 Mayors attended the forum.",  # "Mayors" is no month: 5 is a count
        "the dismay 5 families felt",
    ],
)
def test_counts_and_amounts_are_quantities(text: str) -> None:
    assert has_quantity(text)


@pytest.mark.parametrize(
    "text",
    [
        "Venezuelans proving that they were in Colombia as at January 31, 2021;",
        "those who avail themselves of this measure will have a 10-year term to obtain a resident visa",
        "as set out in objective 23 and in textbox 8 (see Annex 2, table 1)",
        "1. Collect and utilize accurate and disaggregated data",
        "Ecuador's humanitarian one for Venezuelans, with a budget that increased every year",
        "The forum was held on 5 May in Lima.",
        "as provided by Decree 216 of the Ministry",
    ],
)
def test_dates_references_enumerators_and_modifiers_are_not_quantities(text: str) -> None:
    assert not has_quantity(text)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many people took part in the meeting?", "a figure"),
        ("¿Cuántos países enviaron informes?", "a figure"),
        ("What share of emigrants live in North America?", "a percentage"),
        ("When was the review originally scheduled?", "a date"),
        ("In what year was the convention adopted?", "a date"),
        ("Who adopted the Regional Framework Law on Migration?", "a name"),
    ],
)
def test_intent_reads_the_kind_of_answer(question: str, kind: str) -> None:
    wanted = read(question).main
    assert wanted is not None and wanted.name == kind


def test_when_inside_a_clause_is_not_a_date_question() -> None:
    question = "Which agreements give consular help when a national's own country has no consulate?"
    assert read(question).main is None


def test_a_figure_question_the_report_cannot_answer_abstains(report_engine: Engine) -> None:
    # the report says São Paulo's reception budget rose every year, but never gives a figure
    answer = report_engine.ask("How much does the São Paulo municipality spend each year on migrant reception centres?")
    assert answer.abstained and answer.citations == []
    assert "gives a figure" in answer.answer


def test_a_figure_question_the_report_answers_gets_its_figure(report_engine: Engine) -> None:
    answer = report_engine.ask("How many people took part in the Regional Review meeting in April 2021?")
    assert not answer.abstained
    assert "936" in answer.answer


def test_a_list_intro_cut_off_from_its_items_is_quoted_with_the_items_of_the_next_chunk(report_engine: Engine) -> None:
    # the concept note's "In Latin America and the Caribbean, the Regional Review will:" ends a chunk;
    # quoted without the items that follow it in the next chunk it would say nothing
    answer = report_engine.ask(
        "What will the Regional Review in Latin America and the Caribbean do, per the concept note?"
    )
    assert "the Regional Review will: [1] Allow governments and stakeholders to make the first" in answer.answer
    intro, items = answer.citations[:2]
    assert intro.quote.endswith("the Regional Review will:")
    assert items.quote.startswith("1. Allow governments and stakeholders to make the first assessment")
    assert intro.chunk_id != items.chunk_id


def test_a_footnote_is_quoted_without_the_cleaners_note_label(report_engine: Engine) -> None:
    answer = report_engine.ask("Which countries in the region have ratified ILO Convention 190?")
    assert "Argentina, Ecuador and Uruguay" in answer.answer
    assert "[Note" not in answer.answer
    # the citation quotes the passage exactly, label included, so it can be found in the source
    assert any("190, on violence in the world of work" in c.quote for c in answer.citations)


def test_what_a_textbox_is_about_is_answered_by_its_opening(report_engine: Engine) -> None:
    answer = report_engine.ask("What is textbox 3 about?")
    assert not answer.abstained
    assert answer.answer.startswith("Textbox 3. Comprehensive Development Plan for El Salvador, Guatemala, Honduras")
    (citation,) = answer.citations
    assert "Textbox 3" in citation.section
    assert citation.quote in answer.passages[0].chunk.text
    assert answer.passages[0].rank == 1 and answer.passages[0].chunk.chunk_id == citation.chunk_id


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("International emigrants from the region, by sex, according to destination, 2020", False),  # caption
        ("Colombian Migration Office, 2021", False),  # source line
        ("Percentage share of immigrants and emigrants, with respect to the population, by subregions, 2020.", False),
        ("Textbox 3.", False),  # a label cut off from its title
        ("In the total emigrant population, there is a ratio of 93.3 men every 100 women.", True),
        ("Without official delegation | Australia, Barbados, Brazil | 16", True),  # a table row
    ],
)
def test_captions_source_lines_and_bare_labels_are_not_quoted(text: str, ok: bool) -> None:
    from gcm_qa.answering import quotable

    assert quotable(text, ["1. Migration in Latin America and the Caribbean"]) is ok


def test_a_sub_heading_of_a_named_area_is_answered_from_it(report_engine: Engine) -> None:
    # generic wording scores weakly against any one sentence; the named part keeps it on topic
    answer = report_engine.ask("What challenges were identified in thematic area 4?")
    assert not answer.abstained
    assert answer.citations and all("2.4.3 Challenges" in c.section for c in answer.citations)


def test_a_heading_named_in_the_question_counts_as_mentioned(report_engine: Engine) -> None:
    answer = report_engine.ask("What did the Foreword say about participation?")
    assert not answer.abstained
    assert any(c.section == "Foreword" for c in answer.citations)


def test_a_table_asked_about_is_shown_from_its_caption_on(report_engine: Engine) -> None:
    answer = report_engine.ask("What does Annex 2 table 1 list?")
    assert answer.answer.startswith("Table 1. Voluntary reports submitted")
    assert "Argentina, Plurinational State of Bolivia" in answer.answer
    assert "Annex 2" in answer.citations[0].section and "Table 1" in answer.citations[0].section


def test_an_objective_asked_for_is_quoted_in_the_reports_own_wording(report_engine: Engine) -> None:
    wording = "13. Use migration detention only as a measure of last resort and work towards alternatives."
    answer = report_engine.ask("What is GCM objective 13?")
    assert not answer.abstained
    assert wording in answer.answer
    (citation,) = answer.citations
    assert citation.quote.endswith(wording)


@pytest.mark.parametrize(
    ("question", "wording"),
    [
        ("Which GCM objective deals with migrant detention?", "13. Use migration detention only as a measure"),
        ("Which objective on remittances belongs to thematic area 4?", "20. Promote faster, safer and cheaper"),
        ("What objective covers the portability of social security?", "22. Establish mechanisms for the portability"),
        ("¿Qué objetivo trata de la trata de personas?", "10. Prevent, combat and eradicate trafficking"),
    ],
)
def test_an_objective_asked_for_by_topic_is_quoted_from_a_list_of_objectives(
    report_engine: Engine, question: str, wording: str
) -> None:
    answer = report_engine.ask(question)
    assert answer.answer.startswith(wording)
    (citation,) = answer.citations
    assert wording in citation.quote


def test_a_question_on_objectives_that_no_title_answers_is_answered_from_the_text(report_engine: Engine) -> None:
    answer = report_engine.ask("Which objective is the most advanced in the region?")
    assert not re.match(r"\d{1,2}\. ", answer.answer)


def test_a_graph_asked_about_is_shown_from_its_caption(report_engine: Engine) -> None:
    answer = report_engine.ask("What does graph 6 show?")
    assert answer.answer.startswith("Graph 6. Percentage share of immigrants and emigrants")
    assert answer.citations[0].quote.startswith("Graph 6.")


def test_what_the_report_recommends_comes_from_its_recommendations(report_engine: Engine) -> None:
    answer = report_engine.ask("What does the report recommend for a future regional review?")
    assert not answer.abstained
    assert answer.citations and all("4.2 Recommendations" in c.section for c in answer.citations)


def asks(question: str) -> list[AnswerType]:
    return list(read(question).asks)


def test_a_two_part_question_asks_for_two_kinds_of_thing() -> None:
    wanted = [t.name for t in asks("When did the floods strike the coast and how many families did they displace?")]
    assert wanted == ["a figure", "a date"]
    assert [t.name for t in asks("Who organised the meeting?")] == ["a name"]
    assert asks("Why is data scarce?") == []


LIST = """The status has these features:
- It is temporary.
- It is addressed to:
- Migrants with a regular status;
- Asylum seekers;
- Migrants with an irregular status.
After the list comes prose."""


def test_a_list_item_knows_the_intro_it_belongs_to() -> None:
    sentences = split_sentences(LIST)
    by_text = {s.text: s for s in sentences}
    assert list_intro(by_text["- Asylum seekers;"], sentences) == by_text["- It is addressed to:"]
    # an item of the outer list belongs to the first intro
    assert list_intro(by_text["- It is temporary."], sentences) == by_text["The status has these features:"]
    assert list_intro(by_text["After the list comes prose."], sentences) is None  # not an item


def test_a_short_list_is_shown_whole_when_one_of_its_items_leads(report_engine: Engine) -> None:
    answer = report_engine.ask("Who is Colombia's Temporary Protection Status for Venezuelans addressed to?")
    assert answer.answer.startswith("It is addressed to: Venezuelan migrants who are in Colombia with a regular")
    assert "Asylum seekers" in answer.answer


def test_a_part_named_by_title_is_shown_from_its_first_text(report_engine: Engine) -> None:
    answer = report_engine.ask("What does the foreword say?")
    assert answer.answer.startswith("In the context of the structural inequalities characterising it")
    assert answer.citations[0].section == "Foreword"


def test_a_name_question_is_answered_only_by_a_name_it_does_not_hold() -> None:
    asked = {"who", "won", "south", "american", "migration", "journalism", "award"}
    # the sentence names the award the question names (and "America", in "American"): no answer
    assert new_names("Training for journalists all over South America and the South American Migration "
                     "Journalism Award. [1]", asked) == []
    assert new_names("The award went to the Colectivo Migrante in June. [1]", asked) == ["Colectivo", "Migrante"]
    assert new_names("IOM and ECLAC co-organised it. [1]", {"who", "organis"}) == ["ECLAC"]  # IOM opens it
    assert read("Which national parliaments adopted the law?").main.name == "a name"
    assert read("¿Qué países ratificaron el convenio?").main.name == "a name"
    assert read("The report mentions political differences. Which countries were involved?").main.name == "a name"


def test_the_kind_of_thing_asked_for_must_come_in_a_sentence_about_the_question() -> None:
    question = "Who won the South American Migration Journalism Award?"
    wanted = read(question).main
    assert wanted is not None
    asked = set(tokenize(question))
    on_topic = ["The South American Migration Journalism Award went to Colectivo Migrante."]
    beside = ["The initiative of the Award was praised.", "Other efforts were made by IOM."]
    assert gives(wanted, [asked], on_topic, topic_overlap=0.2)
    # IOM is a new name, but in a sentence about something else
    assert not gives(wanted, [asked], beside, topic_overlap=0.2)


def test_a_question_has_a_form() -> None:
    assert read("Why do people leave the islands?").form == "reason"
    assert read("How did the ministry respond to the floods?").form == "manner"
    assert read("How many boats arrived?").form == "fact"
    assert read("Which measures did the ministry take?").form == "list"


def test_a_why_question_asks_for_a_reason_even_when_it_mentions_numbers() -> None:
    assert asks("Why are border crossing counts a weak measure of how many migrants there are?") == []
    assert asks("Is it hard to know how many migrants there are?") == []
    assert read("How many migrants are there, and why?").main.name == "a figure"


def test_a_reference_standing_alone_is_not_quoted() -> None:
    assert not quotable("(IDB, 2021:9).", [])
    assert not quotable("(UNDESA, 2019)", [])
    assert quotable("The IDB proposal (IDB, 2021:9) has two tools.", [])


def test_a_spanish_question_is_checked_for_topic_against_its_english_terms(report_engine: Engine) -> None:
    # the Spanish words of the question never occur in the English report: counted in, they would
    # halve every sentence's share of the question's words and refuse a sentence that answers it
    answer = report_engine.ask("¿Qué porcentaje de los emigrantes vive en América del Norte?")
    assert not answer.abstained
    assert "%" in answer.answer


def test_a_text_export_without_page_breaks_is_cited_by_the_pages_its_contents_give(report_engine: Engine) -> None:
    answer = report_engine.ask("When was the Global Compact adopted?")
    (citation,) = answer.citations
    assert citation.section == "Introduction"
    assert citation.page == "14-16"  # "Introduction 14", "1. Migration in Latin America… 16"
    assert citation.page_reference == "pp. 14-16"


def test_an_answer_that_opens_with_a_heading_goes_on_to_the_text_under_it(report_engine: Engine) -> None:
    answer = report_engine.ask("What is GlobalMx?")
    heading = "Experience of the dissemination of diasporic knowledge of GlobalMx"
    assert answer.answer.startswith(heading)
    assert len(answer.answer) > len(heading) + 40  # a sentence of the textbox follows


def test_a_list_cut_by_a_chunk_boundary_after_its_intro_is_read_on_in_the_next_chunk(report_engine: Engine) -> None:
    answer = report_engine.ask("What setbacks to the human rights of migrants were seen?")
    assert "setbacks to the human rights of migrants, among them: [1]" in answer.answer
    assert "Xenophobia waves significantly affecting underage populations" in answer.answer  # an item
    first, second = answer.citations[:2]
    assert first.chunk_id != second.chunk_id  # each part quoted from the chunk that holds it
    shown = {p.chunk.chunk_id: p.chunk.text for p in answer.passages}
    assert second.quote in shown[second.chunk_id]  # the next chunk is among the passages shown


def test_a_share_is_not_a_count() -> None:
    assert has_count("Some 1,200 families were resettled.")
    assert not has_count("Over 56% of the families were resettled.")
    assert has_quantity("Over 56% of the families were resettled.")  # it is still an amount ("how much")


@pytest.mark.parametrize("word", ["Brazilian", "Venezuelans", "Haitian", "Mexican"])
def test_demonyms_need_not_be_repeated(word: str) -> None:
    assert is_demonym(word)


@pytest.mark.parametrize("word", ["Pakistan", "Afghanistan", "Caribbean", "Iran", "Japan"])
def test_places_ending_like_demonyms_are_names(word: str) -> None:
    assert not is_demonym(word)


def _passage(text: str, section: str = "Migration in the region") -> Passage:
    chunk = Chunk(chunk_id="d:0", doc_id="d", title="A report", kind="report", author="", language="en",
                  stakeholder="", section=[section], page_start=None, page_end=None, start=0, end=len(text),
                  text=text)
    return Passage(chunk=chunk, score=1.0, rank=1)


def test_a_place_or_year_asked_about_must_be_in_the_passages() -> None:
    passages = [_passage("Remittances to the region grew by 8% in 2021, and migrants from Haiti and Brazil sent most.")]
    assert unsupported_terms("How much did Pakistan receive in remittances in 2021?", passages) == ["Pakistan"]
    assert unsupported_terms("How much did Haiti receive in remittances in 2019?", passages) == ["2019"]
    assert unsupported_terms("Which Brazilian city received most remittances in 2021?", passages) == []
    # a heading counts as mentioning its subject
    assert unsupported_terms("What did Chile report in 2021?", [_passage("It grew in 2021.", "Chile")]) == []


def test_a_figure_in_the_other_language_is_on_topic_through_the_translated_question() -> None:
    question = "How many victims of trafficking were identified?"
    wanted = read(question).main
    assert wanted is not None
    spanish = ["En 2020 se identificaron 214 víctimas de trata de personas."]
    assert not gives(wanted, [set(tokenize(question))], spanish, topic_overlap=0.2)
    translated = set(tokenize("víctimas trata de personas identificadas"))
    assert gives(wanted, [set(tokenize(question)), translated], spanish, topic_overlap=0.2)
