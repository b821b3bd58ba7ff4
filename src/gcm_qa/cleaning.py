"""Turn extracted page text into clean paragraphs.

PDF exports of UN reports leave debris that hurts both retrieval and quoting: running headers
repeated on every page (one chapter title of a 90-page UN report occurs 29 times in its text export),
words hyphenated at line ends, paragraphs cut in two by a page break and a footnote, footnote
markers glued to words ("joint plans⁸."), ligatures (ﬁ), private-use glyphs (flags) and markdown or
HTML left by the converter. Everything here is pure: lists of strings in, paragraphs out, so each
rule is tested with hand-made input.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

SUPERSCRIPT_DIGITS = "¹²³⁴⁵⁶⁷⁸⁹⁰"
_SUPERSCRIPT_TO_ASCII = str.maketrans(SUPERSCRIPT_DIGITS, "1234567890")

_FOOTNOTE_START = re.compile(rf"^\s*([{SUPERSCRIPT_DIGITS}]+)\s*(\S.*)$", re.S)
_GLUED_MARKER = re.compile(rf"\s?[{SUPERSCRIPT_DIGITS}]+")
_BULLET = re.compile(r"^\s*(?:[-•●▪◦‣∙·*▶►➢✓]|\uf0b7|\uf0a7)(?:\s*[▶►➢])?\s+")
_ENUMERATED = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|\(?[a-z][.)])\s+\S")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_MD_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]*)\)")
_ANGLE_URL = re.compile(r"<(https?://[^>\s]+)>")
_HTML_CELL = re.compile(r"<p>(.*?)</p>", re.S)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_MD_HEADING = re.compile(r"^\s*#{1,6}\s+")
# Lines that are headings whatever surrounds them: PDF text has no blank line before a heading,
# so without this "2.4.1 Progress" would be glued to the paragraph above it.
_HEADING_LINE = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2}){1,3}\.?\s+[A-ZÁÉÍÓÚÑ]"
    r"|(?:Text\s?box|Box|Table|Annex|Anexo|Cuadro|Tabla|Recuadro)\s+\d+\b)"
)
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_TERMINAL = tuple(".!?:;)\"”’»")
# A contents line: a title with dot leaders and a page, or a numbered or common front- and back-matter
# title with a page cell ("Foreword | 7"), which a table row rarely starts with.
_TOC_LINE = re.compile(
    r"(?:\.{3,}|…)\s*(?:\|\s*)?\d+\s*$"
    r"|^(?:\d+(?:\.\d+)*\.?|Annex(?:es)?|Anexos?|Acronyms|Foreword|Executive Summary|Introduction|Bibliography)"
    r"\b.*\|\s*\d{1,3}\s*$"
)


@dataclass(frozen=True)
class Paragraph:
    """A cleaned paragraph and the page it starts on (None when the source has no pages)."""

    text: str
    page: int | None
    kind: str = "text"  # "text", "item", "table" (row), "footnote", "h1".."h6" (marked heading)
    page_end: int | None = None  # set when a paragraph re-joined across a page break ends later


def _is_private_use(ch: str) -> bool:
    return unicodedata.category(ch) == "Co"


def normalize_inline(text: str) -> str:
    """Inline clean-up shared by the loader and by anything that must match its output (quotes).

    NFKC folds ligatures (ﬁ → fi) and compatibility forms, so a quote typed by a person matches the
    indexed text. Superscript footnote markers are removed first, since NFKC would turn ⁸ into 8 and
    glue a bogus digit to the word ("plans8").
    """
    text = _GLUED_MARKER.sub("", text)
    text = html.unescape(text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _ANGLE_URL.sub(lambda m: m.group(1), text)
    text = _MD_BOLD.sub(lambda m: m.group(1) or m.group(2), text)
    text = _MD_ITALIC.sub(lambda m: m.group(1), text)
    text = _HTML_TAG.sub(" ", text)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if not _is_private_use(ch) and (ch in "\t\n" or ch.isprintable()))
    text = _SPACES.sub(" ", text)
    return text.strip()


def _html_row_to_cells(line: str) -> str:
    """A converter row like '<p>a</p>\t<p>b</p> <p>c</p>' becomes 'a | b; c'."""
    columns = line.split("\t")
    out = []
    for column in columns:
        cells = [c.strip() for c in _HTML_CELL.findall(column)] or [column.strip()]
        out.append(" ".join(c for c in cells if c))
    return " | ".join(c for c in out)


def _split_blocks(page_text: str) -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for raw in page_text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw.strip():
            blocks[-1].append(raw.rstrip())
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _classify(line: str) -> str:
    if "\t" in line.rstrip() or "<p>" in line:
        return "table"
    if _FOOTNOTE_START.match(line):
        return "footnote"
    if _BULLET.match(line) or _ENUMERATED.match(line):
        return "item"
    return "text"


def _clean_line(line: str, kind: str) -> str:
    if kind == "table":
        cells = (c.strip() for c in line.rstrip().split("\t"))
        line = _html_row_to_cells(line) if "<p>" in line else " | ".join(cells)
    elif kind == "footnote":
        m = _FOOTNOTE_START.match(line)
        assert m is not None
        line = f"[Note {m.group(1).translate(_SUPERSCRIPT_TO_ASCII)}] {m.group(2)}"
    elif kind == "item":
        line = _BULLET.sub("- ", line, count=1)
    line = _MD_HEADING.sub("", line)
    return normalize_inline(line)


def page_paragraphs(
    page_text: str, page: int | None, furniture: frozenset[str] = frozenset()
) -> list[Paragraph]:
    """Split one page into paragraphs, re-joining lines wrapped inside a paragraph.

    A line that starts a bullet, an enumeration, a footnote or a table row starts a new paragraph;
    any other line continues the paragraph above it (PDF text wraps at every line), with a
    line-end hyphen removed when a word continues on the next line. A line whose key is in
    ``furniture`` (see :func:`find_furniture`) always stands alone, so a running header printed
    right above a paragraph's continuation is not glued to it.
    """
    out: list[Paragraph] = []

    def flush(lines: list[str], kind: str) -> None:
        if lines:
            joined = _HYPHEN_BREAK.sub(r"\1\2", "\n".join(lines)).replace("\n", " ")
            text = _clean_line(joined, kind)
            if text:
                out.append(Paragraph(text, page, kind))
            lines.clear()

    for block in _split_blocks(page_text):
        current: list[str] = []
        current_kind = "text"
        open_heading: list[str] = []  # a heading wrapped onto the next line
        # PDF text wraps every line at the column width; a line well short of it ended its
        # paragraph (or is a table row or a caption), unless the next line starts in lower case.
        # (a short paged block, such as a title above one paragraph, is measured against a
        # typical 80-character PDF line)
        width = max(len(ln.rstrip()) for ln in block) if len(block) >= 4 else (80 if page is not None else 0)
        previous = ""
        for line in block:
            short_before = bool(width) and len(previous.rstrip()) < 0.7 * width and not line.lstrip()[:1].islower()
            previous = line
            if open_heading:
                open_heading.append(line.strip())
                if not _continues(line):
                    flush(open_heading, "text")
                continue
            kind = _classify(line)
            heading = _MD_HEADING.match(line)
            if heading or _header_key(line) in furniture or (
                kind != "table" and len(line.strip()) <= 160 and _HEADING_LINE.match(line.strip())
            ):
                flush(current, current_kind)
                current_kind = "text"
                if not heading and _header_key(line) not in furniture and _continues(line):
                    open_heading.append(line)
                    continue
                flush([line], f"h{heading.group(0).count('#')}" if heading else "text")
                continue
            if kind in ("table", "item", "footnote") or not current or short_before:
                flush(current, current_kind)
                current_kind = kind
                current.append(line)
                if kind == "table":
                    flush(current, current_kind)
                    current_kind = "text"
            else:
                current.append(line.strip())
        flush(open_heading, "text")
        flush(current, current_kind)
    return out


_CONTINUATION = re.compile(
    r"(?:[,;:(–-]|\b(?:of|and|the|for|in|on|to|by|with|a|an|de|del|la|el|y|en|para|por))\s*$", re.I
)


def _continues(line: str) -> bool:
    """A heading line that stops mid-phrase ("..., granted by Colombia,") wraps onto the next."""
    return bool(_CONTINUATION.search(line.rstrip()))


_PAGE_NUMBER = re.compile(r"^(?:page|página|pagina|p\.)?\s*\d{1,4}(?:\s*(?:of|de|/)\s*\d{1,4})?$", re.I)


def _header_key(text: str) -> str:
    """Exact text, case- and space-folded; page-number lines ("12", "Page 3 of 10") share one key."""
    text = " ".join(text.lower().split())
    return "#page" if _PAGE_NUMBER.match(text) else text


def find_furniture(lines: Sequence[str], min_repeats: int = 3) -> frozenset[str]:
    """Keys of running headers in a text without pages: short title-like lines repeated anywhere.

    A header reads like a title: three words or more and no final punctuation, so a questionnaire
    answering "Sí." three times keeps its answers. Bulleted lines are never furniture: a list may
    legitimately repeat an item ("- 23. Strengthen international cooperation..." closes the
    objective list of all five thematic areas). Bare page numbers count when they repeat.
    """
    counts = Counter(
        _header_key(line)
        for line in lines
        if 0 < len(line.strip()) <= 120
        and not _BULLET.match(line)
        and "\t" not in line.strip()
        and (
            _PAGE_NUMBER.match(line.strip())
            or (len(line.split()) >= 3 and not line.rstrip().endswith((".", "?", "!", ";", ",")))
        )
    )
    return frozenset(k for k, n in counts.items() if n >= min_repeats)


EDGE_LINES = 2


def _edges(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[:EDGE_LINES] + lines[-EDGE_LINES:] if len(lines) > 2 * EDGE_LINES else lines


def page_furniture(pages: Sequence[tuple[int | None, str]]) -> frozenset[str]:
    """Keys of running headers and footers in a paginated document: lines among the first or last
    two of a page that recur at the edges of a third of the pages (at least 3; 2 in a document of
    2-3 pages).

    Only page edges are looked at, so body text that repeats (a blind-text sample, a refrain in a
    questionnaire) is never taken for a header.
    """
    per_page = [{_header_key(ln) for ln in _edges(text)} for _, text in pages]
    counts = Counter(k for keys in per_page for k in keys)
    needed = 2 if len(pages) < 4 else max(3, -(-len(pages) // 3))
    return frozenset(k for k, n in counts.items() if n >= needed and len(k) <= 120)


def strip_page_numbers(text: str) -> str:
    """Drop a bare page number printed as the first or last line of a page."""
    lines = text.splitlines()
    filled = [i for i, ln in enumerate(lines) if ln.strip()]
    for i in (filled[:1] + filled[-1:]) if filled else []:
        if _PAGE_NUMBER.match(lines[i].strip()):
            lines[i] = ""
    return "\n".join(lines)


def drop_running_headers(paragraphs: Sequence[Paragraph], furniture: frozenset[str]) -> list[Paragraph]:
    """Remove page furniture (see :func:`find_furniture`).

    The first occurrence is kept when it reads like a heading (it usually is the real one: the
    chapter title the running header repeats); bare numbers, "Page 3 of 10" and the like are
    dropped everywhere.
    """
    seen: set[str] = set()
    out: list[Paragraph] = []
    for p in paragraphs:
        key = _header_key(p.text)
        if key in furniture:
            if key in seen or key == "#page":
                continue
            seen.add(key)
        out.append(p)
    return out


def _closes_parenthesis(before: str, after: str) -> bool:
    """The first text leaves a parenthesis open that the second closes ("The report (to be
    produced in" / "Spanish and English) should:")."""
    close = after.find(")")
    opened = after.find("(")
    return before.count("(") > before.count(")") and close >= 0 and (opened < 0 or close < opened)


