"""``gcm-qa chat``: the Gradio chat over one shared :class:`~gcm_qa.engine.Engine`.

The rendering and upload logic lives in :mod:`gcm_qa.app_render` and :mod:`gcm_qa.app_library`
(pure functions, tested without a browser); this module wires them into a ``gr.Blocks`` app and
launches it with safe defaults: loopback only, no share link, no analytics, no monitoring endpoint,
an upload size limit, optional basic auth, and a file route that serves nothing but the upload
folder (the corpus, the index and the model cache are explicitly blocked).

In front of Gradio's own routes sits :class:`AppGuard`, an ASGI middleware, because Gradio's checks
stop short of what a document chat needs: its raw upload route stores any file type (the upload
component's ``file_types`` is only enforced in the browser) and its file route serves files from an
allowed folder inline, so an uploaded ``.html`` or ``.svg`` ran its script on the app's origin; and
its ``/login`` takes password guesses as fast as they come. The guard refuses uploads gcm-qa cannot
read, serves only the files a client uploaded itself or the app wrote for it (a comparison's CSV, the
coverage heat map: :mod:`gcm_qa.app_files`) and only as downloads, never fetches a URL for a client,
and throttles failed sign-ins.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Collection, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# Before Gradio is imported: no telemetry, whatever the environment says.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr
from gradio_client.utils import strip_invalid_filename_characters
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.middleware import Middleware

from gcm_qa.app_compare import (
    COMPARE_CSS,
    COMPARE_EXAMPLES,
    COVERAGE_CHOICES,
    EMPTY_COMPARE_HTML,
    STAKEHOLDER_CHOICES,
    author_options,
    run_compare,
    run_coverage,
)
from gcm_qa.app_files import OwnedFiles, owner_of, request_owner
from gcm_qa.app_library import (
    DOC_COLUMN_WIDTHS,
    DOC_HEADERS,
    UPLOAD_TYPES,
    UploadOutcome,
    author_choices,
    documents_table,
    handle_upload,
    language_choices,
)
from gcm_qa.app_render import (
    EMPTY_SOURCES_HTML,
    area_choices,
    build_filters,
    escape_markdown,
    format_answer_markdown,
    format_partial_markdown,
    format_question_markdown,
    objective_choices,
    render_sources_html,
)
from gcm_qa.engine import MAX_QUESTION_CHARS, Engine, QuestionError
from gcm_qa.loaders import SUPPORTED_SUFFIXES
from gcm_qa.settings import Settings
from gcm_qa.types import Answer

__all__ = [
    "APP_CSS",
    "EXAMPLES",
    "AppGuard",
    "LoginThrottle",
    "UploadOutcome",
    "UploadRefused",
    "UploadScanner",
    "build_app",
    "build_filters",
    "escape_markdown",
    "format_answer_markdown",
    "handle_upload",
    "launch",
    "parse_auth",
    "render_sources_html",
    "start",
]

EXAMPLES = [
    "What is the Temporary Protection Status granted by Colombia?",
    "Which countries are named as GCM champion countries in the region?",
    "What challenges did States report on migrant detention?",
    "What does consular staff training in the region emphasise?",
    "¿Qué medidas se tomaron para regularizar a los migrantes venezolanos?",
]

KIND_CHOICES = [("Reports", "report"), ("Questionnaires (voluntary reports)", "questionnaire")]

APP_CSS = """
.gcmqa-sources { max-height: 640px; overflow-y: auto; padding-right: 4px; }
.gcmqa-sources .gcmqa-for { margin: 0 0 8px; font-size: 0.9em; color: var(--body-text-color-subdued); }
.gcmqa-sources .gcmqa-empty { color: var(--body-text-color-subdued); font-size: 0.95em; }
.gcmqa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
  margin: 0 0 10px; background: var(--block-background-fill); overflow-wrap: anywhere; }
.gcmqa-source summary { cursor: pointer; list-style: none; }
.gcmqa-source summary::-webkit-details-marker { display: none; }
.gcmqa-source .gcmqa-n { font-weight: 700; color: var(--color-accent); }
.gcmqa-source .gcmqa-title { font-weight: 600; }
.gcmqa-source .gcmqa-meta { display: block; font-size: 0.85em; color: var(--body-text-color-subdued);
  margin: 2px 0 6px; }
.gcmqa-source .gcmqa-page { font-weight: 700; white-space: nowrap; }
.gcmqa-source .gcmqa-quote { display: block; font-size: 0.93em; line-height: 1.45;
  border-left: 3px solid var(--color-accent); padding-left: 8px; }
