"""The command line, in-process through ``gcm_qa.cli.main`` and once as a real subprocess."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gcm_qa.cli import main
from gcm_qa.engine import Engine

PDF_DIR = Path(__file__).parent / "fixtures" / "pdf"

DOCS = {
    "informe-argentina.txt": (
        "Informe voluntario de Argentina\n\n"
        "The Patria Grande programme regularised the status of more than 400,000 migrants from MERCOSUR "
        "countries. Applications are filed online and a provisional residence is granted while they are "
        "processed.\n\n"
        "The National Directorate of Migration opened twelve regional offices to shorten waiting times."
    ),
    "informe-mexico.txt": (
        "Informe voluntario de México\n\n"
        "Mexico reported that children and adolescents in the context of migration are no longer held in "
        "migration stations. Since the 2020 reform they are referred to the child protection system."
    ),
    "informe-uruguay.txt": (
        "Informe voluntario de Uruguay\n\n"
        "Uruguay applies the Ibero-American Multilateral Convention on Social Security, so pension "
        "contributions paid in Spain or Portugal count towards a Uruguayan retirement."
    ),
}

ANSWER_KEYS = {"question", "answer", "abstained", "citations", "passages", "timings_ms"}
CITATION_KEYS = {"n", "doc_id", "title", "section", "page", "quote", "score"}
PASSAGE_KEYS = {
    "rank",
    "chunk_id",
    "doc_id",
    "title",
    "kind",
    "author",
    "language",
    "section",
    "page",
    "start",
    "end",
    "areas",
    "objectives",
    "score",
    "text",
}
CONTRACT_QUESTIONS = [
    "What decree created the Temporary Protection Status for Venezuelans in Colombia?",
    "How many people participated in the Regional Review meeting held from April 26 to 28, 2021?",
    "What is the sex ratio of the emigrant population from Latin America and the Caribbean?",
    "Which multilateral convention on social security did countries mention?",
    "What challenges did countries report on border management?",
    "What demands did the Bloque Latinoamericano raise?",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("gcm-qa: ")
    return lines[0]


@pytest.fixture
def small(tmp_path: Path, cache_dir: Path) -> list[str]:
    """Settings flags for a three-document corpus in tmp_path (not yet indexed)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return ["--corpus", str(corpus), "--index-dir", str(tmp_path / "index"), "--cache-dir", str(cache_dir)]


@pytest.fixture(scope="module")
def report_flags(report_engine: Engine) -> list[str]:
    p = report_engine.settings.paths
    return ["--corpus", str(p.corpus_dir), "--index-dir", str(p.index_dir), "--cache-dir", str(p.cache_dir)]


def check_contract(data: dict, exact_quotes: bool = True) -> None:
    """The JSON answer contract of ``gcm-qa ask --json`` (``exact_quotes``: every quote is an exact
    substring of a returned passage; checked on its own by :func:`test_citation_quotes_are_exact`)."""
    assert set(data) >= ANSWER_KEYS
    assert isinstance(data["question"], str) and isinstance(data["answer"], str)
    assert isinstance(data["abstained"], bool)
    assert set(data["timings_ms"]) >= {"retrieve", "answer", "total"}
    assert all(isinstance(v, int | float) and v >= 0 for v in data["timings_ms"].values())
    assert data["timings_ms"]["total"] >= data["timings_ms"]["retrieve"]

    passages = data["passages"]
    assert [p["rank"] for p in passages] == list(range(1, len(passages) + 1))
    for p in passages:
        assert set(p) >= PASSAGE_KEYS
        assert p["text"] and p["end"] - p["start"] == len(p["text"])
    scores = [p["score"] for p in passages]
    assert scores == sorted(scores, reverse=True)

    citations = data["citations"]
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    for c in citations:
        assert set(c) >= CITATION_KEYS
        assert c["quote"]
        if exact_quotes:
            assert any(c["quote"] in p["text"] for p in passages), f"quote not in any passage: {c['quote']!r}"
        holder = (
            next(p for p in passages if p["chunk_id"] == c.get("chunk_id"))
            if "chunk_id" in c
            else next(p for p in passages if c["quote"].split(" … ")[0] in p["text"])
        )
        assert (c["doc_id"], c["title"], c["section"], c["page"]) == (
            holder["doc_id"],
            holder["title"],
            holder["section"],
            holder["page"],
        )
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])}
    assert markers == {c["n"] for c in citations}
    if data["abstained"]:
        assert citations == [] and "do not answer" in data["answer"]
    else:
        assert citations


