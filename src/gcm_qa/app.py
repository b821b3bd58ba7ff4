"""``gcm-qa chat``: the Gradio chat over one shared :class:`~gcm_qa.engine.Engine`.

The rendering and upload logic lives in :mod:`gcm_qa.app_render` and :mod:`gcm_qa.app_library`
(pure functions, tested without a browser); this module wires them into a ``gr.Blocks`` app and
launches it with safe defaults: loopback only, no share link, no analytics, no monitoring endpoint,
an upload size limit, optional basic auth, and a file route that serves nothing but the upload
folder (the corpus, the index and the model cache are explicitly blocked).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before Gradio is imported: no telemetry, whatever the environment says.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr

from gcm_qa.app_library import (
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
    format_question_markdown,
    objective_choices,
    render_sources_html,
)
from gcm_qa.engine import Engine, QuestionError
from gcm_qa.settings import Settings

__all__ = [
    "APP_CSS",
    "EXAMPLES",
    "UploadOutcome",
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
#gcmqa-upload-status p { margin: 4px 0; }
#gcmqa-chat [data-testid="block-label"] { display: none; }  /* floats over the first message */
#gcmqa-docs table, #gcmqa-docs th, #gcmqa-docs td, #gcmqa-docs span { font-family: var(--font); }
"""


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


def build_app(
    engine: Engine,
    max_upload_mb: float = 25.0,
    examples: Sequence[str] = EXAMPLES,
) -> gr.Blocks:
    """The chat and library tabs over one shared engine (its index must be loadable)."""

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
        messages.append({"role": "user", "content": format_question_markdown(question)})
        pending = [*messages, {"role": "assistant", "content": "*Searching the documents…*"}]
        yield pending, messages, gr.skip(), "", history
        try:
            answer = engine.ask(question, filters=filters, history=history)
        except QuestionError as exc:
            reason = escape_markdown(str(exc))
            messages.append({"role": "assistant", "content": f"**Cannot ask this:** {reason}."})
            yield messages, messages, gr.skip(), "", history
            return
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
        )

    def upload(files: list[str] | None, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[Any, ...]:  # noqa: B008
        try:
            outcome = handle_upload(engine, files, max_upload_mb, progress=progress)
        finally:
            _discard_uploads(files)
        table, authors, languages = refresh_library()
        return outcome.message, table, authors, languages, None

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
                    column_widths=["30%", "16%", "10%", "14%", "11%", "7%", "6%", "6%"],
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
        add_btn.click(upload, [files], [status, docs, authors, languages, files])
        demo.load(refresh_library, None, [docs, authors, languages], show_progress="hidden")
    return demo


@dataclass
class Running:
    """A started chat server (see :func:`start`)."""

    demo: gr.Blocks
    url: str
    share_url: str | None
    upload_dir: Path
    temporary_upload_dir: bool

    def close(self) -> None:
        self.demo.close()
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

    demo = build_app(engine, max_upload_mb=max_mb)
    demo.queue(default_concurrency_limit=1)
    _, local_url, share_url = demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        auth_message="GCM Q&A: sign in" if auth else None,
        max_file_size=int(max_mb * 1024 * 1024),
        allowed_paths=[str(upload_dir)],
        blocked_paths=[str(p) for p in private],
        enable_monitoring=False,
        footer_links=[],
        run_history=False,
        mcp_server=False,
        ssr_mode=False,
        pwa=False,
        show_error=False,
        quiet=True,
        prevent_thread_lock=True,
        css=APP_CSS,
        theme=make_theme(),
    )
    return Running(demo, local_url, share_url, upload_dir, temporary)


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
