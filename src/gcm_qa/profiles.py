"""What the tool knows about one document, read from data beside the corpus.

The general modules (cleaning, structure, chunking, tagging, query preparation) know how documents
are usually laid out; a profile adds what only one document, or one kind of document, says about
itself: the titles of its front matter, the chapter that holds the thematic areas, the table that
groups the GCM objectives into those areas, parts that questions name by title ("the concept note"
is Annex 1), and its recurring sub-headings. Knowledge of the Global Compact itself (its 23
objectives and their keywords) is in :mod:`gcm_qa.gcm`, for every document.

Where a profile is found, for a document with id ``doc_id`` and kind ``kind``:

1. ``<corpus>/profiles/<doc_id>.toml``, the document's own;
2. else ``<corpus>/profiles/kinds/<kind>.toml``, the default of its kind in this corpus;
3. else the default of its kind shipped with gcm-qa (``gcm_qa/data/profiles/kinds/<kind>.toml``:
   ``questionnaire.toml`` holds what the report says about the review questionnaires, which every
   user's corpus of voluntary reports needs, wherever it lives);
4. else :data:`EMPTY`: the general rules alone.

A new document gets a profile by adding ``profiles/<doc_id>.toml`` (every field is optional; the
fields are those of :class:`Profile`) and re-indexing: the profiles folder is hashed into the index
recipe, so any change to it rebuilds. At question time the profiles of all indexed documents are
merged (:func:`merge`), since a question does not say which document it means.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError

from gcm_qa.types import Reference

PROFILES_DIR = "profiles"
KINDS_DIR = "kinds"
SHIPPED = Path(__file__).parent / "data" / PROFILES_DIR  # the kinds' defaults that come with gcm-qa

_STRICT = ConfigDict(extra="forbid")


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class PartAlias:
    """A part of the document that questions name by title: when every entry of ``words`` occurs
    in the question (accent-folded, lower case, whole words), it names the part given by ``kind``,
    ``number`` and ``name`` (the fields of :class:`~gcm_qa.types.Reference`)."""

    __pydantic_config__ = _STRICT

    words: tuple[str, ...]
    kind: str
    number: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.words:
            raise ValueError("a part alias needs at least one entry in 'words'")
        self.reference  # noqa: B018 - a kind, number and name that make no reference fail here, at load

    @property
    def reference(self) -> Reference:
        return Reference(self.kind, self.number, self.name)


@dataclass(frozen=True)
class Subheading:
    """A sub-heading that recurs under the document's numbered parts (``name`` starts its title:
    "challenges" is "2.4.3 Challenges"), and ``words``, regular expressions over the accent-folded
    question, that ask for it in any language the questions come in."""

    __pydantic_config__ = _STRICT

    name: str
    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name or not self.words:
            raise ValueError("a sub-heading needs a 'name' and at least one entry in 'words'")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"sub-heading {self.name!r}: 'words' are not valid regular expressions ({exc})") from exc

    @property
    def pattern(self) -> str:
        return "|".join(self.words)


@dataclass(frozen=True)
class ThematicArea:
    """One thematic area: its number, its short title (shown in the chat's filter) and the GCM
    objectives it groups."""

    __pydantic_config__ = _STRICT

    number: int
    title: str
    objectives: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.number < 1 or not self.objectives or any(not 1 <= o <= 23 for o in self.objectives):
            raise ValueError(f"thematic area {self.number}: needs a number >= 1 and GCM objectives between 1 and 23")


@dataclass(frozen=True)
class Profile:
    """Every field is optional; the defaults are the general rules (no document-specific knowledge).

    Index time (they shape chunks, so the profiles folder is part of the index recipe):
    ``top_titles`` and ``sub_titles``, unnumbered lines (lower case, without a final colon or period)
    that are level-1 and level-2 headings, beside the general ones in :mod:`gcm_qa.structure`;
    ``pages``, where a text without page breaks takes its pages from ("contents": each section from
    the page its table of contents gives; "breaks": page breaks only, so no pages);
    ``area_chapter``, the chapter whose numbered sections are the thematic areas (2: section 2.k is
    area k); ``areas``, the thematic areas and the objectives each groups.

    Question time (merged over the indexed documents): ``areas``; ``parts``, parts named by title;
    ``subheadings``, recurring sub-headings, asked for together with a numbered part ("the challenges
    of thematic area 4"); ``report_wide``, sections a question about "the report" as a whole asks for
    ("what does the report recommend" asks for its recommendations).
    """

    __pydantic_config__ = _STRICT

    top_titles: frozenset[str] = field(default_factory=frozenset)
    sub_titles: frozenset[str] = field(default_factory=frozenset)
    pages: Literal["contents", "breaks"] = "contents"
    area_chapter: int | None = None
    areas: tuple[ThematicArea, ...] = ()
    parts: tuple[PartAlias, ...] = ()
    subheadings: tuple[Subheading, ...] = ()
    report_wide: tuple[Subheading, ...] = ()

    def __post_init__(self) -> None:
        numbers = [a.number for a in self.areas]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"thematic areas are numbered twice: {numbers}")
        for titles in (self.top_titles, self.sub_titles):
            if any(t != t.lower().strip() for t in titles):
                raise ValueError("titles are matched in lower case: write them in lower case, without spaces around")

    @property
    def area_titles(self) -> dict[int, str]:
        return {a.number: a.title for a in self.areas}

    @property
    def area_objectives(self) -> dict[int, tuple[int, ...]]:
        return {a.number: a.objectives for a in self.areas}

    def objectives_of(self, areas: Iterable[int]) -> set[int]:
        """The objectives the given thematic areas group (none for an area the profile lacks)."""
        by_area = self.area_objectives
        return {o for a in areas for o in by_area.get(a, ())}


EMPTY = Profile()

_ADAPTER = TypeAdapter(Profile)


def _reason(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            reasons.append(f"unknown key '{where}'")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            reasons.append(f"{where}: {message}" if where else message)
    return "; ".join(reasons)


def load(path: Path) -> Profile:
    """Read and validate one profile file; :class:`ProfileError` names the file and what is wrong
    (not TOML, an unknown key, a value of the wrong type)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from exc
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ProfileError(f"{path}: {_reason(exc)}") from exc
    except ValueError as exc:
        raise ProfileError(f"{path}: {exc}") from exc


def path_for(corpus_dir: Path, doc_id: str, kind: str) -> Path | None:
    """The file that holds a document's profile: its own, else its kind's, else None."""
    folder = corpus_dir / PROFILES_DIR
    for candidate in (folder / f"{doc_id}.toml", folder / KINDS_DIR / f"{kind}.toml",
                      SHIPPED / KINDS_DIR / f"{kind}.toml"):
        if candidate.is_file():
            return candidate
    return None


def for_document(corpus_dir: Path, doc_id: str, kind: str) -> Profile:
    path = path_for(corpus_dir, doc_id, kind)
    return load(path) if path is not None else EMPTY


def merge(profiles: Iterable[Profile]) -> Profile:
    """One profile for questions over several documents: every document's parts, sub-headings and
    titles; for a thematic area or a sub-heading two documents both define, the first one's.

    The index-time layout fields (``pages``, ``area_chapter``) describe one document each and are
    left at their defaults."""
    profiles = list(profiles)
    areas: dict[int, ThematicArea] = {}
    subheadings: dict[str, Subheading] = {}
    report_wide: dict[str, Subheading] = {}
    parts: dict[PartAlias, None] = {}
    for p in profiles:
        for area in p.areas:
            areas.setdefault(area.number, area)
        for s in p.subheadings:
            subheadings.setdefault(s.name, s)
        for s in p.report_wide:
            report_wide.setdefault(s.name, s)
        parts.update(dict.fromkeys(p.parts))
    return Profile(
        top_titles=frozenset().union(*(p.top_titles for p in profiles)),
        sub_titles=frozenset().union(*(p.sub_titles for p in profiles)),
        areas=tuple(areas.values()),
        parts=tuple(parts),
        subheadings=tuple(subheadings.values()),
        report_wide=tuple(report_wide.values()),
    )


def for_documents(corpus_dir: Path, documents: Iterable[tuple[str, str]]) -> Profile:
    """The merged profile of the documents given as (doc_id, kind), each file read once."""
    paths = dict.fromkeys(path_for(corpus_dir, doc_id, kind) for doc_id, kind in documents)
    return merge(load(p) for p in paths if p is not None)


def fingerprint(corpus_dir: Path) -> str:
    """A hash of every profile file (names and bytes), for the index recipe: a changed profile may
    change headings, pages and tags, so it rebuilds the index."""
    h = hashlib.sha256()
    for folder in (corpus_dir / PROFILES_DIR, SHIPPED):
        for path in sorted(folder.rglob("*.toml")) if folder.is_dir() else ():
            h.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
            h.update(path.read_bytes() + b"\0")
        h.update(b"\1")
    return h.hexdigest()[:16]
