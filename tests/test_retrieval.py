"""Hybrid retrieval, filters, de-duplication and abstention on the full report."""

from __future__ import annotations

import numpy as np
import pytest

from gcm_qa.engine import Engine, QuestionError
from gcm_qa.retrieval import Filters, Retriever, refers_to
from gcm_qa.types import Passage, Reference

KNOWN = [
    (
        "What decree created the Temporary Protection Status for Venezuelans in Colombia?",
        "Decree 216 of 2021",
    ),
    (
        "How many people participated in the Regional Review meeting held from April 26 to 28, 2021?",
        "936 people",
    ),
    (
        "What is the sex ratio of the emigrant population from Latin America and the Caribbean?",
        "93.3 men every 100 women",
    ),
    (
        "Which multilateral convention on social security did countries mention?",
        "Ibero-American Multilateral Convention on Social Security",
    ),
    ("How many Venezuelans in Colombia have an irregular status?", "over 56% of Venezuelans"),
    ("What demands did the Bloque Latinoamericano raise?", "Non-regression in the migration policy"),
]
OFF_TOPIC = [
    "What is the capital of France?",
    "Who won the 2018 football World Cup?",
    "How do I bake sourdough bread at home?",
]


def ranks_of(passages: list[Passage], needle: str) -> list[int]:
    return [p.rank for p in passages if needle in p.chunk.text]


@pytest.mark.parametrize(("question", "needle"), KNOWN)
def test_known_passage_is_in_the_top_five(report_engine: Engine, question: str, needle: str) -> None:
    answer = report_engine.ask(question, top_k=5)
    assert len(answer.passages) == 5
    assert [p.rank for p in answer.passages] == [1, 2, 3, 4, 5]
    assert ranks_of(answer.passages, needle), [p.chunk.text[:80] for p in answer.passages]
    assert not answer.abstained


def test_scores_are_sorted_and_both_retrievers_contribute(report_engine: Engine) -> None:
    passages = report_engine.ask("Temporary Protection Status Decree 216", top_k=10).passages
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert any(p.bm25_score for p in passages) and any(p.dense_score for p in passages)


def test_exact_number_is_found_by_keyword(report_engine: Engine) -> None:
    passages = report_engine.ask("129.3 male immigrants", top_k=5).passages
    assert ranks_of(passages, "129.3 male immigrants")[:1] == [1]


def test_top_k_is_respected(report_engine: Engine) -> None:
    assert len(report_engine.ask("border management", top_k=2).passages) == 2
    assert len(report_engine.ask("border management", top_k=12).passages) == 12


# --- filters -------------------------------------------------------------------------------------------


def test_kind_filter(report_engine: Engine) -> None:
    question = "What did countries report about regularisation?"
    assert all(
        p.chunk.kind == "report"
        for p in report_engine.ask(question, filters=Filters(kind=("report",))).passages
    )
    answer = report_engine.ask(question, filters=Filters(kind=("questionnaire",)))
    assert answer.passages == [] and answer.abstained and answer.citations == []


def test_section_filter(report_engine: Engine) -> None:
    passages = report_engine.ask(
        "What challenges exist in border management?", top_k=8, filters=Filters(section="2.3 Thematic area 3")
    ).passages
    assert len(passages) == 8
    assert all("2.3 Thematic area 3" in p.chunk.section_label for p in passages)
    assert report_engine.ask("detention", filters=Filters(section="no such section")).passages == []


def test_area_filter(report_engine: Engine) -> None:
    unfiltered = report_engine.ask("alternatives to detention of children", top_k=10).passages
    passages = report_engine.ask(
        "alternatives to detention of children", top_k=10, filters=Filters(areas=(5,))
    ).passages
    assert passages and all(5 in p.chunk.areas for p in passages)
    assert {p.chunk.chunk_id for p in passages} != {p.chunk.chunk_id for p in unfiltered}


