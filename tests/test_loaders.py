"""Loaders over real files: the py-pdf sample PDFs, a PDF rendered from the report, DOCX, Markdown
and text in the encodings Spanish-language offices use."""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
import unicodedata
import warnings
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader

from gcm_qa import index_store
from gcm_qa.cleaning import clean_pages
from gcm_qa.loaders import DocumentError, load, load_pdf
from gcm_qa.structure import layout

FIXTURES = Path(__file__).parent / "fixtures"
PDF_DIR = FIXTURES / "pdf"
REPORT = Path(__file__).resolve().parents[1] / "corpus" / "gcm-regional-review-lac-2022.txt"


def cleaned_text(pages: list[tuple[int | None, str]]) -> str:
    return "\n\n".join(p.text for p in clean_pages(pages))


# --- the py-pdf sample files ---------------------------------------------------------------------


def test_normal_pdf_pages_are_numbered_and_extracted() -> None:
    raw = load_pdf(PDF_DIR / "pdflatex-4-pages.pdf")
    assert [n for n, _ in raw.pages] == [1, 2, 3, 4]
    assert all(len(text) > 2000 for _, text in raw.pages)
    assert "Huardest gefburn" in raw.pages[0][1]
    assert raw.warnings == ()


def test_a_resource_warning_from_elsewhere_in_the_process_is_not_the_pdfs() -> None:
    """Warnings are caught process-wide while a PDF is read; a socket or file that some other part
    of the process left open, finalised meanwhile (here: by another thread, all along), is not a
    warning about the PDF."""
    stop = threading.Event()

    def elsewhere() -> None:
        while not stop.is_set():
            warnings.warn("unclosed <socket.socket fd=12>", ResourceWarning, stacklevel=1)
            time.sleep(0.0005)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    try:
        time.sleep(0.01)
        raw = load_pdf(PDF_DIR / "pdflatex-4-pages.pdf")
    finally:
        stop.set()
        thread.join()
    assert raw.warnings == ()


def test_normal_pdf_keeps_its_text_through_cleaning() -> None:
    """The blind text repeats its lines; body lines are still content, not running headers."""
    raw = load_pdf(PDF_DIR / "pdflatex-4-pages.pdf")
    raw_words = sum(len(text.split()) for _, text in raw.pages)
    clean_words = len(cleaned_text(raw.pages).split())
    assert clean_words >= 0.9 * raw_words, f"{clean_words} of {raw_words} words survived cleaning"


def test_password_protected_pdf_is_refused_with_its_name_and_reason() -> None:
    with pytest.raises(DocumentError) as info:
        load(PDF_DIR / "libreoffice-writer-password.pdf")
    message = str(info.value)
    assert message.startswith("libreoffice-writer-password.pdf: ")
    assert "password" in message
    assert info.value.path.name == "libreoffice-writer-password.pdf"


def test_aes256_pdf_with_empty_user_password_opens() -> None:
    raw = load(PDF_DIR / "derived-aes256-empty-user-password.pdf")
    plain = load(PDF_DIR / "pdflatex-4-pages.pdf")
    assert [n for n, _ in raw.pages] == [1, 2, 3, 4]
    assert raw.pages == plain.pages


def test_image_only_pdf_has_no_extractable_text() -> None:
    with pytest.raises(DocumentError, match="no extractable text") as info:
        load(PDF_DIR / "imagemagick-CCITTFaxDecode.pdf")
    assert "imagemagick-CCITTFaxDecode.pdf" in str(info.value)
    assert "OCR" in str(info.value)


def test_mostly_image_pdf_skips_empty_pages_but_keeps_numbers() -> None:
    raw = load(PDF_DIR / "imagemagick-images.pdf")
    assert [n for n, _ in raw.pages] == [1, 2, 3, 6]
    assert all(text.strip() == "Background" for _, text in raw.pages)


def test_truncated_pdf_is_reported_as_damaged() -> None:
    with pytest.raises(DocumentError, match="damaged") as info:
        load(PDF_DIR / "derived-truncated.pdf")
    assert str(info.value).startswith("derived-truncated.pdf: ")


