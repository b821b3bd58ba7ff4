"""Read PDF, DOCX, Markdown and plain-text files into (page, text) pairs.

Each loader only extracts; cleaning is shared (``cleaning.clean_pages``). A file that cannot be
read raises :class:`DocumentError` naming the file and the reason, so one bad upload is reported
and skipped while the rest of the corpus is indexed.

Every file is read under limits (``settings.LimitSettings``): bytes on disk, what a DOCX unzips to
and how many XML elements and paragraphs it holds (counted from the zip before python-docx parses
anything), pages and decoded content-stream bytes of a PDF (checked page by page before pypdf parses
a page), characters of text, and wall-clock seconds. Small files can be built to expand a
thousandfold (a 10 KB PDF whose page content inflates to 5 MB took 71 s and gave 5,735 junk
passages; a few-MB DOCX with 2 million paragraphs drove python-docx past 8 GB), so sizes are
measured before the expensive step, and a file over a limit is refused with the limit's name and
the measured size instead of being read halfway.

PDF pages without a text layer (scans) are read by OCR when Tesseract is installed (``make ocr``):
pypdf decodes each page's images, CCITT fax included, and Tesseract reads them in the document's
language (Spanish and English when the manifest does not say). OCR is optional, so without it a
scanned file is refused as before, now saying what to install, and a mixed file keeps its text pages.
"""

from __future__ import annotations

import logging
import os
import re
import time
import unicodedata
import warnings
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcm_qa.settings import LimitSettings

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".pdf", ".docx", ".md", ".markdown", ".txt")


