"""`gcm-qa index --watch`: a real subprocess re-indexes when files appear and disappear."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

TEXT_A = "Report A\n\nThe municipality of Alba opened two shelters for migrants in 2021.\n"
TEXT_B = "Report B\n\nThe island of Brisa counted 512 asylum claims in 2020.\n"


def _reader(stream: IO[str], sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))


def _wait_for(lines: queue.Queue[str], needle: str, seen: list[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return line
    pytest.fail(f"no line containing {needle!r} within {timeout} s; output so far: {seen}")


def test_watch_reindexes_added_and_removed_files(tmp_path: Path, cache_dir: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "alba.txt").write_text(TEXT_A, encoding="utf-8")
    cmd = [sys.executable, "-m", "gcm_qa.cli", "index", "--watch", "--no-progress", "--corpus", str(corpus),
           "--index-dir", str(tmp_path / "index"), "--cache-dir", str(cache_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        assert "1 documents" in _wait_for(lines, "Indexed", seen)
        _wait_for(lines, "Watching", seen)  # announced once the watcher runs
        (corpus / "brisa.txt").write_text(TEXT_B, encoding="utf-8")
        assert "brisa.txt" in _wait_for(lines, "Changed:", seen)
        line = _wait_for(lines, "Indexed", seen)
        assert "2 documents" in line and "(1 embedded, 1 reused)" in line  # only the new file is embedded
        (corpus / "alba.txt").unlink()
        _wait_for(lines, "Changed:", seen)
        assert "1 documents" in _wait_for(lines, "Indexed", seen)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    from gcm_qa.index_store import load_index

    index = load_index(tmp_path / "index")
    assert {c.doc_id for c in index.chunks} == {"brisa"}