.gcmqa-source .gcmqa-more { display: block; font-size: 0.8em; margin-top: 4px;
  color: var(--color-accent); text-decoration: underline; }
.gcmqa-source[open] .gcmqa-more { display: none; }
.gcmqa-source[open] .gcmqa-quote { display: none; }
.gcmqa-source .gcmqa-passage { white-space: pre-wrap; font-size: 0.93em; line-height: 1.45;
  max-height: 360px; overflow-y: auto; border-left: 3px solid var(--color-accent); padding-left: 8px; }
.gcmqa-source .gcmqa-tags { font-size: 0.8em; color: var(--body-text-color-subdued); margin-top: 6px; }
.gcmqa-source mark, #gcmqa-chat mark { background: #fde68a; color: #1f2937; padding: 0 1px;
  border-radius: 2px; }
#gcmqa-chat mark.gcmqa-unsupported { background: #fee2e2; color: #7f1d1d; text-decoration: underline wavy #dc2626;
  text-underline-offset: 3px; cursor: help; }
#gcmqa-chat .gcmqa-notice { display: block; font-size: 0.9em; color: #92400e; }
#gcmqa-chat .gcmqa-unsupported-note { display: block; font-size: 0.9em; color: #b91c1c; }
#gcmqa-upload-status p { margin: 4px 0; }
#gcmqa-chat [data-testid="block-label"] { display: none; }  /* floats over the first message */
#gcmqa-docs table, #gcmqa-docs th, #gcmqa-docs td, #gcmqa-docs span { font-family: var(--font); }
""" + COMPARE_CSS


def make_theme() -> gr.themes.Base:
    """Gradio's default look, with the regular and bold faces of its bundled font: the semibold
    file it ships is a 55-glyph subset, so semibold text came out in mixed fonts."""
    font = [gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui",
            "sans-serif"]
    return gr.themes.Default(primary_hue="blue", font=font)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """'user:password' -> (user, password); None or '' -> None. The password may contain ':'."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError("--auth / GCM_QA_AUTH must look like user:password (both non-empty)")
    return user.strip(), password


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _discard_uploads(files: Sequence[str] | str | None) -> None:
    """Delete Gradio's copies of uploaded files once handled (the corpus has its own copy)."""
    if not files:
        return
    folder = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()
    for f in [files] if isinstance(files, str) else files:
        path = Path(str(f)).resolve()
        if folder in path.parents and path.is_file():
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # Gradio puts each upload in a folder of its own


def _shown_question(question: str) -> str:
    """The question as the chat echoes it: one the engine will refuse for its length is cut, so a
    pasted 100 KB text does not flood the conversation above the refusal."""
    if len(question) <= MAX_QUESTION_CHARS:
        return question
    return f"{question[:300].rstrip()} … ({len(question):,} characters)"