def merge_broken_paragraphs(paragraphs: Sequence[Paragraph]) -> list[Paragraph]:
    """Re-join a paragraph cut by a page break, moving any footnotes found in the cut after it.

    The cut is recognised by its two sides: the first part ends without terminal punctuation and
    the next body paragraph starts in lower case ("...In the total emigrant" / "population (graph
    4), there is...") or closes a parenthesis the first part left open.
    """
    out: list[Paragraph] = []
    pending_notes: list[Paragraph] = []
    for p in paragraphs:
        if p.kind == "footnote":
            pending_notes.append(p)
            continue
        last = out[-1] if out else None
        if (
            last is not None
            and last.kind in ("text", "item")
            and p.kind == "text"
            and not last.text.endswith(_TERMINAL)
            and (p.text[:1].islower() or _closes_parenthesis(last.text, p.text))
        ):
            end_page = p.page_end or p.page
            out[-1] = Paragraph(
                f"{last.text} {p.text}", last.page, last.kind, end_page if end_page != last.page else last.page_end
            )
        else:
            out.extend(pending_notes)
            pending_notes = []
            out.append(p)
    out.extend(pending_notes)
    return out


def drop_table_of_contents(paragraphs: Sequence[Paragraph]) -> list[Paragraph]:
    """Drop table-of-contents lines ("2.1.3 Challenges.....27"): they duplicate every heading and
    would be detected as headings with no text under them."""
    return [p for p in paragraphs if not _TOC_LINE.search(p.text)]


