"""An index that heals itself: every file of a build is checked at load, a damaged build is never
used, the previous good build stands in for it, and with none left the index is rebuilt.

The fast tests build real indexes (real FAISS, numpy and JSON files) over a small hand-made corpus
with a stand-in encoder that hashes text into vectors, so the build's manifest and each of the 7
files of a document's part can be deleted, cut in half and garbled in turn within seconds. The slow
ones do the same through the engine and the CLI with the real MiniLM model, as a user would meet it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import make_settings

from gcm_qa import index_store
from gcm_qa.engine import Engine
from gcm_qa.keyword import TermCounts
from gcm_qa.settings import Settings

DOCS = {
    "informe-argentina.txt": (
        "Informe voluntario de Argentina\n\n"
        "The Patria Grande programme regularised the status of more than 400,000 migrants from MERCOSUR "
        "countries. Applications are filed online and a provisional residence is granted while they are "
        "processed, so applicants can work legally from the first day.\n\n"
        "The National Directorate of Migration opened twelve regional offices to shorten waiting times."
    ),
    "informe-mexico.txt": (
        "Informe voluntario de México\n\n"
        "Mexico reported that children and adolescents in the context of migration are no longer held in "
        "migration stations. Since the 2020 reform they are referred to the child protection system, which "
        "places them in shelters run by the DIF family agency."
    ),
}
NEWER_DOC = (
    "informe-uruguay.txt",
    "Informe voluntario de Uruguay\n\n"
    "Uruguay applies the Ibero-American Multilateral Convention on Social Security, so pension "
    "contributions paid in Spain, Portugal or Bolivia count towards a Uruguayan retirement. The social "
    "security bank processed 3,100 totalisation requests in 2020.",
)
QUESTION = "How many totalisation requests did the social security bank of Uruguay process?"

# what the newer build writes: its manifest, and the part of the document it adds (the older build
# does not name that part, so it can stand in); a part's file is named by its path in the index
PART_FILES = ["segment.json", "chunks.jsonl", "embeddings.npy", "sentence_spans.npy", "sentence_embeddings.npy",
              "terms.npz", "sentence_terms.npz"]
BUILD_FILES = ["manifest.json", *(f"part/{name}" for name in PART_FILES)]
NEWER_ID = "informe-uruguay"


def part_folder(build: Path, doc_id: str) -> Path:
    key = index_store.read_manifest(build)["documents"][doc_id]["segment"]
    return build.parent.parent / index_store.SEGMENTS / key


def target(build: Path, file: str, doc_id: str = NEWER_ID) -> tuple[Path, str]:
    """The path of one of BUILD_FILES in ``build`` (a part's: of ``doc_id``), and how a message names it."""
    if not file.startswith("part/"):
        return build / file, file
    folder = part_folder(build, doc_id)
    name = file.removeprefix("part/")
    return folder / name, f"{index_store.SEGMENTS}/{folder.name}/{name}"


def delete(path: Path) -> None:
    path.unlink()


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garble(path: Path) -> None:
    """Flip 16 bytes in the middle: same size, different content (only a checksum tells)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(max(0, middle - 8), min(len(data), middle + 8)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES: dict[str, Callable[[Path], None]] = {"deleted": delete, "truncated": truncate, "garbled": garble}


class HashEmbedder:
    """A stand-in encoder: a unit vector seeded by the text's hash, so equal texts get equal vectors
    and a build is real in every file without loading a model. Counts what it embeds."""

    name = "test:hash-embedder"
    identity = "test:hash-embedder@1"
    dimension = 16
    multilingual = False

    def __init__(self) -> None:
        self.embedded = 0

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=self.dimension).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows) if rows else np.zeros((0, self.dimension), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str], progress: bool = False, build: bool = False) -> np.ndarray:
        return self._encode(texts)


def write_corpus(corpus: Path, docs: dict[str, str]) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (corpus / name).write_text(text, encoding="utf-8")


def two_builds(root: Path, build: Callable[[], object]) -> tuple[Path, Path]:
    """A good build of DOCS, then a newer one with NEWER_DOC added; each loaded once (so good).
    Returns (older, newer)."""
    write_corpus(root / "corpus", DOCS)
    build()
    index_store.load_index(root / "index")
    older = index_store.current_folder(root / "index")
    write_corpus(root / "corpus", dict([NEWER_DOC]))
    build()
    index_store.load_index(root / "index")
    newer = index_store.current_folder(root / "index")
    assert older is not None and newer is not None and older != newer
    return older, newer


def copy_root(template: Path, target: Path) -> Path:
    """A private copy of a corpus and its index (``current`` stays a relative link)."""
    shutil.copytree(template, target, symlinks=True)
    return target


def damaged(lines: list[str]) -> list[str]:
    """The lines saying a build is damaged, among all a build echoes ("Embedding ...")."""
    return [line for line in lines if "damaged" in line]


def one_line_naming(message: str, file: str) -> bool:
    return "\n" not in message and f"({file}: " in message and "Traceback" not in message


# --- fast: the stand-in encoder ------------------------------------------------------------------


def hash_settings(root: Path) -> Settings:
    return make_settings(root, root / "cache")


def hash_build(root: Path, embedder: HashEmbedder | None = None, **kwargs: object) -> index_store.BuildReport:
    model = embedder or HashEmbedder()
    return index_store.build(hash_settings(root), lambda: model, model.identity, progress=False, **kwargs)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("health-template")
    two_builds(root, lambda: hash_build(root))
    return root


def builds_of(root: Path) -> tuple[Path, Path]:
    """(older, newer) build folders of a copy of the template."""
    newer = index_store.current_folder(root / "index")
    assert newer is not None
    older = [f for f in (root / "index" / "builds").iterdir() if f.name != newer.name]
    assert len(older) == 1
    return older[0].resolve(), newer


def test_the_build_and_each_part_record_size_and_checksum_of_every_file(template: Path) -> None:
    folder = index_store.current_folder(template / "index")
    assert folder is not None
    assert index_store.read_manifest(folder)["files"] == {}  # a flat index: no file but the manifest
    documents = index_store.read_manifest(folder)["documents"]
    assert len({d["segment"] for d in documents.values()}) == len(documents) == 3
    for doc_id in documents:
        part = part_folder(folder, doc_id)
        record = json.loads((part / "segment.json").read_text(encoding="utf-8"))
        assert record["doc_id"] == doc_id and sorted(record["files"]) == sorted(PART_FILES[1:])
        for name, entry in record["files"].items():
            data = (part / name).read_bytes()
            assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # both builds are good and kept; the older names two of the three parts
    assert all((f / index_store.GOOD_MARKER).exists() for f in (template / "index" / "builds").iterdir())


# what the next build embeds again when one file of the added document's part is damaged: what
# only that file held (passages, sentences), or nothing when the rest still holds every vector
EMBEDDED_AGAIN = {"part/chunks.jsonl": (True, True), "part/embeddings.npy": (True, False),
                  "part/sentence_spans.npy": (False, True), "part/sentence_embeddings.npy": (False, True)}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("file", BUILD_FILES)
def test_a_damaged_file_falls_back_to_the_previous_build_and_the_next_build_heals(
    template: Path, tmp_path: Path, file: str, damage: str
) -> None:
    root = copy_root(template, tmp_path / "root")
    older, newer = builds_of(root)
    path, named = target(newer, file)
    DAMAGES[damage](path)

    # the load: the previous good build, and one line naming the file
    loaded = index_store.load_index(root / "index")
    assert loaded.folder == older and loaded.fallback_from == newer.name
    assert len(loaded.notices) == 1
    notice = loaded.notices[0]
    assert one_line_naming(notice, named), notice
    assert notice.startswith(f"index build {newer.name} is damaged (")
    assert notice.endswith(f"; using the previous build {older.name}")
    if damage == "deleted":
        assert f"({named}: missing)" in notice
    elif damage == "truncated" and file not in ("manifest.json", "part/segment.json"):
        assert f"({named}: {path.stat().st_size:,} bytes, expected " in notice

    # a damaged index is stale; the next incremental build says so in one line and writes the added
    # document's part again, embedding only what no readable file holds
    settings = hash_settings(root)
    assert index_store.is_stale(settings, HashEmbedder.identity)
    model = HashEmbedder()
    echoed: list[str] = []
    report = hash_build(root, model, echo=echoed.append)
    assert report.damaged_build == newer.name and not report.up_to_date
    assert report.notices == [notice] and damaged(echoed) == [f"gcm-qa: {notice}"]
    assert report.errors == [] and report.changed == [NEWER_DOC[0]]  # the other two are not read again
    assert model.embedded == report.embedded + report.embedded_sentences
    passages, sentences = EMBEDDED_AGAIN.get(file, (False, False))
    assert (report.embedded > 0, report.embedded_sentences > 0) == (passages, sentences)
    healed = index_store.load_index(root / "index")
    assert healed.fallback_from is None and healed.notices == []
    assert healed.folder == report.folder and healed.folder not in (older, newer)
    assert {c.doc_id for c in healed.chunks} == {"informe-argentina", "informe-mexico", "informe-uruguay"}
    assert not newer.exists()  # the damaged build is gone, the good one kept
    assert older.exists() and not index_store.is_stale(settings, HashEmbedder.identity)


@pytest.mark.parametrize("file", ["manifest.json", "part/terms.npz", "part/sentence_embeddings.npy"])
def test_with_the_corpus_of_the_previous_build_the_build_just_goes_back_to_it(
    template: Path, tmp_path: Path, file: str
) -> None:
    root = copy_root(template, tmp_path / "root")
    older, newer = builds_of(root)
    part = part_folder(newer, NEWER_ID)
    (root / "corpus" / NEWER_DOC[0]).unlink()  # the corpus the older build was made of
    path, named = target(newer, file)
    truncate(path)
    model = HashEmbedder()
    report = hash_build(root, model)
    assert report.up_to_date and report.folder == older and model.embedded == 0
    assert len(report.notices) == 1 and one_line_naming(report.notices[0], named)
    assert report.notices[0].endswith(f"; using the previous build {older.name}")
    assert index_store.current_folder(root / "index") == older
    assert not newer.exists() and not part.exists()  # no build names the added document's part now
    loaded = index_store.load_index(root / "index")
    assert loaded.folder == older and loaded.fallback_from is None


def test_a_damaged_part_both_builds_name_means_reading_that_document_again(template: Path, tmp_path: Path) -> None:
    root = copy_root(template, tmp_path / "root")
    older, newer = builds_of(root)
    path, named = target(newer, "part/embeddings.npy", "informe-argentina")
    assert target(older, "part/embeddings.npy", "informe-argentina")[0] == path  # one part, two builds
    size = path.stat().st_size
    path.write_bytes(b"")

    with pytest.raises(index_store.IndexDamaged) as caught:
        index_store.load_index(root / "index")
    message = str(caught.value)
    assert message == (f"index build {newer.name} is damaged ({named}: 0 bytes, expected {size:,}); "
                       "no earlier good build to fall back to; run 'gcm-qa index' to rebuild it")
    assert caught.value.file == named and caught.value.folder == newer
    assert isinstance(caught.value, index_store.IndexMissingError)  # reported like a missing index

    model = HashEmbedder()
    report = hash_build(root, model)
    assert not report.up_to_date and report.damaged_build == newer.name
    assert len(report.notices) == 1 and one_line_naming(report.notices[0], named)
    assert "no earlier good build to fall back to, so the index is rebuilt" in report.notices[0]
    assert report.changed == ["informe-argentina.txt"]
    argentina = index_store.read_manifest(report.folder)["documents"]["informe-argentina"]["chunks"]
    assert (report.embedded, report.embedded_sentences) == (argentina, 0)  # its sentences' vectors were readable
    loaded = index_store.load_index(root / "index")
    assert loaded.fallback_from is None and len(loaded.chunks) == report.chunks
    assert not newer.exists() and path.stat().st_size == size


def test_a_dangling_current_link_is_a_damaged_build(template: Path, tmp_path: Path) -> None:
    root = copy_root(template, tmp_path / "root")
    older, newer = builds_of(root)
    shutil.rmtree(newer)
    loaded = index_store.load_index(root / "index")
    assert loaded.folder == older
    assert loaded.notices == [f"index build {newer.name} is damaged (its folder is missing); "
                              f"using the previous build {older.name}"]
    report = hash_build(root)
    assert report.damaged_build == newer.name and report.errors == []
    assert index_store.load_index(root / "index").fallback_from is None


def test_a_part_whose_files_match_their_record_but_not_each_other_is_damaged(template: Path, tmp_path: Path) -> None:
    """Files rewritten together with their record (by hand, or a bug) pass the checksums; the load
    still checks the counts against each other and says which file disagrees, in one line."""
    root = copy_root(template, tmp_path / "root")
    older, newer = builds_of(root)
    part = part_folder(newer, NEWER_ID)
    TermCounts.count(["one text only", "and a second"], ["en", "en"]).save(part / "terms.npz")
    record = json.loads((part / "segment.json").read_text(encoding="utf-8"))
    data = (part / "terms.npz").read_bytes()
    record["files"]["terms.npz"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (part / "segment.json").write_text(json.dumps(record), encoding="utf-8")
    loaded = index_store.load_index(root / "index")
    assert loaded.folder == older
    named = f"{index_store.SEGMENTS}/{part.name}/terms.npz"
    assert loaded.notices[0].startswith(f"index build {newer.name} is damaged ({named}: term counts of 2 texts for ")
    damage = index_store.check_build(newer)
    assert damage is not None and damage.file == named and "\n" not in str(damage)


def test_an_index_of_the_earlier_format_is_upgraded_without_a_word_of_damage(template: Path, tmp_path: Path) -> None:
    """Before parts, a build held the whole corpus's files in its own folder (format 2); the first
    build after an upgrade takes its vectors and writes parts, embedding nothing and saying nothing."""
    root = copy_root(template, tmp_path / "root")
    _, newer = builds_of(root)
    manifest = index_store.read_manifest(newer)
    old = root / "index" / "builds" / "20261201T000000-format2"
    old.mkdir()
    chunks, vectors, spans, sentence_vectors = [], [], [], []
    for doc in manifest["documents"].values():
        part = newer.parent.parent / index_store.SEGMENTS / doc.pop("segment")
        offset = len(chunks)
        chunks += (part / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
        vectors.append(np.load(part / "embeddings.npy"))
        spans.append(np.load(part / "sentence_spans.npy") + np.array([offset, 0, 0]))
        sentence_vectors.append(np.load(part / "sentence_embeddings.npy"))
    (old / "chunks.jsonl").write_text("\n".join(chunks) + "\n", encoding="utf-8")
    np.save(old / "embeddings.npy", np.concatenate(vectors))
    np.save(old / "sentence_spans.npy", np.concatenate(spans))
    np.save(old / "sentence_embeddings.npy", np.concatenate(sentence_vectors))
    manifest["recipe"]["format"] = 2
    (old / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (root / "index" / "current").unlink()
    (root / "index" / "current").symlink_to(Path("builds") / old.name)
    shutil.rmtree(root / "index" / index_store.SEGMENTS)

    assert index_store.is_stale(hash_settings(root), HashEmbedder.identity)
    model = HashEmbedder()
    echoed: list[str] = []
    report = hash_build(root, model, echo=echoed.append)
    assert damaged(echoed) == [] and report.notices == [] and report.damaged_build is None
    assert model.embedded == 0 and not report.up_to_date and report.documents == 3
    assert index_store.load_index(root / "index").fallback_from is None


def test_a_build_counts_as_good_once_loaded_and_two_good_ones_are_kept(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus", DOCS)
    index_dir = tmp_path / "index"
    folders = []
    for n in range(4):
        (tmp_path / "corpus" / f"note-{n}.txt").write_text(f"Note {n} on consular protection in 202{n}.",
                                                           encoding="utf-8")
        hash_build(tmp_path)
        folder = index_store.current_folder(index_dir)
        assert folder is not None and not (folder / index_store.GOOD_MARKER).exists()  # not loaded yet
        index_store.load_index(index_dir)
        assert (folder / index_store.GOOD_MARKER).exists()
        folders.append(folder)
    kept = {f.name for f in (index_dir / "builds").iterdir()}
    # the newest build, the two good builds before it (the one it replaced among them)
    assert kept == {f.name for f in folders[-3:]}
    # and the parts they name: the two reports and the four notes (the first note's build is gone,
    # but its part is named by the later ones)
    assert len(list((index_dir / index_store.SEGMENTS).iterdir())) == 6

    # a build that never loaded is not fallen back to
    (folders[-2] / index_store.GOOD_MARKER).unlink()
    (part_folder(folders[-1], "note-3") / "embeddings.npy").unlink()
    assert index_store.load_index(index_dir).folder == folders[-3]


# --- slow: the real model, through the engine and the CLI ----------------------------------------


@pytest.fixture(scope="module")
def model_template(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, embedder) -> Path:
    root = tmp_path_factory.mktemp("health-model")
    engine = Engine(make_settings(root, cache_dir), embedder=embedder)
    two_builds(root, engine.build)
    return root


@pytest.mark.slow  # builds with the real model
@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("file", BUILD_FILES)
def test_asking_with_a_damaged_file_answers_from_a_good_build(
    model_template: Path, tmp_path: Path, cache_dir: Path, embedder, file: str, damage: str
) -> None:
    root = copy_root(model_template, tmp_path / "root")
    older, newer = builds_of(root)
    path, named = target(newer, file)
    DAMAGES[damage](path)
    engine = Engine(make_settings(root, cache_dir), embedder=embedder)  # a fresh process, in effect
    echoed: list[str] = []
    report = engine.ensure_index(echo=echoed.append)
    assert report is not None and report.damaged_build == newer.name
    said = damaged(echoed)
    assert len(said) == 1 and one_line_naming(said[0], named), echoed
    assert said[0].endswith(f"; using the previous build {older.name}")
    answer = engine.ask(QUESTION)
    assert not answer.abstained and "3,100" in answer.answer
    assert engine.index.folder not in (older, newer) and engine.index.fallback_from is None
    assert not newer.exists()


@pytest.mark.slow  # builds with the real model
def test_a_damaged_part_both_builds_name_the_engine_reads_it_again_and_answers(
    model_template: Path, tmp_path: Path, cache_dir: Path, embedder
) -> None:
    root = copy_root(model_template, tmp_path / "root")
    _, newer = builds_of(root)
    path, named = target(newer, "part/chunks.jsonl", "informe-mexico")
    delete(path)
    engine = Engine(make_settings(root, cache_dir), embedder=embedder)
    echoed: list[str] = []
    report = engine.ensure_index(echo=echoed.append)
    assert report is not None and not report.up_to_date and report.damaged_build == newer.name
    assert damaged(echoed) == [f"gcm-qa: index build {newer.name} is damaged ({named}: missing); no earlier good "
                               "build to fall back to, so the index is rebuilt from what can still be read"]
    assert report.embedded > 0  # without its chunks the part's vectors cannot be matched to text
    assert report.changed == ["informe-mexico.txt"]
    answer = engine.ask(QUESTION)
    assert not answer.abstained and "3,100" in answer.answer


def run_cli(root: Path, cache_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gcm_qa.cli", *args, "--corpus", str(root / "corpus"), "--index-dir",
         str(root / "index"), "--cache-dir", str(cache_dir)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.slow  # starts a process
def test_gcm_qa_ask_on_an_empty_vector_file_says_so_in_one_line(
    model_template: Path, tmp_path: Path, cache_dir: Path
) -> None:
    root = copy_root(model_template, tmp_path / "root")
    older, newer = builds_of(root)
    path, named = target(newer, "part/embeddings.npy")
    size = path.stat().st_size
    path.write_bytes(b"")
    result = run_cli(root, cache_dir, "ask", QUESTION)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "damaged" in line]
    assert lines == [f"gcm-qa: index build {newer.name} is damaged ({named}: 0 bytes, expected {size:,}); "
                     f"using the previous build {older.name}"]
    assert "3,100" in result.stdout

    # and the index it left behind is whole: the next ask says nothing
    again = run_cli(root, cache_dir, "ask", QUESTION)
    assert again.returncode == 0 and "damaged" not in again.stderr
