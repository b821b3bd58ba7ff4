"""The chat's pure parts, without a browser: answer Markdown, the sources panel, filters, uploads."""

from __future__ import annotations

import argparse
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gcm_qa.app import (
    APP_CSS,
    build_app,
    build_filters,
    escape_markdown,
    format_answer_markdown,
    handle_upload,
    launch,
    parse_auth,
    render_sources_html,
)
from gcm_qa.app_compare import EMPTY_COMPARE_HTML
from gcm_qa.app_library import DOC_HEADERS, author_choices, documents_table, language_choices
from gcm_qa.app_render import EMPTY_SOURCES_HTML, describe_filters, quote_spans
from gcm_qa.corpus import safe_name
from gcm_qa.retrieval import Filters
from gcm_qa.types import STAKEHOLDERS, Answer, Chunk, Citation, Passage

HOSTILE = (
    'Bellavista <img src=http://127.0.0.1:9/x> registered ![x](http://127.0.0.1:9/y) claims '
    '<script>alert(1)</script> [link](http://127.0.0.1:9/z) *bold* _it_ `code` $$x$$ see www.example.org '
    "or mail info@example.org & more."
)
BELLAVISTA = "The fictional island of Bellavista registered 4,321 asylum claims in 2021."


# --- helpers -----------------------------------------------------------------------------------


