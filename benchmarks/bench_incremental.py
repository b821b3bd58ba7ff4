"""Benchmark: adding one document to a corpus of N costs time in proportion to that document, not to N.

For N = 1, 10, 50 the base corpus is N copies of the shipped report (each its own file, manifest
entry, doc_id and title; the report's profile serves them all as ``profiles/kinds/report.toml``).
Their passages and sentences equal the report's, so every vector comes from the shipped vectors
(``index/vectors``) and building the base embeds nothing (checked: the base build's embedded counts
are printed in ``details``). Then one new document is added, a State-style questionnaire from the
test fixtures (``tests/fixtures/questionnaires/forms``, invented for tests, about a page) whose every
passage and sentence is new and must be embedded, and the incremental ``Engine.build()`` is timed.
It is compared with embedding exactly the texts that build embedded (the added document's chunk
embed texts, then its sentences: two ``encode_documents`` calls, as the build makes), on the same
warm model. Target: add <= 1.2 x embed-alone.

The corpus grows in place (1 -> 10 -> 50 copies; the added document is removed in the same build
that adds the copies), so each copy is read and chunked once. At N = 50 the add is profiled
(cProfile) and where its time goes is in ``details['profile']``; a build that removes the added
document (embedding nothing) is timed too. Each document is its own part of the index
(gcm_qa.segments), so an add writes one part and a manifest, and the engine joins the parts it holds
in memory with the new one. The run also times the BM25 tokenising of every text with ``keyword.fold``
and the token pattern as they were before an earlier profile of this benchmark and as they are.

    .venv/bin/python benchmarks/bench_incremental.py [--quick]
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPORT, ROOT, Section, main, median

from gcm_qa import keyword
from gcm_qa.embedder import Embedder
from gcm_qa.engine import Engine
from gcm_qa.index_store import BuildReport
from gcm_qa.settings import Settings

SECTION = "incremental add"
SIZES = (1, 10, 50)
FORMS = ROOT / "tests" / "fixtures" / "questionnaires" / "forms"
ADDED_FILE = "caribbean-migrant-rights-network-questionnaire.txt"
ADDED_ENTRY = f'''
[[document]]
file = "{ADDED_FILE}"
doc_id = "caribbean-migrant-rights-network-questionnaire"
title = "Voluntary GCM review questionnaire for civil society and other stakeholders"
kind = "questionnaire"
author = "Caribbean Migrant Rights Network"
stakeholder = "civil society"
language = "en"
year = 2021
'''
REPORT_ENTRY = '''
[[document]]
file = "report-copy-{i:03d}.txt"
doc_id = "gcm-regional-review-lac-2022-copy-{i:03d}"
title = "Report on the regional review of the GCM in Latin America and the Caribbean (copy {i})"
kind = "report"
author = "United Nations Network on Migration (IOM and ECLAC)"
stakeholder = "intergovernmental body"
language = "en"
year = 2022
'''
RENEWED_FILE = "report-renewed.txt"
RENEWED_ENTRY = f'''
[[document]]
file = "{RENEWED_FILE}"
doc_id = "gcm-regional-review-renewed"
title = "Report on the regional review of the GCM, renewed"
kind = "report"
author = "United Nations Network on Migration (IOM and ECLAC)"
stakeholder = "intergovernmental body"
language = "en"
year = 2023
'''
TARGET = 1.2
# A sentence of body text: one that starts a paragraph line of some length, or follows another's end.
_SENTENCE_START = re.compile(r"(?:(?<=^)|(?<=[.!?] ))(?=[A-Z])", re.MULTILINE)


def renewed(text: str) -> str:
    """The report as a new report of the same size: every sentence that starts with a capital letter
    on a line of 60 characters or more begins "In this review, " (short lines, i.e. headings, stay
    as they are, so its structure stays). Of its 2,069 passages and sentences 1,285 are new; the
    rest (headings, table rows, list items, sentences opening with a figure or a quote) equal the
    report's and are reused from the base, and embed-alone counts only what the add embedded."""
    return "\n".join(_SENTENCE_START.sub("In this review, ", line) if len(line) >= 60 else line
                     for line in text.split("\n"))


