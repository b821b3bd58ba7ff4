"""A scripted LLM server on loopback that speaks the OpenAI chat-completions protocol and Ollama's
``/api/chat``, for tests of code that calls a real client (``langchain_openai.ChatOpenAI``,
``langchain_ollama.ChatOllama``, ``openai``, ``ollama``) with no mock in between.

    with ScriptedLLM("The answer [1].", Status(500), Delay(5, then=Text("late"))) as llm:
        model = ChatOpenAI(base_url=llm.base_url, api_key="k", model="scripted", max_retries=0)
        ...
        llm.requests[-1].json["messages"]  # what the client sent

Each chat request (``POST /v1/chat/completions`` or ``POST /api/chat``) takes the next reply from the
queue (``add`` appends), or asks ``respond(request)`` when the queue is empty; with neither it is
answered 500 with a message saying so. ``GET /v1/models``, ``GET /api/tags`` and ``GET /api/version``
take no reply. Every request, answered or not, is recorded in ``requests``.

Formats, as the clients parse them:
- OpenAI, plain: a ``chat.completion`` object (id, object, created, model, choices[0].message
  {role, content}, finish_reason, usage).
- OpenAI, ``"stream": true``: Server-Sent Events ``data: {chat.completion.chunk}\\n\\n``, a first chunk
  with the role, one per piece with ``choices[0].delta.content``, a last one with ``finish_reason``,
  a usage chunk with empty ``choices`` when ``stream_options.include_usage`` is asked, then
  ``data: [DONE]\\n\\n``; sent with chunked transfer encoding, each piece flushed on its own.
- Ollama, ``"stream": false``: one JSON object {model, created_at, message {role, content}, done: true,
  done_reason, durations and counts}.
- Ollama, streamed (its default): newline-delimited JSON objects (application/x-ndjson), one per
  piece with ``done: false``, then an empty-content one with ``done: true`` and the counts.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# ---- replies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A normal completion. Streamed, it is cut into ``pieces`` (by default word by word, each word
    keeping the spaces before it, so the pieces join back to ``content``), with ``pause`` seconds
    between pieces."""

    content: str
    pieces: tuple[str, ...] | None = None
    finish_reason: str = "stop"
    pause: float = 0.0

    def chunks(self) -> list[str]:
        if self.pieces is not None:
            return list(self.pieces)
        return re.findall(r"\s*\S+|\s+$", self.content) or [self.content]