_TOC_PAGE = re.compile(r"\s*(?:\.{3,}|…)?\s*(?:\|\s*)?(\d{1,4})\s*$")


def table_of_contents(pages: Sequence[tuple[int | None, str]]) -> list[tuple[str, int]]:
    """(title, page) for each table-of-contents line, in order ("2.1.3 Challenges.....27").

    A text export without page breaks keeps no page numbers, but its table of contents still says
    on which page each section begins: that is what lets its citations name pages.
    """
    entries: list[tuple[str, int]] = []
    for _, text in pages:
        for line in text.splitlines():
            line = normalize_inline(line.replace("\t", " | ")).strip()
            if not _TOC_LINE.search(line):
                continue
            m = _TOC_PAGE.search(line)
            title = line[: m.start()].strip(" |") if m else ""
            if m and title:
                entries.append((title, int(m.group(1))))
    return entries


def fill_down_table_rows(paragraphs: Sequence[Paragraph]) -> list[Paragraph]:
    """Give a continuation row (empty first cell) the first cell of the row above it.

    The objectives-by-thematic-area table lists one objective per row under a single merged
    'Thematic area 3 ...' cell; without fill-down, a chunk holding '| 10. Prevent, combat...' no
    longer says which area it belongs to.
    """
    out: list[Paragraph] = []
    first_cell = ""
    for p in paragraphs:
        if p.kind == "table":
            if p.text.startswith("|") and first_cell:
                p = Paragraph(f"{first_cell} {p.text}", p.page, p.kind)
            elif " | " in p.text:
                first_cell = p.text.split(" | ", 1)[0]
        out.append(p)
    return out


def clean_pages(pages: Sequence[tuple[int | None, str]]) -> list[Paragraph]:
    """The whole cleaning pipeline, from (page number, raw page text) pairs to paragraphs."""
    paginated = len(pages) >= 2 and all(page is not None for page, _ in pages)
    if paginated:
        pages = [(page, strip_page_numbers(text)) for page, text in pages]
        furniture = page_furniture(pages)
    else:
        furniture = find_furniture([line for _, text in pages for line in text.splitlines()])
    paragraphs: list[Paragraph] = []
    for page, text in pages:
        paragraphs.extend(page_paragraphs(text, page, furniture))
    paragraphs = drop_table_of_contents(paragraphs)
    paragraphs = drop_running_headers(paragraphs, furniture)
    paragraphs = fill_down_table_rows(paragraphs)
    return merge_broken_paragraphs(paragraphs)
