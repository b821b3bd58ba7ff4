"""The chat's Compare, Coverage and Library views without a browser, and who may fetch the files they
write: the matrix rendered from hand-made rows (hostile text included), the one-line refusals, the
views over a real engine indexing invented questionnaires, and the ownership registry behind the
guard's file route."""

from __future__ import annotations

import csv
import io
import os
from html.parser import HTMLParser
from pathlib import Path

import gradio as gr
import pytest
from conftest import copy_forms
from starlette.requests import Request

from gcm_qa.app import AppGuard
from gcm_qa.app_compare import (
    NO_QUESTIONNAIRE,
    author_options,
    citation_text,
    coverage_note,
    message_html,
    render_comparison_html,
    run_compare,
    run_coverage,
)
from gcm_qa.app_files import OwnedFiles, owner_of, request_owner
from gcm_qa.app_library import DOC_COLUMN_WIDTHS, DOC_HEADERS, LAYOUT_NOT_READ, answers_cell, documents_table
from gcm_qa.comparison import NOTHING_FOUND, Author, Comparison, Row
from gcm_qa.coverage import Coverage
from gcm_qa.types import Citation

HOSTILE = '<img src=http://127.0.0.1:9/x onerror=alert(1)> "quoted" <script>alert(1)</script> & [a](javascript:1)'


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.rows: list[tuple[str, list[str]]] = []  # (class, cell texts)
        self._row: list[str] | None = None
        self._class = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag == "tr":
            self._row, self._class = [], dict(attrs).get("class") or ""
        elif tag == "td" and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            if self._row:
                self.rows.append((self._class, self._row))
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row:
            self._row[-1] += data


def parse(fragment: str) -> Tags:
    p = Tags()
    p.feed(fragment)
    p.close()
    return p


def citation(**kw: object) -> Citation:
    base: dict[str, object] = {"n": 1, "doc_id": "d", "title": "Voluntary report of Ejemplaria",
                               "section": "Thematic area 1 > 1. What measures?", "page": "3", "quote": "q",
                               "score": 0.5, "passage_rank": 1, "chunk_id": "d#0"}
    base.update(kw)
    return Citation(**base)  # type: ignore[arg-type]


def comparison(rows: list[Row], unknown: list[str] | None = None) -> Comparison:
    return Comparison("Which countries reported regularisation?", "regularisation", "authors chosen", rows,
                      unknown or [])


# --- the matrix ---------------------------------------------------------------------------------


def test_matrix_has_one_row_per_author_and_marks_nothing_found() -> None:
    rows = [
        Row("Ejemplaria", "State", "Ejemplaria", "es", True, "Ejemplaria regularised 48,300 people.",
            citation()),
        Row("Windward Climate Mobility Alliance", "civil society", None, "en", False, NOTHING_FOUND),
    ]
    page = parse(render_comparison_html(comparison(rows, ["Atlantis"])))
    assert [cls for cls, _ in page.rows] == ["gcmqa-found", "gcmqa-nothing"]
    found, nothing = (cells for _, cells in page.rows)
    assert found == ["Ejemplaria", "State", "Ejemplaria", "Ejemplaria regularised 48,300 people.",
                     "Voluntary report of Ejemplaria · 1. What measures? · p. 3"]
    assert nothing == ["Windward Climate Mobility Alliance", "civil society", "", NOTHING_FOUND, ""]
    text = "".join(page.text)
    assert "Rows: authors chosen" in text and "1 of 2 authors answered" in text
    assert "No indexed author matches: Atlantis." in text
    assert "em" in page.tags  # the nothing-found cell is set apart, not a quote


