"""Cleaning rules, each exercised with hand-made page text (no model, no files)."""

from __future__ import annotations

from gcm_qa.cleaning import (
    Paragraph,
    clean_pages,
    drop_running_headers,
    drop_table_of_contents,
    fill_down_table_rows,
    find_furniture,
    merge_broken_paragraphs,
    normalize_inline,
    page_paragraphs,
    table_of_contents,
)

HEADER = "2. Main findings, by thematic areas"


def texts(paragraphs: list[Paragraph]) -> list[str]:
    return [p.text for p in paragraphs]


# --- running headers and page numbers -------------------------------------------------------------


def test_running_header_kept_once_and_page_numbers_dropped() -> None:
    pages = [
        (1, f"{HEADER}\n\nThe review identified progress in data collection.\n\n12"),
        (2, f"{HEADER}\n\nCountries reported new regularisation programmes.\n\n13"),
        (3, f"{HEADER}\n\nSeveral States created migration observatories.\n\n14"),
        (4, f"{HEADER}\n\nConsular networks were expanded.\n\nPage 15 of 20"),
    ]
    out = clean_pages(pages)
    assert texts(out) == [
        HEADER,
        "The review identified progress in data collection.",
        "Countries reported new regularisation programmes.",
        "Several States created migration observatories.",
        "Consular networks were expanded.",
    ]
    assert [p.page for p in out] == [1, 1, 2, 3, 4]


def test_running_header_directly_above_a_continuation_is_not_glued_to_it() -> None:
    pages = [
        (1, f"{HEADER}\n\nIntro sentence.\n\n7"),
        (2, f"{HEADER}\n\nThe regularisation processes in place appear as\n\n8"),
        (3, f"{HEADER}\nprerequisites for decent work and sustainable development.\n\n9"),
    ]
    out = clean_pages(pages)
    assert texts(out) == [
        HEADER,
        "Intro sentence.",
        "The regularisation processes in place appear as prerequisites for decent work and "
        "sustainable development.",
    ]
    assert out[-1].page == 2


def test_find_furniture_counts_repeated_short_lines_but_never_bullets() -> None:
    lines = [HEADER, "- 23. Strengthen international cooperation."] * 3 + ["1", "2", "3", "A single line."]
    furniture = find_furniture(lines)
    assert HEADER.lower() in furniture
    assert "#page" in furniture
    assert "- 23. strengthen international cooperation." not in furniture
    assert "a single line." not in furniture


def test_drop_running_headers_keeps_first_heading_occurrence_only() -> None:
    paragraphs = [
        Paragraph(HEADER, 1),
        Paragraph("Body one.", 1),
        Paragraph("21", 1),
        Paragraph(HEADER, 2),
        Paragraph("Body two.", 2),
        Paragraph("22", 2),
    ]
    furniture = frozenset({HEADER.lower(), "#page"})
    assert texts(drop_running_headers(paragraphs, furniture)) == [HEADER, "Body one.", "Body two."]


# --- line joins, hyphenation, page breaks and footnotes --------------------------------------------


def test_wrapped_lines_are_joined_and_line_end_hyphens_removed() -> None:
    out = page_paragraphs("The regular-\nisation of migrants was\nextended to all nationali-\nties.", 3)
    assert out == [Paragraph("The regularisation of migrants was extended to all nationalities.", 3)]


def test_paragraph_cut_by_page_break_and_footnote_is_rejoined_with_note_after_it() -> None:
    pages = [
        (1, "The region grew fast.\n\nIn the total emigrant\n\n¹ Source: ECLAC, 2020.\n\n5"),
        (2, "population (graph 4), there is a clear predominance of women.\n\n6"),
        (3, "Next paragraph starts here.\n\n7"),
    ]
    out = clean_pages(pages)
    assert texts(out) == [
        "The region grew fast.",
        "In the total emigrant population (graph 4), there is a clear predominance of women.",
        "[Note 1] Source: ECLAC, 2020.",
        "Next paragraph starts here.",
    ]
    assert out[1].page == 1
    assert out[2].kind == "footnote"


