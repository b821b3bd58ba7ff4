"""The chat's side of generated answers (issue 14), without a browser: the growing text while the
model writes, the final rendering with its unsupported sentences marked and counted, the notice when
the generated answer was not used, all of it escaped (model text is as untrusted as a document's).

The rendering is tested on hand-made answers; the chat's respond path on a real engine over a small
corpus, answering through the scripted OpenAI-compatible server on loopback (tests/llm_server.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import chat_text
from llm_server import Delay, ScriptedLLM, Status, Text

from gcm_qa.app import build_app
from gcm_qa.app_render import (
    format_answer_markdown,
    format_partial_markdown,
    unsupported_spans,
)
from gcm_qa.types import Answer, Chunk, Citation, Passage

BELLAVISTA = ("The fictional island of Bellavista registered 4,321 asylum claims in 2021. Most claims were filed "
              "by people arriving by sea from neighbouring islands.")
SUPPORTED = "Bellavista registered 4,321 asylum claims in 2021 [1]."
UNSUPPORTED = "The claims were then reviewed by a new tribunal [7]."
HOSTILE = ('<img src=http://127.0.0.1:9/x> ![x](http://127.0.0.1:9/y) <script>alert(1)</script> '
           '[link](http://127.0.0.1:9/z) *bold* `code` www.example.org <mark title="x">m</mark>')


class Tags(HTMLParser):
    """The elements of an HTML fragment, each with its attributes and its own text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._open: list[list[str]] = []
        self.inner: list[tuple[str, dict[str, str | None], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._open.append([tag, dict(attrs), ""])  # type: ignore[list-item]

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                name, attrs, text = self._open.pop(i)
                self.inner.append((name, attrs, text))  # type: ignore[arg-type]
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for element in self._open:
            element[2] += data  # type: ignore[operator]

    @property
    def tags(self) -> set[str]:
        return {t for t, _ in self.elements}

    def all_text(self) -> str:
        return "".join(self.text)

    def of(self, tag: str, cls: str | None = None) -> list[tuple[dict[str, str | None], str]]:
        return [(a, t) for name, a, t in self.inner
                if name == tag and (cls is None or cls in (a.get("class") or "").split())]


def rendered(markdown: str) -> Tags:
    """The chat's Markdown as a browser gets it (CommonMark with raw HTML let through, as Gradio's
    renderer does before its sanitiser), parsed."""
    markdown_it = pytest.importorskip("markdown_it")
    tags = Tags()
    tags.feed(markdown_it.MarkdownIt("commonmark", {"html": True}).render(markdown))
    tags.close()
    return tags


def make_answer(text: str, unsupported: list[dict[str, Any]] | None = None, answerer: str = "llm",
                notice: str | None = None, cited: tuple[int, ...] = (1,)) -> Answer:
    chunk = Chunk(chunk_id="bella#0", doc_id="bella", title="Bellavista asylum report 2021", kind="report",
                  author="unknown", language="en", stakeholder="", section=["Claims"], page_start=3,
                  page_end=3, start=0, end=len(BELLAVISTA), text=BELLAVISTA, areas=[], objectives=[])
    citations = [Citation(n=n, doc_id=chunk.doc_id, title=chunk.title, section=chunk.section_label,
                          page=chunk.page_label, quote=BELLAVISTA.split(". ")[0] + ".", score=0.8, passage_rank=1,
                          chunk_id=chunk.chunk_id) for n in cited]
    return Answer(question="How many asylum claims did Bellavista register?", answer=text, abstained=False,
                  citations=citations, passages=[Passage(chunk, 0.8, 1)], timings_ms={"total": 1.0},
                  answerer=answerer, unsupported=unsupported or [], notice=notice)


def not_given(sentence: str, n: int = 7) -> dict[str, Any]:
    return {"sentence": sentence, "reasons": [f"cites passage {n}, which was not given"]}


def assert_inert(tags: Tags) -> None:
    """Nothing in the message fetches, links, runs or styles: only the tags the rendering adds."""
    assert tags.tags <= {"p", "strong", "mark", "span"}, tags.tags
    for _, attrs in tags.elements:
        assert set(attrs) <= {"class", "title"}, attrs


# --- the final rendering -----------------------------------------------------------------------


def test_an_unsupported_sentence_is_marked_with_its_reasons_and_counted() -> None:
    text = f"{SUPPORTED} Most claims were filed by people arriving by sea [1]. {UNSUPPORTED}"
    md = format_answer_markdown(make_answer(text, [not_given(UNSUPPORTED)]))
    tags = rendered(md)
    [(attrs, marked)] = tags.of("mark", "gcmqa-unsupported")
    assert marked == "The claims were then reviewed by a new tribunal [7]."
    assert attrs["title"] == "Not found in the passages it cites: cites passage 7, which was not given"
    [(_, note)] = tags.of("span", "gcmqa-unsupported-note")
    assert note == "1 sentence not found in the passages it cites (marked above)."
    # the supported sentences are not marked, their real marker [1] is bold, the [7] is not
    assert [t for _, t in tags.of("strong")] == ["[1]", "[1]"]
    assert "Bellavista registered 4,321 asylum claims in 2021 [1]. Most claims" in tags.all_text()
    assert "Sources: [1] Bellavista asylum report 2021" in tags.all_text()
    assert_inert(tags)


def test_several_unsupported_sentences_are_each_marked_and_counted() -> None:
    first = "Returns doubled in 2022 [2]."
    text = f"{first} {SUPPORTED} {UNSUPPORTED}"
    md = format_answer_markdown(make_answer(text, [
        {"sentence": first, "reasons": ["figure 2022 is not in the cited passage",
                                        "the cited passage does not say this (similarity 0.12 < 0.50)"]},
        not_given(UNSUPPORTED)], cited=(1, 2)))
    tags = rendered(md)
    marks = tags.of("mark", "gcmqa-unsupported")
    assert [t for _, t in marks] == [first, UNSUPPORTED]
    assert marks[0][0]["title"] == ("Not found in the passages it cites: figure 2022 is not in the cited passage; "
                                    "the cited passage does not say this (similarity 0.12 < 0.50)")
    assert md.startswith("<mark ")  # an answer may open with a marked sentence: still one paragraph
    assert tags.of("span", "gcmqa-unsupported-note")[0][1] == (
        "2 sentences not found in the passages they cite (marked above).")


def test_model_text_and_reasons_are_escaped() -> None:
    bad = f"It said {HOSTILE} [7]."
    text = f"{SUPPORTED} Also {HOSTILE} [1]. {bad}"
    reason = 'name <b onclick="x()">Evil</b> & "quoted" is not in the cited passage'
    md = format_answer_markdown(make_answer(text, [{"sentence": bad, "reasons": [reason]}]))
    tags = rendered(md)
    assert_inert(tags)
    assert "<img" not in md and "<script" not in md
    [(attrs, marked)] = tags.of("mark", "gcmqa-unsupported")
    assert attrs["title"] == f"Not found in the passages it cites: {reason}"
    # the markup is shown as the characters the model wrote, in the marked sentence and elsewhere
    assert marked == f"It said {HOSTILE} [7]."
    assert f"Also {HOSTILE} [1]." in tags.all_text()


def test_the_notice_is_one_line_above_the_extractive_answer() -> None:
    notice = ("The language model (openai model 'scripted' at http://127.0.0.1:8080/v1) gave no answer: it "
              "answered with HTTP 500. This is the extractive answer.")
    answer = make_answer(BELLAVISTA.split(". ")[0] + ". [1]", answerer="extractive", notice=notice,
                         unsupported=[not_given("The fictional island of Bellavista registered 4,321 asylum "
                                                "claims in 2021. [1]")])
    md = format_answer_markdown(answer)
    first, rest = md.split("\n\n", 1)
    tags = rendered(first)
    assert tags.of("span", "gcmqa-notice")[0][1] == f"⚠ {notice}"
    assert "\n" not in first
    assert_inert(rendered(md))  # the URL in the notice is text, not a link
    # an extractive answer is not marked, whatever the check said of the generated one it replaced
    assert "gcmqa-unsupported" not in md
    assert rest.startswith("The fictional island of Bellavista registered 4,321 asylum claims in 2021. **\\[1\\]**")


def test_a_notice_escapes_model_markup() -> None:
    notice = f"The generated answer was not used: {HOSTILE}. This is the extractive answer."
    md = format_answer_markdown(make_answer(BELLAVISTA + " [1]", answerer="extractive", notice=notice))
    tags = rendered(md)
    assert_inert(tags)
    assert tags.of("span", "gcmqa-notice")[0][1] == f"⚠ {notice}"


def test_a_generated_answer_with_every_sentence_supported_has_no_mark() -> None:
    text = "Bellavista registered 4,321 asylum claims in 2021[1].Most came by sea [1, 2]."
    md = format_answer_markdown(make_answer(text, cited=(1, 2)))
    tags = rendered(md)
    assert "gcmqa-unsupported" not in md and "mark" not in tags.tags
    # markers glued to words still come out bold, set off by a space
    assert [t for _, t in tags.of("strong")] == ["[1]", "[1, 2]"]
    assert "in 2021 [1].Most" in tags.all_text()


def test_unsupported_spans_find_each_sentence_in_order() -> None:
    same = "It grew [7]."
    text = f"{same} {SUPPORTED} {same}  Spaced   out [9]."
    spans = unsupported_spans(text, [not_given(same), not_given(same), not_given("Spaced out [9].", 9),
                                     not_given("Never written [8].", 8), {"sentence": "", "reasons": []}])
    assert [(text[a:b], r) for a, b, r in spans] == [
        (same, ["cites passage 7, which was not given"]),
        (same, ["cites passage 7, which was not given"]),
        ("Spaced   out [9].", ["cites passage 9, which was not given"]),
    ]


def test_the_growing_text_is_escaped_with_a_cursor() -> None:
    md = format_partial_markdown(f"Bellavista registered {HOSTILE} [1")
    tags = rendered(md)
    assert_inert(tags)
    assert tags.all_text().strip() == f"Bellavista registered {HOSTILE} [1 ▍"
    assert format_partial_markdown("") == "▍"


# --- the respond path, on a real engine and a scripted model ---------------------------------------

LLM_TIMEOUT_S = 3.0
PIECES = ("Bellavista registered 4,321 asylum claims in 2021 [1].",
          " Most claims were filed by people arriving by sea from neighbouring islands [1].",
          f" {UNSUPPORTED}")


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def llm_engine(make_engine, tmp_path: Path, llm: ScriptedLLM):
    engine = make_engine(tmp_path / "lib", llm={"enabled": True, "base_url": llm.base_url, "model": "scripted",
                                                "timeout": LLM_TIMEOUT_S})
    corpus = engine.settings.paths.corpus_dir
    (corpus / "bellavista.txt").write_text(f"Bellavista asylum report 2021\n\n{BELLAVISTA}\n", encoding="utf-8")
    (corpus / "ports.txt").write_text(
        "Port authorities note\n\nThe port authorities of Marenia trained 40 officers in consular assistance "
        "during 2020. The training covered the rights of migrants in detention.\n", encoding="utf-8")
    engine.build()
    return engine


def respond_fn(engine) -> Any:
    demo = build_app(engine)
    [fn] = {f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "respond"}
    return fn


def test_respond_streams_the_answer_then_shows_it_checked(llm_engine, llm: ScriptedLLM) -> None:
    llm.add(Text("".join(PIECES), pieces=PIECES), Status(500), Delay(LLM_TIMEOUT_S + 5, then=Text(SUPPORTED)))
    respond = respond_fn(llm_engine)
    question = "How many asylum claims did Bellavista register in 2021?"
    steps = list(respond(question, [], [], [], [], [], [], []))
    shown = [chat_text(step[0], "assistant")[-1] for step in steps]
    assert shown[0] == "*Searching the documents…*"
    # one step per piece, each the text so far with a cursor
    assert shown[1:4] == [format_partial_markdown("".join(PIECES[:i])) for i in (1, 2, 3)]
    final = rendered(shown[-1])
    assert [t for _, t in final.of("mark", "gcmqa-unsupported")] == [UNSUPPORTED]
    assert "1 sentence not found in the passages it cites" in final.all_text()
    assert "▍" not in shown[-1] and "gcmqa-notice" not in shown[-1]
    messages, sources = steps[-1][1], steps[-1][2]
    assert chat_text(messages, "assistant") == [shown[-1]]
    assert 'id="gcmqa-source-1"' in sources and "Bellavista asylum report 2021" in sources
    assert "4,321" in llm.chat_requests()[0].messages[-1]["content"]  # the passages went to the model

    # the model fails: the extractive answer, the notice above it, nothing streamed
    steps = list(respond("Where did the asylum claimants of Bellavista come from?", messages, steps[-1][4],
                         [], [], [], [], []))
    assert len(steps) == 2
    last = chat_text(steps[-1][0], "assistant")[-1]
    assert last.startswith('<span class="gcmqa-notice">⚠ The language model (openai model ')
    assert "gave no answer: it answered with HTTP 500. This is the extractive answer.</span>" in last
    assert "gcmqa-unsupported" not in last and "**\\[1\\]**" in last
    assert 'id="gcmqa-source-1"' in steps[-1][2] and "Bellavista asylum report 2021" in steps[-1][2]

    # the model is too slow: the same, once the timeout is up
    started = time.monotonic()
    steps = list(respond("Who filed the asylum claims in Bellavista?", steps[-1][1], steps[-1][4],
                         [], [], [], [], []))
    assert LLM_TIMEOUT_S <= time.monotonic() - started < LLM_TIMEOUT_S + 5
    last = chat_text(steps[-1][0], "assistant")[-1]
    assert "gave no answer: it did not answer within the timeout. This is the extractive answer.</span>" in last
    assert len(chat_text(steps[-1][1], "assistant")) == 3