def test_matrix_escapes_every_piece_of_document_text() -> None:
    c = citation(title=f"Title {HOSTILE}", section=f"Area > {HOSTILE}", page="4-5")
    rows = [Row(f"Author {HOSTILE}", "State", f"Country {HOSTILE}", "en", True, f"Cell {HOSTILE}", c),
            Row(f"Other {HOSTILE}", "other", None, "en", False, NOTHING_FOUND)]
    out = render_comparison_html(Comparison(f"Q {HOSTILE}", f"T {HOSTILE}", "authors chosen", rows,
                                            [f"U {HOSTILE}"]))
    page = parse(out)
    assert set(page.tags) <= {"div", "p", "q", "table", "thead", "tbody", "tr", "th", "td", "span", "em"}
    assert "<img" not in out and "<script" not in out and "&lt;img" in out
    names = {k for k, _ in page.attrs}
    assert names <= {"class", "title", "data-author"}, names
    # the attribute values are the texts themselves, quotes included, and nothing more
    assert (f"Title {HOSTILE} · Area > {HOSTILE}") in {v for _, v in page.attrs}
    assert f"Author {HOSTILE}" in {v for _, v in page.attrs}
    text = "".join(page.text)
    for piece in (f"Q {HOSTILE}", f"Cell {HOSTILE}", f"Author {HOSTILE}", f"Country {HOSTILE}", f"U {HOSTILE}"):
        assert piece in text
    assert "pp. 4-5" in text


def test_an_ocr_citation_is_marked() -> None:
    c = citation(ocr=True)
    assert citation_text(c).endswith("(read by OCR; check against the scan)")
    out = render_comparison_html(comparison([Row("Quetzalia", "State", "Quetzalia", "es", True, "x", c)]))
    assert '<span class="gcmqa-ocr">OCR</span>' in out
    assert "OCR" not in render_comparison_html(
        comparison([Row("Quetzalia", "State", "Quetzalia", "es", True, "x", citation())]))


def test_citation_text_keeps_the_innermost_section_and_shortens() -> None:
    c = citation(title="T" * 200, section="A > B > " + "word " * 40, page=None)
    text = citation_text(c)
    assert text.startswith("T" * 80) and "…" in text and " · word word" in text and "p." not in text


def test_an_empty_matrix_and_a_message_are_one_escaped_line() -> None:
    assert "No indexed author is in this comparison" in render_comparison_html(comparison([], ["Atlantis"]))
    page = parse(message_html(f"Cannot compare: {HOSTILE}"))
    assert page.tags == ["div", "p"] and "".join(page.text) == f"Cannot compare: {HOSTILE}"


def test_author_options_show_the_kind_and_keep_the_name() -> None:
    authors = [Author("Ejemplaria", "State", "Ejemplaria", ("es",), ("e",), ("questionnaire",)),
               Author("Red Ciudadana", "civil society", "Quetzalia", ("es",), ("r",), ("questionnaire",))]
    assert author_options(authors) == [("Ejemplaria (State)", "Ejemplaria"),
                                       ("Red Ciudadana (civil society)", "Red Ciudadana")]


def test_coverage_note_names_unread_forms_escaped() -> None:
    cov = Coverage("objective", [1, 2], ["A", "B *x*"], ["State", "other"], [[1, 0], [None, None]],
                   {"B *x*": ["b[1].txt"]})
    note = coverage_note(cov)
    assert "per GCM objective" in note and r"B \*x\* (b\[1\].txt)" in note


# --- the library's answers column ---------------------------------------------------------------


def test_answers_cell() -> None:
    assert answers_cell({"kind": "report", "answers": None, "form_note": ""}) == ""
    assert answers_cell({"kind": "questionnaire", "answers": 12, "form_note": "form read"}) == "12"
    assert answers_cell({"kind": "questionnaire", "answers": 0, "form_note": "form read"}) == "0"
    assert answers_cell({"kind": "questionnaire", "answers": None,
                         "form_note": "no question/answer layout found (no questions)"}) == LAYOUT_NOT_READ
    assert answers_cell({"kind": "questionnaire", "answers": None, "form_note": ""}) == ""
    assert len(DOC_COLUMN_WIDTHS) == len(DOC_HEADERS)
    assert sum(int(w.rstrip("%")) for w in DOC_COLUMN_WIDTHS) == 100


