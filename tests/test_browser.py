"""End to end: the real ``gcm-qa chat`` in a subprocess, driven by headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, ``make browser``); Playwright never downloads one. A
missing browser fails the test with a message instead of skipping it, so CI cannot pass without
having run it. Screenshots of every step land in the test's ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import copy_forms, free_port, stop
from llm_server import ScriptedLLM, Status, Text

from gcm_qa.app_library import DOC_HEADERS
from gcm_qa.comparison import NOTHING_FOUND

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STARTUP_TIMEOUT_S = 240  # model load; a rebuild too if the shipped corpus no longer matches the index
ANSWER_TIMEOUT_MS = 60_000
UPLOAD_TIMEOUT_MS = 120_000
# Page updates on a loaded 2-core machine (a parallel build was seen to delay one past 30 s).
UI_TIMEOUT_MS = 90_000

BELLAVISTA = "The fictional island of Bellavista registered 4,321 asylum claims in 2021."
HOSTILE_IMG = "<img src=http://127.0.0.1:9/x>"
HOSTILE_MD = "![x](http://127.0.0.1:9/y)"
# The loaders strip tags and inline links from documents; this image (a title after the URL) survives
# them, so the escaping in the chat and the sources panel is what keeps it from being fetched.
HOSTILE_KEPT = '![z](http://127.0.0.1:9/w "t")'



@dataclass
class Server:
    url: str
    port: int
    root: Path
    log: Path
    corpus: Path
    index: Path


def _get(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _tail(path: Path, n: int = 40) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-n:])


def _copy_report(root: Path, report_engine) -> tuple[Path, Path]:
    """A copy of the shipped corpus and of the session's report index under ``root``."""
    corpus = root / "corpus"
    corpus.mkdir()
    for f in (ROOT / "corpus").iterdir():
        if f.is_file():
            shutil.copy(f, corpus / f.name)
    shutil.copytree(ROOT / "corpus" / "profiles", corpus / "profiles")
    index = root / "index"
    shutil.copytree(report_engine.settings.paths.index_dir, index, symlinks=True,
                    ignore=shutil.ignore_patterns(".lock"))
    return corpus, index


