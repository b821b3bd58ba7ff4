"""OCR of scanned PDFs (issue 13, "Scanned forms"): real Tesseract (``make ocr``), real images, no mocks.

The scans are made here: lines of an invented Spanish form drawn with DejaVu Sans at 200 dpi and saved
by Pillow as image-only PDFs, bilevel ones compressed with CCITT fax like a scanner's. The py-pdf
fixture with a CCITT image holds a 16 x 16 smiley and no words, so it shows the image is decoded and
that a scan OCR finds nothing in is refused by name. A missing Tesseract fails these tests, as a
missing Chromium fails the browser test, instead of skipping them: CI cannot pass without OCR."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import matplotlib
import pytesseract
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, NameObject, NumberObject, StreamObject

from gcm_qa import app_render, index_store
from gcm_qa.cli import format_answer
from gcm_qa.loaders import OCR_INSTALL, DocumentError, load
from gcm_qa.settings import LimitSettings, Settings
from gcm_qa.types import Chunk, Citation

PDF_DIR = Path(__file__).parent / "fixtures" / "pdf"
CCITT = PDF_DIR / "imagemagick-CCITTFaxDecode.pdf"
DPI = 200
_DEBIAN_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FONT = _DEBIAN_FONT if _DEBIAN_FONT.exists() else Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"
FORM = [
    "DOCUMENTO INVENTADO PARA PRUEBAS",
    "",
    "Área temática 2: Protección",
    "",
    "3. ¿Qué normas regulan la detención de niñas y niños migrantes?",
    "",
    "La Ley de Migración prohíbe la detención de niñas y niños migrantes.",
    "En 2023 se registraron 48.300 solicitudes de refugio.",
]
FORM_WORDS = ("DOCUMENTO INVENTADO PARA PRUEBAS", "Área temática 2: Protección", "detención", "niñas", "48.300")


@pytest.fixture(autouse=True, scope="module")
def tesseract() -> None:
    try:
        languages = set(pytesseract.get_languages())
    except OSError:
        languages = set()
    if not {"spa", "eng"} <= languages:
        pytest.fail(f"these tests need Tesseract with Spanish and English ({OCR_INSTALL}); found {sorted(languages)}")


def page_image(lines: list[str], dpi: int = DPI, height_in: float = 11.69) -> Image.Image:
    """An A4-wide page of 12-point lines, as a scanner at ``dpi`` would see it."""
    image = Image.new("L", (round(8.27 * dpi), round(height_in * dpi)), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), round(12 * dpi / 72))
    y = dpi
    for line in lines:
        draw.text((dpi, y), line, font=font, fill=0)
        y += round(12 * 1.7 * dpi / 72)
    return image


def scan(path: Path, *pages: Image.Image, bilevel: bool = True) -> Path:
    """An image-only PDF, one image a page: bilevel pages are CCITT fax (Pillow's choice), grey ones JPEG."""
    images = [p.convert("1") if bilevel else p for p in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=DPI)
    return path


def settings_for(tmp_path: Path, **limits: float) -> Settings:
    (tmp_path / "corpus").mkdir(exist_ok=True)
    return Settings.model_validate({"paths": {"corpus_dir": tmp_path / "corpus", "index_dir": tmp_path / "index"},
                                    "limits": limits})


def refusal(path: Path, **limits: float) -> str:
    with pytest.raises(DocumentError) as info:
        load(path, LimitSettings(**limits))
    assert info.value.path == path
    return str(info.value)


def no_tesseract_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The tests' process and Tesseract's see a PATH with nothing on it, as on a machine without it."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


# --- the py-pdf fixture ------------------------------------------------------------------------------


def test_the_ccitt_fixture_is_decoded_and_ocr_finds_no_words_in_its_smiley() -> None:
    """pypdf decodes the CCITT image (a white smiley on black: eyes at (3, 3) and (12, 3)); Tesseract
    reads it and finds no words, and the file is refused saying so, by name."""
    image = PdfReader(CCITT).pages[0].images[0].image
    assert (image.mode, image.size) == ("1", (16, 16))
    assert image.getpixel((3, 3)) and image.getpixel((12, 3)) and not image.getpixel((0, 0))
    assert refusal(CCITT) == (
        "imagemagick-CCITTFaxDecode.pdf: no extractable text: OCR (Tesseract, spa+eng) found no words in the "
        "images of page 1"
    )


def test_a_mostly_image_fixture_keeps_its_text_pages_and_says_what_ocr_found() -> None:
    raw = load(PDF_DIR / "imagemagick-images.pdf")
    assert [n for n, _ in raw.pages] == [1, 2, 3, 6]  # pages 4 and 5: a 16 x 16 image each, no words
    assert raw.ocr_pages == frozenset()
    assert raw.warnings == ("OCR (Tesseract, spa+eng) found no words in the images of pages 4-5",)


# --- an invented scanned form ------------------------------------------------------------------------


@pytest.mark.parametrize(("bilevel", "language"), [(True, "es"), (False, None)],
                         ids=["ccitt-fax-in-spanish", "jpeg-in-spanish-and-english"])
def test_a_scanned_form_is_read_with_its_accents_and_figures(
    tmp_path: Path, bilevel: bool, language: str | None
) -> None:
    """The manifest's language when it gives one ('es': Tesseract's 'spa'), else Spanish and English."""
    path = scan(tmp_path / "formulario.pdf", page_image(FORM, height_in=4), bilevel=bilevel)
    image = PdfReader(path).pages[0]["/Resources"]["/XObject"]["/image"]
    assert image["/Filter"] == ["/CCITTFaxDecode"] if bilevel else ["/DCTDecode"]
    assert PdfReader(path).pages[0].extract_text() == ""  # no text layer at all
    raw = load(path, language=language)
    assert raw.ocr_pages == {1}
    text = raw.pages[0][1]
    for words in FORM_WORDS:
        assert words in text
    assert "¿Qué normas regulan la detención de niñas y niños migrantes?" in text


def test_a_page_turned_by_rotate_is_read_upright(tmp_path: Path) -> None:
    """A scanner that saves the page sideways and sets /Rotate 90 for viewers: Tesseract is given the
    page as a viewer shows it (given the image as stored, it reads no line of the form)."""
    path = scan(tmp_path / "girada.pdf", page_image(FORM, height_in=4).rotate(90, expand=True))
    writer = PdfWriter(clone_from=path)
    writer.pages[0].rotate(90)
    writer.write(path)
    text = load(path).pages[0][1]
    assert "48.300" in text and "detención" in text


@pytest.mark.slow
def test_the_scanned_questionnaire_fixture_is_read_word_for_word() -> None:
    """The invented Quetzalia form (tests/fixtures/questionnaires: two grey JPEG pages at 200 dpi with
    specks of dust, no text layer): every word and figure of its source text comes back."""
    folder = Path(__file__).parent / "fixtures" / "questionnaires"
    raw = load(folder / "forms" / "quetzalia-cuestionario-escaneado.pdf", language="es")
    assert raw.ocr_pages == {1, 2}

    def words(text: str) -> Counter[str]:
        return Counter(re.findall(r"\w+(?:[.,]\d+)*", text.lower()))

    source = words((folder / "sources" / "quetzalia-cuestionario-escaneado.txt").read_text(encoding="utf-8"))
    read = words(" ".join(text for _, text in raw.pages))
    recall = sum((source & read).values()) / sum(source.values())
    assert recall >= 0.97, f"{recall:.3f}; missed: {sorted((source - read).elements())}"
    figures = [w for w in source if re.search(r"\d", w)]
    assert [f for f in figures if f not in read] == []


@pytest.mark.slow
def test_a_scanned_form_is_indexed_cited_and_marked_as_ocr(make_engine, tmp_path: Path) -> None:
    """Through the engine's add path: the chunks are marked, the answer's citation carries the mark, and
    the CLI, the chat and the JSON show it."""
    path = scan(tmp_path / "cuestionario-escaneado.pdf", page_image(FORM))
    engine = make_engine()
    result = engine.add([path])
    assert result.errors == [] and result.added == ["cuestionario-escaneado.pdf"]
    chunks = engine.index.chunks
    assert chunks and all(c.ocr for c in chunks)
    assert "48.300" in " ".join(c.text for c in chunks)

    answer = engine.ask("¿Qué normas regulan la detención de niñas y niños migrantes?")
    assert not answer.abstained and answer.citations
    citation = answer.citations[0]
    assert citation.ocr and citation.page == "1"
    assert "detención" in citation.quote
    assert citation.to_dict()["ocr"] is True
    assert any(p["ocr"] for p in answer.to_dict()["passages"])
    printed = format_answer(answer)
    assert "p. 1 · OCR" in printed and "(text read by OCR from a scan; check it against the page)" in printed
    assert "p. 1, read by OCR" in app_render.format_answer_markdown(answer)
    assert "text read by OCR; check against the scan" in app_render.render_sources_html(answer)


@pytest.mark.slow
def test_a_mixed_pdf_ocrs_only_its_page_without_text(tmp_path: Path) -> None:
    """fpdf2 writes page 1 with a text layer and page 2 as one image: page 1 keeps its own text, page 2
    is read by OCR, and only the chunks of page 2 are marked."""
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=11)
    pdf.add_page()
    typed = ("Informe con capa de texto: la migración regular y la protección de derechos en la región. " * 20).strip()
    pdf.multi_cell(0, 6, typed)
    pdf.add_page()
    pdf.image(page_image(FORM, height_in=4), x=0, y=0, w=210)
    path = tmp_path / "mixto.pdf"
    pdf.output(str(path))
    assert [bool(p.extract_text().strip()) for p in PdfReader(path).pages] == [True, False]

    raw = load(path)
    assert raw.ocr_pages == {2}
    assert raw.pages[0] == (1, PdfReader(path).pages[0].extract_text())
    assert "48.300" in raw.pages[1][1] and "detención" in raw.pages[1][1]

    chunks = index_store.prepare_document(path, {"language": "es"}, settings_for(tmp_path))[1]
    by_page = {(c.page_start, c.page_end): c.ocr for c in chunks}
    assert by_page[(1, 1)] is False
    assert by_page[(2, 2)] is True
    assert all(c.ocr == (c.page_end == 2) for c in chunks)