def build_app(
    engine: Engine,
    max_upload_mb: float = 25.0,
    examples: Sequence[str] = EXAMPLES,
    owned: OwnedFiles | None = None,
) -> gr.Blocks:
    """The chat, compare, coverage and library tabs over one shared engine (its index must be
    loadable). ``owned``: the registry the guard serves files from (:func:`start` shares one); the
    CSV and PNG files written for a client are granted to that client alone."""
    downloads = owned if owned is not None else OwnedFiles()

    def respond(
        question: str,
        messages: list[dict[str, str]],
        history: list[str],
        kind: list[str],
        authors: list[str],
        languages: list[str],
        areas: list[Any],
        objectives: list[Any],
    ) -> Iterator[tuple[Any, ...]]:
        messages = list(messages or [])
        history = list(history or [])
        question = (question or "").strip()
        if not question:
            yield messages, messages, gr.skip(), gr.skip(), history
            return
        filters = build_filters(kind, authors, languages, areas, objectives, engine.profile.area_titles)
        messages.append({"role": "user", "content": format_question_markdown(_shown_question(question))})
        pending = [*messages, {"role": "assistant", "content": "*Searching the documents…*"}]
        yield pending, messages, gr.skip(), "", history
        answer: Answer | None = None
        written = ""
        try:
            # a generated answer streams in (shown as it grows), then comes checked as an Answer
            for event in engine.ask_stream(question, filters=filters, history=history):
                if isinstance(event, Answer):
                    answer = event
                    continue
                written += event
                growing = [*messages, {"role": "assistant", "content": format_partial_markdown(written)}]
                yield growing, messages, gr.skip(), gr.skip(), history
        except QuestionError as exc:
            reason = escape_markdown(str(exc))
            messages.append({"role": "assistant", "content": f"**Cannot ask this:** {reason}."})
            yield messages, messages, gr.skip(), "", history
            return
        except Exception:
            if not written:
                raise
            # the model's failures are the engine's to handle; this is a fault after it wrote, which
            # must not leave a half-written answer in the chat: the extractive answer replaces it
            traceback.print_exc(file=sys.stderr)
            answer = None
        if answer is None:
            answer = replace(engine.ask(question, filters=filters, history=history, answerer="extractive"),
                             notice="The generated answer could not be checked. This is the extractive answer.")
        messages.append({"role": "assistant", "content": format_answer_markdown(answer, filters)})
        history.append(answer.query or answer.question)
        yield messages, messages, render_sources_html(answer), "", history

    def clear() -> tuple[Any, ...]:
        return [], [], EMPTY_SOURCES_HTML, "", []

    def refresh_library() -> tuple[Any, ...]:
        return (
            documents_table(engine),
            gr.update(choices=author_choices(engine)),
            gr.update(choices=language_choices(engine)),
            gr.update(choices=author_options(engine.authors())),
        )

    def upload(files: list[str] | None, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[Any, ...]:  # noqa: B008
        try:
            outcome = handle_upload(engine, files, max_upload_mb, progress=progress)
        finally:
            _discard_uploads(files)
        return outcome.message, *refresh_library(), None

    def compare(question: str, chosen: list[str], kinds: list[str], request: gr.Request) -> tuple[Any, ...]:
        result = run_compare(engine, question, chosen, kinds)
        if result.csv is None:
            return result.html, gr.update(value=None, visible=False)
        # a BOM, so that a spreadsheet opens the accents of Spanish names as UTF-8
        path = downloads.write(request_owner(request), "comparison.csv", "\ufeff" + result.csv)
        return result.html, gr.update(value=str(path), visible=True)

    def coverage(by: str, request: gr.Request) -> tuple[Any, ...]:
        result = run_coverage(engine, by)
        if result.png is None or result.csv is None:
            return None, result.note, gr.update(value=None, visible=False)
        owner = request_owner(request)
        name = f"coverage-by-{'objective' if by == 'objective' else 'area'}"
        png = downloads.write(owner, f"{name}.png", result.png)
        csv = downloads.write(owner, f"{name}.csv", "\ufeff" + result.csv)
        return str(png), result.note, gr.update(value=str(csv), visible=True)

    with gr.Blocks(title="GCM regional review: cited answers", analytics_enabled=False) as demo:
        messages_state = gr.State([])
        history_state = gr.State([])
        gr.Markdown(
            "## GCM regional review: cited answers\n"
            "Ask about the regional review of the Global Compact for Migration in Latin America and the "
            "Caribbean, and the voluntary reports in the library. Answers quote the documents; every "
            "sentence carries a marker **[n]** for its source, detailed in the Sources panel.",
            elem_id="gcmqa-intro",
        )
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"), gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=380):
                    chatbot = gr.Chatbot(
                        label="Conversation",
                        elem_id="gcmqa-chat",
                        height=520,
                        render_markdown=True,
                        sanitize_html=True,
                        allow_tags=False,
                        latex_delimiters=[],
                        buttons=["copy"],
                        feedback_options=None,
                        allow_file_downloads=False,
                        layout="bubble",
                        placeholder="Ask a question below, or pick an example.",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            show_label=False,
                            placeholder="Ask a question about the documents… (follow-ups welcome)",
                            lines=1,
                            max_lines=4,
                            scale=5,
                            elem_id="gcmqa-question",
                            autofocus=True,
                        )
                        ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80,
                                            elem_id="gcmqa-ask")
                    gr.Examples(examples=[[q] for q in examples], inputs=[question],
                                label="Example questions", examples_per_page=len(examples))
                    with gr.Accordion("Filters (optional)", open=False, elem_id="gcmqa-filters"):
                        kind = gr.CheckboxGroup(KIND_CHOICES, label="Document kind", elem_id="gcmqa-kind")
                        with gr.Row():
                            authors = gr.Dropdown(choices=author_choices(engine), multiselect=True,
                                                  label="Author", elem_id="gcmqa-author")
                            languages = gr.Dropdown(choices=language_choices(engine), multiselect=True,
                                                    label="Language", elem_id="gcmqa-language")
                        areas = gr.Dropdown(choices=area_choices(engine.profile.area_titles), multiselect=True,
                                            label="GCM thematic area", elem_id="gcmqa-area")
                        objectives = gr.Dropdown(choices=objective_choices(), multiselect=True,
                                                 label="GCM objective", elem_id="gcmqa-objective")
                    clear_btn = gr.Button("New conversation", variant="secondary", size="sm",
                                          elem_id="gcmqa-clear")
                with gr.Column(scale=2, min_width=320):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(EMPTY_SOURCES_HTML, elem_id="gcmqa-sources", js_on_load=None)
            with gr.Tab("Compare", id="compare"):
                gr.Markdown(
                    "### Compare authors\nOne question, answered from each author's documents alone: "
                    "one row per author, with the quoted passage and where it is. Leave the choices "
                    "empty to compare the authors the question names, or else every author of a "
                    "voluntary report of the kind it asks about (“which countries…” compares States)."
                )
                with gr.Row():
                    compare_question = gr.Textbox(
                        show_label=False,
                        placeholder="e.g. Which countries reported regularisation programmes?",
                        lines=1,
                        max_lines=3,
                        scale=5,
                        elem_id="gcmqa-compare-question",
                    )
                    compare_btn = gr.Button("Compare", variant="primary", scale=1, min_width=100,
                                            elem_id="gcmqa-compare-run")
                with gr.Row():
                    # a typed name counts too: it matches authors by name or country, in part, and
                    # one that matches none is reported above the matrix
                    compare_authors = gr.Dropdown(choices=author_options(engine.authors()), multiselect=True,
                                                  allow_custom_value=True, label="Authors (optional)",
                                                  elem_id="gcmqa-compare-authors")
                    compare_kinds = gr.Dropdown(choices=STAKEHOLDER_CHOICES, multiselect=True,
                                                label="Kinds of author (optional)",
                                                elem_id="gcmqa-compare-stakeholders")
                gr.Examples(examples=[[q] for q in COMPARE_EXAMPLES], inputs=[compare_question],
                            label="Example comparisons", examples_per_page=len(COMPARE_EXAMPLES))
                matrix = gr.HTML(EMPTY_COMPARE_HTML, elem_id="gcmqa-matrix", js_on_load=None)
                compare_csv = gr.DownloadButton("Download the matrix (CSV)", visible=False, size="sm",
                                                elem_id="gcmqa-compare-csv")
            with gr.Tab("Coverage", id="coverage") as coverage_tab:
                gr.Markdown("### Who answered what\nAnswers per author of a voluntary report, by "
                            "thematic area or by GCM objective: where the material is thin.")
                coverage_by = gr.Radio(COVERAGE_CHOICES, value="area", label="Count answers",
                                       elem_id="gcmqa-coverage-by")
                heat = gr.Image(type="filepath", interactive=False, show_label=False,
                                buttons=["download", "fullscreen"], elem_id="gcmqa-heatmap")
                coverage_text = gr.Markdown(elem_id="gcmqa-coverage-note")
                coverage_csv = gr.DownloadButton("Download the table (CSV)", visible=False, size="sm",
                                                 elem_id="gcmqa-coverage-csv")
            with gr.Tab("Library", id="library"):
                gr.Markdown(
                    "### Indexed documents\nAdd a voluntary report (PDF, DOCX, TXT or Markdown, up to "
                    f"{max_upload_mb:g} MB each): it is checked, indexed and searchable as soon as the "
                    "upload finishes. Files that cannot be read are rejected with the reason."
                )
                docs = gr.Dataframe(
                    value=documents_table(engine),
                    headers=DOC_HEADERS,
                    interactive=False,
                    wrap=True,
                    elem_id="gcmqa-docs",
                    column_widths=DOC_COLUMN_WIDTHS,
                )
                files = gr.File(
                    label=f"Upload documents ({UPLOAD_TYPES}; up to {max_upload_mb:g} MB each)",
                    file_count="multiple",
                    file_types=[".pdf", ".docx", ".txt", ".md", ".markdown"],
                    type="filepath",
                    elem_id="gcmqa-upload",
                )
                add_btn = gr.Button("Add to library", variant="primary", elem_id="gcmqa-add")
                status = gr.Markdown(elem_id="gcmqa-upload-status")

        ask_inputs = [question, messages_state, history_state, kind, authors, languages, areas, objectives]
        ask_outputs = [chatbot, messages_state, sources, question, history_state]
        for trigger in (question.submit, ask_btn.click):
            trigger(respond, ask_inputs, ask_outputs, show_progress="minimal", concurrency_limit=4,
                    concurrency_id="ask")
        clear_outputs = [chatbot, messages_state, sources, question, history_state]
        clear_btn.click(clear, None, clear_outputs)
        chatbot.clear(clear, None, clear_outputs)  # the chatbot's own trash button
        library_outputs = [docs, authors, languages, compare_authors]
        add_btn.click(upload, [files], [status, *library_outputs, files])
        demo.load(refresh_library, None, library_outputs, show_progress="hidden")
        for trigger in (compare_question.submit, compare_btn.click):
            trigger(compare, [compare_question, compare_authors, compare_kinds], [matrix, compare_csv],
                    show_progress="minimal", concurrency_limit=4, concurrency_id="ask")
        for trigger in (coverage_tab.select, coverage_by.change):
            trigger(coverage, [coverage_by], [heat, coverage_text, coverage_csv], show_progress="minimal",
                    concurrency_limit=2, concurrency_id="coverage")
    return demo