@contextlib.contextmanager
def _serve(root: Path, corpus: Path, index: Path, cache_dir: Path, extra: Sequence[str] = ()) -> Iterator[Server]:
    """``gcm-qa chat`` in a process of its own on a free loopback port, until the block ends;
    ``extra``: more of its options."""
    port = free_port()
    log = root / "chat.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "GCM_QA_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["GCM_QA_EMBEDDING__MODEL"] = os.environ["GCM_QA_EMBEDDING__MODEL"]  # the suite's model (conftest)
    cmd = [sys.executable, "-m", "gcm_qa.cli", "chat", "--corpus", str(corpus), "--index-dir", str(index),
           "--cache-dir", str(cache_dir), "--port", str(port), "--upload-dir", str(root / "uploads"),
           "--max-upload-mb", "5", *extra]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gcm-qa chat exited with {proc.returncode}:\n{_tail(log)}")
            with contextlib.suppress(OSError):
                if _get(url, timeout=2) == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"gcm-qa chat did not answer on {url} within {STARTUP_TIMEOUT_S} s:\n{_tail(log)}")
            time.sleep(0.5)
        yield Server(url, port, root, log, corpus, index)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def chat_server(report_engine, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``gcm-qa chat`` on a free loopback port over a copy of the shipped corpus.

    The session's already built report index is copied in, so startup only loads it (the chat
    rebuilds by itself should the shipped corpus differ from what the session indexed).
    """
    root = tmp_path_factory.mktemp("chat")
    corpus, index = _copy_report(root, report_engine)
    with _serve(root, corpus, index, cache_dir) as server:
        yield server


def _listening_addresses(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                address, hex_port = fields[1].split(":")
                if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                    found.append(address)
    return found


def test_chat_binds_loopback_and_serves_no_private_file(chat_server: Server) -> None:
    addresses = _listening_addresses(chat_server.port)
    assert addresses, "the chat's listening socket was not found in /proc/net/tcp"
    # 127.0.0.1 little-endian; never 0.0.0.0 (00000000) nor :: (all zeros)
    assert addresses == ["0100007F"], f"expected 127.0.0.1 only, got {addresses}"

    report = chat_server.corpus / "gcm-regional-review-lac-2022.txt"
    manifest = (chat_server.index / "current").resolve() / "manifest.json"
    assert report.is_file() and manifest.is_file()
    base = chat_server.url.rstrip("/")
    for private in (report, chat_server.corpus / "manifest.toml", manifest, ROOT / "pyproject.toml",
                    Path("/etc/passwd")):
        status = _get(f"{base}/gradio_api/file={private}")
        assert status in (403, 404), f"{private} was served ({status})"
    assert _get(f"{base}/monitoring") != 200
    assert _get(f"{base}/gradio_api/monitoring") != 200


def _chromium():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium first ('make browser' or "
                    "'apt-get install -y chromium')")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"playwright is not installed ({exc}); pip install -e '.[test]'")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    except Exception as exc:
        pw.stop()
        pytest.fail(f"could not start {CHROMIUM}: {exc}")
    return pw, browser


def _make_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Bellavista asylum report 2021")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in ("Bellavista annual asylum report", BELLAVISTA,
                 "Most claims were filed by people arriving by sea from neighbouring islands."):
        pdf.multi_cell(0, 8, line)
        pdf.ln(2)
    pdf.output(str(path))
    return path


def _bot_messages(page) -> list[str]:
    return page.locator("#gcmqa-chat [data-testid='bot']").all_inner_texts()


def _ask(page, question: str, shots: Path, name: str) -> str:
    """Ask, wait for the answer (not the 'Searching…' placeholder), screenshot; the answer's text."""
    before = len(_bot_messages(page))
    page.fill("#gcmqa-question textarea", question)
    page.click("#gcmqa-ask")
    page.wait_for_function(
        """(n) => {
            const bots = document.querySelectorAll('#gcmqa-chat [data-testid="bot"]');
            return bots.length > n && !bots[bots.length - 1].innerText.includes('Searching the documents');
        }""",
        arg=before,
        timeout=ANSWER_TIMEOUT_MS,
    )
    page.wait_for_function(
        "(q) => (document.querySelector('#gcmqa-sources .gcmqa-for') || {}).innerText?.includes(q)",
        arg=question,
        timeout=ANSWER_TIMEOUT_MS,
    )
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    return _bot_messages(page)[-1]


