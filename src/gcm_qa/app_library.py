"""The chat's library tab without Gradio: the documents table and upload handling.

An upload is checked here before the engine sees it (type, size, a name that is safe and does not
replace a document already in the corpus, content already indexed), then handed to
:meth:`Engine.add`, which parses each file before copying it into the corpus, so a corrupt file is
rejected with its reason and nothing already indexed is lost.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcm_qa.app_render import escape_markdown
from gcm_qa.corpus import free_name, safe_name, sha256_file
from gcm_qa.engine import Engine
from gcm_qa.loaders import SUPPORTED_SUFFIXES

UPLOAD_TYPES = ".pdf, .docx, .txt, .md"
DOC_HEADERS = ["Title", "File", "Kind", "Author", "Stakeholder", "Country", "Language", "Year", "Answers",
               "Chunks"]
DOC_COLUMN_WIDTHS = ["20%", "13%", "9%", "13%", "12%", "8%", "7%", "5%", "7%", "6%"]
LAYOUT_NOT_READ = "layout not read"

Progress = Callable[..., Any]


@dataclass
class UploadOutcome:
    """What happened to one upload batch: files added (as named in the corpus) and per-file errors."""

    added: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chunks: dict[str, int] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """Markdown for the status box; every file name and reason is escaped."""
        lines: list[str] = []
        for name in self.added:
            n = self.chunks.get(name)
            extra = f" ({n} passage{'s' if n != 1 else ''})" if n else ""
            lines.append(f"**Added** {escape_markdown(name)}{extra}: you can ask about it now.")
        for note in self.notes:
            lines.append(f"**Note:** {escape_markdown(note)}")
        for error in self.errors:
            name, _, reason = error.partition(": ")
            if reason:
                lines.append(f"**Rejected** {escape_markdown(name)}: {escape_markdown(reason)}")
            else:
                lines.append(f"**Rejected:** {escape_markdown(error)}")
        if not lines:
            lines.append("Choose one or more files first (PDF, DOCX, TXT or Markdown).")
        return "\n\n".join(lines)


def _file_path(item: object) -> Path:
    """Gradio hands over str paths (type='filepath'); older code paths give objects with .name."""
    if isinstance(item, (str, os.PathLike)):
        return Path(item)
    name = getattr(item, "path", None) or getattr(item, "name", None)
    if name is None:
        raise TypeError(f"not a file: {item!r}")
    return Path(name)


def _indexed_hashes(engine: Engine) -> dict[str, str]:
    """sha256 -> file name of every indexed document."""
    try:
        docs = engine.index.manifest.get("documents", {})
    except Exception:  # no index yet: nothing can be a duplicate
        return {}
    return {d["sha256"]: d["file"] for d in docs.values() if "sha256" in d}


def handle_upload(
    engine: Engine,
    files: Sequence[object] | object | None,
    max_mb: float,
    progress: Progress | None = None,
) -> UploadOutcome:
    """Validate uploads, add the good ones to the index, and say what happened to each file."""
    report = progress or (lambda *_a, **_k: None)
    outcome = UploadOutcome()
    if files is None:
        return outcome
    items = list(files) if isinstance(files, (list, tuple)) else [files]
    if not items:
        return outcome
    report(0.0, desc="Checking the files")
    corpus_dir = engine.settings.paths.corpus_dir
    limit = int(max_mb * 1024 * 1024)
    known = _indexed_hashes(engine)
    taken: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="gcm-qa-stage-") as stage:
        staged: list[Path] = []
        for item in items:
            path = _file_path(item)
            shown = Path(path).name
            suffix = path.suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                what = f"'{path.suffix}'" if path.suffix else "without an extension"
                outcome.errors.append(f"{shown}: unsupported file type {what}; upload PDF, DOCX, TXT or "
                                      "Markdown files")
                continue
            try:
                size = path.stat().st_size
            except OSError:
                outcome.errors.append(f"{shown}: the upload could not be read; try again")
                continue
            if size > limit:
                outcome.errors.append(f"{shown}: {size / 1024 / 1024:.1f} MB is over the {max_mb:g} MB "
                                      "upload limit")
                continue
            if size == 0:
                outcome.errors.append(f"{shown}: the file is empty")
                continue
            sha = sha256_file(path)
            if sha in known:
                outcome.notes.append(f"{shown} is already in the library as {known[sha]}; nothing to add.")
                continue
            name = free_name(corpus_dir, safe_name(shown), taken)
            taken.add(name)
            folder = Path(stage) / str(len(staged))
            folder.mkdir()
            target = folder / name
            shutil.copyfile(path, target)
            staged.append(target)
            if name != shown:
                outcome.notes.append(f"{shown} is stored as {name} (a document with that name exists "
                                     "or the name had unsafe characters).")
        if not staged:
            report(1.0, desc="Nothing to add")
            return outcome
        for i, target in enumerate(staged):
            report(0.1 + 0.9 * i / len(staged), desc=f"Reading and indexing {target.name} ({i + 1}/{len(staged)})")
            try:
                result = engine.add([target], progress=True)
            except Exception as exc:  # one bad upload must not take the others down
                outcome.errors.append(f"{target.name}: could not be added ({type(exc).__name__}: {exc})")
                continue
            outcome.errors.extend(result.errors)
            outcome.added.extend(result.added)
            if result.report is not None:
                outcome.errors.extend(e for e in result.report.errors if e.split(": ", 1)[0] in result.added)
    counts = {str(d.get("file")): int(d.get("chunks", 0)) for d in engine.documents()}
    outcome.chunks = {name: counts.get(name, 0) for name in outcome.added}
    report(1.0, desc="Done")
    return outcome


def answers_cell(doc: dict[str, object]) -> str:
    """How many answers were read from a questionnaire's form; "layout not read" when its form was
    not recognised (it is still searchable, but comparisons and coverage cannot count it); blank
    for anything that is not a questionnaire form (the report)."""
    answers = doc.get("answers")
    if answers is not None:
        return str(answers)
    if doc.get("kind") == "questionnaire" and doc.get("form_note"):
        return LAYOUT_NOT_READ
    return ""


def documents_table(engine: Engine) -> list[list[object]]:
    """One row per indexed document (columns as :data:`DOC_HEADERS`), reports first, then by title."""
    rows = []
    for d in engine.documents():
        rows.append([
            d.get("title") or "",
            d.get("file") or "",
            d.get("kind") or "",
            d.get("author") or "",
            d.get("stakeholder") or "",
            d.get("country") or "",
            d.get("language") or "",
            d.get("year") if d.get("year") is not None else "",
            answers_cell(d),
            d.get("chunks", 0),
        ])
    rows.sort(key=lambda r: (r[2] != "report", str(r[0]).lower()))
    return rows


def _distinct(engine: Engine, key: str) -> list[str]:
    values: Iterable[object] = (d.get(key) for d in engine.documents())
    return sorted({str(v) for v in values if v not in (None, "", "unknown")}, key=str.lower)


def author_choices(engine: Engine) -> list[str]:
    return _distinct(engine, "author")


def language_choices(engine: Engine) -> list[str]:
    return _distinct(engine, "language")
