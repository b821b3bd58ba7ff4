"""The chat's Compare and Coverage tabs without Gradio: the matrix as HTML, and what each tab shows.

A comparison puts one quote per author side by side, and every quote, title and section comes from a
document somebody uploaded; so, as in :mod:`gcm_qa.app_render`, the matrix is HTML built only from
``html.escape``d strings (attributes quoted and escaped too), and a row where an author's documents
say nothing on the matter is styled as such, never left blank, so it cannot be mistaken for a cell
that failed to load. Failures the user can act on (an empty question, no questionnaire indexed, a
choice that matches nobody) come back as one line, never a traceback.

The functions here return plain values (HTML, CSV text, PNG bytes); :mod:`gcm_qa.app` writes the
files for the requesting client (:class:`gcm_qa.app_files.OwnedFiles`) and wires the widgets.
"""

from __future__ import annotations

import html
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gcm_qa.app_render import escape_markdown, shorten
from gcm_qa.comparison import Author, Comparison, Row
from gcm_qa.coverage import By, Coverage, heat_map
from gcm_qa.engine import Engine, QuestionError
from gcm_qa.types import STAKEHOLDERS, Citation

STAKEHOLDER_CHOICES: list[str] = list(STAKEHOLDERS)
COVERAGE_CHOICES: list[tuple[str, str]] = [("By thematic area", "area"), ("By GCM objective", "objective")]
COMPARE_EXAMPLES = [
    "Which countries reported regularisation programmes?",
    "What did civil society organisations say about migrant children in detention?",
    "¿Qué países informaron sobre la detención de niñas, niños y adolescentes migrantes?",
]
NO_QUESTIONNAIRE = ("No voluntary report (questionnaire) is indexed yet: add one in the Library tab, "
                    "then compare.")

EMPTY_COMPARE_HTML = (
    '<div class="gcmqa-compare"><p class="gcmqa-empty">Ask one question of many authors: each row '
    "answers it from one author's documents alone, with the quoted passage and where it is; an author "
    "whose documents say nothing on it gets a row saying so. Choose authors or kinds of author, or let "
    "the question say (“which countries…” compares States).</p></div>"
)

COMPARE_CSS = """
.gcmqa-compare .gcmqa-for, .gcmqa-compare .gcmqa-scope { margin: 0 0 6px; font-size: 0.9em;
  color: var(--body-text-color-subdued); }
.gcmqa-compare .gcmqa-unknown, .gcmqa-compare .gcmqa-error { margin: 0 0 6px; font-weight: 600;
  color: var(--error-text-color, #b91c1c); }
.gcmqa-compare .gcmqa-empty { color: var(--body-text-color-subdued); font-size: 0.95em; }
.gcmqa-matrix { width: 100%; border-collapse: collapse; font-size: 0.92em; }
.gcmqa-matrix th, .gcmqa-matrix td { border: 1px solid var(--border-color-primary); padding: 6px 8px;
  text-align: left; vertical-align: top; overflow-wrap: break-word; }
.gcmqa-matrix th { background: var(--block-background-fill); }
.gcmqa-matrix th:nth-child(1) { width: 17%; } .gcmqa-matrix th:nth-child(2) { width: 9%; }
.gcmqa-matrix th:nth-child(3) { width: 9%; } .gcmqa-matrix th:nth-child(4) { width: 44%; }
.gcmqa-matrix th:nth-child(5) { width: 21%; }
.gcmqa-matrix .gcmqa-author { font-weight: 600; }
.gcmqa-matrix .gcmqa-cell { line-height: 1.45; }
.gcmqa-matrix .gcmqa-source-cell { font-size: 0.85em; color: var(--body-text-color-subdued); }
.gcmqa-matrix tr.gcmqa-nothing td { background: repeating-linear-gradient(135deg, transparent 0 8px,
  rgba(127, 127, 127, 0.06) 8px 16px); }
.gcmqa-matrix tr.gcmqa-nothing td:not(.gcmqa-author) { color: var(--body-text-color-subdued); }
.gcmqa-matrix tr.gcmqa-nothing .gcmqa-cell em { font-style: italic; }
.gcmqa-matrix .gcmqa-ocr { font-size: 0.8em; font-weight: 700; border: 1px solid currentColor;
  border-radius: 3px; padding: 0 3px; }
"""

# pyplot keeps global state: two sessions drawing at once in Gradio's worker threads would mix figures
_DRAWING = threading.Lock()


def author_options(authors: Iterable[Author]) -> list[tuple[str, str]]:
    """The Compare tab's author choices: "name (stakeholder)" shown, the name as the value."""
    return [(f"{a.name} ({a.stakeholder})", a.name) for a in authors]