# --- the HTTP guard ----------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Gradio's file routes: /gradio_api/file=<path>, the deprecated /gradio_api/file/<path>, and the same
# without the prefix should a later version add them. What follows '=' or '/' is the path the route sees.
FILE_ROUTE = re.compile(r"^(?:/gradio_api)?/file[=/](?P<target>.*)$", re.DOTALL)
# /proxy= fetches a URL for the client (Gradio allows only loaded Spaces); gcm-qa loads none.
PROXY_ROUTE = re.compile(r"^(?:/gradio_api)?/proxy=")
UPLOAD_ROUTES = frozenset({"/gradio_api/upload", "/upload"})
LOGIN_ROUTES = frozenset({"/login", "/gradio_api/login"})
# What a file response may keep of the headers Gradio sets: Gradio's ranged responses copy the
# *request's* headers (the cookie among them) into the response, so everything else is dropped.
FILE_HEADERS_KEPT = frozenset({b"content-length", b"content-range", b"accept-ranges", b"last-modified",
                               b"etag", b"date", b"server", b"cache-control"})
FILE_CSP = b"default-src 'none'; sandbox"
UPLOAD_FILES_PER_REQUEST = 20  # one upload request may carry this many files of the largest allowed size
SPOOL_MEMORY_BYTES = 1 << 20
MAX_PART_HEADER_BYTES = 8 * 1024  # as Gradio's own parser
MAX_UPLOAD_RESPONSE_BYTES = 1 << 20


