"""How an answer is composed, on small hand-made documents (an invented country, Ruritania): lists,
repeated sentences, two-part questions and bullets."""

# ruff: noqa: E501 - the documents keep one paragraph a line, as a text export has them

from __future__ import annotations

from pathlib import Path

from gcm_qa.engine import Engine

REMITTANCES = """1. Remittances in Ruritania

Remittances sent by Ruritanian workers abroad reached record levels in 2021, and the government studied how to lower their cost.

To make remittances do the most for families and communities, the Ruritanian plan says that States should act on several fronts at once:
- Preventing collusion among money transfer providers that keeps fees artificially high in the corridors most used by migrant workers;
- Reducing transfer costs, with the disaggregation of components so that senders can compare the exchange margin and the fixed fee;
- Promoting financial education for recipient households, so that remittances are saved and invested as well as spent;
- Opening bank accounts for migrants regardless of their status, with identity documents issued by consulates accepted;
- Linking remittances to local development projects chosen by the communities that receive the money.

2. Labour migration

Seasonal workers from Ruritania travel each year to harvest fruit in neighbouring countries.
"""

PRINCIPLES = """1. The Ruritanian migration charter

The Ruritanian migration charter is based on a set of cross-cutting and interdependent guiding principles.

The Ruritanian migration charter is based on a set of cross-cutting and interdependent guiding principles: people-centredness; international cooperation; national sovereignty; rule of law; sustainable development; and human rights.

2. Ports

Ruritania has three sea ports on its northern coast.
"""

STORMS = """1. The storms of 2020

Storms Alba and Bruno struck the Ruritanian coast in November 2020, one after the other.

2. Their consequences

Across the coastal provinces, the two storms affected more than 4 million people, destroying homes and harvests.

3. Reconstruction

Reconstruction of the coastal roads began the following spring.
"""

FORUM = """1. Participation of migrants

- In Ruritania, there is a Standing Forum of Migrants and Refugees, led by the Office of the Ombudsman, where migrant associations meet the ministries every quarter.
- Migrant associations also take part in municipal councils in the capital.

2. Data

The national statistics office publishes migration figures every year.
"""


def _engine(make_engine, tmp_path: Path, name: str, text: str) -> Engine:
    engine = make_engine()
    (tmp_path / "corpus" / name).write_text(text, encoding="utf-8")
    engine.build()
    return engine


def test_a_list_too_long_for_the_answer_shows_every_item_by_its_head(make_engine, tmp_path: Path) -> None:
    engine = _engine(make_engine, tmp_path, "remittances.txt", REMITTANCES)
    answer = engine.ask("How should States act on remittances to do the most for families and communities?")
    assert not answer.abstained
    for item in ("Preventing collusion among money transfer", "Reducing transfer costs", "Promoting financial education"):
        assert item in answer.answer
    # the citation quotes the list whole, so the cut items can be checked
    assert any("Reducing transfer costs, with the disaggregation of components" in c.quote for c in answer.citations)
    assert len(answer.answer) < engine.settings.answer.max_list_chars + 60  # text plus [n] markers


def test_a_sentence_that_an_answer_already_holds_is_not_quoted_again(make_engine, tmp_path: Path) -> None:
    engine = _engine(make_engine, tmp_path, "charter.txt", PRINCIPLES)
    answer = engine.ask("What are the guiding principles on which the Ruritanian migration charter is based?")
    # "…guiding principles." and "…guiding principles: people-centredness; …": only the longer one
    assert answer.answer.count("cross-cutting and interdependent guiding principles") == 1
    assert "people-centredness" in answer.answer


def test_each_part_of_a_two_part_question_gets_its_sentence(make_engine, tmp_path: Path) -> None:
    engine = _engine(make_engine, tmp_path, "storms.txt", STORMS)
    answer = engine.ask("When did storms Alba and Bruno strike and how many people did they affect?")
    assert "4 million" in answer.answer  # the figure
    assert "November 2020" in answer.answer  # and the date, from another passage


def test_a_bullet_quoted_alone_loses_its_bullet(make_engine, tmp_path: Path) -> None:
    engine = _engine(make_engine, tmp_path, "forum.txt", FORUM)
    answer = engine.ask("Who leads the Standing Forum of Migrants and Refugees in Ruritania?")
    assert answer.answer.startswith("In Ruritania, there is a Standing Forum of Migrants and Refugees")
    assert answer.citations[0].quote.lstrip().startswith("- In Ruritania")  # the quote stays exact


# ---- rules on single sentences: no index needed ------------------------------------------------

from gcm_qa.composition import trim_to_clauses  # noqa: E402
from gcm_qa.intent import has_count  # noqa: E402
from gcm_qa.keyword import tokenize  # noqa: E402
from gcm_qa.lists import numbered_by_position  # noqa: E402
from gcm_qa.quotes import unnumbered  # noqa: E402
from gcm_qa.sentences import split_sentences  # noqa: E402

LONG = ("The Ruritanian harbour festival, which the port authority has organised every summer since the old "
        "customs house was restored, drew 4,200 visitors from 12 provinces, and the organisers of the Ruritanian "
        "harbour festival described the harbour festival programme in a leaflet for the harbour festival visitors.")


def test_a_cut_keeps_the_figure_a_how_many_question_asks_for() -> None:
    question = set(tokenize("How many visitors did the Ruritanian harbour festival draw?"))
    bare, _ = trim_to_clauses(LONG, question, 120)
    assert not has_count(bare)  # richest in the question's words, the cut alone loses the figure
    kept, at = trim_to_clauses(LONG, question, 120, keeps=[has_count])
    assert "4,200 visitors" in kept and LONG[at : at + len(kept)] == kept


def test_a_number_that_counts_paragraphs_is_not_quoted_but_a_number_that_names_one_is() -> None:
    counted = split_sentences("Four sources were used:\n1. Reports from ports.\n2. Interviews with captains.\n"
                              "3. Statements at the harbour meeting, where 80 people spoke.")
    assert numbered_by_position(counted[-1], counted)
    assert counted[-1].text[unnumbered(counted[-1].text):].startswith("Statements at the harbour meeting")
    named = split_sentences("The plan serves these goals:\n- 2. Cheaper ferries.\n- 7. Safer piers.\n- 13. Open ports.")
    assert not any(numbered_by_position(s, named) for s in named)
    alone = split_sentences("12. Dredge the northern channel before the storms.")
    assert not numbered_by_position(alone[0], alone)


def test_a_forms_question_is_never_quoted_as_an_answer() -> None:
    from gcm_qa.quotes import quotable

    section = ["Área temática 2", "5. ¿Se detiene a niños por motivos migratorios? ¿Qué alternativas existen?"]
    assert not quotable("¿Qué alternativas existen?", section)
    assert not quotable("5. ¿Se detiene a niños por motivos migratorios?", section)
    assert quotable("Desde 2020 ningún niño puede permanecer en un centro de detención.", section)
