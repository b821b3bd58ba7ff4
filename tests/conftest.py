"""Shared fixtures: a real packaged model, loaded once per session, and throw-away folders.

The fast suite embeds with all-MiniLM-L6-v2 (a dependency, 90 MB, loads in seconds): what it tests
is the pipeline's behaviour, not one encoder's quality. Tests of the default multilingual encoder
ask for it by name (``default_embedder``).

Every test points corpus, index and cache folders at temporary paths, so nothing touches the
user's ``corpus/`` or ``index/`` and a fresh clone tests without ``../shared``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from gcm_qa.embedder import Embedder, load_embedder
from gcm_qa.engine import Engine
from gcm_qa.settings import EmbeddingSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
REPORT = ROOT / "corpus" / "gcm-regional-review-lac-2022.txt"
TEST_MODEL = "packaged:all-MiniLM-L6-v2"
# the CLI and chat started by tests read the model from the environment, like a user's would; and
# they see no shipped vectors (index/vectors), so what a test builds is embedded and counted
os.environ["GCM_QA_EMBEDDING__MODEL"] = TEST_MODEL
os.environ["GCM_QA_PATHS__VECTORS_DIR"] = tempfile.mkdtemp(prefix="gcm-qa-no-vectors-")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One extraction of the packaged model for the whole session."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(cache_dir: Path) -> Embedder:
    return load_embedder(EmbeddingSettings(model=TEST_MODEL), cache_dir)


def make_settings(root: Path, cache_dir: Path, **groups: dict) -> Settings:
    data = Settings().model_dump(exclude_unset=True)  # what is unset can take the model's calibrated values
    # no shipped vectors unless a test asks for them: counts of what was embedded stay exact
    data["paths"] = {"corpus_dir": root / "corpus", "index_dir": root / "index", "cache_dir": cache_dir,
                     "vectors_dir": root / "vectors"}
    data["embedding"] = {"model": TEST_MODEL}
    for group, values in groups.items():
        data.setdefault(group, {}).update(values)
    return Settings.model_validate(data)


@pytest.fixture
def make_engine(tmp_path: Path, cache_dir: Path, embedder: Embedder):
    """Factory: an Engine over ``tmp_path/corpus`` sharing the session's model."""

    def factory(root: Path | None = None, **groups: dict) -> Engine:
        base = root or tmp_path
        (base / "corpus").mkdir(parents=True, exist_ok=True)
        return Engine(make_settings(base, cache_dir, **groups), embedder=embedder)

    return factory


@pytest.fixture(scope="session")
def report_engine(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, embedder: Embedder) -> Engine:
    """The full report indexed once per session (a few seconds with the shipped vectors)."""
    root = tmp_path_factory.mktemp("report")
    (root / "corpus").mkdir()
    shutil.copy(REPORT, root / "corpus" / REPORT.name)
    shutil.copy(ROOT / "corpus" / "manifest.toml", root / "corpus" / "manifest.toml")
    shutil.copytree(ROOT / "corpus" / "profiles", root / "corpus" / "profiles")  # what the report says of itself
    # the report's shipped vectors (index/vectors) spare the suite embedding it again
    engine = Engine(make_settings(root, cache_dir, paths={"vectors_dir": ROOT / "index" / "vectors"}),
                    embedder=embedder)
    engine.build()
    return engine


# The fast core, `pytest -m "not slow"`: hand-made corpora and texts only. A test is slow when it needs
# the report's index, starts a process or a browser, or loads EmbeddingGemma; modules of such tests
# are listed here, single tests carry @pytest.mark.slow, and a test using report_engine is found here.
SLOW_MODULES = {"test_browser", "test_watch", "test_multilingual", "test_ceiling_tool"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in SLOW_MODULES or "report_engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


# ---- helpers for tests that start a process or a server (imported as `from conftest import …`) -----


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any]) -> None:
    """Terminate a started process, and kill it if it does not end."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def chat_text(messages: list[dict[str, Any]], role: str) -> list[str]:
    """The texts of one role's messages in a Gradio chat history (content as a string or as parts)."""
    return ["".join(part.get("text", "") for part in m["content"]) if isinstance(m["content"], list)
            else str(m["content"]) for m in messages if m["role"] == role]


FORMS = FIXTURES / "questionnaires" / "forms"  # invented questionnaires with their manifest


def copy_forms(corpus: Path, files: list[str]) -> None:
    """Copy some of the invented questionnaires into ``corpus`` and append their manifest entries to
    its ``manifest.toml`` (kept if there is one), so they are indexed with their authors."""
    import tomllib

    import tomli_w

    entries = {e["file"]: e for e in tomllib.loads((FORMS / "manifest.toml").read_text("utf-8"))["document"]}
    corpus.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy(FORMS / name, corpus / name)
    manifest = corpus / "manifest.toml"
    present = manifest.read_text("utf-8") if manifest.exists() else ""
    added = tomli_w.dumps({"document": [entries[name] for name in files]})
    manifest.write_text(present.rstrip("\n") + "\n\n" + added if present else added, encoding="utf-8")