def download_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A file response's headers made inert: a download (``attachment``, the file name kept), an
    opaque type the browser may not sniff, and a sandboxing CSP should anything still render it."""
    disposition = next((v for k, v in headers if k.lower() == b"content-disposition"), b"")
    _, sep, params = disposition.partition(b";")
    params = params.strip()
    kept = [(k, v) for k, v in headers if k.lower() in FILE_HEADERS_KEPT]
    return [
        *kept,
        (b"content-type", b"application/octet-stream"),
        (b"content-disposition", b"attachment" + (b"; " + params if sep and params else b"")),
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", FILE_CSP),
    ]


def route_path(scope: Scope) -> str:
    """The path Starlette's router matches: the request path without the app's ``root_path``."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root):] if root and path.startswith(root) else path


async def _plain_response(send: Send, status: int, text: str,
                          extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"), *extra]})
    await send({"type": "http.response.body", "body": body})


class UploadRefused(Exception):
    """An upload request the guard answers itself, with an HTTP status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _decode(value: bytes, charset: str) -> str:
    """As Gradio's (Starlette's) parser decodes a part's file name: the form's charset, else latin-1."""
    try:
        return value.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return value.decode("latin-1")


def stored_upload_name(filename: str) -> str:
    """The name Gradio's upload route gives a file sent as ``filename`` (its ``upload_fn``)."""
    return strip_invalid_filename_characters(Path(filename).name) if filename else ""