def test_shifted_xref_pdf_recovers_and_reports_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gcm_qa.loaders"):
        raw = load(PDF_DIR / "derived-shifted-xref.pdf")
    assert [n for n, _ in raw.pages] == [1]
    assert "Lorem ipsum" in raw.pages[0][1]
    assert any("startxref" in w for w in raw.warnings)
    assert any(
        "derived-shifted-xref.pdf" in r.getMessage() and "startxref" in r.getMessage()
        for r in caplog.records
        if r.name == "gcm_qa.loaders"
    )


def test_shifted_xref_pdf_is_indexed_with_a_warning(
    make_engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine()
    shutil.copy(PDF_DIR / "derived-shifted-xref.pdf", tmp_path / "corpus" / "derived-shifted-xref.pdf")
    with caplog.at_level(logging.WARNING, logger="gcm_qa.loaders"):
        report = engine.build()
    assert report.errors == []
    assert report.documents == 1 and report.chunks >= 1
    assert all(c.doc_id == "derived-shifted-xref" and c.page_start == 1 for c in engine.index.chunks)
    assert any("startxref" in r.getMessage() for r in caplog.records)


def test_ligatures_in_a_two_column_pdf_are_folded() -> None:
    raw = load(PDF_DIR / "multicolumn.pdf")
    assert "ﬃ" in "".join(t for _, t in raw.pages)
    text = cleaned_text(raw.pages)
    assert "Official" in text
    assert not any(ch in text for ch in "ﬁﬂﬃﬄ")
    assert "adipiscing" in text and "adip-" not in text


def test_private_use_flag_glyphs_are_removed() -> None:
    raw = load(PDF_DIR / "google-doc-document.pdf")
    assert any(unicodedata.category(ch) == "Co" for _, t in raw.pages for ch in t)
    text = cleaned_text(raw.pages)
    assert not any(unicodedata.category(ch) == "Co" for ch in text)
    assert "Germany" in text and "EUR (€)" in text
    assert "Beautiful is better than ugly." in text


def test_arabic_text_survives() -> None:
    raw = load(PDF_DIR / "habibi.pdf")
    assert cleaned_text(raw.pages) == "حَبيبي habibi حَبيبي"


# --- a PDF rendered from the report ---------------------------------------------------------------

RUNNING_HEADER = "GCM regional review - Latin America and the Caribbean"
_LATIN1 = str.maketrans(
    {"–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...", "▶": "-", "◇": "-", "•": "-"}
)


def _report_region(lines: list[str], start: str, stop: str) -> list[str]:
    i = next(k for k, line in enumerate(lines) if line.startswith(start) and "\t" not in line)
    j = next(k for k in range(i + 1, len(lines)) if lines[k].startswith(stop))
    return lines[i:j]


def render_report_pdf(target: Path) -> Path:
    """Textbox 8 with the section around it, and Annex 2 with its tables, as a paged PDF with a
    running header and a page number on every page (core fonts: Latin-1 only)."""
    lines = REPORT.read_text(encoding="utf-8").splitlines()
    body = [*_report_region(lines, "2.4.1 Progress", "2.4.2 Situations"), ""]
    body += _report_region(lines, "Annex 2. Basic statistics", "Annex 3.")

    class Report(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", size=8)
            self.cell(0, 6, RUNNING_HEADER, align="C")
            self.ln(10)

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("Helvetica", size=8)
            self.cell(0, 6, str(self.page_no()), align="C")

    pdf = Report(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    for raw in body:
        text = raw.replace("\t", "  ").strip().translate(_LATIN1).replace("*", "")
        text = text.encode("latin-1", "replace").decode("latin-1")
        if not text:
            pdf.ln(3)
            continue
        heading = re.match(r"(?:\d\.\d\.\d |Textbox \d|Annex \d|Table \d)", text) is not None
        pdf.set_font("Helvetica", style="B" if heading else "", size=10)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.output(str(target))
    return target


@pytest.fixture
def report_pdf(tmp_path: Path) -> Path:
    return render_report_pdf(tmp_path / "gcm-review-excerpt.pdf")


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_rendered_report_pdf_loses_its_page_furniture(report_pdf: Path) -> None:
    raw = load(report_pdf)
    n_pages = len(PdfReader(report_pdf).pages)
    assert n_pages >= 4
    assert [n for n, _ in raw.pages] == list(range(1, n_pages + 1))
    assert all(RUNNING_HEADER in text for _, text in raw.pages)
    paragraphs = clean_pages(raw.pages)
    assert sum(RUNNING_HEADER in p.text for p in paragraphs) <= 1
    assert not [p.text for p in paragraphs if p.text.strip().isdigit()]
    text = "\n\n".join(p.text for p in paragraphs)
    assert "Decree 216 of 2021" in text and "TOTAL 936" in _squash(text).replace("|", "")


def test_question_on_a_rendered_pdf_is_cited_with_its_page(
    make_engine, tmp_path: Path, report_pdf: Path
) -> None:
    engine = make_engine()
    pdf_path = tmp_path / "corpus" / report_pdf.name
    shutil.move(report_pdf, pdf_path)
    report = engine.build()
    assert report.errors == [] and report.documents == 1
    chunks = engine.index.chunks
    n_pages = len(PdfReader(pdf_path).pages)
    assert all(c.page_start is not None and 1 <= c.page_start <= c.page_end <= n_pages for c in chunks)
    assert {c.page_start for c in chunks} == set(range(1, n_pages + 1))

    page_text = {i + 1: _squash(p.extract_text()) for i, p in enumerate(PdfReader(pdf_path).pages)}
    answer = engine.ask("What decree created the Temporary Protection Status for Venezuelans in Colombia?")
    assert not answer.abstained
    assert "Decree 216 of 2021" in answer.answer
    cite = answer.citations[0]
    assert cite.page is not None and cite.doc_id == "gcm-review-excerpt"
    first, _, last = cite.page.partition("-")
    pages = range(int(first), int(last or first) + 1)
    opening = " ".join(cite.quote.split()[:8])
    assert any(opening in page_text[n] for n in pages), (cite.page, opening)


def test_headings_in_a_pdf_become_sections(report_pdf: Path) -> None:
    """pypdf separates lines, not paragraphs: a heading line must still start its own section."""
    doc = layout(clean_pages(load(report_pdf).pages))

    def path_of(needle: str) -> tuple[str, ...]:
        at = doc.text.index(needle)
        return next(s.path for s in doc.sections if s.start <= at < s.end)

    assert path_of("over 56% of Venezuelans")[-1].startswith("Textbox 8. Temporary Protection Status")
    table2 = path_of("Delegations of countries")
    assert table2[0].startswith("Annex 2. Basic statistics")
    assert table2[-1].startswith("Table 2. People participating")


# --- DOCX, Markdown and text ----------------------------------------------------------------------


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Informe voluntario de Uruguay", 0)
    document.add_heading("Migration governance", 1)
    document.add_paragraph("The National Migration Board coordinates twelve ministries.")
    document.add_heading("Alternatives to detention", 2)
    document.add_paragraph("Uruguay does not detain migrants for administrative reasons.")
    document.add_paragraph("Community shelters for families", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for r, (year, permits) in enumerate(
        [("Year", "Residence permits"), ("2020", "14,532"), ("2021", "16,020")]
    ):
        table.cell(r, 0).text = year
        table.cell(r, 1).text = permits
    document.add_heading("Social security", 1)
    document.add_paragraph(
        "Uruguay is a party to the Ibero-American Multilateral Convention on Social Security."
    )
    document.core_properties.title = "Voluntary report of Uruguay"
    document.save(str(path))
    return path


def test_docx_text_tables_and_title(tmp_path: Path) -> None:
    raw = load(make_docx(tmp_path / "informe-uruguay.docx"))
    assert raw.title == "Voluntary report of Uruguay"
    paragraphs = clean_pages(raw.pages)
    rows = [p.text for p in paragraphs if p.kind == "table"]
    assert rows == ["Year | Residence permits", "2020 | 14,532", "2021 | 16,020"]
    assert "- Community shelters for families" in [p.text for p in paragraphs]
    assert "Uruguay does not detain migrants for administrative reasons." in [p.text for p in paragraphs]


def test_docx_heading_styles_become_section_paths(tmp_path: Path) -> None:
    raw = load(make_docx(tmp_path / "informe-uruguay.docx"))
    doc = layout(clean_pages(raw.pages))

    def path_of(needle: str) -> tuple[str, ...]:
        at = doc.text.index(needle)
        return next(s.path for s in doc.sections if s.start <= at < s.end)

    assert path_of("twelve ministries")[-1] == "Migration governance"
    assert path_of("does not detain")[-2:] == ("Migration governance", "Alternatives to detention")
    assert path_of("14,532")[-1] == "Alternatives to detention"
    assert path_of("Ibero-American Multilateral")[-1] == "Social security"
    assert "Alternatives to detention" not in path_of("Ibero-American Multilateral")


def test_corrupt_docx_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "roto.docx"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(DocumentError, match="not a readable DOCX") as info:
        load(bad)
    assert str(info.value).startswith("roto.docx: ")


MARKDOWN = """# Informe de Costa Rica

## Regular pathways

The **Special Category** for Nicaraguans was [extended](https://example.org/decree) in 2021.

## Detention

Costa Rica reported *no* detention of migrant children.
"""


def test_markdown_markup_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "costa-rica.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    text = cleaned_text(load(path).pages)
    assert "The Special Category for Nicaraguans was extended in 2021." in text
    assert not any(mark in text for mark in ("**", "](", "# ", "*no*"))


def test_markdown_headings_become_section_paths(tmp_path: Path) -> None:
    path = tmp_path / "costa-rica.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = layout(clean_pages(load(path).pages))
    paths = {s.path for s in doc.sections}
    assert ("Informe de Costa Rica", "Regular pathways") in paths
    assert ("Informe de Costa Rica", "Detention") in paths


def test_cp1252_spanish_text_is_decoded(tmp_path: Path) -> None:
    text = (
        "Informe de México sobre la migración\n\n"
        "Las niñas y los niños migrantes acceden a la educación y a la salud sin discriminación.\n"
    )
    path = tmp_path / "informe-mexico.txt"
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    raw = load(path)
    assert raw.pages == [(None, text)]
    assert "niñas" in cleaned_text(raw.pages)


def test_utf8_with_bom_and_form_feed_pages(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes("\ufeffFirst page text.\fSecond page text.\f\fFourth page.".encode())
    raw = load(path)
    assert raw.pages == [(1, "First page text."), (2, "Second page text."), (4, "Fourth page.")]


def test_text_document_metadata_is_inferred(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    path = tmp_path / "corpus" / "informe_voluntario_México_2021.txt"
    path.write_bytes(
        (
            "Informe voluntario de México\n\nLas personas migrantes en situación irregular "
            "pueden acceder a los servicios de salud y de educación en todo el país.\n"
        ).encode("cp1252")
    )
    meta, chunks, _ = index_store.prepare_document(path, None, engine.settings)
    assert meta.doc_id == "informe-voluntario-mexico-2021"
    assert (meta.author, meta.stakeholder, meta.language, meta.year) == ("Mexico", "State", "es", 2021)
    assert meta.title == "Informe voluntario de México"
    assert chunks and all(c.language == "es" and c.author == "Mexico" for c in chunks)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("statistics.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
        ("notes", b"plain text without a suffix", "unsupported file type ''"),
        ("empty.txt", b"", "the file is empty"),
        ("blank.md", b"  \n\n \t\n", "the file is empty"),
        ("empty.pdf", b"", "the file is empty"),
        ("binary.txt", b"\x00\x01\x02binary", "binary content"),
        ("html.pdf", b"<html><body>Not a PDF</body></html>", "damaged"),
    ],
)
def test_unreadable_inputs_raise_a_clear_error(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError) as info:
        load(path)
    assert str(info.value).startswith(f"{name}: ")
    assert reason in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="file not found"):
        load(tmp_path / "absent.pdf")
