"""One document's part of the index, written once and shared by every build that holds the document.

Layout of ``index/segments/<key>/``::

    segment.json             the document it holds (id, file, sha256, metadata, form), its counts, and
                             the size and sha256 of each file beside it, checked before it is read
    chunks.jsonl             its chunks
    embeddings.npy           float32, L2-normalised, row i = chunk i
    sentence_spans.npy       int64 (chunk index within this document, start, end)
    sentence_embeddings.npy  one row per span
    terms.npz                the chunks' BM25 term counts (:class:`gcm_qa.keyword.TermCounts`)
    sentence_terms.npz       the sentences' term counts

Why parts: adding one report to fifty used to read, re-tokenise, re-write and re-hash all fifty
(23 s besides the new report's own 6 s of embedding, on a Zen 3). Now a build writes the new report's
part and a small manifest naming the parts (:mod:`gcm_qa.index_store`); a load joins the parts, and a
process that has loaded the index before joins the parts it already holds in memory (:class:`Cache`).

A part's key is the hash of what decides its content: the file's sha256, the index recipe, and the
document's id, kind and language (title, author and the like are applied when parts are joined, so
editing them reads nothing again). The same key is the same content, so a damaged part is rewritten
in place of itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gcm_qa.keyword import TermCounts, Vocabulary
from gcm_qa.types import Chunk

SEGMENT_FILE = "segment.json"
FILES = ("chunks.jsonl", "embeddings.npy", "sentence_spans.npy", "sentence_embeddings.npy", "terms.npz",
         "sentence_terms.npz")
FORMAT = 1
# Index folders whose parts a process keeps in memory (each holds the parts of the build it loaded
# last): a test run or a benchmark opens many small indexes, a user one or two.
CACHED_INDEXES = 4


class SegmentDamaged(Exception):
    """A file of a part that is missing, cut short, garbled or unreadable (``file`` is its name in the
    part's folder); :mod:`gcm_qa.index_store` reports it as a damaged build."""

    def __init__(self, file: str, reason: str) -> None:
        self.file = file
        self.reason = reason
        super().__init__(f"{file}: {reason}")


def key(file_sha256: str, recipe: dict[str, Any], doc_id: str, kind: str, language: str) -> str:
    text = json.dumps([file_sha256, recipe, doc_id, kind, language], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass
class Segment:
    """A part as loaded. Its arrays become views into the joined index's arrays once joined, so a
    part held for the next join costs no memory of its own."""

    key: str
    folder: Path
    info: dict[str, Any]
    chunks: list[Chunk]
    dimension: int
    spans: np.ndarray
    terms: TermCounts
    sentence_terms: TermCounts
    # None until joined: the vectors are read from their files straight into the joined arrays, so
    # a load holds each vector once (reading them into arrays of their own and copying those left
    # the freed arrays in the allocator's heap: 0.7 GB more at 100 times the report)
    embeddings: np.ndarray | None = None
    sentence_embeddings: np.ndarray | None = None
    # the terms' columns in a vocabulary (:meth:`columns`), and which vocabulary
    vocabulary: Vocabulary | None = None
    term_columns: np.ndarray | None = None
    sentence_columns: np.ndarray | None = None

    def vectors(self) -> np.ndarray:
        """The chunks' vectors: those joined, or read from the file."""
        if self.embeddings is not None:
            return self.embeddings
        out = np.empty((len(self.chunks), self.dimension), dtype=np.float32)
        read_into(self.folder / "embeddings.npy", out)
        return out

    def columns(self, vocabulary: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
        """The columns of the chunks' and the sentences' terms in ``vocabulary``, found once."""
        if self.vocabulary is not vocabulary or self.term_columns is None or self.sentence_columns is None:
            self.term_columns = vocabulary.columns(self.terms.vocab)
            self.sentence_columns = vocabulary.columns(self.sentence_terms.vocab)
            self.vocabulary = vocabulary
        return self.term_columns, self.sentence_columns


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write(
    folder: Path,
    info: dict[str, Any],
    chunks: list[Chunk],
    embeddings: np.ndarray,
    spans: np.ndarray,
    sentence_embeddings: np.ndarray,
    sentence_texts: list[str],
) -> None:
    """Write a part into ``folder`` (``segments/<key>``) through a temporary folder renamed into
    place; a damaged part already there is replaced. Nothing here reads other parts."""
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as f:
        for chunk in chunks:
            f.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
    np.save(tmp / "embeddings.npy", embeddings, allow_pickle=False)
    np.save(tmp / "sentence_spans.npy", spans, allow_pickle=False)
    np.save(tmp / "sentence_embeddings.npy", sentence_embeddings, allow_pickle=False)
    languages = [c.language for c in chunks]
    TermCounts.count([c.embed_text() for c in chunks], languages).save(tmp / "terms.npz")
    TermCounts.count(sentence_texts, [languages[int(ci)] for ci in spans[:, 0]]).save(tmp / "sentence_terms.npz")
    record = {name: {"size": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in FILES}
    info = {**info, "format": FORMAT, "chunks": len(chunks), "sentences": len(spans), "files": record}
    (tmp / SEGMENT_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    fsync_tree(tmp)
    if folder.exists():  # a damaged part of the same key: set aside, then removed
        aside = parent / f".old-{uuid.uuid4().hex[:8]}"
        folder.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
    tmp.rename(folder)
    fsync_dir(parent)


def fsync_tree(folder: Path) -> None:
    """Every file of ``folder`` and the folder itself on disk before it is renamed into place."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_info(folder: Path) -> dict[str, Any]:
    """The part's ``segment.json``; SegmentDamaged when it is missing or not what it should be."""
    if not folder.is_dir():
        raise SegmentDamaged("", "its folder is missing")
    try:
        info = json.loads((folder / SEGMENT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SegmentDamaged(SEGMENT_FILE, "missing") from None
    except (OSError, ValueError):
        raise SegmentDamaged(SEGMENT_FILE, "not valid JSON (cut short or garbled)") from None
    try:
        if not isinstance(info, dict):
            raise TypeError
        {str(n): (int(e["size"]), str(e["sha256"])) for n, e in info["files"].items()}
        int(info["chunks"]), int(info["sentences"])
    except (AttributeError, KeyError, TypeError, ValueError):
        raise SegmentDamaged(SEGMENT_FILE, "its record of the part's files is garbled") from None
    return info


def problems(folder: Path, verified: dict[Path, tuple[tuple[Any, ...], dict[str, str]]]) -> dict[str, str]:
    """Every file of the part that is missing or differs from its record (name -> reason); empty for
    a sound part. Sizes first, then sha256, skipped while ``verified`` holds the files' stat
    signature from an earlier check."""
    return _check(folder, verified)[1]


def sound(folder: Path, verified: dict[Path, tuple[tuple[Any, ...], dict[str, str]]]) -> dict[str, Any] | None:
    """The part's record when every file of it is there and matches it, else None."""
    info, found = _check(folder, verified)
    return None if found else info


def _check(
    folder: Path, verified: dict[Path, tuple[tuple[Any, ...], dict[str, str]]]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The part's record (None if it cannot be read) and what :func:`problems` says of its files."""
    try:
        info = read_info(folder)
    except SegmentDamaged as damage:
        return None, {damage.file: damage.reason}
    found: dict[str, str] = {}
    stats: list[tuple[str, int, int, int]] = []
    for name, entry in info["files"].items():
        try:
            st = (folder / name).stat()
        except OSError:
            found[name] = "missing"
            continue
        if st.st_size != int(entry["size"]):
            found[name] = f"{st.st_size:,} bytes, expected {int(entry['size']):,}"
        stats.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    if found:
        return info, found
    own = (folder / SEGMENT_FILE).stat()
    signature = (own.st_mtime_ns, own.st_size, own.st_ino, *stats)
    cached = verified.get(folder)
    if cached is not None and cached[0] == signature:
        return info, dict(cached[1])
    for name, entry in info["files"].items():
        if _sha256(folder / name) != str(entry["sha256"]):
            found[name] = "garbled (its checksum does not match)"
    verified[folder] = (signature, dict(found))
    return info, found


def _vector_header(path: Path) -> tuple[int, int]:
    """Rows and columns of a float32 matrix saved by numpy, from its header alone."""
    with path.open("rb") as f:
        return _header(f)


def _header(f: Any) -> tuple[int, int]:
    """The shape in a numpy file's header, refused unless it is a C-ordered float32 matrix."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"numpy format {version}")
    if len(shape) != 2 or fortran or dtype != np.dtype("<f4"):
        raise ValueError(f"an array of shape {shape} and type {dtype}")
    return int(shape[0]), int(shape[1])


def read_into(path: Path, out: np.ndarray) -> None:
    """Read a float32 matrix saved by numpy into ``out`` (rows of a C-ordered array), which must
    have its shape; SegmentDamaged naming the file otherwise."""
    with _reading(path.name), path.open("rb") as f:
        shape = _header(f)
        if shape != out.shape:
            raise SegmentDamaged(path.name, f"an array of shape {shape}, expected {out.shape}")
        got = f.readinto(memoryview(out).cast("B"))
        if got != out.nbytes:
            raise SegmentDamaged(path.name, f"cut short ({got:,} of {out.nbytes:,} bytes)")


def _load_array(path: Path, columns: int | None = None) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2 or (columns is not None and array.shape[1] != columns):
        raise ValueError(f"an array of shape {array.shape}")
    return array


def _reading(name: str) -> contextlib.AbstractContextManager[None]:
    """Any error of the library behind a file, as SegmentDamaged naming the file."""

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        try:
            yield
        except SegmentDamaged:
            raise
        except Exception as exc:  # numpy raises ValueError, json ValueError, zipfile BadZipFile...
            first = (str(exc).strip().splitlines() or [""])[0]
            raise SegmentDamaged(name, f"cannot be read ({type(exc).__name__}: {first[:80]})") from None

    return guard()


def _read_chunks(folder: Path) -> list[Chunk]:
    with (folder / "chunks.jsonl").open(encoding="utf-8") as f:
        return [Chunk.from_dict(json.loads(line)) for line in f if line.strip()]


def read(folder: Path, info: dict[str, Any] | None = None) -> Segment:
    """A part, its files read and checked against each other (not against their checksums: that is
    :func:`problems`); ``info``: its record, when the caller has just read it."""
    info = info if info is not None else read_info(folder)
    with _reading("chunks.jsonl"):
        chunks = _read_chunks(folder)
    with _reading("embeddings.npy"):
        rows, dimension = _vector_header(folder / "embeddings.npy")
    with _reading("sentence_spans.npy"):
        spans = _load_array(folder / "sentence_spans.npy", 3).astype(np.int64, copy=False)
    with _reading("sentence_embeddings.npy"):
        sentence_rows, sentence_dimension = _vector_header(folder / "sentence_embeddings.npy")
    with _reading("terms.npz"):
        terms = TermCounts.load(folder / "terms.npz")
    with _reading("sentence_terms.npz"):
        sentence_terms = TermCounts.load(folder / "sentence_terms.npz")
    n, m = len(chunks), len(spans)
    mismatch = [
        ("chunks.jsonl", n == 0 or n != int(info["chunks"]), f"{n:,} chunks where the part records {info['chunks']}"),
        ("embeddings.npy", rows != n, f"{rows:,} vectors for {n:,} chunks"),
        ("terms.npz", terms.rows != n, f"term counts of {terms.rows:,} texts for {n:,} chunks"),
        ("sentence_spans.npy", m != int(info["sentences"]) or (m > 0 and not 0 <= int(spans[:, 0].min())
                                                               <= int(spans[:, 0].max()) < n),
         "sentences of chunks that do not exist"),
        ("sentence_embeddings.npy", sentence_rows != m or (m > 0 and sentence_dimension != dimension),
         f"{sentence_rows:,} vectors of {sentence_dimension} for {m:,} sentences"),
        ("sentence_terms.npz", sentence_terms.rows != m, f"term counts of {sentence_terms.rows:,} texts for {m:,} "
                                                         "sentences"),
    ]
    for name, wrong, reason in mismatch:
        if wrong:
            raise SegmentDamaged(name, reason)
    return Segment(folder.name, folder, info, chunks, dimension, spans, terms, sentence_terms)


def vectors(folder: Path, skip: dict[str, str]) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """What a damaged or superseded part still holds that can be read, for a new part of the same
    document not to embed it again: (chunk embed texts, their vectors, sentence texts, their
    vectors). Nothing of a file in ``skip``; empty lists for whatever fails to read."""
    empty = np.zeros((0, 0), dtype=np.float32)
    if "chunks.jsonl" in skip or "" in skip:
        return [], empty, [], empty
    try:
        chunks = _read_chunks(folder)
    except Exception:
        return [], empty, [], empty
    texts, matrix, sentences, sentence_matrix = [], empty, [], empty
    with contextlib.suppress(Exception):
        if "embeddings.npy" not in skip:
            loaded = _load_array(folder / "embeddings.npy")
            if len(loaded) == len(chunks):
                texts, matrix = [c.embed_text() for c in chunks], loaded
    with contextlib.suppress(Exception):
        if "sentence_spans.npy" not in skip and "sentence_embeddings.npy" not in skip:
            spans = _load_array(folder / "sentence_spans.npy", 3)
            loaded = _load_array(folder / "sentence_embeddings.npy")
            if len(spans) == len(loaded):
                sentences = [chunks[int(ci)].text[int(a):int(b)] for ci, a, b in spans]
                sentence_matrix = loaded
    return texts, matrix, sentences, sentence_matrix


# Joined arrays are allocated with room for this many times their rows, so the documents added next
# are copied in after the rows already there (amortised, as a list grows) instead of copying every
# document again. Room never written costs address space, not memory.
GROWTH = 1.5


@dataclass
class Joined:
    """Where the parts of the last build loaded from an index folder were joined: the parts in
    order, and the arrays that hold their rows (``used`` of them; room after those). Rows once
    written are never written again: a later join either appends after ``used`` or starts anew."""

    keys: list[str]
    vectors: np.ndarray
    used: int
    sentence_vectors: np.ndarray
    sentences_used: int


def join_rows(previous: Joined | None, parts: list[Segment]) -> Joined:
    """The parts' chunk and sentence vectors in one pair of arrays each: the previous join's when it
    holds a prefix of ``parts`` and has room (only the new parts' rows are copied), else fresh
    arrays with room to grow. Each part's arrays become views of the joined ones."""
    keys = [p.key for p in parts]
    dimension = parts[0].dimension
    n = sum(len(p.chunks) for p in parts)
    m = sum(len(p.spans) for p in parts)
    start = 0
    if (previous is not None and previous.keys == keys[: len(previous.keys)]
            and previous.vectors.shape[0] >= n and previous.sentence_vectors.shape[0] >= m
            and previous.vectors.shape[1] == dimension
            and all(p.embeddings is not None for p in parts[: len(previous.keys)])):
        vectors, sentence_vectors = previous.vectors, previous.sentence_vectors
        start, lo, slo = len(previous.keys), previous.used, previous.sentences_used
    else:
        vectors = np.empty((int(n * GROWTH) + 64, dimension), dtype=np.float32)
        sentence_vectors = np.empty((int(m * GROWTH) + 64, dimension), dtype=np.float32)
        lo = slo = 0
    for part in parts[start:]:
        hi, shi = lo + len(part.chunks), slo + len(part.spans)
        if part.embeddings is None or part.sentence_embeddings is None:
            read_into(part.folder / "embeddings.npy", vectors[lo:hi])
            read_into(part.folder / "sentence_embeddings.npy", sentence_vectors[slo:shi])
        else:
            vectors[lo:hi] = part.embeddings
            sentence_vectors[slo:shi] = part.sentence_embeddings
        part.embeddings, part.sentence_embeddings = vectors[lo:hi], sentence_vectors[slo:shi]
        lo, slo = hi, shi
    return Joined(keys, vectors, n, sentence_vectors, m)


class Cache:
    """The parts a process has read, per index folder: those of the build it loaded last there, with
    the stat signature of their files when read, so a part whose files are untouched is not read or
    hashed again, and one whose files changed (a damage, a rewrite) is. Also the checksum results
    (``verified``) and the vocabulary the parts' term columns refer to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_index: OrderedDict[Path, tuple[Vocabulary, dict[str, tuple[Any, Segment]]]] = OrderedDict()
        self._joined: dict[Path, Joined] = {}
        self.verified: dict[Path, tuple[tuple[Any, ...], dict[str, str]]] = {}

    def _held(self, segments_dir: Path) -> tuple[Vocabulary, dict[str, tuple[Any, Segment]]]:
        with self._lock:
            entry = self._by_index.get(segments_dir)
            if entry is None:
                entry = self._by_index[segments_dir] = (Vocabulary(), {})
                while len(self._by_index) > CACHED_INDEXES:
                    gone, _ = self._by_index.popitem(last=False)
                    self._joined.pop(gone, None)
                    for path in [p for p in self.verified if p.parent == gone]:
                        self.verified.pop(path, None)
            self._by_index.move_to_end(segments_dir)
            return entry

    def vocabulary(self, segments_dir: Path) -> Vocabulary:
        return self._held(segments_dir)[0]

    def load(self, folder: Path) -> Segment:
        """The part in ``folder``, checked against its record (SegmentDamaged naming the first file
        that is not right) and read, or the one read before if its files are untouched since."""
        _, held = self._held(folder.parent)
        info, found = _check(folder, self.verified)
        if found or info is None:
            name, reason = next(iter(found.items()))
            raise SegmentDamaged(name, reason)
        signature = self.verified[folder][0]
        entry = held.get(folder.name)
        if entry is not None and entry[0] == signature:
            return entry[1]
        segment = read(folder, info)
        with self._lock:
            held[folder.name] = (signature, segment)
        return segment

    def join(self, segments_dir: Path, parts: list[Segment]) -> Joined:
        """:func:`join_rows` after the last join in this folder, which it then replaces; one at a
        time, so two joins never write the same rows."""
        self._held(segments_dir)
        with self._lock:
            joined = join_rows(self._joined.get(segments_dir), parts)
            self._joined[segments_dir] = joined
            return joined

    def keep(self, segments_dir: Path, keys: set[str]) -> None:
        """Hold only the parts of ``keys`` for this folder (those of the build just loaded)."""
        _, held = self._held(segments_dir)
        with self._lock:
            for gone in [k for k in held if k not in keys]:
                del held[gone]

    def forget(self, folder: Path) -> None:
        self.verified.pop(folder, None)
        with self._lock:
            entry = self._by_index.get(folder.parent)
            if entry is not None:
                entry[1].pop(folder.name, None)


CACHE = Cache()
