"""Which files of the chat's upload folder each client may fetch: its uploads and its downloads.

Gradio serves a component's file (an uploaded document, a CSV to download, an image to show) from
its file route to anyone who knows the path. :class:`~gcm_qa.app.AppGuard` narrows that to the files
a client owns, and this registry is the one record of ownership both sides share: the guard grants a
client the paths Gradio stored for its upload, and the app grants the files it writes for a client's
request (a comparison's CSV, the coverage heat map) when it writes them. The file is written inside
the upload folder, which is Gradio's cache, so Gradio hands out that very path instead of a copy the
guard would not know.

A client is its sign-in token (Gradio's access-token cookie) when the app has ``--auth``, else its
address; the same rule is applied to the file request (an ASGI scope) and to the event that wrote
the file (a ``gr.Request``), so a download is served to the session that asked for it and to no
other sign-in. Generated files are few per client and are deleted oldest first past a cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from starlette.requests import cookie_parser

__all__ = ["OwnedFiles", "owner_of", "request_owner"]


def owner_of(cookie_header: str, client_host: str | None) -> str:
    """The owner a request acts for: ``token:<access token>`` if it carries Gradio's sign-in cookie,
    else ``client:<address>``."""
    cookies = cookie_parser(cookie_header or "")
    token = next((v for k, v in sorted(cookies.items()) if k.startswith("access-token") and v), None)
    return f"token:{token}" if token else f"client:{client_host or 'unknown'}"


def request_owner(request: object | None) -> str:
    """:func:`owner_of` for the ``gr.Request`` Gradio passes to an event handler."""
    if request is None:
        return "client:unknown"
    headers = getattr(request, "headers", None)
    cookie = headers.get("cookie", "") if headers is not None else ""
    host = getattr(getattr(request, "client", None), "host", None)
    return owner_of(str(cookie or ""), str(host) if host else None)


class OwnedFiles:
    """owner -> the absolute paths it may fetch (``served``), plus the files written for owners.

    ``folder``: where generated files go; it must be the folder Gradio serves from (its
    ``GRADIO_TEMP_DIR``). None: that folder as Gradio finds it when a file is written.
    """

    def __init__(self, folder: Path | None = None, keep_per_owner: int = 50, keep_total: int = 2000) -> None:
        self.folder = folder
        self.keep_per_owner = keep_per_owner
        self.keep_total = keep_total
        self.served: dict[str, set[str]] = {}
        self._generated: OrderedDict[str, str] = OrderedDict()  # path -> owner, oldest first
        self._by_content: dict[tuple[str, str, str], str] = {}  # (owner, name, sha256) -> path
        self._lock = threading.Lock()

    def grant(self, owner: str, paths: Iterable[str]) -> None:
        """Let ``owner`` fetch ``paths`` (as Gradio's file route reads them: made absolute)."""
        with self._lock:
            self.served.setdefault(owner, set()).update(os.path.abspath(p) for p in paths)

    def granted(self, owner: str, path: str) -> bool:
        with self._lock:
            return path in self.served.get(owner, ())

    def write(self, owner: str, name: str, data: bytes | str) -> Path:
        """Write a file for ``owner`` in a folder of its own with an unguessable name, grant it to
        ``owner`` alone, and forget (and delete) the owner's oldest generated files past the cap.
        The same content under the same name for the same owner is the file already written (a
        coverage tab opened again draws the same heat map)."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        same = (owner, Path(name).name, hashlib.sha256(raw).hexdigest())
        with self._lock:
            known = self._by_content.get(same)
            if known is not None and known in self._generated and os.path.isfile(known):
                self._generated.move_to_end(known)
                return Path(known)
        folder = self._base() / f"gcm-qa-{secrets.token_hex(16)}"
        folder.mkdir(parents=True, exist_ok=False)
        path = folder / Path(name).name
        path.write_bytes(raw)
        key = os.path.abspath(path)
        with self._lock:
            self.served.setdefault(owner, set()).add(key)
            self._generated[key] = owner
            self._by_content[same] = key
            mine = [p for p, o in self._generated.items() if o == owner]
            stale = mine[: max(0, len(mine) - self.keep_per_owner)]
            overflow = len(self._generated) - len(stale) - self.keep_total
            if overflow > 0:
                stale += [p for p in self._generated if p not in stale][:overflow]
            for p in stale:
                self._forget(p)
        return path

    def close(self) -> None:
        """Delete every generated file (the server is stopping)."""
        with self._lock:
            for p in list(self._generated):
                self._forget(p)

    def _base(self) -> Path:
        if self.folder is not None:
            return Path(self.folder)
        return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()

    def _forget(self, path: str) -> None:
        self._by_content = {k: v for k, v in self._by_content.items() if v != path}
        owner = self._generated.pop(path, None)
        if owner is not None:
            self.served.get(owner, set()).discard(path)
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))
