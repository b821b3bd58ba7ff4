"""The on-disk index: build it incrementally, swap it in atomically, load it without pickle.

Layout of ``index/``::

    current -> builds/20261128T101500-3f2a9c1e   (a symlink, replaced atomically)
    builds/<id>/manifest.json   recipe, settings, and per document: file, sha256, metadata and the
                                key of its part; the size and sha256 of the build's own files
    builds/<id>/faiss.index     only for a large corpus: an IndexHNSWFlat (inner product) over every
                                part's vectors (retrieval.index_type; the manifest's ``faiss`` says
                                which). A flat index is made from the vectors when the build is loaded.
    segments/<key>/             one document's part: its chunks, their vectors (float32,
                                L2-normalised), its sentences (chunk, start, end) and their vectors,
                                and the BM25 term counts of both (see :mod:`gcm_qa.segments`).
                                Sentences are kept because short questions match one sentence better
                                than a whole chunk, and the answerer quotes them without embedding again

A build writes only the parts of new or changed files, then a fresh build folder naming every part,
and only then repoints ``current``, so a crash at any moment leaves the previous index whole; the cost
of adding a report is that report's, not the corpus's (benchmarks/bench_incremental.py measures it).
Embeddings are reused by the model's identity and the hash of the exact text embedded, so only new or
changed passages meet the model: a new chunker or cleaner re-embeds only the passages whose text it
changed (a part takes the vectors of the part it replaces), and a different model re-embeds
everything. A shipped corpus comes with its vectors (``index/vectors/<model>.npz``, see
:mod:`gcm_qa.vector_store`), so a fresh clone does not spend minutes embedding the report before its
first answer.

An index heals itself. Each build's manifest records the size and sha256 of its files, and each part
those of its own; a load checks them (hashing the shipped report's 9 MB costs 10-20 ms; a process
does it once per file while the file is unchanged) before handing the files to faiss and numpy, whose
errors on a cut-short file are raw tracebacks. A build that fails the check, or whose files will not
load, raises :class:`IndexDamaged` naming the file (a part's as ``segments/<key>/<file>``) and what is
wrong with it, and is never used: the load falls back to the newest *good* build (one that has loaded
successfully once, marked by a ``.loaded`` file; the last few are kept for this) that does not need the
damaged file, and the next build (``ensure_index`` calls one, since a damaged index counts as stale)
repoints ``current`` to that good build, or reads the documents whose parts are damaged again.
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

from gcm_qa import corpus, profiles, segments, vector_store
from gcm_qa.chunking import chunk_document
from gcm_qa.cleaning import clean_pages, table_of_contents
from gcm_qa.embedder import Embedder
from gcm_qa.forms import FormReading, read_form
from gcm_qa.keyword import KeywordIndex
from gcm_qa.loaders import DocumentError, load
from gcm_qa.sentences import split_sentences
from gcm_qa.settings import RetrievalSettings, Settings
from gcm_qa.structure import layout, section_pages
from gcm_qa.types import Chunk, DocMeta

log = logging.getLogger(__name__)

# 2: the manifest records every file's size and sha256 (``files``), checked at load. 3: one part per
# document (gcm_qa.segments). An index of an earlier format is rebuilt once, its vectors reused.
FORMAT_VERSION = 3
# Good builds (loaded successfully at least once) kept besides the newest, to fall back to when the
# newest is damaged; each costs the index's size again on disk (9 MB for the shipped report). A knob
# for the code, not a setting: fewer than one would leave nothing to fall back to.
KEEP_GOOD_BUILDS = 2
GOOD_MARKER = ".loaded"  # written into a build's folder after its first successful load
MANIFEST_FILE = "manifest.json"
FAISS_FILE = "faiss.index"  # a build's HNSW graph; a flat index is made from the vectors at load
SEGMENTS = "segments"  # index/segments/<key>: one document's part (gcm_qa.segments)
JOIN_SETTINGS = ("faiss", "bm25_k1", "bm25_b")  # recipe entries applied to the parts as they are joined
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
    naming the file and the reason instead of a traceback from faiss, numpy or json. It is an
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
    faiss_index: faiss.Index | FlatIndex  # an HNSW graph, or exact search over ``embeddings``
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


def hnsw_record(retrieval: RetrievalSettings) -> dict[str, Any]:
    """What a build's manifest records of its HNSW graph (``faiss``)."""
    return {"type": "hnsw", "hnsw_m": retrieval.hnsw_m, "hnsw_ef_construction": retrieval.hnsw_ef_construction}