def test_chat_end_to_end(chat_server: Server, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    pw, browser = _chromium()
    requests: list[str] = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(chat_server.url)
        page.wait_for_selector("#gcmqa-question textarea", timeout=UI_TIMEOUT_MS)
        page.screenshot(path=str(shots / "01-start.png"), full_page=True)
        assert page.get_by_text("Example questions").is_visible()
        assert page.get_by_text("What is the Temporary Protection Status granted by Colombia?").first.is_visible()

        # 1. a question from the report: answer with markers, a source with title and highlighted quote
        text = _ask(page, "What is the Temporary Protection Status granted by Colombia?", shots, "02-answer")
        assert "[1]" in text, text
        sources = page.locator("#gcmqa-sources details.gcmqa-source")
        assert sources.count() >= 1
        first = sources.first
        assert "Report on the regional review" in first.locator(".gcmqa-title").inner_text()
        quote = first.locator(".gcmqa-quote mark").first.inner_text().strip()
        assert len(quote) > 10
        assert " ".join(quote.split())[:40] in " ".join(text.split())  # the answer quotes the highlight
        assert page.locator("#gcmqa-chat strong", has_text="[1]").count() >= 1
        # expanding the source shows the whole passage, quote highlighted inside it
        assert not first.locator(".gcmqa-passage").is_visible()
        first.locator("summary").click()
        assert first.locator(".gcmqa-passage").is_visible()
        passage_marks = " ".join(first.locator(".gcmqa-passage mark").all_inner_texts())
        assert " ".join(quote.split()) in " ".join(passage_marks.split())
        page.screenshot(path=str(shots / "03-source-open.png"), full_page=True)

        # 2. a follow-up is rewritten with the previous question, and the rewrite is shown
        text = _ask(page, "and what about children?", shots, "04-follow-up")
        assert "Searched for:" in text and "Temporary Protection Status" in text, text

        # 3. filters: only questionnaires (there are none yet), so the documents do not answer
        page.get_by_text("Filters (optional)").click()
        page.locator("#gcmqa-kind").get_by_text("Questionnaires").click()
        page.screenshot(path=str(shots / "05-filters.png"), full_page=True)
        text = _ask(page, "What is the Temporary Protection Status granted by Colombia?", shots, "06-filtered")
        assert "The documents do not answer this." in text and "Filters in use: kind: questionnaire" in text, text
        assert page.locator("#gcmqa-sources details").count() == 0
        page.locator("#gcmqa-kind").get_by_text("Questionnaires").click()  # filter off again

        # 4. upload a PDF only it answers, plus a hostile Markdown file, in the library tab
        page.get_by_role("tab", name="Library").click()
        page.wait_for_selector("#gcmqa-docs")
        assert page.locator("#gcmqa-docs").get_by_text("gcm-regional-review-lac-2022.txt").count() >= 1
        pdf = _make_pdf(tmp_path / "bellavista-report.pdf")
        hostile = tmp_path / "hostile-note.md"
        hostile.write_text(
            f"# Hostile note {HOSTILE_IMG}\n\nThe hostile note reports that Zanzibar ferries carried 777 "
            f"migrants {HOSTILE_IMG} and {HOSTILE_MD} and {HOSTILE_KEPT} in 2020.\n",
            encoding="utf-8",
        )
        broken = tmp_path / "broken.pdf"
        broken.write_bytes(pdf.read_bytes()[:300])
        page.locator("#gcmqa-upload input[type=file]").set_input_files([str(pdf), str(hostile), str(broken)])
        page.wait_for_function(
            "() => document.querySelector('#gcmqa-upload').innerText.includes('bellavista-report.pdf')",
            timeout=UI_TIMEOUT_MS,
        )
        page.click("#gcmqa-add")
        status = page.locator("#gcmqa-upload-status")
        status.get_by_text("broken.pdf").first.wait_for(timeout=UPLOAD_TIMEOUT_MS)
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "07-library.png"), full_page=True)
        assert "Added bellavista-report.pdf" in status.inner_text()
        assert "Added hostile-note.md" in status.inner_text()
        assert "Rejected broken.pdf: " in status.inner_text()
        docs = page.locator("#gcmqa-docs").inner_text()
        assert "Bellavista asylum report 2021" in docs and "hostile-note.md" in docs

        # 5. the new PDF is searchable at once and cited by its title
        page.get_by_role("tab", name="Ask").click()
        page.click("#gcmqa-clear")
        page.wait_for_function(
            "() => !document.querySelector('#gcmqa-chat [data-testid=\"bot\"]')"
            " && !document.querySelector('#gcmqa-sources details')",
            timeout=UI_TIMEOUT_MS,
        )
        text = _ask(page, "How many asylum claims did Bellavista register in 2021?", shots, "08-uploaded")
        assert "4,321" in text, text
        titles = page.locator("#gcmqa-sources .gcmqa-title").all_inner_texts()
        assert "Bellavista asylum report 2021" in titles, titles

        # 6. hostile document text is shown as text and fetches nothing
        text = _ask(page, "How many migrants did Zanzibar ferries carry?", shots, "09-hostile")
        page.locator("#gcmqa-sources details.gcmqa-source summary").first.click()
        page.screenshot(path=str(shots / "10-hostile-open.png"), full_page=True)
        panel = page.locator("#gcmqa-sources").inner_text()
        assert HOSTILE_KEPT in panel, panel
        assert "777" in text and HOSTILE_KEPT in text, text
        assert page.locator("#gcmqa-chat img, #gcmqa-sources img").count() == 0
        assert page.locator("#gcmqa-chat a[href*='127.0.0.1:9'], #gcmqa-sources a").count() == 0
        assert page.locator("#gcmqa-docs img").count() == 0
    finally:
        browser.close()
        pw.stop()
    origin = chat_server.url.rstrip("/")
    outside = [u for u in requests if not u.startswith((origin, "data:", "blob:"))]
    assert not outside, f"the page fetched outside its own server: {outside}"
    print(f"screenshots: {shots}")


