"""The on-disk index: build it incrementally, swap it in atomically, load it without pickle.

Layout of ``index/``::

    current -> builds/20261128T101500-3f2a9c1e   (a symlink, replaced atomically)
    builds/<id>/manifest.json   recipe, settings, per-document hashes and metadata
    builds/<id>/chunks.jsonl    one chunk and its metadata per line
    builds/<id>/embeddings.npy  float32, L2-normalised, row i = chunk i
    builds/<id>/faiss.index     IndexFlatIP over those rows, or IndexHNSWFlat (inner product) for a large
                                corpus (retrieval.index_type; the manifest's ``faiss`` says which)
    builds/<id>/bm25/           bm25s arrays (.npy) and vocabulary (JSON)
    builds/<id>/sentence_spans.npy, sentence_embeddings.npy, bm25_sentences/
                                the same per sentence (chunk index, start, end inside the chunk):
                                short questions match one sentence better than a whole chunk, and
                                the answerer quotes sentences without embedding them again

A build writes a fresh folder and only then repoints ``current``, so a crash at any moment leaves
the previous index whole. Embeddings are reused by the model's identity and the hash of the exact
text embedded, so only new or changed passages meet the model: a new chunker or cleaner re-embeds
only the passages whose text it changed, and a different model re-embeds everything. A shipped
corpus comes with its vectors (``index/vectors/<model>.npz``, see :mod:`gcm_qa.vector_store`), so a
fresh clone does not spend minutes embedding the report before its first answer.

An index heals itself. Each build's manifest records the size and sha256 of every file it wrote, and
a load checks them (hashing the shipped report's 9 MB build costs 10-20 ms) before handing the
files to faiss, numpy and bm25s, whose errors on a cut-short file are raw tracebacks. A build that
fails the check, or whose files will not load, raises :class:`IndexDamaged` naming the file and what
is wrong with it, and is never used: the load falls back to the newest *good* build (one that has
loaded successfully once, marked by a ``.loaded`` file; the last few are kept for this), and the next
build (``ensure_index`` calls one, since a damaged index counts as stale) repoints ``current`` to that
good build, or rebuilds from whatever can still be read when there is none.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np
from tqdm import tqdm

from gcm_qa import corpus, profiles, vector_store
from gcm_qa.chunking import chunk_document
from gcm_qa.cleaning import clean_pages, table_of_contents
from gcm_qa.embedder import Embedder
from gcm_qa.forms import FormReading, read_form
from gcm_qa.keyword import KeywordIndex
from gcm_qa.loaders import DocumentError, load
from gcm_qa.sentences import split_sentences
from gcm_qa.settings import KeywordSettings, RetrievalSettings, Settings
from gcm_qa.structure import layout, section_pages
from gcm_qa.types import Chunk, DocMeta

log = logging.getLogger(__name__)

# 2: the manifest records every file's size and sha256 (``files``), checked at load. An index of
# format 1 is rebuilt once (its vectors are reused), so every build in use can be checked.
FORMAT_VERSION = 2
# Good builds (loaded successfully at least once) kept besides the newest, to fall back to when the
# newest is damaged; each costs the index's size again on disk (9 MB for the shipped report). A knob
# for the code, not a setting: fewer than one would leave nothing to fall back to.
KEEP_GOOD_BUILDS = 2
GOOD_MARKER = ".loaded"  # written into a build's folder after its first successful load
MANIFEST_FILE = "manifest.json"
# The code that turns a file into chunks, sentences and keyword tokens. Its hash is part of the
# recipe, so an upgrade that changes cleaning, chunking or tokenising rebuilds the index instead of
# mixing old and new chunks.
CHUNKING_MODULES = ("loaders", "cleaning", "structure", "chunking", "sentences", "gcm", "types", "keyword",
                    "stopwords", "profiles", "forms")


@functools.lru_cache(maxsize=1)
def loader_version() -> str:
    h = hashlib.sha256()
    package = Path(__file__).parent
    for name in CHUNKING_MODULES:
        h.update((package / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


class IndexMissingError(Exception):
    """No index has been built in this folder yet."""


class IndexDamaged(IndexMissingError):
    """A build whose files are missing, cut short, garbled or unreadable.

    One error type for every way a build can be broken, so callers (and the user) get one line
    naming the file and the reason instead of a traceback from faiss, numpy, json or bm25s. It is an
    :class:`IndexMissingError`, so code that already reports a missing index in one line (the CLI)
    reports this one too. ``problems`` holds every damaged file found (file -> reason); the message
    names the first.
    """

    def __init__(self, folder: Path, file: str, reason: str, remedy: str = "",
                 problems: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.file = file
        self.reason = reason
        self.problems = problems if problems is not None else {file: reason}
        where = f"{file}: {reason}" if file else reason
        self.description = f"index build {folder.name} is damaged ({where})"
        super().__init__(self.description + (f"; {remedy}" if remedy else ""))


@dataclass
class LoadedIndex:
    folder: Path
    manifest: dict[str, Any]
    chunks: list[Chunk]
    embeddings: np.ndarray
    faiss_index: faiss.Index
    keyword: KeywordIndex
    sentence_spans: np.ndarray  # int64 (n, 3): chunk index, start, end within the chunk text
    sentence_embeddings: np.ndarray
    sentence_keyword: KeywordIndex
    # set when the build ``current`` points to was damaged and this one was loaded instead: the
    # damaged build's id, and the one line saying so (for the caller to show)
    fallback_from: str | None = None
    notices: list[str] = field(default_factory=list)
    _positions: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._positions = {c.chunk_id: i for i, c in enumerate(self.chunks)}

    def sentence_rows(self, chunk_pos: int) -> range:
        """Rows of ``sentence_spans`` belonging to one chunk (spans are sorted by chunk)."""
        owners = self.sentence_spans[:, 0]
        lo = int(np.searchsorted(owners, chunk_pos, side="left"))
        hi = int(np.searchsorted(owners, chunk_pos, side="right"))
        return range(lo, hi)

    def position(self, chunk_id: str) -> int:
        return self._positions[chunk_id]

    @property
    def index_type(self) -> str:
        """'flat' or 'hnsw': the kind of ``faiss_index`` (a build from before the choice is flat)."""
        return str(self.manifest.get("faiss", {}).get("type", "flat"))


@dataclass
class BuildReport:
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    embedded_sentences: int = 0
    seconds: float = 0.0
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    up_to_date: bool = False
    folder: Path | None = None
    # a damaged current build found by this build: its id, and one line each on what was done
    # ("...; using the previous build Y" when up_to_date, else the index was rebuilt)
    damaged_build: str | None = None
    notices: list[str] = field(default_factory=list)
    # per questionnaire read in this build: "<file>: form read: 14 answers to 15 questions", or that
    # no question/answer layout was found and it is indexed as ordinary passages
    forms: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.up_to_date:
            return f"Index up to date: {self.documents} documents, {self.chunks} chunks."
        text = (
            f"Indexed {self.documents} documents, {self.chunks} chunks "
            f"({self.embedded} embedded, {self.reused} reused) in {self.seconds:.1f} s"
        )
        if self.errors:
            text += f"; {len(self.errors)} file(s) skipped"
        return text + "." + "".join(f"\n  {line}" for line in self.forms)


def recipe(settings: Settings, model_identity: str) -> dict[str, Any]:
    """Everything that shapes the vectors, chunks and keyword scores. Any change means a rebuild
    (vectors are still reused for unchanged text while ``model`` is the same). The documents'
    profiles shape headings, pages and tags, so their hash is here too; so do the input limits,
    which decide which files are read at all (raising one re-reads a file it refused)."""
    return {
        "format": FORMAT_VERSION,
        "loader_version": loader_version(),
        "model": model_identity,
        "chunk_chars": settings.chunking.chunk_chars,
        "overlap_chars": settings.chunking.overlap_chars,
        "bm25_k1": settings.keyword.k1,
        "bm25_b": settings.keyword.b,
        "profiles": profiles.fingerprint(settings.paths.corpus_dir),
        "limits": settings.limits.model_dump(),
        "forms": settings.forms.model_dump(),
        "faiss": index_recipe(settings.retrieval),
    }


def index_recipe(retrieval: RetrievalSettings) -> dict[str, Any]:
    """The settings that shape the stored FAISS index: its type, and for HNSW the graph's M and
    efConstruction (efSearch is a search-time knob, not here). 'auto' keeps its threshold, since the
    type it resolves to depends on it."""
    kind = retrieval.index_type
    out: dict[str, Any] = {"type": kind}
    if kind == "auto":
        out["hnsw_min_chunks"] = retrieval.hnsw_min_chunks
    if kind != "flat":
        out["hnsw_m"] = retrieval.hnsw_m
        out["hnsw_ef_construction"] = retrieval.hnsw_ef_construction
    return out


def chosen_index_type(n_chunks: int, retrieval: RetrievalSettings) -> str:
    """'flat' or 'hnsw' for a corpus of ``n_chunks`` passages."""
    if retrieval.index_type != "auto":
        return retrieval.index_type
    return "hnsw" if n_chunks >= retrieval.hnsw_min_chunks else "flat"


def make_faiss_index(matrix: np.ndarray, retrieval: RetrievalSettings) -> tuple[faiss.Index, dict[str, Any]]:
    """The FAISS index over ``matrix`` (L2-normalised rows, so inner product is cosine), and what
    the manifest records of it."""
    dim = int(matrix.shape[1])
    kind = chosen_index_type(int(matrix.shape[0]), retrieval)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, retrieval.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = retrieval.hnsw_ef_construction
        index.add(matrix)
        return index, {"type": "hnsw", "hnsw_m": retrieval.hnsw_m,
                       "hnsw_ef_construction": retrieval.hnsw_ef_construction}
    index = faiss.IndexFlatIP(dim)
    index.add(matrix)
    return index, {"type": "flat"}


def current_folder(index_dir: Path) -> Path | None:
    link = index_dir / "current"
    return link.resolve() if link.exists() else None


def _current_target(index_dir: Path) -> Path | None:
    """Where ``current`` points, even when that folder is gone (a dangling link is a damaged build,
    not a missing index)."""
    link = index_dir / "current"
    if link.is_symlink() or link.exists():
        return link.resolve()
    return None


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time (the chat's upload and ``index --watch`` may both rebuild)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def building(index_dir: Path) -> bool:
    """Whether another process holds the build lock now (a question need not wait for it)."""
    lock = index_dir / ".lock"
    if not lock.exists():
        return False
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))


def read_chunks(folder: Path) -> list[Chunk]:
    with (folder / "chunks.jsonl").open(encoding="utf-8") as f:
        return [Chunk.from_dict(json.loads(line)) for line in f if line.strip()]


# --- checking a build ----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _file_record(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of a build folder but the manifest itself (which cannot hold
    its own checksum; a damaged manifest shows as JSON that does not parse or a record that does not
    match) and dot-files (the good-build marker comes later)."""
    record: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel != MANIFEST_FILE and not path.name.startswith("."):
            record[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    return record


# folder -> (what its files looked like when last hashed, what was wrong then): the staleness check
# and the load both verify a build, and the second should not hash 9 MB again for nothing
_VERIFIED: dict[Path, tuple[tuple[Any, ...], dict[str, str]]] = {}


def _problems(folder: Path) -> dict[str, str]:
    """Every file of a build that is missing or differs from the manifest's record (file -> reason);
    empty for a sound build. A build of format 1 has no record and passes here (its load still
    turns any error into IndexDamaged)."""
    if not folder.is_dir():
        return {"": "its folder is missing"}
    try:
        manifest = read_manifest(folder)
    except FileNotFoundError:
        return {MANIFEST_FILE: "missing"}
    except (OSError, ValueError):
        return {MANIFEST_FILE: "not valid JSON (cut short or garbled)"}
    if not isinstance(manifest, dict):
        return {MANIFEST_FILE: "not a manifest"}
    record = manifest.get("files")
    if record is None:
        return {}
    try:
        expected = {str(rel): (int(e["size"]), str(e["sha256"])) for rel, e in record.items()}
    except (AttributeError, KeyError, TypeError, ValueError):
        return {MANIFEST_FILE: "its record of the build's files is garbled"}
    problems: dict[str, str] = {}
    stats: list[tuple[str, int, int, int]] = []
    for rel, (size, _) in expected.items():
        try:
            st = (folder / rel).stat()
        except OSError:
            problems[rel] = "missing"
            continue
        if st.st_size != size:
            problems[rel] = f"{st.st_size:,} bytes, expected {size:,}"
        stats.append((rel, st.st_size, st.st_mtime_ns, st.st_ino))
    if problems:
        return problems
    manifest_stat = (folder / MANIFEST_FILE).stat()
    signature = (manifest_stat.st_mtime_ns, manifest_stat.st_size, *stats)
    cached = _VERIFIED.get(folder)
    if cached is not None and cached[0] == signature:
        return dict(cached[1])
    for rel, (_, sha) in expected.items():
        if _sha256(folder / rel) != sha:
            problems[rel] = "garbled (its checksum does not match)"
    _VERIFIED[folder] = (signature, dict(problems))
    return problems


def verify_build(folder: Path) -> None:
    """Raise IndexDamaged unless every file of the build matches the manifest's record (sizes, then
    sha256 of every file: 10-20 ms for the shipped report's 9 MB, cached while no file changes)."""
    problems = _problems(folder)
    if problems:
        file, reason = next(iter(problems.items()))
        raise IndexDamaged(folder, file, reason, problems=problems)


def _read(folder: Path, name: str, reader: Callable[[], Any]) -> Any:
    """``reader()``, with any exception of the library behind it turned into IndexDamaged for ``name``."""
    try:
        return reader()
    except IndexDamaged:
        raise
    except Exception as exc:  # faiss raises RuntimeError, numpy ValueError, bm25s anything
        if name == "faiss.index":
            reason = "not a readable FAISS index"
        else:
            first = (str(exc).strip().splitlines() or [""])[0]
            reason = f"cannot be read ({type(exc).__name__}: {first[:80]})"
        raise IndexDamaged(folder, name, reason) from None


def _load_array(path: Path, columns: int | None = None) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2 or (columns is not None and array.shape[1] != columns):
        raise ValueError(f"an array of shape {array.shape}")
    return array


def _documents(keyword: KeywordIndex) -> int:
    return int(keyword.retriever.scores["num_docs"])


def _faiss_type(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    return "flat" if isinstance(index, faiss.IndexFlat) else type(index).__name__


def _load_build(folder: Path) -> LoadedIndex:
    """One build, checked: its files against the manifest's record, then loaded with every library
    error turned into IndexDamaged, then its parts against each other."""
    verify_build(folder)
    manifest = _read(folder, MANIFEST_FILE, lambda: read_manifest(folder))
    if not isinstance(manifest.get("documents"), dict):
        raise IndexDamaged(folder, MANIFEST_FILE, "it lists no documents")
    chunks = _read(folder, "chunks.jsonl", lambda: read_chunks(folder))
    embeddings = _read(folder, "embeddings.npy", lambda: _load_array(folder / "embeddings.npy"))
    index = _read(folder, "faiss.index", lambda: faiss.read_index(str(folder / "faiss.index")))
    keyword = _read(folder, "bm25", lambda: KeywordIndex.load(folder / "bm25"))
    spans = _read(folder, "sentence_spans.npy", lambda: _load_array(folder / "sentence_spans.npy", 3))
    sentence_vectors = _read(folder, "sentence_embeddings.npy",
                             lambda: _load_array(folder / "sentence_embeddings.npy"))
    sentence_keyword = _read(folder, "bm25_sentences", lambda: KeywordIndex.load(folder / "bm25_sentences"))
    n = len(chunks)
    mismatch = [
        ("chunks.jsonl", n == 0, "no chunks"),
        ("embeddings.npy", embeddings.shape[0] != n, f"{embeddings.shape[0]:,} vectors for {n:,} chunks"),
        ("faiss.index", index.ntotal != n, f"{index.ntotal:,} vectors for {n:,} chunks"),
        ("faiss.index", index.d != embeddings.shape[1], f"dimension {index.d}, the embeddings' {embeddings.shape[1]}"),
        ("faiss.index", _faiss_type(index) != manifest.get("faiss", {}).get("type", "flat"),
         f"a {_faiss_type(index)} index where the manifest records {manifest.get('faiss', {}).get('type', 'flat')}"),
        ("bm25", {len(keyword.languages), _documents(keyword)} != {n}, f"{_documents(keyword):,} passages and "
         f"{len(keyword.languages):,} languages for {n:,} chunks"),
        ("sentence_embeddings.npy", len(sentence_vectors) != len(spans),
         f"{len(sentence_vectors):,} vectors for {len(spans):,} sentences"),
        ("sentence_spans.npy", bool(len(spans)) and not 0 <= int(spans[:, 0].min()) <= int(spans[:, 0].max()) < n,
         "sentences of chunks that do not exist"),
        ("bm25_sentences", {len(sentence_keyword.languages), _documents(sentence_keyword)} != {max(len(spans), 1)},
         f"{_documents(sentence_keyword):,} sentences and {len(sentence_keyword.languages):,} languages "
         f"for {len(spans):,} spans"),
    ]
    for name, wrong, reason in mismatch:
        if wrong:
            raise IndexDamaged(folder, name, reason)
    return LoadedIndex(folder, manifest, chunks, embeddings, index, keyword, spans, sentence_vectors,
                       sentence_keyword)


def check_build(folder: Path) -> IndexDamaged | None:
    """What is wrong with a build (None if it loads): the full load, without keeping it."""
    try:
        _load_build(folder)
    except IndexDamaged as damage:
        return damage
    return None


def _good_builds(index_dir: Path, exclude: Path | None = None) -> list[Path]:
    """Builds that have loaded successfully once, newest first (by when their manifest was written);
    resolved paths, like :func:`current_folder`'s, so they compare equal to it."""
    builds = (index_dir / "builds").resolve()
    if not builds.is_dir():
        return []

    def written(folder: Path) -> tuple[int, str]:
        try:
            return (folder / MANIFEST_FILE).stat().st_mtime_ns, folder.name
        except OSError:
            return 0, folder.name

    found = [f for f in builds.iterdir()
             if not f.name.startswith(".") and (exclude is None or f.name != exclude.name)
             and (f / GOOD_MARKER).exists()]
    return sorted(found, key=written, reverse=True)


def _fallback(index_dir: Path, damaged: Path) -> tuple[Path, LoadedIndex] | None:
    """The newest good build other than ``damaged`` that still loads, loaded."""
    for folder in _good_builds(index_dir, exclude=damaged):
        try:
            return folder, _load_build(folder)
        except IndexDamaged as damage:
            log.warning("%s", damage)
    return None


def _mark_good(folder: Path) -> None:
    marker = folder / GOOD_MARKER
    if not marker.exists():
        with contextlib.suppress(OSError):  # a read-only index still loads
            marker.touch()


def load_index(index_dir: Path) -> LoadedIndex:
    """The index ``current`` points to, checked (see :func:`verify_build`).

    When that build is damaged, the newest good build is loaded instead: the returned index's
    ``fallback_from`` names the damaged build and ``notices`` holds the line to show. ``current`` is
    left alone here (the next build, under the build lock, repoints it). With no good build to fall
    back to this raises IndexDamaged, and ``gcm-qa index`` (or ``Engine.ensure_index``, which treats
    a damaged index as stale) rebuilds; with no build at all, IndexMissingError.
    """
    folder = _current_target(index_dir)
    if folder is None:
        raise IndexMissingError(f"no index in {index_dir} (run 'gcm-qa index')")
    try:
        loaded = _load_build(folder)
    except IndexDamaged as damage:
        found = _fallback(index_dir, folder)
        if found is None:
            raise IndexDamaged(folder, damage.file, damage.reason, "no earlier good build to fall back to; "
                               "run 'gcm-qa index' to rebuild it", damage.problems) from None
        good, loaded = found
        loaded.fallback_from = folder.name
        loaded.notices.append(f"{damage.description}; using the previous build {good.name}")
        log.warning("%s", loaded.notices[-1])
        return loaded
    _mark_good(folder)
    return loaded


def scan(settings: Settings) -> tuple[list[tuple[Path, str, dict[str, Any] | None]], list[str]]:
    """Files of the corpus with their hashes and manifest entries (errors for a bad manifest)."""
    corpus_dir = settings.paths.corpus_dir
    problems: list[str] = []  # entries that break the manifest's schema: skipped, each named
    entries = corpus.read_manifest(corpus_dir, problems)
    files = [(p, corpus.sha256_file(p), entries.get(p.name)) for p in corpus.list_files(corpus_dir)]
    missing = [f"{name}: listed in {corpus.MANIFEST} but not in the folder" for name in entries
               if not (corpus_dir / name).exists()]
    return files, problems + missing


def is_stale(settings: Settings, model_identity: str) -> bool:
    """True when the corpus or the recipe no longer matches the current index."""
    folder = current_folder(settings.paths.index_dir)
    if folder is None:
        return True
    try:
        verify_build(folder)  # a damaged index is stale: the build falls back or rebuilds
        manifest = read_manifest(folder)
        if manifest.get("recipe") != recipe(settings, model_identity):
            return True
        indexed = {d["file"]: d for d in manifest["documents"].values()}
    except (IndexDamaged, AttributeError, KeyError, TypeError):
        return True
    files, _ = scan(settings)
    failed = manifest.get("failed", {})
    current = {p.name: sha for p, sha, _ in files}
    for name, sha in current.items():
        if name in indexed and indexed[name]["sha256"] == sha:
            continue
        if failed.get(name) == sha:  # known bad file, unchanged: rebuilding would fail again
            continue
        return True
    entries = {p.name: e for p, _, e in files}
    for name, doc in indexed.items():
        if name not in current:
            return True
        entry = entries.get(name)
        if entry and any(doc["meta"].get(k) != v for k, v in entry.items()):
            return True
    return False


class Prepared(NamedTuple):
    """One file read for the index: its metadata, its chunks and, for a questionnaire, its form."""

    meta: DocMeta
    chunks: list[Chunk]
    form: FormReading | None  # None for a document that is not a questionnaire


def prepare_document(path: Path, entry: dict[str, Any] | None, settings: Settings) -> Prepared:
    """Load, clean, lay out and chunk one file with its profile (found in the corpus folder by the
    document's id and kind), and read a questionnaire's form. Raises DocumentError for unreadable
    input, ProfileError for a bad profile."""
    raw = load(path, settings.limits, (entry or {}).get("language"))  # a scan is OCR'd in the manifest's language
    paragraphs = clean_pages(raw.pages)
    if not paragraphs:
        raise DocumentError(path, "no text left after cleaning")
    text = "\n\n".join(p.text for p in paragraphs)  # the laid-out text, which needs the profile
    meta = corpus.merge_meta(corpus.infer_meta(path, text, raw.title), entry)
    profile = profiles.for_document(settings.paths.corpus_dir, meta.doc_id, meta.kind)
    doc = layout(paragraphs, profile)
    if profile.pages == "contents" and all(page is None for page, _ in raw.pages):  # no page breaks
        doc = replace(doc, section_pages=section_pages(doc.sections, table_of_contents(raw.pages)))
    chunks = chunk_document(meta, doc, settings.chunking.chunk_chars, settings.chunking.overlap_chars, profile)
    if not chunks:
        raise DocumentError(path, "no chunks could be made from the text")
    for chunk in chunks:  # text OCR read is cited as such, so a reader checks it against the scan
        pages = range(chunk.page_start or 0, (chunk.page_end or chunk.page_start or 0) + 1)
        chunk.ocr = chunk.page_start is not None and not raw.ocr_pages.isdisjoint(pages)
    form = read_form(doc, profile, settings.forms.min_questions) if meta.kind == "questionnaire" else None
    return Prepared(meta, chunks, form)


def build(
    settings: Settings,
    embedder: Callable[[], Embedder],
    model_identity: str,
    full: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = lambda _m: None,
) -> BuildReport:
    """(Re)build the index for ``settings.paths.corpus_dir``; see the module docstring."""
    started = time.perf_counter()
    index_dir = settings.paths.index_dir
    with build_lock(index_dir):
        return _build_locked(settings, embedder, model_identity, full, progress, echo, started)


def _build_locked(
    settings: Settings,
    embedder: Callable[[], Embedder],
    model_identity: str,
    full: bool,
    progress: bool,
    echo: Callable[[str], None],
    started: float,
) -> BuildReport:
    index_dir = settings.paths.index_dir
    report = BuildReport()
    if not settings.paths.corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {settings.paths.corpus_dir}")
    files, manifest_errors = scan(settings)
    report.errors.extend(manifest_errors)
    the_recipe = recipe(settings, model_identity)

    previous_folder = _current_target(index_dir)
    source = previous_folder  # the build whose manifest and chunks are reused
    damage: IndexDamaged | None = None
    prev_manifest: dict[str, Any] = {}
    prev_chunks: dict[str, list[Chunk]] = {}
    # text hash -> vector, for this model: the shipped vectors, then the previous build's
    known_vectors = {} if full else vector_store.load(settings.paths.vectors_dir, model_identity)
    if previous_folder is not None and not full:
        damage = check_build(previous_folder)
        unreadable = damage.problems if damage is not None else {}
        if damage is not None:
            source = _heal(index_dir, previous_folder, damage, report, echo)
            if source != previous_folder:  # what the damaged build holds that can be read is not embedded again
                known_vectors.update(_reusable(previous_folder, model_identity, the_recipe, unreadable)[2])
                unreadable = {}
        if source is not None:
            prev_manifest, prev_chunks, vectors = _reusable(source, model_identity, the_recipe, unreadable)
            known_vectors.update(vectors)
    elif previous_folder is not None and check_build(previous_folder) is None:
        # a full build reads and embeds everything again, but a document that no longer reads keeps
        # the version the previous build indexed (its vectors are not reused: they are embedded anew)
        prev_manifest, prev_chunks, _ = _reusable(previous_folder, model_identity, the_recipe, {})
    prev_docs_by_file = {d["file"]: (doc_id, d) for doc_id, d in prev_manifest.get("documents", {}).items()}

    documents: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    all_chunks: list[Chunk] = []
    used_ids: set[str] = set()
    bar = tqdm(files, desc="Reading", unit="doc", disable=not progress, leave=False)
    for path, sha, entry in bar:
        bar.set_postfix_str(path.name[:40])
        previous = prev_docs_by_file.get(path.name)
        reused = None
        if not full and previous is not None and previous[1]["sha256"] == sha and previous[0] in prev_chunks:
            doc_id, doc = previous
            meta = corpus.merge_meta(DocMeta(**doc["meta"]), entry)
            # a document the manifest now calls a questionnaire (or no longer does) is read again
            if (meta.kind == "questionnaire") == ("form" in doc):
                reused = meta, [_with_meta(c, meta) for c in prev_chunks[doc_id]], doc.get("form")
        if reused is not None:
            meta, chunks, form = reused
        else:
            try:
                meta, chunks, reading = prepare_document(path, entry, settings)
            except DocumentError as exc:
                failed[path.name] = sha
                report.errors.append(str(exc))
                if previous is not None and previous[0] in prev_chunks:
                    # keep the last good version rather than losing an indexed document
                    doc_id, doc = previous
                    report.errors[-1] += " (kept the previously indexed version)"
                    meta = DocMeta(**doc["meta"])
                    documents[doc_id] = doc
                    all_chunks.extend(prev_chunks[doc_id])
                    used_ids.add(doc_id)
                continue
            except Exception as exc:
                failed[path.name] = sha
                report.errors.append(f"{path.name}: could not be read ({type(exc).__name__}: {exc})")
                continue
            report.changed.append(path.name)
            form = reading.to_dict() if reading is not None else None
            if reading is not None:
                report.forms.append(f"{path.name}: {reading.note}")
        meta, chunks = _unique_id(meta, chunks, used_ids)
        used_ids.add(meta.doc_id)
        documents[meta.doc_id] = {"file": path.name, "sha256": sha, "chunks": len(chunks), "meta": meta.to_dict()}
        if form is not None:
            documents[meta.doc_id]["form"] = form
        all_chunks.extend(chunks)

    current_files = {p.name for p, _, _ in files}
    report.removed = sorted(n for n in prev_docs_by_file if n not in current_files)
    report.documents = len(documents)
    report.chunks = len(all_chunks)

    prev_failed = prev_manifest.get("failed", {})
    unchanged = (
        not full
        and prev_manifest
        and (damage is None or source != previous_folder)  # a damaged build is written anew
        and not report.changed
        and not report.removed
        and failed == prev_failed
        and {d: v["meta"] for d, v in documents.items()}
        == {d: v["meta"] for d, v in prev_manifest["documents"].items()}
    )
    if unchanged:
        report.up_to_date = True
        report.folder = source
        if source is not None and source != previous_folder:  # the previous good build takes over
            _point_current(index_dir, source)
            _prune(index_dir, source, None)
        report.reused = report.chunks
        report.seconds = time.perf_counter() - started
        return report

    if not all_chunks:
        raise DocumentError(settings.paths.corpus_dir, "no document in the corpus could be indexed")
    texts = [c.embed_text() for c in all_chunks]
    matrix, report.embedded = _embed(texts, known_vectors, embedder, "passages", progress, echo)
    report.reused = len(all_chunks) - report.embedded
    dim = int(matrix.shape[1])

    spans = [(ci, s.start, s.end) for ci, c in enumerate(all_chunks) for s in split_sentences(c.text, ci)]
    sentence_texts = [all_chunks[ci].text[a:b] for ci, a, b in spans]
    sentence_matrix, report.embedded_sentences = _embed(sentence_texts, known_vectors, embedder, "sentences",
                                                        progress, echo)
    if not spans:
        sentence_matrix = np.zeros((0, dim), dtype=np.float32)
    sentence_data = (np.array(spans, dtype=np.int64).reshape(-1, 3), sentence_matrix, sentence_texts)

    manifest = {
        "recipe": the_recipe,
        "dimension": dim,
        "settings": json.loads(settings.model_dump_json()),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "documents": documents,
        "failed": failed,
    }
    report.folder = _write_and_swap(index_dir, manifest, all_chunks, matrix, sentence_data, settings.keyword,
                                    settings.retrieval, keep_previous=damage is None)
    report.seconds = time.perf_counter() - started
    return report


def _embed(
    texts: list[str],
    known: dict[str, np.ndarray],
    embedder: Callable[[], Embedder],
    what: str,
    progress: bool,
    echo: Callable[[str], None],
) -> tuple[np.ndarray, int]:
    """The vectors of ``texts`` in order, embedding only those ``known`` lacks (which it then holds);
    returns the matrix and how many were embedded."""
    keys = [text_key(t) for t in texts]
    missing = sorted({k: i for i, k in enumerate(keys) if k not in known}.values())
    if missing:
        model = embedder()
        echo(f"Embedding {len(missing)} {what} with {model.name} ...")
        new = model.encode_documents([texts[i] for i in missing], progress=progress)
        for i, vector in zip(missing, new, strict=True):
            known[keys[i]] = vector
    if not keys:
        return np.zeros((0, 0), dtype=np.float32), 0
    return np.stack([known[k] for k in keys]).astype(np.float32), len(missing)


def _heal(
    index_dir: Path, damaged: Path, damage: IndexDamaged, report: BuildReport, echo: Callable[[str], None]
) -> Path | None:
    """A build found the current build damaged: choose what to build from (the newest good build,
    else the damaged build itself for whatever it still holds that can be read, else nothing), and
    say so in one line. The damaged build loses its good mark, so it is never fallen back to."""
    with contextlib.suppress(OSError):
        (damaged / GOOD_MARKER).unlink(missing_ok=True)
    found = _fallback(index_dir, damaged)
    report.damaged_build = damaged.name
    if found is not None:
        source: Path | None = found[0]
        remedy = f"using the previous build {found[0].name}"
    else:
        source = damaged if damaged.is_dir() else None
        remedy = "no earlier good build to fall back to, so the index is rebuilt from what can still be read"
    report.notices.append(f"{damage.description}; {remedy}")
    echo(f"gcm-qa: {report.notices[-1]}")
    return source


def _reusable(
    folder: Path, model_identity: str, the_recipe: dict[str, Any], unreadable: dict[str, str]
) -> tuple[dict[str, Any], dict[str, list[Chunk]], dict[str, np.ndarray]]:
    """What a new build can take from an earlier one: its manifest and chunks by document (same
    recipe) and its vectors (same model). Files in ``unreadable``, and whatever fails to read, are
    left out rather than raised: a build must get past a damaged predecessor."""
    if MANIFEST_FILE in unreadable or "" in unreadable:
        return {}, {}, {}
    try:
        manifest = read_manifest(folder)
        same_model = manifest["recipe"]["model"] == model_identity
    except Exception:
        return {}, {}, {}
    vectors = _build_vectors(folder, unreadable) if same_model else {}
    if manifest.get("recipe") != the_recipe or "chunks.jsonl" in unreadable:
        return {}, {}, vectors
    by_doc: dict[str, list[Chunk]] = {}
    try:
        for chunk in read_chunks(folder):
            by_doc.setdefault(chunk.doc_id, []).append(chunk)
        for doc in manifest["documents"].values():  # what the build reads of each document
            DocMeta(**doc["meta"])
            str(doc["file"]), str(doc["sha256"])
        dict(manifest.get("failed", {}))
    except Exception:
        return {}, {}, vectors
    return manifest, by_doc, vectors


def _build_vectors(folder: Path, unreadable: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Text hash -> vector for every passage and sentence of a build that can be read: nothing of
    a file in ``unreadable`` and nothing whose counts do not match."""
    skip = unreadable or {}
    found: dict[str, np.ndarray] = {}
    if "chunks.jsonl" in skip:
        return found
    try:
        chunks = read_chunks(folder)
        if "embeddings.npy" not in skip:
            vectors = _load_array(folder / "embeddings.npy")
            if len(vectors) == len(chunks):
                found.update((text_key(c.embed_text()), v) for c, v in zip(chunks, vectors, strict=True))
        if "sentence_spans.npy" in skip or "sentence_embeddings.npy" in skip:
            return found
        spans = _load_array(folder / "sentence_spans.npy", 3)
        sentence_vectors = _load_array(folder / "sentence_embeddings.npy")
        if len(spans) != len(sentence_vectors):
            return found
        for (ci, a, b), vector in zip(spans, sentence_vectors, strict=True):
            found[text_key(chunks[int(ci)].text[int(a) : int(b)])] = vector
    except Exception:  # whatever a damaged file raises: reuse what was read, embed the rest
        pass
    return found


def export_vectors(settings: Settings, model_identity: str) -> Path:
    """Write the current build's vectors as the shipped vectors of this model (``index --save-vectors``)."""
    folder = current_folder(settings.paths.index_dir)
    if folder is None:
        raise IndexMissingError(f"no index in {settings.paths.index_dir} (run 'gcm-qa index')")
    verify_build(folder)
    if read_manifest(folder)["recipe"]["model"] != model_identity:
        raise IndexMissingError(f"the index in {folder} was built with another model; run 'gcm-qa index' first")
    return vector_store.save(settings.paths.vectors_dir, model_identity, _build_vectors(folder))


def _with_meta(chunk: Chunk, meta: DocMeta) -> Chunk:
    return replace(
        chunk,
        title=meta.title,
        kind=meta.kind,
        author=meta.author,
        language=meta.language,
        stakeholder=meta.stakeholder,
    )


def _unique_id(meta: DocMeta, chunks: list[Chunk], used: set[str]) -> tuple[DocMeta, list[Chunk]]:
    if meta.doc_id not in used:
        return meta, chunks
    n = 2
    while f"{meta.doc_id}-{n}" in used:
        n += 1
    new_id = f"{meta.doc_id}-{n}"
    meta = replace(meta, doc_id=new_id)
    return meta, [replace(c, doc_id=new_id, chunk_id=f"{new_id}:{i}") for i, c in enumerate(chunks)]


def _write_and_swap(
    index_dir: Path,
    manifest: dict[str, Any],
    chunks: list[Chunk],
    matrix: np.ndarray,
    sentence_data: tuple[np.ndarray, np.ndarray, list[str]],
    bm25: KeywordSettings,
    retrieval: RetrievalSettings,
    keep_previous: bool = True,
) -> Path:
    """Write a build into a fresh folder, point ``current`` at it, and prune old builds (the one it
    replaces is kept unless ``keep_previous`` is False, i.e. it was damaged). The FAISS index is flat
    or HNSW as ``retrieval`` says (see :func:`chosen_index_type`); the manifest's ``faiss`` records which."""
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    for stale in builds.glob(".tmp-*"):  # left by a crashed build
        shutil.rmtree(stale, ignore_errors=True)
    tmp = builds / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as f:
        for chunk in chunks:
            f.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
    np.save(tmp / "embeddings.npy", matrix, allow_pickle=False)
    dense_index, written = make_faiss_index(matrix, retrieval)
    faiss.write_index(dense_index, str(tmp / "faiss.index"))
    del dense_index
    languages = [c.language for c in chunks]
    KeywordIndex.build([c.embed_text() for c in chunks], languages, k1=bm25.k1, b=bm25.b).save(tmp / "bm25")
    spans, sentence_matrix, sentence_texts = sentence_data
    np.save(tmp / "sentence_spans.npy", spans, allow_pickle=False)
    np.save(tmp / "sentence_embeddings.npy", sentence_matrix, allow_pickle=False)
    sentence_languages = [languages[int(ci)] for ci in spans[:, 0]]
    KeywordIndex.build(sentence_texts or ["∅"], sentence_languages or ["en"], k1=bm25.k1, b=bm25.b).save(
        tmp / "bm25_sentences")
    manifest = {**manifest, "faiss": written, "files": _file_record(tmp)}  # files: checked at every load
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    _fsync_tree(tmp)
    build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    final = builds / build_id
    tmp.rename(final)
    old = current_folder(index_dir)
    _point_current(index_dir, final)
    _prune(index_dir, final, old if keep_previous else None)
    return final


def _point_current(index_dir: Path, folder: Path) -> None:
    link_tmp = index_dir / f".current-{uuid.uuid4().hex[:8]}"
    link_tmp.symlink_to(Path("builds") / folder.name)
    os.replace(link_tmp, index_dir / "current")  # the atomic step
    _fsync_dir(index_dir)


def _prune(index_dir: Path, current: Path, previous: Path | None) -> None:
    """Remove old builds but ``current``, the one it replaced (``previous``, if given) and the newest
    KEEP_GOOD_BUILDS good builds, which a load falls back to when ``current`` turns out damaged.
    A damaged build has lost its good mark, so it goes unless it is one of these."""
    keep = {current.name, *(f.name for f in _good_builds(index_dir, exclude=current)[:KEEP_GOOD_BUILDS])}
    if previous is not None:
        keep.add(previous.name)
    for folder in (index_dir / "builds").resolve().iterdir():
        if not folder.name.startswith(".") and folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            _VERIFIED.pop(folder, None)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