# --- index / add ------------------------------------------------------------------------------------


def test_index_then_up_to_date(capsys: pytest.CaptureFixture[str], small: list[str]) -> None:
    code, out, err = run(capsys, "index", *small, "--no-progress")
    assert code == 0, err
    assert out.startswith("Indexed 3 documents")
    assert "Traceback" not in err
    code, out, _ = run(capsys, "index", *small)
    assert code == 0
    assert out.strip().startswith("Index up to date: 3 documents")


def test_index_reports_a_skipped_file(
    capsys: pytest.CaptureFixture[str], small: list[str], tmp_path: Path
) -> None:
    shutil.copy(PDF_DIR / "derived-truncated.pdf", tmp_path / "corpus" / "roto.pdf")
    code, out, err = run(capsys, "index", *small, "--no-progress")
    assert code == 0
    assert "Indexed 3 documents" in out and "1 file(s) skipped" in out
    skipped = [line for line in err.splitlines() if line.startswith("gcm-qa: skipped")]
    assert len(skipped) == 1 and skipped[0].startswith("gcm-qa: skipped roto.pdf: damaged")


def test_add_accepts_a_good_file(
    capsys: pytest.CaptureFixture[str], small: list[str], tmp_path: Path
) -> None:
    run(capsys, "index", *small, "--no-progress")
    new = tmp_path / "informe-chile.txt"
    new.write_text(
        "Informe voluntario de Chile\n\nThe Migration Law 21.325 of 2021 created the National "
        "Migration Service.",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "add", *small, str(new))
    assert code == 0, err
    assert "Added 1 file(s): informe-chile.txt" in out
    assert "Indexed 4 documents" in out
    assert (tmp_path / "corpus" / "informe-chile.txt").exists()
    code, out, _ = run(capsys, "ask", *small, "--json", "What did the Migration Law 21.325 create?")
    assert code == 0
    assert json.loads(out)["passages"][0]["doc_id"] == "informe-chile"


@pytest.mark.parametrize(
    ("source", "name", "reason"),
    [
        (PDF_DIR / "derived-truncated.pdf", "broken.pdf", "damaged"),
        (PDF_DIR / "libreoffice-writer-password.pdf", "locked.pdf", "password"),
        (PDF_DIR / "imagemagick-CCITTFaxDecode.pdf", "scan.pdf", "no extractable text"),
        (None, "table.xlsx", "unsupported file type"),
    ],
)
def test_add_rejects_a_bad_file_with_one_line(
    capsys: pytest.CaptureFixture[str],
    small: list[str],
    tmp_path: Path,
    source: Path | None,
    name: str,
    reason: str,
) -> None:
    bad = tmp_path / name
    if source is None:
        bad.write_bytes(b"PK\x03\x04 not a document")
    else:
        shutil.copy(source, bad)
    code, out, err = run(capsys, "add", *small, str(bad))
    assert code != 0
    line = one_error_line(err)
    assert line.startswith(f"gcm-qa: rejected {name}: ")
    assert reason in line
    assert out == ""
    assert not (tmp_path / "corpus" / name).exists()


