"""Heading detection on the real report, questionnaires, and the chunks cut from both."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gcm_qa import gcm, profiles
from gcm_qa.chunking import chunk_document
from gcm_qa.cleaning import Paragraph, clean_pages
from gcm_qa.settings import RetrievalSettings
from gcm_qa.structure import HeadingDetector, Layout, is_question, layout, section_pages
from gcm_qa.types import Chunk, DocMeta, Section

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "corpus" / "gcm-regional-review-lac-2022.txt"
REPORT_PROFILE = profiles.load(ROOT / "corpus" / "profiles" / "gcm-regional-review-lac-2022.toml")

REPORT_META = DocMeta(
    doc_id="gcm-regional-review-lac-2022",
    file=REPORT.name,
    title="Report on the regional review",
    kind="report",
    author="United Nations Network on Migration (IOM and ECLAC)",
    stakeholder="intergovernmental body",
    language="en",
    year=2022,
)

QUESTIONNAIRE = """Cuestionario voluntario para el examen regional del Pacto Mundial

1. ¿Qué medidas ha adoptado su país para garantizar el acceso de las personas migrantes a la salud?

El Ministerio de Salud amplió la cobertura a todas las personas migrantes, con independencia de su \
situación migratoria, y vacunó a 120.000 migrantes contra la COVID-19.

2. ¿Existen alternativas a la detención de niños migrantes?

Sí. La Ley 18.250 prohíbe la detención de niñas, niños y adolescentes migrantes y prevé su acogida en \
hogares comunitarios.

¿Cómo se coordinan las instituciones nacionales?

