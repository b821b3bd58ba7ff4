"""The ceiling analysis in eval/tools/ceiling.py: its oracle must really put the evidence first,
or the ceiling it reports is not one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gcm_qa.engine import Engine
from gcm_qa.quotes import unnumbered
from gcm_qa.sentences import split_sentences

TOOL = Path(__file__).resolve().parents[1] / "eval" / "tools" / "ceiling.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("ceiling", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_oracle_leads_with_the_evidence_sentence(report_engine: Engine) -> None:
    question = "What did countries report about migrant detention?"
    shipped = report_engine.ask(question)
    assert not shipped.abstained
    # evidence the shipped answer does not quote: a long sentence of the third passage
    third = shipped.passages[2].chunk.text
    longest = max((s.text for s in split_sentences(third)), key=len)
    evidence = longest[unnumbered(longest):]  # a paragraph's number is not quoted
    assert not any(evidence[:60] in c.quote for c in shipped.citations)

    oracle = load_tool().Oracle(report_engine.scorer)
    oracle.evidence, oracle.found = (evidence,), False
    answer = Engine(report_engine.settings, report_engine.embedder, scorer=oracle).ask(question)
    assert oracle.found and not answer.abstained
    assert evidence[:60] in answer.citations[0].quote