class Tags(HTMLParser):
    """Collects the tags and attributes of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(fragment: str) -> Tags:
    p = Tags()
    p.feed(fragment)
    p.close()
    return p


def make_chunk(text: str, **kw: object) -> Chunk:
    base: dict[str, object] = {
        "chunk_id": "doc-a#0", "doc_id": "doc-a", "title": "Report <b>A</b>", "kind": "report",
        "author": "Colombia", "language": "en", "stakeholder": "State", "section": ["2. Findings", "2.1 Progress"],
        "page_start": 12, "page_end": 13, "start": 0, "end": len(text), "text": text,
        "areas": [2, 4], "objectives": [5, 7],
    }
    base.update(kw)
    return Chunk(**base)  # type: ignore[arg-type]


def make_answer(text: str, quote: str, answer: str | None = None, **kw: object) -> Answer:
    chunk = make_chunk(text, **kw)
    citation = Citation(n=1, doc_id=chunk.doc_id, title=chunk.title, section=chunk.section_label,
                        page=chunk.page_label, quote=quote, score=0.8, passage_rank=1, chunk_id=chunk.chunk_id)
    return Answer(question="How many claims?", answer=answer if answer is not None else f"{quote} [1]",
                  abstained=False, citations=[citation], passages=[Passage(chunk, 0.5, 1)],
                  timings_ms={"total": 1.0}, query="How many claims?")


def render_markdown(text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    md = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return md.render(text)


def make_pdf(path: Path, lines: list[str], title: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.multi_cell(0, 8, line)
        pdf.ln(2)
    pdf.output(str(path))
    return path


# --- answer formatting -------------------------------------------------------------------------


def test_escape_markdown_renders_hostile_text_literally() -> None:
    escaped = escape_markdown(HOSTILE)
    rendered = render_markdown(escaped)
    tags = parse(rendered)
    assert set(tags.tags) <= {"p"}, rendered  # no img, a, script, em, strong, code
    text = "".join(tags.text)
    assert "<img src=http://127.0.0.1:9/x>" in text
    assert "![x](http://127.0.0.1:9/y)" in text
    assert "*bold* _it_ `code`" in text
    assert "info@example.org & more." in text


@pytest.mark.parametrize("line", ["# heading", "- item", "+ item", "1. item", "2) item", "> quote", "=== rule",
                                  "    indented code", "| a | b |"])
def test_escape_markdown_opens_no_block(line: str) -> None:
    rendered = render_markdown(escape_markdown(line))
    assert set(parse(rendered).tags) <= {"p"}, rendered
    assert " ".join(line.split()) in "".join(parse(rendered).text)


def test_answer_markdown_bolds_markers_and_escapes_text() -> None:
    answer = make_answer(f"Intro. {HOSTILE} Outro.", HOSTILE)
    md = format_answer_markdown(answer)
    assert "**\\[1\\]**" in md
    assert "<img" not in md and "<script" not in md
    rendered = render_markdown(md)
    tags = parse(rendered)
    assert "img" not in tags.tags and "a" not in tags.tags and "script" not in tags.tags
    assert "strong" in tags.tags  # the marker
    assert "[1]" in "".join(tags.text)
    assert "Sources: [1] Report <b>A</b>" in "".join(tags.text)


def test_answer_markdown_only_bolds_real_markers() -> None:
    answer = make_answer("Article [7] of the law applies.", "Article [7] of the law applies.")
    md = format_answer_markdown(answer)
    assert "\\[7\\]" in md and "**\\[7\\]**" not in md
    assert md.count("**\\[1\\]**") == 1


def test_answer_markdown_shows_rewritten_query() -> None:
    answer = make_answer(BELLAVISTA, BELLAVISTA)
    answer.question = "and what about children?"
    answer.query = "How many claims — children"
    md = format_answer_markdown(answer)
    assert md.startswith("*Searched for:* How many claims — children")
    same = make_answer(BELLAVISTA, BELLAVISTA)
    assert "Searched for" not in format_answer_markdown(same)


def test_answer_markdown_when_the_documents_do_not_answer() -> None:
    answer = Answer(question="Capital of Mongolia?", answer="The documents do not answer this.", abstained=True,
                    citations=[], passages=[], timings_ms={})
    md = format_answer_markdown(answer, Filters(kind=("questionnaire",), areas=(2,)))
    assert "**The documents do not answer this.**" in md
    assert "Filters in use: kind: questionnaire; thematic area 2." in md
    assert "Library" in md
    assert "No source answers this question" in render_sources_html(answer)


# --- sources panel -----------------------------------------------------------------------------


def test_sources_highlight_the_quote_inside_its_passage() -> None:
    text = ("Context before the fact. " * 12) + BELLAVISTA + (" Context after the fact." * 12)
    answer = make_answer(text, BELLAVISTA)
    out = render_sources_html(answer)
    assert out.count("<details") == 1 and "<summary>" in out
    assert f"<mark>{BELLAVISTA}</mark>" in out
    assert "Report &lt;b&gt;A&lt;/b&gt;" in out  # the title, escaped
    assert "2. Findings &gt; 2.1 Progress" in out  # the section path
    assert "p. 12-13" in out
    # the snippet (in the summary) is shorter than the whole passage (after it)
    summary = out.split("</summary>")[0]
    passage = out.split("</summary>")[1]
    assert "…" in summary and len(summary) < len(passage) + 400
    assert passage.count("Context before the fact.") == 12


def test_sources_escape_hostile_passages() -> None:
    text = f"First sentence. {HOSTILE} Last sentence."
    out = render_sources_html(make_answer(text, HOSTILE, title="<img src=http://127.0.0.1:9/t>"))
    tags = parse(out)
    assert set(tags.tags) <= {"div", "p", "q", "details", "summary", "span", "mark"}, tags.tags
    assert not any(name in {"src", "href", "style"} or name.startswith("on") for name, _ in tags.attrs)
    text_out = "".join(tags.text)
    assert "<img src=http://127.0.0.1:9/x>" in text_out
    assert "<img src=http://127.0.0.1:9/t>" in text_out
    assert "<script>alert(1)</script>" in text_out


def test_sources_highlight_every_piece_of_a_joined_quote() -> None:
    text = "Alpha one is here. Filler sentence in between. Beta two is there."
    spans = quote_spans(text, "Alpha one is here. … Beta two is there.")
    assert [text[a:b] for a, b in spans] == ["Alpha one is here.", "Beta two is there."]
    assert quote_spans("spaced   out\ntext", "spaced out text") == [(0, 17)]
    assert quote_spans(text, "not in the passage") == []
    out = render_sources_html(make_answer(text, "not in the passage"))
    assert "<mark>not in the passage</mark>" in out  # still shown, on its own


def test_empty_sources_panel() -> None:
    assert render_sources_html(None) == EMPTY_SOURCES_HTML


def test_sources_for_a_real_answer(report_engine) -> None:
    answer = report_engine.ask("What is the Temporary Protection Status granted by Colombia?")
    assert not answer.abstained and answer.citations
    out = render_sources_html(answer)
    assert out.count("<details") == len(answer.citations)
    assert out.count("<mark>") >= len(answer.citations)
    assert "Report on the regional review" in out
    md = format_answer_markdown(answer)
    assert re.search(r"\*\*\\\[\d\\\]\*\*", md)


# --- filters -----------------------------------------------------------------------------------


def test_build_filters_maps_widgets() -> None:
    f = build_filters(["report"], ["Colombia", "Mexico"], ["es"], ["2. Protecting the human rights", 4],
                      [5, "23", "99", None])
    assert f == Filters(kind=("report",), author=("Colombia", "Mexico"), language=("es",), areas=(2, 4),
                        objectives=(5, 23))
    assert build_filters().is_empty()
    assert build_filters(None, [], "", [], []).is_empty()
    assert build_filters("questionnaire").kind == ("questionnaire",)
    assert build_filters(areas=[0, 6, "x"], known_areas=range(1, 6)).areas == ()  # the profiles' areas only
    assert build_filters(areas=[0, 6, "x"]).areas == (6,)  # no profile said which: any area number
    assert describe_filters(build_filters(["report"], areas=[1])) == "kind: report; thematic area 1"


def test_filters_reach_the_engine(report_engine) -> None:
    answer = report_engine.ask("What is the Temporary Protection Status granted by Colombia?",
                               filters=build_filters(areas=[4]))
    assert answer.passages and all(4 in p.chunk.areas for p in answer.passages)
    nothing = report_engine.ask("What is the Temporary Protection Status granted by Colombia?",
                                filters=build_filters(kind=["questionnaire"]))
    assert nothing.abstained and not nothing.citations
    assert "Filters in use: kind: questionnaire" in format_answer_markdown(nothing, build_filters("questionnaire"))


# --- library and uploads -----------------------------------------------------------------------


@pytest.fixture
def small_engine(make_engine, tmp_path: Path):
    engine = make_engine(tmp_path / "lib")
    corpus = engine.settings.paths.corpus_dir
    (corpus / "base.txt").write_text(
        "Base report on migration\n\nThe base report says that the regional review meeting had 200 "
        "participants from 30 countries. It also covers regular pathways and labour migration.\n",
        encoding="utf-8",
    )
    engine.build()
    return engine


def test_upload_good_pdf_is_answerable(small_engine, tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "Bellavista report.pdf",
                   ["Bellavista annual asylum report", BELLAVISTA,
                    "Most claims were filed by people arriving by sea from neighbouring islands."],
                   title="Bellavista asylum report 2021")
    steps: list[tuple[float, str]] = []
    outcome = handle_upload(small_engine, [str(pdf)], max_mb=5,
                            progress=lambda frac, desc="": steps.append((frac, desc)))
    assert outcome.added == ["Bellavista report.pdf"] and not outcome.errors
    assert outcome.chunks["Bellavista report.pdf"] >= 1
    assert "**Added** Bellavista report.pdf (" in outcome.message
    assert steps[0][0] == 0.0 and steps[-1][0] == 1.0
    files = {d["file"] for d in small_engine.documents()}
    assert files == {"base.txt", "Bellavista report.pdf"}
    answer = small_engine.ask("How many asylum claims did Bellavista register in 2021?")
    assert not answer.abstained
    assert any(c.title == "Bellavista asylum report 2021" for c in answer.citations)
    assert "4,321" in answer.answer
    assert "Bellavista asylum report 2021" in render_sources_html(answer)
    # the library table and the author/language choices follow the index
    titles = [row[0] for row in documents_table(small_engine)]
    assert "Bellavista asylum report 2021" in titles
    assert language_choices(small_engine) == ["en"]
    assert author_choices(small_engine) == []


def test_upload_good_txt_then_same_file_again(small_engine, tmp_path: Path) -> None:
    note = tmp_path / "bellavista.txt"
    note.write_text(f"Bellavista note\n\n{BELLAVISTA}\n", encoding="utf-8")
    first = handle_upload(small_engine, [str(note)], max_mb=1)
    assert first.added == ["bellavista.txt"]
    again = handle_upload(small_engine, [str(note)], max_mb=1)
    assert not again.added and not again.errors
    assert "already in the library as bellavista.txt" in again.message
    other = tmp_path / "other" / "bellavista.txt"
    other.parent.mkdir()
    other.write_text("Bellavista note, second edition\n\nBellavista also registered 17 stateless persons.\n",
                     encoding="utf-8")
    renamed = handle_upload(small_engine, [str(other)], max_mb=1)
    assert renamed.added == ["bellavista (2).txt"]  # the corpus's one naming rule (corpus.free_name)
    assert "stored as bellavista (2).txt" in renamed.message
    corpus = small_engine.settings.paths.corpus_dir
    assert BELLAVISTA in (corpus / "bellavista.txt").read_text(encoding="utf-8")  # not overwritten


def test_bad_uploads_are_rejected_by_name_and_nothing_is_lost(small_engine, tmp_path: Path) -> None:
    before = {d["file"]: d["chunks"] for d in small_engine.documents()}
    good = make_pdf(tmp_path / "good.pdf", ["Good file", BELLAVISTA])
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(good.read_bytes()[:300])
    exe = tmp_path / "setup.exe"
    exe.write_bytes(b"MZ\x90\x00" + b"\x00" * 200)
    fake_pdf = tmp_path / "fake.pdf"
    fake_pdf.write_bytes(b"MZ\x90\x00 this is a program, not a PDF" * 10)
    big = tmp_path / "big.txt"
    big.write_text("Large text. " * 20000, encoding="utf-8")  # about 240 kB
    empty = tmp_path / "empty.md"
    empty.write_text("", encoding="utf-8")
    outcome = handle_upload(small_engine, [str(p) for p in (truncated, exe, fake_pdf, big, empty, good)],
                            max_mb=0.1)
    assert outcome.added == ["good.pdf"]
    by_file = {e.split(":", 1)[0]: e for e in outcome.errors}
    assert set(by_file) == {"truncated.pdf", "setup.exe", "fake.pdf", "big.txt", "empty.md"}
    assert "unsupported file type '.exe'" in by_file["setup.exe"]
    assert "over the 0.1 MB upload limit" in by_file["big.txt"]
    assert "empty" in by_file["empty.md"]
    for name in ("truncated.pdf", "setup.exe", "fake.pdf", "big.txt", "empty.md"):
        assert f"**Rejected** {escape_markdown(name)}: " in outcome.message
    corpus = small_engine.settings.paths.corpus_dir
    assert sorted(p.name for p in corpus.iterdir() if p.name != "manifest.toml") == ["base.txt", "good.pdf"]
    after = {d["file"]: d["chunks"] for d in small_engine.documents()}
    assert after["base.txt"] == before["base.txt"]
    assert not small_engine.ask("How many participants did the regional review meeting have?").abstained


def test_upload_nothing_and_hostile_names(small_engine, tmp_path: Path) -> None:
    assert "Choose one or more files" in handle_upload(small_engine, None, 1).message
    assert "Choose one or more files" in handle_upload(small_engine, [], 1).message
    weird = tmp_path / "<img src=x>.exe"
    weird.write_bytes(b"MZ")
    out = handle_upload(small_engine, [str(weird)], 1)
    assert "<img" not in out.message and "&lt;img" in out.message
    assert safe_name("../../etc/.hidden name?.TXT") == "hidden name.txt"
    assert safe_name("..") == "document"


# --- app wiring and launch safety --------------------------------------------------------------


def test_parse_auth() -> None:
    assert parse_auth(None) is None and parse_auth("") is None
    assert parse_auth("ana:s3:cret") == ("ana", "s3:cret")
    for bad in ("nopassword", ":pw", "user:"):
        with pytest.raises(ValueError, match="user:password"):
            parse_auth(bad)


def test_build_app_safe_components(report_engine) -> None:
    demo = build_app(report_engine, max_upload_mb=3)
    config = demo.get_config_file()
    by_id = {c.get("props", {}).get("elem_id"): c for c in config["components"]}
    chat = by_id["gcmqa-chat"]["props"]
    assert chat["sanitize_html"] is True and chat["latex_delimiters"] == []
    assert chat["allow_tags"] is False
    upload = by_id["gcmqa-upload"]["props"]
    assert set(upload["file_types"]) >= {".pdf", ".docx", ".txt", ".md"}
    assert "3 MB" in upload["label"]
    assert by_id["gcmqa-sources"]["props"]["value"] == EMPTY_SOURCES_HTML
    assert by_id["gcmqa-matrix"]["props"]["value"] == EMPTY_COMPARE_HTML
    assert "share" not in by_id["gcmqa-heatmap"]["props"]["buttons"]  # nothing leaves for Hugging Face
    assert by_id["gcmqa-docs"]["props"]["headers"] == DOC_HEADERS
    assert [c[0] for c in by_id["gcmqa-compare-stakeholders"]["props"]["choices"]] == list(STAKEHOLDERS)
    assert ".gcmqa-source" in APP_CSS
    assert demo.analytics_enabled is False


def test_launch_refuses_an_upload_folder_inside_the_corpus(report_engine, tmp_path: Path) -> None:
    settings = report_engine.settings
    args = argparse.Namespace(host="127.0.0.1", port=7860, share=False, auth=None, max_upload_mb=25.0,
                              upload_dir=settings.paths.corpus_dir / "uploads")
    with pytest.raises(ValueError, match="must not contain or sit inside"):
        launch(settings, args)
    args.upload_dir = tmp_path / "up"
    args.auth = "broken"
    with pytest.raises(ValueError, match="user:password"):
        launch(settings, args)


def test_started_server_is_locked_down(report_engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real launch path in-process: loopback, basic auth, upload limit, file route confined."""
    import socket

    import httpx

    from gcm_qa.app import start

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "unused"))  # restored after the test
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path / "unused"))
    monkeypatch.setenv("GRADIO_ALLOWED_PATHS", "/")  # a hostile environment must not widen access
    monkeypatch.setenv("GCM_QA_AUTH", "ana:s3:cret")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = argparse.Namespace(host=None, port=port, share=False, auth=None, max_upload_mb=0.5,
                              upload_dir=tmp_path / "uploads")
    running = start(report_engine.settings, args, engine=report_engine)
    try:
        assert running.demo.server_name == "127.0.0.1" and running.share_url is None
        base = running.url.rstrip("/")
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/config").status_code == 401
            assert client.post("/login", data={"username": "ana", "password": "wrong"}).status_code != 200
            assert client.post("/login", data={"username": "ana", "password": "s3:cret"}).status_code == 200
            assert client.get("/config").status_code == 200
            paths = report_engine.settings.paths
            corpus_file = next(p for p in paths.corpus_dir.iterdir() if p.suffix == ".txt")
            manifest = (paths.index_dir / "current").resolve() / "manifest.json"
            for private in (corpus_file, manifest, Path(__file__).resolve(), Path("/etc/passwd")):
                assert client.get(f"/gradio_api/file={private}").status_code == 403, private
            planted = running.upload_dir / "ok.txt"
            planted.write_text("fine", encoding="utf-8")
            assert client.get(f"/gradio_api/file={planted}").status_code == 403  # not uploaded by this client
            assert client.get("/monitoring").status_code != 200
            big = client.post("/gradio_api/upload", files={"files": ("big.txt", b"x" * 600_000, "text/plain")})
            assert big.status_code in (400, 413), big.status_code
            small = client.post("/gradio_api/upload", files={"files": ("small.txt", b"x" * 1000, "text/plain")})
            assert small.status_code == 200
            assert str(running.upload_dir) in small.text  # uploads land in the upload folder
            served = client.get(f"/gradio_api/file={small.json()[0]}")  # the route itself works, as a download
            assert served.status_code == 200 and served.headers["content-disposition"].startswith("attachment")
            page = client.post("/gradio_api/upload", files={"files": ("page.html", b"<script>1</script>", "text/html")})
            assert page.status_code == 415  # tests/test_app_security.py has the rest of the attacks
    finally:
        running.close()
    assert (tmp_path / "uploads").is_dir()  # a folder the user chose is kept


def test_handled_uploads_are_discarded_from_the_upload_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcm_qa.app import _discard_uploads

    folder = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    inside = folder / "abc123" / "report.pdf"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"%PDF")
    outside = tmp_path / "mine.pdf"
    outside.write_bytes(b"%PDF")
    _discard_uploads([str(inside), str(outside)])
    assert not inside.exists() and not inside.parent.exists()
    assert outside.exists()  # never touches a file outside the upload folder
    _discard_uploads(None)