Una Junta Nacional de Migración reúne a doce ministerios.
"""


@pytest.fixture(scope="module")
def report_layout() -> Layout:
    return layout(clean_pages([(None, REPORT.read_text(encoding="utf-8"))]), REPORT_PROFILE)


@pytest.fixture(scope="module")
def report_chunks(report_layout: Layout) -> list[Chunk]:
    return chunk_document(REPORT_META, report_layout, 700, 150, REPORT_PROFILE)


def section_at(doc: Layout, offset: int) -> tuple[str, ...]:
    found = [s.path for s in doc.sections if s.start <= offset < s.end]
    assert len(found) == 1, f"offset {offset} lies in {len(found)} sections"
    return found[0]


def paths_ending(doc: Layout, prefix: str) -> list[tuple[str, ...]]:
    return [s.path for s in doc.sections if s.path and s.path[-1].startswith(prefix)]


# --- headings of the real report ---------------------------------------------------------------------


def test_numbered_subsection_sits_under_its_thematic_area(report_layout: Layout) -> None:
    (path,) = paths_ending(report_layout, "2.3.2 Situations to consider")
    assert path[0] == "2. Main findings, by thematic areas"
    assert path[1].startswith("2.3 Thematic area 3: Addressing irregular migration")
    assert path[2] == "2.3.2 Situations to consider"
    assert len(path) == 3


def test_textbox_heading_nests_under_its_subsection(report_layout: Layout) -> None:
    (path,) = paths_ending(report_layout, "Textbox 8. Temporary Protection Status")
    assert path[-1].startswith("Textbox 8. Temporary Protection Status (ETP for its Spanish acronym)")
    assert path[-2] == "2.4.1 Progress"
    assert path[1].startswith("2.4 Thematic area 4")
    assert section_at(report_layout, report_layout.text.index("Decree 216 of 2021")) == path


def test_annex_table_path(report_layout: Layout) -> None:
    (path,) = paths_ending(report_layout, "Table 2.")
    assert path[0] == "Annex 2. Basic statistics of stakeholders participating in the process"
    assert path[1].startswith("Table 2. People participating in the Regional Review")
    assert len(path) == 2
    total = report_layout.text.index("TOTAL | 936")
    assert section_at(report_layout, total) == path


def test_chapters_are_found_in_order(report_layout: Layout) -> None:
    chapters = []
    for s in report_layout.sections:
        if s.path and s.path[0][:1].isdigit() and s.path[0] not in chapters:
            chapters.append(s.path[0])
    assert [c.split(" ", 1)[0] for c in chapters] == ["1.", "2.", "3.", "4."]
    assert chapters[0] == "1. Migration in Latin America and the Caribbean"


def test_enumerated_items_in_a_textbox_are_not_chapters(report_layout: Layout) -> None:
    all_titles = {title for s in report_layout.sections for title in s.path}
    assert not any(
        t.startswith(("1. Non-regression", "2. Access to justice", "10. Procedures")) for t in all_titles
    )
    item = report_layout.text.index("1. Non-regression in the migration policy of the region.")
    assert section_at(report_layout, item)[-1] == "Textbox 2. Bloque Latinoamericano"
    # and the chapter numbering survived the list: 2.1.2 still sits under chapter 2
    (path,) = paths_ending(report_layout, "2.1.2 Situations to consider")
    assert path[0] == "2. Main findings, by thematic areas"


def test_table_of_contents_does_not_create_empty_sections(report_layout: Layout) -> None:
    for prefix in ("2.1.3 Challenges", "2.5.4 Highlights", "4.2 Recommendations"):
        (path,) = paths_ending(report_layout, prefix)
        sizes = [s.end - s.start for s in report_layout.sections if s.path == path]
        assert sizes and min(sizes) > 200
    assert not any("....." in t for s in report_layout.sections for t in s.path)


def test_running_header_survives_only_as_the_real_chapter_title(report_layout: Layout) -> None:
    assert REPORT.read_text(encoding="utf-8").count("2. Main findings, by thematic areas") > 20
    assert report_layout.text.count("2. Main findings, by thematic areas") == 1


def test_sections_tile_the_text(report_layout: Layout) -> None:
    sections = report_layout.sections
    assert sections[0].start == 0
    assert sections[-1].end == len(report_layout.text)
    for a, b in itertools.pairwise(sections):
        assert a.end <= b.start and report_layout.text[a.end : b.start].strip() == ""


def test_detector_rejects_list_items_that_break_the_numbering() -> None:
    d = HeadingDetector()
    h = d.detect(Paragraph("1. Migration in Latin America and the Caribbean", None))
    assert h is not None and h.level == 1
    assert d.detect(Paragraph("2. Main findings, by thematic areas", None)) is not None
    assert (
        d.detect(Paragraph("1. Non-regression in the migration policy of the region.", None, "item")) is None
    )
    assert d.detect(Paragraph("5. Adequacy of policies to assist asylum seekers.", None, "item")) is None
    sub = d.detect(Paragraph("2.3 Thematic area 3: Addressing irregular migration", None))
    assert sub is not None and sub.level == 2
    assert d.detect(Paragraph("7.2 Something from another chapter", None)) is None
    assert d.detect(Paragraph("TOTAL | 936", None, "table")) is None


# --- questionnaires ----------------------------------------------------------------------------------


def test_is_question() -> None:
    assert is_question("¿Existen alternativas a la detención de niños migrantes?")
    assert is_question("2. ¿Qué medidas ha adoptado su país?")
    assert is_question("What measures has your country adopted to provide access to health?")
    assert not is_question("El Ministerio de Salud amplió la cobertura.")
    assert not is_question("x" * 500 + "?")


def test_questionnaire_answers_carry_their_question_in_the_section_path() -> None:
    doc = layout(clean_pages([(None, QUESTIONNAIRE)]))
    meta = DocMeta(
        "cuestionario-uruguay",
        "cuestionario-uruguay.txt",
        "Cuestionario de Uruguay",
        kind="questionnaire",
        author="Uruguay",
        stakeholder="State",
        language="es",
    )
    chunks = chunk_document(meta, doc, 200, 40)
    by_answer = {
        "vacunó a 120.000 migrantes": "1. ¿Qué medidas ha adoptado su país para garantizar el acceso",
        "Ley 18.250 prohíbe la detención": "2. ¿Existen alternativas a la detención de niños migrantes?",
        "Junta Nacional de Migración": "¿Cómo se coordinan las instituciones nacionales?",
    }
    for needle, question in by_answer.items():
        holding = [c for c in chunks if needle in c.text]
        assert holding, needle
        for c in holding:
            assert c.section and c.section[-1].startswith(question), (needle, c.section)
    # the answers to different questions never share a chunk
    assert not any("120.000" in c.text and "18.250" in c.text for c in chunks)
    assert all(c.kind == "questionnaire" and c.language == "es" and c.author == "Uruguay" for c in chunks)


def test_repeated_short_answers_are_not_mistaken_for_page_furniture() -> None:
    """'Sí.' answering three questions is content, not a running header."""
    form = "Cuestionario\n\n" + "".join(
        f"{n}. ¿{q}?\n\n{a}\n\n"
        for n, (q, a) in enumerate(
            [
                ("Su país ha adoptado un plan nacional de migración", "Sí."),
                ("Existe una ley contra la trata de personas", "Sí."),
                ("Se garantiza el acceso a la salud de las personas migrantes", "Sí."),
                ("Hay alternativas a la detención", "No."),
            ],
            start=1,
        )
    )
    doc = layout(clean_pages([(None, form)]))
    answers = {s.path[-1][:2]: doc.text[s.start : s.end].split("\n\n")[1:] for s in doc.sections if s.path}
    assert {k: [a for a in v if a] for k, v in answers.items()} == {
        "1.": ["Sí."],
        "2.": ["Sí."],
        "3.": ["Sí."],
        "4.": ["No."],
    }


# --- chunk metadata ----------------------------------------------------------------------------------


def test_chunk_offsets_point_at_their_text(report_layout: Layout, report_chunks: list[Chunk]) -> None:
    assert len(report_chunks) > 300
    for c in report_chunks:
        assert report_layout.text[c.start : c.end] == c.text, c.chunk_id
        assert len(c.text) <= 700


def test_chunks_never_straddle_sections(report_layout: Layout, report_chunks: list[Chunk]) -> None:
    for c in report_chunks:
        holders = [s for s in report_layout.sections if s.start <= c.start and c.end <= s.end]
        assert len(holders) == 1, c.chunk_id
        assert tuple(c.section) == holders[0].path, c.chunk_id


def test_chunk_metadata_comes_from_the_document(report_chunks: list[Chunk]) -> None:
    ids = [c.chunk_id for c in report_chunks]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "gcm-regional-review-lac-2022:0"
    for c in report_chunks:
        assert (c.doc_id, c.title, c.kind, c.author, c.language, c.stakeholder) == (
            REPORT_META.doc_id,
            REPORT_META.title,
            "report",
            REPORT_META.author,
            "en",
            "intergovernmental body",
        )
        assert c.page_start is None and c.page_end is None and c.page_label is None
    box = next(c for c in report_chunks if "Decree 216 of 2021" in c.text)
    assert box.section_label.endswith("2.4.1 Progress > " + box.section[-1])
    assert box.section[-1].startswith("Textbox 8.")
    assert box.embed_text().startswith("2.4.1 Progress / Textbox 8.")


def test_every_word_of_the_report_is_in_some_chunk(report_layout: Layout, report_chunks: list[Chunk]) -> None:
    """Nothing may be lost between cleaning and the index: a paragraph no chunk holds can never be
    retrieved or quoted."""
    covered = bytearray(len(report_layout.text))
    for c in report_chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    lost = [i for i, ch in enumerate(report_layout.text) if not ch.isspace() and not covered[i]]
    first = report_layout.text[lost[0] : lost[0] + 80] if lost else ""
    assert not lost, f"{len(lost)} characters in no chunk, first at {lost[0] if lost else 0}: {first!r}"


def test_chunk_text_holds_no_splitter_artifacts(report_chunks: list[Chunk]) -> None:
    assert not [c.chunk_id for c in report_chunks if "(?<=" in c.text or "\\s+" in c.text]


def test_long_paragraph_is_split_at_sentence_ends() -> None:
    sentences = [
        f"Sentence number {i} talks about regular migration pathways in country {i}." for i in range(30)
    ]
    doc = layout([Paragraph(" ".join(sentences), None)])
    meta = DocMeta("d", "d.txt", "D")
    chunks = chunk_document(meta, doc, 300, 60)
    assert len(chunks) > 3
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.text.endswith(".")
    assert chunks[0].start == 0 and chunks[-1].end == len(doc.text)
    for a, b in itertools.pairwise(chunks):
        assert b.start <= a.end or doc.text[a.end : b.start].isspace()  # nothing skipped


def test_thematic_area_and_objective_tags(report_chunks: list[Chunk]) -> None:
    detention = [
        c
        for c in report_chunks
        if any(t.startswith("2.2 ") for t in c.section) and "detention" in c.text.lower()
    ]
    assert detention
    for c in detention:
        assert 2 in c.areas and 13 in c.objectives, c.chunk_id
    border = [c for c in report_chunks if any(t.startswith("2.3 ") for t in c.section)]
    assert border and all(c.areas[:1] == [3] for c in border)
    assert any(11 in c.objectives for c in border)


def test_tag_rules() -> None:
    assert gcm.tag(
        "Alternatives to detention were adopted for children.", ["2. Main findings", "2.2 Thematic area 2:"],
        REPORT_PROFILE,
    ) == ([2], [13])
    # keywords outside the section's area are ignored; explicit objectives are kept
    assert gcm.tag(
        "Integration of returnees and Objective 17 on discrimination.",
        ["2.3 Thematic area 3: Addressing irregular migration"],
        REPORT_PROFILE,
    ) == ([1, 3], [17, 21])
    assert gcm.tag("Remittances grew in 2021.", ["Foreword"], REPORT_PROFILE) == ([4], [20])
    # without a profile, a document has objectives but no thematic areas
    assert gcm.tag("Remittances grew in 2021.", ["2.4 Thematic area 4"], profiles.EMPTY) == ([], [20])
    assert gcm.explicit_objectives("objectives 5, 6 and 18; objetivo 13") == {5, 6, 13, 18}


def test_page_ranges_follow_the_pages() -> None:
    para = "Several countries of the region described their consultation processes with civil society."
    pages = [
        (1, f"Page one opens. {para}\n\nThe mass Venezuelan exodus led to\n\n10"),
        (
            2,
            f"new temporary permits in many countries, granted by several States for up to ten years."
            f"\n\nPage two goes on. {para}\n\n11",
        ),
        (3, f"Page three closes. {para}\n\n12"),
    ]
    doc = layout(clean_pages(pages))
    chunks = chunk_document(DocMeta("d", "d.pdf", "D"), doc, 200, 0)
    assert [c.text.split(".")[0] for c in chunks] == [
        "Page one opens",
        "The mass Venezuelan exodus led to new temporary permits in many countries, "
        "granted by several States for up to ten years",
        "Page two goes on",
        "Page three closes",
    ]
    assert [(c.page_start, c.page_end) for c in chunks][::2] == [(1, 1), (2, 2)]
    assert chunks[-1].page_label == "3"
    # a paragraph re-joined across the break starts on page 1; it may also claim page 2
    assert (chunks[1].page_start, chunks[1].page_end) in {(1, 1), (1, 2)}


def test_a_text_box_ends_at_its_source_line() -> None:
    """Text after "Colombian Migration Office, 2021" belongs to 2.4.1 again, not to Textbox 8."""
    from gcm_qa.cleaning import clean_pages
    from gcm_qa.structure import layout

    text = (
        "2. Main findings\n\n2.4 Thematic area 4: Regular migration\n\n2.4.1 Progress\n\n"
        "Textbox 8. Temporary Protection Status for Venezuelans\n\n- It is a mechanism.\n\n"
        "Colombian Migration Office, 2021\n\nAs for diasporas in the region, facts were noted.\n"
    )
    doc = layout(clean_pages([(None, text)]))

    def path_of(needle: str) -> tuple[str, ...]:
        at = doc.text.index(needle)
        return next(s.path for s in doc.sections if s.start <= at < s.end)

    assert path_of("It is a mechanism")[-1].startswith("Textbox 8")
    assert path_of("Colombian Migration Office")[-1].startswith("Textbox 8")
    assert path_of("As for diasporas")[-1] == "2.4.1 Progress"


def test_a_chapter_named_without_its_number_in_the_summary_is_a_heading(report_layout: Layout) -> None:
    # the Executive Summary closes thematic area 5 and then summarises chapter 3 under its bare title
    principles = report_layout.text.index("The Global Compact is based on a set of cross-cutting")
    path = section_at(report_layout, principles)
    assert path[0] == "Executive Summary"
    assert path[-1].startswith("Integrating the vision and guiding principles")
    assert not any(title.startswith("Thematic area 5") for title in path)


def _choose(question: str, allowed: set[int] | None = None, **by_objective: float) -> int | None:
    similarity = [by_objective.get(f"o{n}", 0.2) for n in range(1, 24)]
    return gcm.choose_objective(similarity, question, RetrievalSettings(), allowed or ())


def test_the_objective_asked_for_by_topic_is_the_best_title_or_keyword_match() -> None:
    # a keyword of objective 20 settles a close call between titles
    assert _choose("Which objective covers remittances?", o20=0.32, o21=0.31) == 20
    # no keyword: a title clearly ahead of the others is enough
    assert _choose("Which objective addresses hate speech?", o17=0.52, o10=0.41) == 17
    # no keyword and no title that stands out: no objective
    assert _choose("Which objective is the most advanced?", o11=0.24, o23=0.21) is None
    assert _choose("Which objective addresses hate speech?", o17=0.52, o10=0.50) is None
    # a named thematic area restricts the choice to its objectives
    assert _choose("Which objective of area 3 is about it?", REPORT_PROFILE.objectives_of([3]), o13=0.6, o21=0.5) == 21


def test_sections_take_their_pages_from_the_table_of_contents() -> None:
    contents = [("Foreword", 7), ("2.4 Thematic area 4: Facilitating regular migration", 46),
                ("2.4.1 Progress", 46), ("3.1 People-centredness", 60), ("Annex 3. Message of civil society", 83)]
    sections = [
        Section(("Foreword",), 0, 10),
        Section(("2. Main findings", "2.4 Thematic area 4: Facilitating"), 10, 20),  # matched by number
        Section(("2. Main findings", "2.4 Thematic area 4: Facilitating", "2.4.1 Progress"), 20, 30),
        Section(("2. Main findings", "2.4 Thematic area 4", "2.4.1 Progress", "Textbox 8. TPS"), 30, 40),
        Section(("3. Vision", "3.1 People-centred"), 40, 50),  # worded differently in the contents
        Section(("Annex 3. Message of the civil society at the opening",), 50, 60),  # the last entry
        Section(("Disclaimer",), 60, 70),  # not listed
    ]
    assert section_pages(sections, contents) == (
        (7, 46), (46, 46), (46, 60), (46, 60), (60, 83), (83, 83), (None, None)
    )
