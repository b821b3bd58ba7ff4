"""End to end: the real ``gcm-qa chat`` in a subprocess, driven by headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, ``make browser``); Playwright never downloads one. A
missing browser fails the test with a message instead of skipping it, so CI cannot pass without
having run it. Screenshots of every step land in the test's ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port, stop

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


@pytest.fixture(scope="module")
def chat_server(report_engine, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``gcm-qa chat`` on a free loopback port over a copy of the shipped corpus.

    The session's already built report index is copied in, so startup only loads it (the chat
    rebuilds by itself should the shipped corpus differ from what the session indexed).
    """
    root = tmp_path_factory.mktemp("chat")
    corpus = root / "corpus"
    corpus.mkdir()
    for f in (ROOT / "corpus").iterdir():
        if f.is_file():
            shutil.copy(f, corpus / f.name)
    shutil.copytree(ROOT / "corpus" / "profiles", corpus / "profiles")
    index = root / "index"
    shutil.copytree(report_engine.settings.paths.index_dir, index, symlinks=True,
                    ignore=shutil.ignore_patterns(".lock"))
    port = free_port()
    log = root / "chat.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "GCM_QA_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["GCM_QA_EMBEDDING__MODEL"] = os.environ["GCM_QA_EMBEDDING__MODEL"]  # the suite's model (conftest)
    cmd = [sys.executable, "-m", "gcm_qa.cli", "chat", "--corpus", str(corpus), "--index-dir", str(index),
           "--cache-dir", str(cache_dir), "--port", str(port), "--upload-dir", str(root / "uploads"),
           "--max-upload-mb", "5"]
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
