"""Shared fixtures: the real packaged model, loaded once per session, and throw-away folders.

Every test points corpus, index and cache folders at temporary paths, so nothing touches the
user's ``corpus/`` or ``index/`` and a fresh clone tests without ``../shared``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gcm_qa.embedder import Embedder
from gcm_qa.engine import Engine
from gcm_qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
REPORT = ROOT / "corpus" / "gcm-regional-review-lac-2022.txt"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One extraction of the packaged model for the whole session."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(cache_dir: Path) -> Embedder:
    return Embedder(Settings().embedding, cache_dir)


def make_settings(root: Path, cache_dir: Path, **groups: dict) -> Settings:
    data = Settings().model_dump()
    data["paths"] = {"corpus_dir": root / "corpus", "index_dir": root / "index", "cache_dir": cache_dir}
    for group, values in groups.items():
        data[group].update(values)
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
    """The full report indexed once per session (about 20 s on two cores)."""
    root = tmp_path_factory.mktemp("report")
    (root / "corpus").mkdir()
    shutil.copy(REPORT, root / "corpus" / REPORT.name)
    shutil.copy(ROOT / "corpus" / "manifest.toml", root / "corpus" / "manifest.toml")
    engine = Engine(make_settings(root, cache_dir), embedder=embedder)
    engine.build()
    return engine