def test_objective_filter(report_engine: Engine) -> None:
    passages = report_engine.ask(
        "What did participants say?", top_k=10, filters=Filters(objectives=(13,))
    ).passages
    assert passages and all(13 in p.chunk.objectives for p in passages)
    assert any("detention" in p.chunk.text.lower() for p in passages)


def test_filters_combine(report_engine: Engine) -> None:
    f = Filters(kind=("report",), areas=(4,), section="Textbox 8")
    passages = report_engine.ask("temporary protection for Venezuelans", top_k=5, filters=f).passages
    assert passages
    for p in passages:
        assert p.chunk.kind == "report" and 4 in p.chunk.areas and "Textbox 8" in p.chunk.section_label


def test_author_and_language_filters(report_engine: Engine) -> None:
    author = "United Nations Network on Migration (IOM and ECLAC)"
    assert report_engine.ask("regularisation", filters=Filters(author=(author.upper(),))).passages
    assert report_engine.ask("regularisation", filters=Filters(author=("Mexico",))).passages == []
    assert report_engine.ask("regularisation", filters=Filters(language=("es",))).passages == []


# --- near-duplicates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "What decree created the Temporary Protection Status for Venezuelans in Colombia?",
        "What challenges exist in border management?",
        "What did countries report about migrant detention?",
        "Ibero-American Multilateral Convention on Social Security",
    ],
)
def test_no_two_passages_mostly_overlap(report_engine: Engine, question: str) -> None:
    passages = report_engine.ask(question, top_k=10).passages
    assert len({p.chunk.chunk_id for p in passages}) == len(passages)
    for i, a in enumerate(passages):
        for b in passages[i + 1 :]:
            if a.chunk.doc_id != b.chunk.doc_id:
                continue
            overlap = min(a.chunk.end, b.chunk.end) - max(a.chunk.start, b.chunk.start)
            shorter = min(a.chunk.end - a.chunk.start, b.chunk.end - b.chunk.start)
            assert overlap <= 0.6 * shorter, (a.chunk.chunk_id, b.chunk.chunk_id)


def test_neighbouring_chunks_that_embed_alike_are_both_kept(report_engine: Engine) -> None:
    """Within one document only overlapping text is a duplicate: two chunks under one heading embed
    alike (their text opens with the same heading) and still say different things."""
    ix = report_engine.index
    retriever = Retriever(ix, report_engine.embedder, report_engine.settings.retrieval)
    alike = [
        i for i in range(len(ix.chunks) - 1)
        if ix.chunks[i].doc_id == ix.chunks[i + 1].doc_id and ix.chunks[i].end <= ix.chunks[i + 1].start
        and float(ix.embeddings[i] @ ix.embeddings[i + 1]) >= report_engine.settings.retrieval.dedup_threshold
    ]
    assert alike, "the report has neighbouring chunks this similar: the test must exercise them"
    for i in alike:
        assert not retriever._duplicate(i + 1, [i])
    passages = report_engine.ask("Should deportation be how migrants are normally returned?", top_k=10).passages
    assert any("preferable option to deportation" in p.chunk.text for p in passages[:5])


def test_the_same_text_in_two_documents_collapses(make_engine, tmp_path) -> None:
    paragraph = (
        "The national migration office opened twelve one-stop centres in border provinces, where migrants "
        "can regularise their status, register for health insurance and enrol their children in school "
        "on the same day."
    )
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "informe-a.txt").write_text(f"Informe A\n\n{paragraph}\n", encoding="utf-8")
    (corpus / "informe-b.txt").write_text(f"Informe B\n\n{paragraph}\n", encoding="utf-8")
    (corpus / "informe-c.txt").write_text(
        "Informe C\n\nThe ministry of labour signed agreements on seasonal agricultural work.\n", encoding="utf-8"
    )
    engine = make_engine()
    engine.build()
    passages = engine.ask("Where can migrants regularise their status and enrol children in school?").passages
    assert len([p for p in passages if "one-stop centres" in p.chunk.text]) == 1