@dataclass(frozen=True)
class Added:
    """One kind of document added to the corpus of N copies."""

    label: str
    file: str
    entry: str
    text: Callable[[], str]
    description: str


QUESTIONNAIRE = Added("questionnaire", ADDED_FILE, ADDED_ENTRY,
                      lambda: (FORMS / ADDED_FILE).read_text(encoding="utf-8"),
                      f"tests/fixtures/questionnaires/forms/{ADDED_FILE} (an invented civil-society "
                      "questionnaire, English, 3 KB): every passage new")
REPORT_SIZED = Added("report-sized document", RENEWED_FILE, RENEWED_ENTRY, lambda: renewed(REPORT.read_text("utf-8")),
                     "the report with 'In this review, ' before every sentence of its body text (renewed())")


def write_corpus(folder: Path, copies: int, added: Added | None, run: str = "") -> None:
    """``copies`` copies of the report (existing ones are left as they are, others removed), and the
    added document or none; the manifest lists exactly what is there. ``run`` ends the added
    document with a line of its own ("Received in run N=10 #2."), so that each add is of a document
    the index has not held: a part of the very same file would be taken back from an earlier build
    the index keeps, embedding nothing."""
    (folder / "profiles" / "kinds").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "corpus" / "profiles" / "gcm-regional-review-lac-2022.toml",
                    folder / "profiles" / "kinds" / "report.toml")
    for i in range(1, copies + 1):
        target = folder / f"report-copy-{i:03d}.txt"
        if not target.exists():
            shutil.copyfile(REPORT, target)
    for extra in folder.glob("report-copy-*.txt"):
        if int(extra.stem.rsplit("-", 1)[1]) > copies:
            extra.unlink()
    manifest = "".join(REPORT_ENTRY.format(i=i) for i in range(1, copies + 1))
    for kind in (QUESTIONNAIRE, REPORT_SIZED):
        if kind is added:
            (folder / kind.file).write_text(kind.text() + (f"\n\nReceived in run {run}.\n" if run else ""),
                                            encoding="utf-8")
            manifest += kind.entry
        else:
            (folder / kind.file).unlink(missing_ok=True)
    (folder / "manifest.toml").write_text(manifest, encoding="utf-8")


def added_texts(engine: Engine, added: Added, known: set[str]) -> tuple[list[str], list[str]]:
    """The distinct chunk embed texts and sentence texts of the added document that the base did not
    hold (``known``), from the built index: what its build embedded."""
    index = engine.index
    doc_id = next(d for d, v in index.manifest["documents"].items() if v["file"] == added.file)
    rows = [i for i, c in enumerate(index.chunks) if c.doc_id == doc_id]
    chunk_texts = [index.chunks[i].embed_text() for i in rows]
    mine = set(rows)
    sentences = [index.chunks[int(ci)].text[int(a):int(b)] for ci, a, b in index.sentence_spans if int(ci) in mine]
    # the build embeds each distinct text once (by text hash), sentences after chunks
    unique_chunks = dict.fromkeys(t for t in chunk_texts if t not in known)
    return list(unique_chunks), [s for s in dict.fromkeys(sentences) if s not in unique_chunks and s not in known]


def base_texts(engine: Engine) -> set[str]:
    """Every chunk embed text and sentence text of the current index (the base the add meets)."""
    index = engine.index
    texts = {c.embed_text() for c in index.chunks}
    texts.update(index.chunks[int(ci)].text[int(a):int(b)] for ci, a, b in index.sentence_spans)
    return texts


def embed_alone(embedder: Embedder, chunk_texts: list[str], sentences: list[str]) -> float:
    started = time.perf_counter()
    embedder.encode_documents(chunk_texts, build=True)  # as a build embeds them (OpenVINO for many)
    embedder.encode_documents(sentences, build=True)
    return time.perf_counter() - started


