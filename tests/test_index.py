"""Building the index: incremental reuse, bad files, metadata, and crash safety."""

from __future__ import annotations

import gc
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

from gcm_qa import corpus as corpus_module
from gcm_qa import index_store, segments
from gcm_qa.engine import Engine
from gcm_qa.query import prepare

PDF_DIR = Path(__file__).parent / "fixtures" / "pdf"
REPORT = Path(__file__).resolve().parents[1] / "corpus" / "gcm-regional-review-lac-2022.txt"

DOCS = {
    "informe-argentina.txt": (
        "Informe voluntario de Argentina\n\n"
        "The Patria Grande programme regularised the status of more than 400,000 migrants from MERCOSUR "
        "countries. Applications are filed online and a provisional residence is granted while they are "
        "processed, so applicants can work legally from the first day.\n\n"
        "The National Directorate of Migration opened twelve regional offices to shorten waiting times. "
        "Fees were waived for people in vulnerable situations, and mobile teams visited border towns where "
        "seasonal farm workers live during the harvest.\n\n"
        "Argentina also reported a national register of migrant workers that feeds the labour statistics "
        "used to plan employment services and language courses."
    ),
    "informe-mexico.txt": (
        "Informe voluntario de México\n\n"
        "Mexico reported that children and adolescents in the context of migration are no longer held in "
        "migration stations. Since the 2020 reform they are referred to the child protection system, which "
        "places them in shelters run by the DIF family agency.\n\n"
        "Community-based alternatives to detention were piloted with civil society organisations in "
        "Tapachula and Tijuana. Families receive case management, legal advice and a monthly cash "
        "transfer while their procedures are resolved."
    ),
    "informe-uruguay.txt": (
        "Informe voluntario de Uruguay\n\n"
        "Uruguay applies the Ibero-American Multilateral Convention on Social Security, so pension "
        "contributions paid in Spain, Portugal or Bolivia count towards a Uruguayan retirement. The social "
        "security bank processed 3,100 totalisation requests in 2020.\n\n"
        "A bilateral agreement with Argentina lets frontier workers in Rivera and Salto keep a single health "
        "coverage on both sides of the border."
    ),
}
NEW_DOC = (
    "informe-chile.txt",
    "Informe voluntario de Chile\n\n"
    "Chile described a humanitarian visa for people displaced by the 2010 earthquake in Haiti and the "
    "democratic responsibility visa for Venezuelans, issued at consulates in Caracas and Puerto Ordaz.\n\n"
    "The Migration Law 21.325 of 2021 created the National Migration Service and a policy council that "
    "meets every year to review the national migration policy.",
)
CHANGED_MEXICO = (
    "Informe voluntario de México\n\n"
    "Mexico expanded consular protection in the United States with 53 consulates that offer legal "
    "counselling, identity documents and the Ventanillas de Salud health desks.\n\n"
    "A mobile consulate programme visited farms in California and Washington during 2021 to issue "
    "passports and voter cards to agricultural workers."
)


def write_docs(corpus: Path, docs: dict[str, str]) -> None:
    for name, text in docs.items():
        (corpus / name).write_text(text, encoding="utf-8")


def doc_chunks(engine: Engine, doc_id: str) -> list:
    return [c for c in engine.index.chunks if c.doc_id == doc_id]


def retrieved_doc_ids(engine: Engine, question: str, k: int = 10) -> list[str]:
    passages = engine._retriever_or_load().search(prepare(question), top_k=k)
    return [p.chunk.doc_id for p in passages]


def sentence_rows(engine: Engine, doc_id: str) -> int:
    """How many indexed sentences belong to a document's chunks (0 for an index without them)."""
    spans = getattr(engine.index, "sentence_spans", None)
    if spans is None:
        return 0
    positions = {i for i, c in enumerate(engine.index.chunks) if c.doc_id == doc_id}
    return sum(int(row[0]) in positions for row in spans)


