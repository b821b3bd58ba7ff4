"""The corpus folder and its manifest (``corpus/manifest.toml``).

The manifest records what a file cannot say about itself: the author, the kind of stakeholder, the
source URL. A file dropped into the folder without an entry is still indexed, with metadata
inferred from its name and content, so questionnaires can arrive before anyone catalogues them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gcm_qa import stopwords
from gcm_qa.loaders import SUPPORTED_SUFFIXES
from gcm_qa.types import KINDS, STAKEHOLDERS, DocMeta

MANIFEST = "manifest.toml"

# Countries of the region and others that submitted or may submit voluntary reports (English and
# Spanish spellings), so 'informe_voluntario_Argentina.pdf' is attributed to the State of Argentina.
COUNTRIES = {
    "antigua": "Antigua and Barbuda", "argentina": "Argentina", "bahamas": "Bahamas",
    "barbados": "Barbados", "belize": "Belize", "belice": "Belize", "bolivia": "Bolivia",
    "brazil": "Brazil", "brasil": "Brazil", "canada": "Canada", "canadá": "Canada", "chile": "Chile",
    "colombia": "Colombia", "costa rica": "Costa Rica", "costa_rica": "Costa Rica", "cuba": "Cuba",
    "dominica": "Dominica", "dominican republic": "Dominican Republic",
    "república dominicana": "Dominican Republic", "ecuador": "Ecuador", "el salvador": "El Salvador",
    "el_salvador": "El Salvador", "salvador": "El Salvador", "grenada": "Grenada",
    "guatemala": "Guatemala", "guyana": "Guyana", "haiti": "Haiti", "haití": "Haiti",
    "honduras": "Honduras", "jamaica": "Jamaica", "mexico": "Mexico", "méxico": "Mexico",
    "nicaragua": "Nicaragua", "panama": "Panama", "panamá": "Panama", "paraguay": "Paraguay",
    "peru": "Peru", "perú": "Peru", "saint lucia": "Saint Lucia", "santa lucía": "Saint Lucia",
    "suriname": "Suriname", "trinidad": "Trinidad and Tobago", "uruguay": "Uruguay",
    "venezuela": "Venezuela",
}
CIVIL_SOCIETY_HINTS = ("asociación", "associação", "fundación", "red ", "network", "ong", "ngo",
                       "sociedad civil", "civil society", "servicio jesuita", "caritas", "asylum access")
IGO_HINTS = ("conferencia", "conference", "sica", "caricom", "mercosur", "foprel", "parlacen", "oas",
             "oea", "idb", "bid", "iom", "oim", "eclac", "cepal", "riam", "sela", "platform", "plataforma")

# A form's cover says who submits it: "Submitting State: X", "Estado que presenta el informe: X",
# "Organisation: X (XYZ), a network of...", "Organismo: X", "Institución: X".
_STATE_LABEL = re.compile(r"^\W*(?:submitting state|state|country|estado que presenta el informe|estado|pa[ií]s)"
                          r"\W*:\W*(?P<v>\S[^\n]{1,400})", re.I | re.M)
_ORG_LABEL = re.compile(r"^\W*(?P<k>organi[sz]ation|name of (?:the )?organi[sz]ation|organizaci[oó]n|"
                        r"nombre de la organizaci[oó]n|organismo|institution|instituci[oó]n)"
                        r"\W*:\W*(?P<v>\S[^\n]{1,400})",
                        re.I | re.M)
_CIVIL_SOCIETY_FORM = re.compile(r"\b(?:for civil society|para la sociedad civil)\b", re.I)
_IGO_FORM = re.compile(r"\b(?:subregional, regional and cross-regional processes|procesos, plataformas y "
                       r"organizaciones subregionales)\b", re.I)


def _name(value: str) -> str:
    """'Red Ciudadana ... (RCDPM), red de 23 organizaciones' -> 'Red Ciudadana ...'; a cover whose
    lines were joined into one ('X Punto focal: Y') is cut at the next label."""
    value = re.split(r"\s+\(|,\s|;\s|\s+[-–—]\s|\s+(?=[A-ZÁÉÍÓÚ][a-záéíóúñ]+(?: [a-záéíóúñ]+){0,3}:\s)",
                     value.strip(), maxsplit=1)[0]
    return value.strip(" .*_") if len(value) <= 120 else ""


def submitter(head: str) -> tuple[str, str] | None:
    """(author, stakeholder) from a form's cover lines, or None when it names no submitter. A State
    label wins over an institution (a State's form names the ministry that filled it in)."""
    m = _STATE_LABEL.search(head)
    if m and _name(m.group("v")):
        return _name(m.group("v")), "State"
    m = _ORG_LABEL.search(head)
    if not m or not _name(m.group("v")):
        return None
    author, label, low = _name(m.group("v")), m.group("k").lower(), head.lower()
    if _CIVIL_SOCIETY_FORM.search(head) or any(re.search(rf"(?<!\w){re.escape(h.strip())}(?!\w)", author.lower())
                                               for h in CIVIL_SOCIETY_HINTS):
        return author, "civil society"
    if label == "organismo" or _IGO_FORM.search(low):
        return author, "intergovernmental body"
    return author, "other"


def slugify(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "document"


_DETECTION = {language: stopwords.most_frequent(language) for language in stopwords.FUNCTION_WORDS}


def detect_language(text: str) -> str:
    """Stop-word vote over the first 20,000 characters: enough for a report, no model needed."""
    words = re.findall(r"[a-záéíóúñãõçàèêâ]+", text[:20000].lower())
    scores = {lang: sum(w in stops for w in words) for lang, stops in _DETECTION.items()}
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] > 0 else "en"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def infer_meta(path: Path, text: str = "", title: str | None = None) -> DocMeta:
    """Best guesses from the file name and its first pages; the manifest overrides all of them."""
    name = path.stem.replace("_", " ").replace("-", " ")
    low = f" {name.lower()} "
    head = text[:3000].lower()
    author, stakeholder = "unknown", "other"
    for key, country in COUNTRIES.items():
        if re.search(rf"(?<![a-záéíóúñ]){re.escape(key)}(?![a-záéíóúñ])", low):
            author, stakeholder = country, "State"
            break
    named = submitter(text[:3000]) if author == "unknown" else None
    if named is not None:
        author = named[0]
        stakeholder = named[1] if named[1] != "other" or stakeholder == "other" else stakeholder
    if named is None and stakeholder == "other":
        if any(re.search(rf"(?<!\w){re.escape(h.strip())}(?!\w)", f"{low} {head}") for h in CIVIL_SOCIETY_HINTS):
            stakeholder = "civil society"
        elif any(re.search(rf"\b{re.escape(h.strip())}\b", low) for h in IGO_HINTS):
            stakeholder = "intergovernmental body"
    kind = "report" if re.search(r"\b(regional review report|informe regional|regional report)\b", low) else (
        "questionnaire"
    )
    years = re.findall(r"\b(20[12]\d)\b", f"{name} {text[:3000]}")
    if not title:
        first = next((ln.strip() for ln in text.splitlines() if len(ln.strip()) > 3), "")
        title = first[:150] if first else name.strip().title()
    return DocMeta(
        doc_id=slugify(path.stem),
        file=path.name,
        title=title,
        kind=kind,
        author=author,
        stakeholder=stakeholder,
        language=detect_language(text) if text else "en",
        year=int(years[0]) if years else None,
        source_url=None,
        country=author if stakeholder == "State" else None,
    )


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (not TOML, not UTF-8, not a list of documents)."""


class ManifestEntry(BaseModel):
    """One ``[[document]]`` of the manifest. Strict: a title of 42 would be accepted by a loose
    reader and then break every answer that cites the document."""

    model_config = ConfigDict(extra="forbid", strict=True)

    file: str = Field(min_length=1)
    doc_id: str | None = None
    title: str | None = None
    kind: Literal[KINDS] | None = None  # type: ignore[valid-type]  # one list: types.KINDS
    author: str | None = None
    stakeholder: Literal[STAKEHOLDERS] | None = None  # type: ignore[valid-type]
    language: str | None = None
    year: int | None = None
    source_url: str | None = None
    country: str | None = None


def read_manifest(corpus_dir: Path, problems: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Valid entries keyed by file name.

    An entry that breaks the schema is left out, and a line naming the file, the entry and the field
    goes to ``problems`` (its document is then indexed with inferred metadata, never mislabelled);
    without a ``problems`` list, the first such line is raised. A manifest that is not readable TOML
    raises :class:`ManifestError`, which names the file: silently ignoring it would mislabel every
    document."""
    path = corpus_dir / MANIFEST
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML ({exc})") from exc
    documents = data.get("document", [])
    if not isinstance(documents, list) or not all(isinstance(d, dict) for d in documents):
        raise ManifestError(f"{path}: 'document' must be a list of [[document]] tables")
    unknown = sorted(set(data) - {"document"})
    found: list[str] = [f"{path}: unknown top-level keys {unknown} (ignored)"] if unknown else []
    entries: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(documents, 1):
        try:
            entry = ManifestEntry.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(x) for x in first["loc"]) or "entry"
            name = raw.get("file") if isinstance(raw.get("file"), str) else f"entry {i}"
            found.append(f"{path}: [[document]] {i} ({name}): '{field}': {first['msg']} (entry skipped)")
            continue
        if entry.file in entries:
            found.append(f"{path}: [[document]] {i} ({entry.file}): listed twice (the first entry is kept)")
            continue
        entries[entry.file] = entry.model_dump(exclude_none=True)
    if found and problems is None:
        raise ManifestError(found[0])
    if problems is not None:
        problems.extend(found)
    return entries


