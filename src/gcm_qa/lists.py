"""Lists in passages: an intro ending with ':' and the items under it.

One item of a short list answers "which groups…?" only in part, so the answerer shows the list:
the intro and its items, each item by its opening words when the whole list does not fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import pairwise

from gcm_qa.quotes import head
from gcm_qa.sentences import Sentence
from gcm_qa.types import Passage

ITEM = re.compile(r"^(?:- |\(?\d{1,2}[.)] |\(?[a-z][.)] )")

# Given the last item a passage holds of a list, the items that follow it in the next chunk (whose
# passage it adds to the list it is given, so they can be cited).
Continuation = Callable[[list[Passage], Sentence], list[Sentence]]


def is_item(sentence: Sentence) -> bool:
    return bool(ITEM.match(sentence.text))


def is_intro(sentence: Sentence) -> bool:
    return sentence.text.rstrip().endswith(":")


_NUMBERED = re.compile(r"^(?:- )?\(?(\d{1,3})[.)]\s")


def numbered_by_position(item: Sentence, siblings: Sequence[Sentence]) -> bool:
    """Whether an item's number only says where it sits ("1. … 2. … 3. …"), so a quote may drop it,
    rather than name it: a list of objectives numbered 2, 7, 8, 12, 13, 23 prints their own numbers,
    which an answer keeps. Judged by the run of numbered items around it in its passage: counting
    on by one from item to item, at least two of them. A number seen alone is kept."""
    if not _NUMBERED.match(item.text):
        return False
    run: list[int] = []
    for s in (x for x in siblings if x.passage == item.passage):
        m = _NUMBERED.match(s.text)
        if m:
            run.append(int(m.group(1)))
        elif s.start > item.start:
            break
        elif not is_item(s):
            run = []  # prose ends the run before the item
    return len(run) >= 2 and all(b == a + 1 for a, b in pairwise(run))


def list_items(intro: Sentence, siblings: Sequence[Sentence]) -> list[Sentence]:
    """The items that follow a sentence ending with ':' in the same passage."""
    if not is_intro(intro):
        return []
    items = []
    for s in siblings:
        if s.passage != intro.passage or s.start <= intro.start:
            continue
        if not is_item(s):
            break
        items.append(s)
    return items


def list_intro(item: Sentence, siblings: Sequence[Sentence]) -> Sentence | None:
    """The sentence ending with ':' that a list item belongs to, when the passage holds it and
    only items stand between them."""
    if not is_item(item):
        return None
    before = [s for s in siblings if s.passage == item.passage and s.start < item.start]
    for s in reversed(before):
        if is_intro(s):
            return s
        if not is_item(s):
            return None
    return None


def with_items(
    intro: Sentence, items: Sequence[Sentence], passages: Sequence[Passage], budget: int, head_words: int
) -> tuple[list[tuple[str, Sentence, str]], list[Sentence]]:
    """'Intro: item; item; item' for display, and the items shown. The display comes in one
    segment per passage the list runs through, each with the sentence it starts at and its exact
    span in that passage as the quote.

    A list too long for the budget shows each item by its opening words ("Preventing collusion
    among providers…"): the items' heads name them, and the quote holds them whole.
    """
    full = [ITEM.sub("", s.text).rstrip(".;") for s in items]
    lead = intro.text.removeprefix("- ")  # an intro that is itself an item: "- It is addressed to:"
    if len(lead) + sum(len(f) + 2 for f in full) > budget:
        full = [head(f, head_words) for f in full]
        tail = lead.rsplit(", ", 1)[-1]
        if len(lead) + sum(len(f) + 2 for f in full) > budget and 15 <= len(tail) < len(lead):
            lead = f"…{tail}"  # the question gives the context; the items are the answer
    kept = 0
    length = len(lead)
    for piece in full:
        if kept and length + len(piece) + 2 > budget:
            break
        kept += 1
        length += len(piece) + 2
    shown = list(items[:kept])
    # one segment per passage: the intro's passage first (it may hold no item), then any chunk the
    # list runs on into
    groups: list[list[int]] = [[]]
    for i, item in enumerate(shown):
        if item.passage != (shown[groups[-1][-1]].passage if groups[-1] else intro.passage):
            groups.append([])
        groups[-1].append(i)
    segments: list[tuple[str, Sentence, str]] = []
    for g, members in enumerate(groups):
        listed = "".join(f"{full[i]}{' ' if full[i].endswith(':') else '; '}" for i in members).rstrip("; ")
        body = f"{lead} {listed}".strip() if g == 0 else listed
        if g < len(groups) - 1:
            body += "" if body.endswith(":") else ";"
        elif not body.endswith(("…", ":")):
            body += "."
        anchor = intro if g == 0 else shown[members[0]]
        last = shown[members[-1]] if members else intro
        segments.append((body, anchor, passages[anchor.passage].chunk.text[anchor.start : last.end]))
    return segments, shown
