"""Limits on every file (issue 12): bombs and oversized inputs are refused with the limit's name and the
measured size, before the expensive step; text in UTF-16 (with or without BOM), UTF-8 with BOM,
Windows-1252 and Latin-1 is read, and UTF-8 read as Windows-1252 ('PerÃº') is repaired.

Every file is generated here (the generators are benchmarks/bench_limits.py's); most tests lower a
limit through the settings so the files stay small, and the default-limit tests use bombs that pack
into kilobytes."""

from __future__ import annotations

import codecs
import importlib.util
import io
import itertools
import zipfile
import zlib
from pathlib import Path

import pytest
from lxml import etree

from gcm_qa import loaders
from gcm_qa.loaders import DocumentError, load, repair_mojibake
from gcm_qa.settings import LimitSettings, Settings

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_limits.py"
MB = 1_000_000


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_limits", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def refusal(path: Path, **limits: float) -> str:
    """The message of the DocumentError reading ``path`` under the given limits raises."""
    with pytest.raises(DocumentError) as info:
        load(path, LimitSettings(**limits))
    assert info.value.path == path
    return str(info.value)


# --- settings ---------------------------------------------------------------------------------------


def test_limits_are_a_settings_group_with_descriptions(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().limits == LimitSettings()
    assert all(f.description for f in LimitSettings.model_fields.values())
    monkeypatch.setenv("GCM_QA_LIMITS__MAX_CHARS", "1234")
    assert Settings().limits.max_chars == 1234


# --- DOCX -------------------------------------------------------------------------------------------


def test_docx_xml_bomb_is_refused_from_the_zip_directory_at_default_limits(tmp_path: Path) -> None:
    """101 MB of XML in a zip of some 100 KB: refused before a byte of it is inflated."""
    path = bench.docx_bomb(tmp_path / "xml-bomb.docx", 101 * MB // len(bench.PARAGRAPH) + 1)
    assert path.stat().st_size < 1 * MB
    assert refusal(path) == (
        "xml-bomb.docx: the DOCX expands to 101 MB of XML, over the 100 MB limit (limits.docx_max_xml_bytes)"
    )


def test_docx_paragraph_bomb_is_refused_at_default_limits(tmp_path: Path) -> None:
    """Issue 12's bomb: 2 million paragraphs, 12 MB of XML in a zip of some 30 KB; python-docx went past
    8 GB on it. The count is a streaming scan of the zip member, before python-docx parses it."""
    path = bench.docx_bomb(tmp_path / "paragraph-bomb.docx", 2_000_000, b"<w:p/>")
    assert path.stat().st_size < 100_000
    assert refusal(path) == (
        "paragraph-bomb.docx: the DOCX holds 2,000,000 paragraphs, over the 100,000-paragraph limit "
        "(limits.docx_max_paragraphs)"
    )


def test_docx_paragraph_limit_lowered(tmp_path: Path) -> None:
    path = bench.docx_bomb(tmp_path / "informe.docx", 150)
    message = refusal(path, docx_max_paragraphs=100)
    assert message == (
        "informe.docx: the DOCX holds 150 paragraphs, over the 100-paragraph limit (limits.docx_max_paragraphs)"
    )
    raw = load(path, LimitSettings(docx_max_paragraphs=150))
    assert raw.pages[0][1].count("Las personas migrantes") == 150


def _elements(path: Path) -> int:
    """XML elements of a DOCX's XML parts, counted by parsing them (what the byte scan must match)."""
    with zipfile.ZipFile(path) as archive:
        return sum(
            sum(1 for _ in etree.fromstring(archive.read(name)).iter())
            for name in archive.namelist()
            if name.endswith((".xml", ".rels"))
        )


def test_docx_element_limit_counts_like_a_parser(tmp_path: Path) -> None:
    path = bench.docx_bomb(tmp_path / "informe.docx", 100)
    n = _elements(path)
    assert n == 3 * 100 + 2 + 5 + 2  # p/r/t; document, body; the content types; the package rels
    assert refusal(path, docx_max_xml_elements=n - 1) == (
        f"informe.docx: the DOCX holds {n:,} XML elements, over the {n - 1:,}-element limit "
        "(limits.docx_max_xml_elements)"
    )
    load(path, LimitSettings(docx_max_xml_elements=n))


def test_tag_count_does_not_depend_on_where_the_pieces_break(monkeypatch: pytest.MonkeyPatch) -> None:
    xml = (bench._DOCUMENT_HEAD + b'<w:p w:rsidR="00A1"><w:pPr/><w:r><w:t>a</w:t></w:r></w:p>\n<w:p/>'
           b"<!-- <w:p> --><a:p><w:p>" + bench._DOCUMENT_TAIL)
    whole = loaders._count_tags(io.BytesIO(xml))
    # <w:p ...>, <w:p/>, <a:p>, <w:p>, and the one in the comment (a scan errs towards refusing); not
    # <w:pPr/>, not </w:p>
    assert whole[1] == 5
    for size in (1, 2, 3, 5, 7, 64):
        monkeypatch.setattr(loaders, "_SCAN_CHUNK", size)
        assert loaders._count_tags(io.BytesIO(xml)) == whole, size


def test_docx_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    path = bench.docx_bomb(tmp_path / "con-imagen.docx", 1, media_bytes=3 * MB)
    assert path.stat().st_size < 50_000
    assert refusal(path, docx_max_unzipped_bytes=2 * MB) == (
        "con-imagen.docx: the DOCX unzips to 3 MB, over the 2 MB limit (limits.docx_max_unzipped_bytes)"
    )


def test_docx_file_size_limit(tmp_path: Path) -> None:
    path = bench.docx_bomb(tmp_path / "informe.docx", 10)
    size = path.stat().st_size
    assert size < 1000
    assert refusal(path, docx_max_bytes=size - 1) == (
        f"informe.docx: the DOCX file is {size} bytes, over the {size - 1} bytes limit (limits.docx_max_bytes)"
    )


def test_docx_reading_stops_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock is checked every 256 blocks; a fake clock advancing 10 s a reading makes it exact."""
    path = bench.docx_bomb(tmp_path / "lento.docx", 600)
    ticks = itertools.count(0, 10)
    monkeypatch.setattr(loaders, "_now", lambda: float(next(ticks)))
    assert refusal(path, max_seconds=15) == (
        "lento.docx: reading took 20.0 s (stopped at block 256), over the 15 s limit (limits.max_seconds)"
    )


def test_docx_character_limit(tmp_path: Path) -> None:
    path = bench.docx_bomb(tmp_path / "informe.docx", 100)
    per_paragraph = len("Las personas migrantes acceden a la salud.")
    counted = (1000 // per_paragraph + 1) * per_paragraph  # stops at the first paragraph over the limit
    assert refusal(path, max_chars=1000) == (
        f"informe.docx: the text holds at least {counted:,} characters, over the 1,000-character limit "
        "(limits.max_chars)"
    )


# --- PDF --------------------------------------------------------------------------------------------


def _operators(n_bytes: int) -> int:
    """Bytes of content stream bench.pdf_stream_bomb writes when asked for ``n_bytes``."""
    return n_bytes // len(bench.TEXT_OPERATORS) * len(bench.TEXT_OPERATORS)


def test_pdf_stream_bomb_is_refused_before_parsing_at_default_limits(tmp_path: Path) -> None:
    """A page of 6 MB of text operators in a 7 KB file: pypdf would parse it for some 20 s."""
    path = bench.pdf_stream_bomb(tmp_path / "bomba.pdf", 1, 6 * MB)
    assert path.stat().st_size < 20_000
    assert _operators(6 * MB) > 5_999_900
    assert refusal(path) == (
        "bomba.pdf: page 1's content stream decodes to 6 MB, over the 2 MB limit "
        "(limits.pdf_max_page_content_bytes)"
    )


def test_pdf_200_page_stream_bomb_is_refused_at_its_first_page(tmp_path: Path) -> None:
    path = bench.pdf_stream_bomb(tmp_path / "bomba-200.pdf", 200, 5 * MB)
    assert refusal(path).startswith("bomba-200.pdf: page 1's content stream decodes to 5 MB, over the 2 MB")


def test_pdf_stream_far_over_the_limit_is_not_inflated_whole(tmp_path: Path) -> None:
    """pypdf's own decompression limit is lowered to four times the page limit while a page is measured."""
    path = bench.pdf_stream_bomb(tmp_path / "bomba.pdf", 1, 1 * MB)
    assert refusal(path, pdf_max_page_content_bytes=100_000) == (
        "bomba.pdf: page 1's content stream decodes to more than 400 KB, over the 100 KB limit "
        "(limits.pdf_max_page_content_bytes)"
    )


def test_pdf_form_xobject_counts_with_its_page(tmp_path: Path) -> None:
    """Text extraction parses the forms a page draws, so a bomb hidden in one is measured too."""
    from pypdf import PdfWriter
    from pypdf.generic import DictionaryObject, NameObject, StreamObject

    writer = PdfWriter()
    form = StreamObject()
    form._data = zlib.compress(bench.TEXT_OPERATORS * 20_000)
    form.update({NameObject("/Filter"): NameObject("/FlateDecode"), NameObject("/Type"): NameObject("/XObject"),
                 NameObject("/Subtype"): NameObject("/Form")})
    contents = StreamObject()
    contents._data = b"/Fm1 Do"
    page = writer.add_blank_page(612, 792)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Fm1"): writer._add_object(form)})}
    )
    page[NameObject("/Contents")] = writer._add_object(contents)
    path = tmp_path / "formulario.pdf"
    writer.write(path)
    assert len(b"/Fm1 Do") + len(bench.TEXT_OPERATORS) * 20_000 == 1_020_007
    assert refusal(path, pdf_max_page_content_bytes=500_000) == (
        "formulario.pdf: page 1's content stream decodes to 1 MB, over the 500 KB limit "
        "(limits.pdf_max_page_content_bytes)"
    )


def test_pdf_page_limit(tmp_path: Path) -> None:
    path = bench.pdf_stream_bomb(tmp_path / "paginas.pdf", 3, 100)
    assert refusal(path, pdf_max_pages=2) == (
        "paginas.pdf: the PDF has 3 pages, over the 2-page limit (limits.pdf_max_pages)"
    )
    assert [n for n, _ in load(path, LimitSettings(pdf_max_pages=3)).pages] == [1, 2, 3]


def test_pdf_total_content_limit(tmp_path: Path) -> None:
    per_page = len(bench.TEXT_OPERATORS) * 1000
    assert per_page == 51_000
    path = bench.pdf_stream_bomb(tmp_path / "total.pdf", 5, per_page, shared=False)
    assert refusal(path, pdf_max_content_bytes=120_000) == (
        "total.pdf: the PDF's page content streams decode to 153 KB by page 3, over the "
        "120 KB limit (limits.pdf_max_content_bytes)"
    )


def test_pdf_reading_stops_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = bench.pdf_stream_bomb(tmp_path / "lento.pdf", 3, 100)
    ticks = itertools.count(0, 10)
    monkeypatch.setattr(loaders, "_now", lambda: float(next(ticks)))
    assert refusal(path, max_seconds=25) == (
        "lento.pdf: reading took 30.0 s (stopped before page 3 of 3), over the 25 s limit (limits.max_seconds)"
    )


def test_pdf_character_limit(tmp_path: Path) -> None:
    path = bench.pdf_stream_bomb(tmp_path / "texto.pdf", 3, len(bench.TEXT_OPERATORS) * 10)
    first_page = len(load(path).pages[0][1])
    assert refusal(path, max_chars=first_page + 1) == (
        f"texto.pdf: the text holds at least {2 * first_page:,} characters, over the {first_page + 1:,}-character "
        "limit (limits.max_chars)"
    )


def test_pdf_file_size_limit(tmp_path: Path) -> None:
    path = bench.pdf_stream_bomb(tmp_path / "grande.pdf", 1, 100)
    size = path.stat().st_size
    assert size < 1000
    assert refusal(path, pdf_max_bytes=100) == (
        f"grande.pdf: the PDF file is {size} bytes, over the 100 bytes limit (limits.pdf_max_bytes)"
    )


# --- text: size -------------------------------------------------------------------------------------


def test_50_mb_text_file_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "grande.txt"
    with path.open("wb") as out:  # sparse: nothing is written, nothing is read
        out.truncate(50 * MB)
    assert refusal(path) == "grande.txt: the text file is 50 MB, over the 10 MB limit (limits.text_max_bytes)"


def test_text_character_limit(tmp_path: Path) -> None:
    path = bench.text_file(tmp_path / "informe.txt", 20_000)
    chars = len(path.read_text(encoding="utf-8", errors="replace"))
    assert refusal(path, max_chars=10_000) == (
        f"informe.txt: the text holds {chars:,} characters, over the 10,000-character limit (limits.max_chars)"
    )


# --- text: encodings --------------------------------------------------------------------------------

TEXT = "Informe de Perú sobre la migración\n\nLas niñas y los niños migrantes acceden a la educación — «sin más».\n"
LATIN1_TEXT = TEXT.replace("—", "-")  # Latin-1 has no dash


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("utf8.txt", TEXT.encode("utf-8"), TEXT),
        ("utf8-bom.txt", codecs.BOM_UTF8 + TEXT.encode("utf-8"), TEXT),
        ("utf16-le-bom.txt", codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), TEXT),
        ("utf16-be-bom.txt", codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), TEXT),
        ("utf16-le.txt", TEXT.encode("utf-16-le"), TEXT),
        ("utf16-be.txt", TEXT.encode("utf-16-be"), TEXT),
        ("utf32-bom.md", codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), TEXT),
        ("cp1252.txt", TEXT.encode("cp1252"), TEXT),
        ("latin1.txt", LATIN1_TEXT.encode("latin-1"), LATIN1_TEXT),
    ],
)
def test_text_encodings_are_read(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    raw = load(path)
    assert raw.pages == [(None, expected)]
    assert raw.warnings == ()


def test_utf16_without_bom_in_a_non_latin_script(tmp_path: Path) -> None:
    """Arabic in UTF-16 has NULs only in its spaces and line breaks: still enough to tell."""
    text = "حَبيبي هو اسم أغنية\nحَبيبي\n" * 10
    path = tmp_path / "habibi.txt"
    path.write_bytes(text.encode("utf-16-le"))
    assert load(path).pages == [(None, text)]


def test_text_with_a_utf16_bom_that_does_not_decode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "roto.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "abc".encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate
    assert refusal(path) == (
        "roto.txt: the file starts with a UTF-16 LE byte-order mark but is not UTF-16 LE "
        "(undecodable bytes at offset 8)"
    )


def test_text_of_control_codes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "datos.txt"
    path.write_bytes(bytes(range(1, 32)) * 20 + b"some text")
    message = refusal(path)
    assert message.startswith("datos.txt: binary content in a text file (wrong extension?): ")
    assert "are control codes; save it as UTF-8" in message


def test_mojibake_is_repaired(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    mangled = TEXT.encode("utf-8").decode("cp1252")
    assert "PerÃº" in mangled and "migraciÃ³n" in mangled and "â€”" in mangled
    path = tmp_path / "mojibake.txt"
    path.write_text(mangled, encoding="utf-8")
    raw = load(path)
    assert raw.pages == [(None, TEXT)]
    assert raw.warnings == (
        "repaired 9 mojibake sequences (UTF-8 read as Windows-1252, e.g. 'PerÃº' for 'Perú')",
    )  # ú ó ñ ñ ó — « á »
    assert any("mojibake.txt: repaired 9 mojibake" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PerÃº y la migraciÃ³n", "Perú y la migración"),
        ("CAMIÃ“N â€œcomillasâ€\x9d", "CAMIÓN “comillas”"),  # Windows-1252's undefined 0x9D read as Latin-1
        ("CAMIÃ\x93N", "CAMIÓN"),  # UTF-8 read as Latin-1
        ("ÃƒÂ³", "ó"),  # mangled twice
        ("Perú, “migración”", "Perú, “migración”"),  # correct text is left alone
        ("PERÚ” y CAFÉ” y NIÑO»", "PERÚ” y CAFÉ” y NIÑO»"),  # would decode to Arabic and IPA letters
    ],
)
def test_mojibake_repair_cases(text: str, expected: str) -> None:
    assert repair_mojibake(text)[0] == expected


# --- through the index ------------------------------------------------------------------------------


def test_the_index_build_reports_a_file_over_a_limit(make_engine, tmp_path: Path) -> None:
    engine = make_engine(limits={"max_chars": 1000})
    (tmp_path / "corpus" / "corto.txt").write_text(TEXT, encoding="utf-8")
    bench.text_file(tmp_path / "corpus" / "largo.txt", 5000)
    report = engine.build()
    assert report.documents == 1
    assert len(report.errors) == 1 and report.errors[0].startswith("largo.txt: the text holds ")
    assert "over the 1,000-character limit (limits.max_chars)" in report.errors[0]


def test_sizes_that_would_round_alike_are_shown_in_bytes(tmp_path: Path) -> None:
    path = bench.text_file(tmp_path / "justo.txt", 1_000_400)
    assert refusal(path, text_max_bytes=1_000_000) == (
        "justo.txt: the text file is 1,000,400 bytes, over the 1,000,000-byte limit (limits.text_max_bytes)"
    )


FIXTURES = sorted(p for p in (Path(__file__).parent / "fixtures").rglob("*") if p.is_file())


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_every_fixture_file_is_read_or_refused_in_one_line_naming_it(path: Path) -> None:
    """Every real third-party file the tests hold (PDFs of every kind, licences, READMEs, the invented
    questionnaires), read as a user's upload would be: a document, or a DocumentError, nothing else."""
    from gcm_qa.loaders import DocumentError, load

    try:
        raw = load(path)
    except DocumentError as exc:
        message = str(exc)
        assert message.startswith(path.name) and "\n" not in message
    else:
        assert raw.pages and any(text.strip() for _, text in raw.pages)
