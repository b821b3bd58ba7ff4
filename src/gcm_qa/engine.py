"""The library's front door: one object the CLI, the chat and the evaluation all call."""

from __future__ import annotations

import contextlib
import gc
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from gcm_qa import corpus, gcm, index_store, models, profiles
from gcm_qa.answering import NO_ANSWER, Answerer
from gcm_qa.comparison import (
    NOTHING_FOUND,
    Author,
    Comparison,
    Row,
    authors_of,
    cut_cell,
    named_authors,
    pick_authors,
    stakeholder_named,
    topic_of,
    widen,
)
from gcm_qa.coverage import By, Coverage, tabulate
from gcm_qa.embedder import Embedder, ResolvedModel, load_embedder, resolve
from gcm_qa.forms import FormReading, says_nothing
from gcm_qa.generation import NO_ANSWER_TOKEN, ChatModel, GenerationError
from gcm_qa.index_store import BuildReport, LoadedIndex
from gcm_qa.loaders import SUPPORTED_SUFFIXES, DocumentError
from gcm_qa.query import (
    SearchQuery,
    areas_named,
    objective_sought,
    other_language,
    part_asked_about,
    prepare,
    rewrite_followup,
)
from gcm_qa.retrieval import Filters, Retriever, refers_to
from gcm_qa.scoring import SentenceScorer, WeightedScorer
from gcm_qa.settings import AnswerSettings, Settings, with_tuned
from gcm_qa.types import Answer, Citation, DocMeta, Passage, Reference
from gcm_qa.verification import Verdict, best_support, check, split, without_markers


class QuestionError(ValueError):
    """The question itself is unusable (empty, too long)."""


MAX_QUESTION_CHARS = 2000


def checked_question(question: str | None) -> str:
    """The question with its whitespace collapsed; an empty or overlong one is a QuestionError."""
    question = " ".join((question or "").split())
    if not question:
        raise QuestionError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return question


