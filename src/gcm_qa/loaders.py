"""Read PDF, DOCX, Markdown and plain-text files into (page, text) pairs.

Each loader only extracts; cleaning is shared (``cleaning.clean_pages``). A file that cannot be
read raises :class:`DocumentError` naming the file and the reason, so one bad upload is reported
and skipped while the rest of the corpus is indexed.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def load_pdf(path: Path) -> RawDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

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
            pages = [(i + 1, page.extract_text() or "") for i, page in enumerate(reader.pages)]
            caught.extend(str(w.message) for w in warned)
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
    except (PdfReadError, PyPdfError, ValueError, OSError, KeyError) as exc:
        raise DocumentError(path, f"damaged or truncated PDF ({exc})") from exc
    finally:
        pypdf_log.removeHandler(handler)
    for message in caught:
        log.warning("%s: pypdf: %s", path.name, message)
    if not any(text.strip() for _, text in pages):
        raise DocumentError(
            path, "no extractable text (an image-only or scanned PDF? OCR it first; pypdf does no OCR)"
        )
    return RawDocument([(n, t) for n, t in pages if t.strip()], title, tuple(caught))


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


def load_docx(path: Path) -> RawDocument:
    """Body paragraphs and tables in document order; Word heading styles become '#' headings."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise DocumentError(path, f"not a readable DOCX file ({exc})") from exc
    except Exception as exc:
        raise DocumentError(path, f"not a readable DOCX file ({type(exc).__name__}: {exc})") from exc
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    if not cells or cells[-1] != text:  # merged cells repeat their text
                        cells.append(text)
                lines.append("\t".join(cells))
            lines.append("")
            continue
        text = block.text.strip()
        if not text:
            lines.append("")
            continue
        style = (block.style.name if block.style is not None else "") or ""
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


def load_text(path: Path) -> RawDocument:
    """UTF-8 first; Windows-1252 and Latin-1 are what Spanish-language offices often save."""
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise DocumentError(path, "binary content in a text file (wrong extension?)")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if not text.strip():
        raise DocumentError(path, "the file is empty")
    pages = text.split("\f")
    if len(pages) > 1:  # form feeds: a text export that kept its page breaks
        return RawDocument([(i + 1, p) for i, p in enumerate(pages) if p.strip()])
    return RawDocument([(None, text)])


LOADERS: dict[str, Callable[[Path], RawDocument]] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".md": load_text,
    ".markdown": load_text,
    ".txt": load_text,
}


def load(path: Path) -> RawDocument:
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise DocumentError(
            path, f"unsupported file type '{path.suffix}'; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise DocumentError(path, "file not found")
    if path.stat().st_size == 0:
        raise DocumentError(path, "the file is empty")
    return loader(path)