class DocumentError(Exception):
    """A document that cannot be indexed; the message names the file and says why."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{Path(path).name}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class RawDocument:
    pages: list[tuple[int | None, str]]
    title: str | None = None  # from the file's own metadata, when it has any
    warnings: tuple[str, ...] = ()
    # pages whose text OCR read: machine reading of a scan, marked in citations so a reader checks it
    ocr_pages: frozenset[int] = frozenset()


# --- limits -----------------------------------------------------------------------------------------


def _size(n: float) -> str:
    """Bytes for a person: '812 MB', '4.8 MB', '6 MB', '900 KB', '37 bytes' (1 MB = 1,000,000 bytes)."""
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            shown = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}".removesuffix(".0")
            return f"{shown} {unit}"
    return f"{int(n):,} bytes"


def _sizes(measured: int, limit: int) -> tuple[str, str]:
    """Both sizes for one message, in exact bytes when rounding would show them equal ('300 MB, over the
    300 MB limit')."""
    shown = _size(measured), _size(limit)
    return shown if shown[0] != shown[1] else (f"{measured:,} bytes", f"{limit:,}-byte")


def _over(what: str, measured: str, limit: str, name: str) -> str:
    """The one wording of every limit message: what was measured, the limit, and the setting to raise."""
    return f"{what} {measured}, over the {limit} limit (limits.{name})"


def _now() -> float:
    """The clock of the wall-time limit (one place for tests to replace)."""
    return time.monotonic()


@dataclass
class _Budget:
    """One file's limits while it is read: the wall-clock deadline and the characters taken so far.

    The loaders run in-process, so the deadline is cooperative: checked between pages, paragraphs and
    blocks. Each step between checks is itself bounded by a size limit (a PDF page by its content
    stream, a DOCX by its element count), so no single step runs long."""

    path: Path
    limits: LimitSettings
    started: float = field(default_factory=lambda: _now())
    chars: int = 0

    def check_time(self, where: str) -> None:
        elapsed = _now() - self.started
        if elapsed > self.limits.max_seconds:
            raise DocumentError(
                self.path, _over("reading took", f"{elapsed:,.1f} s ({where})", f"{self.limits.max_seconds:g} s",
                                 "max_seconds")
            )

    def check_bytes(self, kind: str, name: str) -> None:
        """The file's size on disk against ``limits.<name>``, before anything reads it."""
        size, limit = self.path.stat().st_size, getattr(self.limits, name)
        if size > limit:
            raise DocumentError(self.path, _over(f"the {kind} file is", *_sizes(size, limit), name))

    def add_chars(self, n: int, *, partial: bool = True) -> None:
        self.chars += n
        if self.chars > self.limits.max_chars:
            measured = f"{'at least ' if partial else ''}{self.chars:,} characters"
            raise DocumentError(
                self.path, _over("the text holds", measured, f"{self.limits.max_chars:,}-character", "max_chars")
            )


# --- PDF --------------------------------------------------------------------------------------------


def load_pdf(path: Path, limits: LimitSettings | None = None, language: str | None = None) -> RawDocument:
    """Each page's text with its page number; pypdf's warnings about damage it recovered from are kept.

    Pages without a text layer are read by OCR (Tesseract) in ``language`` (the manifest's code, 'es'
    or 'en'; both when None), within the same limits. Refused: encrypted files that need a password,
    damaged ones pypdf cannot recover, image-only ones OCR cannot read (or cannot run on: Tesseract
    missing), and files over ``limits`` (bytes, pages, a page's decoded content, all pages' content,
    an image's pixels, characters, seconds)."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

    budget = _Budget(path, limits or LimitSettings())
    budget.check_bytes("PDF", "pdf_max_bytes")
    caught: list[str] = []
    handler = _ListHandler(caught)
    pypdf_log = logging.getLogger("pypdf")
    pypdf_log.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            reader = PdfReader(path)  # strict=False: recovers damaged xref tables
            if reader.is_encrypted and not _decrypted(reader):
                raise DocumentError(path, "the PDF is encrypted and needs a password to open")
            pages = _pdf_pages(reader, budget)
            scan = _ocr_pages(reader, pages, budget, language)
            # the PDF's own warnings; not a ResourceWarning for a socket or file some other part of the
            # process left open, which the collector may finalise while the PDF is being read
            caught.extend(str(w.message) for w in warned if not issubclass(w.category, ResourceWarning))
        title = None
        try:
            meta = reader.metadata
            title = (meta.title or "").strip() or None if meta else None
        except PyPdfError:
            pass
    except DocumentError:
        raise
    except FileNotDecryptedError as exc:
        raise DocumentError(path, "the PDF is encrypted and needs a password to open") from exc
    except DependencyError as exc:
        raise DocumentError(path, f"the PDF uses encryption this install cannot read ({exc})") from exc
    except LimitReachedError as exc:  # one of pypdf's own safety limits, not damage
        raise DocumentError(path, f"the PDF is over one of pypdf's safety limits ({exc})") from exc
    except (PdfReadError, PyPdfError, ValueError, OSError, KeyError) as exc:
        raise DocumentError(path, f"damaged or truncated PDF ({exc})") from exc
    except (RecursionError, MemoryError) as exc:
        raise DocumentError(path, f"the PDF is too deeply nested or too large to read ({type(exc).__name__})") from exc
    finally:
        pypdf_log.removeHandler(handler)
    for message in caught:
        log.warning("%s: pypdf: %s", path.name, message)
    pages = [(n, scan.texts.get(n, t)) for n, t in pages]
    if not any(text.strip() for _, text in pages):
        raise DocumentError(path, "no extractable text: " + (
            "; ".join(scan.problems) or "its pages hold neither text nor images (text drawn as outlines?)"))
    for problem in scan.problems:  # pages left out of a file that is read all the same
        log.warning("%s: %s", path.name, problem)
    read = frozenset(n for n, t in scan.texts.items() if t)
    if read:
        log.info("%s: OCR (%s) read %s in %.1f s", path.name, scan.languages, _page_list(read), scan.seconds)
    return RawDocument([(n, t) for n, t in pages if t.strip()], title, tuple(caught) + scan.problems, read)


def _pdf_pages(reader: Any, budget: _Budget) -> list[tuple[int, str]]:
    """Each page's text, after checking what its content stream decodes to.

    pypdf caps one decoded stream at 75 MB by default; a page of 5 MB of text operators is far below
    that and still takes pypdf a quarter of a minute to parse. So each page's content streams are
    decoded first (cheap: zlib runs at hundreds of MB/s) with pypdf's own decompression limits lowered
    to a few times the page limit, which bounds memory even for a stream built to inflate a
    thousandfold, and the page is refused before its text operators are parsed."""
    limits = budget.limits
    n_pages = len(reader.pages)
    if n_pages > limits.pdf_max_pages:
        raise DocumentError(
            budget.path, _over("the PDF has", f"{n_pages:,} pages", f"{limits.pdf_max_pages:,}-page", "pdf_max_pages")
        )
    total = 0
    pages: list[tuple[int, str]] = []
    for i, page in enumerate(reader.pages):
        budget.check_time(f"stopped before page {i + 1:,} of {n_pages:,}")
        size = _page_content_bytes(page, budget, i + 1)
        total += size
        if total > limits.pdf_max_content_bytes:
            measured, limit = _sizes(total, limits.pdf_max_content_bytes)
            raise DocumentError(
                budget.path,
                _over("the PDF's page content streams decode to", f"{measured} by page {i + 1:,}", limit,
                      "pdf_max_content_bytes"),
            )
        text = page.extract_text() or ""
        budget.add_chars(len(text))
        pages.append((i + 1, text))
    return pages


def _page_content_bytes(page: Any, budget: _Budget, number: int) -> int:
    """Decoded bytes of a page's content stream(s) and of the form XObjects its resources hold (text
    extraction parses those too), refused over ``pdf_max_page_content_bytes``.

    The decoded data stays cached in pypdf's stream objects, so text extraction does not decode it
    again. Images are left alone: text extraction never decodes them."""
    from pypdf.errors import LimitReachedError

    limit = budget.limits.pdf_max_page_content_bytes
    cap = 4 * limit  # one stream's size is known exactly up to 4x the limit; past that "more than"
    size = 0
    streams = _page_streams(page)
    with _pypdf_output_cap(cap):
        for stream in streams:
            try:
                size += len(stream.get_data())
            except LimitReachedError as exc:
                raise DocumentError(budget.path, _over(
                    f"page {number:,}'s content stream decodes to", f"more than {_size(cap)}", _size(limit),
                    "pdf_max_page_content_bytes")) from exc
            if size > limit:
                more = "at least " if stream is not streams[-1] else ""
                measured, shown_limit = _sizes(size, limit)
                raise DocumentError(budget.path, _over(
                    f"page {number:,}'s content stream decodes to", f"{more}{measured}", shown_limit,
                    "pdf_max_page_content_bytes"))
    return size


def _page_streams(page: Any) -> list[Any]:
    """The page's content streams, then the form XObjects of its resources, nested ones too (each
    once)."""
    from pypdf.generic import ArrayObject

    streams: list[Any] = []
    contents = page.get("/Contents")
    contents = contents.get_object() if contents is not None else None
    for item in contents if isinstance(contents, ArrayObject) else [contents]:
        item = item.get_object() if item is not None else None
        if hasattr(item, "get_data"):
            streams.append(item)
    return streams + [x for x in _xobjects(page) if x.get("/Subtype") == "/Form"]


def _xobjects(page: Any) -> list[Any]:
    """The XObjects (forms and images) of the page's resources and of its forms' resources, nested
    ones too, each once; nothing is decoded."""
    found: list[Any] = []
    seen: set[int] = set()
    pending = [page.get("/Resources")]
    while pending:
        resources = pending.pop()
        resources = resources.get_object() if resources is not None else None
        xobjects = resources.get("/XObject") if hasattr(resources, "get") else None
        xobjects = xobjects.get_object() if xobjects is not None else None
        if not hasattr(xobjects, "values"):
            continue
        for ref in xobjects.values():
            xobject = ref.get_object()
            if id(xobject) in seen or not hasattr(xobject, "get_data"):
                continue
            seen.add(id(xobject))
            found.append(xobject)
            if xobject.get("/Subtype") == "/Form":
                pending.append(xobject.get("/Resources"))
    return found


def _pypdf_output_cap(cap: int) -> AbstractContextManager[Any]:
    """pypdf's per-stream decompression limits lowered to ``cap`` for this block (pypdf >= 6.6 has
    ``apply_configuration``; older ones keep their 75 MB default and the size check still applies)."""
    import pypdf

    apply = getattr(pypdf, "apply_configuration", None)
    if apply is None:
        return nullcontext()
    names = ("zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
             "brotli_maximum_output_length", "array_based_stream_maximum_output_length")
    current = pypdf.get_configuration()
    lowered = {n: min(cap, getattr(current, n)) for n in names if getattr(current, n, 0)}
    cm: AbstractContextManager[Any] = apply(**lowered)
    return cm


def _decrypted(reader: object) -> bool:
    from pypdf import PasswordType

    try:
        return reader.decrypt("") != PasswordType.NOT_DECRYPTED  # type: ignore[attr-defined]
    except Exception:
        return False


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


# --- OCR of PDF pages without text ------------------------------------------------------------------

OCR_INSTALL = "install tesseract-ocr with tesseract-ocr-spa and tesseract-ocr-eng (make ocr)"
# The manifest's language codes as Tesseract's language data. A document of unknown language is read
# with both of the corpus's languages: Spanish read with 'eng' alone loses its accents (page 1 of the
# scanned questionnaire fixture: 9 of its 64 accented letters and ¿ kept; 'spa' and 'spa+eng' kept all).
TESSERACT_LANGUAGES = {"es": "spa", "en": "eng"}
_BOTH_LANGUAGES = ("spa", "eng")


class _NoOcr(Exception):
    """Why OCR cannot run on this machine."""


class _Unreadable(Exception):
    """Why one image of a page gave no text."""


@dataclass(frozen=True)
class _Scan:
    """What OCR made of a PDF's pages without text."""

    texts: dict[int, str] = field(default_factory=dict)  # page number -> the text read, maybe empty
    problems: tuple[str, ...] = ()  # pages that gave no text, and why: the refusal, or warnings
    languages: str = ""
    seconds: float = 0.0