# --- answers and abstention ---------------------------------------------------------------------------


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_question_abstains(report_engine: Engine, question: str) -> None:
    answer = report_engine.ask(question)
    assert answer.abstained
    assert answer.citations == []
    assert "do not answer" in answer.answer
    assert not any(ch.isdigit() for ch in answer.answer)


def test_answer_quotes_the_number_and_cites_it(report_engine: Engine) -> None:
    answer = report_engine.ask(
        "What is the sex ratio of the emigrant population from Latin America and the Caribbean?"
    )
    assert not answer.abstained
    assert "93.3 men every 100 women" in answer.answer
    assert any("93.3 men every 100 women" in c.quote for c in answer.citations)
    cite = answer.citations[0]
    assert cite.doc_id == "gcm-regional-review-lac-2022"
    assert cite.title.startswith("Report on the regional review")
    assert cite.section.startswith("1. Migration in Latin America and the Caribbean")


def test_answer_sentences_are_not_repeated(report_engine: Engine) -> None:
    for question, _ in KNOWN:
        answer = report_engine.ask(question)
        pieces = [p.strip() for p in answer.answer.replace("…", "").split("]") if p.strip()]
        bodies = [p.rsplit("[", 1)[0].strip() for p in pieces]
        assert len(bodies) == len(set(bodies)), (question, answer.answer)


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "x" * 2001])
def test_unusable_question_is_refused(report_engine: Engine, question: str) -> None:
    with pytest.raises(QuestionError):
        report_engine.ask(question)


def test_names_and_years_missing_from_the_passages_are_reported() -> None:
    from gcm_qa.abstention import unsupported_terms
    from gcm_qa.types import Chunk

    chunk = Chunk(
        chunk_id="d:0", doc_id="d", title="t", kind="report", author="a", language="en", stakeholder="other",
        section=["1. Intro"], page_start=None, page_end=None, start=0, end=10,
        text="Over 56% of Venezuelans in Colombia had an irregular status in 2021.",
    )
    passages = [Passage(chunk=chunk, score=1.0, rank=1)]
    assert unsupported_terms("How many Venezuelan migrants live in Peru?", passages) == ["Peru"]
    assert unsupported_terms("How many Venezuelans were irregular in Colombia in 2021?", passages) == []
    assert unsupported_terms("What share was irregular in 2019?", passages) == ["2019"]
    assert unsupported_terms("Which Brazilian city was cited?", passages) == []  # demonyms are not checked
    # a month dates the question, it names nothing the passages must mention; its year still counts
    assert unsupported_terms("How many Venezuelans in Colombia were irregular in April 2021?", passages) == []
    assert unsupported_terms("How many Venezuelans in Colombia were irregular in April 2019?", passages) == ["2019"]


def test_report_question_about_an_absent_country_abstains(report_engine: Engine) -> None:
    answer = report_engine.ask("How many Venezuelan migrants live in Iceland according to the report?")
    assert answer.abstained
    assert "Iceland" in answer.answer and answer.citations == []


THEMATIC = """2. Main findings

2.1 Thematic area 1: Governance

Which objective on remittances matters most? Every delegation named the objective on remittances as its first concern.

2.2 Thematic area 2: Protection

The objective on remittances belongs, delegations said, among the priorities: remittances fell during the pandemic.

2.3 Thematic area 3: Inclusion

Banks see the objective on remittances as theirs, since remittances reach families through their accounts.

2.4 Thematic area 4: Regular migration and decent work

This area gathers objectives 5, 6, 18, 19 and 20, the last on cheaper and safer transfers of money sent home.

2.5 Thematic area 5: Return

Returnees asked which objective on remittances belongs to their agenda, since remittances fund their businesses.
"""


