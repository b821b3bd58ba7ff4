"""The corpus folder and its manifest (``corpus/manifest.toml``).

The manifest records what a file cannot say about itself: the author, the kind of stakeholder, the
source URL. A file dropped into the folder without an entry is still indexed, with metadata
inferred from its name and content, so questionnaires can arrive before anyone catalogues them.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import tomli_w

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
    if stakeholder == "other":
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
    )


def read_manifest(corpus_dir: Path) -> dict[str, dict[str, Any]]:
    """Entries keyed by file name. A malformed manifest is an error: silently ignoring it would
    mislabel every document."""
    path = corpus_dir / MANIFEST
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from exc
    entries: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(data.get("document", [])):
        if "file" not in entry:
            raise ValueError(f"{path}: document entry {i + 1} has no 'file'")
        unknown = set(entry) - set(DocMeta.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: entry for {entry['file']} has unknown fields {sorted(unknown)}")
        if entry.get("kind", "questionnaire") not in KINDS:
            raise ValueError(f"{path}: {entry['file']}: kind must be one of {KINDS}")
        if entry.get("stakeholder", "other") not in STAKEHOLDERS:
            raise ValueError(f"{path}: {entry['file']}: stakeholder must be one of {STAKEHOLDERS}")
        entries[entry["file"]] = entry
    return entries


def write_manifest(corpus_dir: Path, entries: Iterable[dict[str, Any]]) -> None:
    rows = [{k: v for k, v in e.items() if v is not None} for e in entries]
    rows.sort(key=lambda e: (e.get("kind") != "report", e["file"]))
    header = (
        "# One [[document]] per file in this folder. Fields: file, doc_id, title, kind (report |\n"
        "# questionnaire), author, stakeholder (State | intergovernmental body | civil society | other),\n"
        "# language, year, source_url. Files without an entry are indexed with inferred metadata.\n\n"
    )
    tmp = corpus_dir / (MANIFEST + ".tmp")
    tmp.write_text(header + tomli_w.dumps({"document": rows}), encoding="utf-8")
    tmp.replace(corpus_dir / MANIFEST)


def merge_meta(inferred: DocMeta, entry: dict[str, Any] | None) -> DocMeta:
    if not entry:
        return inferred
    return replace(inferred, **{k: v for k, v in entry.items() if k in DocMeta.__dataclass_fields__})


def list_files(corpus_dir: Path) -> list[Path]:
    if not corpus_dir.is_dir():
        return []
    return sorted(
        p
        for p in corpus_dir.iterdir()
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".")
    )