def _ocr_pages(reader: Any, pages: list[tuple[int, str]], budget: _Budget, language: str | None) -> _Scan:
    """OCR of the pages that hold images and no text, one page at a time under the file's limits.

    OCR takes seconds a page, so the deadline is checked before every page and Tesseract itself is
    stopped when the time left runs out; an image is measured from its dictionary before it is
    decoded. Whether OCR can run at all is only asked when a page needs it."""
    needing = [n for n, text in pages if not text.strip() and _has_images(reader.pages[n - 1])]
    if not needing:
        return _Scan()
    try:
        pytesseract, languages = _tesseract(language)
    except _NoOcr as exc:
        return _Scan(problems=(f"{_page_list(needing)} {'holds' if len(needing) == 1 else 'hold'} only images, and "
                               f"OCR cannot read them here ({exc}): {OCR_INSTALL}",))
    started = _now()
    texts: dict[int, str] = {}
    failed: dict[int, str] = {}
    limit = budget.limits.pdf_max_image_pixels
    for i, number in enumerate(needing):
        page = reader.pages[number - 1]
        for xobject in _xobjects(page):
            width, height = _dimension(xobject, "/Width"), _dimension(xobject, "/Height")
            if xobject.get("/Subtype") == "/Image" and width * height > limit:
                raise DocumentError(budget.path, _over(
                    f"page {number:,} holds an image of", f"{width:,} x {height:,} pixels", f"{limit:,}-pixel",
                    "pdf_max_image_pixels"))
        budget.check_time(f"stopped before OCR of page {number:,}, {i + 1:,} of {len(needing):,} without text")
        parts: list[str] = []
        reasons: list[str] = []
        for image in _page_images(page, reasons):
            if image.width * image.height > limit:  # an inline image, which has no dictionary to read first
                raise DocumentError(budget.path, _over(
                    f"page {number:,} holds an image of", f"{image.width:,} x {image.height:,} pixels",
                    f"{limit:,}-pixel", "pdf_max_image_pixels"))
            try:
                parts.append(_read_image(pytesseract, _upright(image, page), languages, budget, number))
            except _Unreadable as exc:
                reasons.append(str(exc))
        texts[number] = "\n\n".join(part for part in parts if part)
        budget.add_chars(len(texts[number]))
        if reasons:
            failed[number] = reasons[0]
    problems = [(f"page {n:,}: one of its images could not be read" if texts[n] else f"page {n:,}'s image could "
                 "not be read") + f" ({reason})" for n, reason in failed.items()]
    empty = [n for n, text in texts.items() if not text and n not in failed]
    if empty:
        problems.append(f"OCR (Tesseract, {languages}) found no words in the images of {_page_list(empty)}")
    return _Scan(texts, tuple(problems), languages, _now() - started)