class EncoderClock:
    """Seconds spent inside the embedder's ``encode_documents`` (wrapped on the instance)."""

    def __init__(self, embedder: Embedder) -> None:
        self.seconds = 0.0
        encode = embedder.encode_documents

        def timed(texts: Any, progress: bool = False, build: bool = False) -> Any:
            t = time.perf_counter()
            try:
                return encode(texts, progress, build)
            finally:
                self.seconds += time.perf_counter() - t

        embedder.encode_documents = timed  # type: ignore[method-assign]


def timed_build(engine: Engine, profile: cProfile.Profile | None = None,
                clock: EncoderClock | None = None) -> tuple[float, BuildReport, float]:
    """Wall seconds of ``engine.build()``, its report, and the seconds of it spent embedding."""
    inside = clock.seconds if clock is not None else 0.0
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    report = engine.build()
    if profile is not None:
        profile.disable()
    wall = time.perf_counter() - started
    return wall, report, (clock.seconds - inside if clock is not None else 0.0)


# frames of the encoder: their time is the embedding, which does not grow with N
_ENCODER_FRAMES = ("torch/", "transformers/", "sentence_transformers/", "tokenizers/", "<built-in method torch")
# what a build does besides embedding, by the function that does it (cumulative seconds)
_STAGES = {
    "embedding (encode_documents)": "gcm_qa/embedder.py(encode_documents)",
    "read, clean, chunk the new file (prepare_document)": "gcm_qa/index_store.py(prepare_document)",
    "write the new document's part (_write_part)": "gcm_qa/index_store.py(_write_part)",
    "  its term counts (TermCounts.count)": "gcm_qa/keyword.py(count)",
    "  its files, checksums and fsync (segments.write)": "gcm_qa/segments.py(write)",
    "check of the previous build (check_build)": "gcm_qa/index_store.py(check_build)",
    "  checksums of the parts (segments.problems)": "gcm_qa/segments.py(problems)",
    "  parts read from disk (segments.read)": "gcm_qa/segments.py(read)",
    "shipped vectors (vector_store.load)": "gcm_qa/vector_store.py(load)",
    "write the build's manifest and swap (_write_build)": "gcm_qa/index_store.py(_write_build)",
    "  prune old builds and parts (_prune)": "gcm_qa/index_store.py(_prune)",
    "load the new build (Engine._load)": "gcm_qa/engine.py(_load)",
    "  join the parts (_load_build)": "gcm_qa/index_store.py(_load_build)",
    "  BM25 postings of the joined parts (KeywordIndex.__init__)": "gcm_qa/keyword.py(__init__)",
    "  the retriever's priors (Retriever.__init__)": "gcm_qa/retrieval.py(__init__)",
}


def _where(file: str, name: str) -> str:
    return f"{file.split('site-packages/')[-1].split('src/')[-1]}({name})"


def profile_table(profile: cProfile.Profile, limit: int = 25) -> dict[str, Any]:
    """Where the profiled build spent its time: by stage (``_STAGES``), and the functions outside the
    encoder with the most cumulative and own time."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    cumulative: dict[str, float] = {}
    for (file, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = _where(file, name)
        cumulative[where] = cumulative.get(where, 0.0) + cumtime
        if any(frame in file or frame in name for frame in _ENCODER_FRAMES):
            continue
        rows.append({"function": f"{where}:{line}", "calls": ncalls, "tottime_s": round(tottime, 3),
                     "cumtime_s": round(cumtime, 3)})
    stages = {stage: round(cumulative.get(where, 0.0), 3) for stage, where in _STAGES.items()}
    by_cum = sorted(rows, key=lambda r: -r["cumtime_s"])[:limit]
    by_own = sorted(rows, key=lambda r: -r["tottime_s"])[:limit]
    return {"stages_s": stages, "top_cumulative": by_cum, "top_own": by_own}


def _old_fold(text: str) -> str:
    """``keyword.fold`` before this benchmark's profile: one generator step per character."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