class UploadScanner:
    """Reads the part headers of a multipart upload as its bytes stream in, with the parser and the
    rules Gradio's upload route uses, and refuses the request at the first file Gradio would store
    under a suffix gcm-qa does not read: what is checked is what Gradio would store."""

    def __init__(self, content_type: str, allowed_suffixes: Collection[str] = SUPPORTED_SUFFIXES) -> None:
        media, params = parse_options_header(content_type)
        if media != b"multipart/form-data" or b"boundary" not in params:
            raise UploadRefused(400, "uploads must be sent as multipart/form-data")
        charset = params.get(b"charset", b"utf-8")
        self._charset = charset.decode("latin-1") if isinstance(charset, bytes) else str(charset)
        self._allowed = frozenset(s.lower() for s in allowed_suffixes)
        self._field = b""
        self._value = b""
        self._header_bytes = 0
        self._disposition = b""
        self.names: list[str] = []
        callbacks = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }
        self._parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise UploadRefused(400, "the upload is not a well-formed multipart body") from exc

    def _part_begin(self) -> None:
        self._disposition, self._header_bytes = b"", 0

    def _grow(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise UploadRefused(400, "a part's headers are too long")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._field.lower() == b"content-disposition":
            self._disposition = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"filename" not in options:
            return  # a plain form field: Gradio stores nothing for it
        name = stored_upload_name(_decode(options[b"filename"], self._charset))
        suffix = Path(name).suffix.lower()
        if suffix not in self._allowed:
            shown = name or "a file without a name"
            raise UploadRefused(415, f"{shown}: only {', '.join(sorted(self._allowed))} files can be "
                                     "uploaded")
        self.names.append(name)


class LoginThrottle:
    """Exponential delay per client after failed sign-ins.

    The first ``free`` failures cost nothing (a typo must not lock anyone out); after that a client
    must wait ``base_s * 2**k`` seconds (at most ``cap_s``) after its last failure before the next
    attempt, k counting the failures past ``free``. Attempts refused for being early are not
    guesses and do not lengthen the wait; a successful sign-in clears the client's record. Records
    are per client address, so a reverse proxy in front of the app makes all users one client.
    """

    def __init__(self, free: int = 3, base_s: float = 1.0, cap_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000) -> None:
        self.free, self.base_s, self.cap_s, self.clock = free, base_s, cap_s, clock
        self.max_clients = max_clients
        self._failures: dict[str, tuple[int, float]] = {}

    def wait_s(self, client: str) -> float:
        """Seconds before ``client`` may try again (0: now)."""
        failures, last = self._failures.get(client, (0, 0.0))
        if failures < self.free:
            return 0.0
        delay = min(self.base_s * 2 ** min(failures - self.free, 32), self.cap_s)
        return max(0.0, last + delay - self.clock())

    def failed(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= self.max_clients:
            self._forget_oldest()
        failures, _ = self._failures.get(client, (0, 0.0))
        self._failures[client] = (failures + 1, self.clock())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _forget_oldest(self) -> None:
        by_age = sorted(self._failures, key=lambda c: self._failures[c][1])
        for client in by_age[: max(1, len(by_age) // 2)]:
            del self._failures[client]


class AppGuard:
    """ASGI middleware in front of Gradio's routes (see the module's docstring for why).

    - ``POST /gradio_api/upload``: the body is scanned as it arrives (:class:`UploadScanner`) and
      spooled; a file type gcm-qa cannot read gets 415 and nothing is stored; otherwise the spooled
      body is replayed to Gradio, and the paths it answers are recorded as the uploader's.
    - ``/gradio_api/file=…``: only a file this client uploaded or the app wrote for its request (the
      same sign-in token, or the same address without auth; :class:`~gcm_qa.app_files.OwnedFiles`),
      still a regular file in the upload folder reached by no symlink, is
      passed to Gradio; everything else is 403, URLs included (Gradio would fetch them). Every
      response is a download (:func:`download_headers`).
    - ``/gradio_api/proxy=…``: 403.
    - ``POST /login``: throttled per client (:class:`LoginThrottle`), 429 with ``Retry-After``.
    """

    def __init__(self, app: ASGIApp, *, upload_dir: Path, max_file_size: int,
                 throttle: LoginThrottle | None = None,
                 allowed_suffixes: Collection[str] = SUPPORTED_SUFFIXES,
                 files: OwnedFiles | None = None) -> None:
        self.app = app
        self.upload_dir = Path(upload_dir)
        self.upload_root = os.path.realpath(upload_dir)
        self.max_body = max_file_size * UPLOAD_FILES_PER_REQUEST + SPOOL_MEMORY_BYTES
        self.throttle = throttle or LoginThrottle()
        self.allowed_suffixes = allowed_suffixes
        # shared with the app, which grants the files it writes for a client (app_files.py)
        self.files = files if files is not None else OwnedFiles(self.upload_dir)
        self.served = self.files.served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        method = scope.get("method", "GET")
        match = FILE_ROUTE.match(path)
        if match:
            await self._file(match["target"], scope, receive, send)
        elif PROXY_ROUTE.match(path):
            await _plain_response(send, 403, "This app fetches nothing for its clients.")
        elif method == "POST" and path.rstrip("/") in UPLOAD_ROUTES:
            await self._upload(scope, receive, send)
        elif method == "POST" and path.rstrip("/") in LOGIN_ROUTES:
            await self._login(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # who is asking

    @staticmethod
    def client(scope: Scope) -> str:
        peer = scope.get("client")
        return str(peer[0]) if peer else "unknown"

    def owner(self, scope: Scope) -> str:
        """The sign-in token (Gradio's access-token cookie) when there is one, else the address."""
        return owner_of(Headers(scope=scope).get("cookie", ""), self.client(scope))

    # file routes

    def servable(self, target: str, owner: str) -> bool:
        """True if ``target`` (the path as Gradio's file route reads it) is a file ``owner``
        uploaded, still a regular file inside the upload folder, reached through no symlink."""
        if "://" in target or target.startswith("//"):
            return False
        try:
            candidate = os.path.abspath(target)  # what Gradio's route does with it
            if not self.files.granted(owner, candidate):
                return False
            real = os.path.realpath(candidate)
        except (OSError, ValueError):
            return False
        return (real == candidate and real.startswith(self.upload_root + os.sep)
                and os.path.isfile(real) and not os.path.islink(real))

    async def _file(self, target: str, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.servable(target, self.owner(scope)):
            await _plain_response(send, 403, "File not allowed.",
                                  [(b"content-security-policy", FILE_CSP)])
            return

        async def as_download(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": download_headers(list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, as_download)

    # uploads

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await _plain_response(send, 413, "The upload is too large.")
            return
        try:
            scanner = UploadScanner(headers.get("content-type", ""), self.allowed_suffixes)
        except UploadRefused as refused:
            await _plain_response(send, refused.status, refused.reason)
            return
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, dir=self.upload_dir) as spool:
            received = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_body:
                    await _plain_response(send, 413, "The upload is too large.")
                    return
                try:
                    scanner.feed(chunk)
                except UploadRefused as refused:
                    await _plain_response(send, refused.status, refused.reason)
                    return
                spool.write(chunk)
                if not message.get("more_body", False):
                    break
            spool.seek(0)
            await self.app(scope, self._replay(spool, receive), self._recording(scope, send))

    @staticmethod
    def _replay(spool: Any, receive: Receive) -> Receive:
        done = False

        async def replay() -> Message:
            nonlocal done
            if done:
                return await receive()  # the disconnect, when it comes
            chunk = spool.read(64 * 1024)
            done = not chunk
            return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

        return replay

    def _recording(self, scope: Scope, send: Send) -> Send:
        """Passes Gradio's answer on, recording the stored paths it lists as the uploader's first,
        so that the uploader's next request can already fetch them."""
        owner = self.owner(scope)
        status = 0
        body = bytearray()

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                body.extend(message.get("body", b"")[: MAX_UPLOAD_RESPONSE_BYTES - len(body)])
                if not message.get("more_body", False):
                    with contextlib.suppress(ValueError):
                        paths = json.loads(bytes(body))
                        if isinstance(paths, list):
                            self.files.grant(owner, (p for p in paths if isinstance(p, str)))
            await send(message)

        return record

    # sign-in

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client(scope)
        wait = self.throttle.wait_s(client)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            await _plain_response(send, 429, f"Too many failed sign-ins; try again in {seconds} s.",
                                  [(b"retry-after", str(seconds).encode())])
            return
        # counted as a failure until the answer says otherwise, so parallel guesses cannot slip
        # through before the first of them fails
        self.throttle.failed(client)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                self.throttle.succeeded(client)
            await send(message)

        await self.app(scope, receive, watch)


@dataclass
class Running:
    """A started chat server (see :func:`start`)."""

    demo: gr.Blocks
    url: str
    share_url: str | None
    upload_dir: Path
    temporary_upload_dir: bool
    owned: OwnedFiles | None = None

    def close(self) -> None:
        self.demo.close()
        if self.owned is not None:
            self.owned.close()  # the CSV and PNG files written for clients
        if self.temporary_upload_dir:
            shutil.rmtree(self.upload_dir, ignore_errors=True)


def start(settings: Settings, args: argparse.Namespace, engine: Engine | None = None) -> Running:
    """Load the index and start serving without blocking; :func:`launch` then waits for Ctrl+C.

    ``engine`` lets a caller share an engine it already has (the tests do); otherwise one is made
    from ``settings``, and every browser session shares it.
    """
    host = getattr(args, "host", None) or "127.0.0.1"
    port = int(getattr(args, "port", None) or 7860)
    share = bool(getattr(args, "share", False))
    max_mb = float(getattr(args, "max_upload_mb", None) or 25.0)
    if max_mb <= 0:
        raise ValueError("--max-upload-mb must be positive")
    auth = parse_auth(getattr(args, "auth", None) or os.environ.get("GCM_QA_AUTH"))

    paths = settings.paths
    private = [p.expanduser().resolve() for p in (paths.corpus_dir, paths.index_dir, paths.cache_dir)]
    upload_arg = getattr(args, "upload_dir", None)
    if upload_arg:
        upload_dir, temporary = Path(upload_arg).expanduser().resolve(), False
        for p in private:
            if upload_dir == p or upload_dir in p.parents or p in upload_dir.parents:
                raise ValueError(f"the upload folder {upload_dir} must not contain or sit inside {p}")
        upload_dir.mkdir(parents=True, exist_ok=True)
    else:
        upload_dir, temporary = Path(tempfile.mkdtemp(prefix="gcm-qa-uploads-")).resolve(), True
    # Gradio stores uploads (and anything it caches) here and serves files from here only.
    os.environ["GRADIO_TEMP_DIR"] = str(upload_dir)
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(upload_dir / "examples-cache")

    if not _is_loopback(host):
        print(f"gcm-qa: warning: binding {host} makes the chat reachable from other machines"
              + ("" if auth else "; consider --auth user:password"), file=sys.stderr)

    if engine is None:
        engine = Engine(settings)
    for notice in engine.notices:
        print(f"gcm-qa: {notice}", file=sys.stderr)
    print("Loading the index (building it if the corpus changed) ...", file=sys.stderr, flush=True)
    report = engine.ensure_index(progress=sys.stderr.isatty(), echo=lambda m: print(m, file=sys.stderr))
    if report is not None:
        for error in report.errors:
            print(f"gcm-qa: skipped {error}", file=sys.stderr)
        print(report.summary(), file=sys.stderr)
    engine.embedder  # noqa: B018 - load the model now, not on the first question

    owned = OwnedFiles(upload_dir)  # who may fetch what: the guard checks it, the app grants what it writes
    demo = build_app(engine, max_upload_mb=max_mb, owned=owned)
    demo.queue(default_concurrency_limit=1)
    max_file_size = int(max_mb * 1024 * 1024)
    guard = Middleware(AppGuard, upload_dir=upload_dir, max_file_size=max_file_size, throttle=LoginThrottle(),
                       files=owned)
    _, local_url, share_url = demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        auth_message="GCM Q&A: sign in" if auth else None,
        max_file_size=max_file_size,
        # Gradio reads GRADIO_ALLOWED_PATHS when this is empty: a list keeps the environment out
        allowed_paths=[str(upload_dir)],
        blocked_paths=[str(p) for p in private],
        enable_monitoring=False,
        footer_links=[],
        run_history=False,
        mcp_server=False,
        ssr_mode=False,
        pwa=False,
        num_workers=0,  # static file workers would serve files around the guard
        app_kwargs={"middleware": [guard]},
        show_error=False,
        quiet=True,
        prevent_thread_lock=True,
        css=APP_CSS,
        theme=make_theme(),
    )
    return Running(demo, local_url, share_url, upload_dir, temporary, owned)


def launch(settings: Settings, args: argparse.Namespace) -> int:
    """``gcm-qa chat``: start the chat and serve until Ctrl+C. ``args`` carries host, port, share,
    auth, max_upload_mb and upload_dir."""
    running = start(settings, args)
    print(f"gcm-qa chat: {running.url} (uploads in {running.upload_dir}; Ctrl+C to stop)", flush=True)
    if running.share_url:
        print(f"Public share link: {running.share_url}", flush=True)
    try:
        running.demo.block_thread()
    finally:
        running.close()
    return 0
