"""Pure rendering for the chat: answers as Markdown, sources as HTML, filters from the widgets.

Everything shown here comes from documents somebody uploaded, so no document text ever reaches
the browser as markup: the sources panel is HTML built only from ``html.escape``d strings, and the
chat's Markdown escapes every character that could start a Markdown construct (links, images,
emphasis, autolinks) besides HTML-escaping ``<``, ``>`` and ``&``. A passage holding
``<img src=...>`` or ``![x](http://...)`` is displayed as those characters, never fetched.

A generated answer (``answerer == "llm"``) is model text, untrusted like a document: it is escaped the
same way, and the only tags in its message are the ones added here, around the sentences the check
did not find in their sources (``<mark class="gcmqa-unsupported" title="why">``) and for the notice
and the count of such sentences (``<span class="...">``), their attributes HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

from gcm_qa.answering import NO_ANSWER
from gcm_qa.gcm import OBJECTIVES
from gcm_qa.retrieval import Filters
from gcm_qa.types import Answer, Citation, Passage

# Characters that start an inline Markdown construct anywhere in a line (CommonMark lets any ASCII
# punctuation be backslash-escaped, and the escape renders as the bare character).
_MD_INLINE = re.compile(r"([\\`*_\[\]{}~|$!])")
# GFM autolinks: "http://...", "www.example.org", "name@example.org".
_AUTOLINK = re.compile(r"(?i)(?:(?<=https)|(?<=http)|(?<=ftp)):(?=//)|(?<=www)\.|@")
# Block constructs that only count at the start of a line: headings, lists, setext rules ('>' and
# '*' are taken care of by html.escape and _MD_INLINE).
_MD_LINE_START = re.compile(r"^([#+\-=]|\d+[.)])")

MARKER = re.compile(r"\s*\[(\d+)\](?=\s|$)")

ABSTAIN_HINT = (
    "Try rephrasing the question, removing filters, or adding a document that covers it in the "
    "**Library** tab."
)


def escape_markdown(text: str) -> str:
    """Text that renders as itself in the chat's Markdown: nothing becomes a link, image or tag.

    Whitespace is collapsed to single spaces, so a passage cannot open a table, code block or list
    on a line of its own.
    """
    text = " ".join(str(text).split())
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    text = _MD_LINE_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text)
    return html.escape(text, quote=False)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:—-") + "…"


def describe_filters(filters: Filters | None) -> str:
    """A short plain-text description of the active filters ('' when none)."""
    if filters is None or filters.is_empty():
        return ""
    parts = []
    if filters.kind:
        parts.append("kind: " + ", ".join(filters.kind))
    if filters.author:
        parts.append("author: " + ", ".join(filters.author))
    if filters.language:
        parts.append("language: " + ", ".join(filters.language))
    if filters.areas:
        parts.append("thematic area " + ", ".join(str(a) for a in filters.areas))
    if filters.objectives:
        parts.append("objective " + ", ".join(str(o) for o in filters.objectives))
    if filters.section:
        parts.append(f"section contains '{filters.section}'")
    return "; ".join(parts)


def _where(c: Citation) -> str:
    bits = []
    if c.section:
        bits.append(shorten(c.section.split(" > ")[-1], 60))
    if c.page:
        bits.append(c.page_reference)
    if c.ocr:
        bits.append("read by OCR")
    return ", ".join(bits)


def format_answer_markdown(answer: Answer, filters: Filters | None = None) -> str:
    """The chat message for one answer: the notice when the generated answer was not used, the
    rewritten query when it differs, the answer with its [n] markers in bold (a generated answer's
    unsupported sentences marked, and counted under it), and a one-line list of the sources (the
    panel beside has the details)."""
    lines: list[str] = []
    if answer.notice:
        lines.append(f'<span class="gcmqa-notice">⚠ {escape_markdown(answer.notice)}</span>')
    if answer.query and answer.query != answer.question:
        lines.append(f"*Searched for:* {escape_markdown(answer.query)}")
    active = describe_filters(filters)
    if answer.abstained or not answer.citations:
        lines.append("**The documents do not answer this.**")
        reason = answer.answer.removeprefix(NO_ANSWER).strip()
        if reason:  # e.g. "None of the passages found mentions Peru."
            lines.append(escape_markdown(reason))
        if active:
            lines.append(f"Filters in use: {escape_markdown(active)}.")
        lines.append(ABSTAIN_HINT)
        return "\n\n".join(lines)
    cited = {c.n for c in answer.citations}
    if answer.answerer == "llm":
        body, marked = _generated_markdown(answer.answer, answer.unsupported, cited)
        lines.append(body)
        if marked:
            lines.append(f'<span class="gcmqa-unsupported-note">{_unsupported_note(marked)}</span>')
    else:
        parts: list[str] = []
        pos = 0
        for m in MARKER.finditer(answer.answer):
            n = int(m.group(1))
            if n not in cited:
                continue
            parts.append(escape_markdown(answer.answer[pos : m.start()]))
            parts.append(f"**\\[{n}\\]**")
            pos = m.end()
        parts.append(escape_markdown(answer.answer[pos:]))
        lines.append(" ".join(p for p in parts if p))
    sources = " · ".join(
        f"\\[{c.n}\\] {escape_markdown(shorten(c.title, 70))}"
        + (f" ({escape_markdown(_where(c))})" if _where(c) else "")
        for c in answer.citations
    )
    lines.append(f"Sources: {sources}")
    if active:
        lines.append(f"Filters in use: {escape_markdown(active)}.")
    return "\n\n".join(lines)


def format_question_markdown(question: str) -> str:
    return escape_markdown(question)


# --- generated answers ----------------------------------------------------------------------

# a generated answer's markers: "[2]", "[1, 3]", "[1; 3]", wherever they stand ("2021 [1]." too)
GENERATED_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
UNSUPPORTED_TITLE = "Not found in the passages it cites"


def format_partial_markdown(text: str) -> str:
    """The chat message while a generated answer is being written: the text so far, escaped, and a
    cursor. It is replaced by :func:`format_answer_markdown` once the answer is checked."""
    shown = escape_markdown(text)
    return f"{shown} ▍" if shown else "▍"


def _escape_inline(text: str) -> str:
    """:func:`escape_markdown` keeping one space at either end where ``text`` had whitespace, so that
    pieces escaped apart join with their spaces."""
    inner = escape_markdown(text)
    if not inner:
        return " " if text[:1].isspace() else ""
    return (" " if text[:1].isspace() else "") + inner + (" " if text[-1:].isspace() else "")


def _with_markers(text: str, cited: set[int]) -> str:
    """Generated text escaped, each marker whose passages are all cited in bold (set off by a space
    from a word either side, else the ``**`` would not count as emphasis)."""
    out: list[str] = []
    pos = 0
    for m in GENERATED_MARKER.finditer(text):
        numbers = [int(n) for n in re.findall(r"\d+", m.group(1))]
        if not all(n in cited for n in numbers):
            continue
        before = _escape_inline(text[pos : m.start()]).rstrip()
        out.append(f"{before} " if before else "")
        out.append(f"**\\[{', '.join(map(str, numbers))}\\]**")
        if text[m.end() : m.end() + 1].isalnum():
            out.append(" ")
        pos = m.end()
    out.append(_escape_inline(text[pos:]))
    return "".join(out).strip()


def unsupported_spans(text: str, unsupported: Sequence[Mapping[str, object]]) -> list[tuple[int, int, list[str]]]:
    """Where the unsupported sentences sit in the generated answer: sorted, non-overlapping (start,
    end, reasons). Each is looked up after the one before (the check lists them in order), then
    anywhere, then ignoring differences in whitespace; one not found is left out."""
    found: list[tuple[int, int, list[str]]] = []
    after = 0
    for item in unsupported:
        sentence = " ".join(str(item.get("sentence", "")).split())
        reasons = [str(r) for r in item.get("reasons") or []]  # type: ignore[attr-defined]
        if not sentence:
            continue
        start = text.find(sentence, after)
        if start < 0:
            start = text.find(sentence)
        end = start + len(sentence)
        if start < 0:
            m = re.search(r"\s+".join(re.escape(w) for w in sentence.split()), text)
            if m is None:
                continue
            start, end = m.start(), m.end()
        if any(s < end and start < e for s, e, _ in found):
            continue
        found.append((start, end, reasons))
        after = end
    return sorted(found)


def _unsupported_note(n: int) -> str:
    if n == 1:
        return "1 sentence not found in the passages it cites (marked above)."
    return f"{n} sentences not found in the passages they cite (marked above)."


def _generated_markdown(text: str, unsupported: Sequence[Mapping[str, object]], cited: set[int]) -> tuple[str, int]:
    """A generated answer's text as chat Markdown, each unsupported sentence inside
    ``<mark class="gcmqa-unsupported" title="why">``; and how many were marked."""
    spans = unsupported_spans(text, unsupported)
    out: list[str] = []
    pos = 0
    for start, end, reasons in spans:
        out.append(_with_markers(text[pos:start], cited))
        why = f"{UNSUPPORTED_TITLE}: {'; '.join(reasons)}" if reasons else UNSUPPORTED_TITLE
        title = html.escape(" ".join(why.split()), quote=True)
        out.append(f'<mark class="gcmqa-unsupported" title="{title}">{_with_markers(text[start:end], cited)}</mark>')
        pos = end
    out.append(_with_markers(text[pos:], cited))
    return " ".join(p for p in out if p), len(spans)


# --- sources panel --------------------------------------------------------------------------


def quote_spans(text: str, quote: str) -> list[tuple[int, int]]:
    """Where the quoted sentence(s) sit in the passage, as sorted, non-overlapping (start, end).

    A citation's quote may join several pieces with ' … '; each piece is looked up on its own,
    first exactly, then ignoring differences in whitespace.
    """
    spans: list[tuple[int, int]] = []
    for piece in re.split(r"\s+…\s+", quote or ""):
        piece = piece.strip().strip("…").strip()
        if not piece:
            continue
        start = text.find(piece)
        if start >= 0:
            spans.append((start, start + len(piece)))
            continue
        pattern = r"\s+".join(re.escape(w) for w in piece.split())
        m = re.search(pattern, text)
        if m:
            spans.append((m.start(), m.end()))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def highlight_html(text: str, spans: Sequence[tuple[int, int]], start: int = 0, end: int | None = None) -> str:
    """``text[start:end]`` escaped, with the spans inside ``<mark>``."""
    end = len(text) if end is None else end
    out: list[str] = []
    pos = start
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        out.append(html.escape(text[pos:s]))
        out.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(html.escape(text[pos:end]))
    return "".join(out)


def _snippet_bounds(text: str, spans: Sequence[tuple[int, int]], context: int) -> tuple[int, int]:
    a = max(0, spans[0][0] - context)
    b = min(len(text), spans[-1][1] + context)
    if a > 0:
        space = text.find(" ", a)
        a = space + 1 if 0 <= space < spans[0][0] else a
    if b < len(text):
        space = text.rfind(" ", spans[-1][1], b)
        b = space if space > 0 else b
    return a, b


def _passage_for(citation: Citation, passages: Iterable[Passage]) -> Passage | None:
    for p in passages:
        if p.chunk.chunk_id == citation.chunk_id:
            return p
    return None


def _tags(p: Passage | None) -> str:
    if p is None:
        return ""
    c = p.chunk
    bits = [c.kind]
    if c.author and c.author != "unknown":
        bits.append(c.author)
    if c.language:
        bits.append(c.language)
    if c.areas:
        bits.append("areas " + ", ".join(str(a) for a in c.areas))
    if c.objectives:
        bits.append("objectives " + ", ".join(str(o) for o in c.objectives))
    return " · ".join(html.escape(str(b)) for b in bits)


EMPTY_SOURCES_HTML = (
    '<div class="gcmqa-sources"><p class="gcmqa-empty">Sources appear here: for every passage an '
    "answer cites, its document, section, page and the quoted sentence. Open a source to read "
    "the whole passage.</p></div>"
)


def render_sources_html(answer: Answer | None, context: int = 160) -> str:
    """The sources panel: one ``<details>`` per citation, only escaped document text inside."""
    if answer is None:
        return EMPTY_SOURCES_HTML
    head = f'<p class="gcmqa-for">Sources for: <q>{html.escape(answer.question)}</q></p>'
    if answer.abstained or not answer.citations:
        return (
            f'<div class="gcmqa-sources">{head}<p class="gcmqa-empty">No source answers this question, '
            "so none is cited.</p></div>"
        )
    items: list[str] = []
    for c in answer.citations:
        passage = _passage_for(c, answer.passages)
        text = passage.chunk.text if passage is not None else ""
        spans = quote_spans(text, c.quote) if text else []
        meta = []
        if c.section:
            meta.append(f'<span class="gcmqa-section">{html.escape(c.section)}</span>')
        if c.page:
            meta.append(f'<span class="gcmqa-page">{html.escape(c.page_reference)}</span>')
        if c.ocr:  # machine reading of a scan: a figure or a name may be misread
            meta.append('<span class="gcmqa-ocr">text read by OCR; check against the scan</span>')
        if spans:
            a, b = _snippet_bounds(text, spans, context)
            snippet = ("… " if a > 0 else "") + highlight_html(text, spans, a, b) + (" …" if b < len(text) else "")
            full = highlight_html(text, spans)
        else:  # quote not found verbatim: show it on its own, then the passage as it is
            snippet = f"<mark>{html.escape(c.quote)}</mark>"
            full = html.escape(text)
        tags = _tags(passage)
        items.append(
            f'<details class="gcmqa-source" id="gcmqa-source-{c.n}" data-n="{c.n}">'
            f'<summary><span class="gcmqa-n">[{c.n}]</span> '
            f'<span class="gcmqa-title">{html.escape(c.title)}</span>'
            f'<span class="gcmqa-meta">{" · ".join(meta)}</span>'
            f'<span class="gcmqa-quote">{snippet}</span>'
            f'<span class="gcmqa-more">Show the whole passage</span></summary>'
            f'<div class="gcmqa-passage">{full}</div>'
            + (f'<div class="gcmqa-tags">{tags}</div>' if tags else "")
            + "</details>"
        )
    return f'<div class="gcmqa-sources">{head}{"".join(items)}</div>'


# --- filters --------------------------------------------------------------------------------


def _ints(values: Iterable[object] | None, valid: Iterable[int] | None) -> tuple[int, ...]:
    """The numbers the values start with ('5. Improving...' is 5), those in ``valid`` (any positive
    number when ``valid`` is None)."""
    allowed = set(valid) if valid is not None else None
    out: list[int] = []
    for v in values or ():
        m = re.match(r"\s*(\d+)", str(v))
        n = int(m.group(1)) if m else 0
        if n >= 1 and (allowed is None or n in allowed) and n not in out:
            out.append(n)
    return tuple(sorted(out))


def _strs(values: Iterable[object] | str | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    return tuple(dict.fromkeys(str(v).strip() for v in values if v is not None and str(v).strip()))


def build_filters(
    kind: Iterable[str] | str | None = None,
    authors: Iterable[str] | str | None = None,
    languages: Iterable[str] | str | None = None,
    areas: Iterable[object] | None = None,
    objectives: Iterable[object] | None = None,
    known_areas: Iterable[int] | None = None,
) -> Filters:
    """The widgets' values as :class:`Filters`; an empty widget means 'any'.

    Areas and objectives may arrive as ints or as their labels ('5. Improving social inclusion');
    out-of-range numbers are dropped. ``known_areas``: the thematic areas of the indexed documents'
    profiles (None accepts any area number).
    """
    return Filters(
        kind=_strs(kind),
        author=_strs(authors),
        language=_strs(languages),
        areas=_ints(areas, known_areas),
        objectives=_ints(objectives, OBJECTIVES),
    )


def area_choices(areas: Mapping[int, str]) -> list[tuple[str, int]]:
    """The filter's thematic areas: those of the indexed documents' profiles (number -> title)."""
    return [(f"{n}. {title}", n) for n, title in sorted(areas.items())]


def objective_choices() -> list[tuple[str, int]]:
    return [(f"{n}. {title}", n) for n, title in OBJECTIVES.items()]
