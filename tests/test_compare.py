"""Comparisons, coverage and form reading through the engine and the CLI: a real model (MiniLM),
real FAISS, on three hand-made questionnaires and a note (not the eval's fixtures)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_settings

from gcm_qa.comparison import NOTHING_FOUND
from gcm_qa.embedder import Embedder
from gcm_qa.engine import Engine, QuestionError
from gcm_qa.retrieval import Filters

FORMS = {
    "borduria.txt": """Voluntary questionnaire of Borduria

Thematic area 2: Protection

1. Are migrant children detained for immigration reasons?

No. Since the Child Protection Act of 2018, unaccompanied children are placed in foster families
and never held in detention centres.

2. What access to health care do migrants have?

Primary health clinics treat every migrant free of charge, whatever their status.

Thematic area 4: Regular pathways

3. Has your country run a regularisation programme?

The 2021 amnesty regularised 21,400 migrants and granted them two-year residence permits.
""",
    "syldavia.txt": """Voluntary questionnaire of Syldavia

Thematic area 4: Regular pathways

1. Has your country run a regularisation programme?

Syldavia opened a permanent regularisation window in 2020; 9,800 permits were issued in its first year.

2. Which labour migration channels exist?

A seasonal visa lets farm workers stay nine months a year.

Thematic area 5: Inclusion

3. How are foreign diplomas recognised?

No information available.
""",
    "red.txt": """Questionnaire of the Red de Acogida (civil society)

Thematic area 2: Protection

1. What does your organisation do for victims of trafficking?

We run four shelters for women rescued from trafficking networks and give them legal advice.

2. Are migrant children detained?

Our monitors found 37 children held in border police stations in 2021, in breach of national law.

3. What access to health care do migrants have?

Migrants in an irregular situation are refused care at public hospitals outside emergencies.
""",
    "note.txt": """A note on remittances from Syldavia's diaspora

Remittances reached 310 million dollars in 2021, mostly sent by workers in construction.

They pay for school fees and housing repairs in rural areas.
""",
}
MANIFEST = """
[[document]]
file = "borduria.txt"
author = "Borduria"
stakeholder = "State"
kind = "questionnaire"

[[document]]
file = "syldavia.txt"
author = "Syldavia"
stakeholder = "State"
kind = "questionnaire"

[[document]]
file = "red.txt"
author = "Red de Acogida"
stakeholder = "civil society"
country = "Syldavia"
kind = "questionnaire"

[[document]]
file = "note.txt"
author = "Diaspora Forum"
stakeholder = "civil society"
kind = "questionnaire"
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, embedder: Embedder) -> Engine:
    """Built once: every test here only reads the index."""
    root = tmp_path_factory.mktemp("compare")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in FORMS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "manifest.toml").write_text(MANIFEST, encoding="utf-8")
    engine = Engine(make_settings(root, cache_dir), embedder=embedder)
    engine.report = engine.build()  # type: ignore[attr-defined]
    return engine


def rows(comparison) -> dict[str, tuple[bool, str]]:
    return {r.author: (r.found, r.cell) for r in comparison.rows}


def test_the_build_says_which_forms_were_read_and_which_stay_passages(engine) -> None:
    summary = engine.report.summary()
    assert "borduria.txt: form read: 3 answers to 3 questions" in summary
    assert "syldavia.txt: form read: 2 answers to 3 questions" in summary  # 'No information' is no answer
    assert "note.txt: no question/answer layout found (no questions); indexed as ordinary passages" in summary
    docs = {d["file"]: d for d in engine.documents()}
    assert docs["borduria.txt"]["answers"] == 3 and docs["borduria.txt"]["country"] == "Borduria"
    assert docs["red.txt"]["country"] == "Syldavia"
    assert docs["note.txt"]["answers"] is None and "no question/answer layout" in docs["note.txt"]["form_note"]


def test_a_question_on_a_kind_of_author_gets_a_row_for_each_and_says_who_said_nothing(engine) -> None:
    comparison = engine.compare("Which countries reported regularisation programmes?")
    assert comparison.scope == "authors of voluntary reports (State)"
    got = rows(comparison)
    assert set(got) == {"Borduria", "Syldavia"}
    assert got["Borduria"][0] and "21,400" in got["Borduria"][1]
    assert got["Syldavia"][0] and "9,800" in got["Syldavia"][1]
    for row in comparison.rows:
        c = row.citation
        assert (c is not None and row.cell.rstrip(" …") in c.quote) or c.quote.startswith(row.cell.rstrip(" …"))
        assert "regularisation programme" in c.section