@contextlib.contextmanager
def old_tokenising() -> Iterator[None]:
    """``keyword.tokenize`` as it was before this benchmark's profile: the first ``fold`` and the
    Unicode-digit token pattern for every text (``tokenize`` looks both up in its module at each
    call). Its tokens are the same (tests/test_keyword.py), only slower."""
    fold, ascii_token = keyword.fold, keyword._ASCII_TOKEN
    keyword.fold, keyword._ASCII_TOKEN = _old_fold, keyword._TOKEN
    try:
        yield
    finally:
        keyword.fold, keyword._ASCII_TOKEN = fold, ascii_token


def tokenising_before_after(engine: Engine) -> dict[str, float]:
    """BM25 tokenising of every chunk and sentence of the current index, as it is and as it was, in
    this same run (the same texts, the same machine state)."""
    index = engine.index
    languages = [c.language for c in index.chunks]
    texts = [(c.embed_text(), c.language) for c in index.chunks]
    texts += [(index.chunks[int(ci)].text[int(a):int(b)], languages[int(ci)]) for ci, a, b in index.sentence_spans]
    out: dict[str, float] = {"texts": len(texts)}
    for label, context in (("old", old_tokenising), ("new", contextlib.nullcontext)):
        with context():
            t = time.perf_counter()
            for text, language in texts:
                keyword.tokenize(text, language)
            out[f"tokenize_s_{label}"] = time.perf_counter() - t
            t = time.perf_counter()
            for text, _ in texts:
                keyword.fold(text)
            out[f"fold_s_{label}"] = time.perf_counter() - t
    return out


