"""The chat, attacked: uploads, file routes, sign-in, markup, huge and many questions, the network.

The guard's parts (:class:`~gcm_qa.app.UploadScanner`, :func:`~gcm_qa.app.download_headers`,
:class:`~gcm_qa.app.LoginThrottle`, :meth:`~gcm_qa.app.AppGuard.servable`) are tested on their own
first, fast. Then every attack is made on the real app, started by :func:`gcm_qa.app.start` on a
free loopback port over a small corpus with hostile markup, through a real HTTP client: httpx, or
``http.client`` where a path must reach the server byte for byte (httpx removes ``..`` segments).
Those tests are slow (they start a server); the network test starts ``gcm-qa chat`` in a process of
its own whose sockets refuse anything but loopback.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import chat_text, copy_forms, free_port, make_settings, stop

from gcm_qa.app import (
    AppGuard,
    LoginThrottle,
    Running,
    UploadRefused,
    UploadScanner,
    _shown_question,
    download_headers,
    start,
)
from gcm_qa.embedder import Embedder
from gcm_qa.engine import MAX_QUESTION_CHARS, Engine

ZANZIBAR = "Zanzibar ferries carried 777 migrants in 2020."
HOSTILE_DOC = (
    "Hostile ferry note\n\n"
    f"The hostile note says that {ZANZIBAR} It adds <img src=http://127.0.0.1:9/x onerror=alert(1)> and "
    "<script>alert(1)</script> and [click me](javascript:alert(1)) and ![i](http://127.0.0.1:9/y \"t\") "
    "and <a href=\"javascript:alert(2)\">a link</a> for good measure.\n"
)
BASE_DOC = (
    "Base report on migration\n\nThe base report says that the regional review meeting had 200 "
    "participants from 30 countries. It also covers regular pathways and labour migration.\n"
)
PASSWORD = "s3:cret"
SCRIPT_PAGE = b"<html><body><script>document.title='pwned';console.log('pwned')</script>pwned</body></html>"


# --- the guard's parts, without a server -------------------------------------------------------


def multipart(*parts: tuple[str, str | None, bytes], boundary: str = "XyZb0und") -> tuple[str, bytes]:
    """(content type, body) of a multipart form; a part is (field name, file name or None, data)."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def scan(content_type: str, body: bytes, step: int = 5) -> list[str]:
    scanner = UploadScanner(content_type)
    for i in range(0, len(body), step):  # byte by few bytes: a header split across chunks
        scanner.feed(body[i:i + step])
    return scanner.names


@pytest.mark.parametrize("name", ["report.pdf", "note.TXT", "notes.md", "notes.markdown", "form.docx",
                                  "../../etc/report.pdf", "x.html.txt"])
def test_scanner_lets_document_types_through(name: str) -> None:
    ctype, body = multipart(("files", name, b"data"), ("other", None, b"a plain field"))
    assert scan(ctype, body) == [Path(name).name]


@pytest.mark.parametrize("name", ["page.html", "page.HTM", "image.svg", "feed.xml", "app.js", "page.xhtml",
                                  "setup.exe", "noextension", ".html", "report.pdf.html", "x.svg.", "",
                                  "../../x.svg", "a<b>.svg"])
def test_scanner_refuses_everything_else(name: str) -> None:
    ctype, body = multipart(("files", "good.txt", b"fine"), ("files", name, b"<svg onload=alert(1)/>"))
    with pytest.raises(UploadRefused) as refused:
        scan(ctype, body)
    assert refused.value.status == 415
    assert "can be uploaded" in refused.value.reason


def test_scanner_refuses_what_is_not_multipart() -> None:
    for ctype in ("application/json", "multipart/form-data", "text/html"):
        with pytest.raises(UploadRefused) as refused:
            UploadScanner(ctype)
        assert refused.value.status == 400