def test_add_missing_file_is_rejected(
    capsys: pytest.CaptureFixture[str], small: list[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "add", *small, str(tmp_path / "absent.txt"))
    assert code != 0
    assert "absent.txt" in one_error_line(err)


# --- ask --------------------------------------------------------------------------------------------


def test_ask_text_output_has_answer_and_numbered_sources(
    capsys: pytest.CaptureFixture[str], report_flags: list[str]
) -> None:
    code, out, err = run(
        capsys,
        "ask",
        *report_flags,
        "What decree created the Temporary Protection Status for Venezuelans in Colombia?",
    )
    assert code == 0, err
    answer, _, sources = out.partition("\nSources:\n")
    assert "Decree 216 of 2021" in answer and "[1]" in answer
    lines = sources.splitlines()
    assert lines[0].startswith("[1] Report on the regional review")
    assert "Textbox 8." in lines[0]
    assert lines[1].startswith("    “") and "”" in sources
    numbered = [int(m) for m in re.findall(r"^\[(\d+)\] ", sources, re.M)]
    assert numbered == list(range(1, len(numbered) + 1))


def ask_json(capsys: pytest.CaptureFixture[str], flags: list[str], question: str) -> dict:
    code, out, err = run(capsys, "ask", *flags, "--json", question)
    assert code == 0, err
    return json.loads(out)


def test_ask_json_contract(capsys: pytest.CaptureFixture[str], report_flags: list[str]) -> None:
    for question in CONTRACT_QUESTIONS:
        data = ask_json(capsys, report_flags, question)
        assert data["question"] == question
        assert not data["abstained"]
        check_contract(data, exact_quotes=False)


def test_citation_quotes_are_exact(capsys: pytest.CaptureFixture[str], report_flags: list[str]) -> None:
    """A quote must be checkable against the passage it cites, character for character."""
    bad = []
    for question in CONTRACT_QUESTIONS:
        data = ask_json(capsys, report_flags, question)
        texts = [p["text"] for p in data["passages"]]
        bad += [(question, c["quote"]) for c in data["citations"] if not any(c["quote"] in t for t in texts)]
    assert not bad, f"{len(bad)} quote(s) not found verbatim in any passage, first: {bad[0] if bad else ''}"


def test_ask_json_abstains_off_topic(capsys: pytest.CaptureFixture[str], report_flags: list[str]) -> None:
    for question in ("What is the capital of France?", "Who won the 2018 football World Cup?"):
        code, out, _ = run(capsys, "ask", *report_flags, "--json", question)
        assert code == 0
        data = json.loads(out)
        check_contract(data)
        assert data["abstained"] is True
        assert data["citations"] == []
        assert "The documents do not answer this" in data["answer"]


def test_ask_top_k_and_filters(capsys: pytest.CaptureFixture[str], report_flags: list[str]) -> None:
    code, out, _ = run(capsys, "ask", *report_flags, "--json", "--top-k", "2", "border management")
    assert code == 0
    assert len(json.loads(out)["passages"]) == 2
    code, out, _ = run(
        capsys, "ask", *report_flags, "--json", "--top-k", "7", "--area", "3", "border management"
    )
    passages = json.loads(out)["passages"]
    assert len(passages) == 7 and all(3 in p["areas"] for p in passages)
    code, out, _ = run(capsys, "ask", *report_flags, "--json", "--kind", "questionnaire", "border management")
    data = json.loads(out)
    assert code == 0 and data["passages"] == [] and data["abstained"]


def test_ask_batch_writes_json_lines_in_order(
    capsys: pytest.CaptureFixture[str], report_flags: list[str], tmp_path: Path
) -> None:
    questions = [
        "How many Venezuelans in Colombia have an irregular status?",
        "What is the capital of France?",
        "¿Qué convenio multilateral iberoamericano de seguridad social se menciona?",
    ]
    batch = tmp_path / "questions.txt"
    batch.write_text(
        "\n".join([questions[0], "", questions[1], "   ", questions[2]]) + "\n", encoding="utf-8"
    )
    code, out, err = run(capsys, "ask", *report_flags, "--batch", str(batch), "--top-k", "3")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["question"] for r in rows] == questions
    for r in rows:
        check_contract(r, exact_quotes=False)
        assert len(r["passages"]) <= 3
    assert [r["abstained"] for r in rows] == [False, True, False]

    target = tmp_path / "answers.jsonl"
    code, out, _ = run(capsys, "ask", *report_flags, "--batch", str(batch), "--output", str(target))
    assert code == 0 and out == ""
    assert [
        json.loads(line)["question"] for line in target.read_text(encoding="utf-8").splitlines()
    ] == questions


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], small: list[str], question: str
) -> None:
    code, out, err = run(capsys, "ask", *small, question)
    assert code != 0
    assert one_error_line(err) == "gcm-qa: error: the question is empty"
    assert out == ""


