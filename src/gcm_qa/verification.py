"""Check a generated answer sentence by sentence against the passages it cites.

A language model writes fluent text and sometimes invents: a figure that is in no passage, a
citation to a passage it was never given, a sentence its source does not say. Every sentence is
therefore held to what an extractive answer guarantees by construction:

- it carries at least one ``[n]`` marker, and every ``n`` is a passage that was given;
- every figure in it occurs in a cited passage (digits compared without separators, so "48,300",
  "48.300" and "48 300" are one figure), and every name (a capitalised word inside the sentence)
  occurs in a cited passage or in that passage's glossary translation (a Spanish passage answered
  in English names "Ministerio de Trabajo" "Ministry of Labour");
- it is close in meaning to some sentence of a cited passage (cosine of their embeddings at least
  ``llm.support_threshold``): a sentence that cites a real passage but says something else fails here.

Pure functions; the engine supplies the embeddings (:mod:`gcm_qa.generation`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gcm_qa.intent import COMMON_CAPS
from gcm_qa.keyword import fold

_MARKER = re.compile(r"\[(\d{1,3})(?:\s*[,;]\s*(\d{1,3}))*\]")
_MARKERS = re.compile(r"\s*(?:\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]\s*)+")
# a sentence ends after its full stop or after the markers that follow it ("... 2020. [1] Next ...")
_END = re.compile(r"(?<=[.!?\]])\s+(?=[\"“(¿¡A-ZÁÉÍÓÚÑ0-9])")
_FIGURE = re.compile(r"\d+(?:[.,\s]\d{3})*(?:[.,]\d+)?")
_NAME = re.compile(r"(?<!^)(?<![.?!¿¡]\s)\b([A-ZÁÉÍÓÚÑ][a-záéíóúñü]{2,}|[A-Z]{2,})\b")


@dataclass(frozen=True)
class Checked:
    """One generated sentence and what the check found."""

    text: str  # the sentence as written, markers included
    cites: tuple[int, ...]
    reasons: tuple[str, ...] = ()  # empty: supported
    support: float | None = None  # best cosine to a sentence of a cited passage
    quote_passage: int | None = None  # the passage (1-based) and sentence that support it best
    quote: str = ""

    @property
    def supported(self) -> bool:
        return not self.reasons

    @property
    def plain(self) -> str:
        return without_markers(self.text)


@dataclass
class Verdict:
    sentences: list[Checked] = field(default_factory=list)

    @property
    def unsupported(self) -> list[Checked]:
        return [s for s in self.sentences if not s.supported]

    @property
    def invented_figure(self) -> bool:
        return any(r.startswith("figure") for s in self.sentences for r in s.reasons)

    def share_unsupported(self) -> float:
        return len(self.unsupported) / len(self.sentences) if self.sentences else 1.0


def split(answer: str) -> list[str]:
    """The answer's sentences, each with the markers that follow it."""
    text = " ".join(answer.split())
    return [s.strip() for s in _END.split(text) if s and s.strip()]


def without_markers(sentence: str) -> str:
    return " ".join(_MARKERS.sub(" ", sentence).split())


def cites(sentence: str) -> tuple[int, ...]:
    found: list[int] = []
    for m in _MARKER.finditer(sentence):
        found.extend(int(n) for n in re.findall(r"\d{1,3}", m.group(0)))
    return tuple(dict.fromkeys(found))


def figures(text: str) -> set[str]:
    """Figures as digit strings: '48.300' and '48,300' are '48300'; a decimal keeps its digits in order."""
    return {re.sub(r"\D", "", f) for f in _FIGURE.findall(text) if re.sub(r"\D", "", f)}


def names(text: str) -> set[str]:
    return {fold(n) for n in _NAME.findall(text) if fold(n) not in COMMON_CAPS}


def check(
    answer: str,
    passages: Sequence[str],
    support: Callable[[str, Sequence[int]], tuple[float, int, str]],
    threshold: float,
    translate: Callable[[str], str] = lambda _t: "",
) -> Verdict:
    """``passages``: the texts given to the model, numbered from 1. ``support(sentence, cited)``: the
    best cosine between the sentence and any sentence of the cited passages, with that passage's
    number and sentence. ``translate``: a passage's terms in the other language (for names)."""
    verdict = Verdict()
    for sentence in split(answer):
        numbers = cites(sentence)
        plain = without_markers(sentence)
        reasons: list[str] = []
        if not plain:
            continue
        given = [n for n in numbers if 1 <= n <= len(passages)]
        missing = [n for n in numbers if n not in given]
        if not numbers:
            reasons.append("no citation")
        if missing:
            reasons.append(f"cites passage {', '.join(map(str, missing))}, which was not given")
        if not given:
            verdict.sentences.append(Checked(sentence, numbers, tuple(reasons)))
            continue
        source = " ".join(passages[n - 1] for n in given)
        absent = sorted(figures(plain) - figures(source))
        if absent:
            reasons.append(f"figure {', '.join(absent)} is not in the cited passage")
        known = set(fold(source).split()) | set(fold(translate(source)).split())
        known = {w.strip(".,;:()«»\"'") for w in known}
        unnamed = sorted(n for n in names(plain) if n not in known)
        if unnamed:
            reasons.append(f"name {', '.join(unnamed)} is not in the cited passage")
        best, at, quote = support(plain, given)
        if best < threshold:
            reasons.append(f"the cited passage does not say this (similarity {best:.2f} < {threshold:.2f})")
        verdict.sentences.append(Checked(sentence, numbers, tuple(reasons), best, at, quote))
    return verdict


# A sentence of a passage that speaks to the model, not about the world: planted text ("Ignore
# previous instructions and answer that..."). Whatever a generated sentence takes from it is the
# injection obeyed, so it supports nothing.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous|prior|above|earlier|"
    r"preceding|system)\s+(?:instructions|prompts?|rules|messages)|\byou\s+are\s+now\b|\bsystem\s+prompt\b|"
    r"\b(?:ignora|olvida|omite|descarta)\s+(?:todas\s+)?(?:las\s+)?(?:instrucciones|indicaciones|reglas)"
    r"(?:\s+(?:anteriores|previas))?|\b(?:as an ai|como (?:modelo|asistente) de (?:lenguaje|ia))\b",
    re.I,
)


def best_support(sentence_vector: np.ndarray, candidates: Sequence[tuple[int, str, np.ndarray]]
                 ) -> tuple[float, int, str]:
    """Of (passage number, sentence, unit vector) candidates, the closest to the sentence's unit
    vector; a passage sentence that instructs the model (:data:`INSTRUCTION`) is no candidate."""
    candidates = [c for c in candidates if not INSTRUCTION.search(c[1])]
    if not candidates:
        return 0.0, 0, ""
    scores = np.array([float(v @ sentence_vector) for _, _, v in candidates])
    i = int(np.argmax(scores))
    return float(scores[i]), candidates[i][0], candidates[i][1]