def test_a_numbered_heading_named_in_the_question_lifts_its_chunks(make_engine, tmp_path) -> None:
    from gcm_qa.query import prepare

    engine = make_engine()
    (tmp_path / "corpus" / "findings.txt").write_text(THEMATIC, encoding="utf-8")
    engine.build()
    question = prepare("Which objective on remittances belongs to thematic area 4?")
    assert question.references == (Reference("thematic area", 4),)

    def rank_with(boost: float) -> int:
        settings = engine.settings.retrieval.model_copy(update={"reference_boost": boost})
        retriever = Retriever(engine.index, engine.embedder, settings)
        ranks = ranks_of(retriever.search(question, top_k=20), "This area gathers objectives")
        return ranks[0] if ranks else 99

    assert rank_with(0.5) == 1 < rank_with(0.0)


def test_a_named_part_matches_its_heading_and_not_a_longer_number() -> None:
    from gcm_qa.retrieval import refers_to
    from gcm_qa.types import Chunk

    def chunk(*section: str) -> Chunk:
        return Chunk(chunk_id="d:0", doc_id="d", title="t", kind="report", author="a", language="en",
                     stakeholder="other", section=list(section), page_start=None, page_end=None, start=0, end=4,
                     text="text")

    textbox_3, annex_1 = Reference("textbox", 3), Reference("annex", 1)
    assert refers_to(chunk("2.5 Thematic area 5", "Textbox 3. Comprehensive Development Plan"), textbox_3)
    assert not refers_to(chunk("Textbox 30. Something else"), textbox_3)
    assert refers_to(chunk("2. Main findings", "2.4 Thematic area 4: Facilitating regular"),
                     Reference("thematic area", 4))
    assert not refers_to(chunk("Annex 2. Basic statistics", "Table 1. Voluntary reports"), annex_1)
    assert refers_to(chunk("2. Main findings", "2.4 Thematic area 4", "2.4.3 Challenges"),
                     Reference("heading", name="challenges"))
    assert refers_to(chunk("Foreword", "Some box"), Reference("title", name="foreword"))
    assert not refers_to(chunk("Introduction", "Foreword"), Reference("title", name="foreword"))  # top level only
    # "situations" inside a long title is not the sub-heading "Situations to consider"
    assert not refers_to(chunk("Executive Summary", "Thematic area 2: mitigating situations of vulnerability"),
                         Reference("heading", name="situations"))


def test_answers_of_keeps_only_passages_under_a_question_for_those_documents() -> None:
    from gcm_qa.retrieval import Filters
    from gcm_qa.types import Chunk

    def chunk(doc: str, section: list[str]) -> Chunk:
        return Chunk(f"{doc}:0", doc, doc, "questionnaire", "A", "es", "State", section, None, None, 0, 1, "x")

    only = Filters(answers_of=("form",))
    assert not only.is_empty()
    assert only.accepts(chunk("form", ["Área temática 2", "3. ¿Se detiene a niños?"]))
    assert not only.accepts(chunk("form", []))  # the cover page: "Punto focal: ..."
    assert not only.accepts(chunk("form", ["Área temática 2"]))
    assert only.accepts(chunk("note", []))  # a document not read as a form is searched whole


@pytest.mark.parametrize("reference", [
    Reference("annex", 2), Reference("table", 1), Reference("textbox", 3), Reference("thematic area", 4),
    Reference("heading", name="challenges"), Reference("title", name="foreword"), Reference("graph", 6),
    Reference("objective", 13),
])
def test_the_chunks_a_part_names_are_those_a_scan_of_every_chunk_finds(report_engine: Engine,
                                                                        reference: Reference) -> None:
    """Parts named by their headings are tested once per heading path, not once per chunk; the mask
    must be the one testing every chunk gives."""
    report_engine.ensure_index()
    retriever = report_engine._retriever
    assert retriever is not None
    every = np.array([refers_to(c, reference) for c in report_engine.index.chunks], dtype=bool)
    assert every.any()
    assert np.array_equal(retriever.reference_hits(reference), every)