def timed_build(engine: Engine, **kwargs) -> tuple[index_store.BuildReport, int]:
    """Build, and return the report with the number of passages the build embedded; every text the
    model saw must be accounted for by the report (passages plus, when indexed, sentences)."""
    before = engine.embedder.embedded
    report = engine.build(**kwargs)
    seen = engine.embedder.embedded - before
    sentences = getattr(report, "embedded_sentences", 0)
    assert seen == report.embedded + sentences, (seen, report)
    return report, report.embedded if seen else 0


# --- incremental rebuild -----------------------------------------------------------------------


def test_incremental_build_embeds_only_what_changed(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)

    first, embedded = timed_build(engine)
    assert first.documents == 3 and first.errors == [] and not first.up_to_date
    assert first.embedded == first.chunks == embedded == len(engine.index.chunks)
    assert sorted(first.changed) == sorted(DOCS)
    assert {c.doc_id for c in engine.index.chunks} == {
        "informe-argentina",
        "informe-mexico",
        "informe-uruguay",
    }

    again, embedded = timed_build(engine)
    assert again.up_to_date and again.embedded == 0 and embedded == 0
    assert again.reused == again.chunks == first.chunks
    assert again.folder == first.folder
    assert "up to date" in again.summary()

    # add a document: only its chunks meet the model
    (corpus / NEW_DOC[0]).write_text(NEW_DOC[1], encoding="utf-8")
    added, embedded = timed_build(engine)
    new_chunks = doc_chunks(engine, "informe-chile")
    assert new_chunks
    assert added.changed == [NEW_DOC[0]]
    assert added.embedded == embedded == len(new_chunks)
    assert added.reused == first.chunks
    assert getattr(added, "embedded_sentences", 0) <= sentence_rows(engine, "informe-chile")
    assert added.chunks == first.chunks + len(new_chunks)
    assert "informe-chile" in retrieved_doc_ids(engine, "Migration Law 21.325 National Migration Service")[:1]

    # change a document: only its new chunks are embedded
    (corpus / "informe-mexico.txt").write_text(CHANGED_MEXICO, encoding="utf-8")
    changed, embedded = timed_build(engine)
    mexico = doc_chunks(engine, "informe-mexico")
    assert changed.changed == ["informe-mexico.txt"]
    assert changed.embedded == embedded == len(mexico)
    assert getattr(changed, "embedded_sentences", 0) <= sentence_rows(engine, "informe-mexico")
    assert all("migration stations" not in c.text for c in engine.index.chunks)
    assert any("Ventanillas de Salud" in c.text for c in mexico)

    # remove a document: nothing is embedded and its passages are gone
    assert "informe-uruguay" in retrieved_doc_ids(engine, "Uruguay social security totalisation pensions")
    (corpus / "informe-uruguay.txt").unlink()
    removed, embedded = timed_build(engine)
    assert removed.removed == ["informe-uruguay.txt"]
    assert removed.embedded == embedded == 0
    assert not doc_chunks(engine, "informe-uruguay")
    assert "informe-uruguay" not in retrieved_doc_ids(engine, "Uruguay social security totalisation pensions")
    assert removed.documents == 3
    assert index_store.load_index(tmp_path / "index").manifest["documents"].keys() == {
        "informe-argentina",
        "informe-mexico",
        "informe-chile",
    }