def test_merge_does_not_join_a_finished_sentence_or_a_capitalised_start() -> None:
    paragraphs = [
        Paragraph("A complete sentence.", 1),
        Paragraph("lower case but new.", 2),
        Paragraph("No final stop", 2),
        Paragraph("Capitalised start.", 3),
    ]
    assert texts(merge_broken_paragraphs(paragraphs)) == texts(paragraphs)


def test_a_paragraph_cut_inside_a_parenthesis_is_rejoined() -> None:
    paragraphs = [Paragraph("- The report (to be produced in", 1, "item"), Paragraph("Spanish and English) should:", 1)]
    joined = "- The report (to be produced in Spanish and English) should:"
    assert texts(merge_broken_paragraphs(paragraphs)) == [joined]
    closed = [Paragraph("A note (see below) and then", 1), Paragraph("Capitalised (new) start", 1)]
    assert texts(merge_broken_paragraphs(closed)) == texts(closed)


def test_bulleted_item_cut_by_page_break_is_rejoined() -> None:
    paragraphs = [Paragraph("- Residence permits of various", 1, "item"), Paragraph("types were granted.", 2)]
    assert merge_broken_paragraphs(paragraphs) == [
        Paragraph("- Residence permits of various types were granted.", 1, "item", 2)
    ]


def test_footnote_markers_glued_to_words_are_removed() -> None:
    assert normalize_inline("They adopted joint plans⁸.") == "They adopted joint plans."
    assert normalize_inline("data¹² and observatories ³.") == "data and observatories."
    out = page_paragraphs("Countries agreed joint plans⁸.\nThey met twice¹⁰.", None)
    assert texts(out) == ["Countries agreed joint plans. They met twice."]


def test_footnote_line_becomes_a_note_paragraph() -> None:
    out = page_paragraphs("Body text.\n\n⁸ See the 2021 voluntary report.", 4)
    assert out[1] == Paragraph("[Note 8] See the 2021 voluntary report.", 4, "footnote")


# --- inline normalisation ---------------------------------------------------------------------------


def test_ligatures_are_folded() -> None:
    assert normalize_inline("Oﬃcial ﬁgures of the ﬂows") == "Official figures of the flows"


def test_private_use_glyphs_are_removed() -> None:
    assert normalize_inline("Germany \U000f03b2 Berlin \uf0b7") == "Germany Berlin"


def test_markdown_and_html_are_stripped() -> None:
    assert normalize_inline("Global Compact FOR **Migration**") == "Global Compact FOR Migration"
    assert normalize_inline("See [the IOM portal](https://iom.int/x) now") == "See the IOM portal now"
    assert normalize_inline("an *italic* word and __bold__") == "an italic word and bold"
    assert (
        normalize_inline("Visit <https://migrationnetwork.un.org>.")
        == "Visit https://migrationnetwork.un.org."
    )
    assert normalize_inline("Rights &amp; duties<br/>of migrants") == "Rights & duties of migrants"


def test_markdown_heading_marker_is_removed() -> None:
    assert texts(page_paragraphs("## 2.3 Thematic area 3\n\nBody.", None)) == ["2.3 Thematic area 3", "Body."]


def test_non_breaking_and_odd_spaces_collapse() -> None:
    assert normalize_inline("936\u00a0people \u2009from  50\tcountries") == "936 people from 50 countries"


def test_bullets_are_normalised_and_items_start_new_paragraphs() -> None:
    out = page_paragraphs(
        "Several countries reported:\n• Special visas.\n\uf0b7 Residence permits.\n"
        "1. Non-regression in the migration policy.",
        2,
    )
    assert [(p.text, p.kind) for p in out] == [
        ("Several countries reported:", "text"),
        ("- Special visas.", "item"),
        ("- Residence permits.", "item"),
        ("1. Non-regression in the migration policy.", "item"),
    ]


# --- tables and table of contents -------------------------------------------------------------------


def test_tab_separated_rows_become_pipe_rows() -> None:
    out = page_paragraphs("Attendance\tN.\nDelegations of countries\t249\nTOTAL\t936", None)
    assert [(p.text, p.kind) for p in out] == [
        ("Attendance | N.", "table"),
        ("Delegations of countries | 249", "table"),
        ("TOTAL | 936", "table"),
    ]


