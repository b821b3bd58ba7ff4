"""An answer made of quoted sentences, each followed by its citation marker.

Sentences are picked greedily from the ranking until the sentence or character budget is spent.
After the first pick, a sentence earns a bonus for the question words it covers that the answer
does not cover yet, so a two-part question gets a sentence for each part; a sentence that says
nothing the answer does not say already is skipped. A sentence that introduces a list brings its
items along, and a long sentence is cut to the clauses that carry the answer. Quoting keeps
numbers and names exactly as the source prints them. :func:`select` decides what the answer says,
:func:`cite` how it is written and cited, so the answerer can check a draft before writing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gcm_qa.keyword import tokenize
from gcm_qa.lists import Continuation, is_intro, list_intro, list_items, numbered_by_position, with_items
from gcm_qa.quotes import BULLET, NOTE_MARK, in_title, unnumbered, with_ellipsis
from gcm_qa.scoring import Scored, overlap_score
from gcm_qa.sentences import Sentence
from gcm_qa.settings import AnswerSettings
from gcm_qa.types import Citation, Passage

_CLAUSE_BREAK = re.compile(r"(?<=[,;:—])\s+|\s+(?=—)|\s+(?=\()")


@dataclass
class Pick:
    """One part of the answer: a sentence (or a run of a list) as shown and as quoted."""

    item: Scored
    text: str  # shown in the answer
    quote: str  # exact substring of the passage
    tokens: set[str]  # the sentence's words, as tokenised
    in_list: bool = False  # one part of a list shown whole (it is never replaced on its own)


def trim_to_clauses(
    sentence: str, question_tokens: set[str], max_chars: int, length_bias: float = 0.002,
    keeps: Sequence[Callable[[str], bool]] = (),
) -> tuple[str, int]:
    """The contiguous run of clauses, at most ``max_chars`` long, richest in question words.

    A cut never removes the fact asked for: each test of ``keeps`` the sentence passes (it holds
    the figure a "how many" question asks for), the run chosen passes too, if one that fits does.
    Returns the trimmed text (an exact substring, so it can be quoted) and its offset in the
    sentence. Short sentences come back whole.
    """
    if len(sentence) <= max_chars:
        return sentence, 0
    held = [k for k in keeps if k(sentence)]
    cuts = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(sentence)] + [len(sentence)]
    best = (-1.0, 0, 0)
    for i in range(len(cuts) - 1):
        for j in range(i + 1, len(cuts)):
            if cuts[j] - cuts[i] > max_chars and j > i + 1:
                break
            piece = sentence[cuts[i] : cuts[j]]
            score = overlap_score(question_tokens, piece) + length_bias * len(piece) / max_chars
            if not all(k(piece) for k in held):
                score -= 2.0  # below any run that keeps the fact
            if score > best[0]:
                best = (score, cuts[i], cuts[j])
    _, a, b = best
    if b - a > max_chars:  # a single clause longer than the cap: cut at a word boundary
        b = a + max(sentence[a : a + max_chars].rfind(" "), 1)
    raw = sentence[a:b]
    text = raw.strip().rstrip(",;:—").rstrip()
    return text, a + (len(raw) - len(raw.lstrip()))


def select(
    question: str,
    ranked: Sequence[Scored],
    passages: list[Passage],
    settings: AnswerSettings,
    in_order: Sequence[Sentence] = (),
    continuation: Continuation | None = None,
    keeps: Sequence[Callable[[str], bool]] = (),
) -> list[Pick]:
    """The parts of the answer, in order (see the module's docstring). ``in_order``: every
    sentence of the passages in reading order, for finding a list's intro and items; ``keeps``:
    tests of whether a text holds what the question asks for, which no cut may remove."""
    q_tokens = set(tokenize(question))
    chosen: list[Pick] = []
    used_chars = 0
    seen_text: set[str] = set()
    covered: set[str] = set()
    best = ranked[0].score if ranked else 0.0
    pool = list(ranked[: settings.candidate_pool])
    token_sets = {id(item): set(tokenize(item.sentence.text)) for item in pool}

    def gain(item: Scored, covered: set[str]) -> float:
        if not covered or not q_tokens:
            return 0.0
        return settings.coverage_bonus * len((token_sets[id(item)] & q_tokens) - covered) / len(q_tokens)

    while pool and len(chosen) < settings.max_sentences:
        item = max(pool, key=lambda x: x.score + gain(x, covered))
        pool.remove(item)
        if chosen and item.score + gain(item, covered) < settings.stop_ratio * best and not all(
            in_title(p.item.sentence.text, passages[p.item.sentence.passage].chunk.section) for p in chosen
        ):
            break  # (a heading alone says only what the answer is about: the next sentence may follow)
        key = " ".join(tokenize(item.sentence.text))
        if key in seen_text or any(token_sets[id(item)] <= p.tokens for p in chosen):
            continue  # says nothing the answer does not say already
        # a sentence that says all an earlier pick says and more replaces it ("…principles." and
        # "…principles: people-centredness; …")
        for p in [p for p in chosen if p.tokens < token_sets[id(item)] and not p.in_list]:
            chosen.remove(p)
            used_chars -= len(p.text) + 5
        budget = settings.max_chars - used_chars
        if chosen and budget < settings.min_room:
            break
        intro = list_intro(item.sentence, in_order) if not chosen else None
        if intro is not None and (
            len(intro.text) + sum(len(x.text) + 2 for x in list_items(intro, in_order)) <= settings.max_list_chars
        ):
            # one item of a short list answers "which groups…?" only in part: the list is the answer
            key = " ".join(tokenize(intro.text))
            item = Scored(intro, item.score, item.cosine, item.overlap)
            token_sets[id(item)] = set(tokenize(intro.text))
            if key in seen_text:
                continue
        items = list_items(item.sentence, in_order)
        if items and not chosen:
            budget = settings.max_list_chars  # a list is the answer: it may take more room than prose
        if continuation is not None and is_intro(item.sentence) and len(items) < 2:
            # a list the chunk boundary cut right after its intro: its items are in the next chunk
            items += continuation(passages, items[-1] if items else item.sentence)
        if items:
            room = max(budget, settings.min_list_room)
            segments, listed = with_items(item.sentence, items, passages, room, settings.head_words)
            for s in listed:  # an item shown under its list is not quoted again on its own
                seen_text.add(" ".join(tokenize(s.text)))
            text = " ".join(NOTE_MARK.sub("", part) for part, _, _ in segments)
            if chosen and len(text) > budget:
                continue
            seen_text.add(key)
            covered |= token_sets[id(item)] & q_tokens
            for part, anchor, quote in segments:  # one citation per chunk the list runs through
                chosen.append(Pick(Scored(anchor, item.score, item.cosine, item.overlap), NOTE_MARK.sub("", part),
                                   quote, token_sets[id(item)], in_list=True))
            used_chars += len(text) + 5 * len(segments)
            continue
        cap = max(budget, settings.min_list_room) if not chosen else budget
        sentence = item.sentence.text
        if numbered_by_position(item.sentence, in_order):
            sentence = sentence[unnumbered(sentence):]  # "4. " says where a paragraph sits: not quoted
        piece, _ = trim_to_clauses(sentence, q_tokens, cap, settings.clause_length_bias, keeps)
        quote = piece
        text = piece if piece == sentence else with_ellipsis(sentence, piece)
        text = NOTE_MARK.sub("", BULLET.sub("", text))  # a bullet item quoted alone reads as a sentence
        if chosen and len(text) > budget:
            continue
        seen_text.add(key)
        covered |= token_sets[id(item)] & q_tokens
        chosen.append(Pick(item, text, quote, token_sets[id(item)]))
        used_chars += len(text) + 5
    return chosen


def cite(picks: Sequence[Pick], passages: Sequence[Passage], max_quote_chars: int) -> tuple[str, list[Citation]]:
    """The answer's text with its markers, and its citations.

    Sentences quoted from the same passage share one citation whose quote is the exact span of
    the passage that covers them (so it can be checked verbatim); spans too far apart to read as
    one quote get citations of their own."""
    citations: list[Citation] = []
    spans: list[tuple[int, int]] = []
    parts: list[str] = []
    for pick in picks:
        sentence = pick.item.sentence
        passage = passages[sentence.passage]
        c = passage.chunk
        at = sentence.start + max(sentence.text.find(pick.quote), 0)
        span = (at, at + len(pick.quote))
        n = next(
            (
                i + 1
                for i, cite in enumerate(citations)
                if cite.chunk_id == c.chunk_id
                and max(span[1], spans[i][1]) - min(span[0], spans[i][0]) <= max_quote_chars
            ),
            None,
        )
        if n is None:
            citations.append(
                Citation(
                    n=len(citations) + 1,
                    doc_id=c.doc_id,
                    title=c.title,
                    section=c.section_label,
                    page=c.page_label,
                    quote=pick.quote,
                    score=pick.item.score,
                    passage_rank=passage.rank,
                    chunk_id=c.chunk_id,
                    ocr=c.ocr,
                )
            )
            spans.append(span)
            n = len(citations)
        else:
            a, b = min(span[0], spans[n - 1][0]), max(span[1], spans[n - 1][1])
            spans[n - 1] = (a, b)
            citations[n - 1].quote = c.text[a:b]
        parts.append(f"{pick.text} [{n}]")
    return " ".join(parts), citations