# --- the views over a real engine ---------------------------------------------------------------

FILES = ["ejemplaria-cuestionario-es.txt", "windward-climate-mobility-note.txt",
         "caribbean-migrant-rights-network-questionnaire.txt"]


@pytest.fixture(scope="module")
def forms_engine(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, embedder):
    from conftest import make_settings

    from gcm_qa.engine import Engine

    root = tmp_path_factory.mktemp("forms")
    copy_forms(root / "corpus", FILES)
    (root / "corpus" / "base.txt").write_text(
        "Base report on migration\n\nThe base report says that the regional review meeting had 200 "
        "participants from 30 countries.\n", encoding="utf-8")
    with (root / "corpus" / "manifest.toml").open("a", encoding="utf-8") as f:
        f.write('\n[[document]]\nfile = "base.txt"\ntitle = "Base report"\nkind = "report"\n')
    engine = Engine(make_settings(root, cache_dir), embedder=embedder)
    engine.build()
    return engine


def test_compare_view_over_real_questionnaires(forms_engine) -> None:
    result = run_compare(forms_engine, "How many children were held in immigration detention?",
                         ["Caribbean Migrant Rights Network", "Windward Climate Mobility Alliance"], [])
    page = parse(result.html)
    by_author = {cells[0]: (cls, cells) for cls, cells in page.rows}
    assert set(by_author) == {"Caribbean Migrant Rights Network", "Windward Climate Mobility Alliance"}
    cls, cells = by_author["Caribbean Migrant Rights Network"]
    assert cls == "gcmqa-found" and "47 children" in cells[3]
    assert by_author["Windward Climate Mobility Alliance"][0] == "gcmqa-nothing"
    assert result.csv is not None
    table = list(csv.DictReader(io.StringIO(result.csv)))
    assert {r["author"]: r["found"] for r in table} == {"Caribbean Migrant Rights Network": "yes",
                                                        "Windward Climate Mobility Alliance": "no"}


def test_compare_view_refuses_in_one_line(forms_engine, make_engine, tmp_path: Path) -> None:
    for empty in ("", "   ", None):
        result = run_compare(forms_engine, empty)
        assert result.csv is None and parse(result.html).tags == ["div", "p"] and "Type a question" in result.html
    long = run_compare(forms_engine, "why " * 1000)
    assert long.csv is None and "Cannot compare: the question is longer than" in long.html
    nobody = run_compare(forms_engine, "What about detention?", ["Atlantis"])
    assert nobody.csv is None and "No indexed author matches: Atlantis." in nobody.html
    # a library with no questionnaire: one line, and the coverage view says the same
    engine = make_engine(tmp_path / "reports-only")
    corpus = engine.settings.paths.corpus_dir
    (corpus / "base.txt").write_text("Base report\n\nThe meeting had 200 people.\n", encoding="utf-8")
    (corpus / "manifest.toml").write_text('[[document]]\nfile = "base.txt"\ntitle = "Base report"\n'
                                          'kind = "report"\n', encoding="utf-8")
    engine.build()
    result = run_compare(engine, "Which countries reported regularisation?")
    assert result.csv is None and NO_QUESTIONNAIRE in parse(result.html).text[0]
    cov = run_coverage(engine, "area")
    assert cov.png is None and cov.csv is None and cov.note == NO_QUESTIONNAIRE


