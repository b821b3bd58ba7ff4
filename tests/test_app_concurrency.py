"""The chat answers while an upload rebuilds the index (issue 12), seen by real concurrent clients.

``gcm-qa chat`` runs in a process of its own over a small hand-made corpus. A client uploads a large
invented text through the Library tab's endpoint; once the server holds the build lock, several
client threads ask questions about the small corpus until the upload has finished. Every answer
must be right, and some must have arrived before the upload finished: questions did not wait behind
the rebuild (the engine answers from the index loaded before it). Afterwards the uploaded text
answers a question of its own. Only the order of events is asserted, never a duration, so a loaded
machine makes the test slower, not flaky.
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import chat_text, free_port, stop

from gcm_qa.embedder import Embedder
from gcm_qa.index_store import building

BASE_DOC = (
    "Base report on migration\n\nThe base report says that the regional review meeting had 200 "
    "participants from 30 countries. It also covers regular pathways and labour migration.\n"
)
FERRY_DOC = (
    "Ferry note\n\nThe ferry note says that Zanzibar ferries carried 777 migrants in 2020. It adds that "
    "the crossings were counted by the port authority.\n"
)
QUESTIONS = [("How many participants did the meeting have?", "200"),
             ("How many migrants did Zanzibar ferries carry?", "777")]
UPLOADED_FACT = "The Quillmoor lighthouse guild counted 4321 copper bells in its vaults."
UPLOADED_QUESTION = ("How many copper bells did the Quillmoor lighthouse guild count?", "4321")
# paragraphs of invented text, one sentence each: some 230 KB, 400 passages, which MiniLM indexes in
# tens of seconds on two cores (a minute and more on a busy machine)
PARAGRAPHS = 2000
CLIENT_THREADS = 4
MIN_QUESTIONS = 12  # asked in all, however quickly the upload ends
MAX_QUESTIONS_PER_THREAD = 8  # then the upload finishes without questions competing for the CPU
PAUSE_S = 1.0  # between one thread's questions, for the same reason
STARTUP_TIMEOUT_S = 300
UPLOAD_TIMEOUT_S = 1800
ANSWER_TIMEOUT_S = 600


def invented_text(paragraphs: int, seed: int = 12) -> str:
    """Paragraphs of English-looking prose about nothing the small corpus mentions, with
    :data:`UPLOADED_FACT` in the middle."""
    rng = random.Random(seed)
    nouns = ("lantern orchard pebble violin meadow kettle glacier parchment falcon tapestry compass "
             "willow quarry lagoon marble thimble comet saddle granary beacon cobweb harpsichord "
             "teapot juniper canyon mosaic ribbon anvil acorn telescope").split()
    verbs = ("polished painted folded measured gathered sketched carved tuned weighed sorted mended "
             "planted stitched brewed catalogued").split()
    adjectives = ("amber quiet crooked velvet silver ancient brittle humming narrow golden dusty "
                  "patient crimson hollow").split()
    owners = [f"the {o}" for o in "gardener clockmaker potter cartographer weaver astronomer baker sculptor".split()]

    def sentence() -> str:
        return (f"{rng.choice(owners).capitalize()} {rng.choice(verbs)} the {rng.choice(adjectives)} "
                f"{rng.choice(nouns)} beside the {rng.choice(adjectives)} {rng.choice(nouns)} "
                f"while {rng.choice(owners)} {rng.choice(verbs)} a {rng.choice(nouns)}.")

    text = ["Notes of the lantern society", ""]
    for i in range(paragraphs):
        if i == paragraphs // 2:
            text += [f"{UPLOADED_FACT} The bells were {rng.choice(verbs)} by {rng.choice(owners)}.", ""]
        text += [sentence(), ""]
    return "\n".join(text)


@dataclass
class Chat:
    url: str
    root: Path
    log: Path
    index_dir: Path

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@pytest.fixture
def chat(tmp_path: Path, cache_dir: Path, embedder: Embedder) -> Iterator[Chat]:
    """``gcm-qa chat`` on a free loopback port over two small documents."""
    del embedder  # loaded: the packaged model is extracted in cache_dir
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "base.txt").write_text(BASE_DOC, encoding="utf-8")
    (corpus / "ferry.txt").write_text(FERRY_DOC, encoding="utf-8")
    index_dir = tmp_path / "index"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "GCM_QA_"))}
    env.update(PYTHONUNBUFFERED="1",
               GCM_QA_EMBEDDING__MODEL=os.environ["GCM_QA_EMBEDDING__MODEL"],  # the suite's model (conftest)
               GCM_QA_PATHS__VECTORS_DIR=str(tmp_path / "no-vectors"))  # everything built is embedded
    cmd = [sys.executable, "-m", "gcm_qa.cli", "chat", "--corpus", str(corpus), "--index-dir", str(index_dir),
           "--cache-dir", str(cache_dir), "--port", str(port), "--upload-dir", str(tmp_path / "uploads")]
    log = tmp_path / "chat.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Chat(f"http://127.0.0.1:{port}", tmp_path, log, index_dir)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gcm-qa chat exited with {proc.returncode}:\n{server.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.url, timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"gcm-qa chat did not answer within {STARTUP_TIMEOUT_S} s:\n{server.tail()}")
            time.sleep(0.5)
        yield server
    finally:
        stop(proc)


def _client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def _ask(client: Any, question: str) -> str:
    messages, _sources, _box = client.submit(question, [], [], [], [], [], api_name="/respond").result(
        timeout=ANSWER_TIMEOUT_S)
    return chat_text(messages, "assistant")[-1]


@dataclass
class Asked:
    question: str
    expected: str
    answer: str
    started: float
    finished: float


@pytest.mark.slow
def test_questions_are_answered_while_an_upload_rebuilds_the_index(chat: Chat) -> None:
    from gradio_client import handle_file

    big = chat.root / "lantern-society-notes.txt"
    big.write_text(invented_text(PARAGRAPHS), encoding="utf-8")
    clients = [_client(chat.url) for _ in range(CLIENT_THREADS)]
    for client, (question, expected) in zip(clients, QUESTIONS, strict=False):  # the app answers before
        assert expected in _ask(client, question)

    uploader = _client(chat.url)
    upload_done = threading.Event()
    upload_finished: list[float] = []

    def finished(_future: Any) -> None:
        upload_finished.append(time.monotonic())
        upload_done.set()

    upload_started = time.monotonic()
    upload = uploader.submit([handle_file(str(big))], api_name="/upload")
    upload.add_done_callback(finished)
    # the server's build lock held: the upload's rebuild is under way (its file already read and copied)
    deadline = time.monotonic() + UPLOAD_TIMEOUT_S
    while not building(chat.index_dir):
        if upload_done.is_set():
            pytest.fail(f"the upload ended before its rebuild was seen: {upload.result()!r}\n{chat.tail()}")
        assert time.monotonic() < deadline, chat.tail()
        time.sleep(0.05)
    build_seen = time.monotonic()

    asked: list[Asked] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def ask_until_uploaded(client: Any, worker: int) -> None:
        n = 0
        while True:
            with lock:
                if errors or (len(asked) >= MIN_QUESTIONS
                              and (upload_done.is_set() or n >= MAX_QUESTIONS_PER_THREAD)):
                    return
            question, expected = QUESTIONS[(worker + n) % len(QUESTIONS)]
            n += 1
            started = time.monotonic()
            try:
                answer = _ask(client, f"{question} ({worker}.{n})")
            except BaseException as exc:  # reported in the main thread
                with lock:
                    errors.append(exc)
                return
            with lock:
                asked.append(Asked(question, expected, answer, started, time.monotonic()))
            time.sleep(PAUSE_S)

    threads = [threading.Thread(target=ask_until_uploaded, args=(c, i), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=UPLOAD_TIMEOUT_S + ANSWER_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), f"a client thread hung\n{chat.tail()}"
    assert not errors, f"a question failed: {errors[0]!r}\n{chat.tail()}"
    status, *_ = upload.result(timeout=UPLOAD_TIMEOUT_S)
    assert upload_done.wait(timeout=60)  # the callback runs just after result() can return
    upload_end = upload_finished[0]
    assert f"**Added** {big.name}" in status, status

    assert len(asked) >= MIN_QUESTIONS  # all of them sent once the rebuild was under way
    for a in asked:
        assert a.expected in a.answer and not a.answer.startswith("**Cannot ask"), (a.question, a.answer)
    during = [a for a in asked if a.finished < upload_end]
    latencies = sorted(a.finished - a.started for a in during)
    print(f"\nupload: {upload_end - upload_started:.1f} s in all, its rebuild seen {build_seen - upload_started:.1f} s "
          f"after it was sent and running at least {upload_end - build_seen:.1f} s; {status.strip()}")
    print(f"{len(asked)} questions from {CLIENT_THREADS} client threads, {len(during)} answered before the "
          "upload finished" + (f", latency min {latencies[0]:.2f} s, median {statistics.median(latencies):.2f} s, "
                               f"max {latencies[-1]:.2f} s" if latencies else ""))
    assert len(during) >= 1, f"no answer arrived before the upload finished: questions waited for the rebuild\n" \
                             f"{chat.tail()}"

    question, expected = UPLOADED_QUESTION
    messages, sources, _ = clients[0].submit(question, [], [], [], [], [], api_name="/respond").result(
        timeout=ANSWER_TIMEOUT_S)
    answer = chat_text(messages, "assistant")[-1]
    assert expected in answer, answer
    assert "4321" in sources, sources  # the uploaded notes' passage is shown