# --- without Tesseract -------------------------------------------------------------------------------


def test_without_tesseract_a_scan_is_refused_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_tesseract_on_path(monkeypatch, tmp_path)
    assert shutil.which("tesseract") is None
    assert refusal(CCITT) == (
        "imagemagick-CCITTFaxDecode.pdf: no extractable text: page 1 holds only images, and OCR cannot read them "
        "here (Tesseract is not installed: no 'tesseract' program): install tesseract-ocr with "
        "tesseract-ocr-spa and tesseract-ocr-eng (make ocr)"
    )


def test_a_tesseract_command_that_does_not_exist_is_the_same_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-tesseract"
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(missing))
    message = refusal(scan(tmp_path / "escaneo.pdf", page_image(FORM, height_in=4)))
    assert message.startswith("escaneo.pdf: no extractable text: page 1 holds only images")
    assert f"no '{missing}' program" in message and message.endswith(OCR_INSTALL)


def test_without_spanish_language_data_a_scan_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tesseract itself is there, its language data is not (TESSDATA_PREFIX points at an empty folder)."""
    empty = tmp_path / "tessdata"
    empty.mkdir()
    monkeypatch.setenv("TESSDATA_PREFIX", str(empty))
    assert subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout.count("\n") == 1
    path = scan(tmp_path / "escaneo.pdf", page_image(FORM, height_in=4))
    assert refusal(path) == (
        "escaneo.pdf: no extractable text: page 1 holds only images, and OCR cannot read them here (Tesseract "
        f"has no 'spa' or 'eng' language data): {OCR_INSTALL}"
    )
    with pytest.raises(DocumentError, match="Tesseract has no 'spa' language data"):
        load(path, language="es")


def test_without_tesseract_a_mixed_pdf_keeps_its_text_pages_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_tesseract_on_path(monkeypatch, tmp_path)
    raw = load(PDF_DIR / "imagemagick-images.pdf")
    assert [n for n, _ in raw.pages] == [1, 2, 3, 6]
    assert raw.ocr_pages == frozenset()
    assert len(raw.warnings) == 1
    assert raw.warnings[0].startswith("pages 4-5 hold only images, and OCR cannot read them here")
    assert raw.warnings[0].endswith(OCR_INSTALL)


# --- limits ------------------------------------------------------------------------------------------


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    path = scan(tmp_path / "enorme.pdf", page_image(FORM, height_in=4))
    assert refusal(path, pdf_max_image_pixels=1_000_000) == (
        "enorme.pdf: page 1 holds an image of 1,654 x 800 pixels, over the 1,000,000-pixel limit "
        "(limits.pdf_max_image_pixels)"
    )


def test_ocr_text_counts_against_the_character_limit(tmp_path: Path) -> None:
    path = scan(tmp_path / "larga.pdf", page_image(FORM, height_in=4))
    message = refusal(path, max_chars=100)
    assert re.fullmatch(r"larga\.pdf: the text holds at least [\d,]+ characters, over the 100-character limit "
                        r"\(limits\.max_chars\)", message), message


@pytest.mark.slow
def test_ocr_is_stopped_when_the_file_runs_out_of_time(tmp_path: Path) -> None:
    """A full page of text takes Tesseract 2-3 s here; with half a second for the file, Tesseract is
    stopped (or not started) and the file refused with the limit's name."""
    path = scan(tmp_path / "lenta.pdf", page_image(FORM * 12, dpi=300), bilevel=False)
    started = time.monotonic()
    message = refusal(path, max_seconds=0.5)
    assert time.monotonic() - started < 2
    assert re.fullmatch(r"lenta\.pdf: reading took [\d.]+ s \((stopped before OCR of page 1, 1 of 1 without text|"
                        r"OCR of page 1 stopped)\), over the 0\.5 s limit \(limits\.max_seconds\)", message), message