def test_named_authors_are_the_rows_and_silence_is_explicit(engine) -> None:
    comparison = engine.compare("What did Borduria and Syldavia say about the detention of children?")
    assert comparison.scope == "authors named in the question"
    assert [r.author for r in comparison.rows] == ["Borduria", "Syldavia"]
    got = rows(comparison)
    assert got["Borduria"][0] and "foster families" in got["Borduria"][1]
    assert got["Syldavia"] == (False, NOTHING_FOUND)
    assert comparison.rows[1].citation is None


def test_an_answer_of_no_information_is_nothing_found(engine) -> None:
    comparison = engine.compare("How are foreign diplomas recognised?", authors=["Syldavia"])
    assert rows(comparison) == {"Syldavia": (False, NOTHING_FOUND)}


def test_chosen_authors_and_stakeholders_narrow_the_rows_and_unknown_names_are_reported(engine) -> None:
    comparison = engine.compare("What access to health care do migrants have?", stakeholders=["civil society"])
    assert {r.author for r in comparison.rows} == {"Red de Acogida", "Diaspora Forum"}
    got = rows(comparison)
    assert got["Red de Acogida"][0] and "refused care" in got["Red de Acogida"][1]
    assert got["Diaspora Forum"] == (False, NOTHING_FOUND)
    chosen = engine.compare("What access to health care do migrants have?", authors=["bordur", "Atlantis"])
    assert [r.author for r in chosen.rows] == ["Borduria"] and chosen.unknown_authors == ["Atlantis"]


def test_the_matrix_as_csv_and_json(engine) -> None:
    comparison = engine.compare("What did Borduria and Syldavia say about the detention of children?")
    table = list(csv.DictReader(io.StringIO(comparison.to_csv())))
    assert [(r["author"], r["found"]) for r in table] == [("Borduria", "yes"), ("Syldavia", "no")]
    assert "detained" in table[0]["section"] and table[1]["quote"] == NOTHING_FOUND
    data = json.loads(json.dumps(comparison.to_dict()))
    assert data["rows"][0]["citation"]["doc_id"] == "borduria" and data["rows"][1]["citation"] is None


def test_an_empty_comparison_question_is_refused(engine) -> None:
    with pytest.raises(QuestionError):
        engine.compare("   ")


def test_a_question_naming_an_author_is_answered_from_that_authors_documents(engine) -> None:
    answer = engine.ask("What did Syldavia report about health care for migrants?")
    assert all(p.chunk.author == "Syldavia" for p in answer.passages)
    # a filter the user set is theirs: the name in the question does not override it
    answer = engine.ask("What did Syldavia report about health care?", filters=Filters(author=("Borduria",)))
    assert all(p.chunk.author == "Borduria" for p in answer.passages)


def test_coverage_by_area(engine) -> None:
    coverage = engine.coverage()
    by_author = dict(zip(coverage.authors, coverage.counts, strict=True))
    assert by_author["Borduria"] == [0, 2, 0, 1, 0]
    assert by_author["Syldavia"] == [0, 0, 0, 2, 0]  # the 'No information' answer in area 5 is not counted
    assert by_author["Diaspora Forum"] == [None] * 5


@pytest.mark.slow
def test_cli_compare_and_coverage(engine, tmp_path: Path) -> None:
    settings = engine.settings
    base = [sys.executable, "-m", "gcm_qa.cli"]
    paths = ["--corpus", str(settings.paths.corpus_dir), "--index-dir", str(settings.paths.index_dir)]
    out = tmp_path / "matrix.csv"
    run = subprocess.run([*base, "compare", "Which countries reported regularisation programmes?", *paths,
                          "--json", "--csv", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert {r["author"] for r in data["rows"]} == {"Borduria", "Syldavia"}
    assert out.read_text(encoding="utf-8").startswith("author,stakeholder,country,found,quote")
    run = subprocess.run([*base, "compare", "What about remittances?", *paths, "--authors", "Atlantis"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "No indexed author matches: Atlantis" in run.stdout
    run = subprocess.run([*base, "records", *paths, "--authors", "syld"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    table = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [(r["author"], r["number"], r["answered"], r["areas"]) for r in table] == [
        ("Syldavia", "1", "True", "4"), ("Syldavia", "2", "True", "4"), ("Syldavia", "3", "False", "5")]
    assert table[0]["answer"].startswith("Syldavia opened a permanent regularisation window")
    run = subprocess.run([*base, "coverage", *paths, "--csv", "--png", str(tmp_path / "map.png")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Borduria,State,0,2,0,1,0,3" in run.stdout.splitlines()
    assert (tmp_path / "map.png").read_bytes().startswith(b"\x89PNG")