def test_missing_question_is_one_clear_line(capsys: pytest.CaptureFixture[str], small: list[str]) -> None:
    code, _, err = run(capsys, "ask", *small)
    assert code != 0
    assert "question" in one_error_line(err)


def test_missing_corpus_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path
) -> None:
    flags = [
        "--corpus",
        str(tmp_path / "nowhere"),
        "--index-dir",
        str(tmp_path / "index"),
        "--cache-dir",
        str(cache_dir),
    ]
    for argv in (["ask", *flags, "What is the GCM?"], ["index", *flags]):
        code, out, err = run(capsys, *argv)
        assert code != 0
        line = one_error_line(err)
        assert "corpus folder not found" in line and "nowhere" in line
        assert out == ""


def test_missing_batch_file_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], small: list[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "ask", *small, "--batch", str(tmp_path / "none.txt"))
    assert code != 0
    assert "batch file not found" in one_error_line(err)


def test_invalid_setting_is_one_clear_line(capsys: pytest.CaptureFixture[str], small: list[str]) -> None:
    code, _, err = run(capsys, "index", *small, "--chunk-chars", "10")
    assert code == 2
    assert one_error_line(err).startswith("gcm-qa: error: invalid setting chunking.chunk_chars")


def test_empty_corpus_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path
) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run(
        capsys,
        "index",
        "--corpus",
        str(tmp_path / "empty"),
        "--index-dir",
        str(tmp_path / "i"),
        "--cache-dir",
        str(cache_dir),
    )
    assert code != 0
    assert "no document in the corpus could be indexed" in one_error_line(err)


# --- a real process ---------------------------------------------------------------------------------


@pytest.mark.slow  # starts a process
def test_real_subprocess_ask_json_and_error(report_flags: list[str], tmp_path: Path) -> None:
    question = "What is the sex ratio of the emigrant population from Latin America and the Caribbean?"
    done = subprocess.run(
        [sys.executable, "-m", "gcm_qa.cli", "ask", *report_flags, "--json", question],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    check_contract(data, exact_quotes=False)
    assert "93.3 men every 100 women" in data["answer"]

    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "gcm_qa.cli",
            "ask",
            "--corpus",
            str(tmp_path / "nowhere"),
            "What is the GCM?",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert one_error_line(failed.stderr).startswith("gcm-qa: error: corpus folder not found")


def test_eval_writes_its_reports_and_exits_non_zero_below_a_floor(
    capsys: pytest.CaptureFixture[str], report_flags: list[str], tmp_path: Path
) -> None:
    gold_file = Path(__file__).resolve().parents[1] / "eval" / "gold.jsonl"
    rows = [json.loads(line) for line in gold_file.read_text(encoding="utf-8").splitlines()]
    picked = [r for r in rows if r["split"] == "dev" and r["type"] in ("factoid", "unanswerable")][:4]
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked), encoding="utf-8")
    reachable, impossible = tmp_path / "ok.toml", tmp_path / "impossible.toml"
    reachable.write_text('[min]\n"retrieval.hit@10" = 0.0\n[max]\n"answers.median_answer_chars" = 2000\n')
    impossible.write_text('[min]\n"retrieval.hit@5" = 1.01\n')
    common = ["eval", *report_flags, "--split", "dev", "--gold", str(gold), "--no-baselines"]

    code, out, err = run(capsys, *common, "--thresholds", str(reachable), "--out", str(tmp_path / "ok"))
    assert code == 0, err
    assert "| gcm-qa |" in out and "All thresholds" in out
    for name in ("latest.json", "report.md", "chart.png"):
        assert (tmp_path / "ok" / name).stat().st_size > 0
    assert len(json.loads((tmp_path / "ok" / "latest.json").read_text())["questions"]) == len(picked)

    code, out, err = run(capsys, *common, "--thresholds", str(impossible), "--out", str(tmp_path / "low"))
    assert code == 1
    assert "below threshold" in err and "hit@5" in err

    # a second run into the same folder lists the questions that changed since the first (none)
    code, out, err = run(capsys, *common, "--thresholds", str(reachable), "--out", str(tmp_path / "ok"))
    assert code == 0, err
    assert "No question changed since" in out
    assert "No question changed since" in (tmp_path / "ok" / "report.md").read_text()
    code, out, err = run(capsys, *common, "--compare", str(gold), "--out", str(tmp_path / "ok"))
    assert code == 1 and "is not an evaluation of the dev split" in err  # a gold file is no run


