"""Benchmark: what hostile or oversized files cost the loaders under the default limits (issue 12).

Generates each input in a temporary folder (DOCX paragraph and zip bombs, a 50 MB text file, PDFs whose
small page streams inflate to megabytes, UTF-16 text), reads each with ``gcm_qa.loaders.load`` at the
default ``LimitSettings`` in a fresh subprocess (so the peak RSS is that file's alone), and prints one
row per input: the outcome (the refusal's message or "read"), wall seconds and peak RSS. Asserts
nothing: speed and memory are measured here, never in tests. The generators are shared with
tests/test_limits.py, which builds the same files smaller.

    .venv/bin/python benchmarks/bench_limits.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# --- generators ------------------------------------------------------------------------------------

_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Default Extension="png" ContentType="image/png"/>'
    b'<Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)
_PACKAGE_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" '
    b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    b'Target="word/document.xml"/></Relationships>'
)
_DOCUMENT_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
)
_DOCUMENT_TAIL = b"</w:body></w:document>"
PARAGRAPH = b"<w:p><w:r><w:t>Las personas migrantes acceden a la salud.</w:t></w:r></w:p>"


def docx_bomb(path: Path, paragraphs: int, paragraph: bytes = PARAGRAPH, media_bytes: int = 0) -> Path:
    """A valid minimal DOCX whose word/document.xml repeats ``paragraph``; streamed into the zip, so
    generating hundreds of MB of XML holds one 1 MB block in memory. ``media_bytes`` adds an image
    member of that many zero bytes (a zip bomb member: deflate packs them a thousandfold)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _PACKAGE_RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(_DOCUMENT_HEAD)
            per_block = max(1, (1 << 20) // len(paragraph))
            block = paragraph * per_block
            written = 0
            while written + per_block <= paragraphs:
                member.write(block)
                written += per_block
            member.write(paragraph * (paragraphs - written))
            member.write(_DOCUMENT_TAIL)
        if media_bytes:
            zeros = bytes(1 << 20)
            with archive.open("word/media/image1.png", "w", force_zip64=True) as member:
                for start in range(0, media_bytes, len(zeros)):
                    member.write(zeros[: min(len(zeros), media_bytes - start)])
    return path


TEXT_OPERATORS = b"BT /F1 12 Tf 72 712 Td (junk text junk text) Tj ET\n"
EMPTY_TEXT_OPERATORS = b"BT /F1 12 Tf 72 712 Td () Tj ET\n"  # parsed like text, shows nothing


def pdf_stream_bomb(
    path: Path, pages: int, stream_bytes: int, *, shared: bool = True, operators: bytes = TEXT_OPERATORS
) -> Path:
    """A PDF whose pages each hold ``stream_bytes`` of ``operators``, compressed with FlateDecode
    (5 MB packs into some 10 KB). ``shared`` points every page at one stream, as the small bombs of
    issue 12 do; otherwise each page gets its own copy."""
    from pypdf import PdfWriter
    from pypdf.generic import DictionaryObject, NameObject, StreamObject

    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    }))
    data = zlib.compress(operators * max(1, stream_bytes // len(operators)), 9)

    def stream() -> object:
        obj = StreamObject()
        obj._data = data
        obj[NameObject("/Filter")] = NameObject("/FlateDecode")
        return writer._add_object(obj)

    one = stream() if shared else None
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        page[NameObject("/Contents")] = one if shared else stream()
    with path.open("wb") as out:
        writer.write(out)
    return path


SPANISH = "Informe de Perú sobre la migración: las niñas y los niños migrantes acceden a la educación.\n"


def text_file(path: Path, n_bytes: int, encoding: str = "utf-8", line: str = SPANISH) -> Path:
    """About ``n_bytes`` of repeated Spanish prose in ``encoding`` (no byte-order mark unless the
    codec writes one), written in blocks."""
    block = (line * max(1, (1 << 20) // len(line))).encode(encoding)
    with path.open("wb") as out:
        for start in range(0, n_bytes, len(block)):
            out.write(block[: n_bytes - start])
    return path


# --- the runs --------------------------------------------------------------------------------------

MB = 1_000_000
CASES: list[tuple[str, str, Callable[[Path], Path]]] = [
    ("report", "the regional review (0.23 MB UTF-8 text)",
     lambda d: Path(shutil.copy(ROOT / "corpus" / "gcm-regional-review-lac-2022.txt", d / "report.txt"))),
    ("docx-xml-bomb", f"DOCX: 2,000,000 paragraphs, {2 * len(PARAGRAPH * 2):,} MB of XML",
     lambda d: docx_bomb(d / "xml-bomb.docx", 2_000_000, PARAGRAPH * 2)),
    ("docx-paragraph-bomb", "DOCX: 2,000,000 empty <w:p/>, 12 MB of XML",
     lambda d: docx_bomb(d / "paragraph-bomb.docx", 2_000_000, b"<w:p/>")),
    ("docx-zip-bomb", "DOCX: one paragraph and a 1 GB image member",
     lambda d: docx_bomb(d / "zip-bomb.docx", 1, media_bytes=1000 * MB)),
    ("text-50mb", "text: 50 MB UTF-8", lambda d: text_file(d / "big.txt", 50 * MB)),
    ("text-9mb", "text: 9 MB UTF-8 (under the byte limit)", lambda d: text_file(d / "nine.txt", 9 * MB)),
    ("pdf-1-page", "PDF: 1 page, 5 MB content stream",
     lambda d: pdf_stream_bomb(d / "one-page.pdf", 1, 5 * MB)),
    ("pdf-200-pages", "PDF: 200 pages, 5 MB content stream each",
     lambda d: pdf_stream_bomb(d / "200-pages.pdf", 200, 5 * MB)),
    ("pdf-slow-pages", "PDF: 200 pages, 1.9 MB content stream each (under the page limit)",
     lambda d: pdf_stream_bomb(d / "slow-pages.pdf", 200, 1_900_000)),
    ("pdf-slow-empty-pages", "PDF: 200 pages, 1.9 MB of operators showing no text each",
     lambda d: pdf_stream_bomb(d / "slow-empty-pages.pdf", 200, 1_900_000, operators=EMPTY_TEXT_OPERATORS)),
    ("utf16", "text: UTF-16 LE without BOM, 4 MB", lambda d: text_file(d / "utf16.txt", 4 * MB, "utf-16-le")),
]


def measure_one(path: Path) -> dict[str, object]:
    """Read one file in this process; the outcome, seconds and this process's peak RSS."""
    from gcm_qa.loaders import DocumentError, load

    started = time.perf_counter()
    try:
        raw = load(path)
        outcome = f"read: {sum(len(t) for _, t in raw.pages):,} characters"
    except DocumentError as exc:
        outcome = exc.reason
    except Exception as exc:  # what the limits exist to prevent; reported, not raised
        outcome = f"TRACEBACK {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    return {"outcome": outcome, "seconds": seconds, "peak_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # the child: read one file, print JSON
    ap.add_argument("--keep", type=Path, help="generate the inputs here and keep them")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one)))
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="gcm-qa-limits-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for _key, label, make in CASES:
            path = make(work)
            child = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True,
                                   timeout=1800, check=False)
            if child.returncode != 0:
                result = {"outcome": f"CRASHED ({child.returncode}): {child.stderr.strip()[-200:]}",
                          "seconds": float("nan"), "peak_mb": float("nan")}
            else:
                result = json.loads(child.stdout.strip().splitlines()[-1])
            size = path.stat().st_size
            rows.append((label, f"{size / 1e6:,.1f} MB" if size >= 1e6 else f"{size / 1e3:,.0f} KB", result))
            print(f"{label}: {result['outcome']} ({result['seconds']:.2f} s, {result['peak_mb']:.0f} MB)",
                  file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("| input | file | outcome | seconds | peak RSS MB |")
    print("|---|---:|---|---:|---:|")
    for label, size, result in rows:
        print(f"| {label} | {size} | {result['outcome']} | {result['seconds']:.2f} | {result['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
