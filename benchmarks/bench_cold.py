"""Cold start, each from a fresh process: ``gcm-qa --help``, ``gcm-qa ask "…"`` on a built index
(question encoder through ONNX Runtime, and through sentence-transformers as before this was
measured), and ``gcm-qa chat`` until its page answers over HTTP.

    .venv/bin/python benchmarks/bench_cold.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from common import PYTHON, ROOT, Section, main, median, run_child

CLI = str(Path(PYTHON).parent / "gcm-qa")
QUESTION = "How many States submitted voluntary reports?"
BACKENDS = {"ONNX": "onnx", "sentence-transformers": "sentence-transformers"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chat_until_page(env: dict[str, str], timeout: float = 300) -> float:
    """Seconds from starting ``gcm-qa chat`` until its page is served (HTTP 200 with the app's HTML)."""
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([CLI, "chat", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"gcm-qa chat exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    if page.status == 200 and b"gradio" in page.read().lower():
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("gcm-qa chat did not answer")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(quick: bool) -> Section:
    section = Section("cold start")
    work = Path(tempfile.mkdtemp(prefix="gcm-qa-bench-cold-"))
    base = {**os.environ, "GCM_QA_PATHS__INDEX_DIR": str(work / "index")}
    try:
        built = run_child([CLI, "index"], env=base)
        if built.returncode:
            raise RuntimeError(f"gcm-qa index failed: {built.stderr[-500:]}")
        repeats = 3 if quick else 5
        helps = [run_child([CLI, "--help"]).seconds for _ in range(repeats)]
        section.add("gcm-qa --help", median(helps), "s", "<= 0.3 s", median(helps) <= 0.3, f"median of {repeats}",
                    helps)
        asks: dict[str, list[float]] = {k: [] for k in BACKENDS}
        memory: dict[str, list[float]] = {k: [] for k in BACKENDS}
        for i in range(3 if quick else 5):  # alternating, so both meet the same machine state
            for label, backend in BACKENDS.items():
                if quick and label != "ONNX" and i > 0:
                    continue  # the slow path once in quick mode
                done = run_child([CLI, "ask", QUESTION], env={**base, "GCM_QA_EMBEDDING__BACKEND": backend})
                if done.returncode:
                    raise RuntimeError(f"gcm-qa ask failed: {done.stderr[-500:]}")
                asks[label].append(done.seconds)
                memory[label].append(done.peak_mb)
        for label in BACKENDS:
            value = median(asks[label])
            target = "<= 3 s" if label == "ONNX" else ""
            section.add(f"gcm-qa ask, cold ({label})", value, "s", target, (value <= 3) if target else None,
                        f"median of {len(asks[label])}; built index", asks[label])
            section.add(f"gcm-qa ask peak memory ({label})", median(memory[label]), "MB")
        section.add("cold ask, sentence-transformers / ONNX", median(asks["sentence-transformers"])
                    / median(asks["ONNX"]), "x", note="same run")
        chats: dict[str, list[float]] = {k: [] for k in BACKENDS}
        for _ in range(1 if quick else 3):
            for label, backend in BACKENDS.items():
                chats[label].append(chat_until_page({**base, "GCM_QA_EMBEDDING__BACKEND": backend}))
        for label in BACKENDS:
            section.add(f"gcm-qa chat until its page answers ({label})", median(chats[label]), "s",
                        note=f"median of {len(chats[label])}", runs=chats[label])
        section.details = {
            "question": QUESTION,
            "chart": {"title": "Cold start (s)", "unit": "s", "target": 3.0,
                      "labels": ["--help", "ask (ONNX)", "ask (s-t)", "chat (ONNX)", "chat (s-t)"],
                      "values": [median(helps), median(asks["ONNX"]), median(asks["sentence-transformers"]),
                                 median(chats["ONNX"]), median(chats["sentence-transformers"])]},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return section


if __name__ == "__main__":
    main(run)