def part_files(index_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file of every document part, with its inode and modification time."""
    parts = index_dir / index_store.SEGMENTS
    return {p.relative_to(parts).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in parts.rglob("*") if p.is_file()}


def test_adding_a_document_reads_and_writes_its_part_alone(make_engine, tmp_path: Path) -> None:
    """The cost of an add is the added document's: the others are neither read, nor written, nor
    embedded, and the new build folder holds only its manifest."""
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    engine.build()
    before = part_files(tmp_path / "index")
    (corpus / NEW_DOC[0]).write_text(NEW_DOC[1], encoding="utf-8")
    report, _ = timed_build(engine)
    assert report.changed == [NEW_DOC[0]]
    after = part_files(tmp_path / "index")
    assert {name: stat for name, stat in after.items() if name in before} == before  # untouched
    added = {name.split("/")[0] for name in after} - {name.split("/")[0] for name in before}
    key = engine.index.manifest["documents"]["informe-chile"]["segment"]
    assert added == {key}
    assert report.folder is not None
    assert sorted(p.name for p in report.folder.iterdir() if not p.name.startswith(".")) == ["manifest.json"]
    assert report.embedded == len(doc_chunks(engine, "informe-chile"))


def test_a_new_title_reads_nothing_again_and_every_passage_carries_it(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    engine.build()
    before = part_files(tmp_path / "index")
    (corpus / "manifest.toml").write_text('[[document]]\nfile = "informe-mexico.txt"\n'
                                          'title = "Informe de México, segunda lectura"\n', encoding="utf-8")
    assert index_store.is_stale(engine.settings, engine.model.identity)
    report, embedded = timed_build(engine)
    assert not report.up_to_date and report.changed == [] and embedded == 0
    assert part_files(tmp_path / "index") == before
    mexico = doc_chunks(engine, "informe-mexico")
    assert mexico and {c.title for c in mexico} == {"Informe de México, segunda lectura"}
    assert "Informe de México, segunda lectura" not in {c.title for c in doc_chunks(engine, "informe-chile")}
    again = index_store.load_index(tmp_path / "index")  # and from disk, as a new process reads it
    assert {c.title for c in again.chunks if c.doc_id == "informe-mexico"} == {"Informe de México, segunda lectura"}


def test_new_bm25_parameters_read_no_document_again_and_score_anew(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    engine.build()
    question = "totalisation requests social security bank"
    before, files = engine.index.keyword.scores(question), part_files(tmp_path / "index")
    flatter = make_engine(keyword={"k1": 0.5, "b": 0.2})
    assert index_store.is_stale(flatter.settings, flatter.model.identity)
    report, embedded = timed_build(flatter)
    assert not report.up_to_date and report.changed == [] and embedded == 0
    assert part_files(tmp_path / "index") == files
    after = flatter.index.keyword.scores(question)
    assert int(after.argmax()) == int(before.argmax()) and not np.allclose(after, before)


def test_the_parts_a_process_holds_share_the_loaded_index_memory(make_engine, tmp_path: Path) -> None:
    """Held for the next build, a part costs no memory of its own: its arrays are views into the
    loaded index's."""
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    engine.build()
    index = engine.index
    parts = tmp_path / "index" / index_store.SEGMENTS
    for doc in index.manifest["documents"].values():
        part = segments.CACHE.load(parts / doc["segment"])
        assert np.shares_memory(part.embeddings, index.embeddings)
        assert np.shares_memory(part.sentence_embeddings, index.sentence_embeddings)


def test_an_index_replaced_by_a_build_is_freed_when_let_go(make_engine, tmp_path: Path) -> None:
    """The engine keeps a loaded index out of the cyclic collector's walks (gc.freeze), which is
    safe only while nothing of it is held in a cycle: by reference counting alone, the index a build
    replaces goes as soon as nothing uses it."""
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    engine.build()
    engine.ask("How many totalisation requests did the social security bank of Uruguay process?")
    old_index, old_retriever = weakref.ref(engine.index), weakref.ref(engine._retriever_or_load())
    (tmp_path / "corpus" / NEW_DOC[0]).write_text(NEW_DOC[1], encoding="utf-8")
    gc.disable()  # no collection may help
    try:
        engine.build()
        assert old_index() is None and old_retriever() is None
    finally:
        gc.enable()


def test_changing_chunk_size_rechunks_and_embeds_only_new_text(make_engine, tmp_path: Path) -> None:
    """Vectors depend on the model and the text alone, so a new recipe re-embeds only the passages
    whose text is new (one already embedded as a passage or a sentence keeps its vector)."""
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    first, _ = timed_build(engine)
    assert not index_store.is_stale(engine.settings, engine.model.identity)
    ix = engine.index
    before = {c.embed_text() for c in ix.chunks} | {ix.chunks[int(c)].text[a:b] for c, a, b in ix.sentence_spans}

    smaller = make_engine(chunking={"chunk_chars": 300, "overlap_chars": 50})
    assert index_store.is_stale(smaller.settings, smaller.model.identity)
    report, embedded = timed_build(smaller)
    assert not report.up_to_date
    unchanged = sum(c.embed_text() in before for c in smaller.index.chunks)
    assert 0 < unchanged < report.chunks
    assert report.reused == unchanged
    assert report.embedded == embedded == report.chunks - unchanged
    assert report.chunks > first.chunks
    assert smaller.index.manifest["recipe"]["chunk_chars"] == 300
    assert all(len(c.text) <= 300 for c in smaller.index.chunks)


def test_full_rebuild_reembeds_everything(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    first, _ = timed_build(engine)
    full, embedded = timed_build(engine, full=True)
    assert not full.up_to_date
    assert full.embedded == embedded == first.chunks


def test_ensure_index_builds_only_when_stale(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    assert index_store.is_stale(engine.settings, engine.model.identity)
    assert engine.ensure_index() is not None
    assert engine.ensure_index() is None
    (tmp_path / "corpus" / NEW_DOC[0]).write_text(NEW_DOC[1], encoding="utf-8")
    report = engine.ensure_index()
    assert report is not None and report.changed == [NEW_DOC[0]]
    assert doc_chunks(engine, "informe-chile")


# --- metadata ------------------------------------------------------------------------------------


MANIFEST = """
[[document]]
file = "informe-argentina.txt"
doc_id = "ar-2021"
title = "Informe voluntario de la República Argentina"
kind = "questionnaire"
author = "Argentina"
stakeholder = "State"
language = "es"
year = 2021
"""


def test_manifest_metadata_reaches_every_chunk_and_can_change_without_reembedding(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    (corpus / "manifest.toml").write_text(MANIFEST, encoding="utf-8")
    timed_build(engine)
    argentina = doc_chunks(engine, "ar-2021")
    assert argentina
    for c in argentina:
        assert (c.title, c.kind, c.author, c.stakeholder, c.language) == (
            "Informe voluntario de la República Argentina",
            "questionnaire",
            "Argentina",
            "State",
            "es",
        )
        assert c.chunk_id.startswith("ar-2021:")
    mexico = doc_chunks(engine, "informe-mexico")
    assert mexico and all(c.author == "Mexico" and c.stakeholder == "State" for c in mexico)
    assert mexico[0].title == "Informe voluntario de México"

    (corpus / "manifest.toml").write_text(
        MANIFEST.replace('author = "Argentina"', 'author = "Argentine Republic"'), encoding="utf-8"
    )
    assert index_store.is_stale(engine.settings, engine.model.identity)
    report, embedded = timed_build(engine)
    assert not report.up_to_date
    assert report.embedded == embedded == 0
    assert {c.author for c in doc_chunks(engine, "ar-2021")} == {"Argentine Republic"}


def test_a_manifest_entry_that_breaks_the_schema_is_skipped_and_named(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    name = sorted(DOCS)[0]
    (tmp_path / "corpus" / "manifest.toml").write_text(
        f'[[document]]\nfile = "{name}"\ntitle = 42\n\n[[document]]\nfile = "x.txt"\nkind = "memo"\n')
    report = engine.build()
    assert report.documents == len(DOCS)  # every document indexed, the bad entries' with inferred metadata
    problems = [e for e in report.errors if "manifest.toml" in e]
    assert len(problems) == 2
    assert f"({name}): 'title': Input should be a valid string (entry skipped)" in problems[0]
    assert "(x.txt): 'kind'" in problems[1]
    assert all(isinstance(c.title, str) for c in engine.index.chunks)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[[document]\nfile = 'x'", "not valid TOML"),
        ("[document]\nfile = 'x.txt'\n", "'document' must be a list"),
        (b"[[document]]\nfile = '\xff.txt'\n", "not UTF-8"),
    ],
)
def test_an_unreadable_manifest_is_named_and_the_last_index_keeps_answering(
    make_engine, tmp_path: Path, text: str | bytes, reason: str
) -> None:
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    engine.build()
    manifest = tmp_path / "corpus" / "manifest.toml"
    manifest.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=reason) as caught:
        engine.build()
    assert "manifest.toml" in str(caught.value)
    fresh = make_engine()  # a new process: the corpus changed, the refresh fails, the old index answers
    (tmp_path / "corpus" / sorted(DOCS)[0]).write_text("Changed text about harbours and ferries.\n")
    assert fresh.ensure_index() is None
    assert any(reason in n and "answering from the last index built" in n for n in fresh.notices)
    assert fresh.ask("What do the reports say?").passages


# --- bad files -----------------------------------------------------------------------------------


def test_one_bad_file_is_reported_and_the_others_indexed(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    for name in (
        "derived-truncated.pdf",
        "libreoffice-writer-password.pdf",
        "imagemagick-CCITTFaxDecode.pdf",
    ):
        shutil.copy(PDF_DIR / name, corpus / name)
    report, _ = timed_build(engine)
    assert report.documents == 3
    assert len(report.errors) == 3
    by_file = {e.split(":", 1)[0]: e for e in report.errors}
    assert "damaged" in by_file["derived-truncated.pdf"]
    assert "password" in by_file["libreoffice-writer-password.pdf"]
    assert "no extractable text" in by_file["imagemagick-CCITTFaxDecode.pdf"]
    assert "3 file(s) skipped" in report.summary()
    assert {c.doc_id for c in engine.index.chunks} == {
        "informe-argentina",
        "informe-mexico",
        "informe-uruguay",
    }

    # the same bad files do not force a rebuild every time, but are still reported
    assert not index_store.is_stale(engine.settings, engine.model.identity)
    again, embedded = timed_build(engine)
    assert again.up_to_date and embedded == 0
    assert len(again.errors) == 3


def test_previously_indexed_document_that_becomes_corrupt_keeps_its_chunks(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, {"informe-mexico.txt": DOCS["informe-mexico.txt"]})
    shutil.copy(PDF_DIR / "derived-shifted-xref.pdf", corpus / "informe-paraguay.pdf")
    timed_build(engine)
    before = [c.to_dict() for c in doc_chunks(engine, "informe-paraguay")]
    assert before

    shutil.copy(PDF_DIR / "derived-truncated.pdf", corpus / "informe-paraguay.pdf")
    report, embedded = timed_build(engine)
    assert embedded == 0
    assert len(report.errors) == 1
    assert report.errors[0].startswith("informe-paraguay.pdf: damaged")
    assert "kept the previously indexed version" in report.errors[0]
    assert [c.to_dict() for c in doc_chunks(engine, "informe-paraguay")] == before
    assert "informe-paraguay" in retrieved_doc_ids(engine, "Lorem ipsum dolor sit amet")

    # still kept on the next build, a full one too, and a repaired file replaces it
    again, _ = timed_build(engine)
    assert [c.to_dict() for c in doc_chunks(engine, "informe-paraguay")] == before
    assert "kept the previously indexed version" in again.errors[0]
    full = engine.build(full=True)
    assert "kept the previously indexed version" in full.errors[0] and not full.up_to_date
    assert [c.to_dict() for c in doc_chunks(engine, "informe-paraguay")] == before
    (corpus / "informe-paraguay.pdf").unlink()
    (corpus / "informe-paraguay.txt").write_text(
        "Paraguay reported a new migration law in 2022.", encoding="utf-8"
    )
    fixed, _ = timed_build(engine)
    assert fixed.errors == []
    assert [c.text for c in doc_chunks(engine, "informe-paraguay")] == [
        "Paraguay reported a new migration law in 2022."
    ]


def test_add_rejects_a_bad_file_without_copying_it(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    write_docs(tmp_path / "corpus", DOCS)
    engine.build()
    incoming = tmp_path / "uploads"
    incoming.mkdir()
    (incoming / NEW_DOC[0]).write_text(NEW_DOC[1], encoding="utf-8")
    shutil.copy(PDF_DIR / "derived-truncated.pdf", incoming / "broken.pdf")
    result = engine.add([incoming / NEW_DOC[0], incoming / "broken.pdf"])
    assert result.added == [NEW_DOC[0]]
    assert len(result.errors) == 1 and result.errors[0].startswith("broken.pdf: damaged")
    assert not (tmp_path / "corpus" / "broken.pdf").exists()
    assert (tmp_path / "corpus" / NEW_DOC[0]).read_text(encoding="utf-8") == NEW_DOC[1]
    assert result.report is not None and result.report.changed == [NEW_DOC[0]]
    manifest = (tmp_path / "corpus" / "manifest.toml").read_text(encoding="utf-8")
    assert 'file = "informe-chile.txt"' in manifest and "broken.pdf" not in manifest
    assert doc_chunks(engine, "informe-chile")


def test_a_name_already_taken_keeps_both_documents_unless_replace_is_asked(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    engine.build()
    taken = sorted(DOCS)[0]
    incoming = tmp_path / "uploads"
    incoming.mkdir()
    (incoming / taken).write_text("A short note about ferries in the south.\n", encoding="utf-8")
    result = engine.add([incoming / taken])
    given = taken.replace(".txt", " (2).txt")
    assert result.renamed == [(taken, given)] and result.added == [given]
    assert (corpus / taken).read_text(encoding="utf-8") == DOCS[taken]  # the earlier document is kept
    assert {c.doc_id for c in engine.index.chunks} >= {Path(taken).stem, Path(given).stem.replace(" (2)", "-2")}
    again = engine.add([incoming / taken])  # the same bytes again, under whatever name: already there
    assert again.unchanged == [given] and not again.added
    (incoming / taken).write_text("A second note about ferries and piers.\n", encoding="utf-8")
    replaced = engine.add([incoming / taken], replace_existing=True)
    assert replaced.replaced == [taken]
    assert (corpus / taken).read_text(encoding="utf-8").startswith("A second note")
    assert not list(corpus.glob(".*.previous")) and not (corpus / ".add-journal.json").exists()


def test_an_identical_file_is_not_added_twice(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    engine.build()
    name = sorted(DOCS)[0]
    incoming = tmp_path / "uploads"
    incoming.mkdir()
    shutil.copy(corpus / name, incoming / name)
    result = engine.add([incoming / name])
    assert result.unchanged == [name] and not result.added and result.report is None


def test_unsafe_and_overlong_names_are_made_safe_and_a_leading_dot_is_no_reason_to_skip(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    (corpus / ".notas.txt").write_text("Notas sobre el puerto de Valparaíso y sus ferris.\n", encoding="utf-8")
    engine.build()
    assert any(c.text.startswith("Notas sobre el puerto") for c in engine.index.chunks)  # indexed, not hidden
    incoming = tmp_path / "uploads"
    incoming.mkdir()
    long_name = "Informe " + "muy " * 56 + "largo: Mexico?.TXT"  # 250 characters, under 255 bytes
    (incoming / long_name).write_text(NEW_DOC[1], encoding="utf-8")
    result = engine.add([incoming / long_name])
    (added,) = result.added
    assert len(added) <= corpus_module.MAX_NAME_CHARS and added.endswith(".txt") and ":" not in added
    assert (corpus / added).exists() and not result.errors


def test_safe_name_keeps_the_extension_and_drops_folders_and_marks() -> None:
    assert corpus_module.safe_name("Informe  final: México 2021!.PDF") == "Informe final- México 2021.pdf"
    assert corpus_module.safe_name("../../etc/passwd") == "passwd"
    assert corpus_module.safe_name(".oculto.docx") == "oculto.docx"
    assert corpus_module.safe_name("\x00\x1b.txt") == "document.txt"
    assert len(corpus_module.safe_name("a" * 300 + ".md")) == corpus_module.MAX_NAME_CHARS


def test_an_add_killed_midway_is_undone_by_the_next_engine(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    engine.build()
    manifest_before = (corpus / "manifest.toml").read_bytes() if (corpus / "manifest.toml").exists() else None
    victim = sorted(DOCS)[0]
    # what a killed add leaves: its journal, a new file, a replaced file and an updated manifest
    corpus_module.begin_add(corpus, [NEW_DOC[0]], [victim])
    (corpus / NEW_DOC[0]).write_text(NEW_DOC[1], encoding="utf-8")
    (corpus / victim).write_text("garbage\n", encoding="utf-8")
    (corpus / "manifest.toml").write_text('[[document]]\nfile = "informe-chile.txt"\n', encoding="utf-8")
    fresh = make_engine()
    assert any("interrupted add was undone" in n for n in fresh.notices)
    assert not (corpus / NEW_DOC[0]).exists()
    assert (corpus / victim).read_text(encoding="utf-8") == DOCS[victim]
    after = (corpus / "manifest.toml").read_bytes() if (corpus / "manifest.toml").exists() else None
    assert after == manifest_before
    assert not (corpus / ".add-journal.json").exists()


def test_a_failed_add_leaves_the_corpus_as_it_was(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    engine.build()
    before = sorted(p.name for p in corpus.iterdir())
    incoming = tmp_path / "uploads"
    incoming.mkdir()
    (incoming / NEW_DOC[0]).write_text(NEW_DOC[1], encoding="utf-8")

    (tmp_path / "not-a-folder").write_text("")  # the build fails for real after the copy: no index folder
    broken = make_engine(paths={"corpus_dir": corpus, "index_dir": tmp_path / "not-a-folder"})
    with pytest.raises(OSError):
        broken.add([incoming / NEW_DOC[0]])
    assert sorted(p.name for p in corpus.iterdir()) == before


def test_empty_corpus_and_missing_corpus(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    with pytest.raises(Exception, match="no document in the corpus could be indexed"):
        engine.build()
    assert index_store.current_folder(tmp_path / "index") is None
    shutil.rmtree(tmp_path / "corpus")
    with pytest.raises(FileNotFoundError, match="corpus folder not found"):
        engine.build()


# --- crash safety --------------------------------------------------------------------------------


def _report_excerpt(chars: int) -> str:
    text = REPORT.read_text(encoding="utf-8")
    start = text.index("1. Migration in Latin America and the Caribbean\n")
    return text[start : start + chars]


@pytest.mark.slow  # starts a process
def test_killed_build_leaves_the_previous_index_whole(make_engine, tmp_path: Path, cache_dir: Path) -> None:
    engine = make_engine()
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_docs(corpus, DOCS)
    first = engine.build()
    good_folder = index_store.current_folder(index_dir)
    assert good_folder is not None

    # about 50 passages and 200 sentences: seconds of embedding
    (corpus / "informe-regional-extracto.txt").write_text(_report_excerpt(25_000), encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "gcm_qa.cli",
        "index",
        "--no-progress",
        "--corpus",
        str(corpus),
        "--index-dir",
        str(index_dir),
        "--cache-dir",
        str(cache_dir),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while not any("Embedding" in line for line in seen):
            assert time.monotonic() < deadline, f"no 'Embedding' line on stderr: {seen}"
            assert proc.poll() is None, f"index exited early with {proc.returncode}: {seen}"
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
        time.sleep(0.5)
        assert proc.poll() is None, "the build finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    link = index_dir / "current"
    assert link.is_symlink() and link.exists()
    assert index_store.current_folder(index_dir) == good_folder
    loaded = index_store.load_index(index_dir)
    assert len(loaded.chunks) == first.chunks
    assert loaded.faiss_index.ntotal == first.chunks
    assert set(loaded.manifest["documents"]) == {"informe-argentina", "informe-mexico", "informe-uruguay"}
    assert [p.name for p in (index_dir / "builds").iterdir() if not p.name.startswith(".tmp-")] == [
        good_folder.name
    ]

    # a crash while writing leaves a .tmp-* folder behind; the next build clears it
    leftover = index_dir / "builds" / ".tmp-deadbeef"
    leftover.mkdir()
    (leftover / "chunks.jsonl").write_text("{partial", encoding="utf-8")
    report, embedded = timed_build(engine)
    assert report.errors == [] and report.changed == ["informe-regional-extracto.txt"]
    extract = doc_chunks(engine, "informe-regional-extracto")
    assert len(extract) > 30
    assert embedded == report.embedded == len(extract)
    assert report.chunks == first.chunks + len(extract)
    assert not list((index_dir / "builds").glob(".tmp-*"))
    # the build it replaced is kept, to fall back to should the new one be damaged
    assert good_folder.exists() and (good_folder / index_store.GOOD_MARKER).exists()
    assert {p.name for p in (index_dir / "builds").iterdir()} == {index_store.current_folder(index_dir).name,
                                                                   good_folder.name}
    assert len(index_store.load_index(index_dir).chunks) == report.chunks


@pytest.mark.slow  # embeds 1,500 paragraphs
def test_questions_are_answered_from_the_current_index_while_a_build_runs(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    write_docs(corpus, DOCS)
    engine.build()
    incoming = tmp_path / "uploads"
    incoming.mkdir()
    long_doc = incoming / "informe-largo.txt"  # hundreds of new passages: seconds of embedding
    long_doc.write_text("\n\n".join(f"Paragraph {i} describes harbour {i} and the ferries that call there "
                                    f"each week, with {i * 3} crossings recorded in {2000 + i % 20}."
                                    for i in range(1500)), encoding="utf-8")
    adding = threading.Thread(target=engine.add, args=([long_doc],))
    adding.start()
    while not (corpus / ".add-journal.json").exists() and adding.is_alive():
        time.sleep(0.01)
    answer = engine.ask("Which programme regularised migrants from MERCOSUR countries?")
    assert adding.is_alive()  # answered before the build ended: the question did not wait for it
    assert answer.passages and answer.passages[0].chunk.doc_id == "informe-argentina"
    adding.join()
    assert any(c.doc_id == "informe-largo" for c in engine.index.chunks)  # then swapped in


def test_a_file_refused_by_a_limit_is_read_once_the_limit_is_raised(make_engine, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_docs(corpus, DOCS)
    (corpus / "informe-largo.txt").write_text("Harbour records. " * 200, encoding="utf-8")  # 3,400 characters
    strict = make_engine(limits={"max_chars": 2000})
    report = strict.build()
    assert any(e.startswith("informe-largo.txt:") and "limits.max_chars" in e for e in report.errors)
    assert not index_store.is_stale(strict.settings, strict.model.identity)  # refused, and not retried
    relaxed = make_engine()
    assert index_store.is_stale(relaxed.settings, relaxed.model.identity)  # another limit: another recipe
    relaxed.ensure_index()
    assert any(c.doc_id == "informe-largo" for c in relaxed.index.chunks)


def test_a_question_does_not_wait_for_another_process_building_the_index(make_engine, tmp_path: Path) -> None:
    import fcntl

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_docs(corpus, DOCS)
    make_engine().build()
    (corpus / NEW_DOC[0]).write_text(NEW_DOC[1], encoding="utf-8")  # the index is stale now
    with (tmp_path / "index" / ".lock").open("w") as held:  # as 'gcm-qa index' in another process holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        engine = make_engine()
        assert engine.ensure_index() is None
        assert any("another process is rebuilding the index" in n for n in engine.notices)
        assert "Patria Grande" in engine.ask("Which programme regularised migrants from MERCOSUR countries?").answer
    assert index_store.is_stale(engine.settings, engine.model.identity)  # the other process would catch up


def test_an_engine_opened_while_an_add_runs_does_not_undo_it(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    write_docs(corpus, DOCS)
    engine.build()
    incoming = tmp_path / "uploads"
    incoming.mkdir()
    upload = incoming / "informe-largo.txt"
    upload.write_text("\n\n".join(f"Paragraph {i}: harbour {i} logged {i * 5} crossings." for i in range(800)),
                      encoding="utf-8")
    adding = threading.Thread(target=engine.add, args=([upload],))
    adding.start()
    while not (corpus / ".add-journal.json").exists() and adding.is_alive():
        time.sleep(0.01)
    other = make_engine()  # 'gcm-qa ask' started during a chat upload
    assert not any("interrupted add" in n for n in other.notices)
    adding.join()
    assert (corpus / upload.name).exists() and upload.name in (corpus / "manifest.toml").read_text(encoding="utf-8")