def test_coverage_view_and_library_columns(forms_engine) -> None:
    for by in ("area", "objective", "nonsense"):
        result = run_coverage(forms_engine, by)
        assert result.png is not None and result.png.startswith(b"\x89PNG")
        assert result.csv is not None and result.coverage is not None
        assert result.coverage.by == ("objective" if by == "objective" else "area")
        authors = [r["author"] for r in csv.DictReader(io.StringIO(result.csv))]
        assert "Ejemplaria" in authors and "Windward Climate Mobility Alliance" in authors
        assert "Windward Climate Mobility Alliance" in result.note  # a note, not a form: unknown, not zero
    rows = {r[1]: dict(zip(DOC_HEADERS, r, strict=True)) for r in documents_table(forms_engine)}
    assert rows["ejemplaria-cuestionario-es.txt"]["Answers"] == "6"
    assert rows["ejemplaria-cuestionario-es.txt"]["Country"] == "Ejemplaria"
    assert rows["ejemplaria-cuestionario-es.txt"]["Author"] == "Ejemplaria"
    assert rows["windward-climate-mobility-note.txt"]["Answers"] == LAYOUT_NOT_READ
    assert rows["windward-climate-mobility-note.txt"]["Stakeholder"] == "civil society"
    assert rows["base.txt"]["Answers"] == "" and rows["base.txt"]["Kind"] == "report"


# --- who may fetch the files written for a client -----------------------------------------------


def scope(cookie: str | None = None, host: str = "1.2.3.4") -> dict:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return {"type": "http", "method": "POST", "path": "/gradio_api/queue/join", "headers": headers,
            "client": (host, 5000), "query_string": b"", "root_path": ""}


def test_an_event_and_a_file_request_name_the_same_owner(tmp_path: Path) -> None:
    guard = AppGuard(lambda *a: None, upload_dir=tmp_path, max_file_size=1000)  # type: ignore[arg-type, return-value]
    for cookie in (None, "access-token-abc=tok1; other=x", "access-token-unsecure-abc=tok2", "access-token-x="):
        s = scope(cookie)
        assert request_owner(gr.Request(request=Request(s))) == guard.owner(s)
    assert owner_of("access-token-abc=tok1", "9.9.9.9") == "token:tok1"
    assert owner_of("", "9.9.9.9") == "client:9.9.9.9"
    assert request_owner(None) == "client:unknown"


def test_written_files_are_served_to_their_owner_only_and_pruned(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    owned = OwnedFiles(uploads, keep_per_owner=2, keep_total=3)
    guard = AppGuard(lambda *a: None, upload_dir=uploads, max_file_size=1000, files=owned)  # type: ignore[arg-type, return-value]
    first = owned.write("client:1.2.3.4", "comparison.csv", "author\n")
    assert first.parent.parent == uploads and first.read_text(encoding="utf-8") == "author\n"
    assert len(first.parent.name) > 30  # an unguessable folder of its own
    assert guard.servable(str(first), "client:1.2.3.4")
    assert not guard.servable(str(first), "client:5.6.7.8")
    assert not guard.servable(str(first), "token:abc")
    second = owned.write("client:1.2.3.4", "../../escape.png", b"\x89PNG")
    assert second.parent.parent == uploads and second.name == "escape.png"  # no way out of the folder
    third = owned.write("client:1.2.3.4", "coverage.csv", "x")
    assert not first.exists() and not first.parent.exists()  # past the owner's cap: deleted, revoked
    assert not guard.servable(str(first), "client:1.2.3.4")
    assert guard.servable(str(second), "client:1.2.3.4") and guard.servable(str(third), "client:1.2.3.4")
    assert owned.write("client:1.2.3.4", "coverage.csv", "x") == third  # the same file again: not a new one
    assert owned.write("client:5.6.7.8", "coverage.csv", "x") != third  # but another owner gets its own
    assert second.exists()  # the repeat did not push the owner past its cap
    others = [owned.write(f"client:10.0.0.{i}", "c.csv", "x") for i in range(1)]
    assert not second.exists()  # past the total cap: the oldest of anyone's
    assert all(p.exists() for p in [third, *others])
    owned.close()
    assert not any(p.exists() for p in [third, *others])
    assert not any(guard.servable(str(p), o) for p, o in [(third, "client:1.2.3.4"), (others[0], "client:10.0.0.0")])
    assert os.listdir(uploads) == []