# ---- faults a user meets: each one line, never a traceback ---------------------------------------


def _write(corpus: Path, name: str, data: bytes) -> Path:
    path = corpus / name
    path.write_bytes(data)
    return path


FAULTS = [
    # (what, how to set it up given the corpus folder, the command after the settings flags, expected text)
    ("manifest that is not TOML", lambda c: _write(c, "manifest.toml", b"[[document]\nfile = 'x'"),
     ["index"], "manifest.toml: not valid TOML"),
    ("manifest not UTF-8", lambda c: _write(c, "manifest.toml", b"[[document]]\nfile = '\xff.txt'\n"),
     ["index"], "manifest.toml: not UTF-8"),
    ("manifest 'document' as a table", lambda c: _write(c, "manifest.toml", b"[document]\nfile = 'a.txt'\n"),
     ["index"], "'document' must be a list"),
    ("a file of an unsupported type", lambda c: _write(c.parent, "notes.exe", b"MZ\x90\x00"),
     ["add", "{parent}/notes.exe"], "unsupported file type '.exe'"),
    ("a file that does not exist", lambda c: None, ["add", "{parent}/nowhere.pdf"], "nowhere.pdf"),
    ("random bytes as a PDF", lambda c: _write(c.parent, "random.pdf", bytes(range(256)) * 8),
     ["add", "{parent}/random.pdf"], "random.pdf"),
]


@pytest.mark.parametrize(("what", "setup", "command", "expected"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_fault_is_one_line_naming_its_cause(
    capsys: pytest.CaptureFixture[str], small: list[str], what: str, setup, command: list[str], expected: str
) -> None:
    corpus = Path(small[1])
    setup(corpus)
    argv = [a.replace("{parent}", str(corpus.parent)) for a in command]
    code, _, err = run(capsys, argv[0], *small, *argv[1:])
    assert code != 0, what
    assert expected in one_error_line(err), err


def test_an_unreadable_manifest_leaves_ask_answering_from_the_last_index(
    capsys: pytest.CaptureFixture[str], small: list[str]
) -> None:
    assert run(capsys, "index", *small)[0] == 0
    _write(Path(small[1]), "manifest.toml", b"[[document]\nfile = 'x'")
    code, out, err = run(capsys, "ask", *small, "Which programme regularised migrants from MERCOSUR countries?")
    assert code == 0 and "Patria Grande" in out
    assert "answering from the last index built" in one_error_line(err)


def test_a_long_odd_name_is_added_under_a_safe_one(capsys: pytest.CaptureFixture[str], small: list[str]) -> None:
    corpus = Path(small[1])
    odd = corpus.parent / ("Informe " + "muy " * 56 + "largo: Mexico?.TXT")
    odd.write_text("Informe de prueba sobre los puertos y los ferris del sur.\n", encoding="utf-8")
    code, out, err = run(capsys, "add", *small, str(odd))
    assert code == 0, err
    assert "Traceback" not in err
    (added,) = [p for p in corpus.iterdir() if p.name.startswith("Informe muy")]
    assert len(added.name) <= 100 and added.suffix == ".txt" and added.name in out