@dataclass
class AddResult:
    added: list[str]  # names in the corpus
    errors: list[str]
    report: BuildReport | None
    replaced: list[str] = field(default_factory=list)  # names whose earlier version was replaced (replace=True)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (name taken, name given): both kept
    unchanged: list[str] = field(default_factory=list)  # names of corpus files identical to one given


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
        # Two locks, so that questions never wait behind indexing: the build lock serialises builds,
        # the model lock only the model's first load. A build swaps in the new index when it is ready;
        # questions meanwhile read the index loaded before it.
        self._lock = threading.RLock()
        self._model_lock = threading.RLock()
        self._objective_titles: np.ndarray | None = None
        self._profile: profiles.Profile | None = None
        self._authors: list[Author] = []
        self._forms_read: frozenset[str] = frozenset()
        self._recover(settings.paths.corpus_dir)

    @property
    def embedder(self) -> Embedder:
        with self._model_lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings.embedding, self.settings.paths.cache_dir, self.model)
            return self._embedder

    def prefetch_model(self) -> None:
        """Start loading the model on a thread of its own, so that it loads while the index is checked
        and read (a cold ``ask``: tokenizer and ONNX session beside the index, 1 s saved of 3). A
        failure is left for the first real use, which raises it with its message."""
        if self._embedder is not None:
            return

        def load() -> None:
            with contextlib.suppress(Exception):
                self.embedder  # noqa: B018 - loads and keeps it

        threading.Thread(target=load, name="gcm-qa-model", daemon=True).start()

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
        """Build when the index is missing or stale (corpus or recipe changed); load it.

        While another thread builds, an engine that has an index returns at once and keeps answering
        from it. When the refresh fails (a manifest that no longer parses, a full disk) and a built
        index exists, that index is served and a one-line notice says why it may be out of date."""
        if not self._lock.acquire(blocking=self._index is None):
            return None  # a build is under way; the loaded index answers until it is swapped in
        if self._index is None:
            self.prefetch_model()
        try:
            report = None
            try:
                if (index_store.current_folder(self.settings.paths.index_dir) is not None
                        and index_store.building(self.settings.paths.index_dir)):
                    notice = "another process is rebuilding the index; answering from the current one"
                    if notice not in self.notices:
                        self.notices.append(notice)
                    echo(f"gcm-qa: {notice}")
                elif index_store.is_stale(self.settings, self.model.identity):
                    report = index_store.build(self.settings, lambda: self.embedder, self.model.identity,
                                               progress=progress, echo=echo)
            except (ValueError, OSError) as exc:
                if index_store.current_folder(self.settings.paths.index_dir) is None:
                    raise
                notice = f"the index could not be refreshed ({exc}); answering from the last index built"
                if notice not in self.notices:
                    self.notices.append(notice)
                echo(f"gcm-qa: {notice}")
            if report is not None or self._index is None:
                self._load()
            return report
        finally:
            self._lock.release()

    @property
    def profile(self) -> profiles.Profile:
        """The merged profile of the indexed documents: what questions may name in them."""
        self._retriever_or_load()
        assert self._profile is not None
        return self._profile

    def _load(self) -> None:
        index = index_store.load_index(self.settings.paths.index_dir)
        documents = index.manifest["documents"]
        profile = profiles.for_documents(self.settings.paths.corpus_dir,
                                         [(doc_id, d["meta"]["kind"]) for doc_id, d in documents.items()])
        retriever = Retriever(index, self.embedder, self.settings.retrieval)
        authors = authors_of(DocMeta(**d["meta"]) for d in documents.values())
        forms_read = frozenset(doc_id for doc_id, d in documents.items() if d.get("form", {}).get("detected"))
        self.notices.extend(n for n in index.notices if n not in self.notices)  # a damaged build fell back
        # swapped in last, together: a question under way keeps the retriever (and its index) it took
        self._index, self._profile, self._retriever, self._authors = index, profile, retriever, authors
        self._forms_read = forms_read  # documents whose form was read: their passages under a question count
        # The index's passages are hundreds of thousands of objects that live as long as it does; left to
        # the cyclic collector, a question's allocations now and then set off a full collection that walks
        # them all (0.2 s at 100 times the report: the slowest question of the scale benchmark). Frozen, they
        # are skipped by it; they hold no cycles, so a replaced index is still freed when it is let go
        # (tests/test_index.py checks).
        gc.collect(1)
        gc.freeze()

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[str] = (),
        answerer: Literal["extractive", "llm"] | None = None,
    ) -> Answer:
        """Answer one question; ``history`` holds earlier questions of a conversation. ``answerer``:
        who writes the answer (default: ``llm.enabled``); see :meth:`ask_stream`."""
        final: Answer | None = None
        for event in self.ask_stream(question, top_k, filters, history, answerer):
            if isinstance(event, Answer):
                final = event
        assert final is not None
        return final

    def ask_stream(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[str] = (),
        answerer: Literal["extractive", "llm"] | None = None,
    ) -> Iterator[str | Answer]:
        """The answer as it is written: pieces of generated text (with the language model), then the
        final :class:`Answer` — checked sentence by sentence, or the extractive answer with a notice
        when the model failed or its answer did not hold up. Extractive answers come whole."""
        extractive = self._extract(question, top_k, filters, history)
        use_llm = answerer == "llm" or (answerer is None and self.settings.llm.enabled)
        if not use_llm or not extractive.passages:
            yield extractive
            return
        yield from self._generate(extractive)

    def _generate(self, extractive: Answer) -> Iterator[str | Answer]:
        s = self.settings.llm
        given = extractive.passages[: s.passages]
        model = ChatModel(s)
        started = time.perf_counter()
        pieces: list[str] = []
        try:
            for piece in model.stream(extractive.query or extractive.question, given, s.max_sentences):
                pieces.append(piece)
                yield piece
        except GenerationError as exc:
            yield replace(extractive, notice=f"The language model ({model.where}) gave no answer: {exc}. "
                                             "This is the extractive answer.")
            return
        text = " ".join("".join(pieces).split())
        timings = {**extractive.timings_ms, "generate": (time.perf_counter() - started) * 1000}
        if text.strip(" .") == NO_ANSWER_TOKEN:
            yield replace(extractive, answer=NO_ANSWER, abstained=True, citations=[], answerer="llm",
                          timings_ms=timings)
            return
        verdict = self._verify(text, given)
        unsupported = [{"sentence": c.text, "reasons": list(c.reasons)} for c in verdict.unsupported]
        if not verdict.sentences or verdict.invented_figure or verdict.share_unsupported() > s.max_unsupported:
            why = ("its reply held no sentence" if not verdict.sentences else
                   next((r for c in verdict.unsupported for r in c.reasons if r.startswith("figure")), None)
                   or f"{len(verdict.unsupported)} of {len(verdict.sentences)} sentences are not supported by "
                      f"the passages they cite")
            yield replace(extractive, unsupported=unsupported, timings_ms=timings,
                          notice=f"The generated answer was not used: {why}. This is the extractive answer.")
            return
        citations: list[Citation] = []
        for checked in verdict.sentences:
            for n in checked.cites:
                if not 1 <= n <= len(given) or any(c.n == n for c in citations):
                    continue
                p = given[n - 1]
                quote = checked.quote if checked.quote_passage == n and checked.quote else p.chunk.text[:300]
                citations.append(Citation(n=n, doc_id=p.chunk.doc_id, title=p.chunk.title,
                                          section=p.chunk.section_label, page=p.chunk.page_label, quote=quote,
                                          score=p.score, passage_rank=p.rank, chunk_id=p.chunk.chunk_id,
                                          ocr=p.chunk.ocr))
        citations.sort(key=lambda c: c.n)
        timings["total"] = extractive.timings_ms.get("total", 0.0) + timings["generate"]
        yield replace(extractive, answer=text, abstained=False, citations=citations, answerer="llm",
                      unsupported=unsupported, timings_ms=timings)

    def _verify(self, text: str, given: Sequence[Passage]) -> Verdict:
        """Check each generated sentence against the sentences of the passages it cites, with the
        index's own sentence vectors (only the generated sentences are embedded)."""
        index = self.index
        plain = [without_markers(x) for x in split(text)]
        with self._model_lock:
            vectors = self.embedder.encode_documents([p for p in plain if p]) if any(plain) else None
        by_text = {p: vectors[i] for i, p in enumerate(x for x in plain if x)} if vectors is not None else {}

        def support(sentence: str, cited: Sequence[int]) -> tuple[float, int, str]:
            vector = by_text.get(sentence)
            if vector is None:
                vector = self.embedder.encode_documents([sentence])[0]
            candidates = []
            for n in cited:
                chunk = given[n - 1].chunk
                for row in index.sentence_rows(index.position(chunk.chunk_id)):
                    _, a, b = (int(v) for v in index.sentence_spans[row])
                    candidates.append((n, chunk.text[a:b], index.sentence_embeddings[row]))
            return best_support(vector, candidates)

        return check(text, [p.chunk.text for p in given], support, self.settings.llm.support_threshold,
                     other_language)

    def _extract(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[str] = (),
    ) -> Answer:
        """The extractive answer (and the passages any answer is written from)."""
        question = checked_question(question)
        started = time.perf_counter()
        standalone = rewrite_followup(question, list(history))
        retriever = self._retriever_or_load()
        check_terms = searched = standalone
        answer_settings = self.settings.answer
        if filters is None or not filters.author:
            # "what did Valdoria report on X" is answered from Valdoria's answers: another author's
            # answer on X, however close, is not what Valdoria said; nor is Valdoria's cover page.
            # The names are then no term a passage must repeat (an answer rarely names its author).
            named = [a for a in named_authors(standalone, self._authors) if "questionnaire" in a.kinds]
            if named:
                filters = replace(filters or Filters(), author=tuple(a.name for a in named),
                                  answers_of=tuple(d for a in named for d in a.doc_ids if d in self._forms_read))
                # searched and judged as one row of a comparison: for the matter, within the author
                check_terms = searched = topic_of(standalone, named)
                answer_settings = self._row_settings()
        query = self.search_query(searched)
        encoding = time.perf_counter()
        vector = self.embedder.encode_queries([query.dense])[0]
        encoded = time.perf_counter()
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
        answerer = Answerer(retriever.index, answer_settings, self.scorer)
        if opening is not None:
            text, citations = answerer.describe(opening.passage, opening.needle, opening.single)
            abstained = not citations
        elif passages:
            text, citations, abstained = answerer.answer(
                query.keyword if query.spanish else query.dense,
                passages,
                vector,
                check_terms="" if query.spanish else check_terms,
                named_part=any(refers_to(p.chunk, r) for p in passages[: answerer.max_passages]
                               for r in query.references),
                topic=(query.dense, other_language(searched)),
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
            timings_ms={  # encode: the question's vector; retrieve: the rest of the search, before and after it
                "encode": (encoded - encoding) * 1000,
                "retrieve": (retrieved - started - (encoded - encoding)) * 1000,
                "answer": (done - retrieved) * 1000,
                "total": (done - started) * 1000,
            },
            query=standalone,
        )

    def authors(self) -> list[Author]:
        """The indexed authors, States first, each with its documents."""
        self._retriever_or_load()
        return list(self._authors)

    def compare(
        self, question: str, authors: Sequence[str] = (), stakeholders: Sequence[str] = ()
    ) -> Comparison:
        """One row per author in scope, each answered from that author's documents alone.

        Scope: the ``authors`` given (by name or country, in part), else the authors the question
        names, else every author of a voluntary report, of the ``stakeholders`` given or the kind
        the question asks about ("which countries..." means States). Each author's documents are
        searched for the question's topic (its comparative frame and author names taken off) and
        answered as a single question would be, abstention included: an author whose documents do
        not support an answer, or whose answer is "no information", gets a "nothing found" row.
        """
        question = checked_question(question)
        started = time.perf_counter()
        retriever = self._retriever_or_load()
        known = self._authors
        named = named_authors(question, known)
        unknown: list[str] = []
        if authors:
            pool, unknown = pick_authors(authors, known)
            scope = "authors chosen"
        elif named:
            pool, scope = named, "authors named in the question"
        else:
            pool = [a for a in known if "questionnaire" in a.kinds]
            scope = "authors of voluntary reports"
            implied = stakeholder_named(question)
            if not stakeholders and implied:
                stakeholders = (implied,)
        if stakeholders:
            pool = [a for a in pool if a.stakeholder in stakeholders]
            scope += f" ({', '.join(stakeholders)})"
        topic = topic_of(question, named)
        query = self.search_query(topic)
        vector = self.embedder.encode_queries([query.dense])[0]
        cs = self.settings.compare
        answerer = Answerer(retriever.index, self._row_settings(), self.scorer)
        rows: list[Row] = []
        topics = (query.dense, other_language(topic))
        for author in pool:
            own = Filters(author=(author.name,), answers_of=tuple(d for d in author.doc_ids if d in self._forms_read))
            passages = retriever.search(query, top_k=cs.passages, filters=own, query_vector=vector)
            citations = []
            if passages:
                _, citations, abstained = answerer.answer(
                    query.keyword if query.spanish else query.dense, passages, vector,
                    check_terms="" if query.spanish else topic, topic=topics)
                citations = [] if abstained else citations
            cited = next((c for c in citations if not says_nothing(c.quote)), None)
            language = author.languages[0] if author.languages else ""
            backing = answerer.support if passages else None
            if cited is None:
                rows.append(Row(author.name, author.stakeholder, author.country, language, False, NOTHING_FOUND,
                                support=backing))
                continue
            chunk = retriever.index.chunks[retriever.index.position(cited.chunk_id)]
            cited = replace(cited, n=1, quote=widen(chunk.text, cited.quote, cs.cell_chars))
            rows.append(Row(author.name, author.stakeholder, author.country, language, True,
                            cut_cell(cited.quote, cs.cell_chars), cited, backing))
        done = time.perf_counter()
        return Comparison(question, topic, scope, rows, unknown,
                          {"total": (done - started) * 1000, "per_author": (done - started) * 1000 / max(len(pool), 1)})

    def _row_settings(self) -> AnswerSettings:
        """The answerer's settings for one author's documents (a comparison's row, or a question that
        names its author): the per-author abstention threshold, when one is set."""
        threshold = self.settings.compare.abstain_threshold
        answer = self.settings.answer
        return answer if threshold is None else answer.model_copy(update={"abstain_threshold": threshold})

    def coverage(self, by: By = "area") -> Coverage:
        """Authors of voluntary reports by thematic area or objective, with the answers each gave."""
        docs = self.index.manifest["documents"]
        return tabulate([DocMeta(**v["meta"]) for v in docs.values()], self.forms(), by)

    def records(self) -> list[dict[str, object]]:
        """Every answer read from a form, with who gave it: the records of the voluntary reports as
        one table (author, stakeholder, country, language, document, question number and text,
        areas, objectives, answer, page)."""
        docs = self.index.manifest["documents"]
        out: list[dict[str, object]] = []
        for doc_id, reading in self.forms().items():
            meta = DocMeta(**docs[doc_id]["meta"])
            for r in reading.records:
                out.append({"author": meta.author, "stakeholder": meta.stakeholder, "country": meta.country,
                            "language": meta.language, "doc_id": doc_id, "file": meta.file, **r.to_dict()})
        return out

    def forms(self) -> dict[str, FormReading]:
        """Each questionnaire's form as read at indexing, by document id."""
        docs = self.index.manifest["documents"]
        return {d: FormReading.from_dict(v["form"]) for d, v in docs.items() if "form" in v}

    def search_query(self, question: str) -> SearchQuery:
        """What the retrievers are given for a (standalone) question."""
        mode = self.settings.retrieval.spanish_dense
        return prepare(question, mode == "as_asked" or (mode == "auto" and self.embedder.multilingual), self.profile)

    def _objective_for(self, text: str, vector: np.ndarray, areas: Sequence[int]) -> int | None:
        """Which GCM objective a "which objective covers X?" question means, by the objectives'
        titles (embedded once per engine) and keywords."""
        with self._model_lock:
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

    def add(self, paths: Iterable[Path], progress: bool = False, replace_existing: bool = False) -> AddResult:
        """Validate files, copy the good ones into the corpus with a manifest entry, re-index.

        Each file is parsed before it is copied, so a corrupt upload is rejected with its reason
        and never enters the corpus; the others go ahead. Names are made safe (``corpus.safe_name``).
        A file whose name is taken keeps the earlier one: it is added under a free name ('x (2).pdf'),
        or, with ``replace_existing``, replaces it. A file identical to one in the corpus is not added twice.
        The add is journaled (``corpus.begin_add``): if it fails, or the process is killed, the
        corpus and its manifest go back to what they were.
        """
        corpus_dir = self.settings.paths.corpus_dir
        corpus_dir.mkdir(parents=True, exist_ok=True)
        with corpus.adding(corpus_dir):  # one add at a time; its journal is not undone while it runs
            return self._add(corpus_dir, [Path(p) for p in paths], progress, replace_existing)

    def _add(self, corpus_dir: Path, paths: list[Path], progress: bool, replace_existing: bool) -> AddResult:
        result = AddResult([], [], None)
        entries = corpus.read_manifest(corpus_dir, problems=[])
        plan: list[tuple[Path, str, DocMeta]] = []  # source, name in the corpus, metadata
        taken: set[str] = set()
        present = {corpus.sha256_file(p): p.name for p in corpus.list_files(corpus_dir)}
        for path in paths:
            try:
                if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    raise DocumentError(path, f"unsupported file type '{path.suffix}'; supported: "
                                              f"{', '.join(SUPPORTED_SUFFIXES)}")
                name = corpus.safe_name(path.name)
                target = corpus_dir / name
                if target.exists() and path.resolve() == target.resolve():
                    plan.append((path, name, index_store.prepare_document(path, entries.get(name), self.settings).meta))
                    continue
                same = present.get(corpus.sha256_file(path))
                if same is not None:
                    result.unchanged.append(same)
                    continue
                if name in taken or (target.exists() and not replace_existing):
                    kept, name = name, corpus.free_name(corpus_dir, name, taken)
                    result.renamed.append((kept, name))
                meta = index_store.prepare_document(path, entries.get(name), self.settings).meta
                meta = replace(meta, file=name, doc_id=corpus.slugify(Path(name).stem))
            except DocumentError as exc:
                result.errors.append(str(exc))
                continue
            except OSError as exc:
                result.errors.append(f"{path.name}: cannot be read ({exc.strerror or exc})")
                continue
            taken.add(name)
            plan.append((path, name, meta))
        if not plan:
            return result
        copies = [(path, name) for path, name, _ in plan if path.resolve() != (corpus_dir / name).resolve()]
        replaced = [name for _, name in copies if (corpus_dir / name).exists()]
        corpus.begin_add(corpus_dir, [n for _, n in copies if n not in replaced], replaced)
        try:
            for path, name in copies:
                tmp = corpus_dir / f".{name}.part"
                shutil.copyfile(path, tmp)
                tmp.replace(corpus_dir / name)
            for _, name, meta in plan:
                entries.setdefault(name, {k: v for k, v in meta.to_dict().items() if v is not None})
            corpus.write_manifest(corpus_dir, entries.values())
            result.report = self.build(progress=progress)
        except BaseException:
            corpus.undo_add(corpus_dir)  # the corpus never holds files the index does not
            raise
        corpus.end_add(corpus_dir)
        result.added = [name for _, name, _ in plan]
        result.replaced = replaced
        return result

    def _recover(self, corpus_dir: Path) -> None:
        """Undo an add a killed process left half done, and say so once."""
        undone = corpus.recover(corpus_dir) if corpus_dir.is_dir() else []
        if undone:
            notice = f"an interrupted add was undone; not added: {', '.join(undone)}"
            self.notices.append(notice)

    def documents(self) -> list[dict[str, object]]:
        """The indexed documents with their metadata and chunk counts (for the library view)."""
        docs = self.index.manifest["documents"]
        out: list[dict[str, object]] = []
        for d, v in docs.items():
            form = FormReading.from_dict(v["form"]) if "form" in v else None
            out.append({"doc_id": d, "country": None, **v["meta"], "chunks": v["chunks"], "sha256": v["sha256"],
                        # answers read from a questionnaire's form; None: not a questionnaire, or its
                        # layout was not read (``form_note`` says which)
                        "answers": form.answered if form is not None and form.detected else None,
                        "form_note": form.note if form is not None else ""})
        return out