def test_an_image_pypdf_cannot_decode_is_named_with_its_page(tmp_path: Path) -> None:
    """A JBIG2 image whose data is junk (and, without the jbig2dec program, one pypdf cannot decode at
    all): the page and pypdf's reason are in the refusal."""
    writer = PdfWriter()
    page = writer.add_blank_page(200, 200)
    image = StreamObject()
    image.set_data(b"not a JBIG2 stream")
    image.update({NameObject(k): v for k, v in {
        "/Type": NameObject("/XObject"), "/Subtype": NameObject("/Image"), "/Width": NumberObject(100),
        "/Height": NumberObject(100), "/BitsPerComponent": NumberObject(1), "/ColorSpace": NameObject("/DeviceGray"),
        "/Filter": NameObject("/JBIG2Decode")}.items()})
    content = StreamObject()
    content.set_data(b"q 200 0 0 200 0 0 cm /Im0 Do Q")
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(image)})})
    page[NameObject("/Contents")] = writer._add_object(content)
    path = tmp_path / "jbig2.pdf"
    writer.write(path)
    assert refusal(path).startswith("jbig2.pdf: no extractable text: page 1's image could not be read (")


# --- old indexes -------------------------------------------------------------------------------------


def test_chunks_and_citations_of_indexes_built_before_ocr_load_unmarked() -> None:
    chunk = Chunk(chunk_id="a:0", doc_id="a", title="A", kind="report", author="x", language="es",
                  stakeholder="other", section=[], page_start=1, page_end=1, start=0, end=4, text="Hola")
    stored = chunk.to_dict()
    del stored["ocr"]
    assert Chunk.from_dict(stored).ocr is False
    assert Citation(n=1, doc_id="a", title="A", section="", page="1", quote="Hola", score=1.0, passage_rank=1,
                    chunk_id="a:0").ocr is False
