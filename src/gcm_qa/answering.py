"""The default answerer: no LLM, only sentences quoted from the retrieved passages.

It reads the sentences of the top passages from the index (their vectors too, so answering embeds
nothing), asks a :class:`~gcm_qa.scoring.SentenceScorer` to rank them, and then, in order:
- abstains when the ranking's best is too weak, or a name the question asks about is nowhere
  (:mod:`gcm_qa.abstention`);
- drafts an answer from the ranking (:mod:`gcm_qa.composition`);
- checks the draft gives what the question asks for (:mod:`gcm_qa.intent`): when it lacks it, the
  best sentence that has it leads, or the answerer abstains; a question's second part gets a
  sentence of its own the same way;
- writes the answer and its citations once the draft stands.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gcm_qa.abstention import NO_ANSWER, gives, support, unquoted_places, unsupported_terms
from gcm_qa.composition import Pick, cite, select
from gcm_qa.index_store import LoadedIndex
from gcm_qa.intent import Intent, read
from gcm_qa.keyword import tokenize
from gcm_qa.lists import is_intro, is_item, list_items
from gcm_qa.quotes import BULLET, NOTE_MARK, head, quotable
from gcm_qa.scoring import Scored, SentenceScorer, WeightedScorer
from gcm_qa.sentences import Sentence, split_sentences
from gcm_qa.settings import AnswerSettings
from gcm_qa.types import Citation, Passage

__all__ = ["NO_ANSWER", "Answerer"]


class Answerer:
    """Extractive answers from passages, using the sentence embeddings stored in the index."""

    def __init__(self, index: LoadedIndex, settings: AnswerSettings, scorer: SentenceScorer | None = None) -> None:
        self.index = index
        self.settings = settings
        self.scorer = scorer if scorer is not None else WeightedScorer(settings.scoring)
        self.support: float | None = None  # of the last answer (see answer())

    @property
    def max_passages(self) -> int:
        return self.settings.max_passages

    def sentences(self, passages: Sequence[Passage]) -> tuple[list[Sentence], np.ndarray]:
        found: list[Sentence] = []
        rows: list[int] = []
        for i, p in enumerate(passages):
            for row in self.index.sentence_rows(self.index.position(p.chunk.chunk_id)):
                _, a, b = (int(x) for x in self.index.sentence_spans[row])
                found.append(Sentence(i, a, b, p.chunk.text[a:b]))
                rows.append(row)
        dim = self.index.sentence_embeddings.shape[1] if self.index.sentence_embeddings.ndim == 2 else 0
        vectors = self.index.sentence_embeddings[rows] if rows else np.zeros((0, dim), dtype=np.float32)
        return found, vectors

    def list_continuation(self, passages: list[Passage], last: Sentence, attach: bool = True) -> list[Sentence]:
        """The items that follow ``last`` (a list's last item in its passage, or the intro when the
        passage ends there) in the next chunk of the same section: a list the chunk boundary cut
        is read to its end, within the answer's budget. With ``attach``, that chunk joins
        ``passages`` so its items can be cited from it."""
        chunk = passages[last.passage].chunk
        if chunk.text[last.end :].strip():
            return []  # the list ends inside this passage
        at = self.index.position(chunk.chunk_id) + 1
        if at >= len(self.index.chunks):
            return []
        following = self.index.chunks[at]
        if following.doc_id != chunk.doc_id or following.section != chunk.section:
            return []
        k = next((i for i, p in enumerate(passages) if p.chunk.chunk_id == following.chunk_id), len(passages))
        offset = chunk.start + last.end - following.start
        items: list[Sentence] = []
        for sentence in split_sentences(following.text, k):
            if sentence.start < offset:
                continue
            if not is_item(sentence):
                break
            items.append(sentence)
        if items and attach and k == len(passages):
            passages.append(Passage(chunk=following, score=0.0, rank=len(passages) + 1))
        return items

    def describe(self, passage: Passage, needle: str = "", single: bool = False) -> tuple[str, list[Citation]]:
        """The opening sentences of a passage, in order, as one quote: the answer to "what is
        textbox 3 about?" is its title and first lines, not its best-scoring sentence. With a
        ``needle``, from the sentence that holds it on (a graph's caption), or that sentence alone
        (``single``: an objective's wording in a list)."""
        sentences, _ = self.sentences([passage])
        if needle:
            at = next((i for i, s in enumerate(sentences) if needle in s.text.lower()), len(sentences))
            sentences = sentences[at : at + 1] if single else sentences[at:]
        if not sentences:
            return NO_ANSWER, []
        shown: list[Sentence] = []
        cut = ""  # the first sentence that does not fit is shown by its head
        for s in sentences:
            room = self.settings.max_chars - sum(len(x.text) + 1 for x in shown)
            if shown and len(s.text) > room:
                if room >= 60:
                    cut = head(s.text, room // 7)
                    shown.append(s)
                break
            shown.append(s)
        c = passage.chunk
        quote = c.text[shown[0].start : shown[-1].end]
        citation = Citation(n=1, doc_id=c.doc_id, title=c.title, section=c.section_label, page=c.page_label,
                            quote=quote, score=passage.score, passage_rank=passage.rank, chunk_id=c.chunk_id,
                            ocr=c.ocr)
        lines = [NOTE_MARK.sub("", s.text) for s in shown]
        if single:  # an objective's line in a bulleted list: "- 13. Use migration detention…"
            lines = [BULLET.sub("", line) for line in lines]
        if cut:
            lines[-1] = cut
        lines = [line if line.rstrip()[-1:] in ".:;?!|…" else f"{line.rstrip()}." for line in lines]  # titles
        return f"{' '.join(lines)} [1]", [citation]

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        question_vector: np.ndarray,
        check_terms: str = "",
        named_part: bool = False,
        topic: str | Sequence[str] = "",
    ) -> tuple[str, list[Citation], bool]:
        """``check_terms``: the question as the user wrote it, when its names must be found in the
        passages (not for Spanish questions, whose words the English passages do not share).
        ``named_part``: the question names a part of the document that the passages come from
        ("the challenges of thematic area 4"), so it is on topic however weakly its words match.
        ``topic``: the question's words in the documents' language (a Spanish question's English
        terms), against which an answer's sentences are checked for being on topic; several
        renderings (as asked, translated) when the documents may be in either language.

        Sets ``self.support``: how well the best sentence supports an answer (compared with
        ``abstain_threshold``), None when nothing could be scored."""
        s = self.settings
        used = list(passages[: s.max_passages])
        every, vectors = self.sentences(used)
        keep = [
            i for i, x in enumerate(every)
            if quotable(x.text, used[x.passage].chunk.section)
            # an intro whose items the passage cuts off ("…, the Review will:") says nothing alone
            and not (is_intro(x) and not list_items(x, every) and not self.list_continuation(used, x, attach=False))
        ]
        if not keep:
            return NO_ANSWER, [], True
        intent = read(question)
        ranked = self.scorer.score(question, intent, question_vector, [every[i] for i in keep], vectors[keep], used)
        self.support = support(ranked[0], used, s) if ranked else None
        if not ranked or (not named_part and support(ranked[0], used, s) < s.abstain_threshold):
            return NO_ANSWER, [], True
        if check_terms:
            missing = unsupported_terms(check_terms, used)
            if missing:
                return f"{NO_ANSWER} None of the passages found mentions {', '.join(missing)}.", [], True
        draft = self._draft(question, intent, ranked, used, every)
        ranked, draft, refusal = self._give_what_is_asked(question, intent, topic, ranked, draft, used, every)
        if refusal:
            return f"{NO_ANSWER} {refusal}", [], True
        text, citations = cite(draft, used, s.max_quote_chars)
        if check_terms:
            quoted = [p for p in used if any(c.chunk_id == p.chunk.chunk_id for c in citations)]
            missing = unquoted_places(check_terms, quoted)
            if missing:
                return f"{NO_ANSWER} The passages quoted do not mention {', '.join(missing)}.", [], True
        return text, citations, False

    def _draft(
        self, question: str, intent: Intent, ranked: Sequence[Scored], used: list[Passage], every: Sequence[Sentence]
    ) -> list[Pick]:
        keeps = [a.holds for a in intent.asks if a.holds is not None]  # what no cut may remove
        return select(question, ranked, used, self.settings, every, self.list_continuation, keeps)

    def _give_what_is_asked(
        self, question: str, intent: Intent, topic: str | Sequence[str], ranked: list[Scored], draft: list[Pick],
        used: list[Passage], every: Sequence[Sentence],
    ) -> tuple[list[Scored], list[Pick], str]:
        """The draft, changed so that it gives each kind of thing the question asks for, or why it
        cannot (then the answerer abstains).

        The main kind (a figure for "how many") may sit in a sentence ranked a little lower: the
        best such sentence leads, when it scores near the best. A second part ("...and how
        many?") gets the best sentence that answers it, when the draft does not."""
        s = self.settings
        wanted = intent.main
        topics = [topic] if isinstance(topic, str) else list(topic)
        q_tokens = [set(tokenize(t)) for t in topics if t] or [set(tokenize(question))]
        if wanted is not None and wanted.holds is not None and not gives(
            wanted, q_tokens, [p.text for p in draft], s.topic_overlap
        ):
            holding = [r for r in ranked[: s.holding_pool]
                       if gives(wanted, q_tokens, [r.sentence.text], s.topic_overlap)
                       and r.score >= s.holding_ratio * ranked[0].score]
            if not holding:
                return ranked, draft, f"None of the passages found gives {wanted.name} for it."
            lead = holding[0]
            ranked = [Scored(lead.sentence, ranked[0].score, lead.cosine, lead.overlap),
                      *(r for r in ranked if r is not lead)]
            draft = self._draft(question, intent, ranked, used, every)
        for other in intent.asks[1:]:
            if other.holds is None or other.holds(" ".join(p.text for p in draft)):
                continue
            second = next((r for r in ranked[1 : s.holding_pool]
                           if other.holds(r.sentence.text) and r.score >= s.second_part_ratio * ranked[0].score), None)
            if second is not None:
                ranked = [ranked[0], Scored(second.sentence, ranked[0].score, second.cosine, second.overlap),
                          *(r for r in ranked[1:] if r is not second)]
                draft = self._draft(question, intent, ranked, used, every)
        return ranked, draft, ""