def test_download_headers_make_any_file_inert() -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-disposition", b'inline; filename="a.html"'),
               (b"content-length", b"12"), (b"cookie", b"access-token-x=secret"), (b"host", b"127.0.0.1")]
    out = dict(download_headers(headers))
    assert out[b"content-type"] == b"application/octet-stream"
    assert out[b"content-disposition"] == b'attachment; filename="a.html"'
    assert out[b"x-content-type-options"] == b"nosniff"
    assert b"sandbox" in out[b"content-security-policy"] and b"default-src 'none'" in out[b"content-security-policy"]
    assert out[b"content-length"] == b"12"
    assert b"cookie" not in out and b"host" not in out  # Gradio's ranged responses echo request headers
    assert dict(download_headers([(b"content-disposition", b"inline")]))[b"content-disposition"] == b"attachment"
    assert dict(download_headers([]))[b"content-disposition"] == b"attachment"


def test_login_throttle_delays_grow_and_a_success_clears_them() -> None:
    now = [1000.0]
    throttle = LoginThrottle(free=3, base_s=1.0, cap_s=8.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait_s("a") == 0.0
        throttle.failed("a")
    waits = []
    for _ in range(6):
        waits.append(throttle.wait_s("a"))
        now[0] += waits[-1]
        assert throttle.wait_s("a") == 0.0
        throttle.failed("a")
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # exponential, capped
    assert throttle.wait_s("b") == 0.0  # per client
    throttle.succeeded("a")
    assert throttle.wait_s("a") == 0.0
    small = LoginThrottle(max_clients=4, clock=lambda: now[0])
    for i in range(10):
        small.failed(f"c{i}")
    assert len(small._failures) <= 4  # bounded memory


def test_guard_serves_only_a_clients_own_uploads(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    (uploads / "abc").mkdir(parents=True)
    mine = uploads / "abc" / "mine.txt"
    mine.write_text("mine", encoding="utf-8")
    secret = tmp_path / "corpus" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("secret", encoding="utf-8")
    link = uploads / "abc" / "link.txt"
    link.symlink_to(secret)
    guard = AppGuard(lambda *a: None, upload_dir=uploads, max_file_size=1000)  # type: ignore[arg-type, return-value]
    guard.served["client:1.2.3.4"] = {str(mine), str(link), str(secret)}
    assert guard.servable(str(mine), "client:1.2.3.4")
    assert not guard.servable(str(mine), "client:5.6.7.8")  # another client's upload
    assert not guard.servable(str(link), "client:1.2.3.4")  # a symlink, even one recorded
    assert not guard.servable(str(secret), "client:1.2.3.4")  # outside the upload folder
    assert not guard.servable(f"{uploads}/abc/../abc/mine.txt/..", "client:1.2.3.4")
    assert not guard.servable("http://127.0.0.1:9/x", "client:1.2.3.4")
    assert not guard.servable("\x00", "client:1.2.3.4")
    mine.unlink()
    assert not guard.servable(str(mine), "client:1.2.3.4")  # discarded after indexing


def test_a_huge_question_is_echoed_short() -> None:
    assert _shown_question("How many?") == "How many?"
    shown = _shown_question("x" * 100_000)
    assert len(shown) < 400 and "100,000 characters" in shown
    assert _shown_question("y" * MAX_QUESTION_CHARS) == "y" * MAX_QUESTION_CHARS


# --- the running app ---------------------------------------------------------------------------


@dataclass
class Site:
    running: Running
    engine: Engine
    root: Path

    @property
    def url(self) -> str:
        return self.running.url.rstrip("/")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def _small_corpus(root: Path) -> None:
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "base.txt").write_text(BASE_DOC, encoding="utf-8")
    (corpus / "hostile.txt").write_text(HOSTILE_DOC, encoding="utf-8")


@contextlib.contextmanager
def _serve(root: Path, cache_dir: Path, embedder: Embedder, auth: str | None) -> Iterator[Site]:
    """The real launch path (:func:`start`) over ``root/corpus``; the environment it sets is undone."""
    _small_corpus(root)
    engine = Engine(make_settings(root, cache_dir), embedder=embedder)
    engine.build()
    args = argparse.Namespace(host=None, port=free_port(), share=False, auth=auth, max_upload_mb=1.0,
                              upload_dir=root / "uploads")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE"):
            mp.setenv(name, os.environ.get(name, ""))  # restored on exit
        running = start(engine.settings, args, engine=engine)
        try:
            yield Site(running, engine, root)
        finally:
            running.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, embedder: Embedder) -> Iterator[Site]:
    with _serve(tmp_path_factory.mktemp("site"), cache_dir, embedder, auth=None) as s:
        yield s


