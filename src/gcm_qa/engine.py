"""The library's front door: one object the CLI, the chat and the evaluation all call."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gcm_qa import corpus, gcm, index_store, models, profiles
from gcm_qa.answering import NO_ANSWER, Answerer
from gcm_qa.embedder import Embedder, ResolvedModel, load_embedder, resolve
from gcm_qa.index_store import BuildReport, LoadedIndex
from gcm_qa.loaders import SUPPORTED_SUFFIXES, DocumentError
from gcm_qa.query import SearchQuery, areas_named, objective_sought, part_asked_about, prepare, rewrite_followup
from gcm_qa.retrieval import Filters, Retriever, refers_to
from gcm_qa.scoring import SentenceScorer, WeightedScorer
from gcm_qa.settings import Settings, with_tuned
from gcm_qa.types import Answer, Passage, Reference


class QuestionError(ValueError):
    """The question itself is unusable (empty, too long)."""


MAX_QUESTION_CHARS = 2000


@dataclass
class AddResult:
    added: list[str]
    errors: list[str]
    report: BuildReport | None
    replaced: list[str] = field(default_factory=list)  # files that were already in the corpus


class Engine:
    """Owns the model, the loaded index and the retriever; safe to share across chat sessions."""

    def __init__(
        self, settings: Settings | None = None, embedder: Embedder | None = None, scorer: SentenceScorer | None = None
    ) -> None:
        """``scorer``: how the answerer ranks sentences (default: the weighted scorer of
        ``settings.answer.scoring``); the ceiling tool passes an oracle, a reranker would go here."""
        settings = settings or Settings()
        if embedder is not None:
            self.model = ResolvedModel(embedder.name, embedder.identity, models.packaged(embedder.name))
        else:
            self.model = resolve(settings.embedding, settings.paths.cache_dir)
        if self.model.packaged is not None:
            settings = with_tuned(settings, self.model.packaged.tuned)
        self.settings = settings
        if settings.retrieval.blas_threads:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=settings.retrieval.blas_threads, user_api="blas")  # process-wide, kept
        self.notices: list[str] = [self.model.notice] if self.model.notice else []
        self.scorer: SentenceScorer = scorer if scorer is not None else WeightedScorer(settings.answer.scoring)
        self._embedder = embedder
        self._index: LoadedIndex | None = None
        self._retriever: Retriever | None = None
        self._lock = threading.RLock()
        self._objective_titles: np.ndarray | None = None
        self._profile: profiles.Profile | None = None

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings.embedding, self.settings.paths.cache_dir, self.model)
            return self._embedder

    @property
    def index(self) -> LoadedIndex:
        if self._index is None:
            self.ensure_index()
        assert self._index is not None
        return self._index

    def build(
        self, full: bool = False, progress: bool = False, echo: Callable[[str], None] = lambda _m: None
    ) -> BuildReport:
        """Incremental (re)build, then load what was built."""
        with self._lock:
            report = index_store.build(self.settings, lambda: self.embedder, self.model.identity, full=full,
                                       progress=progress, echo=echo)
            self._load()
            return report

    def ensure_index(self, progress: bool = False, echo: Callable[[str], None] = lambda _m: None) -> BuildReport | None:
        """Build when the index is missing or stale (corpus or recipe changed); load it."""
        with self._lock:
            report = None
            if index_store.is_stale(self.settings, self.model.identity):
                report = index_store.build(self.settings, lambda: self.embedder, self.model.identity,
                                           progress=progress, echo=echo)
            if report is not None or self._index is None:
                self._load()
            return report

    @property
    def profile(self) -> profiles.Profile:
        """The merged profile of the indexed documents: what questions may name in them."""
        self._retriever_or_load()
        assert self._profile is not None
        return self._profile

    def _load(self) -> None:
        self._index = index_store.load_index(self.settings.paths.index_dir)
        documents = self._index.manifest["documents"]
        self._profile = profiles.for_documents(self.settings.paths.corpus_dir,
                                               [(doc_id, d["meta"]["kind"]) for doc_id, d in documents.items()])
        self._retriever = Retriever(self._index, self.embedder, self.settings.retrieval)

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[str] = (),
    ) -> Answer:
        """Answer one question; ``history`` holds earlier questions of a conversation."""
        question = " ".join((question or "").split())
        if not question:
            raise QuestionError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise QuestionError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        started = time.perf_counter()
        standalone = rewrite_followup(question, list(history))
        query = self.search_query(standalone)
        retriever = self._retriever_or_load()
        vector = self.embedder.encode_queries([query.dense])[0]
        passages = retriever.search(query, top_k=top_k, filters=filters, query_vector=vector)
        part = part_asked_about(query)
        if not part and objective_sought(query):
            chosen = self._objective_for(query.dense + " " + query.question, vector, areas_named(query))
            part = (Reference("objective", chosen),) if chosen else ()
        opening = retriever.opening(part, filters) if part else None
        if opening is not None:
            rest = [p for p in passages if p.chunk.chunk_id != opening.passage.chunk.chunk_id]
            passages = [opening.passage, *(replace(p, rank=i + 2) for i, p in enumerate(rest))][: len(passages) or 1]
        retrieved = time.perf_counter()
        answerer = Answerer(retriever.index, self.settings.answer, self.scorer)
        if opening is not None:
            text, citations = answerer.describe(opening.passage, opening.needle, opening.single)
            abstained = not citations
        elif passages:
            text, citations, abstained = answerer.answer(
                query.keyword if query.spanish else query.dense,
                passages,
                vector,
                check_terms="" if query.spanish else standalone,
                named_part=any(refers_to(p.chunk, r) for p in passages[: answerer.max_passages]
                               for r in query.references),
                topic=query.dense,
            )
        else:
            text, citations, abstained = NO_ANSWER, [], True
        shown = {p.chunk.chunk_id for p in passages}
        for c in citations:  # a list read on into the next chunk cites that chunk: it is shown too
            if c.chunk_id not in shown:
                chunk = retriever.index.chunks[retriever.index.position(c.chunk_id)]
                passages = [*passages, Passage(chunk=chunk, score=0.0, rank=len(passages) + 1)]
                shown.add(c.chunk_id)
        done = time.perf_counter()
        return Answer(
            question=question,
            answer=text,
            abstained=abstained,
            citations=citations,
            passages=passages,
            timings_ms={
                "retrieve": (retrieved - started) * 1000,
                "answer": (done - retrieved) * 1000,
                "total": (done - started) * 1000,
            },
            query=standalone,
        )

    def search_query(self, question: str) -> SearchQuery:
        """What the retrievers are given for a (standalone) question."""
        mode = self.settings.retrieval.spanish_dense
        return prepare(question, mode == "as_asked" or (mode == "auto" and self.embedder.multilingual), self.profile)

    def _objective_for(self, text: str, vector: np.ndarray, areas: Sequence[int]) -> int | None:
        """Which GCM objective a "which objective covers X?" question means, by the objectives'
        titles (embedded once per engine) and keywords."""
        with self._lock:
            if self._objective_titles is None:
                self._objective_titles = self.embedder.encode_documents(
                    [gcm.OBJECTIVES[n] for n in sorted(gcm.OBJECTIVES)])
        return gcm.choose_objective(self._objective_titles @ vector, text, self.settings.retrieval,
                                    self.profile.objectives_of(areas))

    def _retriever_or_load(self) -> Retriever:
        if self._retriever is None:
            self.ensure_index()
        assert self._retriever is not None
        return self._retriever

    def add(self, paths: Iterable[Path], progress: bool = False) -> AddResult:
        """Validate files, copy the good ones into the corpus with a manifest entry, re-index.

        Each file is parsed before it is copied, so a corrupt upload is rejected with its reason
        and never enters the corpus; the others go ahead.
        """
        corpus_dir = self.settings.paths.corpus_dir
        corpus_dir.mkdir(parents=True, exist_ok=True)
        added: list[str] = []
        replaced: list[str] = []
        errors: list[str] = []
        backups: dict[Path, Path | None] = {}  # corpus file -> its previous version, for rollback
        entries = corpus.read_manifest(corpus_dir)
        for path in paths:
            path = Path(path)
            try:
                if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    raise DocumentError(path, f"unsupported file type '{path.suffix}'; supported: "
                                              f"{', '.join(SUPPORTED_SUFFIXES)}")
                meta, _ = index_store.prepare_document(path, entries.get(path.name), self.settings)
            except DocumentError as exc:
                errors.append(str(exc))
                continue
            target = corpus_dir / path.name
            if path.resolve() != target.resolve():
                backup = None
                if target.exists():
                    replaced.append(path.name)
                    backup = corpus_dir / f".{path.name}.previous"
                    shutil.copyfile(target, backup)
                backups[target] = backup
                tmp = corpus_dir / f".{path.name}.part"
                shutil.copyfile(path, tmp)
                tmp.replace(target)
            if path.name not in entries:
                entries[path.name] = {k: v for k, v in meta.to_dict().items() if v is not None}
            added.append(path.name)
        manifest_path = corpus_dir / corpus.MANIFEST
        manifest_before = manifest_path.read_bytes() if manifest_path.exists() else None
        try:
            if added:
                corpus.write_manifest(corpus_dir, entries.values())
            report = self.build(progress=progress) if added else None
        except BaseException:
            # the corpus goes back to what it was, so it never holds files the index does not
            for target, backup in backups.items():
                if backup is None:
                    target.unlink(missing_ok=True)
                else:
                    backup.replace(target)
            if manifest_before is not None:
                manifest_path.write_bytes(manifest_before)
            raise
        for backup in backups.values():
            if backup is not None:
                backup.unlink(missing_ok=True)
        return AddResult(added, errors, report, replaced)

    def documents(self) -> list[dict[str, object]]:
        """The indexed documents with their metadata and chunk counts (for the library view)."""
        docs = self.index.manifest["documents"]
        return [{"doc_id": d, **v["meta"], "chunks": v["chunks"], "sha256": v["sha256"]} for d, v in docs.items()]