def make_hnsw_index(matrix: np.ndarray, retrieval: RetrievalSettings) -> tuple[faiss.Index, dict[str, Any]]:
    """The HNSW graph over ``matrix`` (L2-normalised rows, so inner product is cosine), and what the
    manifest records of it. A flat index is not stored: it is :class:`FlatIndex` over the vectors."""
    index = faiss.IndexHNSWFlat(int(matrix.shape[1]), retrieval.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = retrieval.hnsw_ef_construction
    index.add(matrix)
    return index, hnsw_record(retrieval)


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
    """Every file of a build, and of the document parts it names, that is missing or differs from
    its record (file -> reason; a part's files as ``segments/<key>/<name>``); empty for a sound build."""
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
    documents = manifest.get("documents")
    try:
        expected = {str(rel): (int(e["size"]), str(e["sha256"])) for rel, e in record.items()}
        keys = [str(d["segment"]) for d in documents.values()]
    except (AttributeError, KeyError, TypeError, ValueError):
        return {MANIFEST_FILE: "its record of the build's files and parts is garbled"}
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
    if not problems:
        manifest_stat = (folder / MANIFEST_FILE).stat()
        signature = (manifest_stat.st_mtime_ns, manifest_stat.st_size, *stats)
        cached = _VERIFIED.get(folder)
        if cached is not None and cached[0] == signature:
            problems = dict(cached[1])
        else:
            for rel, (_, sha) in expected.items():
                if _sha256(folder / rel) != sha:
                    problems[rel] = "garbled (its checksum does not match)"
            _VERIFIED[folder] = (signature, dict(problems))
    parts = _segments_dir(folder)
    for key in keys:
        for name, reason in segments.problems(parts / key, segments.CACHE.verified).items():
            problems[_part_file(key, name)] = reason
    return problems


def _segments_dir(build_folder: Path) -> Path:
    """``index/segments`` of a build in ``index/builds/<id>``."""
    return build_folder.parent.parent / SEGMENTS


def _part_file(key: str, name: str) -> str:
    """How a message names a file of a part: by its path in the index folder."""
    return f"{SEGMENTS}/{key}/{name}".rstrip("/")


def verify_build(folder: Path) -> None:
    """Raise IndexDamaged unless every file of the build and of its parts matches its record (sizes,
    then sha256: 10-20 ms for the shipped report's 9 MB, cached while no file changes)."""
    problems = _problems(folder)
    if problems:
        file, reason = next(iter(problems.items()))
        raise IndexDamaged(folder, file, reason, problems=problems)


class FlatIndex:
    """Exact inner-product search over the joined vectors where they lie: ``faiss.knn``, the search
    an IndexFlatIP runs (the same neighbours and scores, -1 past the last vector), without the copy
    of every vector an IndexFlatIP holds (0.3 s to make at fifty reports, each time one is added)."""

    metric_type = faiss.METRIC_INNER_PRODUCT

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.ntotal = int(vectors.shape[0])
        self.d = int(vectors.shape[1])

    def search(self, x: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
        return faiss.knn(x, self.vectors, k, metric=faiss.METRIC_INNER_PRODUCT)


def _faiss_type(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    return "flat" if isinstance(index, faiss.IndexFlat) else type(index).__name__


def _parts(folder: Path) -> tuple[dict[str, Any], list[segments.Segment]]:
    """A build checked (its files and its parts' against their records) and its parts read, in the
    manifest's order of documents; IndexDamaged names the first file that is not right."""
    verify_build(folder)
    manifest = read_manifest(folder)
    documents = manifest.get("documents")
    if not isinstance(documents, dict) or not documents:
        raise IndexDamaged(folder, MANIFEST_FILE, "it lists no documents")
    parts_dir = _segments_dir(folder)
    parts: list[segments.Segment] = []
    dimension = int(manifest.get("dimension", 0))
    for doc_id, doc in documents.items():
        key = str(doc["segment"])
        try:
            part = segments.CACHE.load(parts_dir / key)
        except segments.SegmentDamaged as damage:
            raise IndexDamaged(folder, _part_file(key, damage.file), damage.reason) from None
        if part.info.get("doc_id") != doc_id or len(part.chunks) != doc.get("chunks"):
            raise IndexDamaged(folder, _part_file(key, segments.SEGMENT_FILE),
                               f"it holds {part.info.get('doc_id')}, where the build expects {doc_id}")
        if part.dimension != dimension:
            raise IndexDamaged(folder, _part_file(key, "embeddings.npy"),
                               f"dimension {part.dimension}, the build's {dimension}")
        parts.append(part)
    return manifest, parts


def _load_build(folder: Path) -> LoadedIndex:
    """One build: checked, its parts read (or taken from those this process read before, see
    :class:`gcm_qa.segments.Cache`) and joined into one index, in the manifest's order of documents,
    which a build keeps and extends at the end: the vectors of the documents a previous load joined
    are not copied again (:func:`gcm_qa.segments.join_rows`). After the join each part's arrays are
    views into the joined ones, so holding the parts for the next build costs no memory."""
    manifest, parts = _parts(folder)
    documents = list(manifest["documents"].values())
    chunks: list[Chunk] = []
    span_blocks: list[np.ndarray] = []
    for part, doc in zip(parts, documents, strict=True):
        meta = DocMeta(**doc["meta"])
        first = part.chunks[0]
        same = (first.title, first.kind, first.author, first.language, first.stakeholder) == (
            meta.title, meta.kind, meta.author, meta.language, meta.stakeholder)
        span_blocks.append(part.spans + np.array([len(chunks), 0, 0], dtype=np.int64))
        chunks.extend(part.chunks if same else [_with_meta(c, meta) for c in part.chunks])
    dimension = int(manifest["dimension"])
    try:
        joined = segments.CACHE.join(_segments_dir(folder), parts)
    except segments.SegmentDamaged as damage:  # a file changed since it was checked
        key = next(p.key for p in parts if p.embeddings is None)
        raise IndexDamaged(folder, _part_file(key, damage.file), damage.reason) from None
    embeddings = joined.vectors[: joined.used]
    sentence_vectors = joined.sentence_vectors[: joined.sentences_used]
    spans = np.concatenate(span_blocks)
    vocabulary = segments.CACHE.vocabulary(_segments_dir(folder))
    columns = [p.columns(vocabulary) for p in parts]
    bm25 = manifest["recipe"]
    k1, b = float(bm25["bm25_k1"]), float(bm25["bm25_b"])
    keyword = KeywordIndex([(p.terms, c[0]) for p, c in zip(parts, columns, strict=True)], vocabulary, k1=k1, b=b)
    sentence_keyword = KeywordIndex([(p.sentence_terms, c[1]) for p, c in zip(parts, columns, strict=True)],
                                    vocabulary, k1=k1, b=b)
    kind = manifest.get("faiss", {}).get("type", "flat")
    if kind == "flat":
        index: faiss.Index | FlatIndex = FlatIndex(embeddings)
    else:
        try:
            index = faiss.read_index(str(folder / FAISS_FILE))
        except Exception:  # faiss raises RuntimeError on a file it cannot parse
            raise IndexDamaged(folder, FAISS_FILE, "not a readable FAISS index") from None
        mismatch = [(index.ntotal != len(chunks), f"{index.ntotal:,} vectors for {len(chunks):,} chunks"),
                    (index.d != dimension, f"dimension {index.d}, the embeddings' {dimension}"),
                    (_faiss_type(index) != kind, f"a {_faiss_type(index)} index where the manifest records {kind}")]
        for wrong, reason in mismatch:
            if wrong:
                raise IndexDamaged(folder, FAISS_FILE, reason)
    segments.CACHE.keep(_segments_dir(folder), {p.key for p in parts})
    return LoadedIndex(folder, manifest, chunks, embeddings, index, keyword, spans, sentence_vectors,
                       sentence_keyword)


def check_build(folder: Path) -> IndexDamaged | None:
    """What is wrong with a build (None if it is whole): its files and its parts' checked and the
    parts read, which costs nothing more for parts this process has read before and not since
    changed. A large build's HNSW graph is checked by its checksum alone here, read at load."""
    try:
        _parts(folder)
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
    """Each document's part is found by its key (see :mod:`gcm_qa.segments`), so only a new or
    changed file is read, and only its part is written; the build itself is a manifest naming the
    parts (and, for a large corpus, its HNSW graph)."""
    index_dir = settings.paths.index_dir
    report = BuildReport()
    if not settings.paths.corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {settings.paths.corpus_dir}")
    files, manifest_errors = scan(settings)
    report.errors.extend(manifest_errors)
    the_recipe = recipe(settings, model_identity)
    # what shapes a part: not the dense index's type, nor BM25's k1 and b (applied when parts are
    # joined), so changing those writes a new manifest and reads no file again
    part_recipe = {k: v for k, v in the_recipe.items() if k not in JOIN_SETTINGS}
    parts_dir = index_dir / SEGMENTS

    previous_folder = _current_target(index_dir)
    source = previous_folder  # the build whose documents this one starts from
    damage: IndexDamaged | None = None
    if previous_folder is not None and not _earlier_format(previous_folder):  # an earlier format is not damage
        damage = check_build(previous_folder)
        if damage is not None:
            source = _heal(index_dir, previous_folder, damage, report, echo)
    prev_manifest = _readable_manifest(source) if source is not None else {}
    same_model = prev_manifest.get("recipe", {}).get("model") == model_identity
    # text hash -> vector, for this model: the shipped vectors, and what each new part embeds (a
    # text in two new documents is embedded once); a part also takes what the part it replaces holds
    known_vectors = {} if full else vector_store.load(settings.paths.vectors_dir, model_identity)
    if not full and same_model and prev_manifest.get("recipe", {}).get("format") != FORMAT_VERSION:
        known_vectors.update(_vectors_of(source))  # an index of an earlier format: its vectors
    prev_docs_by_file = {d["file"]: (doc_id, d) for doc_id, d in prev_manifest.get("documents", {}).items()}

    documents: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    used_ids: set[str] = set()
    bar = tqdm(files, desc="Reading", unit="doc", disable=not progress, leave=False)
    for path, sha, entry in bar:
        bar.set_postfix_str(path.name[:40])
        previous = prev_docs_by_file.get(path.name)
        found = None
        if not full and previous is not None and previous[1]["sha256"] == sha:
            meta = corpus.merge_meta(DocMeta(**previous[1]["meta"]), entry)
            key = segments.key(sha, part_recipe, meta.doc_id, meta.kind, meta.language)
            info = segments.sound(parts_dir / key, segments.CACHE.verified) if meta.doc_id not in used_ids else None
            if info is not None:
                found = meta, key, info
        if found is None:
            try:
                meta, chunks, reading = prepare_document(path, entry, settings)
            except DocumentError as exc:
                failed[path.name] = sha
                report.errors.append(str(exc))
                kept = _kept_version(previous, parts_dir, used_ids)
                if kept is not None:  # keep the last good version rather than losing an indexed document
                    report.errors[-1] += " (kept the previously indexed version)"
                    documents[kept[0]] = kept[1]
                    used_ids.add(kept[0])
                continue
            except Exception as exc:
                failed[path.name] = sha
                report.errors.append(f"{path.name}: could not be read ({type(exc).__name__}: {exc})")
                continue
            report.changed.append(path.name)
            if reading is not None:
                report.forms.append(f"{path.name}: {reading.note}")
            meta, chunks = _unique_id(meta, chunks, used_ids)
            key = segments.key(sha, part_recipe, meta.doc_id, meta.kind, meta.language)
            info = None if full else segments.sound(parts_dir / key, segments.CACHE.verified)
            if info is None:
                donors = [] if full else [parts_dir / key]  # a damaged part of this key: what it still holds
                if not full and same_model and previous is not None and "segment" in previous[1]:
                    donors.append(parts_dir / str(previous[1]["segment"]))  # the version it replaces
                info = _write_part(parts_dir / key, path.name, sha, meta, chunks, reading, model_identity,
                                   known_vectors, donors, embedder, report, progress, echo)
            found = meta, key, info
        meta, key, info = found
        used_ids.add(meta.doc_id)
        documents[meta.doc_id] = {"file": path.name, "sha256": sha, "chunks": int(info["chunks"]),
                                  "meta": meta.to_dict(), "segment": key}
        if info.get("form") is not None:
            documents[meta.doc_id]["form"] = info["form"]

    # the previous build's order, then new documents: a process that loaded the previous build
    # appends only the new documents' vectors to those it joined (see _load_build)
    order = [d for d in prev_manifest.get("documents", {}) if d in documents]
    documents = {d: documents[d] for d in [*order, *(d for d in documents if d not in order)]}
    current_files = {p.name for p, _, _ in files}
    report.removed = sorted(n for n in prev_docs_by_file if n not in current_files)
    report.documents = len(documents)
    report.chunks = sum(int(d["chunks"]) for d in documents.values())

    def recorded(docs: dict[str, Any]) -> dict[str, Any]:
        return {d: (v["meta"], v.get("segment")) for d, v in docs.items()}

    unchanged = (
        not full
        and prev_manifest
        and prev_manifest.get("recipe") == the_recipe
        and (damage is None or source != previous_folder)  # a damaged build is written anew
        and not report.changed
        and not report.removed
        and failed == prev_manifest.get("failed", {})
        and recorded(documents) == recorded(prev_manifest["documents"])
    )
    report.reused = report.chunks - report.embedded
    if unchanged:
        report.up_to_date = True
        report.folder = source
        if source is not None and source != previous_folder:  # the previous good build takes over
            _point_current(index_dir, source)
            _prune(index_dir, source, None)
        report.seconds = time.perf_counter() - started
        return report

    if not documents:
        raise DocumentError(settings.paths.corpus_dir, "no document in the corpus could be indexed")
    first = segments.CACHE.load(parts_dir / next(iter(documents.values()))["segment"])
    manifest = {
        "recipe": the_recipe,
        "dimension": first.dimension,
        "settings": json.loads(settings.model_dump_json()),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "documents": documents,
        "failed": failed,
    }
    graph = None
    if chosen_index_type(report.chunks, settings.retrieval) != "flat":
        graph = _graph(source, prev_manifest, documents, parts_dir, settings.retrieval)
    report.folder = _write_build(index_dir, manifest, graph, keep_previous=damage is None)
    report.seconds = time.perf_counter() - started
    return report


def _graph(
    previous: Path | None,
    prev_manifest: dict[str, Any],
    documents: dict[str, dict[str, Any]],
    parts_dir: Path,
    retrieval: RetrievalSettings,
) -> tuple[faiss.Index, dict[str, Any]]:
    """The HNSW graph over every part's vectors. When the previous build's documents are the first
    of this one's, in order, and its graph was made alike, that graph is read and the new documents'
    vectors are added to it (HNSW takes additions, as it was built: one vector at a time); otherwise,
    a document removed or changed, it is made anew (28 s at 47,400 passages on a Zen 4, against
    0.45 s to extend it by one report: benchmarks/bench_scale.py)."""
    keys = [str(d["segment"]) for d in documents.values()]
    before = [str(d.get("segment")) for d in prev_manifest.get("documents", {}).values()]
    wanted = hnsw_record(retrieval)
    if previous is not None and before and keys[: len(before)] == before and prev_manifest.get("faiss") == wanted:
        try:
            index = faiss.read_index(str(previous / FAISS_FILE))
        except Exception:  # a graph that will not read is made anew
            index = None
        rows = sum(int(d["chunks"]) for d in prev_manifest["documents"].values())
        if index is not None and index.ntotal == rows and isinstance(index, faiss.IndexHNSW):
            index.hnsw.efConstruction = retrieval.hnsw_ef_construction
            for key in keys[len(before):]:
                index.add(segments.CACHE.load(parts_dir / key).vectors())
            return index, wanted
    matrix = np.concatenate([segments.CACHE.load(parts_dir / key).vectors() for key in keys])
    return make_hnsw_index(matrix, retrieval)


def _earlier_format(folder: Path) -> bool:
    """Whether a build was written by an earlier format of the index (one folder of whole-corpus
    files, before parts): a build takes its vectors and writes parts, saying nothing of damage."""
    with contextlib.suppress(Exception):
        return int(read_manifest(folder)["recipe"]["format"]) < FORMAT_VERSION
    return False


def _readable_manifest(folder: Path) -> dict[str, Any]:
    """A build's manifest as far as a new build can use it: its recipe, documents (each with file,
    sha256, metadata and part) and failed files; empty when it cannot be read."""
    try:
        manifest = read_manifest(folder)
        for doc in manifest["documents"].values():
            DocMeta(**doc["meta"])
            str(doc["file"]), str(doc["sha256"])
        dict(manifest.get("failed", {}))
        dict(manifest["recipe"])
    except Exception:
        return {}
    return manifest


def _kept_version(
    previous: tuple[str, dict[str, Any]] | None, parts_dir: Path, used: set[str]
) -> tuple[str, dict[str, Any]] | None:
    """The previously indexed version of a file that no longer reads, if its part is still whole."""
    if previous is None or previous[0] in used or "segment" not in previous[1]:
        return None
    if segments.sound(parts_dir / str(previous[1]["segment"]), segments.CACHE.verified) is None:
        return None
    return previous


def _write_part(
    folder: Path,
    file: str,
    sha: str,
    meta: DocMeta,
    chunks: list[Chunk],
    reading: FormReading | None,
    model_identity: str,
    known: dict[str, np.ndarray],
    donors: list[Path],
    embedder: Callable[[], Embedder],
    report: BuildReport,
    progress: bool,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Embed what is not known of one document (its passages, then its sentences) and write its
    part; returns the part's record. ``donors``: earlier parts of the document whose readable
    vectors are used rather than embedded again."""
    for donor in donors:
        if donor.is_dir():
            known.update(_vectors_of(donor, segments.problems(donor, segments.CACHE.verified)))
    texts = [c.embed_text() for c in chunks]
    matrix, embedded = _embed(texts, known, embedder, "passages", progress, echo)
    spans = [(ci, s.start, s.end) for ci, c in enumerate(chunks) for s in split_sentences(c.text, ci)]
    sentence_texts = [chunks[ci].text[a:b] for ci, a, b in spans]
    sentence_matrix, embedded_sentences = _embed(sentence_texts, known, embedder, "sentences", progress, echo)
    if not spans:
        sentence_matrix = np.zeros((0, matrix.shape[1]), dtype=np.float32)
    report.embedded += embedded
    report.embedded_sentences += embedded_sentences
    info = {"doc_id": meta.doc_id, "file": file, "sha256": sha, "model": model_identity, "meta": meta.to_dict(),
            "form": reading.to_dict() if reading is not None else None}
    segments.write(folder, info, chunks, matrix, np.array(spans, dtype=np.int64).reshape(-1, 3), sentence_matrix,
                   sentence_texts)
    return segments.read_info(folder)


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
        new = model.encode_documents([texts[i] for i in missing], progress=progress, build=True)
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


def _vectors_of(folder: Path, skip: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Text hash -> vector of every passage and sentence readable in ``folder`` (nothing of a file in
    ``skip``): a part, or a build of format 2, which held the whole corpus's files in the same layout
    (so an upgraded index embeds nothing it had)."""
    texts, matrix, sentences, sentence_matrix = segments.vectors(folder, skip or {})
    found = dict(zip(map(text_key, texts), matrix, strict=False))
    found.update(zip(map(text_key, sentences), sentence_matrix, strict=False))
    return found


def export_vectors(settings: Settings, model_identity: str) -> Path:
    """Write the current build's vectors as the shipped vectors of this model (``index --save-vectors``)."""
    folder = current_folder(settings.paths.index_dir)
    if folder is None:
        raise IndexMissingError(f"no index in {settings.paths.index_dir} (run 'gcm-qa index')")
    verify_build(folder)
    manifest = read_manifest(folder)
    if manifest["recipe"]["model"] != model_identity:
        raise IndexMissingError(f"the index in {folder} was built with another model; run 'gcm-qa index' first")
    vectors: dict[str, np.ndarray] = {}
    for doc in manifest["documents"].values():
        vectors.update(_vectors_of(_segments_dir(folder) / doc["segment"]))
    return vector_store.save(settings.paths.vectors_dir, model_identity, vectors)


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


def _write_build(
    index_dir: Path,
    manifest: dict[str, Any],
    graph: tuple[faiss.Index, dict[str, Any]] | None,
    keep_previous: bool = True,
) -> Path:
    """Write a build (its manifest, and the HNSW graph of a large corpus) into a fresh folder, point
    ``current`` at it, and prune old builds and the parts no build names (the build it replaces is
    kept unless ``keep_previous`` is False, i.e. it was damaged)."""
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    for stale in builds.glob(".tmp-*"):  # left by a crashed build
        shutil.rmtree(stale, ignore_errors=True)
    tmp = builds / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    written: dict[str, Any] = {"type": "flat"}
    if graph is not None:
        faiss.write_index(graph[0], str(tmp / FAISS_FILE))
        written = graph[1]
    manifest = {**manifest, "faiss": written, "files": _file_record(tmp)}  # files: checked at every load
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    segments.fsync_tree(tmp)
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
    segments.fsync_dir(index_dir)


def _prune(index_dir: Path, current: Path, previous: Path | None) -> None:
    """Remove old builds but ``current``, the one it replaced (``previous``, if given) and the newest
    KEEP_GOOD_BUILDS good builds, which a load falls back to when ``current`` turns out damaged.
    A damaged build has lost its good mark, so it goes unless it is one of these. Then remove the
    parts no remaining build names (and any a crashed build left half written)."""
    keep = {current.name, *(f.name for f in _good_builds(index_dir, exclude=current)[:KEEP_GOOD_BUILDS])}
    if previous is not None:
        keep.add(previous.name)
    named: set[str] = set()
    for folder in (index_dir / "builds").resolve().iterdir():
        if folder.name.startswith("."):
            continue
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            _VERIFIED.pop(folder, None)
            continue
        with contextlib.suppress(Exception):  # a damaged manifest names nothing
            named.update(str(d["segment"]) for d in read_manifest(folder)["documents"].values())
    parts = index_dir / SEGMENTS
    if parts.is_dir():
        for folder in parts.iterdir():
            if folder.name not in named:
                shutil.rmtree(folder, ignore_errors=True)
                segments.CACHE.forget(folder)