@dataclass(frozen=True)
class Status:
    """An HTTP error (or any status) with a body: a dict or list is sent as JSON, str or bytes as
    they are; ``None`` sends the protocol's own error object (OpenAI's ``{"error": {"message", "type",
    ...}}``, Ollama's ``{"error": "..."}``)."""

    code: int
    body: Any = None
    message: str = "scripted error"


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` before answering with ``then`` (for client timeouts). Stopping the server
    cuts the wait short, and then nothing is answered."""

    seconds: float
    then: Reply = field(default_factory=lambda: Text(""))


@dataclass(frozen=True)
class Garbage:
    """A 200 whose body is ``data`` as it is (invalid JSON, or JSON that is not a completion), with
    ``content_type``, streamed or not."""

    data: bytes = b"this is not JSON {"
    content_type: str = "application/json"


Reply = Text | Status | Delay | Garbage


@dataclass
class Request:
    """One request the server received. ``headers`` has lower-case names; ``json`` is the parsed
    body (None when there is no body or it is not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    time: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.json or {}).get("messages", [])) if isinstance(self.json, dict) else []

    @property
    def bearer(self) -> str | None:
        """The API key in ``Authorization: Bearer KEY``, if any."""
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


# ---- the server ---------------------------------------------------------------------------------


class ScriptedLLM:
    """A scripted chat server on 127.0.0.1 and a free port, in a background thread.

    ``ScriptedLLM(*replies, model="scripted", respond=None)``: replies (a ``str`` is a ``Text``) are
    queued in order. ``respond(request) -> Reply | str`` answers when the queue is empty. Use as a
    context manager, or ``start()`` / ``stop()``; ``stop()`` ends every connection and waiting reply.
    """

    def __init__(self, *replies: Reply | str, model: str = "scripted",
                 respond: Callable[[Request], Reply | str] | None = None) -> None:
        self.model = model
        self.respond = respond
        self._queue: deque[Reply] = deque()
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.add(*replies)

    # -- script and record --

    def add(self, *replies: Reply | str) -> ScriptedLLM:
        """Queue more replies, answered in order."""
        with self._lock:
            self._queue.extend(_reply(r) for r in replies)
        return self

    @property
    def pending(self) -> int:
        """How many queued replies are still unanswered."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self) -> list[Request]:
        """The chat requests only (OpenAI's and Ollama's)."""
        return [r for r in self.requests if r.method == "POST" and r.path in _CHAT_PATHS]

    # -- life --

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ScriptedLLM is not started")
        return int(self._server.server_address[1])

    @property
    def ollama_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.ollama_url}/v1"

    def start(self) -> ScriptedLLM:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.llm = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"ScriptedLLM:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes up Delay replies, which then answer nothing
        server.shutdown()
        server.server_close()
        server.close_connections()
        deadline = time.monotonic() + timeout
        for t in [self._thread, *server.handler_threads()]:
            if t is not None and t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler --

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _next(self, request: Request) -> Reply | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return _reply(self.respond(request)) if self.respond is not None else None


def _reply(r: Reply | str) -> Reply:
    if isinstance(r, str):
        return Text(r)
    if not isinstance(r, Text | Status | Delay | Garbage):
        raise TypeError(f"not a reply: {r!r}")
    return r


_OPENAI_CHAT = "/v1/chat/completions"
_OLLAMA_CHAT = "/api/chat"
_CHAT_PATHS = (_OPENAI_CHAT, _OLLAMA_CHAT)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    llm: ScriptedLLM

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        thread = threading.current_thread()
        thread.name = f"ScriptedLLM:{self.server_address[1]} handler"
        with self._conns_lock:
            self._conns[request] = thread
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conns_lock:
                self._conns.pop(request, None)

    def handler_threads(self) -> list[threading.Thread]:
        with self._conns_lock:
            return list(self._conns.values())

    def close_connections(self) -> None:
        """End kept-alive and waiting connections, so their handler threads return."""
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hung up (a timeout, a stream left early) or a stop is not news
        if not self.llm._stopping.is_set() and not isinstance(sys.exc_info()[1], ConnectionError | OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet tests
        pass

    # -- reading --

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _request(self) -> Request:
        body = self._read_body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        req = Request(method=self.command, path=self.path.split("?")[0],
                      headers={k.lower(): v for k, v in self.headers.items()}, body=body, json=parsed,
                      time=time.time())
        self.server.llm._record(req)
        return req

    def do_GET(self) -> None:
        req = self._request()
        llm = self.server.llm
        if req.path == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": llm.model, "object": "model", "created": 0, "owned_by": "scripted"}]})
        elif req.path == "/api/tags":
            self._json(200, {"models": [{"name": llm.model, "model": llm.model, "modified_at": _now_iso(),
                                         "size": 0, "digest": "0" * 64, "details": {}}]})
        elif req.path == "/api/version":
            self._json(200, {"version": "0.0.0-scripted"})
        else:
            self._not_found(req)

    def do_POST(self) -> None:
        req = self._request()
        if req.path not in _CHAT_PATHS:
            self._not_found(req)
            return
        ollama = req.path == _OLLAMA_CHAT
        reply = self.server.llm._next(req)
        while isinstance(reply, Delay):
            if self.server.llm._stopping.wait(reply.seconds):
                self.close_connection = True
                return
            reply = reply.then
        if reply is None:
            n = len(self.server.llm.chat_requests())
            self._error(500, f"ScriptedLLM: no reply queued for {req.method} {req.path} (chat request #{n})",
                        ollama)
        elif isinstance(reply, Status):
            if reply.body is None:
                self._error(reply.code, reply.message, ollama)
            else:
                self._raw(reply.code, reply.body)
        elif isinstance(reply, Garbage):
            self._send(200, reply.data, reply.content_type)
        else:
            body = req.json if isinstance(req.json, dict) else {}
            model = str(body.get("model") or self.server.llm.model)
            if ollama:
                stream = body.get("stream", True) is not False  # Ollama streams unless told not to
                self._ollama(reply, model, req, stream)
            else:
                self._openai(reply, model, req, bool(body.get("stream")))

    # -- writing --

    def _send(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _raw(self, code: int, body: Any) -> None:
        if isinstance(body, dict | list):
            self._json(code, body)
        else:
            data = body if isinstance(body, bytes) else str(body).encode()
            self._send(code, data, "text/plain; charset=utf-8")

    def _error(self, code: int, message: str, ollama: bool) -> None:
        if ollama:
            self._json(code, {"error": message})
        else:
            self._json(code, {"error": {"message": message, "type": "server_error" if code >= 500
                                        else "invalid_request_error", "param": None, "code": None}})

    def _not_found(self, req: Request) -> None:
        self._json(404, {"error": {"message": f"ScriptedLLM: no route {req.method} {req.path}",
                                   "type": "invalid_request_error", "param": None, "code": None}})

    def _stream(self, content_type: str, parts: Iterable[bytes], pause: float) -> None:
        """A 200 in chunked transfer encoding, each part flushed as it comes."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = True
        for part in parts:
            if pause and not first and self.server.llm._stopping.wait(pause):
                self.close_connection = True
                return
            first = False
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _openai(self, reply: Text, model: str, req: Request, stream: bool) -> None:
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        usage = _usage(req, reply.content)
        if not stream:
            self._json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "fp_scripted",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content,
                                                     "refusal": None, "annotations": []},
                             "logprobs": None, "finish_reason": reply.finish_reason}],
                "usage": usage})
            return
        options = (req.json or {}).get("stream_options") or {}
        include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created,
                                   "model": model, "system_fingerprint": "fp_scripted",
                                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                "finish_reason": finish}]}
            if include_usage:
                obj["usage"] = None
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        def events() -> Iterable[bytes]:
            yield chunk({"role": "assistant", "content": "", "refusal": None}, None)
            for piece in reply.chunks():
                yield chunk({"content": piece}, None)
            yield chunk({}, reply.finish_reason)
            if include_usage:
                yield b"data: " + json.dumps({"id": cid, "object": "chat.completion.chunk", "created": created,
                                              "model": model, "system_fingerprint": "fp_scripted",
                                              "choices": [], "usage": usage}).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        self._stream("text/event-stream; charset=utf-8", events(), reply.pause)

    def _ollama(self, reply: Text, model: str, req: Request, stream: bool) -> None:
        usage = _usage(req, reply.content)
        final = {"done": True, "done_reason": reply.finish_reason, "total_duration": 1_000_000,
                 "load_duration": 1_000, "prompt_eval_count": usage["prompt_tokens"],
                 "prompt_eval_duration": 1_000, "eval_count": usage["completion_tokens"],
                 "eval_duration": 1_000}
        if not stream:
            self._json(200, {"model": model, "created_at": _now_iso(),
                             "message": {"role": "assistant", "content": reply.content}, **final})
            return

        def lines() -> Iterable[bytes]:
            for piece in reply.chunks():
                yield json.dumps({"model": model, "created_at": _now_iso(),
                                  "message": {"role": "assistant", "content": piece}, "done": False}).encode() + b"\n"
            yield json.dumps({"model": model, "created_at": _now_iso(),
                              "message": {"role": "assistant", "content": ""}, **final}).encode() + b"\n"

        self._stream("application/x-ndjson", lines(), reply.pause)


def _usage(req: Request, content: str) -> dict[str, int]:
    """Rough counts (words), enough for clients that read usage."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in req.messages if isinstance(m, dict))
    completion = len(content.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
