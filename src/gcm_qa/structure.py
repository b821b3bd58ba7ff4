"""Find a document's headings so every chunk knows where it sits.

Reports number their chapters ("2.3.2 Situations to consider"), name their boxes ("Textbox 8. ..."),
annexes and tables; questionnaires are forms of questions, each followed by its answer. Headings
become a stack, and each paragraph gets the path of the stack above it. Unnumbered titles that only
one document uses ("Foreword", "Follow-up") come from its profile (:mod:`gcm_qa.profiles`). Pure
functions over :class:`~gcm_qa.cleaning.Paragraph` lists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gcm_qa.cleaning import Paragraph
from gcm_qa.profiles import EMPTY, Profile
from gcm_qa.types import Section

_NUMBERED = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+(\S.*)$")
_BOX = re.compile(r"^(?:Text\s?box|Box|Recuadro)\s+\d+\b", re.I)
_TABLE = re.compile(r"^(?:Table|Cuadro|Tabla)\s+\d+\b", re.I)
_ANNEX = re.compile(r"^(?:Annex|Anexo)\s+\d+\b(.*)$", re.I)
_AREA = re.compile(r"^(?:Thematic area|[ÁA]rea tem[áa]tica)\s+\d\b", re.I)
_QUESTION_START = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*[.)]?\s+|[a-z][.)]\s+|P\d+[.:]?\s+|Q\d+[.:]?\s+)?¿")

# Unnumbered top-level titles any report may have, in English and Spanish: its contents, word lists,
# introduction, references and annexes. Titles of one document's own front matter and sub-sections
# ("Foreword", "Executive Summary", "Conclusions") are in its profile (top_titles, sub_titles).
TOP_TITLES = frozenset({
    "contents", "table of contents", "índice", "contenido", "acronyms", "abbreviations", "glossary",
    "acrónimos", "siglas", "introduction", "introducción", "bibliography", "references", "bibliografía",
    "annexes", "anexos",
})

BOX_LEVEL = 10
# A text box closes with its source: "Source: https://...", "FOPREL, 2020", "Colombian Migration
# Office, 2021". Text after that line is the section's own again, not the box's.
# (The answerer does not quote such a line either: it names where a figure comes from, not what it says.)
SOURCE_LINE = re.compile(r"^(?:Source|Sources|Fuente|Fuentes)\s*:|^[A-ZÁÉÍÓÚ][^.:;|]{2,160},\s*(?:19|20)\d{2}\.?$")
QUESTION_LEVEL = 20
MAX_TITLE = 160


@dataclass(frozen=True)
class Heading:
    level: int
    title: str


def _short(title: str) -> str:
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1].rstrip() + "…"


# what a form may print after a question: the objective it concerns, "(Objective 13)", "(Objetivo 7)"
QUESTION_TAIL = re.compile(r"\s*\((?:GCM\s+|PMM\s+)?(?:Objectives?|Objetivos?|Obj\.)\s*[\d ,y&and]{1,20}\)\s*$", re.I)
# a numbered question and its answer printed as one paragraph ("Q2. Has...? (Objective 23) Cabinet
# approved...": a PDF's lines joined) or one table row ("Q1. What...? | The Data Hub was...")
_NUMBERED_QUESTION = re.compile(
    r"^(?P<q>(?:(?:Q|P|Pregunta|Question)\s*)?\d{1,2}(?:\.\d{1,2})*[.):]?\s+[^?|]{5,300}\?"
    r"(?:\s+¿?[^?|.]{3,200}\?)*"  # "¿Se detiene a niños? ¿Qué alternativas existen?": one question
    r"(?:\s*\((?:GCM\s+|PMM\s+)?(?:Objectives?|Objetivos?|Obj\.)\s*[\d ,y&and]{1,20}\))?)"
    r"\s*(?:\|\s*)?(?P<a>\S.*)$", re.I | re.S)

# where a "Q15."/"P15."-marked question starts inside a paragraph, after the end of a sentence
_NEXT_QUESTION = re.compile(r"(?<=[.!?)])\s+(?=(?:Q|P)\s?\d{1,2}[.):]\s+[^?]{5,300}\?)")


def is_question(text: str) -> bool:
    """A questionnaire prompt: ends with a question mark (or one followed by the objective it
    concerns) or opens with '¿', and is not an essay."""
    t = QUESTION_TAIL.sub("", text.strip())
    return len(t) <= 400 and (t.endswith("?") or bool(_QUESTION_START.match(t)))


def split_questions(paragraphs: Sequence[Paragraph]) -> list[Paragraph]:
    """A numbered question run together with its answer becomes two paragraphs, the question then
    the answer, so the question can head the answer's section. Only a *numbered* question is split
    off: in prose, "Why? Because..." is one thought. A table row "question | answer" is split the
    same way (forms are often a two-column table); a row whose first cell is no question stays. A
    numbered question is often taken for a list item ("4. ¿Qué...?"): items are split too."""
    pieces: list[Paragraph] = []
    for p in paragraphs:  # "...since 2020. Q15. What is the role of remittances?": two questions' text
        starts = [0] + [m.end() for m in _NEXT_QUESTION.finditer(p.text)] if p.kind in ("text", "item") else [0]
        pieces.extend(replace(p, text=p.text[a:b].strip()) for a, b in zip(starts, [*starts[1:], len(p.text)],
                                                                              strict=True))
    out: list[Paragraph] = []
    for p in pieces:
        m = _NUMBERED_QUESTION.match(p.text) if p.kind in ("text", "item", "table") else None
        if (m is None or (p.kind != "table" and "|" in p.text[: m.start("a")]) or not is_question(m.group("q"))
                or QUESTION_TAIL.fullmatch(" " + m.group("a"))):  # the question and its objective alone
            out.append(p)
            continue
        out.append(replace(p, text=m.group("q").strip(), kind="text"))
        out.append(replace(p, text=m.group("a").strip(), kind="text"))
    return out


class HeadingDetector:
    """Stateful, because numbered headings are only trusted when their numbering fits.

    "1. Non-regression in the migration policy of the region." inside Textbox 2 is a list item,
    not chapter 1: single-level numbers must continue the chapter sequence and carry no final
    period, and sub-numbers (2.3) must sit under the current chapter.
    """

    def __init__(self, chapter_titles: frozenset[str] = frozenset(), profile: Profile = EMPTY) -> None:
        self.chapter = 0
        self.chapter_titles = chapter_titles
        self.top_titles = TOP_TITLES | profile.top_titles
        self.sub_titles = profile.sub_titles

    def detect(self, p: Paragraph) -> Heading | None:
        text = p.text.strip()
        if p.kind.startswith("h") and p.kind[1:].isdigit():
            return Heading(int(p.kind[1:]), _short(text))
        if p.kind in ("table", "footnote") or not text:
            return None
        low = text.lower().rstrip(":. ")
        if low in self.top_titles:
            return Heading(1, text.rstrip(":"))
        if low in self.sub_titles or (low in self.chapter_titles and not text.endswith(".")):
            # a summary names a chapter without its number (an executive summary's paragraph titled
            # like chapter 3, whose body numbers it "3. ...")
            return Heading(2, _short(text.rstrip(":")))
        if text.endswith("?") and is_question(text):
            # "1. Are migrant children detained?" is a form's question, not chapter 1: as a chapter it
            # would close the thematic area above it. A form's question may run to 400 characters.
            return Heading(QUESTION_LEVEL, _short(text))
        if len(text) > 250:
            return None
        m = _NUMBERED.match(text.lstrip("- "))
        if m and not text.startswith("-") and text[:1].isdigit():
            number, title = m.group(1), m.group(2)
            parts = [int(x) for x in number.split(".")]
            if title[:1].isupper() and len(parts) == 1:
                if (
                    parts[0] == self.chapter + 1
                    and not text.endswith((".", ";", ",", ":"))
                    and len(text) <= 160
                ):
                    self.chapter = parts[0]
                    return Heading(1, _short(text))
            elif title[:1].isupper() and (parts[0] == self.chapter or self.chapter == 0):
                self.chapter = parts[0]
                return Heading(len(parts), _short(text))
        if _ANNEX.match(text):
            rest = _ANNEX.match(text).group(1)  # type: ignore[union-attr]
            level = 2 if rest.strip().lower().startswith(("to ", "al ", "a la ")) else 1
            self.chapter = 99
            return Heading(level, _short(text))
        if _BOX.match(text) or _TABLE.match(text):
            return Heading(BOX_LEVEL, _short(text))
        if _AREA.match(text) and len(text) <= 200 and not text.endswith("."):
            return Heading(2, _short(text))
        if is_question(text):
            return Heading(QUESTION_LEVEL, _short(text))
        return None


def chapter_titles(paragraphs: Sequence[Paragraph]) -> frozenset[str]:
    """Titles of the numbered chapters ("3. Integrating the vision..."), without their numbers."""
    titles = set()
    for p in paragraphs:
        text = p.text.strip()
        m = _NUMBERED.match(text)
        if m and "." not in m.group(1) and len(text) <= 160 and not text.endswith((".", ";", ",", ":")):
            title = m.group(2).strip().lower()
            if len(title.split()) >= 3:
                titles.add(title)
    return frozenset(titles)


@dataclass(frozen=True)
class Layout:
    """A cleaned document: its text, each paragraph's span and page, and its sections."""

    text: str
    spans: tuple[tuple[int, int, int | None, str], ...]  # (start, end, page, kind) per paragraph
    sections: tuple[Section, ...]
    page_ends: tuple[int | None, ...] = ()  # last page of each paragraph, when it runs on
    # per section, the pages it spans by the table of contents, for a text without page breaks
    section_pages: tuple[tuple[int | None, int | None], ...] = ()

    def page_range(self, start: int, end: int) -> tuple[int | None, int | None]:
        pages: list[int] = []
        for i, (s, e, pg, _) in enumerate(self.spans):
            if s < end and e > start and pg is not None:
                pages.append(pg)
                last = self.page_ends[i] if i < len(self.page_ends) else None
                if last is not None:
                    # a paragraph re-joined across a page break: this chunk reaches the later page
                    # only if it covers text after the paragraph's first half
                    pages.append(last if end > s + (e - s) // 2 else pg)
        return (min(pages), max(pages)) if pages else (None, None)


def layout(paragraphs: Sequence[Paragraph], profile: Profile = EMPTY) -> Layout:
    """Join paragraphs into one text and cut it into sections at the detected headings.

    A heading's own text belongs to its section, so a chunk that starts a section still says what
    the section is. Paragraphs before the first heading form a section with an empty path.
    ``profile``: the document's own unnumbered titles.
    """
    paragraphs = split_questions(paragraphs)
    detector = HeadingDetector(chapter_titles(paragraphs), profile)
    stack: list[Heading] = []
    parts: list[str] = []
    spans: list[tuple[int, int, int | None, str]] = []
    sections: list[Section] = []
    offset = 0
    current_path: tuple[str, ...] = ()
    current_start = 0
    for i, p in enumerate(paragraphs):
        heading = detector.detect(p)
        if heading is not None and heading.title.endswith(":") and i + 1 < len(paragraphs):
            # "2.2 Thematic area 2:" printed on its own line above the area's name
            after = paragraphs[i + 1].text
            if len(after) <= 250 and paragraphs[i + 1].kind == "text":
                heading = Heading(heading.level, _short(f"{heading.title} {after.rstrip('.')}"))
        if heading is not None:
            if offset > current_start:
                sections.append(Section(current_path, current_start, offset))
            while stack and stack[-1].level >= heading.level:
                stack.pop()
            stack.append(heading)
            current_path = tuple(h.title for h in stack)
            current_start = offset
        start = offset
        parts.append(p.text)
        offset += len(p.text)
        spans.append((start, offset, p.page, p.kind))
        offset += 2  # the "\n\n" that joins paragraphs
        if stack and stack[-1].level == BOX_LEVEL and _BOX.match(stack[-1].title) and SOURCE_LINE.match(p.text):
            sections.append(Section(current_path, current_start, offset - 2))
            stack.pop()
            current_path = tuple(h.title for h in stack)
            current_start = offset
    text = "\n\n".join(parts)
    if len(text) > current_start:
        sections.append(Section(current_path, current_start, len(text)))
    return Layout(text, tuple(spans), tuple(sections), tuple(p.page_end for p in paragraphs))


def _contents_key(title: str) -> str:
    """How a heading and its table-of-contents line meet: by number ("2.4.1", "annex 2") where
    there is one, else by the start of the title (the body and the contents may word it apart:
    "3.1 People-centred" / "3.1 People-centredness")."""
    folded = " ".join(re.sub(r"[^\w\s.]", " ", title.lower()).split())
    m = re.match(r"^(\d+(?:\.\d+)*)\.?(?:\s|$)", folded) or re.match(
        r"^((?:annex|anexo|textbox|box|table) \d+)\b", folded
    )
    return m.group(1) if m else folded[:30]


def section_pages(
    sections: Sequence[Section], contents: Sequence[tuple[str, int]]
) -> tuple[tuple[int | None, int | None], ...]:
    """The pages each section spans according to the table of contents: from the page of its
    innermost heading listed there to the page where the next listed heading begins (a textbox,
    not listed, takes the pages of the section around it)."""
    index: dict[str, int] = {}
    for i, (title, _) in enumerate(contents):
        index.setdefault(_contents_key(title), i)
    out: list[tuple[int | None, int | None]] = []
    for section in sections:
        found = next((index[k] for k in (_contents_key(t) for t in reversed(section.path)) if k in index), None)
        if found is None:
            out.append((None, None))
            continue
        first = contents[found][1]
        after = contents[found + 1][1] if found + 1 < len(contents) else first
        out.append((first, max(first, after)))
    return tuple(out)
