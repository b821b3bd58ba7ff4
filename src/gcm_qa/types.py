"""Plain data passed between the stages; all of it serialises to JSON without pickle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("report", "questionnaire")
STAKEHOLDERS = ("State", "intergovernmental body", "civil society", "other")


@dataclass(frozen=True)
class DocMeta:
    """What the corpus manifest records about one document."""

    doc_id: str
    file: str
    title: str
    kind: str = "questionnaire"
    author: str = "unknown"
    stakeholder: str = "other"
    language: str = "en"
    year: int | None = None
    source_url: str | None = None
    # the country an author speaks for (a State) or is based in: rows of a comparison are read by it
    country: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Parts of a document a question can name. Numbered: "thematic area", "annex", "textbox", "table",
# "objective", "graph". Named: "heading" (a sub-heading under a numbered part: "challenges"), "title"
# (a top-level part by the start of its title: "foreword").
NUMBERED_PARTS = ("thematic area", "annex", "textbox", "table", "objective", "graph")
NAMED_PARTS = ("heading", "title")


@dataclass(frozen=True)
class Reference:
    """A part of a document a question names: ``Reference("annex", 2)``,
    ``Reference("heading", name="challenges")``, ``Reference("title", name="foreword")``.

    Numbered kinds carry a number and no name, named kinds a name (accent-folded, lower case) and no
    number; anything else is a programming or profile error, caught here rather than as a reference
    that silently matches nothing.
    """

    kind: str
    number: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind in NUMBERED_PARTS:
            if self.number is None or self.name:
                raise ValueError(f"a {self.kind!r} reference needs a number and no name")
        elif self.kind in NAMED_PARTS:
            if self.number is not None or not self.name:
                raise ValueError(f"a {self.kind!r} reference needs a name and no number")
        else:
            raise ValueError(f"unknown kind of reference {self.kind!r}; known: {NUMBERED_PARTS + NAMED_PARTS}")

    def __str__(self) -> str:
        """How the part is written in prose and logs: "annex 2", "heading challenges"."""
        return f"{self.kind} {self.number if self.number is not None else self.name}"


@dataclass(frozen=True)
class Section:
    """A heading's span over the cleaned text; ``path`` runs from the top heading down."""

    path: tuple[str, ...]
    start: int
    end: int


@dataclass
class Chunk:
    """One retrievable passage, with everything a citation needs."""

    chunk_id: str
    doc_id: str
    title: str
    kind: str
    author: str
    language: str
    stakeholder: str
    section: list[str]
    page_start: int | None
    page_end: int | None
    start: int
    end: int
    text: str
    areas: list[int] = field(default_factory=list)
    objectives: list[int] = field(default_factory=list)
    ocr: bool = False  # its text, or part of it, was read by OCR from a scanned page

    @property
    def section_label(self) -> str:
        return " > ".join(self.section)

    @property
    def page_label(self) -> str | None:
        if self.page_start is None:
            return None
        if self.page_end is None or self.page_end == self.page_start:
            return str(self.page_start)
        return f"{self.page_start}-{self.page_end}"

    def embed_text(self) -> str:
        """What the embedder and BM25 see: the innermost headings, then the passage.

        Prefixing the section title lets a chunk deep inside "2.3.3 Challenges" match a question
        about challenges of irregular migration even when its sentences never say so.
        """
        heads = [h for h in self.section[-2:] if h]
        return (" / ".join(heads) + "\n" + self.text) if heads else self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


@dataclass(frozen=True)
class Record:
    """One answer to one question of a questionnaire (:mod:`gcm_qa.forms`). Who gave it (author,
    stakeholder, country, language) is the document's, read from its metadata when used, so a
    corrected manifest entry never leaves stale copies behind."""

    number: str | None  # as printed: "3", "2.1", "b"
    question: str
    answer: str
    answered: bool  # False for an empty answer or "no information" / "not applicable"
    areas: list[int]
    objectives: list[int]
    page_start: int | None
    page_end: int | None
    start: int  # the answer's offsets in the document's cleaned text
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(**data)


@dataclass
class Passage:
    """A retrieved chunk with its fused score and rank."""

    chunk: Chunk
    score: float
    rank: int
    dense_score: float | None = None
    bm25_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "rank": self.rank,
            "chunk_id": c.chunk_id,
            "doc_id": c.doc_id,
            "title": c.title,
            "kind": c.kind,
            "author": c.author,
            "language": c.language,
            "section": c.section_label,
            "page": c.page_label,
            "start": c.start,
            "end": c.end,
            "areas": c.areas,
            "objectives": c.objectives,
            "ocr": c.ocr,
            "score": round(self.score, 6),
            "dense_score": None if self.dense_score is None else round(self.dense_score, 6),
            "bm25_score": None if self.bm25_score is None else round(self.bm25_score, 6),
            "text": c.text,
        }


@dataclass
class Citation:
    n: int
    doc_id: str
    title: str
    section: str
    page: str | None
    quote: str
    score: float
    passage_rank: int
    chunk_id: str
    ocr: bool = False  # the quote was read by OCR from a scan: machine reading, to check against it

    @property
    def page_reference(self) -> str:
        """"p. 7", "pp. 22-26", or "" when the document has no pages."""
        if not self.page:
            return ""
        return f"{'pp' if '-' in self.page else 'p'}. {self.page}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(self.score, 6)
        return d


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    passages: list[Passage]
    timings_ms: dict[str, float]
    query: str | None = None  # the standalone query actually searched, when it differs
    answerer: str = "extractive"  # or "llm": who wrote ``answer``
    # generated sentences the check did not find in their sources: {"sentence", "reasons"}
    unsupported: list[dict[str, Any]] = field(default_factory=list)
    notice: str | None = None  # one line for the user: why the generated answer was not used

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "answerer": self.answerer,
            "unsupported": self.unsupported,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
        if self.query is not None and self.query != self.question:
            d["query"] = self.query
        if self.notice:
            d["notice"] = self.notice
        return d
