"""Read a questionnaire's question/answer layout into records: one answer to one question each.

The voluntary reports were written on a common form: numbered questions grouped by thematic area,
each followed by the author's answer. Heading detection (:mod:`gcm_qa.structure`) already makes each
question the innermost heading of the text that answers it, so a record is a section whose path ends
in a question. Reading the form this way, rather than as free text, is what lets a comparison say
*which* author answered *what*, and count who answered nothing.

When too few questions are found the layout is not trusted and the document stays ordinary passages
(it is still searchable; only comparisons and coverage lose it), and the build says so. Pure
functions over a :class:`~gcm_qa.structure.Layout`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gcm_qa import gcm
from gcm_qa.profiles import EMPTY, Profile
from gcm_qa.structure import QUESTION_TAIL, Layout, is_question
from gcm_qa.types import Record

# "3.", "3)", "3.1", "Q3.", "P3:", "Pregunta 3.", "Question 3:" before the question itself
_NUMBER = re.compile(
    r"^\s*(?:(?:Q|P|Pregunta|Question)\s*)?(\d{1,2}(?:\.\d{1,2}){0,2}|[a-z])[.):]?\s+(?=\S)", re.I
)
# An answer that says there is nothing to say: "No se dispone de información.", "N/A", "Not applicable."
_NOTHING = re.compile(
    r"^\W*(?:n/?a|no aplica|not applicable|sin información|sin datos|no information(?: available)?"
    r"|no (?:se )?(?:dispone|cuenta|tiene)n? (?:de |con )?(?:información|datos)"
    r"(?:\s+(?:al respecto|sobre (?:este|el) (?:tema|particular)|disponibles?))?"
    r"|none|ninguna?|—|-+)\W*$",
    re.I,
)


_OBJECTIVE_TAG = re.compile(r"\s*" + QUESTION_TAIL.pattern.removeprefix(r"\s*").removesuffix(r"\s*$"), re.I)


@dataclass(frozen=True)
class FormReading:
    """What was read of a document's form: its records, and whether the layout was trusted."""

    records: tuple[Record, ...] = ()
    questions: int = 0  # questions found, answered or not
    detected: bool = False
    note: str = ""  # one line for the build summary

    @property
    def answered(self) -> int:
        return sum(r.answered for r in self.records)

    def to_dict(self) -> dict[str, object]:
        return {"detected": self.detected, "questions": self.questions, "note": self.note,
                "records": [r.to_dict() for r in self.records]}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FormReading:
        records = tuple(Record.from_dict(r) for r in data.get("records", ()))  # type: ignore[union-attr]
        return cls(records, int(data.get("questions", 0)), bool(data.get("detected")),  # type: ignore[arg-type]
                   str(data.get("note", "")))


def split_number(question: str) -> tuple[str | None, str]:
    """'3. ¿Qué medidas…?' -> ('3', '¿Qué medidas…?'); a question without a number keeps all its text."""
    m = _NUMBER.match(question)
    if m and len(question) > m.end():
        return m.group(1), question[m.end():].strip()
    return None, question.strip()


def says_nothing(answer: str) -> bool:
    """An empty answer, or one whose whole content is "no information" / "not applicable": the
    author was asked and gave nothing, which coverage must not count as an answer."""
    text = " ".join(answer.split())
    return not text or bool(_NOTHING.match(text))


@dataclass
class _Reader:
    doc: Layout
    profile: Profile
    records: list[Record] = field(default_factory=list)

    def read(self) -> list[Record]:
        heading_end = {start: end for start, end, _, _ in self.doc.spans}
        for section in self.doc.sections:
            if not section.path or not is_question(section.path[-1]):
                continue
            # the question's own paragraph opens its section; the answer is what follows it
            start = min(heading_end.get(section.start, section.start) + 2, section.end)
            raw = self.doc.text[start : section.end]
            # "(Objective 1)" printed on the line after its question belongs to the question
            tag = _OBJECTIVE_TAG.match(raw)
            tagged = gcm.explicit_objectives(tag.group(0)) if tag else set()
            if tag:
                start, raw = start + tag.end(), raw[tag.end():]
            answer = raw.strip()
            first = start + (len(raw) - len(raw.lstrip()))
            # the heading paragraph in full: a section title is cut at 160 characters
            printed = self.doc.text[section.start : heading_end.get(section.start, section.start)].strip()
            number, question = split_number(printed if is_question(printed) else section.path[-1])
            area = gcm.area_of_section(section.path, self.profile)
            objectives = sorted(gcm.explicit_objectives(question) | gcm.explicit_objectives(answer) | tagged)
            areas = {area} if area is not None else {
                a for a, objs in self.profile.area_objectives.items() for o in objectives if o in objs}
            page_start, page_end = self.doc.page_range(first, first + max(len(answer), 1))
            self.records.append(Record(
                number=number,
                question=question,
                answer=answer,
                answered=not says_nothing(answer),
                areas=sorted(areas),
                objectives=objectives,
                page_start=page_start,
                page_end=page_end,
                start=first,
                end=first + len(answer),
            ))
        return self.records


def read_form(doc: Layout, profile: Profile = EMPTY, min_questions: int = 3) -> FormReading:
    """Records of a laid-out questionnaire, or an untrusted reading with the reason.

    ``min_questions``: fewer question headings than this is taken as prose that happens to ask a
    question or two (a note, a letter), not a form.
    """
    records = _Reader(doc, profile).read()
    if len(records) < min_questions:
        found = f"{len(records)} question{'s' if len(records) != 1 else ''}" if records else "no questions"
        return FormReading((), len(records), False,
                           f"no question/answer layout found ({found}); indexed as ordinary passages")
    answered = sum(r.answered for r in records)
    return FormReading(tuple(records), len(records), True,
                       f"form read: {answered} answers to {len(records)} questions")