# --- comparisons across authors, coverage, the library's columns (issue 13) -----------------------

COMPARE_FORMS = ["saint-auric-questionnaire-2021.pdf", "caribbean-migrant-rights-network-questionnaire.txt",
                 "windward-climate-mobility-note.txt", "ejemplaria-cuestionario-es.txt"]
COMPARED = {  # author -> found, with what its row quotes when it is found
    "Saint Auric and the Marens": "Status Regularisation Programme",
    "Caribbean Migrant Rights Network": None,
    "Windward Climate Mobility Alliance": None,
}


@pytest.fixture(scope="module")
def forms_server(report_engine, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``gcm-qa chat`` over the report and four invented questionnaires (with their manifest
    entries); the report's index is copied in, so startup embeds only the questionnaires."""
    root = tmp_path_factory.mktemp("forms-chat")
    corpus, index = _copy_report(root, report_engine)
    copy_forms(corpus, COMPARE_FORMS)
    with _serve(root, corpus, index, cache_dir) as server:
        yield server


def _choose(page, dropdown: str, typed: str, option: str | None) -> None:
    """Type into a multiselect and pick ``option`` (None: keep what was typed, a custom value)."""
    box = page.locator(f"{dropdown} input")
    box.click()
    box.press_sequentially(typed, delay=20)
    if option is None:
        page.wait_for_timeout(200)
        box.press("Enter")
    else:
        page.get_by_role("option", name=option).click()
    page.wait_for_function("([d, t]) => document.querySelector(d).innerText.includes(t)",
                           arg=[dropdown, option or typed], timeout=UI_TIMEOUT_MS)


def _table_rows(page, selector: str, row: str = "tbody tr", cell: str = "td") -> list[list[str]]:
    """The cell texts of each row under ``selector`` (a Gradio Dataframe: rows and cells by their
    ARIA roles, since it draws its rows as a virtual list of divs)."""
    return page.locator(selector).evaluate(
        "(t, [row, cell]) => [...t.querySelectorAll(row)].map(r => [...r.querySelectorAll(cell)]"
        ".map(c => c.innerText.trim())).filter(cells => cells.length)", [row, cell])


def test_compare_coverage_and_library_columns(forms_server: Server, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    pw, browser = _chromium()
    requests: list[str] = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.on("request", lambda r: requests.append(r.url))
        page.goto(forms_server.url)
        page.wait_for_selector("#gcmqa-question textarea", timeout=UI_TIMEOUT_MS)

        # 1. an empty question: one line, no matrix, no download
        page.get_by_role("tab", name="Compare").click()
        page.click("#gcmqa-compare-run")
        page.locator("#gcmqa-matrix .gcmqa-error").wait_for(timeout=UI_TIMEOUT_MS)
        assert "Type a question to compare" in page.locator("#gcmqa-matrix").inner_text()
        assert not page.locator("#gcmqa-compare-csv").is_visible()

        # 2. three authors chosen from the list (it lists the indexed questionnaires' authors) and a
        # name no author has; one row per author, a quote or "nothing found", and the scope line
        _choose(page, "#gcmqa-compare-authors", "Saint", "Saint Auric and the Marens (State)")
        _choose(page, "#gcmqa-compare-authors", "Caribbean Migrant",
                "Caribbean Migrant Rights Network (civil society)")
        _choose(page, "#gcmqa-compare-authors", "Windward", "Windward Climate Mobility Alliance (civil society)")
        _choose(page, "#gcmqa-compare-authors", "Atlantis", None)
        page.fill("#gcmqa-compare-question textarea", "Which authors reported regularisation programmes?")
        page.click("#gcmqa-compare-run")
        page.wait_for_selector("#gcmqa-matrix table.gcmqa-matrix", timeout=ANSWER_TIMEOUT_MS)
        page.locator("#gcmqa-compare-csv").wait_for(state="visible", timeout=UI_TIMEOUT_MS)
        page.screenshot(path=str(shots / "01-compare.png"), full_page=True)
        panel = page.locator("#gcmqa-matrix").inner_text()
        assert "Rows: authors chosen" in panel and "No indexed author matches: Atlantis." in panel, panel
        rows = _table_rows(page, "#gcmqa-matrix table.gcmqa-matrix")
        assert [r[0] for r in rows] == list(COMPARED), rows
        for quote, row in zip(COMPARED.values(), rows, strict=True):
            if quote is None:
                assert row[3] == NOTHING_FOUND and row[4] == "", row
            else:
                assert quote in row[3] and "Voluntary GCM review questionnaire" in row[4], row
        nothing = page.locator("#gcmqa-matrix tr.gcmqa-nothing")
        assert nothing.count() == 2
        # set apart from a quote: italic and dimmed
        assert nothing.first.locator("em").evaluate("e => getComputedStyle(e).fontStyle") == "italic"
        assert "Saint Auric and the Marens (State)" in page.locator("#gcmqa-compare-authors").inner_text()

        # 3. the matrix downloads as CSV, through the guarded file route, one row per author
        with page.expect_download(timeout=UI_TIMEOUT_MS) as download_info:
            page.click("#gcmqa-compare-csv")
        download = download_info.value
        assert "/gradio_api/file=" in download.url and download.suggested_filename == "comparison.csv"
        saved = tmp_path / "comparison.csv"
        download.save_as(saved)
        table = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
        assert [(r["author"], r["found"]) for r in table] == [
            (a, "no" if q is None else "yes") for a, q in COMPARED.items()], table
        assert "Status Regularisation Programme" in table[0]["quote"] and table[0]["page"]
        assert table[1]["quote"] == NOTHING_FOUND and table[1]["document"] == ""

        # 4. the coverage tab: a heat map by area, then by objective, and its own CSV
        page.get_by_role("tab", name="Coverage").click()
        heat = page.locator("#gcmqa-heatmap img").first
        heat.wait_for(timeout=UI_TIMEOUT_MS)
        page.wait_for_function("() => (document.querySelector('#gcmqa-heatmap img') || {}).naturalWidth > 0",
                               timeout=UI_TIMEOUT_MS)
        by_area = heat.get_attribute("src") or ""
        assert "/gradio_api/file=" in by_area and by_area.endswith("coverage-by-area.png"), by_area
        note = page.locator("#gcmqa-coverage-note").inner_text()
        assert "Form layout not read" in note and "Windward Climate Mobility Alliance" in note, note
        page.screenshot(path=str(shots / "02-coverage.png"), full_page=True)
        page.locator("#gcmqa-coverage-by").get_by_text("By GCM objective").click()
        page.wait_for_function(
            "() => { const i = document.querySelector('#gcmqa-heatmap img');"
            " return i && i.src.endsWith('coverage-by-objective.png') && i.complete && i.naturalWidth > 0; }",
            timeout=UI_TIMEOUT_MS)
        with page.expect_download(timeout=UI_TIMEOUT_MS) as download_info:
            page.click("#gcmqa-coverage-csv")
        coverage = download_info.value
        coverage.save_as(tmp_path / "coverage.csv")
        counts = {r["author"]: r for r in csv.DictReader(
            io.StringIO((tmp_path / "coverage.csv").read_text(encoding="utf-8-sig")))}
        assert set(counts) == {"Ejemplaria", *COMPARED}
        assert "objective 23" in counts["Ejemplaria"]
        assert counts["Ejemplaria"]["total"].isdigit()  # its form was read (its questions name no objective)
        assert counts["Windward Climate Mobility Alliance"]["total"] == ""  # a note: unknown, not zero
        page.screenshot(path=str(shots / "03-coverage-objective.png"), full_page=True)

        # 5. the library: author, stakeholder, country, language, answers read
        page.get_by_role("tab", name="Library").click()
        page.wait_for_selector("#gcmqa-docs")
        page.locator("#gcmqa-docs").get_by_text("ejemplaria-cuestionario-es.txt").wait_for(timeout=UI_TIMEOUT_MS)
        page.screenshot(path=str(shots / "04-library.png"), full_page=True)
        headers = page.locator("#gcmqa-docs thead th").all_inner_texts()
        assert [h.strip() for h in headers if h.strip()] == DOC_HEADERS, headers
        grid = _table_rows(page, "#gcmqa-docs", "[role=row]", "[role=gridcell]")
        docs = {r[1]: dict(zip(DOC_HEADERS, r, strict=True)) for r in grid}
        assert docs["ejemplaria-cuestionario-es.txt"] | {"Title": "", "Chunks": ""} == {
            "Title": "", "File": "ejemplaria-cuestionario-es.txt", "Kind": "questionnaire", "Author": "Ejemplaria",
            "Stakeholder": "State", "Country": "Ejemplaria", "Language": "es", "Year": "2021", "Answers": "6",
            "Chunks": ""}
        assert docs["windward-climate-mobility-note.txt"]["Answers"] == "layout not read"
        assert docs["windward-climate-mobility-note.txt"]["Stakeholder"] == "civil society"
        assert docs["gcm-regional-review-lac-2022.txt"]["Kind"] == "report"
        assert docs["gcm-regional-review-lac-2022.txt"]["Answers"] == ""
        assert page.locator("#gcmqa-matrix img, #gcmqa-matrix a, #gcmqa-docs img").count() == 0
    finally:
        browser.close()
        pw.stop()
    origin = forms_server.url.rstrip("/")
    outside = [u for u in requests if not u.startswith((origin, "data:", "blob:"))]
    assert not outside, f"the page fetched outside its own server: {outside}"
    print(f"screenshots: {shots}")


# --- generated answers, streamed and checked (issue 14) -----------------------------------------------

LLM_BELLAVISTA = ("The fictional island of Bellavista registered 4,321 asylum claims in 2021. Most claims were "
                  "filed by people arriving by sea from neighbouring islands.")
# three sentences: two said by passage [1] (nearly word for word), one citing a passage never given,
# with markup in it; 1 of 3 unsupported is under the limit, so the answer is kept with that one marked
LLM_UNSUPPORTED = f"The claims were then reviewed by a new tribunal {HOSTILE_IMG} [7]."
LLM_PIECES = ("Bellavista registered 4,321 asylum claims", " in 2021 [1].", " Most claims were filed by people",
              " arriving by sea from neighbouring islands [1].", f" {LLM_UNSUPPORTED}")
LLM_PAUSE_S = 1.0


def _last_bot_text(page) -> str:
    return page.evaluate("""() => {
        const bots = document.querySelectorAll('#gcmqa-chat [data-testid="bot"]');
        return bots.length ? bots[bots.length - 1].innerText : '';
    }""")


def _wait_last_bot(page, condition: str, arg: object = None, timeout: int = ANSWER_TIMEOUT_MS) -> str:
    """Wait until the last bot message's text (``t``) meets ``condition``, a JS expression."""
    page.wait_for_function(
        "(arg) => { const bots = document.querySelectorAll('#gcmqa-chat [data-testid=\"bot\"]');"
        " if (!bots.length) return false; const t = bots[bots.length - 1].innerText; return " + condition + "; }",
        arg=arg, timeout=timeout)
    return _last_bot_text(page)


def test_chat_streams_a_generated_answer_and_marks_what_its_sources_do_not_say(
        cache_dir: Path, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bellavista.txt").write_text(f"Bellavista asylum report 2021\n\n{LLM_BELLAVISTA}\n", encoding="utf-8")
    (corpus / "marenia-ports.txt").write_text(
        "Port authorities note\n\nThe port authorities of Marenia trained 40 officers in consular assistance "
        "during 2020. The training covered the rights of migrants in detention.\n", encoding="utf-8")
    llm = ScriptedLLM(Text("".join(LLM_PIECES), pieces=LLM_PIECES, pause=LLM_PAUSE_S), Status(500)).start()
    pw, browser = _chromium()
    requests: list[str] = []
    try:
        with _serve(tmp_path, corpus, tmp_path / "index", cache_dir,
                    ["--llm", "--llm-url", llm.base_url, "--llm-model", "scripted"]) as server:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server.url)
            page.wait_for_selector("#gcmqa-question textarea", timeout=UI_TIMEOUT_MS)

            # 1. the answer grows in the bubble while the model writes (a pause between pieces)
            question = "How many asylum claims did Bellavista register in 2021?"
            page.fill("#gcmqa-question textarea", question)
            page.click("#gcmqa-ask")
            first = _wait_last_bot(page, "t.includes('Bellavista registered 4,321 asylum claims')"
                                         " && !t.includes('Most claims')")
            page.screenshot(path=str(shots / "01-streaming.png"), full_page=True)
            assert "▍" in first and "tribunal" not in first, first
            second = _wait_last_bot(page, "t.includes('Most claims were filed by people') && !t.includes('tribunal')")
            assert "in 2021 [1]." in second and "▍" in second, second
            assert page.locator("#gcmqa-chat mark.gcmqa-unsupported").count() == 0  # marks come with the check

            # 2. then the checked answer: the [7] sentence marked with the reason, counted under it
            page.locator("#gcmqa-chat mark.gcmqa-unsupported").wait_for(timeout=ANSWER_TIMEOUT_MS)
            page.wait_for_function(
                "(q) => (document.querySelector('#gcmqa-sources .gcmqa-for') || {}).innerText?.includes(q)",
                arg=question, timeout=ANSWER_TIMEOUT_MS)
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / "02-checked.png"), full_page=True)
            text = _last_bot_text(page)
            assert "▍" not in text
            mark = page.locator("#gcmqa-chat mark.gcmqa-unsupported")
            assert mark.count() == 1
            assert " ".join(mark.inner_text().split()) == LLM_UNSUPPORTED
            assert mark.get_attribute("title") == ("Not found in the passages it cites: cites passage 7, which was "
                                                   "not given")
            assert "1 sentence not found in the passages it cites" in text, text
            assert "Bellavista registered 4,321 asylum claims in 2021 [1]." in text
            assert page.locator("#gcmqa-chat strong", has_text="[1]").count() == 2
            # the sources panel lists passage [1], the quote it supports highlighted
            source = page.locator("#gcmqa-sources details#gcmqa-source-1")
            assert source.locator(".gcmqa-title").inner_text() == "Bellavista asylum report 2021"
            assert "4,321 asylum claims" in source.locator(".gcmqa-quote mark").first.inner_text()
            assert page.locator("#gcmqa-sources details.gcmqa-source").count() == 1
            [request] = llm.chat_requests()
            assert request.json["stream"] is True and "4,321 asylum claims" in request.messages[-1]["content"]

            # 3. the model fails (HTTP 500): the extractive answer, with the one-line notice above it
            question = "Where did the people who filed asylum claims in Bellavista arrive from?"
            page.fill("#gcmqa-question textarea", question)
            page.click("#gcmqa-ask")
            page.wait_for_function(
                "(q) => (document.querySelector('#gcmqa-sources .gcmqa-for') || {}).innerText?.includes(q)",
                arg=question, timeout=ANSWER_TIMEOUT_MS)
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / "03-notice.png"), full_page=True)
            text = _last_bot_text(page)
            last = page.locator("#gcmqa-chat [data-testid='bot']").last
            notice = last.locator(".gcmqa-notice")
            assert notice.count() == 1
            assert notice.inner_text() == (f"⚠ The language model (openai model 'scripted' at {llm.base_url}) gave "
                                           "no answer: it answered with HTTP 500. This is the extractive answer.")
            assert text.index("The language model") < text.index("[1]"), text  # above the answer
            assert "Most claims were filed by people arriving by sea" in text, text
            assert last.locator("mark.gcmqa-unsupported, a").count() == 0
            assert len(llm.chat_requests()) == 2
            assert page.locator("#gcmqa-chat img").count() == 0
    finally:
        browser.close()
        pw.stop()
        llm.stop()
    outside = [u for u in requests if not u.startswith((server.url.rstrip("/"), "data:", "blob:"))]
    assert not outside, f"the page fetched outside its own server: {outside}"
    print(f"screenshots: {shots}")
