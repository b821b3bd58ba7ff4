"""The scripted LLM server (tests/llm_server.py) speaks the OpenAI chat-completions protocol and
Ollama's /api/chat well enough for the real clients: langchain-openai's ChatOpenAI (on the openai
SDK) and langchain-ollama's ChatOllama (on the ollama SDK), over HTTP on loopback, no mocks.

Each failure a reply scripts is pinned to the exception the client raises for it, so the LLM
answerer's tests (issue 14) know what to catch."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from llm_server import Delay, Garbage, Request, ScriptedLLM, Status, Text

ANSWER = "Regular pathways expanded in 2021 [1], while returns stayed low [2]."


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


def chat_openai(llm: ScriptedLLM, **kwargs: Any) -> ChatOpenAI:
    options: dict[str, Any] = {"base_url": llm.base_url, "api_key": "test-key", "model": "scripted",
                               "timeout": 2, "max_retries": 0}
    return ChatOpenAI(**{**options, **kwargs})


@contextlib.contextmanager
def chat_ollama(llm: ScriptedLLM, **kwargs: Any) -> Iterator[ChatOllama]:
    """ChatOllama never closes its httpx client: closed here, its pooled sockets are not left to the
    garbage collector (a ResourceWarning)."""
    model = ChatOllama(base_url=llm.ollama_url, model="scripted", **kwargs)
    try:
        yield model
    finally:
        model._client.close()


PROMPT = [SystemMessage("Answer from the passages only, citing them as [n]."),
          HumanMessage("[1] Pathways...\n[2] Returns...\n\nQuestion: what changed in 2021?")]


# ---- OpenAI-compatible ----------------------------------------------------------------------------


def test_openai_invoke_gets_the_scripted_text_and_the_request_is_recorded(llm: ScriptedLLM) -> None:
    llm.add(ANSWER)
    reply = chat_openai(llm, temperature=0).invoke(PROMPT)

    assert reply.content == ANSWER
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] == len(ANSWER.split())
    [req] = llm.requests
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.bearer == "test-key" and req.headers["authorization"] == "Bearer test-key"
    assert req.json["model"] == "scripted" and req.json["temperature"] == 0 and not req.json.get("stream")
    assert [(m["role"], m["content"]) for m in req.messages] == [
        ("system", "Answer from the passages only, citing them as [n]."),
        ("user", "[1] Pathways...\n[2] Returns...\n\nQuestion: what changed in 2021?")]
    assert llm.pending == 0


def test_openai_stream_yields_the_pieces_in_order(llm: ScriptedLLM) -> None:
    llm.add(ANSWER, Text("Hel-lo", pieces=("Hel", "-", "lo")))
    model = chat_openai(llm)

    pieces = [c.content for c in model.stream(PROMPT) if c.content]
    assert pieces == Text(ANSWER).chunks() and len(pieces) == len(ANSWER.split())
    assert "".join(pieces) == ANSWER
    assert llm.requests[-1].json["stream"] is True
    assert [c.content for c in model.stream("hi") if c.content] == ["Hel", "-", "lo"]


def test_openai_stream_arrives_piece_by_piece_and_reports_usage(llm: ScriptedLLM) -> None:
    """Pieces are flushed as they are made (a pause between them is seen by the client), and the
    usage chunk of ``stream_options.include_usage`` is understood."""
    llm.add(Text("one two three", pause=0.15))
    seen: list[tuple[float, str]] = []
    usage = None
    for chunk in chat_openai(llm).stream("count", stream_usage=True):
        if chunk.content:
            seen.append((time.monotonic(), str(chunk.content)))
        usage = chunk.usage_metadata or usage

    assert [p for _, p in seen] == ["one", " two", " three"]
    assert seen[-1][0] - seen[0][0] >= 0.25  # two pauses between three pieces
    assert llm.requests[-1].json["stream_options"] == {"include_usage": True}
    assert usage is not None and usage["output_tokens"] == 3 and usage["input_tokens"] == 1


@pytest.mark.parametrize(("code", "error"), [(500, openai.InternalServerError), (503, openai.InternalServerError),
                                             (429, openai.RateLimitError), (401, openai.AuthenticationError)])
def test_openai_error_status_raises_the_sdk_error(llm: ScriptedLLM, code: int, error: type[Exception]) -> None:
    llm.add(Status(code, message="model overloaded"), Status(code))
    model = chat_openai(llm)
    with pytest.raises(error) as raised:
        model.invoke("hi")
    assert raised.value.status_code == code and "model overloaded" in str(raised.value)
    with pytest.raises(error):  # streamed: the status comes before any event
        list(model.stream("hi"))
    assert len(llm.requests) == 2  # max_retries=0: no retry


def test_openai_status_with_a_body_of_its_own(llm: ScriptedLLM) -> None:
    llm.add(Status(400, {"error": {"message": "context too long", "type": "invalid_request_error",
                                   "code": "context_length_exceeded"}}))
    with pytest.raises(openai.BadRequestError) as raised:
        chat_openai(llm).invoke("hi")
    assert raised.value.code == "context_length_exceeded"


def test_openai_delay_past_the_timeout_raises_a_timeout_in_about_the_timeout(llm: ScriptedLLM) -> None:
    llm.add(Delay(10, then=Text("too late")), Delay(0.2, then=Text("late but in time")))
    model = chat_openai(llm, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        model.invoke("hi")
    assert 0.4 <= time.monotonic() - start < 1.5
    assert model.invoke("again").content == "late but in time"  # the server still answers


@pytest.mark.parametrize(("garbage", "error"), [
    (Garbage(), json.JSONDecodeError),  # invalid JSON under application/json
    (Garbage(b"<html>bad gateway</html>", "text/html"), ValueError),  # not JSON at all
    (Garbage(b'{"object": "not a completion"}'), TypeError),  # JSON without choices
])
def test_openai_garbage_raises_and_does_not_hang(llm: ScriptedLLM, garbage: Garbage, error: type[Exception]) -> None:
    llm.add(garbage)
    start = time.monotonic()
    with pytest.raises(error):
        chat_openai(llm).invoke("hi")
    assert time.monotonic() - start < 1


@pytest.mark.parametrize(("garbage", "error"), [
    (Garbage(b"not server-sent events", "text/event-stream"), ValueError),  # no event: no generation chunks
    (Garbage(b"data: {broken\n\n", "text/event-stream"), json.JSONDecodeError),
])
def test_openai_stream_garbage_raises(llm: ScriptedLLM, garbage: Garbage, error: type[Exception]) -> None:
    llm.add(garbage)
    with pytest.raises(error):
        list(chat_openai(llm).stream("hi"))


def test_no_reply_queued_is_a_500_that_says_so(llm: ScriptedLLM) -> None:
    with pytest.raises(openai.InternalServerError, match="no reply queued"):
        chat_openai(llm).invoke("hi")


def test_a_callable_answers_when_the_queue_is_empty() -> None:
    def echo(request: Request) -> str:
        return "you said: " + request.messages[-1]["content"]

    with ScriptedLLM("first", respond=echo) as llm:
        model = chat_openai(llm)
        assert [model.invoke(q).content for q in ("a", "b")] == ["first", "you said: b"]


def test_models_list_names_the_model() -> None:
    with ScriptedLLM(model="tiny-model") as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="test-key", max_retries=0, timeout=2)
        assert [m.id for m in client.models.list()] == ["tiny-model"]
        assert llm.requests[-1].path == "/v1/models" and llm.pending == 0


# ---- Ollama ---------------------------------------------------------------------------------------


def test_ollama_invoke_and_stream(llm: ScriptedLLM) -> None:
    llm.add(ANSWER, ANSWER, "not streamed")
    with chat_ollama(llm, temperature=0) as model:
        reply = model.invoke(PROMPT)  # ChatOllama streams even for invoke
        pieces = [c.content for c in model.stream(PROMPT) if c.content]
        plain = model.invoke("hi", stream=False)  # one JSON object

    assert reply.content == ANSWER and reply.response_metadata["done_reason"] == "stop"
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] == len(ANSWER.split())
    assert pieces == Text(ANSWER).chunks() and "".join(pieces) == ANSWER
    assert plain.content == "not streamed"
    first, second, third = llm.requests
    assert {r.path for r in llm.requests} == {"/api/chat"}
    assert (first.json["stream"], second.json["stream"], third.json["stream"]) == (True, True, False)
    assert first.json["model"] == "scripted" and first.json["options"]["temperature"] == 0
    assert [(m["role"], m["content"]) for m in first.messages] == [
        ("system", PROMPT[0].content), ("user", PROMPT[1].content)]


def test_ollama_sdk_non_streamed_and_tags(llm: ScriptedLLM) -> None:
    llm.add("plain")
    with ollama.Client(host=llm.ollama_url, timeout=2) as client:
        response = client.chat(model="scripted", messages=[{"role": "user", "content": "hi"}], stream=False)
        models = [m.model for m in client.list().models]
    assert response.message.content == "plain" and response.done and response.model == "scripted"
    assert models == ["scripted"]


def test_ollama_failures(llm: ScriptedLLM) -> None:
    llm.add(Status(500), Status(404, message="model 'scripted' not found"), Delay(10), Garbage(),
            Garbage(b'{"unexpected": true}\n'))
    with chat_ollama(llm, client_kwargs={"timeout": 0.5}) as model:
        with pytest.raises(ollama.ResponseError) as raised:
            model.invoke("hi")
        assert raised.value.status_code == 500
        with pytest.raises(ollama.ResponseError, match="not found") as raised:
            model.invoke("hi")
        assert raised.value.status_code == 404
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):  # the ollama SDK does not wrap httpx's timeout
            model.invoke("hi")
        assert time.monotonic() - start < 1.5
        with pytest.raises(json.JSONDecodeError):
            model.invoke("hi")
        with pytest.raises(ValueError, match="validation error"):  # pydantic: a line without a message
            model.invoke("hi")


# ---- life -----------------------------------------------------------------------------------------


def test_stop_ends_waiting_replies_and_kept_alive_connections() -> None:
    llm = ScriptedLLM("kept alive", Delay(30)).start()
    port = llm.port
    model = chat_openai(llm, timeout=5)
    assert model.invoke("hi").content == "kept alive"  # leaves a pooled connection open
    outcome: list[object] = []

    def wait() -> None:
        try:
            outcome.append(model.invoke("wait"))
        except Exception as e:
            outcome.append(e)

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    while len(llm.requests) < 2:
        time.sleep(0.01)

    start = time.monotonic()
    llm.stop()
    assert time.monotonic() - start < 1
    waiting.join(5)
    assert not waiting.is_alive() and isinstance(outcome[0], openai.APIConnectionError)  # an error, not a hang
    assert not [t for t in threading.enumerate() if t.name.startswith("ScriptedLLM")]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    llm.stop()  # twice is harmless