def write_manifest(corpus_dir: Path, entries: Iterable[dict[str, Any]]) -> None:
    rows = [{k: v for k, v in e.items() if v is not None} for e in entries]
    rows.sort(key=lambda e: (e.get("kind") != "report", e["file"]))
    header = (
        "# One [[document]] per file in this folder. Fields: file, doc_id, title, kind (report |\n"
        "# questionnaire), author, stakeholder (State | intergovernmental body | civil society | other),\n"
        "# language, year, source_url, country (a State's own name by default; where others are based). Files\n"
        "# without an entry are indexed with inferred metadata.\n\n"
    )
    tmp = corpus_dir / (MANIFEST + ".tmp")
    tmp.write_text(header + tomli_w.dumps({"document": rows}), encoding="utf-8")
    tmp.replace(corpus_dir / MANIFEST)


def merge_meta(inferred: DocMeta, entry: dict[str, Any] | None) -> DocMeta:
    """The manifest's fields over the inferred ones. A State's country is the State itself unless the
    manifest says otherwise, so an entry naming only the author still fills the country column."""
    meta = replace(inferred, **{k: v for k, v in (entry or {}).items() if k in DocMeta.__dataclass_fields__})
    if meta.stakeholder == "State" and meta.author != "unknown" and not (entry or {}).get("country"):
        meta = replace(meta, country=meta.author)
    return meta


