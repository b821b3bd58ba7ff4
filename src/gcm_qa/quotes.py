"""What of a passage may be quoted, and how a quote is shown.

A user cites what the answer quotes, so a quote is always an exact span of its passage; what the
answer shows may drop the marks that are layout rather than text: a bullet, the cleaner's "[Note 5]"
label, and a number that only says where a paragraph sits in a list counted 1, 2, 3 ("4.
Statements at the meeting…" is quoted from "Statements"; see lists.numbered_by_position).
Headings, captions and source lines are never quoted as answers: they name a topic without saying
anything about it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gcm_qa.structure import SOURCE_LINE, is_question

BULLET = re.compile(r"^(?:[-◇•▪►]\s+)+")
NOTE_MARK = re.compile(r"^\[Note \d+\]\s*")
# An item's or paragraph's number at the start of a line: "4. ", "(b) ", "12) ", "- 3. "
ENUMERATOR = re.compile(r"^(?:[-◇•▪►]\s+)*\(?(?:\d{1,3}|[a-z])[.)]\s+(?=\S)")
_LABEL_ONLY = re.compile(r"^(?:Text\s?box|Box|Table|Graph|Figure|Annex|Recuadro|Cuadro|Gráfico|Anexo)\s+\d+\.?$", re.I)
# a reference standing as a sentence of its own: "(IDB, 2021:9)." or "(UNDESA, 2019)."
_REFERENCE_ONLY = re.compile(r"^\(?[A-Z][^()]{1,60},\s*(?:19|20)\d{2}[a-z]?(?::\s*[\d\-–, ]+)?\)?\.?$")
_CAPTION = re.compile(r"^(?:Graph|Gráfico|Figure)\s+\d", re.I)


def _bare(text: str) -> str:
    return " ".join(text.strip().rstrip(".:").lower().split())


def quotable(text: str, section: Sequence[str]) -> bool:
    """Headings, graph captions, source lines and bare enumeration markers are not answers."""
    if len(text) < 25 and not re.search(r"[A-Za-z]{3}.*\d|\d.*[A-Za-z]{3}", text):
        return False
    if _CAPTION.match(text) or _LABEL_ONLY.match(text) or SOURCE_LINE.match(text) or _REFERENCE_ONLY.match(text):
        return False
    bare = _bare(text)
    for title in section:
        kept = _bare(title.rstrip("…"))
        # titles are stored cut short with "…": a line that starts with the kept part is the heading
        if bare == kept or (title.endswith("…") and len(kept) >= 30 and bare.startswith(kept)):
            return False
    # a form's question, or one of the sentences it is printed in ("¿Se detiene...? ¿Qué alternativas
    # existen?"), asks; it never answers
    return not (section and is_question(section[-1]) and len(bare) >= 10 and bare in _bare(section[-1]))


def in_title(text: str, section: Sequence[str]) -> bool:
    """A sentence that is part of its section's heading (a long table caption, say)."""
    bare = _bare(text)
    return len(bare) >= 10 and any(bare in _bare(title) for title in section)


def unnumbered(text: str) -> int:
    """Where a sentence's text starts after its paragraph or item number ("4. Statements…" -> 3);
    0 when it has none. A number that is the sentence's subject ("17 countries reported…") has
    no full stop or bracket after it, so it stays."""
    m = ENUMERATOR.match(text)
    return m.end() if m else 0


def head(item: str, words: int) -> str:
    """The opening words of a long item ("Preventing collusion among providers…")."""
    parts = item.split()
    return item if len(parts) <= words + 2 else " ".join(parts[:words]).rstrip(",;:") + "…"


def with_ellipsis(sentence: str, piece: str) -> str:
    """A piece of a sentence marked where the sentence goes on before or after it."""
    start = sentence.find(piece)
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + len(piece) < len(sentence) else ""
    return f"{prefix}{piece}{suffix}"