def citation_text(c: Citation, max_title: int = 90, max_section: int = 80) -> str:
    """Plain text of where a cell is quoted from: title · innermost section · page, and a warning
    when the text was machine-read from a scan."""
    bits = [shorten(c.title, max_title)]
    if c.section:
        bits.append(shorten(c.section.split(" > ")[-1], max_section))
    if c.page_reference:
        bits.append(c.page_reference)
    text = " · ".join(b for b in bits if b)
    if getattr(c, "ocr", False):
        text += " (read by OCR; check against the scan)"
    return text


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def render_row_html(row: Row) -> str:
    """One ``<tr>``: author, stakeholder, country, the quoted cell (or "nothing found"), its source."""
    c = row.citation
    place = row.country or ""
    if row.found and c is not None:
        full = f"{c.title} · {c.section}" if c.section else c.title
        source = f'<span class="gcmqa-cite" title="{_attr(full)}">{html.escape(citation_text(c))}</span>'
        if getattr(c, "ocr", False):
            source += ' <span class="gcmqa-ocr">OCR</span>'
        cell = f'<td class="gcmqa-cell"><q>{html.escape(row.cell)}</q></td>'
        klass = "gcmqa-found"
    else:
        source = ""
        cell = f'<td class="gcmqa-cell"><em>{html.escape(row.cell)}</em></td>'
        klass = "gcmqa-nothing"
    return (
        f'<tr class="{klass}" data-author="{_attr(row.author)}">'
        f'<td class="gcmqa-author">{html.escape(row.author)}</td>'
        f"<td>{html.escape(row.stakeholder)}</td>"
        f"<td>{html.escape(place)}</td>"
        f"{cell}"
        f'<td class="gcmqa-source-cell">{source}</td></tr>'
    )


def render_comparison_html(comparison: Comparison) -> str:
    """The matrix: the question, how its rows were chosen, one row per author, and any author named
    in the choice that no indexed author matches."""
    found = sum(r.found for r in comparison.rows)
    n = len(comparison.rows)
    head = (
        f'<p class="gcmqa-for">Compared: <q>{html.escape(comparison.question)}</q></p>'
        f'<p class="gcmqa-scope">Rows: {html.escape(comparison.scope)}; searched for '
        f"<q>{html.escape(comparison.topic)}</q>. {found} of {n} author{'s' if n != 1 else ''} "
        "answered from their documents.</p>"
    )
    unknown = ""
    if comparison.unknown_authors:
        unknown = ('<p class="gcmqa-unknown">No indexed author matches: '
                   f"{html.escape(', '.join(comparison.unknown_authors))}.</p>")
    if not comparison.rows:
        return (f'<div class="gcmqa-compare">{head}{unknown}<p class="gcmqa-empty">No indexed author is '
                "in this comparison's scope.</p></div>")
    rows = "".join(render_row_html(r) for r in comparison.rows)
    table = (
        '<table class="gcmqa-matrix"><thead><tr><th>Author</th><th>Stakeholder</th><th>Country</th>'
        f"<th>What their documents say</th><th>Source</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return f'<div class="gcmqa-compare">{head}{unknown}{table}</div>'


def message_html(text: str) -> str:
    """One line in the Compare panel instead of a matrix (an error the user can act on)."""
    return f'<div class="gcmqa-compare"><p class="gcmqa-error">{html.escape(text)}</p></div>'


@dataclass
class CompareResult:
    """What the Compare tab shows: the panel's HTML, and the matrix as CSV when there is one."""

    html: str
    csv: str | None = None
    comparison: Comparison | None = None


def run_compare(engine: Engine, question: str | None, authors: Sequence[str] | None = (),
                stakeholders: Sequence[str] | None = ()) -> CompareResult:
    """Compare, or say in one line why not. Unexpected failures are logged on the server, not shown."""
    question = " ".join((question or "").split())
    if not question:
        return CompareResult(message_html("Type a question to compare, e.g. “Which countries reported "
                                          "regularisation programmes?”"))
    try:
        if not any("questionnaire" in a.kinds for a in engine.authors()):
            return CompareResult(message_html(NO_QUESTIONNAIRE))
        chosen = [str(a) for a in authors or () if str(a).strip()]
        kinds = [str(s) for s in stakeholders or () if str(s) in STAKEHOLDERS]
        comparison = engine.compare(question, authors=chosen, stakeholders=kinds)
    except QuestionError as exc:
        return CompareResult(message_html(f"Cannot compare: {exc}."))
    except Exception:  # never a traceback in the page; the server log has it
        traceback.print_exc(file=sys.stderr)
        return CompareResult(message_html("The comparison failed; the server's log has the details."))
    if not comparison.rows:
        return CompareResult(render_comparison_html(comparison), None, comparison)
    return CompareResult(render_comparison_html(comparison), comparison.to_csv(), comparison)


@dataclass
class CoverageResult:
    """What the Coverage tab shows: the heat map, the table as CSV, and a Markdown note."""

    png: bytes | None
    csv: str | None
    note: str
    coverage: Coverage | None = None


def coverage_note(coverage: Coverage) -> str:
    """Markdown under the heat map: what the numbers count, and whose forms could not be read (a
    grey row is unknown, not zero)."""
    what = "thematic area" if coverage.by == "area" else "GCM objective"
    lines = [f"Answers each author gave per {what}, read from the questionnaire forms; an answer "
             "saying there is no information is not counted."]
    if coverage.unread:
        names = "; ".join(f"{escape_markdown(a)} ({escape_markdown(', '.join(files))})"
                          for a, files in sorted(coverage.unread.items()))
        lines.append(f"Form layout not read (grey rows are unknown, not zero): {names}.")
    return "\n\n".join(lines)


def run_coverage(engine: Engine, by: str | None) -> CoverageResult:
    """The coverage view by area or objective, or one line saying why there is none."""
    by_: By = "objective" if by == "objective" else "area"
    try:
        coverage = engine.coverage(by_)
        if not coverage.authors:
            return CoverageResult(None, None, NO_QUESTIONNAIRE)
        with _DRAWING:
            png = heat_map(coverage)
    except Exception:  # never a traceback in the page; the server log has it
        traceback.print_exc(file=sys.stderr)
        return CoverageResult(None, None, "The coverage could not be drawn; the server's log has the details.")
    return CoverageResult(png, coverage.to_csv(), coverage_note(coverage), coverage)