def _tesseract(language: str | None) -> tuple[Any, str]:
    """pytesseract, and the Tesseract languages to read a document in ('spa', 'eng' or 'spa+eng'), or
    :class:`_NoOcr` saying what is missing. Asked afresh each time: it costs one
    ``tesseract --list-langs`` (some 20 ms), and a later install is found without a restart."""
    try:
        import pytesseract
    except ImportError as exc:
        raise _NoOcr("the Python package pytesseract is not installed") from exc
    # On this project's two busy cores one Tesseract thread read a full A4 page in 2.0-2.9 s, its
    # default OpenMP threads in 5.3-55 s, so its process gets OMP_THREAD_LIMIT=1 unless the user set
    # one. pytesseract passes its module's ``environ`` to Tesseract and takes no
    # environment of its own; os.environ is left alone, since torch and faiss read OMP_* too.
    module = pytesseract.pytesseract
    module.environ = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    try:
        installed = set(pytesseract.get_languages())
    except OSError as exc:  # TesseractNotFoundError is one
        raise _NoOcr(f"Tesseract is not installed: no '{module.tesseract_cmd}' program") from exc
    code = re.split(r"[-_]", (language or "").strip().lower())[0]
    wanted = [TESSERACT_LANGUAGES[code]] if code in TESSERACT_LANGUAGES else list(_BOTH_LANGUAGES)
    missing = [name for name in wanted if name not in installed]
    if missing:
        raise _NoOcr("Tesseract has no " + " or ".join(f"'{name}'" for name in missing) + " language data")
    return pytesseract, "+".join(wanted)


