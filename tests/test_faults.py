"""Fault injection: builds killed at random moments, adds killed mid-way. After each fault the next
engine must answer correctly from a whole index, and the corpus must hold what it held before.

Slow (each fault starts a real ``gcm-qa`` process); the random moments come from a fixed seed, so a
failure can be replayed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gcm_qa import index_store

pytestmark = pytest.mark.slow

DOCS = {
    "informe-argentina.txt": (
        "Informe voluntario de Argentina\n\n"
        "The Patria Grande programme regularised the status of more than 400,000 migrants from MERCOSUR "
        "countries. Applications are filed online and a provisional residence is granted while they are "
        "processed, so applicants can work legally from the first day."
    ),
    "informe-uruguay.txt": (
        "Informe voluntario de Uruguay\n\n"
        "Uruguay applies the Ibero-American Multilateral Convention on Social Security, so pension "
        "contributions paid in Spain or Portugal count towards a Uruguayan retirement."
    ),
}
QUESTION = "Which programme regularised migrants from MERCOSUR countries?"
KILLS = 25


def _long_text(paragraphs: int, seed: int) -> str:
    """Enough new passages that a build spends seconds embedding them; different text each round,
    so every build has something to embed."""
    return "\n\n".join(f"Round {seed}, paragraph {i}: harbour {i} recorded {i * 7 + seed} ferry crossings and "
                       f"{i + seed} new berths in {2000 + i % 25}." for i in range(paragraphs))


def _cli(corpus: Path, index_dir: Path, cache_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "gcm_qa.cli", *args, "--corpus", str(corpus), "--index-dir", str(index_dir),
            "--cache-dir", str(cache_dir)]


def _kill_after(cmd: list[str], seconds: float) -> int | None:
    """Run ``cmd``, SIGKILL it after ``seconds`` if it is still running; its exit code, or None if killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        proc.wait(timeout=seconds)
        return proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return None


def test_builds_killed_at_random_moments_always_leave_an_index_that_answers(
    make_engine, tmp_path: Path, cache_dir: Path
) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    make_engine().build()
    rng = random.Random(12)
    killed = 0
    for round_ in range(KILLS):
        (corpus / "informe-puertos.txt").write_text(_long_text(120, round_), encoding="utf-8")
        # from the process's start (imports, model load) through reading, embedding and writing
        code = _kill_after(_cli(corpus, index_dir, cache_dir, "index", "--full", "--no-progress"),
                           rng.uniform(0.2, 9.0))
        killed += code is None
        assert code in (None, 0)
        assert index_store.current_folder(index_dir) is not None
        engine = make_engine()
        answer = engine.ask(QUESTION)
        assert not answer.abstained and "Patria Grande" in answer.answer, (round_, answer.answer)
        assert not [n for n in engine.notices if "damaged" in n]
    assert killed >= KILLS * 0.6  # most kills landed inside a build, not after it


def test_adds_killed_at_random_moments_leave_the_corpus_as_it_was_or_the_file_added(
    make_engine, tmp_path: Path, cache_dir: Path
) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    make_engine().build()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    rng = random.Random(7)
    for round_ in range(5):
        upload = incoming / f"informe-puertos-{round_}.txt"
        upload.write_text(_long_text(120, round_), encoding="utf-8")
        before = {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()}
        code = _kill_after(_cli(corpus, index_dir, cache_dir, "add", str(upload)), rng.uniform(0.5, 9.0))
        engine = make_engine()  # a new engine undoes what a killed add left half done
        after = {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()}
        if upload.name not in after:  # killed before it completed: undone, byte for byte
            assert code is None and after == before, (round_, sorted(after))
        else:  # completed (perhaps killed just after): the new file and its manifest entry, nothing else
            assert set(after) - set(before) <= {upload.name, "manifest.toml"}
            assert all(after[n] == b for n, b in before.items() if n != "manifest.toml")
            assert upload.name in after["manifest.toml"].decode()
        assert not (corpus / ".add-journal.json").exists()
        answer = engine.ask(QUESTION)
        assert "Patria Grande" in answer.answer
        time.sleep(0.05)