def test_continuation_rows_are_filled_down_with_the_first_cell_above() -> None:
    area = "Thematic area 3 Addressing irregular migration"
    text = (
        f"{area}\t9. Strengthen the transnational response to smuggling of migrants.\n"
        "\t10. Prevent, combat and eradicate trafficking in persons.\n"
        "\t11. Manage borders in an integrated, secure and coordinated manner.\n"
        "Thematic area 4 Facilitating regular migration\t5. Enhance pathways for regular migration.\n"
        "\t6. Facilitate fair and ethical recruitment."
    )
    out = clean_pages([(None, text)])
    assert texts(out) == [
        f"{area} | 9. Strengthen the transnational response to smuggling of migrants.",
        f"{area} | 10. Prevent, combat and eradicate trafficking in persons.",
        f"{area} | 11. Manage borders in an integrated, secure and coordinated manner.",
        "Thematic area 4 Facilitating regular migration | 5. Enhance pathways for regular migration.",
        "Thematic area 4 Facilitating regular migration | 6. Facilitate fair and ethical recruitment.",
    ]


def test_fill_down_leaves_complete_rows_and_text_alone() -> None:
    paragraphs = [
        Paragraph("Type | Authors", None, "table"),
        Paragraph("Countries | Argentina", None, "table"),
        Paragraph("Plain text | not a table", None, "text"),
    ]
    assert fill_down_table_rows(paragraphs) == paragraphs


def test_table_of_contents_lines_are_dropped() -> None:
    toc = (
        "Contents\n\n"
        "Acronyms.....\t5\n"
        "Introduction\t14\n"
        "2.1.1 Progress and potentialities\t22\n"
        "2.1.3 Challenges.....\t27\n"
        "Annex 2. Basic statistics of stakeholders participating in the process\t80\n"
        "2.4 Thematic area 4: Facilitating regular migration…46\n\n"
        "1. Migration in Latin America and the Caribbean\n\n"
        "In 2020, 43 million people from the region lived abroad."
    )
    assert texts(clean_pages([(None, toc)])) == [
        "Contents",
        "1. Migration in Latin America and the Caribbean",
        "In 2020, 43 million people from the region lived abroad.",
    ]


def test_table_of_contents_filter_keeps_real_numbers_in_prose_and_tables() -> None:
    keep = [
        Paragraph("Delegations of countries | 249", None, "table"),
        Paragraph("In 2020, the ratio was 93.3 men every 100 women.", None),
        Paragraph("TOTAL | 936", None, "table"),
    ]
    assert drop_table_of_contents(keep) == keep


def test_windows_line_endings_and_blank_pages() -> None:
    out = clean_pages([(1, "First line\r\ncontinues here.\r\n\r\nSecond."), (2, "   \n  "), (3, "Third.")])
    assert [(p.text, p.page) for p in out] == [
        ("First line continues here.", 1),
        ("Second.", 1),
        ("Third.", 3),
    ]


def test_page_numbers_of_a_two_page_document_are_dropped() -> None:
    """Too few pages to count repeats, but a bare number alone at a page's end is still furniture."""
    out = clean_pages(
        [(1, "The consultation took place in\n\n1"), (2, "three rounds with civil society.\n\n2")]
    )
    assert texts(out) == ["The consultation took place in three rounds with civil society."]


def test_short_title_line_above_a_pdf_paragraph_stands_alone() -> None:
    out = page_paragraphs("Bellavista annual asylum report\nThe fictional island registered 4,321 claims.", 1)
    assert texts(out) == ["Bellavista annual asylum report", "The fictional island registered 4,321 claims."]


def test_table_of_contents_lines_give_each_title_its_page() -> None:
    page = "Contents\n\nForeword.....\t7\nIntroduction\t14\n2.1.3 Challenges.....\t27\n\nForeword\n\nSome text 12."
    assert table_of_contents([(None, page)]) == [("Foreword", 7), ("Introduction", 14), ("2.1.3 Challenges", 27)]