def _has_images(page: Any) -> bool:
    """Whether the page draws or holds an image, inline ones included (a blank page needs no OCR)."""
    if any(x.get("/Subtype") == "/Image" for x in _xobjects(page)):
        return True
    try:
        return len(page.images) > 0  # parses the content stream for inline images
    except Exception:  # a content stream pypdf cannot parse holds nothing OCR could use
        return False


def _page_images(page: Any, reasons: list[str]) -> list[Any]:
    """The page's images as PIL images, decoded by pypdf (CCITT fax, JPEG, JPEG 2000, Flate; JBIG2
    with the jbig2dec program), adding to ``reasons`` why any could not be decoded: one broken image
    is said, not fatal."""
    try:
        listed = page.images
        count = len(listed)
    except Exception as exc:  # pypdf's content parsing raises many types on damaged input
        reasons.append(_reason(exc))
        return []
    images = []
    for i in range(count):
        try:
            image = listed[i].image
        except Exception as exc:  # each filter's decoder raises its own (DependencyError, ValueError, OSError...)
            reasons.append(_reason(exc))
            continue
        if image is not None:
            images.append(image)
    return images


def _upright(image: Any, page: Any) -> Any:
    """The image as Tesseract should see it: turned by the page's /Rotate (a scanner's way of saying
    the page lies sideways), in a mode it reads, and saved losslessly by pytesseract (PNG, not the
    JPEG an image decoded from DCT would be saved as again)."""
    from PIL import Image

    if image.mode not in ("1", "L", "RGB", "RGBA", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    try:
        rotation = int(page.rotation) % 360
    except (TypeError, ValueError, AttributeError):
        rotation = 0
    turn = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
    if rotation in turn:
        image = image.transpose(turn[rotation])
    image.format = None  # pytesseract saves an image in its own format, PNG when it has none
    return image


def _read_image(pytesseract: Any, image: Any, languages: str, budget: _Budget, number: int) -> str:
    """Tesseract's text of one image, stopped when the file's time runs out."""
    left = budget.limits.max_seconds - (_now() - budget.started)
    try:
        text: str = pytesseract.image_to_string(image, lang=languages, timeout=max(left, 0.01))
    except RuntimeError as exc:
        if "timeout" not in str(exc).lower():  # TesseractError: Tesseract failed on this image
            raise _Unreadable(f"Tesseract failed: {_reason(exc)}") from exc
        elapsed = _now() - budget.started
        raise DocumentError(budget.path, _over("reading took", f"{elapsed:,.1f} s (OCR of page {number:,} stopped)",
                                               f"{budget.limits.max_seconds:g} s", "max_seconds")) from exc
    except OSError as exc:  # Tesseract gone since it was found, or the temporary image could not be written
        raise _Unreadable(f"Tesseract could not run: {_reason(exc)}") from exc
    return text.replace("\f", "\n").strip()


def _dimension(xobject: Any, key: str) -> int:
    try:
        return max(int(xobject.get(key, 0)), 0)
    except (TypeError, ValueError):
        return 0


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _page_list(numbers: Any) -> str:
    """'page 3', 'pages 1-4, 7': page numbers for a message, runs joined."""
    numbers = sorted(numbers)
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    shown = ", ".join(f"{r[0]:,}" if len(r) == 1 else f"{r[0]:,}-{r[-1]:,}" for r in runs)
    return f"{'page' if len(numbers) == 1 else 'pages'} {shown}"


# --- DOCX -------------------------------------------------------------------------------------------

# A start tag (not '</', '<?' or '<!'), and a paragraph start tag of any namespace prefix: <w:p>,
# <w:p w:rsidR="...">, <w:p/> and DrawingML's <a:p> (text boxes), not <w:pPr>.
_PARAGRAPH_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?p[\s/>]")
_SCAN_CHUNK = 1 << 20


def _docx_preflight(path: Path, limits: LimitSettings) -> None:
    """Refuse a DOCX whose zip expands, or whose XML holds more elements or paragraphs, than the limits
    allow, before python-docx parses every XML part into memory.

    The sizes come from the zip's central directory; Python's zipfile stops a member at its declared
    size (and fails its CRC when the data is longer), so a forged directory cannot make anything here,
    or python-docx later, inflate past them. The XML is then scanned in 1 MB pieces counting start tags
    with bytes.count, some 0.1 s per 100 MB, instead of building a tree."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            xml = [m for m in members if m.filename.lower().endswith((".xml", ".rels")) and not m.is_dir()]
            xml_bytes = sum(m.file_size for m in xml)
            if xml_bytes > limits.docx_max_xml_bytes:
                measured, limit = _sizes(xml_bytes, limits.docx_max_xml_bytes)
                raise DocumentError(path, _over("the DOCX expands to", f"{measured} of XML", limit,
                                                "docx_max_xml_bytes"))
            unzipped = sum(m.file_size for m in members)
            if unzipped > limits.docx_max_unzipped_bytes:
                raise DocumentError(path, _over("the DOCX unzips to", *_sizes(unzipped, limits.docx_max_unzipped_bytes),
                                                "docx_max_unzipped_bytes"))
            elements = paragraphs = 0
            for member in xml:
                with archive.open(member) as stream:
                    e, p = _count_tags(stream)
                elements += e
                paragraphs += p
    except DocumentError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, ValueError) as exc:
        raise DocumentError(path, f"not a readable DOCX file ({exc})") from exc
    if paragraphs > limits.docx_max_paragraphs:
        raise DocumentError(path, _over("the DOCX holds", f"{paragraphs:,} paragraphs",
                                        f"{limits.docx_max_paragraphs:,}-paragraph", "docx_max_paragraphs"))
    if elements > limits.docx_max_xml_elements:
        raise DocumentError(path, _over("the DOCX holds", f"{elements:,} XML elements",
                                        f"{limits.docx_max_xml_elements:,}-element", "docx_max_xml_elements"))


def _count_tags(stream: Any) -> tuple[int, int]:
    """(start tags, paragraph start tags) in an XML byte stream read in pieces.

    A tag cut by a piece boundary is carried into the next piece: everything from the last '<' on is
    held back when it is near the end (tag names are short)."""
    elements = paragraphs = 0
    carry = b""
    while True:
        piece = stream.read(_SCAN_CHUNK)
        data = carry + piece
        if not piece:
            carry, body = b"", data
        else:
            cut = data.rfind(b"<")
            if cut >= 0 and len(data) - cut < 256:
                body, carry = data[:cut], data[cut:]
            else:
                body, carry = data, b""
        elements += body.count(b"<") - body.count(b"</") - body.count(b"<?") - body.count(b"<!")
        paragraphs += len(_PARAGRAPH_TAG.findall(body))
        if not piece:
            return elements, paragraphs


def load_docx(path: Path, limits: LimitSettings | None = None) -> RawDocument:
    """Body paragraphs and tables in document order; Word heading styles become '#' headings."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    budget = _Budget(path, limits or LimitSettings())
    budget.check_bytes("DOCX", "docx_max_bytes")
    _docx_preflight(path, budget.limits)
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise DocumentError(path, f"not a readable DOCX file ({exc})") from exc
    except Exception as exc:
        raise DocumentError(path, f"not a readable DOCX file ({type(exc).__name__}: {exc})") from exc
    lines: list[str] = []
    style_names: dict[str | None, str] = {}  # python-docx looks a style up anew for every paragraph
    for n, block in enumerate(document.iter_inner_content()):
        if n % 256 == 0:
            budget.check_time(f"stopped at block {n:,}")
        if isinstance(block, Table):
            for r, row in enumerate(block.rows):
                if r % 256 == 255:  # a table is one block, and may be the whole document
                    budget.check_time(f"stopped at row {r + 1:,} of the table at block {n:,}")
                cells: list[str] = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    if not cells or cells[-1] != text:  # merged cells repeat their text
                        cells.append(text)
                lines.append("\t".join(cells))
                budget.add_chars(len(lines[-1]))
            lines.append("")
            continue
        text = block.text.strip()
        if not text:
            lines.append("")
            continue
        budget.add_chars(len(text))
        style_id = block._p.style
        if style_id not in style_names:
            style_names[style_id] = (block.style.name if block.style is not None else "") or ""
        style = style_names[style_id]
        m = re.match(r"(?:Heading|Título|Titulo)\s*(\d)", style, re.I)
        if m:
            lines += ["", "#" * int(m.group(1)) + " " + text, ""]
        elif style.lower() == "title":
            lines += ["", "# " + text, ""]
        elif "list" in style.lower():
            lines.append("- " + text)
        else:
            lines += [text, ""]
    title = (document.core_properties.title or "").strip() or None
    text = "\n".join(lines)
    if not text.strip():
        raise DocumentError(path, "the DOCX file has no text")
    return RawDocument([(None, text)], title)


# --- text -------------------------------------------------------------------------------------------

_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xff\xfe", "utf-16-le", "UTF-16 LE"),
    (b"\xfe\xff", "utf-16-be", "UTF-16 BE"),
)
_SAMPLE = 1 << 16
# Characters no text file holds: C0 controls but tab, line breaks and form feed; C1 controls, which
# Latin-1 gives for bytes that are not Windows-1252; and U+FFFD.
_JUNK = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_MAX_JUNK_SHARE = 0.001


