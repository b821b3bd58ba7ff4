"""The on-disk index: build it incrementally, swap it in atomically, load it without pickle.

Layout of ``index/``::

    current -> builds/20261128T101500-3f2a9c1e   (a symlink, replaced atomically)
    builds/<id>/manifest.json   recipe, settings, per-document hashes and metadata
    builds/<id>/chunks.jsonl    one chunk and its metadata per line
    builds/<id>/embeddings.npy  float32, L2-normalised, row i = chunk i
    builds/<id>/faiss.index     IndexFlatIP over those rows (faiss.write_index)
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
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

from gcm_qa import corpus, profiles, vector_store
from gcm_qa.chunking import chunk_document
from gcm_qa.cleaning import clean_pages, table_of_contents
from gcm_qa.embedder import Embedder
from gcm_qa.keyword import KeywordIndex
from gcm_qa.loaders import DocumentError, load
from gcm_qa.sentences import split_sentences
from gcm_qa.settings import KeywordSettings, Settings
from gcm_qa.structure import layout, section_pages
from gcm_qa.types import Chunk, DocMeta

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# The code that turns a file into chunks, sentences and keyword tokens. Its hash is part of the
# recipe, so an upgrade that changes cleaning, chunking or tokenising rebuilds the index instead of
# mixing old and new chunks.
CHUNKING_MODULES = ("loaders", "cleaning", "structure", "chunking", "sentences", "gcm", "types", "keyword",
                    "stopwords", "profiles")


@functools.lru_cache(maxsize=1)
def loader_version() -> str:
    h = hashlib.sha256()
    package = Path(__file__).parent
    for name in CHUNKING_MODULES:
        h.update((package / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


class IndexMissingError(Exception):
    """No index has been built in this folder yet."""


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

    def summary(self) -> str:
        if self.up_to_date:
            return f"Index up to date: {self.documents} documents, {self.chunks} chunks."
        text = (
            f"Indexed {self.documents} documents, {self.chunks} chunks "
            f"({self.embedded} embedded, {self.reused} reused) in {self.seconds:.1f} s"
        )
        if self.errors:
            text += f"; {len(self.errors)} file(s) skipped"
        return text + "."


def recipe(settings: Settings, model_identity: str) -> dict[str, Any]:
    """Everything that shapes the vectors, chunks and keyword scores. Any change means a rebuild
    (vectors are still reused for unchanged text while ``model`` is the same). The documents'
    profiles shape headings, pages and tags, so their hash is here too."""
    return {
        "format": FORMAT_VERSION,
        "loader_version": loader_version(),
        "model": model_identity,
        "chunk_chars": settings.chunking.chunk_chars,
        "overlap_chars": settings.chunking.overlap_chars,
        "bm25_k1": settings.keyword.k1,
        "bm25_b": settings.keyword.b,
        "profiles": profiles.fingerprint(settings.paths.corpus_dir),
    }


def current_folder(index_dir: Path) -> Path | None:
    link = index_dir / "current"
    return link.resolve() if link.exists() else None


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


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def read_chunks(folder: Path) -> list[Chunk]:
    with (folder / "chunks.jsonl").open(encoding="utf-8") as f:
        return [Chunk.from_dict(json.loads(line)) for line in f if line.strip()]


def load_index(index_dir: Path) -> LoadedIndex:
    folder = current_folder(index_dir)
    if folder is None:
        raise IndexMissingError(f"no index in {index_dir} (run 'gcm-qa index')")
    manifest = read_manifest(folder)
    chunks = read_chunks(folder)
    embeddings = np.load(folder / "embeddings.npy", allow_pickle=False)
    index = faiss.read_index(str(folder / "faiss.index"))
    keyword = KeywordIndex.load(folder / "bm25")
    spans = np.load(folder / "sentence_spans.npy", allow_pickle=False)
    sentence_vectors = np.load(folder / "sentence_embeddings.npy", allow_pickle=False)
    sentence_keyword = KeywordIndex.load(folder / "bm25_sentences")
    if index.ntotal != len(chunks) or embeddings.shape[0] != len(chunks) or len(spans) != len(sentence_vectors):
        raise IndexMissingError(f"index in {folder} is inconsistent; rebuild it with 'gcm-qa index --full'")
    return LoadedIndex(folder, manifest, chunks, embeddings, index, keyword, spans, sentence_vectors,
                       sentence_keyword)


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
    manifest = read_manifest(folder)
    if manifest.get("recipe") != recipe(settings, model_identity):
        return True
    files, _ = scan(settings)
    indexed = {d["file"]: d for d in manifest["documents"].values()}
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


def prepare_document(path: Path, entry: dict[str, Any] | None, settings: Settings) -> tuple[DocMeta, list[Chunk]]:
    """Load, clean, lay out and chunk one file with its profile (found in the corpus folder by the
    document's id and kind). Raises DocumentError for unreadable input, ProfileError for a bad profile."""
    raw = load(path)
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
    return meta, chunks


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

    previous_folder = current_folder(index_dir)
    prev_manifest: dict[str, Any] = {}
    prev_chunks: dict[str, list[Chunk]] = {}
    # text hash -> vector, for this model: the shipped vectors, then the previous build's
    known_vectors = {} if full else vector_store.load(settings.paths.vectors_dir, model_identity)
    if previous_folder is not None and not full:
        try:
            prev_manifest = read_manifest(previous_folder)
        except (OSError, ValueError):
            prev_manifest = {}
        if prev_manifest.get("recipe", {}).get("model") == model_identity:
            known_vectors.update(_build_vectors(previous_folder))
        if prev_manifest.get("recipe") == the_recipe:
            for chunk in read_chunks(previous_folder):
                prev_chunks.setdefault(chunk.doc_id, []).append(chunk)
        else:
            prev_manifest = {}
    prev_docs_by_file = {d["file"]: (doc_id, d) for doc_id, d in prev_manifest.get("documents", {}).items()}

    documents: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    all_chunks: list[Chunk] = []
    used_ids: set[str] = set()
    bar = tqdm(files, desc="Reading", unit="doc", disable=not progress, leave=False)
    for path, sha, entry in bar:
        bar.set_postfix_str(path.name[:40])
        previous = prev_docs_by_file.get(path.name)
        if previous is not None and previous[1]["sha256"] == sha and previous[0] in prev_chunks:
            doc_id, doc = previous
            meta = corpus.merge_meta(DocMeta(**doc["meta"]), entry)
            chunks = [_with_meta(c, meta) for c in prev_chunks[doc_id]]
        else:
            try:
                meta, chunks = prepare_document(path, entry, settings)
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
        meta, chunks = _unique_id(meta, chunks, used_ids)
        used_ids.add(meta.doc_id)
        documents[meta.doc_id] = {"file": path.name, "sha256": sha, "chunks": len(chunks), "meta": meta.to_dict()}
        all_chunks.extend(chunks)

    current_files = {p.name for p, _, _ in files}
    report.removed = sorted(n for n in prev_docs_by_file if n not in current_files)
    report.documents = len(documents)
    report.chunks = len(all_chunks)

    prev_failed = prev_manifest.get("failed", {})
    unchanged = (
        prev_manifest
        and not report.changed
        and not report.removed
        and failed == prev_failed
        and {d: v["meta"] for d, v in documents.items()}
        == {d: v["meta"] for d, v in prev_manifest["documents"].items()}
    )
    if unchanged:
        report.up_to_date = True
        report.folder = previous_folder
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
    report.folder = _write_and_swap(index_dir, manifest, all_chunks, matrix, sentence_data, settings.keyword)
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


def _build_vectors(folder: Path) -> dict[str, np.ndarray]:
    """Text hash -> vector for every passage and sentence of a build (empty if it cannot be read)."""
    try:
        chunks = read_chunks(folder)
        vectors = np.load(folder / "embeddings.npy", allow_pickle=False)
        spans = np.load(folder / "sentence_spans.npy", allow_pickle=False)
        sentence_vectors = np.load(folder / "sentence_embeddings.npy", allow_pickle=False)
    except (OSError, ValueError):
        return {}
    if len(chunks) != len(vectors) or len(spans) != len(sentence_vectors):
        return {}
    found = {text_key(c.embed_text()): v for c, v in zip(chunks, vectors, strict=True)}
    for (ci, a, b), vector in zip(spans, sentence_vectors, strict=True):
        found[text_key(chunks[int(ci)].text[int(a) : int(b)])] = vector
    return found


def export_vectors(settings: Settings, model_identity: str) -> Path:
    """Write the current build's vectors as the shipped vectors of this model (``index --save-vectors``)."""
    folder = current_folder(settings.paths.index_dir)
    if folder is None:
        raise IndexMissingError(f"no index in {settings.paths.index_dir} (run 'gcm-qa index')")
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
) -> Path:
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
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix)
    faiss.write_index(flat, str(tmp / "faiss.index"))
    languages = [c.language for c in chunks]
    KeywordIndex.build([c.embed_text() for c in chunks], languages, k1=bm25.k1, b=bm25.b).save(tmp / "bm25")
    spans, sentence_matrix, sentence_texts = sentence_data
    np.save(tmp / "sentence_spans.npy", spans, allow_pickle=False)
    np.save(tmp / "sentence_embeddings.npy", sentence_matrix, allow_pickle=False)
    sentence_languages = [languages[int(ci)] for ci in spans[:, 0]]
    KeywordIndex.build(sentence_texts or ["∅"], sentence_languages or ["en"], k1=bm25.k1, b=bm25.b).save(
        tmp / "bm25_sentences")
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    _fsync_tree(tmp)
    build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    final = builds / build_id
    tmp.rename(final)
    link_tmp = index_dir / f".current-{uuid.uuid4().hex[:8]}"
    link_tmp.symlink_to(Path("builds") / build_id)
    old = current_folder(index_dir)
    os.replace(link_tmp, index_dir / "current")  # the atomic step
    _fsync_dir(index_dir)
    for folder in builds.iterdir():
        if folder.name != build_id and not folder.name.startswith(".") and folder != old:
            shutil.rmtree(folder, ignore_errors=True)
    if old is not None and old != final:
        shutil.rmtree(old, ignore_errors=True)
    return final


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