def run(quick: bool) -> Section:
    section = Section(SECTION)
    started = time.perf_counter()
    repeats = 3  # a one-page add is seconds; one repeat left the ratio to the embedding's noise (1.26x once)
    work = Path(tempfile.mkdtemp(prefix="gcm-qa-bench-incr-"))
    try:
        corpus_dir = work / "corpus"
        data = Settings().model_dump(exclude_unset=True)
        data["paths"] = {"corpus_dir": corpus_dir, "index_dir": work / "index",
                         "vectors_dir": ROOT / "index" / "vectors"}
        settings = Settings.model_validate(data)
        engine = Engine(settings)
        embedder = engine.embedder
        embedder.encode_documents(["warm-up: the model is loaded and has run once"])
        clock = EncoderClock(embedder)
        kinds = (QUESTIONNAIRE,) if quick else (QUESTIONNAIRE, REPORT_SIZED)
        section.details["added_documents"] = {k.label: k.description for k in kinds}
        section.details["repeats"] = {QUESTIONNAIRE.label: repeats, REPORT_SIZED.label: 1}
        section.details["mode"] = "quick" if quick else "full"
        section.details["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
        per_n: dict[str, Any] = {}
        chart: dict[str, Any] = {"title": "Add one report: time / embedding it alone", "unit": "x",
                                 "target": TARGET, "labels": [], "values": []}
        for added, n in ((k, n) for k in kinds for n in SIZES):
            chunk_texts: list[str] = []  # the added document's texts, known after its first add
            sentences: list[str] = []
            write_corpus(corpus_dir, n, None)
            base_s, base, _ = timed_build(engine)
            known = base_texts(engine)
            adds, alones, index_s, inside, rest = [], [], [], [], []
            for r in range(repeats if added is QUESTIONNAIRE else 1):
                if r:
                    write_corpus(corpus_dir, n, None)
                    engine.build()  # the added document goes again, and its vectors with it
                if chunk_texts:  # embed-alone before and after each add, as other processes share the CPU
                    alones.append(embed_alone(embedder, chunk_texts, sentences))
                write_corpus(corpus_dir, n, added, f"N={n} #{r + 1}")
                add_s, report, embed_s = timed_build(engine, clock=clock)
                chunk_texts, sentences = added_texts(engine, added, known)
                embedded = report.embedded + report.embedded_sentences
                if embedded != len(chunk_texts) + len(sentences):
                    raise RuntimeError(f"the add embedded {embedded} texts, the added document has "
                                       f"{len(chunk_texts)} new chunks and {len(sentences)} new sentences")
                adds.append(add_s)
                index_s.append(report.seconds)
                inside.append(embed_s)
                rest.append(add_s - embed_s)
                alones.append(embed_alone(embedder, chunk_texts, sentences))
            ratio = median(adds) / median(alones)
            per_n[f"{added.label}, N={n}"] = {
                "base_build_s": round(base_s, 2), "base_embedded": base.embedded + base.embedded_sentences,
                "base_chunks": base.chunks, "add_s": [round(a, 2) for a in adds],
                "add_index_store_s": [round(a, 2) for a in index_s], "add_embedding_s": [round(a, 2) for a in inside],
                "add_besides_embedding_s": [round(a, 2) for a in rest], "embed_alone_s": [round(a, 2) for a in alones],
                "added_chunks": len(chunk_texts), "added_sentences": len(sentences),
            }
            note = (f"{len(chunk_texts)} chunks + {len(sentences)} sentences embedded; base of {n} report "
                    f"copies ({base.chunks} chunks) embedded {base.embedded + base.embedded_sentences}; "
                    f"embed alone {median(alones):.2f} s, embedding inside the add {median(inside):.2f} s; "
                    f"{len(adds)} run(s)")
            section.add(f"add 1 {added.label} to N={n}", median(adds), "s", note=note, runs=adds)
            section.add(f"add / embed-alone, {added.label}, N={n}", ratio, "x", target=f"<= {TARGET}",
                        ok=ratio <= TARGET, note=f"overhead {median(adds) - median(alones):.2f} s beyond embed-alone")
            chart["values"].append(ratio)
            chart["labels"].append(f"{added.label.split()[0]} N={n}")
            section.add(f"add besides its embedding, {added.label}, N={n}", median(rest), "s", runs=rest,
                        note="the add's wall time minus its time inside encode_documents: the part that grows with N")
        # At the largest N: the added document goes, comes back under cProfile, and goes again; a
        # removal embeds nothing, so all its time is the part of a build that could grow with N.
        n = SIZES[-1]
        write_corpus(corpus_dir, n, None)
        engine.build()
        write_corpus(corpus_dir, n, QUESTIONNAIRE, f"N={n} profiled")
        profile = cProfile.Profile()
        profiled_s = timed_build(engine, profile)[0]
        write_corpus(corpus_dir, n, None)
        removal_s = timed_build(engine)[0]
        section.add(f"build at N={n} removing the added document", removal_s, "s",
                    note="embeds nothing: what a build costs besides its new documents")
        section.details["per_n"] = per_n
        section.details["chart"] = chart
        section.details["profile"] = {"n": n, "build": "the build that adds the document",
                                      "wall_s_under_cprofile": round(profiled_s, 2), **profile_table(profile)}
        speed = tokenising_before_after(engine)
        section.details["tokenising_before_after"] = speed
        section.add(f"BM25 tokenising at N={n}, as before", speed["tokenize_s_old"], "s",
                    note=f"{speed['texts']:.0f} chunks and sentences; fold alone {speed['fold_s_old']:.2f} s")
        section.add(f"BM25 tokenising at N={n}, as now", speed["tokenize_s_new"], "s",
                    note=f"same texts, same run; fold alone {speed['fold_s_new']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section.details["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]  # others share the CPU
    section.seconds = time.perf_counter() - started
    return section


if __name__ == "__main__":
    result = main(run)
    profile = result.details["profile"]
    print(f"profile at N={profile['n']} of {profile['build']} ({profile['wall_s_under_cprofile']} s under cProfile):")
    for stage, seconds in profile["stages_s"].items():
        print(f"  {seconds:8.2f} s  {stage}")
    print("functions outside the encoder, by own time:")
    for entry in profile["top_own"][:15]:
        print(f"  {entry['tottime_s']:8.2f} s own {entry['cumtime_s']:8.2f} s cum {entry['calls']:>9} "
              f"{entry['function']}")
    print(json.dumps({k: v for k, v in result.details.items() if k != "profile"}, indent=1))
    print(f"({result.seconds:.0f} s in all)")