@pytest.fixture
def auth_site(tmp_path: Path, cache_dir: Path, embedder: Embedder) -> Iterator[Site]:
    with _serve(tmp_path, cache_dir, embedder, auth=f"ana:{PASSWORD}") as s:
        yield s


def raw_get(port: int, target: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET ``target`` exactly as written (no normalisation of '..' or of escapes): (status, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        conn.close()


def upload(client: httpx.Client, *files: tuple[str, bytes]) -> httpx.Response:
    return client.post("/gradio_api/upload",
                       files=[("files", (name, data, "application/octet-stream")) for name, data in files])


def stored_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


ACTIVE = [("page.html", b"<script>alert(1)</script>"), ("image.svg", b"<svg xmlns='http://www.w3.org/2000/svg' "
          b"onload='alert(1)'/>"), ("feed.xml", b"<x/>"), ("app.js", b"alert(1)"), ("page.xhtml", b"<html/>"),
          ("setup.exe", b"MZ"), ("noext", b"<script>alert(1)</script>"), ("report.pdf.html", b"<script>1</script>"),
          ("../../escape.svg", b"<svg/>")]


@pytest.mark.slow
def test_raw_upload_route_refuses_active_content(site: Site) -> None:
    uploads = site.running.upload_dir
    with httpx.Client(base_url=site.url, timeout=30) as client:
        before = stored_files(uploads)
        for name, data in ACTIVE:
            response = upload(client, (name, data))
            assert response.status_code == 415, (name, response.status_code, response.text)
            assert "can be uploaded" in response.text
        mixed = upload(client, ("fine.txt", b"fine"), ("evil.svg", b"<svg onload=alert(1)/>"))
        assert mixed.status_code == 415  # one bad file refuses the request: nothing half-stored
        assert stored_files(uploads) == before, "a refused upload left a file behind"
        assert client.post("/gradio_api/upload", content=b"<svg/>",
                           headers={"content-type": "image/svg+xml"}).status_code == 400
        good = upload(client, ("note.txt", b"plain"), ("report.pdf", b"%PDF-1.4"), ("n.md", b"# n"))
        assert good.status_code == 200, good.text
        assert [Path(p).name for p in good.json()] == ["note.txt", "report.pdf", "n.md"]


@pytest.mark.slow
def test_uploaded_files_are_served_as_inert_downloads(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        stored = upload(client, ("looks-like-html.txt", SCRIPT_PAGE)).json()[0]
        for method in ("GET", "HEAD"):
            r = client.request(method, f"/gradio_api/file={stored}")
            assert r.status_code == 200, (method, r.status_code)
            assert r.headers["content-type"] == "application/octet-stream"
            assert r.headers["content-disposition"].startswith("attachment")
            assert "looks-like-html.txt" in r.headers["content-disposition"]
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in r.headers["content-security-policy"]
        assert client.get(f"/gradio_api/file={stored}").content == SCRIPT_PAGE
        # a range request: Gradio's ranged response copies the request's headers into the answer
        ranged = client.get(f"/gradio_api/file={stored}", headers={"Range": "bytes=0-9", "X-Probe": "echo-me"},
                            cookies={"probe": "secret-cookie"})
        assert ranged.status_code == 206 and ranged.content == SCRIPT_PAGE[:10]
        assert ranged.headers["content-disposition"].startswith("attachment")
        assert ranged.headers["content-type"] == "application/octet-stream"
        assert "secret-cookie" not in str(ranged.headers) and "x-probe" not in ranged.headers


@pytest.mark.slow
def test_file_routes_serve_nothing_the_app_did_not_choose(site: Site) -> None:
    paths = site.engine.settings.paths
    uploads = site.running.upload_dir
    corpus_file = paths.corpus_dir / "base.txt"
    manifest = (paths.index_dir / "current").resolve() / "manifest.json"
    model_file = next(p for p in Path(paths.cache_dir).rglob("*") if p.is_file())
    # a symlink placed in the corpus, and one in the upload folder, both pointing at private files
    corpus_link = paths.corpus_dir / "link.txt"
    corpus_link.symlink_to(corpus_file)
    upload_link = uploads / "planted" / "link.txt"
    upload_link.parent.mkdir(parents=True, exist_ok=True)
    upload_link.symlink_to(corpus_file)
    # another session's upload: a file in the upload folder this client did not upload
    other = uploads / "0123456789abcdef" / "their-report.txt"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("someone else's document", encoding="utf-8")
    try:
        with httpx.Client(base_url=site.url, timeout=30) as client:
            mine = Path(upload(client, ("mine.txt", b"mine")).json()[0])
        assert raw_get(site.port, f"/gradio_api/file={mine}")[0] == 200  # the route works for what it should serve
        up = str(uploads)
        targets = [
            str(corpus_file), str(manifest), str(model_file), "/etc/passwd", str(Path(__file__).resolve()),
            str(corpus_link), str(upload_link), str(other),
            f"{mine.parent}/../../{corpus_file.relative_to(corpus_file.parents[1])}",  # '..' out of the uploads
            f"{up}/../corpus/base.txt",
            f"{mine.parent}/./../{mine.parent.name}/{mine.name}/..",
            "%2Fetc%2Fpasswd",  # URL-encoded
            str(corpus_file).replace("/", "%2F"),
            f"{up}/%2E%2E/corpus/base.txt",
            f"{up}/%252E%252E/corpus/base.txt",  # encoded twice
            "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            "http://127.0.0.1:9/x", "https://example.org/", "//example.org/x", "http%3A%2F%2F127.0.0.1%3A9%2Fx",
            f"{mine}%00.txt",
        ]
        for target in targets:
            for route in ("/gradio_api/file=", "/gradio_api/file/", "/file="):
                status, headers = raw_get(site.port, route + target)
                assert status in (403, 404), (route + target, status)
                assert headers.get("content-disposition", "attachment").startswith("attachment")
        # the paths another client would use: its own sign-in differs (see the auth test); a
        # different address without auth cannot be made on loopback, so the guard's unit test has it
        assert raw_get(site.port, "/gradio_api/proxy=https://example.org/")[0] == 403
    finally:
        corpus_link.unlink()
        shutil.rmtree(upload_link.parent)
        shutil.rmtree(other.parent)


@pytest.mark.slow
def test_a_replaced_upload_is_not_served(site: Site) -> None:
    """An uploaded file swapped on disk for a symlink to a private file is refused."""
    corpus_file = site.engine.settings.paths.corpus_dir / "base.txt"
    with httpx.Client(base_url=site.url, timeout=30) as client:
        stored = Path(upload(client, ("swap.txt", b"swap me")).json()[0])
        assert client.get(f"/gradio_api/file={stored}").status_code == 200
        stored.unlink()
        stored.symlink_to(corpus_file)
        assert client.get(f"/gradio_api/file={stored}").status_code == 403


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def tags_of(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


def rendered_tags(markdown: str) -> Tags:
    markdown_it = pytest.importorskip("markdown_it")
    return tags_of(markdown_it.MarkdownIt("commonmark", {"html": True}).render(markdown))


@pytest.mark.slow
def test_markup_in_documents_and_questions_stays_text(site: Site) -> None:
    from gradio_client import Client

    client = Client(site.running.url, verbose=False)
    question = ("How many migrants did Zanzibar ferries carry? <img src=x onerror=alert(1)> "
                "[x](javascript:alert(1)) ![y](http://127.0.0.1:9/q)")
    messages, sources, _ = client.predict(question, [], [], [], [], [], api_name="/respond")
    user, answer = chat_text(messages, "user")[-1], chat_text(messages, "assistant")[-1]
    assert "777" in answer
    for markdown in (user, answer):
        tags = rendered_tags(markdown)
        assert not {"img", "a", "script"} & set(tags.tags), markdown
        assert not any(name in {"src", "href"} or name.startswith("on") for name, _ in tags.attrs), markdown
    assert "<img" not in answer and "<script" not in answer
    panel = tags_of(sources)
    assert set(panel.tags) <= {"div", "p", "q", "details", "summary", "span", "mark"}, panel.tags
    assert not any(name in {"src", "href", "style"} or name.startswith("on") for name, _ in panel.attrs)
    assert "javascript:" not in " ".join(v or "" for _, v in panel.attrs)


@pytest.mark.slow
def test_a_100_kb_question_gets_a_clear_refusal(site: Site) -> None:
    from gradio_client import Client

    client = Client(site.running.url, verbose=False)
    started = time.monotonic()
    messages, _, box = client.predict("Why? " + "x" * 100_000, [], [], [], [], [], api_name="/respond")
    assert time.monotonic() - started < 30
    assert chat_text(messages, "assistant")[-1] == (
        f"**Cannot ask this:** the question is longer than {MAX_QUESTION_CHARS} characters.")
    assert len(chat_text(messages, "user")[-1]) < 500  # echoed short, not 100 KB
    assert box == ""
    # the app still answers afterwards
    messages, _, _ = client.predict("How many participants did the meeting have?", [], [], [], [], [],
                                    api_name="/respond")
    assert "200" in chat_text(messages, "assistant")[-1]


@pytest.mark.slow
def test_twenty_concurrent_questions_are_queued_not_crashed(site: Site) -> None:
    from gradio_client import Client

    client = Client(site.running.url, verbose=False)
    questions = [f"How many participants did the meeting have? ({i})" if i % 2 else
                 f"How many migrants did Zanzibar ferries carry? ({i})" for i in range(20)]
    started = time.monotonic()
    jobs = [client.submit(q, [], [], [], [], [], api_name="/respond") for q in questions]
    answers = [chat_text(job.result(timeout=180)[0], "assistant")[-1] for job in jobs]
    elapsed = time.monotonic() - started
    for i, answer in enumerate(answers):
        assert ("200" if i % 2 else "777") in answer, (i, answer)
    print(f"20 concurrent questions answered in {elapsed:.1f} s")


@pytest.mark.slow
def test_wrong_passwords_are_throttled_and_the_right_one_still_works(auth_site: Site) -> None:
    login = f"{auth_site.url}/login"
    started = time.monotonic()
    statuses = []
    with httpx.Client(timeout=30) as client:
        for i in range(20):
            r = client.post(login, data={"username": "ana", "password": f"guess-{i}"})
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
    elapsed = time.monotonic() - started
    assert statuses[:3] == [400, 400, 400], statuses  # a few typos cost nothing
    assert statuses.count(429) >= 15, statuses
    assert 200 not in statuses
    print(f"20 wrong guesses: {statuses.count(400)} checked, {statuses.count(429)} refused, {elapsed:.2f} s")
    with httpx.Client(timeout=30) as client:
        early = client.post(login, data={"username": "ana", "password": PASSWORD})
        assert early.status_code == 429  # the lock holds for the right password too, until it expires
        time.sleep(int(early.headers["retry-after"]))
        assert client.post(login, data={"username": "ana", "password": PASSWORD}).status_code == 200
        assert client.get(f"{auth_site.url}/config").status_code == 200
        # a success clears the record: the next typo is checked, not refused
        assert client.post(login, data={"username": "ana", "password": "typo"}).status_code == 400


@pytest.mark.slow
def test_parallel_guesses_cannot_slip_past_the_throttle(auth_site: Site) -> None:
    def guess(i: int) -> int:
        with httpx.Client(timeout=30) as client:
            return client.post(f"{auth_site.url}/login", data={"username": "ana", "password": f"p{i}"}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(guess, range(20)))
    assert statuses.count(400) <= 3 and statuses.count(429) >= 17, statuses


@pytest.mark.slow
def test_uploads_are_private_to_their_sign_in(auth_site: Site) -> None:
    with httpx.Client(base_url=auth_site.url, timeout=30) as ana, \
            httpx.Client(base_url=auth_site.url, timeout=30) as other, \
            httpx.Client(base_url=auth_site.url, timeout=30) as anonymous:
        for client in (ana, other):
            assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 200
        assert upload(anonymous, ("x.txt", b"x")).status_code == 401
        stored = upload(ana, ("ana.txt", b"ana's draft")).json()[0]
        assert ana.get(f"/gradio_api/file={stored}").status_code == 200
        assert other.get(f"/gradio_api/file={stored}").status_code == 403  # another session
        assert anonymous.get(f"/gradio_api/file={stored}").status_code in (401, 403)


@pytest.mark.slow
def test_files_written_for_a_sign_in_are_served_to_it_alone(auth_site: Site) -> None:
    """A comparison's CSV and the coverage heat map are written for the session that asked (its
    sign-in token, as the guard reads it), served to it as downloads, and to no other session."""
    from gradio_client import Client

    copy_forms(auth_site.engine.settings.paths.corpus_dir,
               ["ejemplaria-cuestionario-es.txt", "caribbean-migrant-rights-network-questionnaire.txt"])
    auth_site.engine.build()
    asker = Client(auth_site.url, auth=("ana", PASSWORD), verbose=False, download_files=False)
    _, download = asker.predict("How many children were held in immigration detention?",
                                ["Caribbean Migrant Rights Network"], [], api_name="/compare")
    csv_path = download["value"]["path"]
    image, _, table = asker.predict("area", api_name="/coverage")
    written = [csv_path, image["path"] if isinstance(image, dict) else image, table["value"]["path"]]
    uploads = str(auth_site.running.upload_dir)
    assert all(p.startswith(uploads + os.sep) for p in written), written
    with httpx.Client(base_url=auth_site.url, timeout=30, cookies=asker.cookies) as same, \
            httpx.Client(base_url=auth_site.url, timeout=30) as other, \
            httpx.Client(base_url=auth_site.url, timeout=30) as anonymous:
        assert other.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 200
        for path in written:
            mine = same.get(f"/gradio_api/file={path}")
            assert mine.status_code == 200, (path, mine.status_code)
            assert mine.headers["content-disposition"].startswith("attachment")
            assert mine.headers["content-type"] == "application/octet-stream"
            assert other.get(f"/gradio_api/file={path}").status_code == 403  # the same user, another session
            assert anonymous.get(f"/gradio_api/file={path}").status_code in (401, 403)
        assert "Caribbean Migrant Rights Network,civil society" in same.get(f"/gradio_api/file={csv_path}").text
    auth_site.running.close()
    assert not any(os.path.exists(p) for p in written)  # written files go with the server


# --- no network --------------------------------------------------------------------------------

SITECUSTOMIZE = '''
"""Loaded first by the chat under test: every socket may reach loopback only; the rest is logged."""
import os
import socket

_LOG = os.environ["GCM_QA_NET_LOG"]
_LOCAL = ("127.", "::1", "localhost", "0.0.0.0", "::")


def _note(what):
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(what + "\\n")


def _is_local(host):
    return host is None or str(host) == "" or str(host).startswith(_LOCAL)


def _check(address):
    if isinstance(address, (str, bytes)):
        return  # a unix socket
    if not _is_local(address[0]):
        _note(f"connect {address!r}")
        raise OSError(101, "network blocked by the test")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    _check(address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(address)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _is_local(host.decode() if isinstance(host, bytes) else host):
        _note(f"resolve {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, "network blocked by the test")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
_note("loaded")
'''


@pytest.mark.slow
def test_no_outgoing_connections_at_start_or_on_use(tmp_path: Path, cache_dir: Path, embedder: Embedder) -> None:
    """``gcm-qa chat`` with sockets that refuse anything but loopback starts, answers, takes an
    upload and serves it, and tries no other address on the way (the environment is the user's,
    minus GRADIO_*/GCM_QA_*/HF_* settings: only what the app sets for itself counts)."""
    del embedder  # loaded: the packaged model is extracted in cache_dir
    _small_corpus(tmp_path)
    (tmp_path / "sitecustomize").mkdir()
    (tmp_path / "sitecustomize" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    net_log = tmp_path / "net.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "GCM_QA_", "HF_", "PYTHONPATH"))}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(tmp_path / "sitecustomize"), GCM_QA_NET_LOG=str(net_log),
               GCM_QA_EMBEDDING__MODEL=os.environ["GCM_QA_EMBEDDING__MODEL"])
    cmd = [sys.executable, "-m", "gcm_qa.cli", "chat", "--corpus", str(tmp_path / "corpus"),
           "--index-dir", str(tmp_path / "index"), "--cache-dir", str(cache_dir), "--port", str(port),
           "--upload-dir", str(tmp_path / "uploads")]
    log = tmp_path / "chat.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8", errors="replace")
            time.sleep(0.5)
        from gradio_client import Client

        messages, sources, _ = Client(url, verbose=False).predict(
            "How many participants did the regional review meeting have?", [], [], [], [], [], api_name="/respond")
        assert "200" in chat_text(messages, "assistant")[-1] and "gcmqa-source" in sources
        with httpx.Client(base_url=url, timeout=30) as client:
            stored = upload(client, ("note.txt", b"a note")).json()[0]
            assert client.get(f"/gradio_api/file={stored}").status_code == 200
            assert client.get("/gradio_api/file=https://example.org/").status_code == 403
    finally:
        stop(proc)
    lines = net_log.read_text(encoding="utf-8").splitlines() if net_log.exists() else []
    assert "loaded" in lines, "the socket guard was not loaded: the test proves nothing"
    assert [line for line in lines if line != "loaded"] == [], lines


# --- a browser opens an uploaded page ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
def test_a_browser_opening_an_uploaded_page_runs_no_script(site: Site) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail(f"{chromium} not found: install Debian's Chromium first ('make browser')")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with httpx.Client(base_url=site.url, timeout=30) as client:
        stored = upload(client, ("page.txt", SCRIPT_PAGE)).json()[0]
        assert upload(client, ("page.html", SCRIPT_PAGE)).status_code == 415
        assert upload(client, ("image.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>"
                               b"document.title='pwned'</script></svg>")).status_code == 415
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--headless", "--no-sandbox",
                                     "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            page = browser.new_page(accept_downloads=True)
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.on("dialog", lambda d: console.append(f"dialog {d.message}"))
            page.goto(f"{site.url}/gradio_api/info")  # a page of the app's origin to start from
            with page.expect_download() as download, contextlib.suppress(PlaywrightError):
                page.goto(f"{site.url}/gradio_api/file={stored}")  # a download aborts the navigation
            assert download.value.suggested_filename == "page.txt"
            page.wait_for_timeout(500)
            assert page.title() != "pwned" and "pwned" not in console, console
            assert page.url.endswith("/gradio_api/info")  # still the page it was on
        finally:
            browser.close()