def list_files(corpus_dir: Path) -> list[Path]:
    """The documents of the corpus: every file of a supported type, a name starting with "." too
    (gcm-qa's own working files end in ``.part`` or ``.previous``, which no document does)."""
    if not corpus_dir.is_dir():
        return []
    return sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)


MAX_NAME_CHARS = 100  # file systems allow 255 bytes; a name a person can read and type is far shorter
_UNSAFE = re.compile(r"[^\w .,()&+'-]+")


def safe_name(name: str) -> str:
    """A file name for the corpus: no folders, control characters or shell-hostile marks, no
    leading dot (which hides a file), at most ``MAX_NAME_CHARS`` characters, its extension kept.

    'Informe  final: México 2021!.PDF' becomes 'Informe final- México 2021.pdf'."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = " ".join(_UNSAFE.sub("-", stem).split()).strip(" .-") or "document"
    suffix = re.sub(r"[^A-Za-z0-9]", "", suffix).lower()[:10]
    room = MAX_NAME_CHARS - len(suffix) - 1
    if len(stem) > room:
        stem = stem[:room].rstrip(" .-")
    return f"{stem}.{suffix}" if suffix else stem


def free_name(corpus_dir: Path, name: str, taken: Iterable[str] = ()) -> str:
    """``name``, or 'name (2).ext', 'name (3).ext'… when the corpus has a file of that name (or
    ``taken`` holds it: names given earlier in the same add)."""
    taken = set(taken)

    def used(candidate: str) -> bool:
        return candidate in taken or (corpus_dir / candidate).exists()

    if not used(name):
        return name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while used(f"{stem} ({n}){suffix}"):
        n += 1
    return f"{stem} ({n}){suffix}"


JOURNAL = ".add-journal.json"


@contextmanager
def _corpus_lock(corpus_dir: Path, wait: bool) -> Iterator[bool]:
    """An exclusive lock on the corpus folder itself (no lock file to clutter it); yields whether it
    was taken. The system releases it when a process dies."""
    fd = os.open(corpus_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def adding(corpus_dir: Path) -> Iterator[None]:
    """Held for a whole add, by one add at a time (threads and processes alike): the manifest is
    read and rewritten under it, and a journal is undone only by someone who can take it, so a live
    add is never mistaken for an interrupted one."""
    with _corpus_lock(corpus_dir, wait=True):
        yield


def recover(corpus_dir: Path) -> list[str]:
    """Undo an add whose process died (see ``begin_add``); the files it had brought, or [] when there
    is none, or when the add is still running (it holds the corpus lock)."""
    if not (corpus_dir / JOURNAL).exists():
        return []
    with _corpus_lock(corpus_dir, wait=False) as taken:
        return undo_add(corpus_dir) if taken else []  # a live add is not ours to undo


def begin_add(corpus_dir: Path, created: Iterable[str], replaced: Iterable[str]) -> None:
    """Record, before an add touches the corpus, how to undo it: the files it creates, the files it
    replaces (each saved beside it as '.<name>.previous') and the manifest as it was. A process killed
    mid-add leaves this journal, and the next engine to open the corpus undoes the add."""
    manifest = corpus_dir / MANIFEST
    journal = {
        "created": sorted(created),
        "replaced": sorted(replaced),
        "manifest": manifest.read_text(encoding="utf-8") if manifest.exists() else None,
    }
    for name in journal["replaced"]:
        shutil.copyfile(corpus_dir / name, corpus_dir / f".{name}.previous")
    tmp = corpus_dir / f"{JOURNAL}.part"
    tmp.write_text(json.dumps(journal), encoding="utf-8")
    tmp.replace(corpus_dir / JOURNAL)


def end_add(corpus_dir: Path) -> None:
    """The add is complete: forget how to undo it."""
    journal = corpus_dir / JOURNAL
    if journal.exists():
        data = json.loads(journal.read_text(encoding="utf-8"))
        journal.unlink()
        for name in data["replaced"]:
            (corpus_dir / f".{name}.previous").unlink(missing_ok=True)


def undo_add(corpus_dir: Path) -> list[str]:
    """Undo an add that did not complete (see ``begin_add``); the files it had brought, or []. The
    caller holds the corpus lock (``adding`` or ``recover``)."""
    journal = corpus_dir / JOURNAL
    if not journal.exists():
        return []
    data = json.loads(journal.read_text(encoding="utf-8"))
    for name in data["created"]:
        (corpus_dir / name).unlink(missing_ok=True)
    for name in data["replaced"]:
        backup = corpus_dir / f".{name}.previous"
        if backup.exists():
            backup.replace(corpus_dir / name)
    manifest = corpus_dir / MANIFEST
    if data["manifest"] is None:
        manifest.unlink(missing_ok=True)
    else:
        manifest.write_text(data["manifest"], encoding="utf-8")
    for leftover in corpus_dir.glob(".*.part"):
        leftover.unlink(missing_ok=True)
    journal.unlink()
    return [*data["created"], *data["replaced"]]