def load_text(path: Path, limits: LimitSettings | None = None) -> RawDocument:
    """UTF-8 (with or without BOM), UTF-16 (with a BOM, or without one when half its bytes are NULs in
    alternating positions, as in any Latin-script UTF-16), then Windows-1252 and Latin-1, which
    Spanish-language offices often save. UTF-8 read as Windows-1252 and saved again ('PerÃº') is
    repaired. Text that decodes to control characters is refused rather than indexed as junk."""
    budget = _Budget(path, limits or LimitSettings())
    budget.check_bytes("text", "text_max_bytes")
    text, encoding = _decode(path, path.read_bytes())
    budget.add_chars(len(text), partial=False)
    notes: list[str] = []
    text, fixed = repair_mojibake(text)
    if fixed:
        notes.append(f"repaired {fixed:,} mojibake sequences (UTF-8 read as Windows-1252, e.g. 'PerÃº' for 'Perú')")
        log.warning("%s: %s", path.name, notes[-1])
    junk = len(_JUNK.findall(text))
    if junk > _MAX_JUNK_SHARE * len(text):
        raise DocumentError(
            path,
            f"binary content in a text file (wrong extension?): {junk:,} of {len(text):,} characters read as "
            f"{encoding} are control codes; save it as UTF-8",
        )
    if not text.strip():
        raise DocumentError(path, "the file is empty")
    pages = text.split("\f")
    if len(pages) > 1:  # form feeds: a text export that kept its page breaks
        return RawDocument([(i + 1, p) for i, p in enumerate(pages) if p.strip()], warnings=tuple(notes))
    return RawDocument([(None, text)], warnings=tuple(notes))


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """(text, the encoding's name for messages)."""
    for mark, codec, name in _BOMS:
        if data.startswith(mark):
            try:
                return data[len(mark):].decode(codec), f"{name} (with BOM)"
            except UnicodeDecodeError as exc:
                raise DocumentError(path, f"the file starts with a {name} byte-order mark but is not {name} "
                                          f"(undecodable bytes at offset {exc.start + len(mark):,})") from exc
    codec = _utf16_without_bom(data[:_SAMPLE])
    if codec:
        try:
            return data.decode(codec), f"UTF-16 {codec[-2:].upper()} (without BOM)"
        except UnicodeDecodeError as exc:
            raise DocumentError(
                path, f"binary content in a text file (wrong extension?): its NUL bytes alternate as in UTF-16 "
                f"{codec[-2:].upper()} without a byte-order mark, but it does not decode as UTF-16 "
                f"(offset {exc.start:,})"
            ) from exc
    if b"\x00" in data[:_SAMPLE]:
        raise DocumentError(path, "binary content in a text file (wrong extension?)")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def _utf16_without_bom(sample: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when NUL bytes sit in one parity of positions only.

    Every Latin-script character, and the space and line break of any script, is a NUL and a byte in
    UTF-16; 8-bit text and UTF-8 hold no NULs at all. A tenth of one parity's bytes NUL and almost none
    of the other's is UTF-16 without doubt; binary data has NULs everywhere."""
    sample = sample[: len(sample) - len(sample) % 2]
    half = len(sample) // 2
    if half < 8:  # too short to tell
        return None
    even, odd = sample[0::2].count(0) / half, sample[1::2].count(0) / half
    if odd >= 0.1 and even <= 0.01:
        return "utf-16-le"
    if even >= 0.1 and odd <= 0.01:
        return "utf-16-be"
    return None


# Mojibake: UTF-8 bytes read as Windows-1252 (or Latin-1). A two- or three-byte sequence's lead byte's
# character followed by its continuation bytes' characters: 0x80-0xBF as Windows-1252 reads them ('€',
# '’', '³') or as Latin-1 does (C1 controls, also what Windows-1252's five undefined bytes become).
_CP1252_HIGH = {bytes([b]).decode("cp1252", errors="ignore") for b in range(0x80, 0xC0)} - {""}
_CONTINUATION = "".join(sorted(_CP1252_HIGH | {chr(b) for b in range(0x80, 0xC0)}))
_LEAD2 = "".join(chr(b) for b in range(0xC2, 0xE0))
_LEAD3 = "".join(chr(b) for b in range(0xE0, 0xF0))
_MOJIBAKE = re.compile(
    f"[{re.escape(_LEAD2)}][{re.escape(_CONTINUATION)}]|[{re.escape(_LEAD3)}][{re.escape(_CONTINUATION)}]{{2}}"
)


def _plausible(ch: str) -> bool:
    """A character mojibake is usually made of: Latin-1 and Latin Extended-A letters and signs
    (U+00A0-U+017F), general punctuation (quotes, dashes, ellipsis), currency signs (€) and letterlike
    symbols (™). Anything else means the pair was real text, not mojibake: 'Ú' + '”' would be Arabic
    U+0694, 'É' + '”' the IPA letter U+0254."""
    o = ord(ch)
    return 0xA0 <= o <= 0x17F or 0x2000 <= o <= 0x206F or 0x20A0 <= o <= 0x20CF or 0x2100 <= o <= 0x214F


def _unmangle(match: re.Match[str]) -> str:
    seq = match.group(0)
    try:
        raw = bytes(ord(c) if ord(c) < 0x100 else c.encode("cp1252")[0] for c in seq)
        fixed = raw.decode("utf-8")
    except (UnicodeError, ValueError):
        return seq
    return fixed if len(fixed) == 1 and _plausible(fixed) and unicodedata.category(fixed) != "Cc" else seq


def repair_mojibake(text: str) -> tuple[str, int]:
    """Text with UTF-8-read-as-Windows-1252 sequences decoded back ('migraciÃ³n' -> 'migración'), and how
    many were repaired. Each sequence is re-encoded to bytes and decoded as UTF-8 on its own, so correct
    text around it is untouched, and a sequence is only replaced by a Latin letter, punctuation or a
    currency sign; twice-mangled text ('ÃƒÂ³') takes a second pass. ftfy does this more thoroughly
    (other code pages, HTML entities); this covers what Spanish-language documents show."""
    total = 0
    for _ in range(2):
        count = 0

        def fix(match: re.Match[str]) -> str:
            nonlocal count
            out = _unmangle(match)
            count += out != match.group(0)
            return out

        text = _MOJIBAKE.sub(fix, text)
        total += count
        if not count:
            break
    return text, total


# --- dispatch ---------------------------------------------------------------------------------------

LOADERS: dict[str, Callable[[Path, LimitSettings | None], RawDocument]] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".md": load_text,
    ".markdown": load_text,
    ".txt": load_text,
}


def load(path: Path, limits: LimitSettings | None = None, language: str | None = None) -> RawDocument:
    """Read one file under ``limits`` (the defaults when None); a file that cannot be read, or is over a
    limit, raises :class:`DocumentError`. ``language`` (the manifest's, when it gives one) is the
    language a scanned PDF is read in by OCR."""
    limits = limits or LimitSettings()
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise DocumentError(
            path, f"unsupported file type '{path.suffix}'; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise DocumentError(path, "file not found")
    if path.stat().st_size == 0:
        raise DocumentError(path, "the file is empty")
    if loader is load_pdf:
        return load_pdf(path, limits, language)
    return loader(path, limits)

